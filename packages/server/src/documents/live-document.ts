import * as Y from 'yjs'
import { ConcordError } from '@concord/protocol'
import type { Logger } from 'pino'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { DocumentSession } from './document-session.js'
import { LARGE_DOCUMENT_BYTES, SyncReplies, type SyncRepliesHost } from './sync-replies.js'
import { secondsSince, type DocumentRecording } from './ports.js'
import type { LiveDocumentOptions as Options } from './live-document-options.js'
import { ClientOwners } from './client-owners.js'
import { Admission, type AdmissionHost } from './admission.js'
import { Integrator, OTHER_NODE, type Incoming, type IntegrateHost } from './integrate.js'
import { FanOut, LARGE_UPDATE_BYTES, MERGE_GROUP } from './fan-out.js'
import { Presence, errorMessage, type PresenceHost } from './presence.js'
import { BIG_ROOM_WINDOW_MS, RoomTick, sendTogether } from './room-tick.js'
import { Signals, type SignalsHost } from './signals.js'
import { DurableLog, type DurableLogHost } from './durable-log.js'
import { Compactor, type CompactorHost } from './compactor.js'
import { Versions, type VersionsHost } from './versions.js'
import { ServerOrigin, type UpdateOrigin } from './origins.js'
import { DocumentStats, DocumentSync, type DocumentStatsSource, type DocumentSyncHost } from './document-views.js'
import { microtask } from './microtask.js'

export { LARGE_DOCUMENT_BYTES } from './sync-replies.js'
export { DEFAULT_MAX_PRESENCE_BYTES } from './presence.js'
export type { VersionPolicy } from './versions.js'
export type { DocumentEvent, DocumentEventHandler } from './ports.js'
export type { HistoryEvent, HistoryOptions } from './live-document-options.js'
/** How a document is loaded and run (its storage, limits, ports). */
export type LiveDocumentOptions = Options<LiveDocument>

/** The session id under which a recording holds the updates other nodes applied. */
const REMOTE_SESSION = 'backplane'

type FailureCode = 'CONCORD_ERR_STORAGE_WRITE_FAILED' | 'CONCORD_ERR_DOC_RESET' | 'CONCORD_ERR_DOC_LOAD_FAILED'

/**
 * One loaded document: its `Y.Doc`, its presence, its sessions, and the edit
 * path of ARCHITECTURE.md section 2 (apply, fan-out encoded once and coalesced
 * per socket read, group-committed append, ack only once durable).
 *
 * It coordinates the modules of documents/: admission (the checks before Yjs sees an update),
 * integrate (the one apply path), fan-out, presence, the durable log (appends, acks, barrier),
 * client owners (and the authors table), compaction, versions, and the sync replies.
 *
 * Its public members (19, a few over the ~15 of a class here) are its lifecycle (load, sessions,
 * updates, flush, unload, deletion, destroy) and five groups that callers reach by name:
 * `stats`, `sync`, `presence`, `signals` and `versions`.
 */
export class LiveDocument {
  readonly name: string
  readonly sessions = new Set<DocumentSession>()
  /** Presence (awareness): `presence.apply(session, update)`, `presence.snapshot()`, `presence.states()`, `presence.awareness`. */
  readonly presence: Presence
  /** Stateless messages: `signals.send(session, payload)` (to the other sessions, on every node). */
  readonly signals: Signals
  /** What the document reports of itself (read-only). */
  readonly stats: DocumentStats
  /** State vectors, diffs, sync replies and the whole state, each applying what is queued first. */
  readonly sync: DocumentSync
  /** Checkpoints and named versions: `versions.create(kind, name, createdBy)`. */
  readonly versions: Versions
  readonly #ydoc: Y.Doc
  /**
   * A large document loaded from storage is integrated into its `Y.Doc` only when
   * something needs the Y.Doc, or right after the first replies went out: a
   * joining client that holds nothing gets the stored bytes as they are, so
   * the first reader after a restart does not wait for Yjs to integrate them.
   */
  #unintegrated: Uint8Array[] | null = null
  #integrationWaiters: (() => void)[] = []
  readonly #opts: LiveDocumentOptions
  readonly #log: Logger
  readonly #owners: ClientOwners
  readonly #durable: DurableLog
  readonly #admission: Admission
  readonly #integrator: Integrator
  readonly #fanOut: FanOut
  readonly #tick: RoomTick
  readonly #compactor: Compactor
  /**
   * The answers to sync step 1, and for large documents an encoded state taken at load, at
   * compaction or at the first full reply, with every update applied since: together the whole
   * document, so peers are answered without encoding it again (see `SyncReplies`).
   */
  readonly #replies: SyncReplies
  #incoming: Incoming[] = []
  #incomingScheduled = false
  /** One update applied at once goes through the apply path in this array (no allocation per update). */
  readonly #one: [Incoming] = [{ origin: null, seq: 0, update: new Uint8Array(0), at: 0 }]
  #failed = false
  /** Why the document refuses updates when it was closed on purpose (deleted), not by a failure. */
  #closedBy: ConcordError | null = null
  #destroyed = false
  /** This load's recording, when the recorder chose the document. */
  #recording: DocumentRecording | null = null
  #updatesApplied = 0
  #lastUpdateAt = 0
  /** When the last large update arrived: compaction waits a little after one. */
  #lastLargeAt = 0
  /** The encoded size of the document, approximately: its state at load or compaction plus every update since. */
  #approxBytes = 0
  #unsubscribe: (() => void) | null = null

