import type { DocumentSession } from '../documents/document-session.js'
import type { SyncReply } from '../documents/sync-replies.js'
import type { SessionDocument } from './gateway-deps.js'
import { SOCKET_CLOSED, SOCKET_OPEN, type SocketLike } from './socket-like.js'
import type { Log } from './connection-log.js'
import type { ParentLog } from './connection-deps.js'

/**
 * A socket for unit tests (used by the gateway's tests only): records what is sent, how it was
 * closed, and pause/resume of reading. Sends "leave the process" when the test calls `flush()`
 * (their callbacks run then); `bufferedAmount` is whatever the test sets.
 */
export class FakeSocket implements SocketLike {
  readyState = SOCKET_OPEN
  bufferedAmount = 0
  /** Every frame sent, in order (`fin` false: more fragments of the same message follow). */
  readonly sent: { data: Uint8Array; fin: boolean }[] = []
  closedWith: { code: number | undefined; reason: string | undefined } | null = null
  terminated = false
  paused = false
  pauses = 0
  resumes = 0
  pings = 0
  corked = 0
  readonly _socket = {
    cork: (): void => { this.corked++ },
    uncork: (): void => { this.corked-- },
    // never called: with no `_sender`, frames go through `send`
    write: (): boolean => { throw new Error('FakeSocket: frames go through send') },
  }
  readonly _receiver = { _maxPayload: 0 as unknown }
  #callbacks: ((err?: Error) => void)[] = []
  #onClose: (() => void)[] = []

  send(data: Uint8Array, options: { binary: boolean; fin?: boolean }, callback?: (err?: Error) => void): void {
    this.sent.push({ data, fin: options.fin ?? true })
    if (callback !== undefined) this.#callbacks.push(callback)
  }

  /** The frames sent so far have left the process: their callbacks run. */
  flush(): void {
    const callbacks = this.#callbacks
    this.#callbacks = []
    for (const cb of callbacks) cb()
  }

  /** Frames sent whose callbacks have not run yet. */
  get inFlight(): number {
    return this.#callbacks.length
  }

  close(code?: number, reason?: string): void {
    if (this.closedWith === null) this.closedWith = { code, reason }
    if (this.readyState === SOCKET_OPEN) this.readyState = 2
  }

  terminate(): void {
    this.terminated = true
    this.readyState = SOCKET_CLOSED
    for (const fn of this.#onClose.splice(0)) fn()
  }

  pause(): void {
    this.paused = true
    this.pauses++
  }

  resume(): void {
    this.paused = false
    this.resumes++
  }

  ping(): void {
    this.pings++
  }

  once(_event: 'close', listener: () => void): this {
    this.#onClose.push(listener)
    return this
  }
}

export type Entry = [level: string, obj: Record<string, unknown>, msg: string]

/** A logger that records every line, at every level (its child loggers record into the same list, without their bindings). */
export function recordingLog(): Log & ParentLog & { entries: Entry[] } {
  const entries: Entry[] = []
  const at = (level: string) => (obj: object, msg: string): void => { entries.push([level, obj as Record<string, unknown>, msg]) }
  const log = {
    entries, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    isLevelEnabled: (): boolean => true,
    child: (): Log => log,
  }
  return log
}

/** A document that records what sessions do to it. */
export class FakeDocument implements SessionDocument {
  readonly name = 'doc'
  readonly stats = { failed: false }
  readonly sessions = new Set<DocumentSession>()
  readonly writes: number[][] = []
  /** The presence updates sessions applied. */
  readonly presenceUpdates: number[][] = []
  awareness: Uint8Array | null = null
  addSession(session: DocumentSession): void { this.sessions.add(session) }
  removeSession(session: DocumentSession): void { this.sessions.delete(session) }
  enqueueUpdate(_session: DocumentSession, _seq: number, update: Uint8Array): void { this.writes.push([...update]) }
  readonly sync = {
    whenIntegrated: (fn: () => void): void => { fn() },
    stateVector: (): Uint8Array => new Uint8Array([0]),
    prepareReply: (stateVector?: Uint8Array): SyncReply => ({ updates: [new Uint8Array([9])], step2: stateVector ?? new Uint8Array() }),
  }
  /** The stateless messages sessions sent. */
  readonly signalsSent: string[] = []
  readonly signals = {
    send: (_session: DocumentSession, payload: string): void => { this.signalsSent.push(payload) },
  }
  readonly presence = {
    states: (): Uint8Array | null => this.awareness,
    snapshot: (): Uint8Array | null => this.awareness,
    apply: (_session: DocumentSession, update: Uint8Array): void => { this.presenceUpdates.push([...update]) },
  }
}

/** A document source whose loads the test completes (`load`, `fail`). */
export class FakeSource {
  readonly doc = new FakeDocument()
  releases = 0
  acquires = 0
  #pending: { resolve: (lease: { doc: SessionDocument; release(): void }) => void; reject: (err: unknown) => void }[] = []
  acquire(): Promise<{ doc: SessionDocument; release(): void }> {
    this.acquires++
    return new Promise((resolve, reject) => this.#pending.push({ resolve, reject }))
  }
  load(): void {
    for (const p of this.#pending.splice(0)) p.resolve({ doc: this.doc, release: () => { this.releases++ } })
  }
  fail(err: unknown): void {
    for (const p of this.#pending.splice(0)) p.reject(err)
  }
}
