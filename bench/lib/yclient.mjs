// A minimal y-websocket wire-protocol client over `ws` (no y-websocket provider).
//
// Wire format (y-protocols, one protocol message per binary WebSocket message,
// lib0 varUint framing):
//   sync      = 0 (0 stateVector:varUint8Array   -- step 1
//                | 1 update:varUint8Array        -- step 2
//                | 2 update:varUint8Array)       -- update
//   awareness = 1 update:varUint8Array
// Any other message type (auth, query-awareness, server-specific acks) is
// counted in `stats.otherMsgs` and otherwise ignored.
//
// The room is the URL path: ws://127.0.0.1:PORT/<room>.
//
// With `protocol: 'hocuspocus'` the same messages travel in Hocuspocus
// framing (@hocuspocus/server 4.x): every message, in both directions, starts
// with the document name, and the socket goes to the URL's origin (any path
// works; documents are named in-band):
//   message   = documentName:varString type:varUint body
//   type      = 0 Sync (body as above) | 1 Awareness (as above)
//             | 2 Auth | 3 QueryAwareness | 4 SyncReply (body as Sync)
//             | 5 Stateless | 6 BroadcastStateless | 7 CLOSE | 8 SyncStatus
//             | 9 Ping | 10 Pong   (ping and pong: one byte, no document name; a Concord server pings every 10 s, answered with pong)
//   Auth      = 2 0 token:varString [providerVersion:varString]   ; client -> server
//             | 2 0                                              ; server asks for a fresh token
//             | 2 1 reason:varString                             ; permission denied
//             | 2 2 scope:varString                              ; authenticated, "read-write" | "readonly"
//   CLOSE     = 7 reason:varString        ; the server ended this document's session
//   SyncStatus= 8 applied:varUint         ; 1 after each step 2 / update the server applied
//                                         ; (0: refused, read-only session); not a durability ack
// The document name is the URL path without its leading '/', percent-decoded.
// The server queues everything for a document until it has handled an Auth
// message for it, so the client sends Auth (token '' by default) first, then
// sync step 1. The server answers Authenticated, then (if anyone is present)
// the room's awareness, then its own sync step 1 followed by the sync step 2
// that answers ours. It relays updates and awareness to every connection of
// the document, the sender included, coalescing what arrives in one event-loop
// turn. It does not ping: a socket from which no message arrived for
// `timeout` (60 s by default) is closed with 4408, so the client sends a
// QueryAwareness (which the server does not answer) after `keepAliveMs` of
// sending nothing, as a provider's awareness renewal would.
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { performance } from 'node:perf_hooks'

export const MSG_SYNC = 0
export const MSG_AWARENESS = 1
export const SYNC_STEP1 = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2

/** Hocuspocus message types (first varUint after the document name). */
export const HP_MSG = Object.freeze({
  SYNC: 0,
  AWARENESS: 1,
  AUTH: 2,
  QUERY_AWARENESS: 3,
  SYNC_REPLY: 4,
  STATELESS: 5,
  BROADCAST_STATELESS: 6,
  CLOSE: 7,
  SYNC_STATUS: 8,
  PING: 9,
  PONG: 10
})
/** Sub-types of a Hocuspocus Auth message (@hocuspocus/common AuthMessageType). */
export const HP_AUTH = Object.freeze({ TOKEN: 0, PERMISSION_DENIED: 1, AUTHENTICATED: 2 })

/** The framings YClient speaks. */
export const YCLIENT_PROTOCOLS = Object.freeze(['y-websocket', 'hocuspocus'])

/** Wall-clock milliseconds (fractional) that agree across worker threads of one process. */
export const now = () => performance.timeOrigin + performance.now()

