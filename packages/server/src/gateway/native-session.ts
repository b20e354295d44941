import {
  ConcordError, toConcordError, encodeFrame, encodeFrameParts, FRAME_KINDS, toSeqRanges,
  type ErrorCode, type Frame, type Role,
} from '@concord/protocol'
import type { SharedMessage } from '../documents/shared-message.js'
import type { SessionGrant } from '../auth/session-guard.js'
import { TransportSession, type SessionSocket, type TransportSessionDeps } from './transport-session.js'
import { wireFrame, type WireFrame } from './wire-frame.js'

/** The key of a shared message's native frame (see `SharedMessage.derived`). */
const NATIVE_FRAME = Symbol('native frame')
const nativeFrame = (m: SharedMessage): WireFrame => wireFrame(m.native())

/** What a native document session needs of its connection (`NativeConnection`). */
export interface NativeSessionSocket extends SessionSocket {
  readonly id: string
  sendFrame(bytes: Uint8Array | readonly Uint8Array[], document?: string): void
  sendError(document: string, code: ErrorCode, message: string, seq: number, closed: boolean): void
  /** Check a fresh token for an open document (AUTH). */
  authorize(document: string, token: string): Promise<SessionGrant>
  /** The session ended: the connection forgets it. */
  forget(session: NativeDocSession): void
}

/** One document on a native connection: native frames (OPENED, ACK, AUTH_STATE, in-band ERROR) around the shared lifecycle. */
export class NativeDocSession extends TransportSession<Frame, NativeSessionSocket> {
  /** Seqs acked since the last ACK frame went out (null: none). */
  #acks: number[] | null = null
  /** Seqs replicated since the last REPLICATED frames went out, by region count (null: none). */
  #replicated: Map<number, number[]> | null = null

  constructor(conn: NativeSessionSocket, document: string, deps: TransportSessionDeps) {
    super(`${conn.id}/${document}`, document, conn, deps)
  }

  get protocol(): 'native' {
    return 'native'
  }

