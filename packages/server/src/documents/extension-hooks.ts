import * as Y from 'yjs'
import { ConcordError } from '@concord/protocol'
import type { Logger } from 'pino'

/**
 * Server extensions: hooks in the spirit of Hocuspocus's, typed, each with a rule for what it may
 * do and what happens when it throws. Extensions run in the order given; each is built only on
 * this public API.
 *
 * | hook | when | may | when it throws |
 * |---|---|---|---|
 * | `onConnect` | a session asks for a document, before its token is checked | refuse | the session is refused (`CONCORD_ERR_HOOK_REFUSED`) |
 * | `onAuthenticate` | its token was accepted | refuse | the session is refused |
 * | `onLoadDocument` | a document was loaded, before any session joins | change the Y.Doc (a migration) | the load fails for the sessions waiting (`CONCORD_ERR_DOC_LOAD_FAILED`) |
 * | `beforeChange` | a session's update passed the server's own checks, before it is applied | refuse | that update is refused (`CONCORD_ERR_HOOK_REFUSED`), the session goes on |
 * | `onChange` | an update changed the document (any origin: a session, the server, another node) | observe | logged and counted; nothing else |
 * | `onStoreDocument` | a session's update is durable | observe | logged and counted |
 * | `onAwarenessUpdate` | a session's presence changed | observe | logged and counted |
 * | `onStateless` | a session sent a stateless message | replace it (return a string), drop it (return null), refuse (throw) | the message is dropped |
 * | `onDisconnect` | a session ended | observe | logged and counted |
 * | `onDestroy` | the server is closing | release resources | logged |
 *
 * Synchronous hooks (`beforeChange`, `onChange`, `onAwarenessUpdate`, `onStateless`) run on the
 * edit path and must be fast; asynchronous ones are awaited at most `hookTimeoutMs` (5 s by
 * default), after which the refusal-capable ones refuse (`CONCORD_ERR_HOOK_TIMEOUT`).
 */
export interface ConcordExtension {
  readonly name: string
  onConnect?(ctx: ConnectContext): void | Promise<void>
  onAuthenticate?(ctx: AuthenticatedContext): void | Promise<void>
  onLoadDocument?(ctx: LoadContext): void | Promise<void>
  beforeChange?(ctx: BeforeChangeContext): void
  onChange?(ctx: ChangeContext): void
  onStoreDocument?(ctx: StoreContext): void | Promise<void>
  onAwarenessUpdate?(ctx: SessionContext & { update: Uint8Array }): void
  onStateless?(ctx: SessionContext & { payload: string }): string | null | void
  onDisconnect?(ctx: SessionContext): void | Promise<void>
  onDestroy?(): void | Promise<void>
}

export interface ConnectContext {
  documentName: string
  transport: 'native' | 'y-websocket' | 'hocuspocus'
  /** The remote address as the server sees it (after `trustProxyHops`). */
  request: { headers: Record<string, string | string[] | undefined> }
}

export interface SessionContext {
  documentName: string
  sessionId: string
  userId: string | null
  transport: 'native' | 'y-websocket' | 'hocuspocus' | 'server'
}

export interface AuthenticatedContext extends SessionContext {
  role: 'read' | 'write' | 'admin'
}

export interface LoadContext {
  documentName: string
  /** The loaded document: a hook may change it (what it changes is stored as the server's update). */
  document: Y.Doc
}

export interface BeforeChangeContext {
  documentName: string
  userId: string | null
  update: Uint8Array
  /** The document as it is, before the update: read it, do not change it. */
  document: Y.Doc
  /** A copy of the document with the update applied (made on first call; costs a copy of the document). */
  preview(): Y.Doc
}

export interface ChangeContext {
  documentName: string
  /** The writer's user id, when known (null: another node's update of an unknown writer, or the server). */
  userId: string | null
  update: Uint8Array
  /** The document after the update: read it, do not change it. */
  document: Y.Doc
  /** `local`: a session of this node (or the server); `remote`: another node or region. */
  origin: 'local' | 'remote'
}

export interface StoreContext {
  documentName: string
  userId: string | null
  update: Uint8Array
}

/** Runs the extensions' hooks with their rules (see `ConcordExtension`). */
export class ExtensionHooks {
  readonly #extensions: readonly ConcordExtension[]
  readonly #log: Logger
  readonly #timeoutMs: number
  readonly #onFailure: (extension: string, hook: string) => void
  readonly has: { [K in keyof ConcordExtension]-?: boolean }

