import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import type { Log } from './connection-log.js'
import { ConcordError, toConcordError, decodeYMessage, encodeYMessage, encodeYMessageParts, YMessageDecodeError, type Role, type YMessage } from '@concord/protocol'
import type { DocumentSession } from '../documents/document-session.js'
import type { DocumentHandle } from '../documents/document-registry.js'
import type { SharedMessage } from '../documents/shared-message.js'
import { rateLimitsOf, type ConnectionDeps } from './native-transport.js'
import { ReadThrottle } from './read-throttle.js'
import { bytesBeforeWriteAccess, setReceiveLimit } from './receive-limit.js'
import { SocketSender, SLOW_READER_GRACE_MS } from './socket-sender.js'
import { CongestionHold } from './congestion.js'
import { SyncResponder, type SyncReplySource } from './sync-responder.js'
import { SessionGuard } from '../auth/session-guard.js'
import type { AccessChange } from '../auth/access-control.js'
import { yWebsocketKind } from '../ops/metrics.js'

/**
 * A stock y-websocket client: one document per socket, named by the URL path,
 * token in the `token` query parameter. There are no in-band errors in this
 * protocol, so every failure closes the socket with a coded reason, except a
 * refused write, which is answered with y-protocols' permission-denied message.
 */
export class YWebsocketConnection implements DocumentSession {
  readonly id: string
  readonly document: string
  readonly awarenessClientIds = new Set<number>()
  readonly protocol = 'y-websocket'
  readonly openedAt = Date.now()
  #guard: SessionGuard | null = null
  /** Created when the socket first congests (most never do). */
  #hold: CongestionHold | null = null
  /** Answers the peer's sync step 1, one reply outstanding at a time. */
  #sync: SyncResponder | null = null
  readonly #throttle: ReadThrottle
  /** Runs while the rate limit slows this socket (see `#slowed`). */
  #keepalive: NodeJS.Timeout | null = null
  readonly #ws: WebSocket
  #request: IncomingMessage | null
  #token: string
  readonly #deps: ConnectionDeps
  readonly #log: Log
  readonly #sender: SocketSender
  #lease: DocumentHandle | null = null
  #queue: Uint8Array[] = []
  #queuedBytes = 0
  #closed = false
  #sawStep2 = false

