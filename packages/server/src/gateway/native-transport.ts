import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import type { Log } from './connection-log.js'
import {
  ChunkAssembler, ConcordError, toConcordError, decodeFrame, MAX_DOCUMENT_NAME_BYTES, documentNameProblem, encodeFrame, encodeFrameParts, FRAME_KINDS, FrameDecodeError,
  isUnknownFrame, negotiateVersion, toSeqRanges,
  type ErrorCode, type Frame, type Role, type UnknownFrame,
} from '@concord/protocol'
import type { DocumentSession } from '../documents/document-session.js'
import type { DocumentHandle, DocumentRegistry } from '../documents/document-registry.js'
import type { ResolvedServerOptions } from '../server-options.js'
import type { SharedMessage } from '../documents/shared-message.js'
import { SocketSender, SLOW_READER_GRACE_MS } from './socket-sender.js'
import { CongestionHold } from './congestion.js'
import { SyncResponder, type SyncReplySource } from './sync-responder.js'
import type { SyncReply } from '../documents/sync-replies.js'
import { ReadThrottle, type ReadThrottleOptions } from './read-throttle.js'
import { bytesBeforeWriteAccess, setReceiveLimit } from './receive-limit.js'
import { SessionGuard, type SessionGrant } from '../auth/session-guard.js'
import type { AccessChange } from '../auth/access-control.js'
import { nativeKind } from '../ops/metrics.js'

export interface ConnectionDeps {
  registry: DocumentRegistry
  options: ResolvedServerOptions
  logger: Log
  connectionId: string
}

const PING_FRAME = encodeFrame({ kind: FRAME_KINDS.PING, document: '' })

export function rateLimitsOf(o: ResolvedServerOptions): ReadThrottleOptions {
  return {
    messagesPerSecond: o.rateLimitMessagesPerSecond, messagesBurst: o.rateLimitMessagesBurst,
    bytesPerSecond: o.rateLimitBytesPerSecond, bytesBurst: o.rateLimitBytesBurst, maxMessageBytes: o.maxMessageBytes,
  }
}

/** Native multiplexed connection: many documents on one socket. */
export class NativeConnection {
  readonly id: string
  readonly #ws: WebSocket
  readonly #request: IncomingMessage
  readonly #deps: ConnectionDeps
  readonly #log: Log
  readonly #sender: SocketSender
  readonly #assembler: ChunkAssembler
  readonly #docs = new Map<string, NativeDocSession>()
  readonly #throttle: ReadThrottle
  /**
   * Whether a document was opened on this socket with write access. Until then the socket's
   * messages and incomplete chunked messages share the pre-open budget (`bytesBeforeWriteAccess`).
   */
  #mayWrite = false
  #version = 0
  #pendingOpens = 0
  /** Bytes queued by all documents of this socket whose OPEN is not yet accepted. */
  queuedBytes = 0
  #closed = false
  #handshakeTimer: NodeJS.Timeout | null

