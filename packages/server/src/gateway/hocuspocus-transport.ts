import type { IncomingMessage } from 'node:http'
import {
  ConcordError, decodeHocuspocusMessage, documentNameProblem, encodeHocuspocusMessage, hocuspocusDocumentName, HocuspocusDecodeError,
  MAX_DOCUMENT_NAME_BYTES, type HocuspocusClientMessage,
} from '@concord/protocol'
import type { SessionGrant } from '../auth/session-guard.js'
import { hocuspocusKind } from '../ops/metrics.js'
import type { SocketLike } from './socket-like.js'
import type { ConnectionDeps } from './connection-deps.js'
import { SocketConnection } from './socket-connection.js'
import { HocuspocusSession, type HocuspocusSessionSocket } from './hocuspocus-session.js'

/** A routing key is a document name, or one and a provider's session id (11 characters in 4.x). */
const MAX_KEY_BYTES = MAX_DOCUMENT_NAME_BYTES + 64
/** Keys whose session was revoked, remembered per socket so their messages are dropped quietly (oldest forgotten first). */
const MAX_DENIED_KEYS = 1_000
const PING = encodeHocuspocusMessage({ type: 'ping' })
/**
 * An application-level ping this often: the provider reconnects when it heard nothing for 30 s
 * (`messageReconnectTimeout`), and it cannot see WebSocket pings (the gateway's heartbeat).
 */
const KEEPALIVE_MS = 10_000

/**
 * A stock `@hocuspocus/provider` socket (a `HocuspocusProviderWebsocket`, one or many providers on
 * it): the third transport, with the same limits, access control and durability as the others.
 * Documents are named in-band, each with its own token (`Auth`), answered `Authenticated` with the
 * session's scope or `PermissionDenied` with an error code. The socket is paced like the others
 * (`ReadThrottle`, the pre-open byte budget until a document is open for writing) and a connection
 * problem closes it with a coded reason; a document problem is told on that document's key only.
 */
export class HocuspocusConnection extends SocketConnection implements HocuspocusSessionSocket {
  readonly #request: IncomingMessage
  readonly #sessions = new Map<string, HocuspocusSession>()
  /** Keys refused or revoked on this socket (created by the first). */
  #denied: Set<string> | null = null
  #mayWrite = false
  readonly #keepalive: NodeJS.Timeout

  constructor(ws: SocketLike, request: IncomingMessage, deps: ConnectionDeps, connectionId: string) {
    super(ws, deps, connectionId, 'hocuspocus')
    this.#request = request
    this.#keepalive = setInterval(() => this.sender.send(PING), KEEPALIVE_MS)
    this.#keepalive.unref()
  }

  get protocol(): 'hocuspocus' {
    return 'hocuspocus'
  }

  protected messageKind(data: Uint8Array): string {
    return hocuspocusKind(data)
  }

  protected handleMessage(data: Uint8Array): void {
    this.#receive(data)
  }

