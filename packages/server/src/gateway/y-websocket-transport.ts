import type { IncomingMessage } from 'node:http'
import type { Log } from './connection-log.js'
import { ConcordError, decodeYMessage, encodeYMessage, encodeYMessageParts, YMessageDecodeError, type YMessage } from '@concord/protocol'
import type { SharedMessage } from '../documents/shared-message.js'
import { ReadThrottle } from './read-throttle.js'
import { bytesBeforeWriteAccess, setReceiveLimit } from './receive-limit.js'
import { SocketSender } from './socket-sender.js'
import { yWebsocketKind } from '../ops/metrics.js'
import type { SocketLike } from './socket-like.js'
import { rateLimitsOf, senderOptionsOf, type ConnectionDeps } from './connection-deps.js'
import { noteClose, TransportSession, type SessionSocket } from './transport-session.js'

/**
 * A stock y-websocket client: one document per socket, named by the URL path,
 * token in the `token` query parameter. There are no in-band errors in this
 * protocol, so every failure closes the socket with a coded reason, except a
 * refused write, which is answered with y-protocols' permission-denied message.
 */
export class YWebsocketConnection implements SessionSocket {
  readonly id: string
  readonly #session: YWebsocketSession
  readonly #throttle: ReadThrottle
  /** Runs while the rate limit slows this socket (see `#slowed`). */
  #keepalive: NodeJS.Timeout | null = null
  readonly #ws: SocketLike
  readonly #deps: ConnectionDeps
  readonly #log: Log
  readonly #sender: SocketSender
  /** Bytes queued before the session's document was open. */
  queuedBytes = 0
  #closed = false