  private constructor(name: string, ydoc: Y.Doc, opts: LiveDocumentOptions, isNew: boolean) {
    this.name = name
    this.#ydoc = ydoc
    this.#opts = opts
    this.#log = opts.logger
    // what the parts below call back: one object whose members are on its prototype
    const host = new LiveDocument.#Host(this)
    this.#replies = new SyncReplies(ydoc, host, {
      compactEveryBytes: opts.compactEveryBytes, compactEveryUpdates: opts.compactEveryUpdates,
      metrics: opts.metrics, worker: opts.mergeWorker,
    })
    this.#owners = new ClientOwners(name, opts.storage, opts.logger)
    this.#durable = new DurableLog(name, opts, host)
    this.#admission = new Admission(host, this.#owners, opts)
    this.#integrator = new Integrator(ydoc, host)
    // a big room's edits and presence go out on one clock, together (see room-tick.ts)
    this.#tick = new RoomTick(() => Math.max(BIG_ROOM_WINDOW_MS, this.presence.periodMs), this.#onTick)
    this.#fanOut = new FanOut(name, this.sessions, opts.metrics, fn => this.#contained(fn), this.#tick)
    this.presence = new Presence(ydoc, host, this.#owners, opts, this.#tick)
    this.signals = new Signals(host)
    this.#compactor = new Compactor(host, this.#durable, this.#owners, opts)
    this.versions = new Versions(host, opts, isNew)
    this.stats = new DocumentStats(host)
    this.sync = new DocumentSync(this.#replies, host)
  }

  /**
   * The callbacks and readings the document's parts (admission, integrate, the durable log,
   * presence, signals, compaction, versions, stats, sync replies) have of it: one object per
   * document, its members on the prototype. (An object literal with getters and closures for
   * each part cost a loaded document about 5 KB: dictionary-mode properties, accessor pairs
   * and some forty closures.)
   */
  static readonly #Host = class DocumentHost implements AdmissionHost, IntegrateHost, DurableLogHost, PresenceHost, SignalsHost,
    CompactorHost, VersionsHost, DocumentStatsSource, DocumentSyncHost, SyncRepliesHost {
    readonly #doc: LiveDocument

    constructor(doc: LiveDocument) {
      this.#doc = doc
    }

    get name(): string { return this.#doc.name }
    get ydoc(): Y.Doc { return this.#doc.ydoc }
    get sessions(): ReadonlySet<DocumentSession> { return this.#doc.sessions }
    /** Neither failed nor destroyed. */
    get open(): boolean { return !this.#doc.#failed && !this.#doc.#destroyed }
    get failed(): boolean { return this.#doc.#failed }
    get destroyed(): boolean { return this.#doc.#destroyed }
    get approxBytes(): number { return this.#doc.#approxBytes }
    get recording(): DocumentRecording | null { return this.#doc.#recording }
    get updatesApplied(): number { return this.#doc.#updatesApplied }
    get lastUpdateAt(): number { return this.#doc.#lastUpdateAt }
    get lastChangeAt(): number { return this.#doc.#lastUpdateAt }
    get lastLargeAt(): number { return this.#doc.#lastLargeAt }
    get appendsInFlight(): number { return this.#doc.#durable.inFlight }
    get tail(): { updates: number; bytes: number } { return { updates: this.#doc.#durable.tailUpdates, bytes: this.#doc.#durable.tailBytes } }
    get lastDurableSeq(): number { return this.#doc.#durable.lastDurableSeq }
    get admission(): Admission { return this.#doc.#admission }
    get log(): DurableLog { return this.#doc.#durable }

    drain(): void { this.#doc.#drainIncoming() }

    whenIntegrated(fn: () => void): void {
      const doc = this.#doc
      if (doc.#unintegrated === null) fn()
      else doc.#integrationWaiters.push(fn)
    }

    unavailable(): ConcordError | null {
      const doc = this.#doc
      return doc.#failed || doc.#destroyed
        ? doc.#closedBy ?? new ConcordError('CONCORD_ERR_STORAGE_WRITE_FAILED', 'document is unavailable', { document: doc.name })
        : null
    }

    refuse(origin: UpdateOrigin | null, error: ConcordError, seq: number, closed: boolean): void {
      this.#doc.#refuse(origin, error, seq, closed)
    }

    beforeChange(origin: UpdateOrigin | null, update: Uint8Array): ConcordError | null {
      const doc = this.#doc
      const hooks = doc.#opts.hooks
      return hooks?.has.beforeChange
        ? hooks.beforeChange({ documentName: doc.name, userId: origin?.userId ?? null, update, document: doc.ydoc })
        : null
    }

    applied(update: Uint8Array, origin: UpdateOrigin | null): void {
      const doc = this.#doc
      doc.#noteApplied(update)
      const hooks = doc.#opts.hooks
      if (hooks?.has.onChange) hooks.observe('onChange', { documentName: doc.name, userId: origin?.userId ?? null, update, document: doc.ydoc, origin: 'local' }, doc.name)
    }

    appliedRemote(update: Uint8Array): void {
      const doc = this.#doc
      doc.#approxBytes += update.length
      const hooks = doc.#opts.hooks
      if (hooks?.has.onChange) hooks.observe('onChange', { documentName: doc.name, userId: null, update, document: doc.ydoc, origin: 'remote' }, doc.name)
    }

    forward(update: Uint8Array, origin: UpdateOrigin | null, at: number): void {
      this.#doc.#replies.keep(update)
      this.#doc.#fanOut.enqueue(update, origin, at)
    }

    reset(err: unknown): void {
      this.#doc.#fail(err, 'CONCORD_ERR_DOC_RESET')
    }

    durable(clients: ReadonlyMap<number, number>, userId: string | null, update: Uint8Array): void {
      const doc = this.#doc
      doc.#noteDurable(clients, userId)
      const hooks = doc.#opts.hooks
      if (hooks?.has.onStoreDocument) hooks.observe('onStoreDocument', { documentName: doc.name, userId, update }, doc.name)
    }

    appended(): void {
      this.#doc.#compactor.maybeCompact()
    }

    appendedRelayed(update: Uint8Array, writer: string | null): void {
      this.#doc.#noteRelayedStored(update, writer)
    }

    fail(err: unknown): void {
      this.#doc.#fail(err)
    }

    publish(payload: string): void {
      const doc = this.#doc
      doc.#opts.backplane?.publishStateless?.(doc.name, payload)
    }

    compacted(snapshot: Uint8Array): void {
      this.#doc.#replies.setBase(snapshot, [])
      this.#doc.#approxBytes = snapshot.length
    }

    encodeState(): Uint8Array {
      return this.#doc.#replies.encodeWhole()
    }

    whenFlushed(): Promise<void> {
      return this.#doc.whenFlushed()
    }
  }

  /** Load a document: one snapshot plus the log tail after it. */
  static async load(name: string, opts: LiveDocumentOptions): Promise<LiveDocument> {
    // the stream position is taken before the load, so no other node's update falls between them
    const tracer = opts.tracer
    const span = tracer?.startSpan('concord.document.load', { 'concord.document': name }) ?? null
    let from: string | null
    let loaded: Awaited<ReturnType<StorageAdapter['load']>>
    let authors: Map<number, string>
    try {
      from = opts.backplane !== undefined ? await opts.backplane.position(name) : null
      ;[loaded, authors] = await Promise.all([opts.storage.load(name), opts.storage.loadAuthors(name)])
    } catch (err) {
      tracer?.endSpan(span, err)
      throw err
    }
    tracer?.endSpan(span, undefined, { 'concord.snapshot_bytes': loaded.snapshot?.length ?? 0, 'concord.tail_updates': loaded.updates.length })
    const ydoc = new Y.Doc({ gc: true })
    const parts: Uint8Array[] = []
    if (loaded.snapshot !== null) parts.push(loaded.snapshot)
    for (const u of loaded.updates) parts.push(u.update)
    // The snapshot and the tail are applied one after the other in one transaction:
    // Y.mergeUpdates would be faster for a short tail, but grows faster than linearly
    // with a long one (a tail left by a burst can hold tens of thousands of updates).
    const lazy = loaded.snapshot !== null && loaded.snapshot.length >= LARGE_DOCUMENT_BYTES
    const doc = new LiveDocument(name, ydoc, opts, loaded.snapshot === null && loaded.updates.length === 0)
    doc.#owners.learn(authors, loaded.updates)
    if (parts.length > 0) {
      doc.#unintegrated = parts
      if (lazy) {
        // after the replies to whoever is waiting for this load (they run in microtasks)
        setImmediate(() => { if (!doc.#destroyed) doc.#contained(() => doc.#integrate(), 'CONCORD_ERR_DOC_LOAD_FAILED') })
      } else {
        doc.#integrate()
      }
    }
    const log = doc.#durable
    log.lastDurableSeq = loaded.updates.length ? loaded.updates[loaded.updates.length - 1]!.seq : loaded.snapshotSeq
    log.tailUpdates = loaded.updates.length
    log.tailBytes = loaded.updates.reduce((n, u) => n + u.update.length, 0)
    if (loaded.snapshot !== null) doc.#replies.setBase(loaded.snapshot, loaded.updates.map(u => u.update))
    doc.#approxBytes = (loaded.snapshot?.length ?? 0) + log.tailBytes
    if (opts.recorder !== undefined) doc.#recording = opts.recorder.start(name, () => Y.encodeStateAsUpdate(doc.ydoc))
    if (opts.backplane !== undefined && from !== null) {
      doc.#recording?.open(REMOTE_SESSION, { user: null, role: 'write', protocol: 'native' })
      doc.#unsubscribe = opts.backplane.subscribe(name, from, {
        update: (update, writer, relayId, trace) => doc.#applyRemote(update, writer ?? null, relayId ?? null, trace ?? null),
        durable: relayIds => doc.#durable.relays.confirm(relayIds),
        resync: () => { void doc.#resyncFromStorage() },
        presence: update => doc.presence.applyRemote(update),
        stateless: payload => doc.signals.receiveRemote(payload),
      })
    }
    if (opts.hooks?.has.onLoadDocument) {
      try {
        await opts.hooks.refusable('onLoadDocument', { documentName: name, document: doc.ydoc }, name)
      } catch (err) {
        // the sessions waiting for this load are refused; the document is not kept
        doc.destroy()
        throw err
      }
    }
    doc.#compactor.maybeCompact()
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

  /** The user who owns a Yjs client id in this document (undefined: nobody yet). */
  ownerOf(client: number): string | undefined {
    return this.#owners.of(client)
  }

  /**
   * Before the document leaves memory: everything is durable, and a log tail long
   * enough to compact is compacted now, so the next load reads a snapshot and a
   * short tail (a burst can outrun compaction while the document is open).
   */
  async settleForUnload(): Promise<void> {
    // other nodes' updates not confirmed durable yet are appended here before the document goes
    this.#drainIncoming()
    this.#durable.persistRelayed()
    await this.whenFlushed()
    const saving = this.versions.saving
    if (saving !== null) await saving
    await this.#compactor.beforeUnload()
  }

  /**
   * An update from the server side (the admin API): applied, stored and sent to every session
   * like a client's. Resolves once it is durable, with whether it changed the document;
   * rejects with the refusal a client would get.
   */
  applyServerUpdate(update: Uint8Array, userId: string | null): Promise<{ changed: boolean }> {
    return new Promise((resolve, reject) => {
      this.#recording?.open('server', { user: userId, role: 'admin', protocol: 'native' })
      this.applyUpdate(new ServerOrigin(userId, resolve, reject), 1, update)
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
    this.#compactor.stop()
    // other nodes' unconfirmed updates are not appended after the log is deleted
    this.#durable.relays.close()
    for (const s of [...this.sessions]) s.documentError(error, 0, true)
    await this.whenFlushed()
    const done = this.#compactor.done
    if (done !== null) await done
  }

  addSession(session: DocumentSession): void {
    this.sessions.add(session)
    this.#recording?.open(session.id, { user: session.userId, role: session.role, protocol: session.protocol === 'y-websocket' ? 'y-websocket' : 'native' })
  }

  removeSession(session: DocumentSession): void {
    if (!this.sessions.delete(session)) return
    this.#recording?.close(session.id)
    // the last editor left: a checkpoint of what they did
    if (this.sessions.size === 0) this.versions.lastSessionLeft()
    this.presence.removeSession(session)
  }

  /**
   * Queue an update from a connection. Everything queued while one socket read is
   * handled (a microtask later) is applied in one Yjs transaction and goes out as
   * one update: a fast writer's hundreds of small updates per read cost one
   * transaction, not hundreds. Reads of the document's state apply the queue first.
   */
  enqueueUpdate(session: DocumentSession | null, seq: number, update: Uint8Array): void {
    if (session !== null) this.#recording?.update(session.id, update)
    this.#incoming.push({ origin: session, seq, update, at: performance.now() })
    if (this.#incomingScheduled) return
    this.#incomingScheduled = true
    microtask(this.#drainIncomingContained)
  }

  /**
   * The edit path, for one update now. `seq` is the sender's number for this update (0: no ack
   * wanted). The caller has checked that `origin` may write.
   */
  applyUpdate(origin: UpdateOrigin | null, seq: number, update: Uint8Array): void {
    this.#drainIncoming()
    if (origin !== null) this.#recording?.update(origin.id, update)
    const at = performance.now()
    const tracer = this.#opts.tracer
    const span = tracer?.startSpan('concord.update.apply', { 'concord.document': this.name, 'concord.updates': 1 }) ?? null
    // the edit's trace goes with it: its append, its relay to the other nodes, its outbox row
    if (span !== null) this.#durable.trace = tracer?.traceparent?.(span) ?? null
    try {
      this.#applyOne(origin, seq, update, at)
    } finally {
      this.#durable.trace = null
    }
    tracer?.endSpan(span)
    this.#opts.metrics?.updateApply.observe(secondsSince(at))
  }

  /** Resolves when every update applied so far is durable. */
  whenFlushed(): Promise<void> {
    this.#drainIncoming()
    return this.#durable.whenFlushed()
  }

  destroy(): void {
    if (this.#destroyed) return
    this.#drainIncoming()
    this.#destroyed = true
    this.#compactor.stop()
    this.#durable.relays.close()
    this.#tick.stop()
    this.presence.destroy()
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
    this.#fanOut.clear()
  }

  /** One update through the apply path (the array and its item are reused: no allocation per update). */
  #applyOne(origin: Incoming['origin'], seq: number, update: Uint8Array, at: number): void {
    const item = this.#one[0]
    item.origin = origin
    item.seq = seq
    item.update = update
    item.at = at
    try {
      this.#integrator.apply(this.#one)
    } finally {
      item.origin = null
      item.update = EMPTY
    }
  }

  readonly #drainIncoming = (): void => {
    this.#incomingScheduled = false
    const items = this.#incoming
    if (items.length === 0) return
    this.#incoming = []
    const start = performance.now()
    const tracer = this.#opts.tracer
    const span = tracer?.startSpan('concord.update.apply', { 'concord.document': this.name, 'concord.updates': items.length }) ?? null
    if (span !== null) this.#durable.trace = tracer?.traceparent?.(span) ?? null
    try {
      this.#integrator.apply(items)
    } finally {
      this.#durable.trace = null
    }
    tracer?.endSpan(span)
    this.#opts.metrics?.updateApply.observe(secondsSince(start))
  }

  readonly #drainIncomingContained = (): void => { this.#contained(this.#drainIncoming) }

  /** A big room's tick: its merged edits and its presence, each session's in one write. */
  readonly #onTick = (): void => {
    this.#contained(() => { sendTogether(this.sessions, this.#flushRoom) })
  }

  readonly #flushRoom = (): void => {
    this.#fanOut.flush()
    this.presence.flush()
  }

  /** Tell the sender its update was refused (and mark it refused in the recording). */
  #refuse(origin: UpdateOrigin | null, error: ConcordError, seq: number, closed: boolean): void {
    if (origin === null) return
    this.#recording?.refused(origin.id, error.code)
    origin.documentError(error, seq, closed)
  }

  #noteApplied(update: Uint8Array): void {
    this.#opts.metrics?.updatesApplied.inc()
    this.#updatesApplied++
    this.#approxBytes += update.length
    this.#lastUpdateAt = Date.now()
    if (update.length >= LARGE_UPDATE_BYTES) this.#lastLargeAt = this.#lastUpdateAt
  }

  /** Bookkeeping for a durable update: its author, checkpoints, events. */
  #noteDurable(clients: ReadonlyMap<number, number>, userId: string | null): void {
    if (userId !== null) {
      // only the client ids this user owns (an update may repeat others' known items)
      for (const client of clients.keys()) if (this.#owners.of(client) === userId) this.#owners.store(client, userId)
    }
    this.versions.noteDurable(userId)
  }

  /**
   * An update another node applied (it stores it): applied here and sent to this node's sessions,
   * not stored and not published again. `relayId`: relayed before it was durable; it is kept until
   * its origin confirms it (or this node appends it itself, see `UnconfirmedRelays`).
   */
  #applyRemote(update: Uint8Array, writer: string | null = null, relayId: string | null = null, trace: string | null = null): void {
    this.#drainIncoming()
    if (this.#failed || this.#destroyed) return
    // the node that stored it checked the writer's ownership: learn the client ids it claimed
    if (writer !== null) this.#owners.learnWriter(update, writer)
    this.#recording?.update(REMOTE_SESSION, update)
    // the edit's trace continues here (its origin node or region sent its traceparent along)
    const tracer = this.#opts.tracer
    const span = trace === null ? null : tracer?.startSpan('concord.update.remote', { 'concord.document': this.name, 'concord.bytes': update.length }, trace) ?? null
    this.#applyOne(OTHER_NODE, 0, update, performance.now())
    tracer?.endSpan(span)
    if (relayId !== null && !this.#failed) this.#durable.relays.add(relayId, update, writer)
  }

  /** This node stored another node's relayed update itself: the authors rows its origin may not have written. */
  #noteRelayedStored(update: Uint8Array, writer: string | null): void {
    if (writer === null) return
    let clients: Map<number, number>
    try {
      clients = Y.parseUpdateMeta(update).to
    } catch {
      return
    }
    for (const client of clients.keys()) if (this.#owners.of(client) === writer) this.#owners.store(client, writer)
  }

  /** What other nodes published may have been lost: apply what storage holds (Yjs ignores what is known). */
  async #resyncFromStorage(): Promise<void> {
    if (this.#failed || this.#destroyed) return
    // the confirmations of other nodes' relayed updates may have been lost too: append them here
    this.#durable.persistRelayed()
    let loaded
    let authors: Map<number, string>
    try {
      ;[loaded, authors] = await Promise.all([this.#opts.storage.load(this.name), this.#opts.storage.loadAuthors(this.name)])
    } catch (err) {
      this.#log.warn({ err, document: this.name }, 'resync from storage failed; the next one will retry')
      return
    }
    this.#owners.learn(authors, loaded.updates)
    if (loaded.snapshot !== null) this.#applyRemote(loaded.snapshot)
    for (const u of loaded.updates) this.#applyRemote(u.update, u.userId)
  }

  /**
   * Run a callback the event loop calls (not a caller that could handle the throw): an
   * unexpected throw (Yjs on content it cannot integrate, a corrupt stored state) fails this
   * document, whose sessions are told, instead of ending the process and every other document.
   */
  #contained(fn: () => void, code: FailureCode = 'CONCORD_ERR_DOC_RESET'): void {
    try {
      fn()
    } catch (err) {
      this.#fail(err, code)
    }
  }

  #fail(err: unknown, code: FailureCode = 'CONCORD_ERR_STORAGE_WRITE_FAILED'): void {
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
}

const EMPTY = new Uint8Array(0)