  constructor(ws: WebSocket, request: IncomingMessage, deps: ConnectionDeps) {
    this.id = deps.connectionId
    this.#ws = ws
    this.#request = request
    this.#deps = deps
    this.#log = deps.logger
    const o = deps.options
    const metrics = o.metrics
    this.#sender = new SocketSender(ws, this, {
      ...o, ping: PING_FRAME, onSend: (first, length) => metrics.message('out', 'native', nativeKind(first[0]), length),
      readPausedAt: () => this.#throttle.pausedAt,
    })
    this.#throttle = new ReadThrottle(ws, { ...rateLimitsOf(o), onError: err => this.#failed(err) }, data => this.#receive(data),
      reason => this.#closeAbusive(new ConcordError('CONCORD_ERR_LIMIT_RATE', reason)))
    setReceiveLimit(ws, bytesBeforeWriteAccess(o))
    // pieces other than the last must be at least 1 KiB (clients are told chunkBytes in WELCOME)
    this.#assembler = new ChunkAssembler({ maxMessageBytes: o.maxMessageBytes, minPieceBytes: Math.min(1024, o.chunkBytes) })
    this.#handshakeTimer = setTimeout(() => {
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_HANDSHAKE_TIMEOUT'))
    }, o.handshakeTimeoutMs)
  }

  get options(): ResolvedServerOptions {
    return this.#deps.options
  }

  /** This connection's logger (bindings: its connection id). */
  get log(): Log {
    return this.#log
  }

  get sender(): SocketSender {
    return this.#sender
  }

  /**
   * One binary WebSocket message arrived. It is charged to the socket's rate
   * limit before it is decoded (every message, a CHUNK piece too, costs one
   * message and its length): within budget it is handled at once, over budget
   * it waits in order while the socket is read more slowly (`ReadThrottle`).
   */
  receive(data: Uint8Array): void {
    if (this.#closed) return
    this.#deps.options.metrics.message('in', 'native', nativeKind(data[0]), data.length)
    this.#throttle.receive(data)
    this.#notePeak()
  }

  #receive(data: Uint8Array): void {
    if (this.#closed) return
    let frame: Frame | UnknownFrame
    try {
      frame = decodeFrame(data)
    } catch (err) {
      const e = err as FrameDecodeError
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', e.message, { cause: err }))
      return
    }
    this.#handle(frame, data.length)
    this.#notePeak()
  }

  /** Handling a message threw outside the gateway's guard (from the rate limit's timer). */
  #failed(err: unknown): void {
    this.#log.error({ err }, 'unexpected error handling a message')
    this.close(new ConcordError('CONCORD_ERR_SERVER_INTERNAL'))
  }

  #notePeak(): void {
    const held = this.heldBytes
    if (held > this.peakHeldBytes) this.peakHeldBytes = held
  }

  /** Bytes received from this socket and held: waiting for the rate limit, in incomplete chunked messages, queued before OPEN. */
  get heldBytes(): number {
    return this.#throttle.heldBytes + this.#assembler.bufferedBytes + this.queuedBytes
  }

  /** The most `heldBytes` seen on this socket. */
  peakHeldBytes = 0

  /** Now while its reading is paused by the rate limit; otherwise when it was last resumed (0: never paused). */
  get readPausedAt(): number {
    return this.#throttle.pausedAt
  }

  /** Close a socket that abuses the server, and stop reading what it has already sent. */
  #closeAbusive(error: ConcordError): void {
    this.close(error)
    // whatever it queued in the kernel is never read (the close frame still goes out)
    this.#ws.pause()
  }

  #handle(frame: Frame | UnknownFrame, size: number): void {
    // names are at most MAX_DOCUMENT_NAME_BYTES; a longer one is never echoed back
    if (frame.document.length > MAX_DOCUMENT_NAME_BYTES) {
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', 'document name too long'))
      return
    }
    if (this.#version === 0) {
      if (frame.kind !== FRAME_KINDS.HELLO) {
        this.close(new ConcordError('CONCORD_ERR_PROTOCOL_HANDSHAKE_REQUIRED'))
        return
      }
    }
    if (isUnknownFrame(frame)) {
      this.sendError(frame.document, 'CONCORD_ERR_PROTOCOL_UNKNOWN_KIND', `unknown frame kind ${frame.kind}`, 0, false)
      return
    }
    switch (frame.kind) {
      case FRAME_KINDS.HELLO:
        this.#hello(frame)
        return
      case FRAME_KINDS.PING:
        this.sendFrame(encodeFrame({ kind: FRAME_KINDS.PONG, document: '' }))
        return
      case FRAME_KINDS.PONG:
        this.#sender.pong()
        return
      case FRAME_KINDS.CHUNK: {
        // before write access, incomplete chunked messages and frames queued for opening
        // documents share the pre-open budget (a chunked OPEN or AUTH fits it)
        const budget = bytesBeforeWriteAccess(this.#deps.options)
        if (!this.#mayWrite && this.#assembler.bufferedBytes + frame.data.length + this.queuedBytes > budget) {
          this.#closeAbusive(new ConcordError('CONCORD_ERR_LIMIT_CHUNKS_BEFORE_WRITE',
            `more than ${budget} bytes of incomplete chunked messages and queued frames before a document was opened for writing`))
          return
        }
        let whole: Uint8Array | null
        try {
          whole = this.#assembler.push(frame)
        } catch (err) {
          this.close(toConcordError(err))
          return
        }
        if (whole === null) return
        let inner: Frame | UnknownFrame
        try {
          inner = decodeFrame(whole)
        } catch (err) {
          this.close(new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', (err as Error).message, { cause: err }))
          return
        }
        if (inner.kind === FRAME_KINDS.CHUNK || inner.kind === FRAME_KINDS.HELLO) {
          this.close(new ConcordError('CONCORD_ERR_PROTOCOL_BAD_CHUNK', 'a chunked message may not contain CHUNK or HELLO'))
          return
        }
        this.#handle(inner, whole.length)
        return
      }
      case FRAME_KINDS.OPEN:
        void this.#open(frame)
        return
      case FRAME_KINDS.CLOSE:
      case FRAME_KINDS.SYNC_STEP1:
      case FRAME_KINDS.SYNC_STEP2:
      case FRAME_KINDS.UPDATE:
      case FRAME_KINDS.AWARENESS:
      case FRAME_KINDS.QUERY_AWARENESS:
      case FRAME_KINDS.AUTH: {
        const session = this.#docs.get(frame.document)
        if (session === undefined) {
          if (frame.kind !== FRAME_KINDS.CLOSE) {
            this.sendError(frame.document, 'CONCORD_ERR_DOC_NOT_OPEN', 'the document is not open on this socket',
              frame.kind === FRAME_KINDS.UPDATE ? frame.seq : 0, true)
          }
          return
        }
        session.receive(frame, size)
        return
      }
      default:
        // frames only a server sends (WELCOME, OPENED, ACK, ERROR)
        this.sendError(frame.document, 'CONCORD_ERR_PROTOCOL_UNKNOWN_KIND', `frame kind ${frame.kind} is not accepted from clients`, 0, false)
    }
  }

  #hello(frame: Extract<Frame, { kind: typeof FRAME_KINDS.HELLO }>): void {
    if (this.#version !== 0) {
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', 'HELLO sent twice'))
      return
    }
    const version = negotiateVersion(frame.minVersion, frame.maxVersion)
    if (version === null) {
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_UNSUPPORTED_VERSION',
        `offered versions ${frame.minVersion}..${frame.maxVersion}; this server speaks 1`))
      return
    }
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer)
    this.#handshakeTimer = null
    this.#version = version
    const o = this.#deps.options
    this.sendFrame(encodeFrame({
      kind: FRAME_KINDS.WELCOME, document: '', version, server: o.serverName,
      maxMessageBytes: o.maxMessageBytes, chunkBytes: o.chunkBytes, heartbeatIntervalMs: o.heartbeatIntervalMs,
    }))
    this.#log.debug({ version, client: frame.client }, 'handshake done')
  }

  async #open(frame: Extract<Frame, { kind: typeof FRAME_KINDS.OPEN }>): Promise<void> {
    const name = frame.document
    const o = this.#deps.options
    const problem = documentNameProblem(name)
    if (problem !== null) {
      this.sendError(name, 'CONCORD_ERR_DOC_INVALID_NAME', problem, 0, true)
      return
    }
    if (this.#docs.has(name)) {
      this.sendError(name, 'CONCORD_ERR_DOC_ALREADY_OPEN', 'the document is already open on this socket', 0, false)
      return
    }
    if (this.#docs.size >= o.maxDocumentsPerConnection) {
      this.sendError(name, 'CONCORD_ERR_LIMIT_DOCUMENTS_PER_CONNECTION', `at most ${o.maxDocumentsPerConnection} documents per socket`, 0, true)
      return
    }
    if (this.#pendingOpens >= o.maxPendingDocuments) {
      this.close(new ConcordError('CONCORD_ERR_LIMIT_PENDING_DOCUMENTS', `more than ${o.maxPendingDocuments} documents opening at once`))
      return
    }
    const session = new NativeDocSession(this, name)
    this.#docs.set(name, session)
    this.#pendingOpens++
    let grant: SessionGrant
    let lease: DocumentHandle
    try {
      grant = await o.authorizer.grant({ document: name, token: frame.token, transport: 'native', request: this.#request }, this.#log)
      if (session.closed) return
      lease = await this.#deps.registry.acquire(name).catch(err => {
        throw new ConcordError('CONCORD_ERR_DOC_LOAD_FAILED', `could not load document: ${(err as Error).message}`, { cause: err })
      })
    } catch (err) {
      const e = toConcordError(err)
      if (e.code === 'CONCORD_ERR_DOC_LOAD_FAILED') this.#log.error({ err, document: name }, 'document load failed')
      else this.#log.info({ document: name, code: e.code }, 'open refused')
      if (!session.closed) {
        this.sendError(name, e.code, e.message, 0, true)
        session.end()
      }
      return
    } finally {
      this.#pendingOpens--
    }
    if (session.closed || this.#closed) {
      lease.release()
      return
    }
    session.start(lease, grant, frame.stateVector)
    if (!session.closed && session.role !== 'read') this.#grantWrite()
  }

  /**
   * A document is open for writing on this socket: from now on it may send messages up to
   * `maxMessageBytes`, whole or chunked (it keeps that until it closes, even if the
   * document is closed or its role lowered later).
   */
  #grantWrite(): void {
    if (this.#mayWrite) return
    this.#mayWrite = true
    setReceiveLimit(this.#ws, this.#deps.options.maxMessageBytes)
  }

  /** Check a fresh token for an open document (AUTH). */
  authorize(document: string, token: string): Promise<SessionGrant> {
    return this.#deps.options.authorizer.grant({ document, token, transport: 'native', request: this.#request }, this.#log)
  }

  sendFrame(bytes: Uint8Array | readonly Uint8Array[], document = ''): void {
    this.#sender.send(bytes, document)
  }

  sendError(document: string, code: ErrorCode, message: string, seq: number, closed: boolean): void {
    this.#deps.options.metrics.refused(code)
    this.#log.debug({ document, code, seq, closed }, 'error sent')
    this.sendFrame(encodeFrame({ kind: FRAME_KINDS.ERROR, document, code, message, seq, closed }), document)
  }

  /** A document session ended (CLOSE, error, or socket end). */
  forget(session: NativeDocSession): void {
    if (this.#docs.get(session.document) === session) this.#docs.delete(session.document)
  }

  /** Close with a coded reason (or 1000 without one). Safe to call twice. */
  close(error?: ConcordError): void {
    if (this.#closed) return
    if (error !== undefined) {
      this.#deps.options.metrics.refused(error.code)
      const level = error.code === 'CONCORD_ERR_SERVER_SHUTTING_DOWN' ? 'debug' : 'info'
      this.#log[level]({ code: error.code, msg2: error.message }, 'closing connection')
    }
    this.#sender.stop()
    if (error === undefined) this.#ws.close(1000)
    else this.#ws.close(error.closeCode ?? 1011, error.code)
    // a reader that is not reading will not complete the close handshake either
    if (error?.code === 'CONCORD_ERR_LIMIT_SLOW_READER' || error?.code === 'CONCORD_ERR_LIMIT_RATE' || error?.code === 'CONCORD_ERR_LIMIT_CHUNKS_BEFORE_WRITE') {
      setTimeout(() => this.#ws.terminate(), SLOW_READER_GRACE_MS).unref()
    }
    this.dispose()
  }

  /** Release every document; called once the socket is closed either way. */
  dispose(): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer)
    this.#sender.stop()
    this.#throttle.stop()
    this.#assembler.clear()
    for (const s of [...this.#docs.values()]) s.end()
    this.#docs.clear()
  }
}

/** One document on a native connection. */
class NativeDocSession implements DocumentSession {
  readonly id: string
  readonly document: string
  readonly awarenessClientIds = new Set<number>()
  closed = false
  readonly #conn: NativeConnection
  #guard: SessionGuard | null = null
  /** Created when the socket first congests (most never do). */
  #hold: CongestionHold | null = null
  /** Answers the peer's sync step 1 (and OPEN's state vector), one reply outstanding at a time. */
  #sync: SyncResponder | null = null
  #lease: DocumentHandle | null = null
  #queue: { frame: Frame; size: number }[] = []
  #queuedBytes = 0
  #acks: number[] = []
  #ackScheduled = false

  constructor(conn: NativeConnection, document: string) {
    this.#conn = conn
    this.document = document
    this.id = `${conn.id}/${document}`
  }

  readonly protocol = 'native'
  readonly openedAt = Date.now()

  get userId(): string | null {
    return this.#guard?.grant.userId ?? null
  }

  get role(): Role {
    return this.#guard?.role ?? 'read'
  }

  start(lease: DocumentHandle, grant: SessionGrant, clientStateVector: Uint8Array): void {
    this.#lease = lease
    this.#guard = new SessionGuard(grant, this.document, this.#conn.options.authorizer.access, {
      revoke: error => this.documentError(error, 0, true),
      changeRole: (role, expiresAt) => this.#sendAuthState(role, expiresAt),
    })
    // revoked or changed while the document loaded: the session never hears of that change otherwise
    const stale = this.#guard.recheck()
    if (stale !== null) {
      this.documentError(stale, 0, true)
      return
    }
    const role = this.#guard.role
    const doc = lease.doc
    if (doc.stats.failed) {
      // it failed between loading and now; its sessions were already told
      this.documentError(new ConcordError('CONCORD_ERR_DOC_RESET', 'the document was reloaded from its log; open it again'), 0, true)
      return
    }
    const c = this.#conn
    const name = this.document
    c.sendFrame(encodeFrame({ kind: FRAME_KINDS.OPENED, document: name, role }))
    if (grant.expiresAt !== null) this.#sendAuthState(role, grant.expiresAt)
    // answered now, or (a large document's diff, computed off the main thread) after what follows;
    // the session is added below, in this turn, so it receives every update applied after the reply's state
    this.#responder(doc.sync).request(clientStateVector.length > 0 ? clientStateVector : undefined,
      () => this.documentError(new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'the state vector in OPEN could not be decoded'), 0, true))
    if (this.closed) return
    // the server's state vector needs the Y.Doc, which a large document just loaded gets
    // right after these replies went out (a client may receive updates before it)
    doc.sync.whenIntegrated(() => {
      if (!this.closed) c.sendFrame(encodeFrame({ kind: FRAME_KINDS.SYNC_STEP1, document: name, stateVector: doc.sync.stateVector() }))
    })
    const presence = doc.presence.states()
    if (presence !== null) c.sendFrame(encodeFrame({ kind: FRAME_KINDS.AWARENESS, document: name, update: presence }), name)
    // a send above may have closed the socket (slow reader); then the lease is already released
    if (this.closed) return
    doc.addSession(this)
    c.log.debug({ sessionId: this.id, document: name, userId: grant.userId, role }, 'session opened')
    const queued = this.#queue
    this.#dropQueue()
    for (const q of queued) {
      if (this.closed) break
      this.#handleOpen(q.frame)
    }
  }

  #responder(doc: SyncReplySource): SyncResponder {
    this.#sync ??= new SyncResponder({
      document: doc, sender: this.#conn.sender, metrics: this.#conn.options.metrics,
      send: reply => this.#sendSyncReply(reply), closed: () => this.closed,
    })
    return this.#sync
  }

  /** Updates first (the peer holds them pending until the base state arrives), then step 2. */
  #sendSyncReply(reply: SyncReply): void {
    const name = this.document
    for (const update of reply.updates) this.#conn.sendFrame(encodeFrameParts({ kind: FRAME_KINDS.UPDATE, document: name, seq: 0, update }), name)
    this.#conn.sendFrame(encodeFrameParts({ kind: FRAME_KINDS.SYNC_STEP2, document: name, update: reply.step2 }), name)
  }

  receive(frame: Frame, size: number): void {
    if (this.#lease === null) {
      if (frame.kind === FRAME_KINDS.CLOSE) {
        this.end()
        return
      }
      const o = this.#conn.options
      this.#queuedBytes += size
      this.#conn.queuedBytes += size
      // bounded per document, and for all opening documents of the socket together
      if (this.#queue.length >= o.maxQueuedMessagesBeforeOpen || this.#queuedBytes > o.maxQueuedBytesBeforeOpen ||
        this.#conn.queuedBytes > o.maxQueuedBytesBeforeOpen) {
        this.documentError(new ConcordError('CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE',
          `more than ${o.maxQueuedMessagesBeforeOpen} frames or ${o.maxQueuedBytesBeforeOpen} bytes before OPEN was accepted`), 0, true)
        return
      }
      this.#queue.push({ frame, size })
      return
    }
    this.#handleOpen(frame)
  }

  #handleOpen(frame: Frame): void {
    const doc = this.#lease!.doc
    switch (frame.kind) {
      case FRAME_KINDS.CLOSE:
        this.end()
        return
      case FRAME_KINDS.SYNC_STEP1:
        // at most one reply outstanding: step 1 frames meanwhile are answered together, once
        this.#responder(doc.sync).request(frame.stateVector,
          () => this.documentError(new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'state vector could not be decoded'), 0, false))
        return
      case FRAME_KINDS.SYNC_STEP2:
      case FRAME_KINDS.UPDATE: {
        const seq = frame.kind === FRAME_KINDS.UPDATE ? frame.seq : 0
        if (this.role === 'read') {
          this.documentError(new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'this session may only read the document'), seq, false)
          return
        }
        doc.enqueueUpdate(this, seq, frame.update)
        return
      }
      case FRAME_KINDS.AWARENESS:
        doc.presence.apply(this, frame.update)
        return
      case FRAME_KINDS.AUTH:
        void this.#refresh(frame.token)
        return
      case FRAME_KINDS.QUERY_AWARENESS: {
        const presence = doc.presence.states()
        if (presence !== null) this.#conn.sendFrame(encodeFrame({ kind: FRAME_KINDS.AWARENESS, document: this.document, update: presence }), this.document)
        return
      }
      default:
        return
    }
  }

  async #refresh(token: string): Promise<void> {
    let grant: SessionGrant
    try {
      grant = await this.#conn.authorize(this.document, token)
    } catch (err) {
      // the old credential stays in force until it expires
      const e = toConcordError(err)
      if (!this.closed) this.#conn.sendError(this.document, e.code, e.message, 0, false)
      return
    }
    if (!this.closed) this.#guard?.replace(grant)
  }

  #sendAuthState(role: Role, expiresAt: number | null): void {
    if (this.closed) return
    const expiresInMs = expiresAt === null ? 0 : Math.max(1, expiresAt - Date.now())
    this.#conn.sendFrame(encodeFrame({ kind: FRAME_KINDS.AUTH_STATE, document: this.document, role, expiresInMs }), this.document)
  }

  accessChanged(change: AccessChange): void {
    if (!this.closed) this.#guard?.accessChanged(change)
  }

  sendUpdate(message: SharedMessage): void {
    if (this.closed || ((this.#hold !== null || this.#conn.sender.congested) && this.#congestion().holdUpdate(message.payload))) return
    this.#conn.sendFrame(message.native(), this.document)
  }

  sendUpdates(messages: readonly SharedMessage[]): void {
    this.#conn.sender.corked(() => { for (const m of messages) this.sendUpdate(m) })
  }

  sendAwareness(message: SharedMessage): void {
    if (this.closed || ((this.#hold !== null || this.#conn.sender.congested) && this.#congestion().holdPresence())) return
    this.#conn.sendFrame(message.native(), this.document)
  }

  /** The socket drained: what was held goes out, merged. */
  #congestion(): CongestionHold {
    this.#hold ??= new CongestionHold(this.#conn.sender, (update, presence) => this.#flushHeld(update, presence))
    return this.#hold
  }

  #flushHeld(update: Uint8Array | null, presence: boolean): void {
    if (this.closed) return
    const name = this.document
    if (update !== null) this.#conn.sendFrame(encodeFrameParts({ kind: FRAME_KINDS.UPDATE, document: name, seq: 0, update }), name)
    const snapshot = presence ? this.#lease?.doc.presence.snapshot() : null
    if (snapshot) this.#conn.sendFrame(encodeFrame({ kind: FRAME_KINDS.AWARENESS, document: name, update: snapshot }), name)
  }

  ack(seq: number): void {
    if (this.closed) return
    this.#acks.push(seq)
    if (this.#ackScheduled) return
    this.#ackScheduled = true
    // acks resolved by one commit go out as one frame
    queueMicrotask(() => {
      this.#ackScheduled = false
      const seqs = this.#acks
      this.#acks = []
      if (this.closed || seqs.length === 0) return
      this.#conn.sendFrame(encodeFrame({ kind: FRAME_KINDS.ACK, document: this.document, ranges: toSeqRanges(seqs) }))
    })
  }

  documentError(error: ConcordError, seq: number, closed: boolean): void {
    if (this.closed) return
    this.#conn.sendError(this.document, error.code, error.message, seq, closed)
    if (closed) this.end()
  }

  #dropQueue(): void {
    this.#conn.queuedBytes -= this.#queuedBytes
    this.#queuedBytes = 0
    this.#queue = []
  }

  /** Leave the document (idempotent). */
  end(): void {
    if (this.closed && this.#lease === null) {
      this.#dropQueue()
      this.#conn.forget(this)
      return
    }
    this.closed = true
    this.#guard?.stop()
    this.#dropQueue()
    this.#conn.forget(this)
    const lease = this.#lease
    this.#lease = null
    if (lease !== null) {
      this.#conn.log.debug({ sessionId: this.id, document: this.document }, 'session closed')
      lease.doc.removeSession(this)
      lease.release()
    }
  }
}
