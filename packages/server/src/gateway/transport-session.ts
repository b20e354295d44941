import type { IncomingMessage } from 'node:http'
import { ConcordError, toConcordError, type Role } from '@concord/protocol'
import type { DocumentSession } from '../documents/document-session.js'
import type { SharedMessage } from '../documents/shared-message.js'
import type { SyncReply } from '../documents/sync-replies.js'
import type { AccessChange } from '../auth/access-control.js'
import { SessionGuard, type SessionGrant } from '../auth/session-guard.js'
import { CongestionHold } from './congestion.js'
import { TokenBucket } from '../auth/token-bucket.js'
import { ExtensionHooks, type SessionContext } from '../documents/extension-hooks.js'
import { SyncResponder } from './sync-responder.js'
import { CLOCK_EPOCH, clockNow } from './clock.js'
import type { SocketSender } from './socket-sender.js'
import type { Log } from './connection-log.js'
import type { GatewayConfig, GatewayDeps, GatewayMetrics, SessionDocument } from './gateway-deps.js'

/** What a transport session needs of the gateway's dependencies. */
export interface TransportSessionDeps extends Pick<GatewayDeps, 'documents' | 'authorizer' | 'metrics'> {
  /** Server extensions' session hooks (connect, authenticate, presence, stateless, disconnect). */
  readonly hooks?: ExtensionHooks
  readonly config: Pick<GatewayConfig, 'maxQueuedMessagesBeforeOpen' | 'maxQueuedBytesBeforeOpen' | 'maxStatelessBytes' | 'statelessPerSecond'>
}

/** The socket a session is on (a native socket carries many sessions, a y-websocket socket one). */
export interface SessionSocket {
  readonly sender: SocketSender
  /** The connection's logger. */
  readonly log: Log
  /** Bytes queued by all the sessions of this socket whose document is not open yet. */
  queuedBytes: number
}

interface Lease {
  readonly doc: SessionDocument
  release(): void
}

/**
 * One socket's session on one document, whatever the transport: the lifecycle both transports
 * share. It is granted access (`open`: authenticate and authorize, then acquire the document
 * from the registry, then check the grant again against what changed while the document
 * loaded), queues what the peer sends before the document is open (bounded), joins the
 * document and hands it the queue, forwards the document's updates and presence (held and
 * merged while the socket is congested), answers sync step 1 one reply at a time, and leaves
 * the document (`end`). Every call the gateway makes to a document is made here.
 *
 * A transport supplies its framing (the `send…` methods), what to do with a message once the
 * document is open (`handle`), and how a refusal or revocation reaches its peer: a native
 * socket answers in-band for that document, a y-websocket socket closes.
 *
 * Its public members are those of `DocumentSession` and of SessionGuard's `GuardedSession`
 * (`revoke`, `changeRole`), plus `document`, `closed`, `open` and `end`.
 *
 * One lives as long as its peer has the document open, so what most idle sessions never use is
 * made when first needed and dropped when done: the queue before the document is open, the sync
 * responder (while a reply is outstanding), the congestion hold, the stateless pacing, and the
 * `SessionGuard` (kept while the credential has an expiry to watch; otherwise made again, for the
 * moment, when access changes).
 */
export abstract class TransportSession<Message, Socket extends SessionSocket = SessionSocket> implements DocumentSession {
  readonly id: string
  /** The document's name: the peer's copy until the document is open, then the document's own string. */
  #document: string
  abstract readonly protocol: 'native' | 'y-websocket' | 'hocuspocus'
  /** When the session was created (`clockNow`). */
  readonly #openedAt = clockNow()
  /** The socket this session is on (its connection). */
  protected readonly socket: Socket
  readonly #deps: TransportSessionDeps
  /** What the session was granted, while no guard holds it (see `#keep`). */
  #grant: SessionGrant | null = null
  /** Watches the grant's expiry (see `#keep`). */
  #guard: SessionGuard | null = null
  /** Created when the socket first congests (most never do). */
  #hold: CongestionHold | null = null
  /** Answers the peer's sync step 1 (and native OPEN's state vector), one reply outstanding at a time; null when none is. */
  #sync: SyncResponder | null = null
  #lease: Lease | null = null
  /** What the peer sent before the document was open. */
  #queue: Message[] | null = null
  #queuedBytes = 0
  #closed = false
  /** Paces this session's stateless messages (created by the first one). */
  #signals: TokenBucket | null = null

