import type { IncomingMessage } from 'node:http'
import {
  ChunkAssembler, ConcordError, toConcordError, decodeFrame, MAX_DOCUMENT_NAME_BYTES, documentNameProblem, encodeFrame, FRAME_KINDS, FrameDecodeError,
  isUnknownFrame, negotiateVersion,
  type ErrorCode, type Frame, type UnknownFrame,
} from '@concord/protocol'
import { bytesBeforeWriteAccess } from './receive-limit.js'
import type { SessionGrant } from '../auth/session-guard.js'
import { nativeKind } from '../ops/metrics.js'
import type { SocketLike } from './socket-like.js'
import type { ConnectionDeps } from './connection-deps.js'
import { SocketConnection } from './socket-connection.js'
import { NativeDocSession, type NativeSessionSocket } from './native-session.js'

/** Native multiplexed connection: many documents on one socket. */
export class NativeConnection extends SocketConnection implements NativeSessionSocket {
  readonly #request: IncomingMessage
  /** Reassembles chunked messages (created by the first CHUNK: most sockets never send one). */
  #assembler: ChunkAssembler | null = null
  readonly #docs = new Map<string, NativeDocSession>()
  /**
   * Whether a document was opened on this socket with write access. Until then the socket's
   * messages and incomplete chunked messages share the pre-open budget (`bytesBeforeWriteAccess`).
   */
  #mayWrite = false
  #version = 0
  #pendingOpens = 0
  #handshakeTimer: NodeJS.Timeout | null

  constructor(ws: SocketLike, request: IncomingMessage, deps: ConnectionDeps, connectionId: string) {
    super(ws, deps, connectionId, 'native')
    this.#request = request
    this.#handshakeTimer = setTimeout(() => {
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_HANDSHAKE_TIMEOUT'))
    }, deps.config.handshakeTimeoutMs)
  }

  get protocol(): 'native' {
    return 'native'
  }

  protected messageKind(data: Uint8Array): string {
    return nativeKind(data[0])
  }

  protected handleMessage(data: Uint8Array): void {
    let frame: Frame | UnknownFrame
    try {
      frame = decodeFrame(data)
    } catch (err) {
      const e = err as FrameDecodeError
      this.close(new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', e.message, { cause: err }))
      return
    }
    this.#handle(frame, data.length)
    this.notePeak()
  }

  /** Bytes received from this socket and held: waiting for the rate limit, in incomplete chunked messages, queued before OPEN. */
  override get heldBytes(): number {
    return super.heldBytes + (this.#assembler?.bufferedBytes ?? 0)
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
        this.sender.pong()
        return
      case FRAME_KINDS.CHUNK: {
        // before write access, incomplete chunked messages and frames queued for opening
        // documents share the pre-open budget (a chunked OPEN or AUTH fits it)
        const o = this.deps.config
        const budget = bytesBeforeWriteAccess(o)
        if (!this.#mayWrite && (this.#assembler?.bufferedBytes ?? 0) + frame.data.length + this.queuedBytes > budget) {
          this.closeAbusive(new ConcordError('CONCORD_ERR_LIMIT_CHUNKS_BEFORE_WRITE',
            `more than ${budget} bytes of incomplete chunked messages and queued frames before a document was opened for writing`))
          return
        }
        // pieces other than the last must be at least 1 KiB (clients are told chunkBytes in WELCOME)
        this.#assembler ??= new ChunkAssembler({ maxMessageBytes: o.maxMessageBytes, minPieceBytes: Math.min(1024, o.chunkBytes) })
        let whole: Uint8Array | null
        try {
          whole = this.#assembler.push(frame)
        } catch (err) {
          this.close(toConcordError(err))
          return
        }
        if (whole === null) return
        // nothing else is being reassembled: the assembler goes until the next chunked message
        if (this.#assembler.bufferedBytes === 0) this.#assembler = null
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
      case FRAME_KINDS.STATELESS:
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
    const o = this.deps.config
    this.sendFrame(encodeFrame({
      kind: FRAME_KINDS.WELCOME, document: '', version, server: o.serverName,
      maxMessageBytes: o.maxMessageBytes, chunkBytes: o.chunkBytes, heartbeatIntervalMs: o.heartbeatIntervalMs,
    }))
    this.debug({ version, client: frame.client }, 'handshake done')
  }

  async #open(frame: Extract<Frame, { kind: typeof FRAME_KINDS.OPEN }>): Promise<void> {
    const name = frame.document
    const o = this.deps.config
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
    const session = new NativeDocSession(this, name, this.deps)
    this.#docs.set(name, session)
    this.#pendingOpens++
    let opened: boolean
    try {
      opened = await session.open(frame.token, this.#request)
    } finally {
      this.#pendingOpens--
    }
    if (!opened) return
    session.start(frame.stateVector)
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
    this.allowFullMessages()
  }

  /** Check a fresh token for an open document (AUTH). */
  authorize(document: string, token: string): Promise<SessionGrant> {
    return this.deps.authorizer.grant({ document, token, transport: 'native', request: this.#request }, this)
  }

  sendFrame(bytes: Uint8Array | readonly Uint8Array[], document = ''): void {
    this.sender.send(bytes, document)
  }

  sendError(document: string, code: ErrorCode, message: string, seq: number, closed: boolean): void {
    this.deps.metrics.refused(code)
    this.debug({ document, code, seq, closed }, 'error sent')
    this.sendFrame(encodeFrame({ kind: FRAME_KINDS.ERROR, document, code, message, seq, closed }), document)
  }

  /** A document session ended (CLOSE, error, or socket end). */
  forget(session: NativeDocSession): void {
    if (this.#docs.get(session.document) === session) this.#docs.delete(session.document)
  }

  /** Release every document; called once the socket is closed either way. */
  protected disposed(): void {
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer)
    this.#handshakeTimer = null
    this.#assembler?.clear()
    this.#assembler = null
    for (const s of [...this.#docs.values()]) s.end()
    this.#docs.clear()
  }
}
