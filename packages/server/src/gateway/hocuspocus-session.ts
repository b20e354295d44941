import {
  ConcordError, encodeHocuspocusKey, encodeHocuspocusMessage, encodeYMessage, encodeYMessageParts, hocuspocusDocumentName, HOCUSPOCUS_KEY_SEPARATOR,
  type HocuspocusClientMessage, type HocuspocusServerMessage, type Role,
} from '@concord/protocol'
import type { SharedMessage } from '../documents/shared-message.js'
import type { SessionGrant } from '../auth/session-guard.js'
import { TransportSession, type SessionSocket, type TransportSessionDeps } from './transport-session.js'
import { wireFrame, type WireFrame } from './wire-frame.js'

/** What a Hocuspocus document session needs of its connection (`HocuspocusConnection`). */
export interface HocuspocusSessionSocket extends SessionSocket {
  readonly id: string
  /** Check a fresh token for an open document (the provider sends one when asked, or on its own). */
  authorize(document: string, token: string): Promise<SessionGrant>
  /** The session ended; `denied`: messages for its key are dropped until a new token arrives. */
  forget(session: HocuspocusSession, denied: boolean): void
  /** The session may write: the socket may send messages up to the full size from now on. */
  grantWrite(): void
}

/** Messages a session handles once its document is open (the connection handles tokens and keepalives). */
export type HocuspocusSessionMessage = Extract<HocuspocusClientMessage, { type: 'y' | 'stateless' }>

/** How long before its credential expires a provider is asked for a fresh token. */
const TOKEN_REFRESH_LEAD_MS = 30_000

/**
 * One routing key of a Hocuspocus socket (a document, or a document and a provider's session id):
 * Hocuspocus messages around the shared lifecycle. What differs from the other transports:
 *
 * - the token arrives in-band, per document (`Auth`), and the provider queues nothing meanwhile,
 *   so what comes before it is queued here (bounded, as before a native OPEN);
 * - "saved" is `SyncStatus`: the provider counts its unsynced changes up for every update it sends
 *   and down for every `SyncStatus` 1. Hocuspocus sends it once an update is applied; Concord sends
 *   it once the update is durable (the same moment as a native ACK), so the provider's
 *   `hasUnsyncedChanges` means "not yet saved";
 * - a refused update is answered `SyncStatus` 0 (Hocuspocus's answer to a read-only session), a
 *   revoked or refused session `PermissionDenied` with the error code as its reason, then `CLOSE`.
 */
export class HocuspocusSession extends TransportSession<HocuspocusSessionMessage, HocuspocusSessionSocket> {
  /** The routing key the provider uses (echoed on every message for this session). */
  readonly key: string
  readonly #prefix: Uint8Array
  /** Seqs given to the updates and step 2 messages taken in (acked one SyncStatus each). */
  #seq = 0
  #scope: Role | null = null
  #refreshTimer: NodeJS.Timeout | null = null
  /** A token arrived: the session is opening or open. */
  authenticating = false

  /** The document is open for this session. */
  get opened(): boolean {
    return this.isOpen
  }

  constructor(conn: HocuspocusSessionSocket, key: string, deps: TransportSessionDeps) {
    const document = hocuspocusDocumentName(key)
    const at = key.indexOf(HOCUSPOCUS_KEY_SEPARATOR)
    super(at < 0 ? `${conn.id}/${document}` : `${conn.id}/${document}#${key.slice(at + 1)}`, document, conn, deps)
    this.key = key
    this.#prefix = encodeHocuspocusKey(key)
  }

  get protocol(): 'hocuspocus' {
    return 'hocuspocus'
  }

  /** The document is open: the provider learns its scope, then the room's presence, then it joins, then the server's step 1. */
  start(): void {
    this.#sendScope()
    this.sendPresenceSnapshot()
    if (this.closed) return
    if (this.role !== 'read') this.socket.grantWrite()
    this.join()
    this.sendStep1WhenIntegrated()
  }

  /** A message for this key: queued until the document is open, then handled. Returns false when the queue is full. */
  receive(message: HocuspocusSessionMessage, size: number): boolean {
    if (this.isOpen) {
      this.handle(message)
      return true
    }
    return this.queue(message, size)
  }

  protected handle(message: HocuspocusSessionMessage): void {
    if (message.type === 'stateless') {
      const refused = this.sendSignal(message.payload)
      // Hocuspocus has no answer to a stateless message: a refused one is dropped, counted and logged
      if (refused !== null) {
        this.metrics.refused(refused.code)
        this.socket.log.debug({ document: this.document, code: refused.code }, 'stateless message dropped')
      }
      return
    }
    const m = message.message
    switch (m.type) {
      case 'sync-step1':
        this.requestSync(m.stateVector, () => this.documentError(new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'state vector could not be decoded'), 0, false))
        return
      case 'sync-step2':
      case 'update':
        if (this.role === 'read') {
          // the provider answers the server's step 1 with a step 2; one without items is no write
          // attempt, and there is nothing to save: "synced" (Hocuspocus answers the same)
          const applied = m.type === 'sync-step2' && hasNoStructs(m.update)
          if (!applied) this.#refused()
          this.#send({ type: 'sync-status', key: this.key, applied })
          return
        }
        this.write(++this.#seq, m.update)
        return
      case 'awareness':
        this.applyPresence(m.update)
        return
      case 'query-awareness':
        this.sendPresenceSnapshot()
        return
      default:
        return
    }
  }

