import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import { encodeStateVectorOf, encodeFrame, ERROR_CODES, FRAME_KINDS, isErrorCode, type Frame, type Role, type SeqRange } from '@concord/protocol'
import { Emitter } from './emitter.js'
import { Presence } from './presence.js'
import type { OfflineSnapshot, OfflineStore } from './offline-store.js'
import { FROM_TAB, TabSync } from './tab-sync.js'

export type DocStatus = 'connecting' | 'syncing' | 'synced' | 'closed' | 'error'

export interface DocHandleEvents {
  /** Initial sync with the server is done (after every (re)open). */
  synced: []
  /** Every local update so far is durable on the server (sent on each transition to saved). */
  saved: []
  /** A local update is waiting for the server's durable ack (sent on each transition to unsaved). */
  unsaved: []
  /** No working connection for `offlineAfterMs` (3 s by default), not on every blip. */
  offline: []
  /** The connection works again after having been reported offline. */
  online: []
  /** The server acked these client seqs as durable. */
  ack: [seqs: number[]]
  /**
   * With `replicatedRegions`: every local update so far is durable in that many regions (sent on
   * each transition to replicated).
   */
  replicated: []
  status: [status: DocStatus]
  /** The server changed this session's role (an administrator's change, or a refreshed token). */
  role: [role: Role]
  /**
   * A large frame of this document (an initial sync, a big update) is
   * travelling in chunks: one event per chunk received or handed to the socket.
   */
  progress: [progress: TransferProgress]
  /** A document-scoped error from the server. */
  error: [error: { code: string; message: string; seq: number; closed: boolean }]
  /** A stateless message another session of the document sent (`sendStateless`, or a Hocuspocus provider's). */
  stateless: [payload: string]
}

export interface TransferProgress {
  /** `download`: from the server; `upload`: to it. */
  direction: 'download' | 'upload'
  /** Identifies the message on its connection (one message, many chunks). */
  messageId: number
  /** Chunks done so far, of `totalChunks`. */
  chunks: number
  totalChunks: number
  /** Bytes of the message done so far (equal to its size at the last chunk). */
  bytes: number
}

/** What the handle needs from the client that owns the socket. */
export interface HandleTransport {
  send(bytes: Uint8Array, document: string): void
  readonly connected: boolean
  /** The server's limit from WELCOME (Infinity before the first WELCOME). */
  readonly maxMessageBytes: number
  tokenFor(document: string): Promise<string>
  onHandleClosed(handle: DocHandle): void
  /** Delay before re-open attempt number `attempt` (0-based), with backoff and jitter. */
  retryDelayMs(attempt: number): number
  /** The regions an update must be durable in to count as replicated (null: not tracked). */
  readonly replicatedRegions?: number | null
  /** An HTTP request to the server this client uses (`path` starts with /), for the history API. */
  request(path: string, init: { method: string; token: string; body?: unknown }): Promise<unknown>
}

/** A version of a document (docs/history.md). */
export interface VersionInfo {
  id: string
  kind: 'auto' | 'named'
  name: string | null
  createdAt: number
  createdBy: string | null
  authors: string[]
  seq: number
  bytes: number
}

const REMOTE = Symbol('concord-remote')
/** Acked updates tracked for replication at most (the oldest give way). */
const MAX_UNREPLICATED = 100_000
/** Origin of content restored from the offline store (its unacked part is already in `#pending`). */
const RESTORED = Symbol('concord-restored')

/**
 * One open document: its Y.Doc, its Awareness, and the set of local updates
 * not yet acked as durable (re-sent after every reconnect).
 */
