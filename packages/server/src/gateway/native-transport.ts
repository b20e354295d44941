import type { IncomingMessage } from 'node:http'
import type { Log } from './connection-log.js'
import {
  ChunkAssembler, ConcordError, toConcordError, decodeFrame, MAX_DOCUMENT_NAME_BYTES, documentNameProblem, encodeFrame, FRAME_KINDS, FrameDecodeError,
  isUnknownFrame, negotiateVersion,
  type ErrorCode, type Frame, type UnknownFrame,
} from '@concord/protocol'
import { SocketSender } from './socket-sender.js'
import { ReadThrottle } from './read-throttle.js'
import { bytesBeforeWriteAccess, setReceiveLimit } from './receive-limit.js'
import type { SessionGrant } from '../auth/session-guard.js'
import { nativeKind } from '../ops/metrics.js'
import type { SocketLike } from './socket-like.js'
import { rateLimitsOf, senderOptionsOf, type ConnectionDeps } from './connection-deps.js'
import { noteClose } from './transport-session.js'
import { NativeDocSession, type NativeSessionSocket } from './native-session.js'

const PING_FRAME = encodeFrame({ kind: FRAME_KINDS.PING, document: '' })

/** Native multiplexed connection: many documents on one socket. */
export class NativeConnection implements NativeSessionSocket {
  readonly id: string
  readonly #ws: SocketLike
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

  constructor(ws: SocketLike, request: IncomingMessage, deps: ConnectionDeps) {
    this.id = deps.connectionId
    this.#ws = ws
    this.#request = request
    this.#deps = deps
    this.#log = deps.logger
    const o = deps.config
    const metrics = deps.metrics
    this.#sender = new SocketSender(ws, this, {
      ...senderOptionsOf(o, o.chunkBytes), chunkWindowBytes: o.chunkWindowBytes, ping: PING_FRAME,
      onSend: (first, length) => metrics.message('out', 'native', nativeKind(first[0]), length),
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
    this.#deps.metrics.message('in', 'native', nativeKind(data[0]), data.length)
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
        const budget = bytesBeforeWriteAccess(this.#deps.config)
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
    const o = this.#deps.config
    this.sendFrame(encodeFrame({
      kind: FRAME_KINDS.WELCOME, document: '', version, server: o.serverName,
      maxMessageBytes: o.maxMessageBytes, chunkBytes: o.chunkBytes, heartbeatIntervalMs: o.heartbeatIntervalMs,
    }))
    this.#log.debug({ version, client: frame.client }, 'handshake done')
  }

  async #open(frame: Extract<Frame, { kind: typeof FRAME_KINDS.OPEN }>): Promise<void> {
    const name = frame.document
    const o = this.#deps.config
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
    const session = new NativeDocSession(this, name, this.#deps)
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
    setReceiveLimit(this.#ws, this.#deps.config.maxMessageBytes)
  }

  /** Check a fresh token for an open document (AUTH). */
  authorize(document: string, token: string): Promise<SessionGrant> {
    return this.#deps.authorizer.grant({ document, token, transport: 'native', request: this.#request }, this.#log)
  }

  sendFrame(bytes: Uint8Array | readonly Uint8Array[], document = ''): void {
    this.#sender.send(bytes, document)
  }

  sendError(document: string, code: ErrorCode, message: string, seq: number, closed: boolean): void {
    this.#deps.metrics.refused(code)
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
    if (error !== undefined) noteClose(error, this.#log, this.#deps.metrics)
    this.#sender.closeSocket(error)
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