  constructor(ws: WebSocket, request: IncomingMessage, document: string, token: string, deps: ConnectionDeps) {
    this.id = deps.connectionId
    this.document = document
    this.#ws = ws
    this.#request = request
    this.#token = token
    this.#deps = deps
    this.#log = deps.logger
    const metrics = deps.options.metrics
    this.#sender = new SocketSender(ws, this, { ...deps.options, chunkBytes: 0, onSend: (first, length) => metrics.message('out', 'y-websocket', yWebsocketKind(first), length) })
    const onError = (err: unknown): void => {
      this.#log.error({ err }, 'unexpected error handling a message')
      this.close(new ConcordError('CONCORD_ERR_SERVER_INTERNAL'))
    }
    this.#throttle = new ReadThrottle(ws, { ...rateLimitsOf(deps.options), onPause: () => this.#slowed(), onError }, data => this.#receive(data), reason => {
      this.close(new ConcordError('CONCORD_ERR_LIMIT_RATE', reason))
      this.#ws.pause()
    })
    // until the session may write, a message may be at most the pre-open budget
    setReceiveLimit(ws, bytesBeforeWriteAccess(deps.options))
    void this.#start()
  }

  async #start(): Promise<void> {
    const o = this.#deps.options
    let lease: DocumentHandle
    try {
      const grant = await o.authorizer.grant({
        document: this.document, token: this.#token, transport: 'y-websocket', request: this.#request!,
      }, this.#log)
      // an idle socket should not keep the upgrade request (headers and all) alive
      this.#request = null
      this.#token = ''
      if (this.#closed) return
      this.#guard = new SessionGuard(grant, this.document, o.authorizer.access, this)
      lease = await this.#deps.registry.acquire(this.document).catch(err => {
        this.#log.error({ err, document: this.document }, 'document load failed')
        throw new ConcordError('CONCORD_ERR_DOC_LOAD_FAILED', `could not load document: ${(err as Error).message}`, { cause: err })
      })
    } catch (err) {
      const e = toConcordError(err)
      if (e.code === 'CONCORD_ERR_AUTH_DENIED' || e.code === 'CONCORD_ERR_AUTH_FORBIDDEN') {
        this.#send(encodeYMessage({ type: 'permission-denied', reason: e.code }))
      }
      this.close(e)
      return
    }
    if (this.#closed) {
      lease.release()
      return
    }
    this.#lease = lease
    // revoked or changed while the document loaded: the session never heard of that change
    const stale = this.#guard!.recheck()
    if (stale !== null) {
      this.close(stale)
      return
    }
    const doc = lease.doc
    const presence = doc.presence.states()
    if (presence !== null) this.#send(encodeYMessage({ type: 'awareness', update: presence }))
    if (this.#closed) return
    if (this.role !== 'read') setReceiveLimit(this.#ws, this.#deps.options.maxMessageBytes)
    doc.addSession(this)
    this.#log.debug({ sessionId: this.id, document: this.document, userId: this.userId, role: this.role }, 'session opened')
    // What the client sent while the document loaded (its sync step 1, typically) is
    // answered first, then the server's own step 1: the client's step 1 of an empty
    // document is answered from the stored bytes, before a freshly loaded large document
    // is integrated into its Y.Doc (which its state vector needs).
    const queued = this.#queue
    this.#queue = []
    this.#queuedBytes = 0
    for (const data of queued) {
      if (this.#closed) break
      this.#handle(data)
    }
    doc.sync.whenIntegrated(() => {
      if (!this.#closed) this.#send(encodeYMessage({ type: 'sync-step1', stateVector: doc.sync.stateVector() }))
    })
  }

  /** SessionGuard: y-websocket has no in-band errors and no way to refresh a token, so close with the coded reason. */
  revoke(error: ConcordError): void {
    this.close(error)
  }

  /** SessionGuard: a downgraded session's writes are refused from now on; nothing to tell the client. */
  changeRole(): void {}

  /** One message arrived: handled within the socket's rate limit, the socket read more slowly above it (`ReadThrottle`). */
  receive(data: Uint8Array): void {
    if (this.#closed) return
    this.#deps.options.metrics.message('in', 'y-websocket', yWebsocketKind(data), data.length)
    this.#throttle.receive(data)
    const held = this.heldBytes
    if (held > this.peakHeldBytes) this.peakHeldBytes = held
  }

  /** The most `heldBytes` seen on this socket (when a message arrived). */
  peakHeldBytes = 0

  /**
   * The stock provider closes a connection on which it heard nothing for 30 s, and a fast
   * writer hears nothing while the server works through its backlog (y-websocket has no
   * acks). While its socket is slowed, it gets an empty awareness update every heartbeat
   * interval, at least every 10 s.
   */
  #slowed(): void {
    if (this.#keepalive !== null) return
    const every = Math.min(KEEPALIVE_MS, this.#deps.options.heartbeatIntervalMs)
    this.#keepalive = setInterval(() => {
      if (this.#closed || Date.now() - this.#throttle.pausedAt > every) {
        if (this.#keepalive !== null) clearInterval(this.#keepalive)
        this.#keepalive = null
        return
      }
      this.#send(EMPTY_AWARENESS)
    }, every)
    this.#keepalive.unref()
  }

  /** Bytes received from this socket and held: waiting for the rate limit, or queued before the session started. */
  get heldBytes(): number {
    return this.#throttle.heldBytes + this.#queuedBytes
  }

  /** Now while its reading is paused by the rate limit; otherwise when it was last resumed (0: never paused). */
  get readPausedAt(): number {
    return this.#throttle.pausedAt
  }

  #receive(data: Uint8Array): void {
    if (this.#closed) return
    if (this.#lease === null) {
      const o = this.#deps.options
      this.#queuedBytes += data.length
      if (this.#queue.length >= o.maxQueuedMessagesBeforeOpen || this.#queuedBytes > o.maxQueuedBytesBeforeOpen) {
        this.close(new ConcordError('CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE'))
        return
      }
      this.#queue.push(data)
      return
    }
    this.#handle(data)
  }

  #handle(data: Uint8Array): void {
    let message: YMessage
    try {
      message = decodeYMessage(data)
    } catch (err) {
      const e = err as YMessageDecodeError
      this.close(new ConcordError(e.unknownType !== undefined ? 'CONCORD_ERR_PROTOCOL_UNKNOWN_KIND' : 'CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', e.message))
      return
    }
    const doc = this.#lease!.doc
    switch (message.type) {
      case 'sync-step1':
        // at most one reply outstanding: step 1 messages meanwhile are answered together, once
        this.#responder(doc.sync).request(message.stateVector,
          () => this.close(new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'state vector could not be decoded')))
        return
      case 'sync-step2':
      case 'update':
        if (this.role === 'read') {
          // the stock provider answers the server's step 1 with a step 2 holding no new items
          // (just the delete set): that handshake reply is not a write attempt
          if (message.type === 'sync-step2' && !this.#sawStep2 && hasNoStructs(message.update)) {
            this.#sawStep2 = true
            return
          }
          this.#deps.options.metrics.refused('CONCORD_ERR_AUTH_FORBIDDEN')
          this.#log.debug({ document: this.document, code: 'CONCORD_ERR_AUTH_FORBIDDEN' }, 'write refused')
          this.#send(encodeYMessage({ type: 'permission-denied', reason: 'CONCORD_ERR_AUTH_FORBIDDEN' }))
          return
        }
        doc.enqueueUpdate(this, 0, message.update)
        return
      case 'awareness':
        doc.presence.apply(this, message.update)
        return
      case 'query-awareness': {
        const presence = doc.presence.states()
        if (presence !== null) this.#send(encodeYMessage({ type: 'awareness', update: presence }))
        return
      }
      case 'permission-denied':
        return
    }
  }

  #responder(doc: SyncReplySource): SyncResponder {
    this.#sync ??= new SyncResponder({
      document: doc, sender: this.#sender, metrics: this.#deps.options.metrics, closed: () => this.#closed,
      send: reply => {
        // updates first: the peer holds them pending until the base state in step 2 arrives
        for (const update of reply.updates) this.#send(encodeYMessageParts({ type: 'update', update }))
        this.#send(encodeYMessageParts({ type: 'sync-step2', update: reply.step2 }))
      },
    })
    return this.#sync
  }

  #send(bytes: Uint8Array | readonly Uint8Array[]): void {
    this.#sender.send(bytes)
  }

  sendUpdate(message: SharedMessage): void {
    if (this.#closed || ((this.#hold !== null || this.#sender.congested) && this.#congestion().holdUpdate(message.payload))) return
    this.#send(message.yWebsocket())
  }

  sendUpdates(messages: readonly SharedMessage[]): void {
    this.#sender.corked(() => { for (const m of messages) this.sendUpdate(m) })
  }

  sendAwareness(message: SharedMessage): void {
    if (this.#closed || ((this.#hold !== null || this.#sender.congested) && this.#congestion().holdPresence())) return
    this.#send(message.yWebsocket())
  }

  /** The socket drained: what was held goes out, merged. */
  #congestion(): CongestionHold {
    this.#hold ??= new CongestionHold(this.#sender, (update, presence) => this.#flushHeld(update, presence))
    return this.#hold
  }

  #flushHeld(update: Uint8Array | null, presence: boolean): void {
    if (this.#closed) return
    if (update !== null) this.#send(encodeYMessageParts({ type: 'update', update }))
    const snapshot = presence ? this.#lease?.doc.presence.snapshot() : null
    if (snapshot) this.#send(encodeYMessage({ type: 'awareness', update: snapshot }))
  }

  get sender(): SocketSender {
    return this.#sender
  }

  get userId(): string | null {
    return this.#guard?.grant.userId ?? null
  }

  get role(): Role {
    return this.#guard?.role ?? 'read'
  }

  accessChanged(change: AccessChange): void {
    if (!this.#closed) this.#guard?.accessChanged(change)
  }

  ack(): void {
    // y-websocket has no save acks
  }

  documentError(error: ConcordError): void {
    this.close(error)
  }

  close(error?: ConcordError): void {
    if (this.#closed) return
    if (error !== undefined) this.#deps.options.metrics.refused(error.code)
    if (error !== undefined && error.code !== 'CONCORD_ERR_SERVER_SHUTTING_DOWN') {
      this.#log.info({ code: error.code, document: this.document }, 'closing y-websocket connection')
    }
    this.#sender.stop()
    if (error === undefined) this.#ws.close(1000)
    else this.#ws.close(error.closeCode ?? 1011, error.code)
    // a reader that is not reading will not complete the close handshake either
    if (error?.code === 'CONCORD_ERR_LIMIT_SLOW_READER' || error?.code === 'CONCORD_ERR_LIMIT_RATE') setTimeout(() => this.#ws.terminate(), SLOW_READER_GRACE_MS).unref()
    this.dispose()
  }

  dispose(): void {
    if (this.#closed) return
    this.#closed = true
    this.#guard?.stop()
    this.#sender.stop()
    this.#throttle.stop()
    if (this.#keepalive !== null) clearInterval(this.#keepalive)
    this.#keepalive = null
    this.#queue = []
    this.#queuedBytes = 0
    const lease = this.#lease
    this.#lease = null
    if (lease !== null) {
      this.#log.debug({ sessionId: this.id, document: this.document }, 'session closed')
      lease.doc.removeSession(this)
      lease.release()
    }
  }
}

const KEEPALIVE_MS = 10_000
/** An awareness update about no client: the provider applies it as nothing. */
const EMPTY_AWARENESS = encodeYMessage({ type: 'awareness', update: new Uint8Array([0]) })

/** A Yjs v1 update starts with the number of clients whose structs it carries. */
function hasNoStructs(update: Uint8Array): boolean {
  return update.length > 0 && update[0] === 0
}