export class DocHandle extends Emitter<DocHandleEvents> {
  readonly name: string
  readonly doc: Y.Doc
  readonly awareness: Awareness
  /** Presence helpers: local user/cursor/selection (throttled), others, typing. */
  readonly presence: Presence
  role: Role | null = null
  status: DocStatus = 'connecting'
  readonly #transport: HandleTransport
  readonly #pending = new Map<number, Uint8Array>()
  /** A resync update's seq -> the older pending seqs its ack also settles. */
  readonly #covers = new Map<number, number[]>()
  #savedWaiters: (() => void)[] = []
  /** With `replicatedRegions`: acked seqs not yet durable in enough regions (insertion order: oldest first). */
  readonly #unreplicated = new Set<number>()
  /** A re-sent update's seq -> the older unreplicated seqs its replication also settles. */
  readonly #replicatedCovers = new Map<number, number[]>()
  #replicatedWaiters: (() => void)[] = []
  #retryTimer: ReturnType<typeof setTimeout> | null = null
  #refreshTimer: ReturnType<typeof setTimeout> | null = null
  #resendTimer: ReturnType<typeof setTimeout> | null = null
  #resendAttempt = 0
  #retryAttempt = 0
  /** Set after the server refused an update as malformed: the document stops re-opening by itself. */
  #halted = false
  readonly #store: OfflineStore | null
  /** This handle's name as a writer of a store that tabs share (its pending updates are kept apart). */
  readonly #writer = randomWriterId()
  /** Other tabs with this document open (null: not shared). */
  readonly #tabs: TabSync | null
  readonly #ready: Promise<void>
  #persisting: Promise<void> | null = null
  #persistAgain = false
  #offline = false
  #nextSeq = 1
  #opened = false
  #openSent = false
  /** Which halves of the initial sync arrived since the last OPENED (chunked frames may reorder them). */
  #gotStep1 = false
  #gotStep2 = false
  #closed = false

