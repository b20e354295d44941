import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import { encodeStateVectorOf, ConcordError, inspectUpdate, type UpdateInspection } from '@concord/protocol'
import type { Logger } from 'pino'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { DocumentSession } from './document-session.js'
import { SharedMessage } from './shared-message.js'
import type { Backplane } from '../backplane/backplane.js'
import { secondsSince, type ServerMetrics } from '../ops/metrics.js'
import type { DocumentRecording, Recorder } from '../ops/recording/recorder.js'
import { endSpan, startSpan } from '../ops/tracing.js'
import { foldState } from '../storage/fold.js'
import { randomUUID } from 'node:crypto'
import { decodeAwarenessEntries, encodeAwarenessEntries, stampUser, stampedUser, type AwarenessEntry } from './presence-filter.js'
import type { StoredVersion } from '../storage/storage-adapter.js'
import { checkItemOrder, trialItemOrder } from './item-order.js'
import { LARGE_DOCUMENT_BYTES, SyncReplies, type SyncReply } from './sync-replies.js'
import type { MergeWorker } from './merge-worker.js'

export { LARGE_DOCUMENT_BYTES } from './sync-replies.js'

export interface LiveDocumentOptions {
  storage: StorageAdapter
  logger: Logger
  presenceThrottleMs: number
  compactEveryUpdates: number
  compactEveryBytes: number
  /** Updates that would make the document larger than this (approximately) are refused. */
  maxDocumentBytes?: number
  /** Largest presence (awareness) state of one client, as JSON bytes (default 64 KiB). */
  maxPresenceBytes?: number
  /** Bytes of document copies a second for checking updates by trial (default 8 MiB; a burst of four seconds' worth). */
  maxUpdateCheckBytesPerSecond?: number
  /** Called once when the document can no longer guarantee durability (storage failed). */
  onFailed?: (document: LiveDocument, error: unknown) => void
  /** Other nodes: what this node applies is published, what they apply is applied here. */
  backplane?: Backplane
  metrics?: ServerMetrics
  /** Records the inbound messages of the documents it chooses (`concord replay` re-runs them). */
  recorder?: Recorder
  history?: HistoryOptions
  /** Where diffs and merges of a large document's kept state run for sync replies (without it: on the main thread). */
  mergeWorker?: MergeWorker
}

export type HistoryEvent = 'document.changed' | 'document.created' | 'version.created'

export interface HistoryOptions {
  /** A checkpoint is taken once the first change after the last version is this old (and when the last session leaves). 0: only when the last session leaves. */
  checkpointEveryMs: number
  /** Checkpoints older than this are pruned when a new version is saved (named versions stay). 0: keep all. */
  retentionMs: number
  /** The last editor leaving takes no checkpoint within this long of the previous version (default 60 s): the log keeps those changes. */
  minCheckpointIntervalMs?: number
  /** document.changed (each durable update), document.created (its first), version.created. */
  onEvent?: (event: HistoryEvent, data: Record<string, unknown> & { document: string }) => void
}

interface Incoming {
  session: DocumentSession | null
  seq: number
  update: Uint8Array
  /** performance.now() when it reached the document */
  at: number
}

interface Outgoing {
  update: Uint8Array
  origin: DocumentSession | null
}

/**
 * One loaded document: its `Y.Doc`, its presence, its sessions, and the edit
 * path of ARCHITECTURE.md section 2 (apply, fan-out encoded once and coalesced
 * per event-loop turn, group-committed append, ack only once durable).
 */
export class LiveDocument {
  readonly name: string
  readonly #ydoc: Y.Doc
  /**
   * A large document loaded from storage is integrated into its `Y.Doc` only when
   * something needs the Y.Doc, or right after the first replies went out: a
   * joining client that holds nothing gets the stored bytes as they are, so
   * the first reader after a restart does not wait for Yjs to integrate them.
   */
  #unintegrated: Uint8Array[] | null = null
  #integrationWaiters: (() => void)[] = []
  readonly awareness: Awareness
  readonly sessions = new Set<DocumentSession>()
  readonly #opts: LiveDocumentOptions
  readonly #log: Logger

  #outbox: Outgoing[] = []
  #incoming: Incoming[] = []
  #trialTokens = Number.POSITIVE_INFINITY
  #trialAt = 0
  #incomingScheduled = false
  /** The state vector before the last transaction (from Yjs's afterTransaction). */
  #beforeState: Map<number, number> | null = null
  #fanoutScheduled = false
  #changed = false

  #presenceDirty = new Set<number>()
  /** Changed presence of this node's own sessions: what the other nodes get. */
  #presenceLocalDirty = new Set<number>()
  #presenceTimer: NodeJS.Timeout | null = null
  #lastPresenceFlush = 0
  readonly #awarenessOwner = new Map<number, DocumentSession>()
  /** Awareness client ids of other nodes' sessions (their states carry their stamped user). */
  readonly #remoteAwareness = new Set<number>()

  #inFlight = 0
  #lastAppend: Promise<unknown> = Promise.resolve()
  #flushWaiters: (() => void)[] = []
  #lastDurableSeq = 0
  #tailUpdates = 0
  #tailBytes = 0
  #compacting = false
  /** Settles when the compaction in flight (if any) has finished, successfully or not. */
  #compactDone: Promise<void> | null = null
  #compactTimer: NodeJS.Timeout | null = null
  /** When the last large update arrived: compaction waits a little after one. */
  #lastLargeAt = 0
  #lastUpdateAt = 0
  /** The encoded size of the document, approximately: its state at load or compaction plus every update since. */
  #approxBytes = 0
  /**
   * The answers to sync step 1, and for large documents an encoded state taken at load, at
   * compaction or at the first full reply, with every update applied since: together the whole
   * document, so peers are answered without encoding it again (see `SyncReplies`).
   */
  readonly #replies: SyncReplies
  #failed = false
  /** Why the document refuses updates when it was closed on purpose (deleted), not by a failure. */
  #closedBy: ConcordError | null = null
  /** This load's recording, when the recorder chose the document. */
  #recording: DocumentRecording | null = null
  #updatesApplied = 0
  /** Since the last version: durable updates, their authors, and when the first of them was stored. */
  #changesSinceVersion = 0
  #authorsSinceVersion = new Set<string>()
  #firstChangeSinceVersionAt = 0
  /** A version being saved (unload waits for it). */
  #versionSaving: Promise<unknown> | null = null
  /** Loaded with nothing stored: its first durable update creates it. */
  #isNew = false
  /** When this node last saved a version of the document (ms since the epoch; 0: not since the load). */
  #lastVersionAt = 0
  /** Yjs client ids whose author this node has recorded, and those waiting to be. */
  readonly #knownClients = new Set<number>()
  /**
   * Who owns each Yjs client id of the document: the user who first wrote under it (from the
   * authors table, the log tail's writers, and other nodes' updates). Only its owner may add
   * items under a client id (ARCHITECTURE.md section 3): another writer could otherwise take the
   * clocks its owner is about to use, and the owner's re-sent edit would be skipped as known.
   */
  readonly #owners = new Map<number, string>()
  /** The authors being written (compaction waits for them: the log tail is their fallback). */
  #authorsWrite: Promise<void> = Promise.resolve()
  #pendingAuthors: { client: number; userId: string }[] = []
  #destroyed = false
  #unsubscribe: (() => void) | null = null

