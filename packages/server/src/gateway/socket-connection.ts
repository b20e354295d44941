import type { Level } from 'pino'
import { ConcordError } from '@concord/protocol'
import type { Protocol } from '../ops/metrics.js'
import type { Log } from './connection-log.js'
import { socketOptionsOf, type ConnectionDeps } from './connection-deps.js'
import { ReadThrottle, type ThrottledReader } from './read-throttle.js'
import { bytesBeforeWriteAccess, setReceiveLimit } from './receive-limit.js'
import { SocketSender, type SlowReaderTarget } from './socket-sender.js'
import type { SocketLike } from './socket-like.js'
import { noteClose, type SessionSocket } from './transport-session.js'

/**
 * What the three transports' connections share: one socket, its sender, its rate limit
 * (`ReadThrottle`), the bytes it may make the server hold before it may write, the logger with
 * the connection's bindings, and closing. A transport supplies its framing: `handleMessage` (a
 * message the rate limit let through), `messageKind` (for metrics) and `disposed`.
 *
 * An idle connection is mostly this object, its sender and its throttle: they take the gateway's
 * dependencies and options by reference, and the connection is itself the callbacks they call
 * (`ThrottledReader`, `SlowReaderTarget`) and the logger its sessions use (`Log`): no closure and
 * no child logger per socket until one is needed.
 */
export abstract class SocketConnection implements SessionSocket, ThrottledReader, SlowReaderTarget, Log {
  readonly id: string
  protected readonly ws: SocketLike
  protected readonly deps: ConnectionDeps
  readonly sender: SocketSender
  readonly #throttle: ReadThrottle
  /** Bytes queued by this socket's sessions whose document is not open yet. */
  queuedBytes = 0
  /** The most `heldBytes` seen on this socket. */
  peakHeldBytes = 0
  #closed = false
  /** This connection's own logger (the server's, with its bindings), made by the first line logged at an enabled level. */
  #child: Log | null = null

  constructor(ws: SocketLike, deps: ConnectionDeps, connectionId: string, protocol: Protocol) {
    this.id = connectionId
    this.ws = ws
    this.deps = deps
    const options = socketOptionsOf(deps)
    this.sender = new SocketSender(ws, this, options.sender[protocol])
    this.#throttle = new ReadThrottle(ws, options.throttle, this)
    // until a session may write, a message may be at most the pre-open budget
    setReceiveLimit(ws, bytesBeforeWriteAccess(deps.config))
  }

  abstract get protocol(): Protocol
  /** A message the rate limit let through (in order); the connection is open. */
  protected abstract handleMessage(data: Uint8Array): void
  /** The message's kind, for metrics. */
  protected abstract messageKind(data: Uint8Array): string
  /** The connection has closed (called once): release its documents and timers. */
  protected abstract disposed(): void

  /** This connection's logger. */
  get log(): Log {
    return this
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Bytes received from this socket and held: waiting for the rate limit, or queued before a document was open. */
  get heldBytes(): number {
    return this.#throttle.heldBytes + this.queuedBytes
  }

  /** Now while its reading is paused by the rate limit; otherwise when it was last resumed (0: never paused). */
  get readPausedAt(): number {
    return this.#throttle.pausedAt
  }

  /**
   * One binary WebSocket message arrived. It is charged to the socket's rate limit before it
   * is decoded: within budget it is handled at once, over budget it waits in order while the
   * socket is read more slowly (`ReadThrottle`).
   */
  receive(data: Uint8Array): void {
    if (this.#closed) return
    this.deps.metrics.message('in', this.protocol, this.messageKind(data), data.length)
    this.#throttle.receive(data)
    this.notePeak()
  }

  protected notePeak(): void {
    const held = this.heldBytes
    if (held > this.peakHeldBytes) this.peakHeldBytes = held
  }

  /** ReadThrottle: a message within the rate limit. */
  readAllowed(data: Uint8Array): void {
    if (!this.#closed) this.handleMessage(data)
  }

  /** ReadThrottle: the peer kept sending while its socket was paused. */
  readOverflow(reason: string): void {
    this.closeAbusive(new ConcordError('CONCORD_ERR_LIMIT_RATE', reason))
  }

  /** ReadThrottle: handling a message from its timer threw (outside the gateway's guard). */
  readFailed(err: unknown): void {
    this.error({ err }, 'unexpected error handling a message')
    this.close(new ConcordError('CONCORD_ERR_SERVER_INTERNAL'))
  }

  /** A session may write: from now on the socket may send messages up to `maxMessageBytes`. */
  protected allowFullMessages(): void {
    setReceiveLimit(this.ws, this.deps.config.maxMessageBytes)
  }

  /** Close a socket that abuses the server, and stop reading what it has already sent (the close frame still goes out). */
  protected closeAbusive(error: ConcordError): void {
    this.close(error)
    this.ws.pause()
  }

  /** Close with a coded reason (or 1000 without one). Safe to call twice. */
  close(error?: ConcordError): void {
    if (this.#closed) return
    if (error !== undefined) noteClose(error, this, this.deps.metrics)
    this.sender.closeSocket(error)
    this.dispose()
  }

  /** Release everything; called once the socket is closed either way. */
  dispose(): void {
    if (this.#closed) return
    this.#closed = true
    this.sender.stop()
    this.#throttle.stop()
    this.disposed()
  }

  /** The bindings of this connection's log lines. */
  protected logBindings(): Record<string, unknown> {
    return { connectionId: this.id, transport: this.protocol }
  }

  trace(obj: object, msg: string): void { this.#log('trace', obj, msg) }
  debug(obj: object, msg: string): void { this.#log('debug', obj, msg) }
  info(obj: object, msg: string): void { this.#log('info', obj, msg) }
  warn(obj: object, msg: string): void { this.#log('warn', obj, msg) }
  error(obj: object, msg: string): void { this.#log('error', obj, msg) }

  #log(level: Level, obj: object, msg: string): void {
    const parent = this.deps.logger
    if (!parent.isLevelEnabled(level)) return
    this.#child ??= parent.child(this.logBindings())
    this.#child[level as keyof Log](obj, msg)
  }
}