  constructor(id: string, document: string, socket: Socket, deps: TransportSessionDeps) {
    this.id = id
    this.#document = document
    this.socket = socket
    this.#deps = deps
  }

  /** The socket's sender. */
  protected get sender(): SocketSender {
    return this.socket.sender
  }

  /** The bounds of the queue before the document is open, and of stateless messages. */
  protected get config(): TransportSessionDeps['config'] {
    return this.#deps.config
  }

  protected get metrics(): GatewayMetrics {
    return this.#deps.metrics
  }

  /** The peer was refused (the grant or the load failed); not called once the session has ended. */
  protected abstract refused(error: ConcordError): void
  /** A message that arrived while the document is open (queued ones included, in order). */
  protected abstract handle(message: Message): void
  /** A message shared by the document's sessions (encoded once per transport). */
  protected abstract sendShared(message: SharedMessage): void
  /** One document update of the server's (a sync reply's, or what was held while congested). */
  protected abstract sendUpdateBytes(update: Uint8Array): void
  protected abstract sendStep1(stateVector: Uint8Array): void
  protected abstract sendStep2(update: Uint8Array): void
  protected abstract sendPresence(update: Uint8Array): void
  /** SessionGuard: the session may no longer see the document. */
  abstract revoke(error: ConcordError): void
  /** SessionGuard: the session continues with another role. */
  abstract changeRole(role: Role, expiresAt: number | null): void
  abstract ack(seq: number): void
  abstract documentError(error: ConcordError, seq: number, closed: boolean): void
  /** The session has ended (called by `end`, each time). */
  protected ended(): void {}

  get document(): string {
    return this.#document
  }

  /** When the session opened (ms since the epoch). */
  get openedAt(): number {
    return CLOCK_EPOCH + this.#openedAt
  }

  get closed(): boolean {
    return this.#closed
  }

  /** The document is open: its lease is held (false before, and after the session ended). */
  protected get isOpen(): boolean {
    return this.#lease !== null
  }

