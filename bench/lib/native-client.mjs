// A minimal client of Concord's native protocol over `ws` (no @concord/client),
// with the same public interface as YClient (./yclient.mjs), so scenario code
// does not depend on the protocol. The spec is docs/protocol.md, section 4;
// the codec is @concord/protocol.
//
// Wire format: one native frame per binary WebSocket message,
//   frame = kind:varUint document:varString body
// and what this client does with each kind:
//   -> HELLO(0, "", minVersion, maxVersion, client)    on open (subprotocol 'concord')
//   <- WELCOME(1, "", version, server, maxMessageBytes, chunkBytes, heartbeatIntervalMs)
//   -> OPEN(2, doc, token "", stateVector of `doc`)     once WELCOME arrived
//   <- OPENED(3, doc, role)
//   <- UPDATE(7, doc, seq 0, update)*                   (large documents: part of the sync answer)
//   <- SYNC_STEP2(6, doc, update)                       applied
//   <- SYNC_STEP1(5, doc, stateVector)                  answered by UPDATE with what the server
//                                                       lacks, only if that is not empty
//                                                       synced = OPENED + SYNC_STEP2 + SYNC_STEP1
//   <- AWARENESS(9, doc, awarenessUpdate)               (if anyone is present)
//   -> UPDATE(7, doc, seq, update)                      local updates, seq = 1, 2, 3, ...
//   <- ACK(8, doc, count, (from, to - from){count})     once the updates are durable
//   <- UPDATE(7, doc, seq 0, update)                    someone else's update
//   -> AWARENESS(9, doc, awarenessUpdate)               sendAwareness()
//   <- PING(13, "")  -> PONG(14, "")                    answered at once (the server also uses
//                                                       PING/PONG to pace chunked sends, 4.9)
//   <- CHUNK(12, doc, messageId, index, total, data)    reassembled (4.7) and handled as the
//                                                       frame inside; frames larger than the
//                                                       server's chunkBytes are sent as CHUNKs too
//   <- ERROR(11, doc, code, message, seq, closed)       counted in stats.errors, kept in lastError
//
// The document is the URL path without its leading '/', percent-decoded:
// ws://127.0.0.1:PORT/<room> opens <room> (the server ignores the path of a
// native socket; the name travels in OPEN).
//
// connect() resolves once OPENED and SYNC_STEP2 arrived and SYNC_STEP1 was
// answered (in any order; SYNC_STEP2 may be chunked and come last). The
// server sends SYNC_STEP1 right after SYNC_STEP2, but in a later WebSocket
// message: resolving on SYNC_STEP2 alone would let the caller edit before the
// SYNC_STEP1 answer, which would then carry those edits a second time. With
// the y-websocket framings the server's step 1 arrives before its step 2, so
// YClient's "synced" means the same.
//
// Received SYNC_STEP2 and UPDATE frames call onRemoteUpdate(update, subType)
// with the y-websocket sub-types (1 for SYNC_STEP2, 2 for UPDATE), so that
// callbacks written for YClient work unchanged.
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { performance } from 'node:perf_hooks'
import {
  FRAME_KINDS,
  NATIVE_SUBPROTOCOL,
  PROTOCOL_VERSION_MIN,
  PROTOCOL_VERSION_MAX,
  ChunkAssembler,
  chunkFrame,
  decodeFrame,
  encodeFrame,
  encodeFrameParts,
  isUnknownFrame
} from '@concord/protocol'
import { now, SYNC_STEP2, SYNC_UPDATE } from './yclient.mjs'

export { now }

const CLIENT_NAME = 'concord-bench/0.1.0'
const PONG_FRAME = encodeFrame({ kind: FRAME_KINDS.PONG, document: '' })

/** True for the empty Yjs update `00 00` (no structs, empty delete set). */
function isEmptyUpdate (update) {
  return update.length === 2 && update[0] === 0 && update[1] === 0
}