  constructor(extensions: readonly ConcordExtension[], log: Logger, timeoutMs: number, onFailure: (extension: string, hook: string) => void = () => undefined) {
    this.#extensions = extensions
    this.#log = log
    this.#timeoutMs = timeoutMs
    this.#onFailure = onFailure
    const has = (hook: keyof ConcordExtension): boolean => extensions.some(e => typeof e[hook] === 'function')
    this.has = {
      name: extensions.length > 0, onConnect: has('onConnect'), onAuthenticate: has('onAuthenticate'), onLoadDocument: has('onLoadDocument'),
      beforeChange: has('beforeChange'), onChange: has('onChange'), onStoreDocument: has('onStoreDocument'), onAwarenessUpdate: has('onAwarenessUpdate'),
      onStateless: has('onStateless'), onDisconnect: has('onDisconnect'), onDestroy: has('onDestroy'),
    }
  }

  static readonly none = new ExtensionHooks([], undefined as unknown as Logger, 0)

  /** A refusal-capable async hook: resolves, or rejects with a coded error (the hook's own ConcordError is kept). */
  async refusable<C>(hook: 'onConnect' | 'onAuthenticate' | 'onLoadDocument', ctx: C, document: string): Promise<void> {
    for (const e of this.#extensions) {
      const fn = e[hook] as ((ctx: C) => void | Promise<void>) | undefined
      if (fn === undefined) continue
      try {
        await this.#bounded(fn.call(e, ctx), e.name, hook)
      } catch (err) {
        this.#failed(e.name, hook, err, document)
        if (err instanceof ConcordError) throw err
        throw new ConcordError('CONCORD_ERR_HOOK_REFUSED', `${e.name}: ${(err as Error)?.message ?? String(err)}`, { document, cause: err })
      }
    }
  }

  /** `beforeChange`: null when every extension lets the update through, else the refusal. */
  beforeChange(ctx: Omit<BeforeChangeContext, 'preview'>): ConcordError | null {
    let copy: Y.Doc | null = null
    const full: BeforeChangeContext = {
      ...ctx,
      preview: () => {
        if (copy === null) {
          copy = new Y.Doc({ gc: false })
          Y.applyUpdate(copy, Y.encodeStateAsUpdate(ctx.document))
          Y.applyUpdate(copy, ctx.update)
        }
        return copy
      },
    }
    try {
      for (const e of this.#extensions) {
        if (e.beforeChange === undefined) continue
        try {
          e.beforeChange(full)
        } catch (err) {
          this.#failed(e.name, 'beforeChange', err, ctx.documentName, 'debug')
          return new ConcordError('CONCORD_ERR_HOOK_REFUSED', `${e.name}: ${(err as Error)?.message ?? String(err)}`, { document: ctx.documentName })
        }
      }
      return null
    } finally {
      (copy as Y.Doc | null)?.destroy()
    }
  }

  /** `onStateless`: the payload to forward, or null to drop it. */
  stateless(ctx: SessionContext & { payload: string }): string | null {
    let payload = ctx.payload
    for (const e of this.#extensions) {
      if (e.onStateless === undefined) continue
      try {
        const out = e.onStateless({ ...ctx, payload })
        if (out === null) return null
        if (typeof out === 'string') payload = out
      } catch (err) {
        this.#failed(e.name, 'onStateless', err, ctx.documentName, 'debug')
        return null
      }
    }
    return payload
  }

  /** An observing hook: errors (thrown or rejected) are logged and counted, never passed on. */
  observe<C>(hook: 'onChange' | 'onStoreDocument' | 'onAwarenessUpdate' | 'onDisconnect', ctx: C, document: string): void {
    for (const e of this.#extensions) {
      const fn = e[hook] as ((ctx: C) => void | Promise<void>) | undefined
      if (fn === undefined) continue
      try {
        const r = fn.call(e, ctx)
        if (r instanceof Promise) r.catch(err => this.#failed(e.name, hook, err, document))
      } catch (err) {
        this.#failed(e.name, hook, err, document)
      }
    }
  }

  async destroy(): Promise<void> {
    for (const e of this.#extensions) {
      if (e.onDestroy === undefined) continue
      try {
        await this.#bounded(e.onDestroy(), e.name, 'onDestroy')
      } catch (err) {
        this.#failed(e.name, 'onDestroy', err, '')
      }
    }
  }

  async #bounded(result: void | Promise<void>, extension: string, hook: string): Promise<void> {
    if (!(result instanceof Promise)) return
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([result, new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ConcordError('CONCORD_ERR_HOOK_TIMEOUT', `${extension}.${hook} did not finish within ${this.#timeoutMs} ms`)), this.#timeoutMs)
      })])
    } finally {
      clearTimeout(timer)
    }
  }

  #failed(extension: string, hook: string, err: unknown, document: string, level: 'warn' | 'debug' = 'warn'): void {
    this.#onFailure(extension, hook)
    this.#log?.[level]({ extension, hook, document, err: err instanceof Error ? err.message : String(err) }, 'extension hook threw')
  }
}
