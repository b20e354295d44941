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
   */
  constructor (url, opts = {}) {
    this.url = url
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
    this.stats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, updatesIn: 0, awarenessIn: 0, otherMsgs: 0, sendDropped: 0 }
    this.closedByServer = false
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
      this._syncWaiter = () => done()
      const ws = new WebSocket(this.url, { perMessageDeflate: false })
      this.ws = ws
      ws.on('open', () => {
        const e = encoding.createEncoder()
        encoding.writeVarUint(e, MSG_SYNC)
        syncProtocol.writeSyncStep1(e, this.doc)
        this._send(encoding.toUint8Array(e))
      })
      ws.on('message', (data, isBinary) => {
        if (!isBinary) return
        this._onMessage(data)
      })
      ws.on('error', (err) => done(new Error(`${err.code || ''} ${err.message} (${this.url})`.trim())))
      ws.on('close', (code) => {
        if (!this._closing) this.closedByServer = true
        done(new Error(`socket closed before sync (code ${code}, ${this.url})`))
      })
    })
  }

  _onMessage (data) {
    this.lastRecv = now()
    this.stats.msgsIn++
    this.stats.bytesIn += data.length
    const dec = decoding.createDecoder(data)
    const type = decoding.readVarUint(dec)
    if (type === MSG_SYNC) {
      const sub = decoding.readVarUint(dec)
      if (sub === SYNC_STEP1) {
        const sv = decoding.readVarUint8Array(dec)
        const e = encoding.createEncoder()
        encoding.writeVarUint(e, MSG_SYNC)
        syncProtocol.writeSyncStep2(e, this.doc, sv)
        this._send(encoding.toUint8Array(e))
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
    }
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

  /** Sends one Yjs update as a sync/update message (type 0, sub-type 2). */
  sendUpdate (update) {
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, MSG_SYNC)
    syncProtocol.writeUpdate(e, update)
    return this._send(encoding.toUint8Array(e))
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
    const e = encoding.createEncoder()
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