  /**
   * The document is open (`open` returned true): OPENED, the reply to OPEN's state vector, the
   * server's step 1 and the room's presence, then the session joins the document.
   */
  start(clientStateVector: Uint8Array): void {
    if (this.documentFailed) {
      // it failed between loading and now; its sessions were already told
      this.documentError(new ConcordError('CONCORD_ERR_DOC_RESET', 'the document was reloaded from its log; open it again'), 0, true)
      return
    }
    const c = this.socket
    const role = this.role
    c.sendFrame(encodeFrame({ kind: FRAME_KINDS.OPENED, document: this.document, role }))
    const expiresAt = this.expiresAt
    if (expiresAt !== null) this.changeRole(role, expiresAt)
    // answered now, or (a large document's diff, computed off the main thread) after what follows;
    // the session joins below, in this turn, so it receives every update applied after the reply's state
    this.requestSync(clientStateVector.length > 0 ? clientStateVector : undefined,
      () => this.documentError(new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'the state vector in OPEN could not be decoded'), 0, true))
    if (this.closed) return
    // a client may receive updates before the server's state vector
    this.sendStep1WhenIntegrated()
    this.sendPresenceSnapshot()
    // a send above may have closed the socket (slow reader); then the lease is already released
    if (this.closed) return
    this.join()
  }

  /** A frame for this document: queued until the document is open, then handled. */
  receive(frame: Frame, size: number): void {
    if (this.isOpen) {
      this.handle(frame)
      return
    }
    if (frame.kind === FRAME_KINDS.CLOSE) {
      this.end()
      return
    }
    if (!this.queue(frame, size)) {
      // bounded per document, and for all opening documents of the socket together
      const o = this.config
      this.documentError(new ConcordError('CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE',
        `more than ${o.maxQueuedMessagesBeforeOpen} frames or ${o.maxQueuedBytesBeforeOpen} bytes before OPEN was accepted`), 0, true)
    }
  }

  protected handle(frame: Frame): void {
    switch (frame.kind) {
      case FRAME_KINDS.CLOSE:
        this.end()
        return
      case FRAME_KINDS.SYNC_STEP1:
        this.requestSync(frame.stateVector,
          () => this.documentError(new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'state vector could not be decoded'), 0, false))
        return
      case FRAME_KINDS.SYNC_STEP2:
      case FRAME_KINDS.UPDATE: {
        const seq = frame.kind === FRAME_KINDS.UPDATE ? frame.seq : 0
        if (this.role === 'read') {
          this.documentError(new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'this session may only read the document'), seq, false)
          return
        }
        this.write(seq, frame.update)
        return
      }
      case FRAME_KINDS.AWARENESS:
        this.applyPresence(frame.update)
        return
      case FRAME_KINDS.AUTH:
        void this.#refresh(frame.token)
        return
      case FRAME_KINDS.QUERY_AWARENESS:
        this.sendPresenceSnapshot()
        return
      case FRAME_KINDS.STATELESS: {
        const refused = this.sendSignal(frame.payload)
        if (refused !== null) this.documentError(refused, 0, false)
        return
      }
      default:
        return
    }
  }

  async #refresh(token: string): Promise<void> {
    let grant: SessionGrant
    try {
      grant = await this.socket.authorize(this.document, token)
    } catch (err) {
      // the old credential stays in force until it expires
      const e = toConcordError(err)
      if (!this.closed) this.socket.sendError(this.document, e.code, e.message, 0, false)
      return
    }
    this.replaceGrant(grant)
  }

  protected refused(error: ConcordError): void {
    if (error.code !== 'CONCORD_ERR_DOC_LOAD_FAILED') this.socket.log.info({ document: this.document, code: error.code }, 'open refused')
    this.documentError(error, 0, true)
  }

  revoke(error: ConcordError): void {
    this.documentError(error, 0, true)
  }

  /** AUTH_STATE: the session's role, and how long its credential is good for (0: no expiry). */
  changeRole(role: Role, expiresAt: number | null): void {
    if (this.closed) return
    const expiresInMs = expiresAt === null ? 0 : Math.max(1, expiresAt - Date.now())
    this.socket.sendFrame(encodeFrame({ kind: FRAME_KINDS.AUTH_STATE, document: this.document, role, expiresInMs }), this.document)
  }

  protected sendShared(message: SharedMessage): void {
    this.sender.sendWire(message.derived(NATIVE_FRAME, nativeFrame), this.document)
  }

  protected sendUpdateBytes(update: Uint8Array): void {
    this.sender.send(encodeFrameParts({ kind: FRAME_KINDS.UPDATE, document: this.document, seq: 0, update }), this.document)
  }

  protected sendStep1(stateVector: Uint8Array): void {
    this.socket.sendFrame(encodeFrame({ kind: FRAME_KINDS.SYNC_STEP1, document: this.document, stateVector }))
  }

  protected sendStep2(update: Uint8Array): void {
    this.sender.send(encodeFrameParts({ kind: FRAME_KINDS.SYNC_STEP2, document: this.document, update }), this.document)
  }

  sendStateless(payload: string): void {
    if (!this.closed) this.sender.send(encodeFrame({ kind: FRAME_KINDS.STATELESS, document: this.document, payload }), this.document)
  }

  protected sendPresence(update: Uint8Array): void {
    this.sender.send(encodeFrame({ kind: FRAME_KINDS.AWARENESS, document: this.document, update }), this.document)
  }

  ack(seq: number): void {
    if (this.closed) return
    if (this.#acks !== null) {
      this.#acks.push(seq)
      return
    }
    this.#acks = [seq]
    // acks resolved by one commit go out as one frame
    queueMicrotask(() => {
      const seqs = this.#acks
      this.#acks = null
      if (this.closed || seqs === null || seqs.length === 0) return
      this.socket.sendFrame(encodeFrame({ kind: FRAME_KINDS.ACK, document: this.document, ranges: toSeqRanges(seqs) }))
    })
  }

  replicated(seq: number, regions: number): void {
    if (this.closed) return
    const scheduled = this.#replicated !== null
    const byCount = this.#replicated ??= new Map()
    let seqs = byCount.get(regions)
    if (seqs === undefined) byCount.set(regions, seqs = [])
    seqs.push(seq)
    if (scheduled) return
    // what one watermark settles goes out as one frame per region count
    queueMicrotask(() => {
      this.#replicated = null
      if (this.closed) return
      for (const [count, list] of byCount) {
        this.socket.sendFrame(encodeFrame({ kind: FRAME_KINDS.REPLICATED, document: this.document, regions: count, ranges: toSeqRanges(list) }))
      }
    })
  }

  documentError(error: ConcordError, seq: number, closed: boolean): void {
    if (this.closed) return
    this.socket.sendError(this.document, error.code, error.message, seq, closed)
    if (closed) this.end()
  }

  protected override ended(): void {
    this.socket.forget(this)
  }
}