export class YClient {
  /**
   * @param {string} url ws://127.0.0.1:PORT/room
   * @param {object} [opts]
   * @param {Y.Doc} [opts.doc] the local replica (default: a new empty Y.Doc)
   * @param {boolean} [opts.applyRemote=true] apply received step2/updates to `doc`
   *   (false: decode the header and drop the payload; used by the trace writer,
   *   which would otherwise re-apply its own echoed updates)
   * @param {boolean} [opts.sendLocalUpdates=true] send every local `doc` update
   * @param {(update: Uint8Array, subType: number) => void} [opts.onRemoteUpdate]
   *   called after a received step2/update was handled
   * @param {(update: Uint8Array) => void} [opts.onAwareness]
   * @param {'y-websocket'|'hocuspocus'} [opts.protocol='y-websocket'] the framing (see the top of this file)
   * @param {string} [opts.token=''] hocuspocus: the token of the Auth message
   * @param {number} [opts.keepAliveMs=15000] hocuspocus: send a QueryAwareness
   *   when nothing was sent for this long (0: never)
   * @param {(ranges: {from:number,to:number}[], applied: boolean) => void} [opts.onAck]
   *   hocuspocus: called for every SyncStatus message. The server handles a
   *   socket's messages in order and answers each step 2 / update with one
   *   SyncStatus, so the n-th SyncStatus is for the n-th step 2 / update this
   *   client sent: `ranges` is `[{from: n, to: n}]`, the numbering `lastSeq`
   *   reports (the same shape as NativeClient's ACK ranges). Not a durability
   *   ack: the server has applied the update in memory.
   */
  constructor (url, opts = {}) {
    this.url = url
    this.protocol = opts.protocol ?? 'y-websocket'
    if (!YCLIENT_PROTOCOLS.includes(this.protocol)) throw new Error(`YClient: unknown protocol ${this.protocol}`)
    /** the URL the socket is opened on */
    this.wsUrl = url
    /** hocuspocus: the document name; varString-encoded in `_prefix` */
    this.documentName = null
    /** @type {Uint8Array|null} hocuspocus: varString(documentName), written before every message */
    this._prefix = null
    if (this.protocol === 'hocuspocus') {
      const u = new URL(url)
      this.wsUrl = u.origin
      this.documentName = decodeURIComponent(u.pathname.slice(1))
      const e = encoding.createEncoder()
      encoding.writeVarString(e, this.documentName)
      this._prefix = encoding.toUint8Array(e)
    }
    this.token = opts.token ?? ''
    /** source address of the socket (127.0.0.x): more than ~28,000 connections to one port need several */
    this.localAddress = opts.localAddress ?? null
    this.keepAliveMs = opts.keepAliveMs ?? 15000
    this.onAck = opts.onAck ?? null
    /** hocuspocus: scope of the Authenticated answer ('read-write' | 'readonly') */
    this.authScope = null
    /** hocuspocus: reason of a permission-denied or CLOSE message */
    this.lastError = null
    /** hocuspocus: number of step 2 / update messages sent (see opts.onAck) */
    this.lastSeq = 0
    this._acked = 0
    this._lastSend = 0
    this._keepAliveTimer = null
    this.doc = opts.doc ?? new Y.Doc()
    this.applyRemote = opts.applyRemote ?? true
    this.onRemoteUpdate = opts.onRemoteUpdate ?? null
    this.onAwareness = opts.onAwareness ?? null
    /** @type {WebSocket|null} */
    this.ws = null
    this.synced = false
    /** time (now()) the last message arrived, taken before decoding it */
    this.lastRecv = 0
    /** total ms spent applying received updates to `doc` */
    this.applyMs = 0
    /** acks: hocuspocus SyncStatus messages (always 0 with y-websocket) */
    this.stats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, updatesIn: 0, awarenessIn: 0, otherMsgs: 0, sendDropped: 0, acks: 0 }
    this.closedByServer = false
    /** close code and reason of the socket, once closed */
    this.closeCode = 0
    this.closeReason = ''
    this._onLocalUpdate = (update, origin) => {
      if (origin !== this) this.sendUpdate(update)
    }
    if (opts.sendLocalUpdates ?? true) this.doc.on('update', this._onLocalUpdate)
  }

  /** Opens the socket and completes the initial sync; resolves once sync step 2 arrived. */
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
      const ws = new WebSocket(this.wsUrl, { perMessageDeflate: false, ...(this.localAddress ? { localAddress: this.localAddress } : {}) })
      this.ws = ws
      ws.on('open', () => {
        if (this._prefix) {
          this._sendAuth()
          if (this.keepAliveMs > 0) this._startKeepAlive()
        }
        const e = this._encoder()
        encoding.writeVarUint(e, MSG_SYNC)
        syncProtocol.writeSyncStep1(e, this.doc)
        this._send(encoding.toUint8Array(e))
      })
      ws.on('message', (data, isBinary) => {
        if (!isBinary) return
        this._onMessage(data)
      })
      ws.on('error', (err) => done(new Error(`${err.code || ''} ${err.message} (${this.url})`.trim())))
      ws.on('close', (code, reason) => {
        this.closeCode = code
        this.closeReason = reason.toString()
        this._stopKeepAlive()
        if (!this._closing) this.closedByServer = true
        done(new Error(`socket closed before sync (code ${code}, ${this.url})`))
      })
    })
  }

  _onMessage (data) {
    this.lastRecv = now()
    this.stats.msgsIn++
    this.stats.bytesIn += data.length
    if (this._prefix && data.length === 1 && data[0] === HP_MSG.PING) {
      // a server's keepalive (a single byte, no document name): answered as a provider does
      this.stats.otherMsgs++
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(Uint8Array.of(HP_MSG.PONG))
      return
    }
    const dec = decoding.createDecoder(data)
    if (this._prefix && decoding.readVarString(dec) !== this.documentName) {
      this.stats.otherMsgs++
      return
    }
    let type = decoding.readVarUint(dec)
    // hocuspocus SyncReply has the body of a Sync message (the server sends it
    // only to in-process connections, but accept it anyway)
    if (this._prefix && type === HP_MSG.SYNC_REPLY) type = MSG_SYNC
    if (type === MSG_SYNC) {
      const sub = decoding.readVarUint(dec)
      if (sub === SYNC_STEP1) {
        const sv = decoding.readVarUint8Array(dec)
        const e = this._encoder()
        encoding.writeVarUint(e, MSG_SYNC)
        syncProtocol.writeSyncStep2(e, this.doc, sv)
        this._sendCounted(encoding.toUint8Array(e))
      } else if (sub === SYNC_STEP2 || sub === SYNC_UPDATE) {
        const update = decoding.readVarUint8Array(dec)
        this.stats.updatesIn++
        if (this.applyRemote) {
          const t0 = performance.now()
          Y.applyUpdate(this.doc, update, this)
          this.applyMs += performance.now() - t0
        }
        if (sub === SYNC_STEP2 && !this.synced) {
          this.synced = true
          this._syncWaiter?.()
        }
        this.onRemoteUpdate?.(update, sub)
      } else {
        this.stats.otherMsgs++
      }
    } else if (type === MSG_AWARENESS) {
      this.stats.awarenessIn++
      if (this.onAwareness) this.onAwareness(decoding.readVarUint8Array(dec))
    } else {
      this.stats.otherMsgs++
      if (this._prefix) this._onHocuspocusMessage(type, dec)
    }
  }

  /** Hocuspocus messages other than sync and awareness (already counted in otherMsgs). */
  _onHocuspocusMessage (type, dec) {
    if (type === HP_MSG.SYNC_STATUS) {
      const applied = decoding.readVarUint(dec) === 1
      this.stats.acks++
      const n = ++this._acked
      this.onAck?.([{ from: n, to: n }], applied)
    } else if (type === HP_MSG.AUTH) {
      const sub = decoding.readVarUint(dec)
      if (sub === HP_AUTH.AUTHENTICATED) {
        this.authScope = decoding.readVarString(dec)
      } else if (sub === HP_AUTH.PERMISSION_DENIED) {
        this.lastError = `permission denied: ${decoding.readVarString(dec)}`
        this._syncWaiter?.(new Error(`${this.lastError} (${this.url})`))
      } else if (sub === HP_AUTH.TOKEN) {
        this._sendAuth() // the server asks for the current token (onTokenSync)
      }
    } else if (type === HP_MSG.CLOSE) {
      this.lastError = `document closed by the server: ${decoding.readVarString(dec)}`
      if (!this._closing) this.closedByServer = true
      this._syncWaiter?.(new Error(`${this.lastError} (${this.url})`))
    }
  }

  /** A new encoder, holding the document name in hocuspocus framing. */
  _encoder () {
    const e = encoding.createEncoder()
    if (this._prefix) encoding.writeUint8Array(e, this._prefix)
    return e
  }

  /** hocuspocus: Auth message with the token. */
  _sendAuth () {
    const e = this._encoder()
    encoding.writeVarUint(e, HP_MSG.AUTH)
    encoding.writeVarUint(e, HP_AUTH.TOKEN)
    encoding.writeVarString(e, this.token)
    return this._send(encoding.toUint8Array(e))
  }

  /** Sends a step 2 / update message; hocuspocus: numbers it for onAck. */
  _sendCounted (buf) {
    const ok = this._send(buf)
    if (ok && this._prefix) this.lastSeq++
    return ok
  }

  _startKeepAlive () {
    this._stopKeepAlive()
    const e = this._encoder()
    encoding.writeVarUint(e, HP_MSG.QUERY_AWARENESS)
    const ping = encoding.toUint8Array(e)
    this._keepAliveTimer = setInterval(() => {
      if (Date.now() - this._lastSend >= this.keepAliveMs) this._send(ping)
    }, Math.max(100, Math.floor(this.keepAliveMs / 3)))
    this._keepAliveTimer.unref?.()
  }

  _stopKeepAlive () {
    if (this._keepAliveTimer) clearInterval(this._keepAliveTimer)
    this._keepAliveTimer = null
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
    if (this._keepAliveTimer) this._lastSend = Date.now()
    return true
  }

  /** Sends one Yjs update as a sync/update message (type 0, sub-type 2). */
  sendUpdate (update) {
    const e = this._encoder()
    encoding.writeVarUint(e, MSG_SYNC)
    syncProtocol.writeUpdate(e, update)
    return this._sendCounted(encoding.toUint8Array(e))
  }

  /**
   * Sends one awareness update announcing `state` for this doc's clientID
   * (same bytes as awarenessProtocol.encodeAwarenessUpdate, without keeping an
   * Awareness instance and its timer per connection).
   */
  sendAwareness (state, clock = 1) {
    const inner = encoding.createEncoder()
    encoding.writeVarUint(inner, 1)
    encoding.writeVarUint(inner, this.doc.clientID)
    encoding.writeVarUint(inner, clock)
    encoding.writeVarString(inner, JSON.stringify(state))
    const e = this._encoder()
    encoding.writeVarUint(e, MSG_AWARENESS)
    encoding.writeVarUint8Array(e, encoding.toUint8Array(inner))
    return this._send(encoding.toUint8Array(e))
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
    this._stopKeepAlive()
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

/**
 * Connects (and syncs) `clients` with at most `concurrency` handshakes in
 * flight. Resolves with the list of error messages of the ones that failed.
 */
export async function connectAll (clients, { concurrency = 50, timeoutMs = 15000, onConnected } = {}) {
  let next = 0
  const errors = []
  async function lane () {
    while (next < clients.length) {
      const index = next++
      const c = clients[index]
      try {
        await c.connect({ timeoutMs })
        onConnected?.(c, index)
      } catch (e) {
        errors.push(e.message)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, clients.length) }, lane))
  return errors
}