export class NativeClient {
  /**
   * @param {string} url ws://127.0.0.1:PORT/room
   * @param {object} [opts] the options of YClient, and:
   * @param {Y.Doc} [opts.doc] the local replica (default: a new empty Y.Doc)
   * @param {boolean} [opts.applyRemote=true] apply received SYNC_STEP2/UPDATE to `doc`
   * @param {boolean} [opts.sendLocalUpdates=true] send every local `doc` update
   * @param {(update: Uint8Array, subType: number) => void} [opts.onRemoteUpdate]
   *   called after a received SYNC_STEP2 (subType 1) or UPDATE (subType 2) was handled
   * @param {(update: Uint8Array) => void} [opts.onAwareness] the awareness update of an AWARENESS frame
   * @param {(ranges: {from:number,to:number}[]) => void} [opts.onAck] the inclusive seq
   *   ranges of every ACK frame (seq of an update sent: `lastSeq` right after sending it)
   * @param {string} [opts.token=''] the token of OPEN
   * @param {number} [opts.maxMessageBytes=1 GiB] largest reassembled chunked frame accepted
   */
  constructor (url, opts = {}) {
    this.url = url
    this.protocol = 'native'
    this.documentName = decodeURIComponent(new URL(url).pathname.slice(1))
    this.token = opts.token ?? ''
    /** source address of the socket (127.0.0.x): more than ~28,000 connections to one port need several */
    this.localAddress = opts.localAddress ?? null
    this.doc = opts.doc ?? new Y.Doc()
    this.applyRemote = opts.applyRemote ?? true
    this.onRemoteUpdate = opts.onRemoteUpdate ?? null
    this.onAwareness = opts.onAwareness ?? null
    this.onAck = opts.onAck ?? null
    this.maxMessageBytes = opts.maxMessageBytes ?? 2 ** 30
    /** @type {WebSocket|null} */
    this.ws = null
    this.synced = false
    /** time (now()) the last message arrived, taken before decoding it */
    this.lastRecv = 0
    /** total ms spent applying received updates to `doc` */
    this.applyMs = 0
    /**
     * Same fields as YClient's, plus: acks = ACK frames, ackedSeqs = seqs they
     * covered, errors = ERROR frames. msgsIn/msgsOut count WebSocket messages
     * (each CHUNK is one); updatesIn/awarenessIn/otherMsgs count frames after
     * reassembly. otherMsgs: every frame other than SYNC_STEP1/2, UPDATE, AWARENESS.
     */
    this.stats = {
      msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, updatesIn: 0, awarenessIn: 0, otherMsgs: 0, sendDropped: 0,
      acks: 0, ackedSeqs: 0, errors: 0
    }
    this.closedByServer = false
    /** close code and reason of the socket, once closed */
    this.closeCode = 0
    this.closeReason = ''
    /** the WELCOME frame (version and the server's limits) */
    this.welcome = null
    /** role from OPENED: 'read' | 'write' | 'admin' */
    this.role = null
    /** the last ERROR frame: {document, code, message, seq, closed} */
    this.lastError = null
    /** seq of the last UPDATE sent (0: none yet) */
    this.lastSeq = 0
    this._opened = false // OPENED received
    this._gotStep2 = false // SYNC_STEP2 received (since the last OPEN)
    this._answeredStep1 = false // SYNC_STEP1 answered (since the last OPEN)
    this._openSent = false // frames for the document may be sent
    this._chunkBytes = 0
    this._nextMessageId = 1
    this._assembler = new ChunkAssembler({ maxMessageBytes: this.maxMessageBytes, maxInFlight: 64 })
    this._onLocalUpdate = (update, origin) => {
      if (origin !== this) this.sendUpdate(update)
    }
    if (opts.sendLocalUpdates ?? true) this.doc.on('update', this._onLocalUpdate)
  }

