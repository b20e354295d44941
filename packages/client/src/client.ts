import type * as Y from 'yjs'
import {
  ChunkAssembler, chunkFrame, classifyCloseCode, decodeFrame, encodeFrame, FRAME_KINDS, isUnknownFrame,
  NATIVE_SUBPROTOCOL, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, type Frame,
} from '@concord/protocol'
import { Emitter } from './emitter.js'
import { DocHandle, type HandleTransport } from './doc-handle.js'
import { backoffDelay, type BackoffOptions } from './backoff.js'
import type { OfflineStore } from './offline-store.js'

/** The subset of the browser WebSocket API the client uses (the `ws` package provides it in Node). */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  readonly protocol: string
  onopen: ((ev: unknown) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  /** Bytes queued but not yet sent (browsers and `ws` have it); paces uploads of large frames. */
  readonly bufferedAmount?: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

export type ClientStatus = 'connecting' | 'connected' | 'disconnected' | 'closed' | 'failed'

export interface ClientOptions {
  /** Server URL; or give `urls`. */
  url?: string
  /**
   * Several equivalent servers (nodes behind no load balancer): the client uses
   * one at a time and moves to the next after every failed or lost connection.
   */
  urls?: string[]
  /**
   * WebSocket implementation; default `globalThis.WebSocket`. In Node, import `createClient`
   * from `@concord/client/node`, which defaults to `ws` (Node 20 has no global WebSocket).
   */
  WebSocket?: WebSocketConstructor
  /** Token sent when opening each document. */
  token?: string
  /** Called before every (re)open of a document; wins over `token`. */
  getToken?: (document: string) => string | Promise<string>
  /** For the history API (`handle.versions()`, `restore()`); default: the global fetch. */
  fetch?: typeof fetch
  clientName?: string
  reconnect?: BackoffOptions & { enabled?: boolean }
  /** Largest (reassembled) message accepted from the server; default 512 MiB. */
  maxMessageBytes?: number
  /**
   * Where documents and unacked updates are kept across reloads and restarts:
   * `createIndexedDbOfflineStore()` in browsers, `createFileOfflineStore(dir)`
   * from `@concord/client/node` in Node, `createMemoryOfflineStore()` to
   * survive reconnects only. Default: none.
   */
  offlineStore?: OfflineStore
  /** Report `offline` after this long without a working connection (default 3,000 ms). */
  offlineAfterMs?: number
  /**
   * Tabs of one origin with the same document open (on the same server URL) share its state over
   * a BroadcastChannel: an edit in one shows in the others at once, online or offline; each tab
   * saves and sends only its own edits. Default: on in browsers, off elsewhere.
   */
  tabSync?: boolean
  /** Reconnect when nothing at all arrived for this long (0 disables). Any byte received counts. */
  livenessTimeoutMs?: number
  /**
   * With a server that is one region of several (docs/regions.md): an update counts as
   * "replicated" once it is durable in this many regions (its own included), and each handle
   * reports it (`replicated`, `whenReplicated()`, the `replicated` event). Until then the handle
   * keeps track of it, and a reconnect (to any region) sends again what the server lacks.
   * Default: not tracked.
   */
  replicatedRegions?: number
}

export interface ClientEvents {
  status: [status: ClientStatus]
  /** No working connection for `offlineAfterMs`. */
  offline: []
  /** Working again after having been offline. */
  online: []
  /** Connection-level trouble: close codes, errors for no document. */
  error: [error: { code: string; message: string; closeCode?: number }]
}

/** One socket, many documents. */
export class ConcordClient extends Emitter<ClientEvents> {
  readonly #opts: ClientOptions
  readonly #WS: WebSocketConstructor
  readonly #handles = new Map<string, DocHandle>()
  #ws: WebSocketLike | null = null
  #status: ClientStatus = 'disconnected'
  #attempt = 0
  readonly #urls: string[]
  #urlIndex = 0
  #retryTimer: ReturnType<typeof setTimeout> | null = null
  #livenessTimer: ReturnType<typeof setInterval> | null = null
  #lastReceived = 0
  #chunkBytes = 0
  #serverMaxMessageBytes = Number.POSITIVE_INFINITY
  #nextMessageId = 1
  #assembler: ChunkAssembler | null = null
  /** Bytes received so far of each chunked message in flight, by message id. */
  readonly #downloads = new Map<number, number>()
  /** Large outgoing frames, sent a chunk at a time while the socket's buffer is low. */
  #uploads: Upload[] = []
  #uploadTimer: ReturnType<typeof setTimeout> | null = null
  #welcomed = false
  #closed = false
  #offline = false
  #offlineTimer: ReturnType<typeof setTimeout> | null = null
  readonly #transport: HandleTransport

  constructor(options: ClientOptions) {
    super()
    this.#opts = options
    this.#urls = options.urls?.length ? [...options.urls] : options.url !== undefined ? [options.url] : []
    if (this.#urls.length === 0) throw new TypeError('createClient needs url or urls')
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (WS === undefined) {
      throw new TypeError("no WebSocket implementation here: in Node, import { createClient } from '@concord/client/node' (it brings ws); elsewhere pass options.WebSocket")
    }
    if (options.replicatedRegions !== undefined && !(Number.isInteger(options.replicatedRegions) && options.replicatedRegions >= 1)) {
      throw new TypeError('replicatedRegions must be a whole number of regions, at least 1')
    }
    this.#WS = WS
    const client = this
    this.#transport = {
      send: (bytes, document) => this.#send(bytes, document),
      get connected() { return client.connected },
      get maxMessageBytes() { return client.#serverMaxMessageBytes },
      retryDelayMs: attempt => backoffDelay(attempt + 2, this.#opts.reconnect),
      tokenFor: async document => (options.getToken ? await options.getToken(document) : options.token ?? ''),
      request: (path, init) => this.#request(path, init),
      replicatedRegions: options.replicatedRegions ?? null,
      onHandleClosed: handle => {
        if (this.#handles.get(handle.name) === handle) this.#handles.delete(handle.name)
      },
    }
    this.#connect()
    this.#armOfflineTimer()
  }

  /** An HTTP call to the server of the current URL (ws → http, wss → https); throws with the server's error code. */
  async #request(path: string, init: { method: string; token: string; body?: unknown }): Promise<unknown> {
    const fetchFn = this.#opts.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch
    if (fetchFn === undefined) throw new Error('no fetch implementation: pass options.fetch')
    const base = this.#urls[this.#urlIndex % this.#urls.length]!.replace(/^ws(s?):/, 'http$1:').replace(/\/+$/, '')
    const res = await fetchFn(`${base}${path}`, {
      method: init.method,
      headers: { ...(init.token !== '' ? { authorization: `Bearer ${init.token}` } : {}), ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    })
    const text = await res.text()
    let parsed: unknown = null
    try { parsed = text === '' ? null : JSON.parse(text) } catch { /* not JSON */ }
    if (!res.ok) {
      const e = parsed as { error?: string; message?: string } | null
      throw Object.assign(new Error(e?.message ?? `HTTP ${res.status}`), { code: e?.error ?? 'CONCORD_ERR_CLIENT_HTTP', status: res.status })
    }
    return parsed
  }

  /** True after `offlineAfterMs` without a working connection, until it works again. */
  get offline(): boolean {
    return this.#offline
  }

  #armOfflineTimer(): void {
    if (this.#offlineTimer !== null || this.#offline || this.#closed) return
    this.#offlineTimer = setTimeout(() => {
      this.#offlineTimer = null
      if (this.connected || this.#closed) return
      this.#offline = true
      for (const h of this.#handles.values()) h._setOffline(true)
      this.emit('offline')
    }, this.#opts.offlineAfterMs ?? 3_000)
  }

  #online(): void {
    if (this.#offlineTimer !== null) clearTimeout(this.#offlineTimer)
    this.#offlineTimer = null
    if (!this.#offline) return
    this.#offline = false
    for (const h of this.#handles.values()) h._setOffline(false)
    this.emit('online')
  }

  /** Tab sharing is on: asked for, or by default in a browser page. */
  get #tabSync(): boolean {
    const g = globalThis as { window?: { document?: unknown } }
    return this.#opts.tabSync ?? (g.window !== undefined && g.window.document !== undefined)
  }

  get status(): ClientStatus {
    return this.#status
  }

  /** The server URL in use (or being tried). */
  get url(): string {
    return this.#urls[this.#urlIndex % this.#urls.length]!
  }

  /** Handshake done: frames can be sent. */
  get connected(): boolean {
    return this.#welcomed && this.#ws !== null && this.#ws.readyState === 1
  }

  /** Open (or return the already open) document `name`. */
  open(name: string, options: { doc?: Y.Doc } = {}): DocHandle {
    if (this.#closed) throw new Error('client is closed')
    const existing = this.#handles.get(name)
    if (existing !== undefined) return existing
    const handle = new DocHandle(name, this.#transport, options.doc, this.#opts.offlineStore, this.#tabSync ? `concord-tab:${this.#urls[0]}:${name}` : null)
    this.#handles.set(name, handle)
    if (this.#offline) handle._setOffline(true)
    if (this.connected) void handle._connect()
    return handle
  }

  get documents(): DocHandle[] {
    return [...this.#handles.values()]
  }

  /** Drop the socket now and reconnect (as after a network failure). */
  reconnect(): void {
    if (this.#closed) return
    const ws = this.#ws
    this.#teardown()
    try { ws?.close(4000, 'client reconnect') } catch { /* already closed */ }
    this.#scheduleRetry(0)
  }

  /** Close every document and the socket. */
  close(): void {
    if (this.#closed) return
    for (const h of [...this.#handles.values()]) h.close()
    this.#closed = true
    if (this.#retryTimer) clearTimeout(this.#retryTimer)
    if (this.#offlineTimer) clearTimeout(this.#offlineTimer)
    const ws = this.#ws
    this.#teardown()
    try { ws?.close(1000) } catch { /* already closed */ }
    this.#setStatus('closed')
  }

  #connect(): void {
    if (this.#closed) return
    this.#setStatus('connecting')
    let ws: WebSocketLike
    try {
      ws = new this.#WS(this.#urls[this.#urlIndex % this.#urls.length]!, [NATIVE_SUBPROTOCOL])
    } catch (err) {
      this.emit('error', { code: 'CONCORD_ERR_CLIENT_CONNECT', message: String((err as Error).message) })
      this.#scheduleRetry()
      return
    }
    ws.binaryType = 'arraybuffer'
    this.#ws = ws
    ws.onopen = () => {
      this.#lastReceived = Date.now()
      ws.send(encodeFrame({
        kind: FRAME_KINDS.HELLO, document: '', minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX,
        client: this.#opts.clientName ?? '@concord/client',
      }))
    }
    ws.onmessage = ev => {
      if (this.#ws !== ws) return
      this.#lastReceived = Date.now()
      const data = ev.data
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data as Uint8Array
      this.#receive(bytes)
    }
    ws.onerror = () => { /* onclose follows */ }
    ws.onclose = ev => {
      if (this.#ws !== ws) return
      this.#teardown()
      if (this.#closed) return
      const kind = classifyCloseCode(ev.code)
      if (kind === 'permanent') {
        this.emit('error', { code: ev.reason || 'CONCORD_ERR_CLIENT_CLOSED', message: `server closed the connection (${ev.code})`, closeCode: ev.code })
        this.#setStatus('failed')
        return
      }
      if (ev.code !== 1000 && ev.code !== 1006 && ev.reason) {
        this.emit('error', { code: ev.reason, message: `connection closed (${ev.code}); reconnecting`, closeCode: ev.code })
      }
      this.#scheduleRetry()
    }
  }

  #teardown(): void {
    const ws = this.#ws
    if (ws !== null) {
      ws.onopen = null
      ws.onmessage = null
      ws.onclose = null
    }
    this.#ws = null
    this.#welcomed = false
    this.#assembler = null
    this.#downloads.clear()
    // a half-sent message is discarded by the server; the handles re-send what is unacked
    this.#uploads = []
    if (this.#uploadTimer !== null) clearTimeout(this.#uploadTimer)
    this.#uploadTimer = null
    if (this.#livenessTimer) clearInterval(this.#livenessTimer)
    this.#livenessTimer = null
    for (const h of this.#handles.values()) h._disconnected()
    if (!this.#closed) {
      this.#setStatus('disconnected')
      this.#armOfflineTimer()
    }
  }

  #scheduleRetry(delayMs?: number): void {
    if (this.#closed || this.#opts.reconnect?.enabled === false) return
    if (this.#retryTimer) clearTimeout(this.#retryTimer)
    // fail over: the next attempt goes to the next server
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length
    const delay = delayMs ?? backoffDelay(this.#attempt++, this.#opts.reconnect)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null
      this.#connect()
    }, delay)
  }

  #receive(bytes: Uint8Array, nested = false): void {
    let frame
    try {
      frame = decodeFrame(bytes)
    } catch (err) {
      this.emit('error', { code: 'CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', message: String((err as Error).message) })
      return
    }
    if (isUnknownFrame(frame)) return
    if (frame.kind === FRAME_KINDS.CHUNK) {
      if (this.#assembler === null || nested) {
        this.emit('error', { code: 'CONCORD_ERR_PROTOCOL_BAD_CHUNK', message: 'unexpected chunk' })
        return
      }
      let whole: Uint8Array | null
      try {
        whole = this.#assembler.push(frame)
      } catch (err) {
        // a broken chunk stream: start over on a fresh connection
        this.emit('error', { code: (err as { code?: string }).code ?? 'CONCORD_ERR_PROTOCOL_BAD_CHUNK', message: String((err as Error).message) })
        this.reconnect()
        return
      }
      const bytes = (this.#downloads.get(frame.messageId) ?? 0) + frame.data.length
      if (whole === null) this.#downloads.set(frame.messageId, bytes)
      else this.#downloads.delete(frame.messageId)
      this.#handles.get(frame.document)?._progress({
        direction: 'download', messageId: frame.messageId, chunks: frame.index + 1, totalChunks: frame.total, bytes,
      })
      if (whole !== null) this.#receive(whole, true)
      return
    }
    this.#dispatch(frame)
  }

  #dispatch(frame: Frame): void {
    switch (frame.kind) {
      case FRAME_KINDS.WELCOME: {
        this.#welcomed = true
        this.#attempt = 0
        this.#chunkBytes = frame.chunkBytes
        this.#serverMaxMessageBytes = frame.maxMessageBytes
        this.#assembler = new ChunkAssembler({ maxMessageBytes: this.#opts.maxMessageBytes ?? 512 * 1024 * 1024 })
        this.#startLiveness(frame.heartbeatIntervalMs)
        this.#setStatus('connected')
        this.#online()
        for (const h of this.#handles.values()) void h._connect()
        return
      }
      case FRAME_KINDS.PING:
        this.#send(encodeFrame({ kind: FRAME_KINDS.PONG, document: '' }), '')
        return
      case FRAME_KINDS.PONG:
        return
      default: {
        if (frame.document === '') {
          if (frame.kind === FRAME_KINDS.ERROR) this.emit('error', { code: frame.code, message: frame.message })
          return
        }
        this.#handles.get(frame.document)?._receive(frame)
      }
    }
  }

  #startLiveness(heartbeatIntervalMs: number): void {
    const timeout = this.#opts.livenessTimeoutMs ?? heartbeatIntervalMs * 2
    if (timeout <= 0) return
    const every = Math.max(50, Math.floor(timeout / 4))
    this.#livenessTimer = setInterval(() => {
      const silent = Date.now() - this.#lastReceived
      if (silent > timeout) {
        this.reconnect()
      } else if (silent > timeout / 2) {
        this.#send(encodeFrame({ kind: FRAME_KINDS.PING, document: '' }), '')
      }
    }, every)
  }

  #send(bytes: Uint8Array, document: string): void {
    const ws = this.#ws
    if (ws === null || ws.readyState !== 1) return
    if (this.#chunkBytes > 0 && bytes.length > this.#chunkBytes) {
      // large: chunks go out while the socket's buffer is low, so small frames
      // (cursors, other documents' edits) sent meanwhile are not stuck behind them
      const messageId = this.#nextMessageId++
      this.#uploads.push({
        document, messageId, chunks: chunkFrame(bytes, document, messageId, this.#chunkBytes),
        totalChunks: Math.ceil(bytes.length / this.#chunkBytes), sentChunks: 0, size: bytes.length,
      })
      this.#pumpUploads()
      return
    }
    ws.send(bytes)
  }

  #pumpUploads(): void {
    const ws = this.#ws
    if (ws === null || ws.readyState !== 1) return
    const lowWater = Math.max(UPLOAD_LOW_WATER_BYTES, 2 * this.#chunkBytes)
    while (this.#uploads.length > 0 && (ws.bufferedAmount ?? 0) < lowWater) {
      // round-robin between large messages
      const upload = this.#uploads.shift()!
      const next = upload.chunks.next()
      if (next.done) continue
      ws.send(next.value)
      upload.sentChunks++
      if (upload.sentChunks < upload.totalChunks) this.#uploads.push(upload)
      this.#handles.get(upload.document)?._progress({
        direction: 'upload', messageId: upload.messageId, chunks: upload.sentChunks, totalChunks: upload.totalChunks,
        bytes: Math.min(upload.size, upload.sentChunks * this.#chunkBytes),
      })
    }
    // WebSocket has no drain event: look again shortly
    if (this.#uploads.length > 0 && this.#uploadTimer === null) {
      this.#uploadTimer = setTimeout(() => {
        this.#uploadTimer = null
        this.#pumpUploads()
      }, UPLOAD_POLL_MS)
    }
  }

  #setStatus(status: ClientStatus): void {
    if (this.#status === status) return
    this.#status = status
    this.emit('status', status)
  }
}

interface Upload {
  document: string
  messageId: number
  chunks: Generator<Uint8Array>
  totalChunks: number
  sentChunks: number
  size: number
}

/** Chunks of large outgoing frames are handed to the socket while less than this is buffered. */
const UPLOAD_LOW_WATER_BYTES = 1024 * 1024
const UPLOAD_POLL_MS = 5

export function createClient(options: ClientOptions): ConcordClient {
  return new ConcordClient(options)
}