  #receive(data: Uint8Array): void {
    let message: HocuspocusClientMessage
    try {
      message = decodeHocuspocusMessage(data)
    } catch (err) {
      const e = err as HocuspocusDecodeError
      if (e.unknownType !== undefined && e.key !== undefined && e.key.length <= MAX_KEY_BYTES) {
        // a message type of a newer provider, or one only servers send: not this document's end
        this.deps.metrics.refused('CONCORD_ERR_PROTOCOL_UNKNOWN_KIND')
        this.debug({ document: hocuspocusDocumentName(e.key), type: e.unknownType }, 'unknown message type ignored')
        return
      }
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', e.message, { cause: err }))
      return
    }
    if (message.type === 'pong' || message.type === 'ping') return
    if (message.key.length > MAX_KEY_BYTES) {
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', 'document name too long'))
      return
    }
    if (message.type === 'token') {
      this.#token(message.key, message.token)
      return
    }
    if (message.type === 'close') {
      // the provider detached the document (its presence leaves with the session)
      this.#sessions.get(message.key)?.end()
      return
    }
    // after a revocation the provider keeps sending until it reconnects: dropped, not queued
    if (!this.#sessions.has(message.key) && this.#denied?.has(message.key) === true) return
    const session = this.#sessions.get(message.key) ?? this.#begin(message.key)
    if (session === null) return
    if (!session.receive(message, data.length)) {
      const o = this.deps.config
      this.#refuse(session, new ConcordError('CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE',
        `more than ${o.maxQueuedMessagesBeforeOpen} messages or ${o.maxQueuedBytesBeforeOpen} bytes before the document was open`))
    }
  }

  /** A session for a key the socket has not used yet: it waits for its token. Null when refused. */
  #begin(key: string): HocuspocusSession | null {
    const o = this.deps.config
    const document = hocuspocusDocumentName(key)
    const problem = documentNameProblem(document)
    if (problem !== null) {
      this.deps.metrics.refused('CONCORD_ERR_DOC_INVALID_NAME')
      this.sender.send(encodeHocuspocusMessage({ type: 'permission-denied', key, reason: 'CONCORD_ERR_DOC_INVALID_NAME' }))
      this.#deny(key)
      return null
    }
    if (this.#sessions.size >= o.maxDocumentsPerConnection) {
      this.deps.metrics.refused('CONCORD_ERR_LIMIT_DOCUMENTS_PER_CONNECTION')
      this.sender.send(encodeHocuspocusMessage({ type: 'permission-denied', key, reason: 'CONCORD_ERR_LIMIT_DOCUMENTS_PER_CONNECTION' }))
      return null
    }
    let pending = 0
    for (const s of this.#sessions.values()) if (!s.opened) pending++
    if (pending >= o.maxPendingDocuments) {
      this.close(new ConcordError('CONCORD_ERR_LIMIT_PENDING_DOCUMENTS', `more than ${o.maxPendingDocuments} documents opening at once`))
      return null
    }
    this.#denied?.delete(key)
    const session = new HocuspocusSession(this, key, this.deps)
    this.#sessions.set(key, session)
    // a key that never sends its token is let go (its queue with it)
    const timer = setTimeout(() => {
      if (!session.authenticating && !session.closed) this.#refuse(session, new ConcordError('CONCORD_ERR_PROTOCOL_HANDSHAKE_TIMEOUT', 'no token for this document'))
    }, o.handshakeTimeoutMs)
    timer.unref()
    return session
  }

  #token(key: string, token: string): void {
    const session = this.#sessions.get(key) ?? this.#begin(key)
    if (session === null) return
    if (session.authenticating) {
      // a fresh token for an open session (asked for before expiry, or the provider's own)
      if (session.opened) void session.refresh(token)
      return
    }
    session.authenticating = true
    void this.#open(session, token)
  }

  async #open(session: HocuspocusSession, token: string): Promise<void> {
    const opened = await session.open(token, this.#request)
    if (!opened || session.closed || this.closed) return
    session.start()
  }

  #refuse(session: HocuspocusSession, error: ConcordError): void {
    this.deps.metrics.refused(error.code)
    this.info({ document: session.document, code: error.code }, 'document refused')
    this.sender.send(encodeHocuspocusMessage({ type: 'permission-denied', key: session.key, reason: error.code }))
    session.end()
    this.#deny(session.key)
  }

  #deny(key: string): void {
    const denied = this.#denied ??= new Set()
    denied.add(key)
    if (denied.size > MAX_DENIED_KEYS) denied.delete(denied.values().next().value!)
  }

  authorize(document: string, token: string): Promise<SessionGrant> {
    return this.deps.authorizer.grant({ document, token, transport: 'hocuspocus', request: this.#request }, this)
  }

  grantWrite(): void {
    if (this.#mayWrite) return
    this.#mayWrite = true
    this.allowFullMessages()
  }

  forget(session: HocuspocusSession, denied: boolean): void {
    if (this.#sessions.get(session.key) === session) this.#sessions.delete(session.key)
    if (denied) this.#deny(session.key)
  }

  protected disposed(): void {
    clearInterval(this.#keepalive)
    for (const s of [...this.#sessions.values()]) s.end()
    this.#sessions.clear()
  }
}