  /** The grant in force (null: not granted yet). */
  #current(): SessionGrant | null {
    return this.#guard?.grant ?? this.#grant
  }

  get userId(): string | null {
    return this.#current()?.userId ?? null
  }

  get role(): Role {
    return this.#current()?.role ?? 'read'
  }

  /** When the credential expires (null: never, or not granted yet). */
  protected get expiresAt(): number | null {
    return this.#current()?.expiresAt ?? null
  }

  /**
   * The guard of the grant in force: the one kept, or one made again from the grant (null: not
   * granted yet). It is held at once: what it calls back (`changeRole`, `revoke`) reads the role
   * and expiry through it.
   */
  #guardNow(): SessionGuard | null {
    if (this.#guard === null && this.#grant !== null) {
      this.#guard = new SessionGuard(this.#grant, this.document, this.#deps.authorizer.access, this)
      this.#grant = null
    }
    return this.#guard
  }

  /**
   * Keep `guard` while its grant expires (its timer cuts the session off); otherwise keep only
   * the grant: a guard without an expiry has nothing to watch between access changes.
   */
  #keep(guard: SessionGuard): void {
    if (guard.grant.expiresAt !== null) {
      this.#guard = guard
      this.#grant = null
    } else {
      this.#guard = null
      this.#grant = guard.grant
    }
  }

  /**
   * Grant the peer access (its token checked against the document), then acquire the document.
   * Returns true when the document is open for this session; false when the session ended
   * meanwhile or was refused (`refused` told it, or `revoke` when the grant was revoked or
   * expired while the document loaded).
   */
  async open(token: string, request: IncomingMessage): Promise<boolean> {
    const deps = this.#deps
    const log = this.socket.log
    let grant: SessionGrant
    let lease: Lease
    const hooks = deps.hooks ?? ExtensionHooks.none
    try {
      if (hooks.has.onConnect) {
        await hooks.refusable('onConnect', { documentName: this.document, transport: this.protocol, request: { headers: request.headers } }, this.document)
        if (this.#closed) return false
      }
      grant = await deps.authorizer.grant({ document: this.document, token, transport: this.protocol, request }, log)
      if (this.#closed) return false
      if (hooks.has.onAuthenticate) {
        await hooks.refusable('onAuthenticate', { ...this.#hookContext(grant.userId), role: grant.role }, this.document)
        if (this.#closed) return false
      }
      lease = await deps.documents.acquire(this.document).catch(err => {
        // logged with the storage's own error, before it is wrapped for the peer
        log.error({ err, document: this.document }, 'document load failed')
        throw new ConcordError('CONCORD_ERR_DOC_LOAD_FAILED', `could not load document: ${(err as Error).message}`, { cause: err })
      })
    } catch (err) {
      this.refused(toConcordError(err))
      return false
    }
    if (this.#closed) {
      lease.release()
      return false
    }
    this.#lease = lease
    if (lease.doc.name === this.#document) this.#document = lease.doc.name
    const guard = new SessionGuard(grant, this.document, deps.authorizer.access, this)
    this.#guard = guard
    // revoked or changed while the document loaded: the session never hears of that change otherwise
    const stale = guard.recheck()
    if (stale !== null) {
      this.revoke(stale)
      return false
    }
    this.#keep(guard)
    return true
  }

  /**
   * A message that arrived before the document is open is queued until `join`. Returns false
   * (nothing queued) when that exceeds the bounds: per session, and for all opening sessions of
   * the socket together.
   */
  protected queue(message: Message, size: number): boolean {
    const o = this.config
    this.#queuedBytes += size
    this.socket.queuedBytes += size
    if ((this.#queue?.length ?? 0) >= o.maxQueuedMessagesBeforeOpen || this.#queuedBytes > o.maxQueuedBytesBeforeOpen ||
      this.socket.queuedBytes > o.maxQueuedBytesBeforeOpen) return false
    ;(this.#queue ??= []).push(message)
    return true
  }

  #dropQueue(): void {
    this.socket.queuedBytes -= this.#queuedBytes
    this.#queuedBytes = 0
    this.#queue = null
  }

  /** The document failed between loading and now (its sessions were already told). */
  protected get documentFailed(): boolean {
    return this.#lease?.doc.stats.failed ?? false
  }

  /** Join the document (it sends this session every update from now on), then handle what was queued. */
  protected join(): void {
    this.#lease!.doc.addSession(this)
    this.socket.log.debug({ sessionId: this.id, document: this.document, userId: this.userId, role: this.role }, 'session opened')
    const queued = this.#queue
    this.#dropQueue()
    if (queued === null) return
    for (const message of queued) {
      if (this.#closed) break
      this.handle(message)
    }
  }

  /**
   * The server's sync step 1, once the document's Y.Doc holds its state (which a large
   * document just loaded gets after the first replies went out).
   */
  protected sendStep1WhenIntegrated(): void {
    const doc = this.#lease?.doc
    doc?.sync.whenIntegrated(() => {
      if (!this.#closed) this.sendStep1(doc.sync.stateVector())
    })
  }

  /** Every client's presence, when there is any. */
  protected sendPresenceSnapshot(): void {
    const presence = this.#lease!.doc.presence.states()
    if (presence !== null) this.sendPresence(presence)
  }

  /** Answer a sync step 1 (at most one reply outstanding; step 1 messages meanwhile are answered together, once). */
  protected requestSync(stateVector: Uint8Array | undefined, malformed: () => void): void {
    // made for a burst of step 1 frames, dropped once answered (an idle session holds none)
    const sync = this.#sync ??= new SyncResponder({
      document: this.#lease!.doc.sync, sender: this.sender, metrics: this.#deps.metrics,
      send: reply => this.#sendSyncReply(reply), closed: () => this.#closed,
      idle: () => { if (this.#sync === sync) this.#sync = null },
    })
    sync.request(stateVector, malformed)
  }

  /** Updates first (the peer holds them pending until the base state arrives), then step 2. */
  #sendSyncReply(reply: SyncReply): void {
    for (const update of reply.updates) this.sendUpdateBytes(update)
    this.sendStep2(reply.step2)
  }

  /**
   * A write of the peer's (the caller checked the role). An update that holds nothing (no items,
   * no deletions: what a stock y-websocket provider in sync answers the server's step 1 with, on
   * every connect) is not handed to the document when no ack is wanted (`seq` 0): applying it
   * changes nothing, and its trip through the apply path cost each connect about 14 KB of
   * allocations.
   */
  protected write(seq: number, update: Uint8Array): void {
    if (seq === 0 && isEmptyUpdate(update)) return
    this.#lease!.doc.enqueueUpdate(this, seq, update)
  }

  /** A presence update of the peer's. */
  protected applyPresence(update: Uint8Array): void {
    this.#lease!.doc.presence.apply(this, update)
    const hooks = this.#deps.hooks
    if (hooks?.has.onAwarenessUpdate) hooks.observe('onAwarenessUpdate', { ...this.#hookContext(this.userId), update }, this.document)
  }

  #hookContext(userId: string | null): SessionContext {
    return { documentName: this.document, sessionId: this.id, userId, transport: this.protocol }
  }

  /**
   * A stateless message of the peer's, for the document's other sessions on every node. Returns
   * the refusal (too large, or over the session's rate), which the transport tells its peer its way.
   */
  protected sendSignal(payload: string): ConcordError | null {
    const o = this.config
    const bytes = Buffer.byteLength(payload)
    if (bytes > o.maxStatelessBytes) {
      return new ConcordError('CONCORD_ERR_LIMIT_STATELESS', `a stateless message of ${bytes} bytes; at most ${o.maxStatelessBytes}`)
    }
    this.#signals ??= new TokenBucket(o.statelessPerSecond, 2 * o.statelessPerSecond)
    if (!this.#signals.take(1)) {
      return new ConcordError('CONCORD_ERR_LIMIT_STATELESS', `more than ${o.statelessPerSecond} stateless messages a second`)
    }
    const hooks = this.#deps.hooks
    const out = hooks?.has.onStateless ? hooks.stateless({ ...this.#hookContext(this.userId), payload }) : payload
    if (out !== null) this.#lease!.doc.signals.send(this, out)
    return null
  }

  /** A refreshed credential (native AUTH) replaces the old one. */
  protected replaceGrant(grant: SessionGrant): void {
    if (this.#closed) return
    const guard = this.#guardNow()
    if (guard === null) return
    guard.replace(grant)
    this.#keep(guard)
  }

  accessChanged(change: AccessChange): void {
    if (this.#closed) return
    const guard = this.#guardNow()
    if (guard === null) return
    guard.accessChanged(change)
    this.#keep(guard)
  }

  sendUpdate(message: SharedMessage): void {
    if (this.#closed || ((this.#hold !== null || this.sender.congested) && this.#congestion().holdUpdate(message.payload))) return
    this.sendShared(message)
  }

  sendUpdates(messages: readonly SharedMessage[]): void {
    this.sender.corked(() => { for (const m of messages) this.sendUpdate(m) })
  }

  cork(): void {
    this.sender.cork()
  }

  uncork(): void {
    this.sender.uncork()
  }

  sendAwareness(message: SharedMessage): void {
    if (this.#closed || ((this.#hold !== null || this.sender.congested) && this.#congestion().holdPresence())) return
    this.sendShared(message)
  }

  /** The socket drained: what was held goes out, merged. */
  #congestion(): CongestionHold {
    this.#hold ??= new CongestionHold(this.sender, (update, presence) => this.#flushHeld(update, presence))
    return this.#hold
  }

  #flushHeld(update: Uint8Array | null, presence: boolean): void {
    if (this.#closed) return
    if (update !== null) this.sendUpdateBytes(update)
    const snapshot = presence ? this.#lease?.doc.presence.snapshot() : null
    if (snapshot) this.sendPresence(snapshot)
  }

  /** Leave the document and drop what was queued (idempotent). */
  end(): void {
    this.#closed = true
    this.#guard?.stop()
    this.#dropQueue()
    const lease = this.#lease
    this.#lease = null
    if (lease !== null) {
      this.socket.log.debug({ sessionId: this.id, document: this.document }, 'session closed')
      lease.doc.removeSession(this)
      lease.release()
      const hooks = this.#deps.hooks
      if (hooks?.has.onDisconnect) hooks.observe('onDisconnect', this.#hookContext(this.userId), this.document)
    }
    this.ended()
  }
}

/** A Yjs update (v1) with no items and an empty delete set. */
function isEmptyUpdate(update: Uint8Array): boolean {
  return update.length === 2 && update[0] === 0 && update[1] === 0
}

/**
 * A connection closes with a coded reason: counted, and logged (at debug when the server shuts
 * down, at info otherwise), with the same keys for both transports.
 */
export function noteClose(error: ConcordError, log: Log, metrics: GatewayMetrics): void {
  metrics.refused(error.code)
  const level = error.code === 'CONCORD_ERR_SERVER_SHUTTING_DOWN' ? 'debug' : 'info'
  log[level]({ code: error.code, reason: error.message }, 'closing connection')
}