  /** Opens the socket, HELLO/WELCOME, OPEN; resolves once OPENED and SYNC_STEP2 arrived and SYNC_STEP1 was answered. */
  connect ({ timeoutMs = 15000 } = {}) {
    return new Promise((resolve, reject) => {
      let settled = false
      const done = (err) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        this._syncWaiter = null
        if (err) {
          try { this.ws?.terminate() } catch {}
          reject(err)
        } else resolve()
      }
      const timer = setTimeout(() => done(new Error(`connect+sync timeout after ${timeoutMs} ms (${this.url})`)), timeoutMs)
      this._syncWaiter = (err) => done(err)
      const ws = new WebSocket(this.url, NATIVE_SUBPROTOCOL, { perMessageDeflate: false, ...(this.localAddress ? { localAddress: this.localAddress } : {}) })
      this.ws = ws
      ws.on('open', () => {
        if (ws.protocol !== NATIVE_SUBPROTOCOL) {
          done(new Error(`server did not select subprotocol ${NATIVE_SUBPROTOCOL} (${this.url})`))
          return
        }
        this._sendFrame({
          kind: FRAME_KINDS.HELLO,
          document: '',
          minVersion: PROTOCOL_VERSION_MIN,
          maxVersion: PROTOCOL_VERSION_MAX,
          client: CLIENT_NAME
        })
      })
      ws.on('message', (data, isBinary) => {
        if (!isBinary) return
        this._onMessage(data)
      })
      ws.on('error', (err) => done(new Error(`${err.code || ''} ${err.message} (${this.url})`.trim())))
      ws.on('close', (code, reason) => {
        this.closeCode = code
        this.closeReason = reason.toString()
        this._openSent = false
        this._assembler.clear()
        if (!this._closing) this.closedByServer = true
        done(new Error(`socket closed before sync (code ${code}${this.closeReason ? ' ' + this.closeReason : ''}, ${this.url})`))
      })
    })
  }

  _onMessage (data) {
    this.lastRecv = now()
    this.stats.msgsIn++
    this.stats.bytesIn += data.length
    this._handleBytes(data)
  }

  /** Decodes and handles one frame (a WebSocket message, or a reassembled chunked one). */
  _handleBytes (bytes) {
    let frame
    try {
      frame = decodeFrame(bytes)
    } catch (e) {
      this._protocolFailure(`undecodable frame from the server: ${e.message}`)
      return
    }
    if (isUnknownFrame(frame)) {
      this.stats.otherMsgs++
      return
    }
    switch (frame.kind) {
      case FRAME_KINDS.UPDATE:
      case FRAME_KINDS.SYNC_STEP2: {
        const sub = frame.kind === FRAME_KINDS.UPDATE ? SYNC_UPDATE : SYNC_STEP2
        this.stats.updatesIn++
        if (this.applyRemote) {
          const t0 = performance.now()
          Y.applyUpdate(this.doc, frame.update, this)
          this.applyMs += performance.now() - t0
        }
        if (sub === SYNC_STEP2) {
          this._gotStep2 = true
          this._checkSynced()
        }
        this.onRemoteUpdate?.(frame.update, sub)
        break
      }
      case FRAME_KINDS.SYNC_STEP1: {
        // what the server lacks: with applyRemote false the doc holds only local edits
        const diff = Y.encodeStateAsUpdate(this.doc, frame.stateVector)
        if (!isEmptyUpdate(diff)) this._sendUpdateFrame(diff)
        this._answeredStep1 = true
        this._checkSynced()
        break
      }
      case FRAME_KINDS.AWARENESS:
        this.stats.awarenessIn++
        this.onAwareness?.(frame.update)
        break
      case FRAME_KINDS.ACK: {
        this.stats.otherMsgs++
        this.stats.acks++
        for (const r of frame.ranges) this.stats.ackedSeqs += r.to - r.from + 1
        this.onAck?.(frame.ranges)
        break
      }
      case FRAME_KINDS.PING:
        this.stats.otherMsgs++
        this._send(PONG_FRAME)
        break
      case FRAME_KINDS.CHUNK: {
        let whole
        try {
          whole = this._assembler.push(frame)
        } catch (e) {
          this._protocolFailure(`bad chunk from the server: ${e.message}`)
          return
        }
        if (whole) this._handleBytes(whole)
        break
      }
      case FRAME_KINDS.WELCOME:
        this.stats.otherMsgs++
        this.welcome = frame
        this._chunkBytes = frame.chunkBytes
        this._openSent = true
        this._gotStep2 = false
        this._answeredStep1 = false
        this._sendFrame({
          kind: FRAME_KINDS.OPEN,
          document: this.documentName,
          token: this.token,
          stateVector: Y.encodeStateVector(this.doc)
        })
        break
      case FRAME_KINDS.OPENED:
        this.stats.otherMsgs++
        this.role = frame.role
        this._opened = true
        this._checkSynced()
        break
      case FRAME_KINDS.ERROR: {
        this.stats.otherMsgs++
        this.stats.errors++
        const { document, code, message, seq, closed } = frame
        this.lastError = { document, code, message, seq, closed }
        if (closed && (document === this.documentName || document === '')) {
          this._opened = false
          this._openSent = false
          if (!this._closing) this.closedByServer = true
          this._syncWaiter?.(new Error(`${code}${message ? ': ' + message : ''} (${this.url})`))
        }
        break
      }
      default: // PONG, AUTH_STATE, and client-only kinds
        this.stats.otherMsgs++
    }
  }

  _checkSynced () {
    if (!this.synced && this._opened && this._gotStep2 && this._answeredStep1) {
      this.synced = true
      this._syncWaiter?.()
    }
  }

  /** A server that breaks the protocol: record it as an error and drop the socket. */
  _protocolFailure (message) {
    this.stats.errors++
    this.lastError = { document: '', code: 'BENCH_CLIENT_PROTOCOL_ERROR', message, seq: 0, closed: true }
    if (!this._closing) this.closedByServer = true
    this._syncWaiter?.(new Error(`${message} (${this.url})`))
    try { this.ws?.terminate() } catch {}
  }

  _send (buf) {
    const ws = this.ws
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      this.stats.sendDropped++
      return false
    }
    ws.send(buf)
    this.stats.msgsOut++
    this.stats.bytesOut += buf.length
    return true
  }

  /** Sends one frame, as CHUNK frames when it is larger than the server's chunkBytes. */
  _sendFrame (frame) {
    const parts = encodeFrameParts(frame)
    let length = 0
    for (const p of parts) length += p.length
    if (this._chunkBytes > 0 && length > this._chunkBytes) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        this.stats.sendDropped++
        return false
      }
      const messageId = this._nextMessageId++
      for (const chunk of chunkFrame(parts, frame.document, messageId, this._chunkBytes)) {
        if (!this._send(chunk)) return false
      }
      return true
    }
    if (parts.length === 1) return this._send(parts[0])
    const buf = new Uint8Array(length)
    let off = 0
    for (const p of parts) { buf.set(p, off); off += p.length }
    return this._send(buf)
  }

  _sendUpdateFrame (update) {
    const seq = this.lastSeq + 1
    const ok = this._sendFrame({ kind: FRAME_KINDS.UPDATE, document: this.documentName, seq, update })
    if (ok) this.lastSeq = seq
    return ok
  }

  /**
   * Sends one Yjs update as an UPDATE frame with the next seq (`lastSeq` after
   * the call). Before OPEN was sent (no WELCOME yet) the update is dropped and
   * counted in stats.sendDropped, as YClient drops sends on a socket that is
   * not open.
   */
  sendUpdate (update) {
    if (!this._openSent) {
      this.stats.sendDropped++
      return false
    }
    return this._sendUpdateFrame(update)
  }

  /**
   * Sends one AWARENESS frame announcing `state` for this doc's clientID (the
   * same awareness-update bytes as YClient.sendAwareness).
   */
  sendAwareness (state, clock = 1) {
    if (!this._openSent) {
      this.stats.sendDropped++
      return false
    }
    const inner = encoding.createEncoder()
    encoding.writeVarUint(inner, 1)
    encoding.writeVarUint(inner, this.doc.clientID)
    encoding.writeVarUint(inner, clock)
    encoding.writeVarString(inner, JSON.stringify(state))
    return this._sendFrame({ kind: FRAME_KINDS.AWARENESS, document: this.documentName, update: encoding.toUint8Array(inner) })
  }

  get bufferedAmount () { return this.ws ? this.ws.bufferedAmount : 0 }

  /** Resolves once the socket's send buffer is at most `maxBytes`. */
  async drain (maxBytes = 0) {
    while (this.ws && this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount > maxBytes) {
      await new Promise(resolve => setTimeout(resolve, 1))
    }
  }

  /** Closes the socket; resolves when closed (or after `timeoutMs`, then terminates it). */
  close (timeoutMs = 3000) {
    this.doc.off('update', this._onLocalUpdate)
    const ws = this.ws
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve()
    this._closing = true
    return new Promise(resolve => {
      const timer = setTimeout(() => { try { ws.terminate() } catch {} resolve() }, timeoutMs)
      ws.once('close', () => { clearTimeout(timer); resolve() })
      try { ws.close() } catch { clearTimeout(timer); resolve() }
    })
  }
}
