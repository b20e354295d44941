import type { Logger, Level } from 'pino'

/**
 * A per-connection logger that creates its pino child (with the connection's
 * bindings) only when something is actually logged at an enabled level. An
 * idle connection costs one small object instead of a child logger.
 */
export class ConnectionLog {
  readonly #parent: Logger
  readonly #connectionId: string
  /** null for a native connection; the document of a y-websocket one */
  readonly #document: string | null
  #child: Logger | null = null

  constructor(parent: Logger, connectionId: string, document: string | null) {
    this.#parent = parent
    this.#connectionId = connectionId
    this.#document = document
  }

  trace(obj: object, msg: string): void { this.#log('trace', obj, msg) }
  debug(obj: object, msg: string): void { this.#log('debug', obj, msg) }
  info(obj: object, msg: string): void { this.#log('info', obj, msg) }
  warn(obj: object, msg: string): void { this.#log('warn', obj, msg) }
  error(obj: object, msg: string): void { this.#log('error', obj, msg) }

  #log(level: Level, obj: object, msg: string): void {
    if (!this.#parent.isLevelEnabled(level)) return
    this.#child ??= this.#parent.child(this.#document === null
      ? { connectionId: this.#connectionId, transport: 'native' }
      : { connectionId: this.#connectionId, transport: 'y-websocket', document: this.#document })
    this.#child[level](obj, msg)
  }
}

/** What connection code needs from a logger. */
export type Log = Pick<ConnectionLog, 'trace' | 'debug' | 'info' | 'warn' | 'error'>