  /**
   * `tabChannel`: the BroadcastChannel name that tabs with this document open share (null: this
   * handle shares nothing with other tabs).
   */
  constructor(name: string, transport: HandleTransport, doc?: Y.Doc, store?: OfflineStore, tabChannel: string | null = null) {
    super()
    this.name = name
    this.#transport = transport
    this.#store = store ?? null
    this.doc = doc ?? new Y.Doc()
    this.awareness = new Awareness(this.doc)
    this.presence = new Presence(this.awareness)
    this.doc.on('update', this.#onLocalUpdate)
    this.awareness.on('update', this.#onLocalAwareness)
    this.#tabs = tabChannel !== null && TabSync.available() ? new TabSync(tabChannel, this.doc, () => this.#tabClosed()) : null
    this.#ready = this.#restore()
    if (this.#tabs !== null) {
      const tabs = this.#tabs
      void this.#ready.then(() => { if (!this.#closed) tabs.start() })
    }
  }

  /** The undo manager made by `createUndoManager`, if any. */
  undoManager: Y.UndoManager | null = null

  /**
   * Undo/redo of this user's own edits only (remote edits are never undone),
   * over the given shared types, e.g. `handle.createUndoManager(doc.getText('body'))`.
   */
  createUndoManager(scope: Y.AbstractType<any> | Y.AbstractType<any>[], options: { captureTimeoutMs?: number } = {}): Y.UndoManager {
    this.undoManager?.destroy()
    // local transactions have origin null (or the handle's own); remote and restored ones are never tracked
    this.undoManager = new Y.UndoManager(scope, { trackedOrigins: new Set([null]), captureTimeout: options.captureTimeoutMs ?? 500 })
    return this.undoManager
  }

  /** Resolves once what the offline store kept for this document is back in `doc`. */
  whenLoaded(): Promise<void> {
    return this.#ready
  }

  /** Resolves once the offline store holds everything done so far (immediately without a store). */
  async whenPersisted(): Promise<void> {
    await this.#ready
    while (this.#persisting !== null || this.#persistAgain) await this.#persisting
  }

  async #restore(): Promise<void> {
    if (this.#store === null) return
    let kept: OfflineSnapshot | null
    try {
      kept = await this.#store.load(this.name, this.#writer)
    } catch (err) {
      this.emit('error', { code: 'CONCORD_ERR_CLIENT_OFFLINE_STORE', message: `reading the offline store failed: ${(err as Error).message}`, seq: 0, closed: false })
      return
    }
    if (kept === null || this.#closed) return
    Y.applyUpdate(this.doc, kept.state, RESTORED)
    for (const p of kept.pending) this.#pending.set(p.seq, p.update)
    this.#nextSeq = Math.max(this.#nextSeq, kept.nextSeq)
    if (this.#pending.size > 0) this.emit('unsaved')
  }

  /** Write the current state and unacked updates to the offline store (coalesced). */
  #persist(): void {
    if (this.#store === null || this.#closed) return
    if (this.#persisting !== null) {
      this.#persistAgain = true
      return
    }
    const store = this.#store
    this.#persisting = (async () => {
      await this.#ready
      do {
        this.#persistAgain = false
        const snapshot: OfflineSnapshot = {
          state: Y.encodeStateAsUpdate(this.doc),
          pending: [...this.#pending].map(([seq, update]) => ({ seq, update })),
          nextSeq: this.#nextSeq,
        }
        try {
          await store.save(this.name, snapshot, this.#writer)
        } catch (err) {
          this.emit('error', { code: 'CONCORD_ERR_CLIENT_OFFLINE_STORE', message: `writing the offline store failed: ${(err as Error).message}`, seq: 0, closed: false })
        }
        // (a save asked for before close still runs: the last edits must reach the store)
      } while (this.#persistAgain)
    })().finally(() => {
      this.#persisting = null
    })
  }

  /**
   * Shared stores (tabs): take over the pending updates of writers that went away (a tab closed
   * or crashed with edits it never sent), as if they were ours: they are sent with ours.
   */
  #adoptOrphans(): Promise<void> {
    // one at a time: two at once would both take the same sections
    this.#adopting = this.#adopting.then(() => this.#adoptOnce())
    return this.#adopting
  }

  #adopting: Promise<void> = Promise.resolve()

  async #adoptOnce(): Promise<void> {
    const store = this.#store
    if (store?.adopt === undefined || this.#closed) return
    let updates: Uint8Array[]
    try {
      updates = await store.adopt(this.name, this.#writer)
    } catch (err) {
      this.emit('error', { code: 'CONCORD_ERR_CLIENT_OFFLINE_STORE', message: `reading the offline store failed: ${(err as Error).message}`, seq: 0, closed: false })
      return
    }
    if (updates.length === 0 || this.#closed) return
    const wasSaved = this.#pending.size === 0
    for (const update of updates) {
      try {
        Y.applyUpdate(this.doc, update, RESTORED)
      } catch {
        continue // unreadable: not sent (the server would refuse it)
      }
      const seq = this.#nextSeq++
      this.#pending.set(seq, update)
      if (this.#opened && this.#transport.connected && this.role !== 'read') this.#sendUpdate(seq, update)
    }
    this.#persist()
    if (wasSaved && this.#pending.size > 0) this.emit('unsaved')
  }

  /** Another tab closed this document: what it left unsent is ours to send once its lock is gone. */
  #tabClosed(): void {
    for (const delay of [500, 3_000]) {
      const timer = setTimeout(() => void this.#adoptOrphans(), delay)
      ;(timer as { unref?: () => void }).unref?.()
    }
  }

  /** Local updates not yet durable on the server. */
  get pendingCount(): number {
    return this.#pending.size
  }

  /**
   * True when no local update waits for the server: every one was acked as
   * durable (or refused, which is reported through `error`).
   */
  get saved(): boolean {
    return this.#pending.size === 0
  }

  /**
   * With `replicatedRegions`: true when every local update so far is durable in that many
   * regions (nothing pending, nothing acked but not yet replicated). Without it: null.
   */
  get replicated(): boolean | null {
    if (!this.#tracksReplication) return null
    return this.#pending.size === 0 && this.#unreplicated.size === 0
  }

  /** Updates acked as saved in their region but not yet durable in `replicatedRegions` regions. */
  get unreplicatedCount(): number {
    return this.#unreplicated.size
  }

  /** Resolves when `replicated` is true (at once without `replicatedRegions`: nothing is tracked). */
  whenReplicated(): Promise<void> {
    if (this.replicated !== false) return Promise.resolve()
    return new Promise(resolve => this.#replicatedWaiters.push(resolve))
  }

  get #tracksReplication(): boolean {
    return (this.#transport.replicatedRegions ?? null) !== null
  }

  /** True after `offlineAfterMs` without a working connection, until it works again. */
  get offline(): boolean {
    return this.#offline
  }

  get synced(): boolean {
    return this.status === 'synced'
  }

  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve()
    return new Promise(resolve => this.once('synced', () => resolve()))
  }

  /**
   * Resolves when no local update is waiting for the server any more: all were
   * acked as durable, or refused (refusals are reported through `error`).
   */
  /** The document's versions, oldest first: checkpoints the server took and named versions. */
  async versions(): Promise<VersionInfo[]> {
    const body = await this.#history('GET', '/versions') as { versions: VersionInfo[] }
    return body.versions
  }

  /** Save the document as it is on the server now as a named version (needs write access). */
  async createVersion(name: string): Promise<VersionInfo> {
    const body = await this.#history('POST', '/versions', { name }) as { version: VersionInfo }
    return body.version
  }

  /**
   * Bring the document back to a version, as a new change that every collaborator receives
   * (this handle too, over its socket); edits made meanwhile offline still merge. Needs write access.
   */
  async restore(id: string): Promise<{ changed: boolean }> {
    const body = await this.#history('POST', `/versions/${encodeURIComponent(id)}/restore`) as { changed: boolean }
    return { changed: body.changed }
  }

  /**
   * Delete a named version (needs write access; checkpoints go by retention). The server keeps a
   * limited number of named versions per document (`CONCORD_ERR_LIMIT_NAMED_VERSIONS` once full):
   * deleting one makes room.
   */
  async deleteVersion(id: string): Promise<void> {
    await this.#history('DELETE', `/versions/${encodeURIComponent(id)}`)
  }

  async #history(method: string, path: string, body?: unknown): Promise<unknown> {
    const token = await this.#transport.tokenFor(this.name)
    return this.#transport.request(`/v1/documents/${encodeURIComponent(this.name)}${path}`, { method, token, ...(body !== undefined ? { body } : {}) })
  }

  /**
   * An application signal for the document's other sessions ("follow me", "reload"): the server
   * forwards it to everyone else on the document, on every node and every transport that has such
   * messages (native, Hocuspocus), and keeps nothing. Returns false, sending nothing, while the
   * document is not open on a connected socket: a signal is not queued for later. The server
   * refuses one over `maxStatelessBytes` or the session's rate with a `CONCORD_ERR_LIMIT_STATELESS`
   * 'error' event.
   */
  sendStateless(payload: string): boolean {
    if (this.#closed || !this.#opened || !this.#transport.connected) return false
    this.#transport.send(encodeFrame({ kind: FRAME_KINDS.STATELESS, document: this.name, payload }), this.name)
    return true
  }

  whenSaved(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve()
    return new Promise(resolve => this.#savedWaiters.push(resolve))
  }

  /** Stop syncing this document; the others on the socket keep running. */
  close(): void {
    if (this.#closed) return
    if (this.#openSent && this.#transport.connected) {
      this.#transport.send(encodeFrame({ kind: FRAME_KINDS.CLOSE, document: this.name }), this.name)
    }
    this.#closed = true
    this.#opened = false
    this.#cancelRetry()
    this.#cancelRefresh()
    this.#tabs?.close()
    // other tabs may adopt what this handle leaves unsent, once its last save is in the store
    const store = this.#store
    if (store?.release !== undefined) {
      void (this.#persisting ?? Promise.resolve()).finally(() => store.release!(this.name, this.#writer))
    }
    this.#setStatus('closed')
    this.doc.off('update', this.#onLocalUpdate)
    this.awareness.off('update', this.#onLocalAwareness)
    this.presence.destroy()
    this.undoManager?.destroy()
    this.awareness.destroy()
    this.#transport.onHandleClosed(this)
  }

  get isClosed(): boolean {
    return this.#closed
  }

  /** @internal the socket is up (after WELCOME): ask the server to open the document. */
  async _connect(): Promise<void> {
    if (this.#closed) return
    this.#cancelRetry()
    // what the offline store kept must be in the document before the server sees our state vector
    await this.#ready
    // and what tabs that went away left unsent is ours to send
    await this.#adoptOrphans()
    if (this.#closed || this.#openSent) return
    this.#setStatus('connecting')
    let token: string
    try {
      token = await this.#transport.tokenFor(this.name)
    } catch (err) {
      // e.g. the application's token endpoint is briefly down: report, then try again
      this.emit('error', { code: 'CONCORD_ERR_CLIENT_TOKEN', message: `getToken failed: ${(err as Error)?.message ?? String(err)}`, seq: 0, closed: true })
      this.#scheduleReopen()
      return
    }
    if (this.#closed || !this.#transport.connected || this.#openSent) return
    this.#transport.send(encodeFrame({
      kind: FRAME_KINDS.OPEN, document: this.name, token, stateVector: Y.encodeStateVector(this.doc),
    }), this.name)
    this.#openSent = true
  }

  /** @internal the client's connection has been down for a while (true) or works again (false). */
  _setOffline(offline: boolean): void {
    if (this.#offline === offline || this.#closed) return
    this.#offline = offline
    this.emit(offline ? 'offline' : 'online')
  }

  /** @internal the socket went away. */
  _disconnected(): void {
    this.#opened = false
    this.#openSent = false
    this.#cancelRetry()
    this.#cancelRefresh()
    if (this.#closed || this.status === 'error') return
    this.#setStatus('connecting')
    // others' presence is unknown while offline (no ghost cursors)
    const others = [...this.awareness.getStates().keys()].filter(id => id !== this.doc.clientID)
    if (others.length > 0) removeAwarenessStates(this.awareness, others, REMOTE)
  }

  /** @internal a frame for this document. */
  _receive(frame: Frame): void {
    if (this.#closed) return
    switch (frame.kind) {
      case FRAME_KINDS.OPENED:
        // updates made from here on stay queued until SYNC_STEP1, so that the
        // server receives everything unacked in order (no gaps it must hold back)
        this.role = frame.role
        this.#gotStep1 = false
        this.#gotStep2 = false
        this.#setStatus('syncing')
        return
      case FRAME_KINDS.SYNC_STEP2:
        if (!this.#applyRemote(frame.update)) return
        this.#gotStep2 = true
        this.#maybeSynced()
        return
      case FRAME_KINDS.SYNC_STEP1:
        this.#opened = true
        this.#resend(frame.stateVector)
        this.#sendLocalAwareness()
        this.#gotStep1 = true
        this.#maybeSynced()
        return
      case FRAME_KINDS.UPDATE:
        this.#applyRemote(frame.update)
        return
      case FRAME_KINDS.AWARENESS:
        applyAwarenessUpdate(this.awareness, frame.update, REMOTE)
        return
      case FRAME_KINDS.ACK:
        this.#acked(frame.ranges)
        return
      case FRAME_KINDS.REPLICATED:
        this.#replicatedIn(frame.ranges, frame.regions)
        return
      case FRAME_KINDS.STATELESS:
        this.emit('stateless', frame.payload)
        return
      case FRAME_KINDS.AUTH_STATE: {
        const changed = this.role !== null && this.role !== frame.role
        this.role = frame.role
        this.#scheduleRefresh(frame.expiresInMs)
        if (changed) this.emit('role', frame.role)
        return
      }
      case FRAME_KINDS.ERROR:
        // only a definitive refusal of that very update ends its wait; any other error
        // (storage failure, document reset, not open) leaves it pending for the re-send
        if (frame.seq > 0 && !frame.closed && REFUSALS.has(frame.code)) {
          this.#settle([frame.seq])
          this.#notifySaved()
          // its content stays in the local document and would be offered again on every
          // re-open; stop re-opening by ourselves rather than loop (the application decides)
          if (frame.code === 'CONCORD_ERR_UPDATE_MALFORMED') this.#halted = true
          // our Yjs client id belongs to another user in this document (two replicas drew the same
          // one): write under a new one from now on; the refused changes stay only in this copy
          if (frame.code === 'CONCORD_ERR_UPDATE_FOREIGN_CLIENT') this.#takeNewClientId()
        }
        if (frame.closed) {
          this.#opened = false
          this.#openSent = false
          this.#setStatus('error')
        }
        this.emit('error', { code: frame.code, message: frame.message, seq: frame.seq, closed: frame.closed })
        // over the rate limit: what was refused is still pending; send it again after a pause
        if ((frame.code === 'CONCORD_ERR_LIMIT_RATE' || frame.code === 'CONCORD_ERR_UPDATE_OUT_OF_ORDER' || frame.code === 'CONCORD_ERR_LIMIT_UPDATE_CHECKS') && !frame.closed) this.#scheduleResend()
        if (frame.closed) this.#cancelRefresh()
        // an expired token: open again, which asks getToken() for a fresh one
        const reopen = frame.code === 'CONCORD_ERR_AUTH_EXPIRED' || (isErrorCode(frame.code) && ERROR_CODES[frame.code].retryable)
        if (frame.closed && !this.#halted && reopen) {
          // e.g. a storage failure: open again after a while and re-send what is unacked
          this.#scheduleReopen()
        }
        return
      default:
        return
    }
  }

  /** @internal a chunk of a large frame of this document arrived or left. */
  _progress(progress: TransferProgress): void {
    if (!this.#closed) this.emit('progress', progress)
  }

  /** @internal re-open after a document-scoped error that closed it (e.g. a retryable one). */
  _reopen(): void {
    if (this.#closed || this.#opened || this.#openSent || !this.#transport.connected) return
    void this._connect()
  }

  #scheduleReopen(): void {
    this.#cancelRetry()
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null
      this._reopen()
    }, this.#transport.retryDelayMs(this.#retryAttempt++))
  }

  #scheduleResend(): void {
    if (this.#resendTimer !== null) return
    this.#resendTimer = setTimeout(() => {
      this.#resendTimer = null
      if (this.#closed || !this.#opened || !this.#transport.connected || this.role === 'read') return
      for (const [seq, update] of [...this.#pending]) this.#sendUpdate(seq, update)
    }, this.#transport.retryDelayMs(this.#resendAttempt++))
  }

  /** Ask getToken() for a fresh token and send it (AUTH) before the current one expires. */
  #scheduleRefresh(expiresInMs: number): void {
    this.#cancelRefresh()
    if (expiresInMs <= 0) return
    // (setTimeout holds at most 2^31 - 1 ms; a longer wait would fire at once)
    const delay = Math.min(expiresInMs * 0.8, 2 ** 31 - 1)
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = null
      void this.#refresh()
    }, delay)
  }

  async #refresh(): Promise<void> {
    let token: string
    try {
      token = await this.#transport.tokenFor(this.name)
    } catch (err) {
      this.emit('error', { code: 'CONCORD_ERR_CLIENT_TOKEN', message: `getToken failed: ${(err as Error)?.message ?? String(err)}`, seq: 0, closed: false })
      return
    }
    if (this.#closed || !this.#opened || !this.#transport.connected) return
    this.#transport.send(encodeFrame({ kind: FRAME_KINDS.AUTH, document: this.name, token }), this.name)
  }

  #cancelRefresh(): void {
    if (this.#refreshTimer !== null) clearTimeout(this.#refreshTimer)
    this.#refreshTimer = null
    if (this.#resendTimer !== null) clearTimeout(this.#resendTimer)
    this.#resendTimer = null
  }

  #cancelRetry(): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    this.#retryTimer = null
  }

  /** Forget these pending seqs and, transitively, the ones they carried; returns all of them. */
  #settle(seqs: number[]): number[] {
    const done: number[] = []
    const work = [...seqs]
    while (work.length > 0) {
      const seq = work.pop()!
      if (this.#pending.delete(seq)) done.push(seq)
      const covered = this.#covers.get(seq)
      if (covered !== undefined) {
        this.#covers.delete(seq)
        work.push(...covered)
      }
    }
    if (done.length > 0) this.#persist()
    return done
  }

  /**
   * After (re)opening: send one update with everything the server lacks (our
   * unacked updates, and anything it lost that we hold), before anything new.
   * Its ack also settles every older pending update, whose content it carries.
   * With nothing pending and nothing missing, nothing is sent.
   */
  #resend(serverStateVector: Uint8Array): void {
    if (this.role === 'read') {
      // nothing of ours can be saved: say so once and stop waiting for it
      if (this.#pending.size > 0) {
        const dropped = this.#settle([...this.#pending.keys()])
        this.emit('error', {
          code: 'CONCORD_ERR_AUTH_FORBIDDEN', seq: 0, closed: false,
          message: `this session may only read; ${dropped.length} local update(s) were not sent and stay only in this copy`,
        })
        this.#notifySaved()
      }
      return
    }
    const diff = this.#ownChanges(Y.encodeStateAsUpdate(this.doc, serverStateVector))
    // what was acked on an earlier connection but not reported replicated: this connection will
    // never report those seqs, so the update sent now stands for them (sent even when the server
    // lacks nothing: it is acked once what it carries is durable, and reported like any update)
    const unreplicated = [...this.#unreplicated]
    // the diff always carries the whole delete set; with no new items and nothing pending there is nothing to send
    if (this.#pending.size === 0 && hasNoStructs(diff) && unreplicated.length === 0) return
    if (this.#tooLarge(diff)) {
      // too large as one message: re-send the pending updates one by one
      for (const [seq, update] of [...this.#pending]) {
        if (this.#tooLarge(update)) this.#refuseLocally(seq, update)
        else this.#sendUpdate(seq, update)
      }
      this.#notifySaved()
      return
    }
    const covered = [...this.#pending.keys()]
    const seq = this.#nextSeq++
    this.#pending.set(seq, diff)
    if (covered.length > 0) this.#covers.set(seq, covered)
    if (unreplicated.length > 0) {
      for (const u of unreplicated) this.#unreplicated.delete(u)
      this.#replicatedCovers.set(seq, unreplicated)
    }
    this.#sendUpdate(seq, diff)
  }

  /**
   * What the server lacks of our own changes: items under other client ids are their writers' to
   * send (the server refuses new items under another user's client id, and one refusal would
   * settle our own changes with it). Ours: this document's client id and those of our pending updates.
   */
  #ownChanges(diff: Uint8Array): Uint8Array {
    const own = new Set<number>([this.doc.clientID])
    for (const update of this.#pending.values()) {
      try {
        for (const client of Y.parseUpdateMeta(update).to.keys()) own.add(client)
      } catch { /* sent as it is; the server reports it */ }
    }
    const skip = new Map<number, number>()
    for (const [client, end] of Y.parseUpdateMeta(diff).to) if (!own.has(client)) skip.set(client, end)
    if (skip.size === 0) return diff
    return Y.diffUpdate(diff, encodeStateVectorOf(skip))
  }

  /** Synced: we hold the server's state (step 2) and it has been sent ours (step 1 answered). */
  #maybeSynced(): void {
    if (!this.#gotStep1 || !this.#gotStep2 || this.status !== 'syncing') return
    this.#retryAttempt = 0
    this.#setStatus('synced')
    this.emit('synced')
  }

  #applyRemote(update: Uint8Array): boolean {
    try {
      Y.applyUpdate(this.doc, update, REMOTE)
      this.#persist()
      return true
    } catch (err) {
      this.emit('error', { code: 'CONCORD_ERR_UPDATE_MALFORMED', message: `an update from the server could not be applied: ${(err as Error).message}`, seq: 0, closed: false })
      return false
    }
  }

  #notifySaved(): void {
    if (this.#pending.size > 0 || this.#savedWaiters.length === 0) return
    const waiters = this.#savedWaiters
    this.#savedWaiters = []
    for (const w of waiters) w()
  }

  #acked(ranges: SeqRange[]): void {
    const seqs: number[] = []
    for (const r of ranges) {
      // ranges name what the server saved; only seqs still pending count (an ack may repeat)
      if (r.to - r.from > this.#pending.size) {
        for (const seq of [...this.#pending.keys()]) if (seq >= r.from && seq <= r.to && this.#pending.delete(seq)) seqs.push(seq)
      } else {
        for (let seq = r.from; seq <= r.to; seq++) if (this.#pending.delete(seq)) seqs.push(seq)
      }
    }
    // a resync update's ack also settles the older updates it carried (transitively)
    for (const seq of seqs.slice()) {
      if (!this.#covers.has(seq)) continue
      for (const c of this.#settle([seq])) if (c !== seq) seqs.push(c)
    }
    if (seqs.length > 0) {
      this.#resendAttempt = 0
      this.#persist()
      this.#trackReplication(seqs)
      this.emit('ack', seqs)
    }
    if (seqs.length > 0 && this.#pending.size === 0) this.emit('saved')
    this.#notifySaved()
  }

  /** Acked seqs wait for REPLICATED (those a resend covered settle with it). */
  #trackReplication(seqs: number[]): void {
    if (!this.#tracksReplication) return
    for (const seq of seqs) this.#unreplicated.add(seq)
    // bounded: a server that never replicates (a single region) must not make this grow for ever
    while (this.#unreplicated.size > MAX_UNREPLICATED) {
      const oldest = this.#unreplicated.values().next().value as number
      this.#unreplicated.delete(oldest)
      this.#replicatedCovers.delete(oldest)
    }
  }

  #replicatedIn(ranges: SeqRange[], regions: number): void {
    const needed = this.#transport.replicatedRegions ?? null
    if (needed === null || regions < needed) return
    let settled = 0
    const work: number[] = []
    for (const r of ranges) {
      if (r.to - r.from > this.#unreplicated.size) {
        for (const seq of [...this.#unreplicated]) if (seq >= r.from && seq <= r.to) work.push(seq)
      } else {
        for (let seq = r.from; seq <= r.to; seq++) if (this.#unreplicated.has(seq)) work.push(seq)
      }
    }
    while (work.length > 0) {
      const seq = work.pop()!
      if (this.#unreplicated.delete(seq)) settled++
      const covered = this.#replicatedCovers.get(seq)
      if (covered !== undefined) {
        this.#replicatedCovers.delete(seq)
        work.push(...covered)
      }
    }
    if (settled > 0) this.#notifyReplicated()
  }

  #notifyReplicated(): void {
    if (this.replicated !== true) return
    this.emit('replicated')
    const waiters = this.#replicatedWaiters
    this.#replicatedWaiters = []
    for (const w of waiters) w()
  }

  #tooLarge(update: Uint8Array): boolean {
    return update.length + 64 + this.name.length * 3 > this.#transport.maxMessageBytes
  }

  /** An update the server would refuse for its size (closing the socket): keep it local only. */
  #refuseLocally(seq: number, update: Uint8Array): void {
    if (seq > 0) this.#settle([seq])
    this.emit('error', {
      code: 'CONCORD_ERR_MESSAGE_TOO_LARGE', seq, closed: false,
      message: `a local update of ${update.length} bytes exceeds the server's limit of ${this.#transport.maxMessageBytes} bytes; it was not sent`,
    })
  }

  #track(update: Uint8Array): void {
    if (this.#tooLarge(update)) {
      this.#refuseLocally(0, update)
      return
    }
    const seq = this.#nextSeq++
    this.#pending.set(seq, update)
    this.#persist()
    if (this.#pending.size === 1) this.emit('unsaved')
    if (this.#opened && this.#transport.connected) this.#sendUpdate(seq, update)
  }

  #sendUpdate(seq: number, update: Uint8Array): void {
    this.#transport.send(encodeFrame({ kind: FRAME_KINDS.UPDATE, document: this.name, seq, update }), this.name)
  }

  readonly #onLocalUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === REMOTE || origin === RESTORED || this.#closed) return
    // another tab's edit: shown and kept here, saved and sent by that tab
    if (origin === FROM_TAB) {
      this.#persist()
      return
    }
    this.#track(update)
    this.#tabs?.broadcast(update)
  }

  readonly #onLocalAwareness = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown): void => {
    if (origin === REMOTE || !this.#opened || !this.#transport.connected) return
    const changed = added.concat(updated, removed)
    this.#transport.send(encodeFrame({
      kind: FRAME_KINDS.AWARENESS, document: this.name, update: encodeAwarenessUpdate(this.awareness, changed),
    }), this.name)
  }

  /**
   * Write under a new Yjs client id from now on, and show presence under it (Yjs and y-protocols
   * use one id for both): the old one's presence is removed for everyone.
   */
  #takeNewClientId(): void {
    const local = this.awareness.getLocalState()
    const old = this.awareness.clientID
    const id = new Y.Doc().clientID
    this.doc.clientID = id
    removeAwarenessStates(this.awareness, [old], 'local')
    ;(this.awareness as { clientID: number }).clientID = id
    if (local !== null) this.awareness.setLocalState(local)
  }

  #sendLocalAwareness(): void {
    if (this.awareness.getLocalState() === null) return
    this.#transport.send(encodeFrame({
      kind: FRAME_KINDS.AWARENESS, document: this.name, update: encodeAwarenessUpdate(this.awareness, [this.doc.clientID]),
    }), this.name)
  }

  #setStatus(status: DocStatus): void {
    if (this.status === status) return
    this.status = status
    this.emit('status', status)
  }
}

/** Errors that refuse one update for good (it will never be accepted). */
const REFUSALS = new Set(['CONCORD_ERR_AUTH_FORBIDDEN', 'CONCORD_ERR_UPDATE_MALFORMED', 'CONCORD_ERR_LIMIT_DOCUMENT_SIZE', 'CONCORD_ERR_UPDATE_FOREIGN_CLIENT'])

/** A Yjs v1 update starts with the number of clients whose structs it carries. */
function hasNoStructs(update: Uint8Array): boolean {
  return update.length === 0 || update[0] === 0
}

function randomWriterId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto
  return c?.randomUUID !== undefined ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
}