  /** A token for an open session: it replaces the credential (a refresh, or the provider reconnecting its key). */
  async refresh(token: string): Promise<void> {
    let grant: SessionGrant
    try {
      grant = await this.socket.authorize(this.document, token)
    } catch (err) {
      // the old credential stays in force until it expires
      const e = err instanceof ConcordError ? err : new ConcordError('CONCORD_ERR_AUTH_DENIED', (err as Error).message)
      if (!this.closed) this.#send({ type: 'permission-denied', key: this.key, reason: e.code })
      return
    }
    this.replaceGrant(grant)
  }

  #refused(): void {
    this.metrics.refused('CONCORD_ERR_AUTH_FORBIDDEN')
    this.socket.log.debug({ document: this.document, code: 'CONCORD_ERR_AUTH_FORBIDDEN' }, 'write refused')
  }

  protected refused(error: ConcordError): void {
    if (error.code !== 'CONCORD_ERR_DOC_LOAD_FAILED') this.socket.log.info({ document: this.document, code: error.code }, 'open refused')
    this.#send({ type: 'permission-denied', key: this.key, reason: error.code })
    this.#endWith(null, false)
  }

  /** Revoked or expired: the provider is told it lost access, then that the document closed; later messages for its key are dropped. */
  revoke(error: ConcordError): void {
    if (this.closed) return
    this.#send({ type: 'permission-denied', key: this.key, reason: error.code })
    this.#endWith(error.code, true)
  }

  changeRole(role: Role, expiresAt: number | null): void {
    if (this.closed) return
    if (role !== this.#scope) this.#sendScope()
    if (this.#refreshTimer !== null) clearTimeout(this.#refreshTimer)
    this.#refreshTimer = null
    if (expiresAt === null) return
    // ask the provider for a fresh token (it calls its `token` function again) before this one expires
    const lead = Math.min(TOKEN_REFRESH_LEAD_MS, (expiresAt - Date.now()) / 2)
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = null
      if (!this.closed) this.#send({ type: 'token-request', key: this.key })
    }, Math.max(0, expiresAt - Date.now() - lead))
    this.#refreshTimer.unref()
  }

  #sendScope(): void {
    this.#scope = this.role
    this.#send({ type: 'authenticated', key: this.key, scope: this.role === 'read' ? 'readonly' : 'read-write' })
    const expiresAt = this.expiresAt
    if (expiresAt !== null && this.#refreshTimer === null) this.changeRole(this.role, expiresAt)
  }

  /** The update with this seq is durable: one SyncStatus, which the provider counts down. */
  ack(): void {
    if (this.closed) return
    this.#send({ type: 'sync-status', key: this.key, applied: true })
  }

  documentError(error: ConcordError, seq: number, closed: boolean): void {
    if (this.closed) return
    this.socket.log.debug({ document: this.document, code: error.code, seq, closed }, 'document error')
    // an update it refused is not saved; Hocuspocus has no in-band error beyond that
    if (seq > 0) this.#send({ type: 'sync-status', key: this.key, applied: false })
    if (closed) this.#endWith(error.code, false)
  }

  #endWith(reason: string | null, denied: boolean): void {
    if (reason !== null) this.#send({ type: 'close', key: this.key, reason })
    this.end()
    this.socket.forget(this, denied)
  }

  protected override ended(): void {
    if (this.#refreshTimer !== null) clearTimeout(this.#refreshTimer)
    this.#refreshTimer = null
    this.socket.forget(this, false)
  }

  #send(message: HocuspocusServerMessage): void {
    this.sender.send(encodeHocuspocusMessage(message), this.document)
  }

  protected sendShared(message: SharedMessage): void {
    // the sessions of one provider share a routing key, and with it the frame
    this.sender.sendWire(message.derived(this.key, this.#frame), this.document)
  }

  readonly #frame = (m: SharedMessage): WireFrame => wireFrame([this.#prefix, ...m.yWebsocket()])

  protected sendUpdateBytes(update: Uint8Array): void {
    this.sender.send([this.#prefix, ...encodeYMessageParts({ type: 'update', update })], this.document)
  }

  protected sendStep1(stateVector: Uint8Array): void {
    this.sender.send([this.#prefix, encodeYMessage({ type: 'sync-step1', stateVector })], this.document)
  }

  protected sendStep2(update: Uint8Array): void {
    this.sender.send([this.#prefix, ...encodeYMessageParts({ type: 'sync-step2', update })], this.document)
  }

  sendStateless(payload: string): void {
    if (!this.closed) this.#send({ type: 'stateless', key: this.key, payload })
  }

  protected sendPresence(update: Uint8Array): void {
    this.sender.send([this.#prefix, encodeYMessage({ type: 'awareness', update })], this.document)
  }
}

/** A Yjs v1 update starts with the number of clients whose structs it carries. */
function hasNoStructs(update: Uint8Array): boolean {
  return update.length > 0 && update[0] === 0
}
