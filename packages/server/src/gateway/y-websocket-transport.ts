import type { IncomingMessage } from 'node:http'
import { ConcordError, decodeYMessage, encodeYMessage, encodeYMessageParts, YMessageDecodeError, type YMessage } from '@concord/protocol'
import type { SharedMessage } from '../documents/shared-message.js'
import { yWebsocketKind } from '../ops/metrics.js'
import type { SocketLike } from './socket-like.js'
import type { ConnectionDeps } from './connection-deps.js'
import { SocketConnection } from './socket-connection.js'
import { TransportSession } from './transport-session.js'
import { wireFrame, type WireFrame } from './wire-frame.js'

/**
 * A stock y-websocket client: one document per socket, named by the URL path,
 * token in the `token` query parameter. There are no in-band errors in this
 * protocol, so every failure closes the socket with a coded reason, except a
 * refused write, which is answered with y-protocols' permission-denied message.
 */
export class YWebsocketConnection extends SocketConnection {
  readonly #session: YWebsocketSession
  /** Runs while the rate limit slows this socket (see `readPaused`). */
  #keepalive: NodeJS.Timeout | null = null

  constructor(ws: SocketLike, request: IncomingMessage, deps: ConnectionDeps, connectionId: string, document: string, token: string) {
    super(ws, deps, connectionId, 'y-websocket')
    this.#session = new YWebsocketSession(this, document, deps)
    // the upgrade request and the token are not kept: an idle socket should not keep them alive
    void this.#session.start(token, request)
  }

  get protocol(): 'y-websocket' {
    return 'y-websocket'
  }

  protected messageKind(data: Uint8Array): string {
    return yWebsocketKind(data)
  }

  protected override logBindings(): Record<string, unknown> {
    return { ...super.logBindings(), document: this.#session.document }
  }

  /**
   * The stock provider closes a connection on which it heard nothing for 30 s, and a fast
   * writer hears nothing while the server works through its backlog (y-websocket has no
   * acks). While its socket is slowed, it gets an empty awareness update every heartbeat
   * interval, at least every 10 s.
   */
  readPaused(): void {
    if (this.#keepalive !== null) return
    const every = Math.min(KEEPALIVE_MS, this.deps.config.heartbeatIntervalMs)
    this.#keepalive = setInterval(() => {
      if (this.closed || Date.now() - this.readPausedAt > every) {
        if (this.#keepalive !== null) clearInterval(this.#keepalive)
        this.#keepalive = null
        return
      }
      this.sender.send(EMPTY_AWARENESS)
    }, every)
    this.#keepalive.unref()
  }

  protected handleMessage(data: Uint8Array): void {
    this.#session.receive(data)
  }

  /** The session may write: from now on a message may be up to `maxMessageBytes`. */
  grantWrite(): void {
    this.allowFullMessages()
  }

  protected disposed(): void {
    if (this.#keepalive !== null) clearInterval(this.#keepalive)
    this.#keepalive = null
    this.#session.end()
  }
}

/** The one room of a y-websocket socket: y-protocols messages around the shared lifecycle. */
class YWebsocketSession extends TransportSession<Uint8Array, YWebsocketConnection> {
  #sawStep2 = false

  constructor(conn: YWebsocketConnection, document: string, deps: ConnectionDeps) {
    super(conn.id, document, conn, deps)
  }

  get protocol(): 'y-websocket' {
    return 'y-websocket'
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
    if (this.role !== 'read') this.socket.grantWrite()
    this.join()
    this.sendStep1WhenIntegrated()
  }

  receive(data: Uint8Array): void {
    if (this.isOpen) {
      this.handle(data)
      return
    }
    if (!this.queue(data, data.length)) this.socket.close(new ConcordError('CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE'))
  }

  protected handle(data: Uint8Array): void {
    let message: YMessage
    try {
      message = decodeYMessage(data)
    } catch (err) {
      const e = err as YMessageDecodeError
      this.socket.close(new ConcordError(e.unknownType !== undefined ? 'CONCORD_ERR_PROTOCOL_UNKNOWN_KIND' : 'CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', e.message))
      return
    }
    switch (message.type) {
      case 'sync-step1':
        this.requestSync(message.stateVector,
          () => this.socket.close(new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'state vector could not be decoded')))
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
    this.metrics.refused('CONCORD_ERR_AUTH_FORBIDDEN')
    this.socket.log.debug({ document: this.document, code: 'CONCORD_ERR_AUTH_FORBIDDEN' }, 'write refused')
    this.sender.send(encodeYMessage({ type: 'permission-denied', reason: 'CONCORD_ERR_AUTH_FORBIDDEN' }))
  }

  protected refused(error: ConcordError): void {
    if (error.code === 'CONCORD_ERR_AUTH_DENIED' || error.code === 'CONCORD_ERR_AUTH_FORBIDDEN') {
      this.sender.send(encodeYMessage({ type: 'permission-denied', reason: error.code }))
    }
    this.socket.close(error)
  }

  /** y-websocket has no in-band errors and no way to refresh a token, so close with the coded reason. */
  revoke(error: ConcordError): void {
    this.socket.close(error)
  }

  /** A downgraded session's writes are refused from now on; nothing to tell the client. */
  changeRole(): void {}

  ack(): void {
    // y-websocket has no save acks
  }

  documentError(error: ConcordError): void {
    this.socket.close(error)
  }

  protected sendShared(message: SharedMessage): void {
    this.sender.sendWire(message.derived(Y_WEBSOCKET_FRAME, yWebsocketFrame))
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

/** The key of a shared message's y-websocket frame (see `SharedMessage.derived`). */
const Y_WEBSOCKET_FRAME = Symbol('y-websocket frame')
const yWebsocketFrame = (m: SharedMessage): WireFrame => wireFrame(m.yWebsocket())

const KEEPALIVE_MS = 10_000
/** An awareness update about no client: the provider applies it as nothing. */
const EMPTY_AWARENESS = encodeYMessage({ type: 'awareness', update: new Uint8Array([0]) })

/** A Yjs v1 update starts with the number of clients whose structs it carries. */
function hasNoStructs(update: Uint8Array): boolean {
  return update.length > 0 && update[0] === 0
}