  private constructor(name: string, ydoc: Y.Doc, opts: LiveDocumentOptions) {
    this.name = name
    this.#ydoc = ydoc
    this.#opts = opts
    this.#log = opts.logger
    this.#replies = new SyncReplies(ydoc, {
      ydoc: () => this.ydoc, drain: () => this.#drainIncoming(), approxBytes: () => this.#approxBytes,
      compactEveryBytes: opts.compactEveryBytes, compactEveryUpdates: opts.compactEveryUpdates,
      metrics: opts.metrics, worker: opts.mergeWorker,
    })
    this.#ydoc.on('afterTransaction', (tr: Y.Transaction) => {
      this.#beforeState = tr.beforeState
      if (tr.deleteSet.clients.size > 0 || !sameStateVector(tr.beforeState, tr.afterState)) this.#changed = true
    })
    this.awareness = new Awareness(this.#ydoc)
    this.awareness.setLocalState(null)
    this.awareness.on('update', this.#onAwarenessUpdate)
  }

  /** Load a document: one snapshot plus the log tail after it. */
  static async load(name: string, opts: LiveDocumentOptions): Promise<LiveDocument> {
    // the stream position is taken before the load, so no other node's update falls between them
    const span = startSpan('concord.document.load', { 'concord.document': name })
    let from: string | null
    let loaded: Awaited<ReturnType<StorageAdapter['load']>>
    let authors: Map<number, string>
    try {
      from = opts.backplane !== undefined ? await opts.backplane.position(name) : null
      ;[loaded, authors] = await Promise.all([opts.storage.load(name), opts.storage.loadAuthors(name)])
    } catch (err) {
      endSpan(span, err)
      throw err
    }
    endSpan(span, undefined, { 'concord.snapshot_bytes': loaded.snapshot?.length ?? 0, 'concord.tail_updates': loaded.updates.length })
    const ydoc = new Y.Doc({ gc: true })
    const parts: Uint8Array[] = []
    if (loaded.snapshot !== null) parts.push(loaded.snapshot)
    for (const u of loaded.updates) parts.push(u.update)
    // The snapshot and the tail are applied one after the other in one transaction:
    // Y.mergeUpdates would be faster for a short tail, but grows faster than linearly
    // with a long one (a tail left by a burst can hold tens of thousands of updates).
    const lazy = loaded.snapshot !== null && loaded.snapshot.length >= LARGE_DOCUMENT_BYTES
    const doc = new LiveDocument(name, ydoc, opts)
    doc.#learnOwners(authors, loaded.updates)
    if (parts.length > 0) {
      doc.#unintegrated = parts
      if (lazy) {
        // after the replies to whoever is waiting for this load (they run in microtasks)
        setImmediate(() => { if (!doc.#destroyed) doc.#contained(() => doc.#integrate(), 'CONCORD_ERR_DOC_LOAD_FAILED') })
      } else {
        doc.#integrate()
      }
    }
    doc.#lastDurableSeq = loaded.updates.length ? loaded.updates[loaded.updates.length - 1]!.seq : loaded.snapshotSeq
    doc.#isNew = loaded.snapshot === null && loaded.updates.length === 0
    doc.#tailUpdates = loaded.updates.length
    doc.#tailBytes = loaded.updates.reduce((n, u) => n + u.update.length, 0)
    if (loaded.snapshot !== null) doc.#setBase(loaded.snapshot, loaded.updates.map(u => u.update))
    doc.#approxBytes = (loaded.snapshot?.length ?? 0) + doc.#tailBytes
    if (opts.recorder !== undefined) doc.#recording = opts.recorder.start(name, () => Y.encodeStateAsUpdate(doc.ydoc))
    if (opts.backplane !== undefined && from !== null) {
      doc.#recording?.open(REMOTE_SESSION, { user: null, role: 'write', protocol: 'native' })
      doc.#unsubscribe = opts.backplane.subscribe(name, from, {
        update: (update, writer) => doc.applyRemote(update, writer ?? null),
        resync: () => { void doc.resyncFromStorage() },
        presence: update => doc.applyRemotePresence(update),
      })
    }
    doc.#maybeCompact()
    return doc
  }

  /** The document's Y.Doc (integrating a lazily loaded document first). */
  get ydoc(): Y.Doc {
    if (this.#unintegrated !== null) this.#integrate()
    return this.#ydoc
  }

  #integrate(): void {
    const parts = this.#unintegrated
    if (parts === null) return
    this.#unintegrated = null
    // The snapshot alone, then the tail merged in groups: applying a long tail update by update
    // costs Yjs a merge of its pending state per update when many wait for missing changes
    // (quadratic), and one merge of the whole tail is superlinear too.
    const [first, ...tail] = parts
    this.#ydoc.transact(() => {
      Y.applyUpdate(this.#ydoc, first!)
      for (let i = 0; i < tail.length; i += MERGE_GROUP) {
        const group = tail.slice(i, i + MERGE_GROUP)
        Y.applyUpdate(this.#ydoc, group.length === 1 ? group[0]! : Y.mergeUpdates(group))
      }
    })
    const waiters = this.#integrationWaiters
    this.#integrationWaiters = []
    for (const fn of waiters) fn()
  }

  /**
   * The owners stored in the authors table, then the writers of the log tail in order (an update
   * is durable with its writer at once; its authors row is written a moment later).
   */
  #learnOwners(authors: Map<number, string>, tail: readonly { update: Uint8Array; userId: string | null }[]): void {
    for (const [client, userId] of authors) {
      this.#owners.set(client, userId)
      this.#knownClients.add(client)
    }
    for (const u of tail) {
      if (u.userId === null) continue
      let clients: Map<number, number>
      try {
        clients = Y.parseUpdateMeta(u.update).to
      } catch {
        continue
      }
      for (const client of clients.keys()) if (!this.#owners.has(client)) this.#owners.set(client, u.userId)
    }
  }

  /** The user who owns a Yjs client id in this document (undefined: nobody yet). */
  ownerOf(client: number): string | undefined {
    return this.#owners.get(client)
  }

  /**
   * Runs `fn` once the document is integrated into its Y.Doc: now, or right after a
   * lazily loaded document is (see `#unintegrated`). Used for what can wait a moment,
   * like the server's own sync step 1, so the stored bytes go out first.
   */
  whenIntegrated(fn: () => void): void {
    if (this.#unintegrated === null) fn()
    else this.#integrationWaiters.push(fn)
  }

  /**
   * Before the document leaves memory: everything is durable, and a log tail long
   * enough to compact is compacted now, so the next load reads a snapshot and a
   * short tail (a burst can outrun compaction while the document is open).
   */
  async settleForUnload(): Promise<void> {
    await this.whenFlushed()
    if (this.#versionSaving !== null) await this.#versionSaving
    if (this.#compactDone !== null) await this.#compactDone
    if (this.#failed || this.#destroyed || this.#tailUpdates < MIN_UPDATES_TO_COMPACT_BY_BYTES) return
    if (this.#tailUpdates < this.#opts.compactEveryUpdates && this.#tailBytes < this.#opts.compactEveryBytes) return
    if (this.#compactTimer !== null) {
      clearTimeout(this.#compactTimer)
      this.#compactTimer = null
      this.#compacting = false
    }
    if (this.#compacting) return
    this.#compacting = true
    this.#compact()
    if (this.#compactDone !== null) await this.#compactDone
  }

  get failed(): boolean {
    return this.#failed
  }

  /** Client updates that changed the document since it was loaded on this node. */
  get updatesApplied(): number {
    return this.#updatesApplied
  }

  /** When an update last changed the document on this node (ms since the epoch; 0: not since the load). */
  get lastChangeAt(): number {
    return this.#lastUpdateAt
  }

  /** The encoded size of the document, approximately. */
  get approxBytes(): number {
    return this.#approxBytes
  }

  /** The whole document as one Yjs update (what is queued is applied first; the last encode is reused while nothing changed). */
  encodeState(): Uint8Array {
    return this.#replies.encodeWhole()
  }

  /**
   * An update from the server side (the admin API): applied, stored and sent to every session
   * like a client's. Resolves once it is durable, with whether it changed the document;
   * rejects with the refusal a client would get.
   */
  applyServerUpdate(update: Uint8Array, userId: string | null): Promise<{ changed: boolean }> {
    const before = this.#updatesApplied
    return new Promise((resolve, reject) => {
      this.#recording?.open('server', { user: userId, role: 'admin', protocol: 'native' })
      const origin: DocumentSession = {
        id: 'server', userId, role: 'admin', awarenessClientIds: new Set(), protocol: 'server', openedAt: Date.now(),
        sendUpdate: () => undefined, sendUpdates: () => undefined, sendAwareness: () => undefined, accessChanged: () => undefined,
        ack: () => resolve({ changed: this.#updatesApplied > before }),
        documentError: error => reject(error),
      }
      this.applyUpdate(origin, 1, update)
    })
  }

  /**
   * The document is being deleted: every session is told (closed), nothing more is applied or
   * compacted, and the promise resolves once what was applied before is durable and no
   * compaction is running, so the caller can delete the stored log.
   */
  async closeForDeletion(error: ConcordError): Promise<void> {
    this.#drainIncoming()
    this.#closedBy = error
    this.#failed = true
    if (this.#compactTimer !== null) {
      clearTimeout(this.#compactTimer)
      this.#compactTimer = null
    }
    for (const s of [...this.sessions]) s.documentError(error, 0, true)
    await this.whenFlushed()
    if (this.#compactDone !== null) await this.#compactDone
  }

  /** Updates not yet durable. */
  get appendsInFlight(): number {
    return this.#inFlight
  }

  /** Log entries after the latest snapshot (what the next load would replay). */
  get tail(): { updates: number; bytes: number } {
    return { updates: this.#tailUpdates, bytes: this.#tailBytes }
  }

  addSession(session: DocumentSession): void {
    this.sessions.add(session)
    this.#recording?.open(session.id, { user: session.userId, role: session.role, protocol: session.protocol === 'y-websocket' ? 'y-websocket' : 'native' })
  }

  removeSession(session: DocumentSession): void {
    if (!this.sessions.delete(session)) return
    this.#recording?.close(session.id)
    // the last editor left: a checkpoint of what they did
    const history = this.#opts.history
    if (this.sessions.size === 0 && this.#changesSinceVersion > 0 && history !== undefined && !this.#failed && !this.#destroyed &&
      Date.now() - this.#lastVersionAt >= (history.minCheckpointIntervalMs ?? 60_000)) {
      this.#checkpoint()
    }
    if (session.awarenessClientIds.size > 0) {
      const ids = [...session.awarenessClientIds].filter(id => this.#awarenessOwner.get(id) === session)
      session.awarenessClientIds.clear()
      if (ids.length > 0) removeAwarenessStates(this.awareness, ids, 'session-closed')
    }
  }

  stateVector(): Uint8Array {
    this.#drainIncoming()
    return Y.encodeStateVector(this.ydoc)
  }

  /** What a peer with `stateVector` is missing, as one update. */
  diff(stateVector?: Uint8Array): Uint8Array {
    this.#drainIncoming()
    return Y.encodeStateAsUpdate(this.ydoc, stateVector)
  }

  /**
   * The answer to a peer's sync step 1, now and on this thread: `updates` to send first
   * (possibly none), then `step2` (see `SyncReplies.now`). Throws when the state vector
   * cannot be decoded.
   */
  syncReply(stateVector?: Uint8Array): SyncReply {
    return this.#replies.now(stateVector)
  }

  /**
   * The answer to a peer's sync step 1 as sessions send it: at once when it is kept or cheap,
   * later when a large document's diff is computed in the merge worker. It covers what the
   * document has applied now; a session that is (or is now made) one of `sessions` receives
   * everything applied after as updates. Throws when the state vector cannot be decoded.
   */
  prepareSyncReply(stateVector?: Uint8Array): SyncReply | Promise<SyncReply> {
    return this.#replies.prepare(stateVector)
  }

  #setBase(base: Uint8Array, since: Uint8Array[]): void {
    this.#replies.setBase(base, since)
  }

  #keepSince(update: Uint8Array): void {
    this.#replies.keep(update)
  }

  /**
   * The room's presence as one update: every client seen, with its current
   * state, or as removed. What a congested session gets instead of the
   * updates it missed.
   */
  presenceSnapshot(): Uint8Array | null {
    const ids = [...this.awareness.meta.keys()]
    return ids.length > 0 ? encodeAwarenessUpdate(this.awareness, ids) : null
  }

  /** All current presence states, or null when there are none. */
  awarenessSnapshot(): Uint8Array | null {
    const ids = [...this.awareness.getStates().keys()]
    return ids.length > 0 ? encodeAwarenessUpdate(this.awareness, ids) : null
  }

  /**
   * Queue an update from a connection. Everything queued while one socket read is
   * handled (a microtask later) is applied in one Yjs transaction and goes out as
   * one update: a fast writer's hundreds of small updates per read cost one
   * transaction, not hundreds. Reads of the document's state apply the queue first.
   */
  enqueueUpdate(session: DocumentSession | null, seq: number, update: Uint8Array): void {
    if (session !== null) this.#recording?.update(session.id, update)
    this.#incoming.push({ session, seq, update, at: performance.now() })
    if (this.#incomingScheduled) return
    this.#incomingScheduled = true
    queueMicrotask(this.#drainIncomingContained)
  }

  /**
   * The edit path. `seq` is the client's number for this update (0: no ack wanted).
   * The caller has checked that `session` may write.
   */
  applyUpdate(session: DocumentSession | null, seq: number, update: Uint8Array): void {
    this.#drainIncoming()
    if (session !== null) this.#recording?.update(session.id, update)
    const at = performance.now()
    const span = startSpan('concord.update.apply', { 'concord.document': this.name, 'concord.updates': 1 })
    this.#applyOne(session, seq, update, at)
    endSpan(span)
    this.#opts.metrics?.updateApply.observe(secondsSince(at))
  }

  readonly #drainIncoming = (): void => {
    this.#incomingScheduled = false
    const items = this.#incoming
    if (items.length === 0) return
    this.#incoming = []
    const start = performance.now()
    const span = startSpan('concord.update.apply', { 'concord.document': this.name, 'concord.updates': items.length })
    if (items.length === 1) this.#applyOne(items[0]!.session, items[0]!.seq, items[0]!.update, items[0]!.at)
    else this.#applyBatch(items)
    endSpan(span)
    this.#opts.metrics?.updateApply.observe(secondsSince(start))
  }

  /** Tell the sender its update was refused (and mark it refused in the recording). */
  #refuse(session: DocumentSession | null, error: ConcordError, seq: number, closed: boolean): void {
    if (session === null) return
    this.#recording?.refused(session.id, error.code)
    session.documentError(error, seq, closed)
  }

  /** The checks an update must pass before Yjs sees it; reports a refusal to the sender and returns null. */
  #admit(session: DocumentSession | null, seq: number, update: Uint8Array): UpdateInspection | null {
    if (this.#failed || this.#destroyed) {
      this.#refuse(session, this.#closedBy ?? new ConcordError('CONCORD_ERR_STORAGE_WRITE_FAILED', 'document is unavailable', { document: this.name }), seq, true)
      return null
    }
    const max = this.#opts.maxDocumentBytes
    if (max !== undefined && this.#approxBytes + update.length > max) {
      this.#refuse(session, new ConcordError('CONCORD_ERR_LIMIT_DOCUMENT_SIZE',
        `the document would exceed ${max} bytes; the update was not applied`, { document: this.name }), seq, false)
      return null
    }
    const inspection = inspectUpdate(update)
    if (inspection.problem !== null) {
      this.#refuse(session, new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', `update rejected: ${inspection.problem}`, { document: this.name }), seq, false)
      return null
    }
    // Deleting what the document does not have yet (clocks beyond its state) would be kept by Yjs
    // and applied whenever those clocks arrive: a writer could delete other people's future text
    // here, and only here. A client deletes only what it has, and sends its own inserts first.
    for (const [client, ranges] of inspection.deletes) {
      // what the update itself inserts may be deleted by it too (typed and erased offline)
      const state = Math.max(Y.getState(this.ydoc.store, client), inspection.ends.get(client) ?? 0)
      for (const r of ranges) {
        if (r.clock + r.len > state) {
          this.#refuse(session, new ConcordError('CONCORD_ERR_UPDATE_OUT_OF_ORDER',
            `the update deletes ${client}:${r.clock}+${r.len}, beyond what the document has of that client (${state}); send those changes first`, { document: this.name }), seq, false)
          return null
        }
      }
    }
    if (!this.#admitClients(session, seq, inspection, update)) return null
    return inspection
  }

  /**
   * Client-id ownership and missing dependencies (ARCHITECTURE.md section 3): new items only under
   * client ids the sender owns or claims now (items already known are duplicates and change
   * nothing), and nothing Yjs would hold back for missing changes (the poisoned-pending attack:
   * held-back items are integrated by someone else's later update). Claims of new client ids are
   * recorded here, before Yjs sees the update.
   */
  #admitClients(session: DocumentSession | null, seq: number, inspection: UpdateInspection, update: Uint8Array): boolean {
    const store = this.ydoc.store
    const userId = session?.userId ?? null
    let claims: number[] | null = null
    for (const [client, end] of inspection.ends) {
      const state = Y.getState(store, client)
      if (end <= state) continue
      const owner = this.#owners.get(client)
      // an identified user may not extend a client id whose writer is unknown (anonymous, or
      // written before ownership was recorded): it could be anyone's
      if (owner !== undefined ? owner !== userId : userId !== null && state > 0) {
        this.#refuse(session, new ConcordError('CONCORD_ERR_UPDATE_FOREIGN_CLIENT',
          `the update adds items under Yjs client id ${client}, which ${owner !== undefined ? 'belongs to another user' : 'was written by an unknown user'} in this document; use a new client id`, { document: this.name }), seq, false)
        return false
      }
      if (owner === undefined && userId !== null) (claims ??= []).push(client)
    }
    // nothing is held back: an update Yjs would keep waiting for missing changes is refused
    // (the JS client re-sends everything unacked after a pause; a y-websocket client reconnects
    // and sends its whole diff). What Yjs holds waits outside every check, is re-applied with each
    // later update, goes out in every full encode (a joiner's copy would then carry it back under
    // someone else's client id), and could be integrated by another user's update.
    const missing = this.#missingDependency(inspection)
    if (missing !== null) {
      this.#refuse(session, new ConcordError('CONCORD_ERR_UPDATE_OUT_OF_ORDER',
        `the update depends on changes the server does not have (Yjs client id ${missing.client} from clock ${missing.clock}); send those first`, { document: this.name }), seq, false)
      return false
    }
    // every new item between neighbours in order, or loaded afresh the document would differ
    const order = checkItemOrder(store, inspection.items)
    if (order.ok === 'trial' && !this.#mayTrial()) {
      this.#refuse(session, new ConcordError('CONCORD_ERR_LIMIT_UPDATE_CHECKS',
        'the update places items next to changes it does not carry, and this document has used its share of checks on a copy for now; send it again in a moment', { document: this.name }), seq, false)
      return false
    }
    const disorder = order.ok === true ? null : order.ok === false ? order.problem : trialItemOrder(this.ydoc, update, inspection.items)
    if (disorder !== null) {
      this.#refuse(session, new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', `update rejected: ${disorder}`, { document: this.name }), seq, false)
      return false
    }
    if (claims !== null) for (const client of claims) this.#owners.set(client, userId!)
    return true
  }

  /**
   * A trial copies the document: a token bucket of copied bytes per second (a burst of four
   * seconds' worth) keeps a writer who forces trials from spending the node's CPU on them.
   */
  #mayTrial(): boolean {
    const rate = this.#opts.maxUpdateCheckBytesPerSecond ?? 8 * 1024 * 1024
    const now = performance.now()
    this.#trialTokens = Math.min(4 * rate, this.#trialTokens + (now - this.#trialAt) / 1000 * rate)
    this.#trialAt = now
    if (this.#trialTokens <= 0) return false
    // a document larger than the burst waits the burst's time after each of its trials
    this.#trialTokens = Math.max(this.#trialTokens - this.#approxBytes, -4 * rate)
    return true
  }

  #applyOne(session: DocumentSession | null, seq: number, update: Uint8Array, at: number): void {
    const inspection = this.#admit(session, seq, update)
    if (inspection === null) return
    const before = this.#pending()
    this.#changed = false
    try {
      Y.applyUpdate(this.ydoc, update, session)
    } catch (err) {
      // A Yjs failure mid-integration: the in-memory state can no longer be trusted
      // to match the log, so the document is reloaded from the log.
      // The sender is told its update was refused, so a well-behaved client stops
      // re-sending it instead of resetting the room over and over.
      this.#refuse(session, new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', `update could not be integrated: ${errorMessage(err)}`, { document: this.name }), seq, false)
      this.#fail(err, 'CONCORD_ERR_DOC_RESET')
      return
    }
    const pendingChanged = this.#pendingChangedSince(before)
    const changed = this.#changed || pendingChanged
    if (!changed) {
      // nothing new: ack once whatever carried this content before is durable
      if (seq > 0 && session !== null) this.#afterBarrier(() => this.#ack(session, seq, at))
      return
    }
    // What others receive is what this document integrated. An update that fully
    // integrates (the common case) is forwarded as received. When Yjs held something
    // back (missing dependencies), before or after, the forwarded update is the
    // difference the transaction made: what is held back goes out only once it is
    // integrated, so no client ever holds content the server has not integrated (a
    // client that did could type next to it, and the server could never integrate that).
    // (Yjs leaves its pending state untouched when an update integrates fully, even while it
    // holds other things back: then the update goes out as received, with no encoding)
    let forward: Uint8Array | null = update
    if (pendingChanged) {
      forward = this.#changed && this.#beforeState !== null ? Y.encodeStateAsUpdate(this.ydoc, encodeStateVectorOf(this.#beforeState)) : null
    }
    this.#noteApplied(update)
    if (forward !== null) {
      this.#keepSince(forward)
      // content Yjs held back may have come from others, and the sender may lack it too
      this.#enqueueFanout(forward, pendingChanged ? null : session)
    }
    this.#append(update, session, seq, at, inspection.ends)
  }

  /**
   * Several updates in one Yjs transaction. Each is checked, appended and acked on
   * its own (the log keeps one row per client update); what goes out is the one
   * update Yjs encodes for the whole transaction: exactly what it integrated.
   */
  #applyBatch(items: Incoming[]): void {
    const store = this.ydoc.store
    const out: Uint8Array[] = []
    const onUpdate = (u: Uint8Array): void => { out.push(u) }
    let origin: DocumentSession | null | undefined
    let resetBy: unknown = null
    let anyPendingChanged = false
    this.ydoc.on('update', onUpdate)
    try {
      this.ydoc.transact(tr => {
        for (const { session, seq, update, at } of items) {
          if (resetBy !== null) {
            this.#refuse(session, new ConcordError('CONCORD_ERR_DOC_RESET', 'the document was reloaded from its log; open it again', { document: this.name }), seq, false)
            continue
          }
          const inspection = this.#admit(session, seq, update)
          if (inspection === null) continue
          const before = this.#pending()
          const states: number[] = []
          for (const client of inspection.ends.keys()) states.push(Y.getState(store, client))
          const deleted: number[] = []
          for (const client of inspection.deletes.keys()) deleted.push(tr.deleteSet.clients.get(client)?.length ?? 0)
          try {
            Y.applyUpdate(this.ydoc, update, session)
          } catch (err) {
            this.#refuse(session, new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', `update could not be integrated: ${errorMessage(err)}`, { document: this.name }), seq, false)
            resetBy = err
            continue
          }
          const pendingChanged = this.#pendingChangedSince(before)
                let changed = pendingChanged
          let i = 0
          for (const client of inspection.ends.keys()) if (!changed && Y.getState(store, client) > states[i++]!) changed = true
          i = 0
          for (const client of inspection.deletes.keys()) if (!changed && (tr.deleteSet.clients.get(client)?.length ?? 0) > deleted[i++]!) changed = true
          if (!changed) {
            if (seq > 0 && session !== null) this.#afterBarrier(() => this.#ack(session, seq, at))
            continue
          }
          if (pendingChanged) anyPendingChanged = true
          origin = origin === undefined || origin === session ? session : null
          this.#noteApplied(update)
          this.#append(update, session, seq, at, inspection.ends)
        }
      }, items[0]!.session)
    } catch (err) {
      resetBy ??= err
    } finally {
      this.ydoc.off('update', onUpdate)
    }
    if (resetBy !== null) {
      this.#fail(resetBy, 'CONCORD_ERR_DOC_RESET')
      return
    }
    for (const u of out) {
      this.#keepSince(u)
      this.#enqueueFanout(u, anyPendingChanged ? null : origin ?? null)
    }
  }

  /** Yjs's pending state. It merges into an existing pendingStructs object in place, so its update is compared too. */
  #pending(): { structs: unknown; update: Uint8Array | undefined; ds: unknown } {
    const store = this.ydoc.store
    return { structs: store.pendingStructs, update: store.pendingStructs?.update, ds: store.pendingDs }
  }

  #pendingChangedSince(before: { structs: unknown; update: Uint8Array | undefined; ds: unknown }): boolean {
    const store = this.ydoc.store
    return store.pendingStructs !== before.structs || store.pendingStructs?.update !== before.update || store.pendingDs !== before.ds
  }

  /**
   * The first change an update needs that the document does not have (and the update does not
   * carry from the document's state on): where its items start, what they refer to, and the gaps
   * inside it. Null when Yjs can integrate all of it now.
   */
  #missingDependency(inspection: UpdateInspection): { client: number; clock: number } | null {
    const store = this.ydoc.store
    for (const [client, start] of inspection.starts) {
      const state = Y.getState(store, client)
      if (start > state) return { client, clock: state }
    }
    for (const [client, end] of inspection.gaps) {
      const state = Y.getState(store, client)
      if (end > state) return { client, clock: state }
    }
    for (const [client, end] of inspection.needs) {
      const state = Y.getState(store, client)
      if (end <= state) continue
      const start = inspection.starts.get(client)
      const available = start !== undefined && start <= state ? Math.max(state, inspection.ends.get(client) ?? 0) : state
      if (end > available) return { client, clock: available }
    }
    return null
  }

  #noteApplied(update: Uint8Array): void {
    this.#opts.metrics?.updatesApplied.inc()
    this.#updatesApplied++
    this.#approxBytes += update.length
    this.#lastUpdateAt = Date.now()
    if (update.length >= LARGE_UPDATE_BYTES) this.#lastLargeAt = this.#lastUpdateAt
  }

  /**
   * An update another node applied (it stores it): applied here and sent to this
   * node's sessions, not stored and not published again.
   */
  applyRemote(update: Uint8Array, writer: string | null = null): void {
    this.#drainIncoming()
    if (this.#failed || this.#destroyed) return
    if (writer !== null) {
      // the node that stored it checked the writer's ownership: learn the client ids it claimed
      try {
        for (const client of Y.parseUpdateMeta(update).to.keys()) if (!this.#owners.has(client)) this.#owners.set(client, writer)
      } catch { /* applying reports it */ }
    }
    this.#recording?.update(REMOTE_SESSION, update)
    const before = this.#pending()
    this.#changed = false
    try {
      Y.applyUpdate(this.ydoc, update, REMOTE)
    } catch (err) {
      this.#fail(err, 'CONCORD_ERR_DOC_RESET')
      return
    }
    const pendingChanged = this.#pendingChangedSince(before)
    if (!this.#changed && !pendingChanged) return
    const forward = !pendingChanged ? update
      : this.#changed && this.#beforeState !== null ? Y.encodeStateAsUpdate(this.ydoc, encodeStateVectorOf(this.#beforeState)) : null
    this.#approxBytes += update.length
    if (forward !== null) {
      this.#keepSince(forward)
      this.#enqueueFanout(forward, null)
    }
  }

  /** Presence from the sessions of another node: relayed to this node's sessions, not published again. */
  applyRemotePresence(update: Uint8Array): void {
    if (this.#destroyed) return
    try {
      applyAwarenessUpdate(this.awareness, update, REMOTE)
      this.#opts.metrics?.presence('backplane')
    } catch (err) {
      this.#log.warn({ err, document: this.name }, 'presence from another node could not be applied')
    }
  }

  /** What other nodes published may have been lost: apply what storage holds (Yjs ignores what is known). */
  async resyncFromStorage(): Promise<void> {
    if (this.#failed || this.#destroyed) return
    let loaded
    let authors: Map<number, string>
    try {
      ;[loaded, authors] = await Promise.all([this.#opts.storage.load(this.name), this.#opts.storage.loadAuthors(this.name)])
    } catch (err) {
      this.#log.warn({ err, document: this.name }, 'resync from storage failed; the next one will retry')
      return
    }
    this.#learnOwners(authors, loaded.updates)
    if (loaded.snapshot !== null) this.applyRemote(loaded.snapshot)
    for (const u of loaded.updates) this.applyRemote(u.update, u.userId)
  }

  /**
   * Relay a presence update from `session` (throttled, coalesced per room). A session changes
   * only the awareness client ids it introduced (or its own user's: a reconnect), so entries for
   * other people's ids are dropped (the stock y-websocket provider echoes everyone's changes, so
   * this is silent); a state beyond `maxPresenceBytes` refuses the update; at most
   * MAX_PRESENCE_CLIENTS ids per session; and the relayed state carries the authenticated user
   * as `user.id` (see `stampUser`).
   */
  applyAwareness(session: DocumentSession, update: Uint8Array): void {
    this.#recording?.awareness(session.id, update)
    let entries: AwarenessEntry[]
    try {
      entries = decodeAwarenessEntries(update)
    } catch (err) {
      session.documentError(new ConcordError('CONCORD_ERR_AWARENESS_MALFORMED', `awareness update rejected: ${errorMessage(err)}`, { document: this.name }), 0, false)
      return
    }
    const max = this.#opts.maxPresenceBytes ?? DEFAULT_MAX_PRESENCE_BYTES
    const kept: AwarenessEntry[] = []
    let introduced = 0
    for (const entry of entries) {
      // a JSON string's UTF-8 size is at most three bytes per UTF-16 unit
      if (entry.json.length > max || (entry.json.length * 3 > max && Buffer.byteLength(entry.json) > max)) {
        session.documentError(new ConcordError('CONCORD_ERR_LIMIT_PRESENCE',
          `a presence state of ${Buffer.byteLength(entry.json)} bytes is beyond the limit of ${max}; it was not relayed`, { document: this.name }), 0, false)
        return
      }
      // what the room already has at this clock or later changes nothing (the stock provider echoes
      // states back, sometimes of clients that just left): dropped before it can count as introduced
      const known = this.awareness.meta.get(entry.clientId)
      if (known !== undefined && (known.clock > entry.clock || (known.clock === entry.clock && (entry.json !== 'null' || !this.awareness.states.has(entry.clientId))))) continue
      if (!this.#mayChangePresence(session, entry.clientId)) continue
      if (!this.#awarenessOwner.has(entry.clientId) && entry.json !== 'null') introduced++
      let json = entry.json
      if (session.userId !== null) {
        const stamped = stampUser(json, session.userId)
        if (stamped === null) {
          session.documentError(new ConcordError('CONCORD_ERR_AWARENESS_MALFORMED', 'a presence state is not a JSON object', { document: this.name }), 0, false)
          return
        }
        json = stamped
      }
      kept.push({ clientId: entry.clientId, clock: entry.clock, json })
    }
    if (introduced > 0 && session.awarenessClientIds.size + introduced > MAX_PRESENCE_CLIENTS) {
      session.documentError(new ConcordError('CONCORD_ERR_LIMIT_PRESENCE',
        `a session may show at most ${MAX_PRESENCE_CLIENTS} presence client ids; the update was not relayed`, { document: this.name }), 0, false)
      return
    }
    if (kept.length === 0) return
    try {
      applyAwarenessUpdate(this.awareness, kept.length === entries.length && session.userId === null ? update : encodeAwarenessEntries(kept), session)
      this.#opts.metrics?.presence('client')
    } catch (err) {
      session.documentError(new ConcordError('CONCORD_ERR_AWARENESS_MALFORMED', `awareness update rejected: ${errorMessage(err)}`, { document: this.name }), 0, false)
    }
  }

  /** Whether `session` may set or clear the presence of awareness client id `id`. */
  #mayChangePresence(session: DocumentSession, id: number): boolean {
    const owner = this.#awarenessOwner.get(id)
    if (owner !== undefined) {
      if (owner === session) return true
      // the same user in another session (a reconnect whose old socket is not yet gone, another
      // tab echoing it): it may update the state, and the id stays with the session that showed it
      return owner.userId !== null && owner.userId === session.userId
    }
    // an id that belongs to a user of this document (its edits or its earlier presence): only theirs
    const docOwner = this.#owners.get(id)
    if (docOwner !== undefined && docOwner !== session.userId) return false
    if (this.#remoteAwareness.has(id)) {
      // a session on another node: only its own user (reconnected here) may change it
      const current = this.awareness.getStates().get(id)
      return current !== undefined && session.userId !== null && stampedUser(current) === session.userId
    }
    return true
  }

  /** Resolves when every update applied so far is durable. */
  whenFlushed(): Promise<void> {
    this.#drainIncoming()
    if (this.#inFlight === 0) return Promise.resolve()
    return new Promise(resolve => this.#flushWaiters.push(resolve))
  }

  destroy(): void {
    if (this.#destroyed) return
    this.#drainIncoming()
    this.#destroyed = true
    if (this.#compactTimer) clearTimeout(this.#compactTimer)
    if (this.#presenceTimer) clearTimeout(this.#presenceTimer)
    this.#presenceTimer = null
    if (this.#presenceLocalDirty.size > 0) {
      // the last session left: the other nodes still have to hear that its presence is gone
      this.#opts.backplane?.publishPresence(this.name, encodeAwarenessUpdate(this.awareness, [...this.#presenceLocalDirty]))
      this.#presenceLocalDirty.clear()
    }
    this.awareness.off('update', this.#onAwarenessUpdate)
    this.awareness.destroy()
    this.#integrationWaiters = []
    this.#unsubscribe?.()
    this.#unsubscribe = null
    if (this.#recording !== null) {
      // the end state, for `concord replay` to compare with (ended here: the document leaves memory)
      if (this.#unintegrated !== null) this.#integrate()
      void this.#recording.end(Y.encodeStateAsUpdate(this.#ydoc))
      this.#recording = null
    }
    this.#ydoc.destroy()
    this.sessions.clear()
    this.#outbox = []
  }

  #ack(session: DocumentSession, seq: number, at: number): void {
    session.ack(seq)
    this.#opts.metrics?.ack.observe(secondsSince(at))
  }

  /** `clients`: the Yjs clients whose items the update carries (from its inspection: no second decode). */
  #append(update: Uint8Array, session: DocumentSession | null, seq: number, at: number, clients: ReadonlyMap<number, number>): void {
    this.#inFlight++
    const appendStart = performance.now()
    const span = startSpan('concord.storage.append', { 'concord.document': this.name, 'concord.bytes': update.length, 'concord.storage': this.#opts.storage.kind })
    const appended = this.#opts.storage.append(this.name, { update, userId: session?.userId ?? null, at: Date.now() })
    this.#lastAppend = appended
    appended.then(logSeq => {
      // Other nodes get an update once it is durable, never before: a node that applied content
      // another node had not stored yet would treat a client's re-send of it (after that node
      // died) as nothing new, and the content would be acked without ever being stored.
      const metrics = this.#opts.metrics
      metrics?.storageAppend.observe(secondsSince(appendStart))
      endSpan(span, undefined, { 'concord.seq': logSeq })
      if (this.#opts.backplane !== undefined) {
        this.#opts.backplane.publishUpdate(this.name, update, session?.userId ?? null)
        metrics?.backplanePublished.inc()
      }
      if (logSeq > this.#lastDurableSeq) this.#lastDurableSeq = logSeq
      this.#tailUpdates++
      this.#tailBytes += update.length
      this.#noteDurable(clients, session)
      if (seq > 0 && session !== null) this.#ack(session, seq, at)
      this.#settled()
      this.#maybeCompact()
    }, err => {
      endSpan(span, err)
      this.#settled()
      this.#fail(err)
    })
  }

  /** History bookkeeping for a durable update: its author, checkpoints, events. */
  #noteDurable(clients: ReadonlyMap<number, number>, session: DocumentSession | null): void {
    const userId = session?.userId ?? null
    if (userId !== null) {
      // only the client ids this user owns (an update may repeat others' known items)
      for (const client of clients.keys()) if (this.#owners.get(client) === userId) this.#storeOwner(client, userId)
    }
    const history = this.#opts.history
    if (history === undefined) return
    if (this.#changesSinceVersion++ === 0) this.#firstChangeSinceVersionAt = Date.now()
    if (userId !== null) this.#authorsSinceVersion.add(userId)
    if (this.#isNew) {
      this.#isNew = false
      history.onEvent?.('document.created', { document: this.name, createdBy: userId })
    }
    history.onEvent?.('document.changed', { document: this.name, updates: 1 })
    if (history.checkpointEveryMs > 0 && this.#versionSaving === null && Date.now() - this.#firstChangeSinceVersionAt >= history.checkpointEveryMs) this.#checkpoint()
  }

  /** Write a client id's owner to the authors table (once; batched per microtask). */
  #storeOwner(client: number, userId: string): void {
    if (this.#knownClients.has(client)) return
    this.#knownClients.add(client)
    if (this.#pendingAuthors.push({ client, userId }) === 1) {
      queueMicrotask(() => {
        const list = this.#pendingAuthors
        this.#pendingAuthors = []
        const write = this.#opts.storage.recordAuthors(this.name, list).catch(err => this.#log.warn({ err, document: this.name }, 'recording authors failed'))
        this.#authorsWrite = this.#authorsWrite.then(() => write)
      })
    }
  }

  #checkpoint(): void {
    if (this.#versionSaving !== null) return
    const saving = this.createVersion('auto', null, null).catch(err => this.#log.warn({ err, document: this.name }, 'checkpoint failed'))
    this.#versionSaving = saving
    void saving.finally(() => { if (this.#versionSaving === saving) this.#versionSaving = null })
  }

  /**
   * Save a version: the document's whole state now (a snapshot kept apart from the log),
   * with who changed it since the previous version. Resolves once it is stored.
   */
  async createVersion(kind: 'auto' | 'named', name: string | null, createdBy: string | null): Promise<StoredVersion> {
    const snapshot = this.encodeState()
    const authors = [...this.#authorsSinceVersion]
    this.#authorsSinceVersion = new Set()
    this.#changesSinceVersion = 0
    await this.whenFlushed()
    const version = { id: randomUUID(), kind, name, createdAt: Date.now(), createdBy, authors, seq: this.#lastDurableSeq }
    this.#lastVersionAt = version.createdAt
    await this.#opts.storage.saveVersion(this.name, { ...version, snapshot })
    const retention = this.#opts.history?.retentionMs ?? 0
    if (retention > 0) await this.#opts.storage.pruneVersions(this.name, Date.now() - retention)
    this.#log.debug({ document: this.name, version: version.id, kind, bytes: snapshot.length }, 'version saved')
    this.#opts.history?.onEvent?.('version.created', { document: this.name, version: { ...version, bytes: snapshot.length } })
    return { ...version, bytes: snapshot.length }
  }

  /** Run `fn` once this document's appends enqueued so far are durable (they commit in order). */
  #afterBarrier(fn: () => void): void {
    this.#inFlight++
    this.#lastAppend.then(() => {
      this.#settled()
      fn()
    }, err => {
      this.#settled()
      this.#fail(err)
    })
  }

  #settled(): void {
    this.#inFlight--
    if (this.#inFlight === 0 && this.#flushWaiters.length > 0) {
      const waiters = this.#flushWaiters
      this.#flushWaiters = []
      for (const w of waiters) w()
    }
  }

  /**
   * Run a callback the event loop calls (not a caller that could handle the throw): an
   * unexpected throw (Yjs on content it cannot integrate, a corrupt stored state) fails this
   * document, whose sessions are told, instead of ending the process and every other document.
   */
  #contained(fn: () => void, code: 'CONCORD_ERR_DOC_RESET' | 'CONCORD_ERR_DOC_LOAD_FAILED' = 'CONCORD_ERR_DOC_RESET'): void {
    try {
      fn()
    } catch (err) {
      this.#fail(err, code)
    }
  }

  readonly #drainIncomingContained = (): void => { this.#contained(this.#drainIncoming) }
  readonly #flushFanoutContained = (): void => { this.#contained(this.#flushFanout) }

  #fail(err: unknown, code: 'CONCORD_ERR_STORAGE_WRITE_FAILED' | 'CONCORD_ERR_DOC_RESET' | 'CONCORD_ERR_DOC_LOAD_FAILED' = 'CONCORD_ERR_STORAGE_WRITE_FAILED'): void {
    if (this.#failed) return
    this.#failed = true
    // a storage failure is the server's problem (error); an update Yjs could not integrate came
    // from a client, and reloading the document is the designed answer (warn)
    this.#log[code === 'CONCORD_ERR_DOC_RESET' ? 'warn' : 'error']({ err, document: this.name, code }, 'document failed; closing its sessions so clients re-send unacked updates')
    const error = code === 'CONCORD_ERR_DOC_RESET'
      ? new ConcordError(code, 'the document was reloaded from its log; open it again', { document: this.name, cause: err })
      : code === 'CONCORD_ERR_DOC_LOAD_FAILED'
        ? new ConcordError(code, `the stored document could not be integrated: ${errorMessage(err)}`, { document: this.name, cause: err })
        : new ConcordError(code, `storage failed: ${errorMessage(err)}`, { document: this.name, cause: err })
    for (const s of [...this.sessions]) s.documentError(error, 0, true)
    this.#opts.onFailed?.(this, err)
  }

  #maybeCompact(): void {
    if (this.#compacting || this.#failed || this.#destroyed) return
    // by bytes only once there are several updates to fold: a tail that is one big paste
    // loads as fast as a snapshot would, and encoding the document for it would stall the room
    const byBytes = this.#tailBytes >= this.#opts.compactEveryBytes && this.#tailUpdates >= MIN_UPDATES_TO_COMPACT_BY_BYTES
    if (this.#tailUpdates < this.#opts.compactEveryUpdates && !byBytes) return
    this.#compacting = true
    if (Date.now() - this.#lastLargeAt > COMPACT_MAX_WAIT_MS) {
      this.#compact()
      return
    }
    // Shortly after a large update, wait until the room is quiet for a moment (at most
    // COMPACT_MAX_WAIT_MS): encoding a big document runs on this thread, and the people
    // typing next to a big paste would wait for it.
    const since = Date.now()
    const check = (): void => {
      const now = Date.now()
      if (now - this.#lastUpdateAt < COMPACT_DELAY_MS && now - since < COMPACT_MAX_WAIT_MS) {
        this.#compactTimer = setTimeout(check, COMPACT_DELAY_MS)
        this.#compactTimer.unref()
        return
      }
      this.#compactTimer = null
      this.#compact()
    }
    this.#compactTimer = setTimeout(check, COMPACT_DELAY_MS)
    this.#compactTimer.unref()
  }

  #compact(): void {
    if (this.#failed || this.#destroyed) {
      this.#compacting = false
      return
    }
    if (this.#opts.backplane !== undefined) {
      this.#compactFromStorage()
      return
    }
    const upToSeq = this.#lastDurableSeq
    const countedUpdates = this.#tailUpdates
    const countedBytes = this.#tailBytes
    // the Y.Doc holds every durable update (each was applied before it was appended)
    let snapshot: Uint8Array
    try {
      // (Yjs includes what it holds back for missing dependencies)
      snapshot = Y.encodeStateAsUpdate(this.ydoc)
    } catch (err) {
      // never let a compaction take the process down: the log stays as it is
      this.#compacting = false
      this.#log.warn({ err, document: this.name }, 'compaction could not encode the document; the log is kept')
      return
    }
    this.#setBase(snapshot, [])
    this.#approxBytes = snapshot.length
    // the log tail holds the writers of client ids whose authors rows may still be on their way
    this.#compactDone = this.#authorsWrite.then(() => this.#opts.storage.compact(this.name, snapshot, upToSeq)).then(() => {
      this.#compactDone = null
      this.#tailUpdates -= countedUpdates
      this.#tailBytes -= countedBytes
      this.#compacting = false
      this.#opts.metrics?.compaction('done')
      this.#log.debug({ document: this.name, upToSeq, snapshotBytes: snapshot.length }, 'compacted')
      // appends that landed while compacting may have crossed the threshold again
      this.#maybeCompact()
    }, err => {
      this.#compactDone = null
      this.#compacting = false
      this.#opts.metrics?.compaction('failed')
      this.#log.warn({ err, document: this.name }, 'compaction failed; will retry after the next append')
    })
  }

  /**
   * One node at a time compacts a document (a lease in the shared store, which expires if its
   * holder dies mid-way; compactions that overlap anyway are safe, only wasteful).
   * With other nodes writing to the same log, this node's Y.Doc may not yet hold an update
   * another node stored (it is still on the backplane), so the snapshot is built from the log
   * itself: the stored snapshot and tail, up to the last seq read.
   */
  #compactFromStorage(): void {
    const countedUpdates = this.#tailUpdates
    const countedBytes = this.#tailBytes
    const storage = this.#opts.storage
    const holder = this.#opts.backplane!.nodeId
    this.#compactDone = (async () => {
      let leased = false
      try {
        if (storage.lease !== undefined) {
          leased = await storage.lease(this.name, holder, COMPACT_LEASE_MS)
          if (!leased) {
            // another node is compacting this document: what it folds includes this node's tail
            this.#tailUpdates = Math.max(0, this.#tailUpdates - countedUpdates)
            this.#tailBytes = Math.max(0, this.#tailBytes - countedBytes)
            this.#opts.metrics?.compaction('skipped')
            this.#log.debug({ document: this.name }, 'compaction skipped: another node holds the lease')
            return
          }
        }
        await this.#authorsWrite
        const loaded = await storage.load(this.name)
        if (loaded.updates.length === 0 || this.#destroyed) return
        const upToSeq = loaded.updates[loaded.updates.length - 1]!.seq
        const snapshot = foldState(loaded.snapshot, loaded.updates.map(u => u.update))
        await storage.compact(this.name, snapshot, upToSeq)
        this.#tailUpdates = Math.max(0, this.#tailUpdates - countedUpdates)
        this.#tailBytes = Math.max(0, this.#tailBytes - countedBytes)
        this.#opts.metrics?.compaction('done')
        this.#log.debug({ document: this.name, upToSeq, snapshotBytes: snapshot.length }, 'compacted from the log')
      } catch (err) {
        this.#opts.metrics?.compaction('failed')
        this.#log.warn({ err, document: this.name }, 'compaction failed; will retry after the next append')
      } finally {
        if (leased) await storage.releaseLease?.(this.name, holder).catch(() => undefined)
        this.#compactDone = null
        this.#compacting = false
      }
    })()
  }

  #enqueueFanout(update: Uint8Array, origin: DocumentSession | null): void {
    this.#outbox.push({ update, origin })
    if (this.#fanoutScheduled) return
    this.#fanoutScheduled = true
    setImmediate(this.#flushFanoutContained)
  }

  /**
   * Everything applied in one event-loop turn goes out together. A few updates go
   * out as they are, each encoded once and shared, handed to each socket's kernel
   * buffer in one write (Y.mergeUpdates costs more than the frames it saves when
   * there are few). More than that are merged into frames of at most MERGE_GROUP
   * updates for the sessions that wrote none of them; a session that wrote some
   * gets the others' as they are. Nobody is sent its own updates back.
   */
  readonly #flushFanout = (): void => {
    this.#fanoutScheduled = false
    const items = this.#outbox
    this.#outbox = []
    if (items.length === 0 || this.sessions.size === 0) return
    const start = performance.now()
    this.#fanoutItems(items)
    this.#opts.metrics?.fanout.observe(secondsSince(start))
  }

  #fanoutItems(items: Outgoing[]): void {
    if (items.length <= SEPARATE_MAX) {
      this.#sendSeparately(items)
      return
    }
    // Y.mergeUpdates grows faster than linearly with the number of updates, so
    // a large burst goes out as a few frames of at most MERGE_GROUP updates each;
    // a large update goes out alone, as received (merging would re-encode all of it)
    let group: Outgoing[] = []
    for (const item of items) {
      if (item.update.length >= LARGE_UPDATE_BYTES) {
        if (group.length > 0) this.#send(group)
        group = []
        this.#send([item])
        continue
      }
      group.push(item)
      if (group.length === MERGE_GROUP) {
        this.#send(group)
        group = []
      }
    }
    if (group.length > 0) this.#send(group)
  }

  #sendSeparately(items: Outgoing[]): void {
    const messages = items.map(i => new SharedMessage('update', this.name, i.update))
    if (items.length === 1) {
      const origin = items[0]!.origin
      for (const s of this.sessions) if (s !== origin) s.sendUpdate(messages[0]!)
      return
    }
    for (const s of this.sessions) {
      let own = 0
      for (const i of items) if (i.origin === s) own++
      if (own === 0) s.sendUpdates(messages)
      else if (own < items.length) s.sendUpdates(messages.filter((_, k) => items[k]!.origin !== s))
    }
  }

  #send(items: Outgoing[]): void {
    const all = new SharedMessage('update', this.name, merge(items))
    if (items.length === 1) {
      const origin = items[0]!.origin
      for (const s of this.sessions) if (s !== origin) s.sendUpdate(all)
      return
    }
    const origins = new Set<DocumentSession | null>()
    for (const i of items) origins.add(i.origin)
    let separate: SharedMessage[] | null = null
    for (const s of this.sessions) {
      if (!origins.has(s)) {
        s.sendUpdate(all)
        continue
      }
      // the session wrote part of this batch: it gets the others' updates as they
      // are (one merge per writer would cost more than the frames it saves)
      separate ??= items.map(i => new SharedMessage('update', this.name, i.update))
      const others = separate.filter((_, k) => items[k]!.origin !== s)
      if (others.length > 0) s.sendUpdates(others)
    }
  }

  readonly #onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    const session = this.sessions.has(origin as DocumentSession) ? origin as DocumentSession : null
    const local = origin !== REMOTE
    if (!local) {
      for (const id of added) {
        this.#remoteAwareness.add(id)
        // the other node stamped its user (and claimed the id there): the same claim here
        const user = stampedUser(this.awareness.getStates().get(id))
        if (user !== null && !this.#owners.has(id)) this.#owners.set(id, user)
      }
    } else if (session !== null) {
      for (const id of added.concat(updated)) this.#remoteAwareness.delete(id)
    }
    // however it was removed (a session left, another node said so, or it timed out)
    for (const id of removed) this.#remoteAwareness.delete(id)
    for (const id of added.concat(updated)) {
      if (session !== null && !this.#awarenessOwner.has(id)) {
        this.#awarenessOwner.set(id, session)
        session.awarenessClientIds.add(id)
        // Yjs uses one client id for a replica's presence and its edits: presence shows the id to
        // everyone before the first edit does, so a writer's presence claims it for its edits too
        // (nobody could otherwise take it first, having read it off the presence)
        if (session.userId !== null && session.role !== 'read' && !this.#owners.has(id) && !this.#failed && !this.#destroyed) {
          this.#owners.set(id, session.userId)
          this.#storeOwner(id, session.userId)
        }
      }
      this.#presenceDirty.add(id)
      if (local) this.#presenceLocalDirty.add(id)
    }
    for (const id of removed) {
      const owner = this.#awarenessOwner.get(id)
      if (owner !== undefined) {
        owner.awarenessClientIds.delete(id)
        this.#awarenessOwner.delete(id)
      }
      this.#presenceDirty.add(id)
      if (local) this.#presenceLocalDirty.add(id)
    }
    this.#schedulePresence()
  }

  #schedulePresence(): void {
    if (this.#presenceTimer !== null || this.#destroyed) return
    const wait = Math.max(0, this.#lastPresenceFlush + this.#opts.presenceThrottleMs - Date.now())
    this.#presenceTimer = setTimeout(this.#flushPresence, wait)
  }

  readonly #flushPresence = (): void => {
    this.#presenceTimer = null
    this.#lastPresenceFlush = Date.now()
    if (this.#presenceDirty.size === 0 || this.#destroyed) return
    const ids = [...this.#presenceDirty]
    this.#presenceDirty.clear()
    if (this.#presenceLocalDirty.size > 0) {
      // the other nodes get this node's sessions' changes, at most once per throttle period
      const mine = [...this.#presenceLocalDirty]
      this.#presenceLocalDirty.clear()
      this.#opts.backplane?.publishPresence(this.name, encodeAwarenessUpdate(this.awareness, mine))
    }
    if (this.sessions.size === 0) return
    const message = new SharedMessage('awareness', this.name, encodeAwarenessUpdate(this.awareness, ids))
    for (const s of this.sessions) s.sendAwareness(message)
  }
}

const MERGE_GROUP = 64

/** The transaction origin of updates from other nodes. */
const REMOTE = Symbol('concord.remote')

/** Up to this many updates of one event-loop turn go out unmerged (see `#flushFanout`). */
const SEPARATE_MAX = 8

/** Updates at least this large are forwarded on their own, never merged with others. */
const LARGE_UPDATE_BYTES = 64 * 1024

/** The byte threshold of compaction applies once the tail has at least this many updates. */
const MIN_UPDATES_TO_COMPACT_BY_BYTES = 16

/** After a large update, compaction waits for this much quiet (and at most COMPACT_MAX_WAIT_MS). */
const COMPACT_DELAY_MS = 250
const COMPACT_MAX_WAIT_MS = 10_000
/** The session id under which a recording holds the updates other nodes applied. */
const REMOTE_SESSION = 'backplane'

/** How long a compaction lease lasts if its holder never gives it back (a crash mid-compaction). */
const COMPACT_LEASE_MS = 30_000

/** Default largest presence state of one client (JSON bytes). */
export const DEFAULT_MAX_PRESENCE_BYTES = 64 * 1024

/** Awareness client ids one session may show at once (an honest one shows one, a few after reconnects). */
const MAX_PRESENCE_CLIENTS = 8


function merge(items: Outgoing[]): Uint8Array {
  return items.length === 1 ? items[0]!.update : Y.mergeUpdates(items.map(i => i.update))
}


function sameStateVector(a: Map<number, number>, b: Map<number, number>): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) if (b.get(k) !== v) return false
  return true
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