  constructor(ws: SocketLike, request: IncomingMessage, document: string, token: string, deps: ConnectionDeps) {
    this.id = deps.connectionId
    this.#ws = ws
    this.#deps = deps
    this.#log = deps.logger
    const metrics = deps.metrics
    this.#sender = new SocketSender(ws, this, {
      ...senderOptionsOf(deps.config, 0), onSend: (first, length) => metrics.message('out', 'y-websocket', yWebsocketKind(first), length),
    })
    const onError = (err: unknown): void => {
      this.#log.error({ err }, 'unexpected error handling a message')
      this.close(new ConcordError('CONCORD_ERR_SERVER_INTERNAL'))
    }
    this.#throttle = new ReadThrottle(ws, { ...rateLimitsOf(deps.config), onPause: () => this.#slowed(), onError }, data => this.#receive(data), reason => {
      this.close(new ConcordError('CONCORD_ERR_LIMIT_RATE', reason))
      this.#ws.pause()
    })
    // until the session may write, a message may be at most the pre-open budget
    setReceiveLimit(ws, bytesBeforeWriteAccess(deps.config))
    this.#session = new YWebsocketSession(this, document, deps)
    // the upgrade request and the token are not kept: an idle socket should not keep them alive
    void this.#session.start(token, request)
  }

  get log(): Log {
    return this.#log
  }

  get sender(): SocketSender {
    return this.#sender
  }

  /** One message arrived: handled within the socket's rate limit, the socket read more slowly above it (`ReadThrottle`). */
  receive(data: Uint8Array): void {
    if (this.#closed) return
    this.#deps.metrics.message('in', 'y-websocket', yWebsocketKind(data), data.length)
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
    const every = Math.min(KEEPALIVE_MS, this.#deps.config.heartbeatIntervalMs)
    this.#keepalive = setInterval(() => {
      if (this.#closed || Date.now() - this.#throttle.pausedAt > every) {
        if (this.#keepalive !== null) clearInterval(this.#keepalive)
        this.#keepalive = null
        return
      }
      this.#sender.send(EMPTY_AWARENESS)
    }, every)
    this.#keepalive.unref()
  }

  /** Bytes received from this socket and held: waiting for the rate limit, or queued before the session started. */
  get heldBytes(): number {
    return this.#throttle.heldBytes + this.queuedBytes
  }

  /** Now while its reading is paused by the rate limit; otherwise when it was last resumed (0: never paused). */
  get readPausedAt(): number {
    return this.#throttle.pausedAt
  }

  #receive(data: Uint8Array): void {
    if (this.#closed) return
    this.#session.receive(data)
  }

  /** The session may write: from now on a message may be up to `maxMessageBytes`. */
  grantWrite(): void {
    setReceiveLimit(this.#ws, this.#deps.config.maxMessageBytes)
  }

  close(error?: ConcordError): void {
    if (this.#closed) return
    if (error !== undefined) noteClose(error, this.#log, this.#deps.metrics)
    this.#sender.closeSocket(error)
    this.dispose()
  }

  dispose(): void {
    if (this.#closed) return
    this.#closed = true
    this.#sender.stop()
    this.#throttle.stop()
    if (this.#keepalive !== null) clearInterval(this.#keepalive)
    this.#keepalive = null
    this.#session.end()
  }
}

/** The one room of a y-websocket socket: y-protocols messages around the shared lifecycle. */
class YWebsocketSession extends TransportSession<Uint8Array> {
  readonly protocol = 'y-websocket'
  readonly #conn: YWebsocketConnection
  readonly #metrics: ConnectionDeps['metrics']
  #sawStep2 = false

  constructor(conn: YWebsocketConnection, document: string, deps: ConnectionDeps) {
    super(conn.id, document, conn, deps)
    this.#conn = conn
    this.#metrics = deps.metrics
  }

  /**
   * Grant and load, then the room's presence, and the session joins the document. What the
   * client sent while the document loaded (its sync step 1, typically) is answered first, then
   * the server's own step 1: the client's step 1 of an empty document is answered from the
   * stored bytes, before a freshly loaded large document is integrated into its Y.Doc (which
   * its state vector needs).
   */
  async start(token: string, request: IncomingMessage): Promise<void> {
    if (!(await this.open(token, request))) return
    this.sendPresenceSnapshot()
    if (this.closed) return
    if (this.role !== 'read') this.#conn.grantWrite()
    this.join()
    this.sendStep1WhenIntegrated()
  }

  receive(data: Uint8Array): void {
    if (this.isOpen) {
      this.handle(data)
      return
    }
    if (!this.queue(data, data.length)) this.#conn.close(new ConcordError('CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE'))
  }

  protected handle(data: Uint8Array): void {
    let message: YMessage
    try {
      message = decodeYMessage(data)
    } catch (err) {
      const e = err as YMessageDecodeError
      this.#conn.close(new ConcordError(e.unknownType !== undefined ? 'CONCORD_ERR_PROTOCOL_UNKNOWN_KIND' : 'CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', e.message))
      return
    }
    switch (message.type) {
      case 'sync-step1':
        this.requestSync(message.stateVector,
          () => this.#conn.close(new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'state vector could not be decoded')))
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
          this.#refuseWrite()
          return
        }
        this.write(0, message.update)
        return
      case 'awareness':
        this.applyPresence(message.update)
        return
      case 'query-awareness':
        this.sendPresenceSnapshot()
        return
      case 'permission-denied':
        return
    }
  }

  #refuseWrite(): void {
    this.#metrics.refused('CONCORD_ERR_AUTH_FORBIDDEN')
    this.#conn.log.debug({ document: this.document, code: 'CONCORD_ERR_AUTH_FORBIDDEN' }, 'write refused')
    this.sender.send(encodeYMessage({ type: 'permission-denied', reason: 'CONCORD_ERR_AUTH_FORBIDDEN' }))
  }

  protected refused(error: ConcordError): void {
    if (error.code === 'CONCORD_ERR_AUTH_DENIED' || error.code === 'CONCORD_ERR_AUTH_FORBIDDEN') {
      this.sender.send(encodeYMessage({ type: 'permission-denied', reason: error.code }))
    }
    this.#conn.close(error)
  }

  /** y-websocket has no in-band errors and no way to refresh a token, so close with the coded reason. */
  revoke(error: ConcordError): void {
    this.#conn.close(error)
  }

  /** A downgraded session's writes are refused from now on; nothing to tell the client. */
  changeRole(): void {}

  ack(): void {
    // y-websocket has no save acks
  }

  documentError(error: ConcordError): void {
    this.#conn.close(error)
  }

  protected sendShared(message: SharedMessage): void {
    this.sender.send(message.yWebsocket())
  }

  protected sendUpdateBytes(update: Uint8Array): void {
    this.sender.send(encodeYMessageParts({ type: 'update', update }))
  }

  protected sendStep1(stateVector: Uint8Array): void {
    this.sender.send(encodeYMessage({ type: 'sync-step1', stateVector }))
  }

  protected sendStep2(update: Uint8Array): void {
    this.sender.send(encodeYMessageParts({ type: 'sync-step2', update }))
  }

  protected sendPresence(update: Uint8Array): void {
    this.sender.send(encodeYMessage({ type: 'awareness', update }))
  }
}

const KEEPALIVE_MS = 10_000
/** An awareness update about no client: the provider applies it as nothing. */
const EMPTY_AWARENESS = encodeYMessage({ type: 'awareness', update: new Uint8Array([0]) })

/** A Yjs v1 update starts with the number of clients whose structs it carries. */
function hasNoStructs(update: Uint8Array): boolean {
  return update.length > 0 && update[0] === 0
}
