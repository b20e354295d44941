import { clientAddress } from '../auth/client-address.js'
import type { IncomingMessage, Server as HttpServer } from 'node:http'
import type { Duplex } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import type { Logger } from 'pino'
import { ConcordError, documentNameProblem, NATIVE_SUBPROTOCOL, type ErrorCode } from '@concord/protocol'
import type { GatewayConfig, GatewayDeps } from './gateway-deps.js'
import { endSpan, startSpan } from '../ops/tracing.js'
import { NativeConnection } from './native-transport.js'
import { YWebsocketConnection } from './y-websocket-transport.js'
import { HocuspocusConnection } from './hocuspocus-transport.js'
import type { SocketConnection } from './socket-connection.js'
import { SOCKET_CLOSED } from './socket-like.js'
import { SpreadSweep } from './spread-sweep.js'

type Transport = 'native' | 'y-websocket' | 'hocuspocus'

/**
 * The paths a stock Hocuspocus provider connects to: the server's root (a y-websocket client always
 * names its room in the path, so the root is free) or `/hocuspocus`.
 */
export const HOCUSPOCUS_PATHS: readonly string[] = ['/', '/hocuspocus', '/hocuspocus/']

/**
 * ws's WebSocket with the gateway's record of it (its connection, its address, whether it
 * answered the last ping), given to ws as its `WebSocket` class. ws tells a socket's events by
 * calling its `emit`, which hands them to the connection directly: a listener per socket and
 * event (the usual `ws.on`) costs an idle connection its closures and the entries of its
 * listener table (the table grows from 3 to 4 listeners by about 100 bytes), and a record
 * beside the socket another object. `once('close')` and any other listener still work.
 */
class GatewaySocket extends WebSocket {
  /** Null until accepted (and for a socket refused after the upgrade). */
  connection: SocketConnection | null = null
  gateway: Gateway | null = null
  /** The remote address's count of open sockets (shared by its sockets, with the address string). */
  address: AddressCount | null = null
  /** Answered (or sent anything) since the last heartbeat ping. */
  alive = true

  constructor(...args: unknown[]) {
    super(...(args as ConstructorParameters<typeof WebSocket>))
    // EventEmitter's listener table, made empty by its constructor, is a dictionary of about 180
    // bytes; events reach the connection through `emit` instead, and Node's EventEmitter makes the
    // table again on the first `on`/`once` (it accepts `_events` undefined throughout)
    ;(this as unknown as { _events: undefined })._events = undefined
  }

  /**
   * ws gives every socket a closure for its automatic pongs (`() => autoPongComplete(this)`, which
   * counts the pongs not yet written against `maxPendingAutoPongs`): the one it assigns is dropped,
   * and the same closure is made when a ping arrives, for that pong.
   */
  get _autoPongComplete(): () => void {
    return () => { (this as unknown as { _pendingAutoPongs: number })._pendingAutoPongs-- }
  }

  set _autoPongComplete(_made: () => void) {}

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    switch (event) {
      case 'message':
        onMessage(this, args[0] as RawData, args[1] as boolean)
        return true
      case 'pong':
        this.alive = true
        return true
      case 'error':
        // ws closes the socket itself for protocol violations (1002) and oversized messages (1009)
        onError(this, args[0] as Error)
        return true
      case 'close':
        onClose(this, args[0] as number)
        break
    }
    return super.emit(event, ...args)
  }
}

/** What of ws's Receiver `onMessage` touches: the chunks it has read and not yet parsed. */
interface ReceiverBuffers {
  _buffers: Buffer[]
  _bufferedBytes: number
}

function onMessage(ws: GatewaySocket, data: RawData, isBinary: boolean): void {
  const connection = ws.connection
  if (connection === null) return
  ws.alive = true
  // ws's Receiver keeps the chunks it reads in one array for the socket's life, grown to 16 slots
  // by the first chunk (about 150 bytes that an idle socket keeps): once it has parsed all it
  // read, a new empty array takes its place (ws reads the field afresh for every chunk)
  const receiver = (ws as unknown as { _receiver: ReceiverBuffers | null })._receiver
  // (ws internals: checked, so that a ws release that renames them costs memory, not messages;
  // e2e/protection.test.ts's ping flood fails if the pong count below stops being kept)
  if (receiver != null && receiver._bufferedBytes === 0 && Array.isArray(receiver._buffers) && receiver._buffers.length === 0) receiver._buffers = []
  if (!isBinary) {
    connection.close(new ConcordError('CONCORD_ERR_PROTOCOL_TEXT_FRAME'))
    return
  }
  try {
    connection.receive(toBytes(data))
  } catch (err) {
    connection.error({ err }, 'unexpected error handling a message')
    connection.close(new ConcordError('CONCORD_ERR_SERVER_INTERNAL'))
  }
}

function onError(ws: GatewaySocket, err: Error): void {
  ws.connection?.info({ code: (err as { code?: string }).code, err: err.message }, 'socket error')
}

function onClose(ws: GatewaySocket, code: number): void {
  const connection = ws.connection
  if (connection === null) return
  ws.gateway?.forget(ws)
  connection.dispose()
  connection.debug({ code }, 'disconnected')
}

/** Open sockets from one remote address. */
interface AddressCount {
  readonly ip: string
  open: number
}

export interface GatewayStats {
  connections: number
  native: number
  yWebsocket: number
  hocuspocus: number
  /** Bytes waiting to be read by peers, all sockets together, and the most for one socket. */
  pendingBytes: number
  maxPendingBytes: number
  /** Bytes received and not yet handled, all sockets together, and the most for one socket. */
  heldBytes: number
  maxHeldBytes: number
  /** The most bytes one socket held at once since the server started (closed sockets included). */
  peakHeldBytes: number
  /** Sockets not being read right now because they are over their rate limit. */
  readPaused: number
}

/**
 * The WebSocket side of the HTTP server: upgrades, routing to the native, the y-websocket or the
 * Hocuspocus transport, ping heartbeats, and closing everything on shutdown. Native clients ask
 * for the `concord` subprotocol; a socket to `/` or `/hocuspocus` is a Hocuspocus provider's;
 * everything else is a y-websocket client whose URL path names the room.
 */
export class Gateway {
  readonly #wss: WebSocketServer
  readonly #deps: GatewayDeps
  readonly #config: GatewayConfig
  readonly #log: Logger
  /** Every accepted socket. */
  readonly #tracked = new Set<GatewaySocket>()
  /** Open sockets per remote address. */
  readonly #perIp = new Map<string, AddressCount>()
  #heartbeat: NodeJS.Timeout | null = null
  #peakHeldBytes = 0
  #draining = false
  readonly #counts: Record<Transport, number> = { native: 0, 'y-websocket': 0, hocuspocus: 0 }
  /**
   * Connection ids: a random prefix per gateway plus a counter, `xxxxxxx-1a`. (randomUUID()
   * strings are rope strings of a dozen parts in V8, about 450 bytes each, kept for the life of
   * every connection; and a string built of parts is flat only below 13 characters, so the
   * prefix is 7: up to 1.7 million connections get ids of one flat string, 32 bytes.)
   */
  readonly #idPrefix = `${randomBytes(6).readUIntBE(0, 6).toString(36).padStart(7, '0').slice(-7)}-`
  #idCounter = 0

  constructor(http: HttpServer, deps: GatewayDeps) {
    this.#deps = deps
    this.#config = deps.config
    this.#log = deps.logger
    const options = deps.config
    this.#wss = new WebSocketServer({
      noServer: true,
      // the gateway tracks its sockets itself (ws's tracking costs a closure per socket)
      clientTracking: false,
      WebSocket: GatewaySocket,
      maxPayload: options.maxMessageBytes,
      perMessageDeflate: options.compressionThresholdBytes > 0
        ? {
            threshold: options.compressionThresholdBytes,
            zlibDeflateOptions: { level: 1 },
            // no zlib context kept between messages: a connection holds no compressor while it waits
            serverNoContextTakeover: true,
            clientNoContextTakeover: true,
          }
        : false,
      handleProtocols: protocols => (protocols.has(NATIVE_SUBPROTOCOL) ? NATIVE_SUBPROTOCOL : false),
    })
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.#upgrade(req, socket, head)
      } catch (err) {
        this.#log.error({ err }, 'upgrade failed')
        this.#refuse(socket, 500, 'CONCORD_ERR_SERVER_INTERNAL')
      }
    })
    const sweep = new SpreadSweep(this.#tracked, options.heartbeatIntervalMs, (ws, since) => this.#heartbeatOf(ws, since))
    this.#heartbeat = setInterval(() => sweep.tick(), sweep.tickMs)
    this.#heartbeat.unref()
  }

  /** Open sockets (what `stats()` counts, without its pass over every socket). */
  get connectionCount(): number {
    return this.#tracked.size
  }

  stats(): GatewayStats {
    let pendingBytes = 0
    let maxPendingBytes = 0
    let heldBytes = 0
    let maxHeldBytes = 0
    let readPaused = 0
    const now = Date.now()
    for (const ws of this.#tracked) {
      const c = ws.connection!
      const n = c.sender.pendingBytes
      pendingBytes += n
      if (n > maxPendingBytes) maxPendingBytes = n
      const h = c.heldBytes
      heldBytes += h
      if (h > maxHeldBytes) maxHeldBytes = h
      if (c.peakHeldBytes > this.#peakHeldBytes) this.#peakHeldBytes = c.peakHeldBytes
      if (c.readPausedAt >= now) readPaused++
    }
    return {
      connections: this.#tracked.size, native: this.#counts.native, yWebsocket: this.#counts['y-websocket'], hocuspocus: this.#counts.hocuspocus,
      pendingBytes, maxPendingBytes, heldBytes, maxHeldBytes, peakHeldBytes: this.#peakHeldBytes, readPaused,
    }
  }

  /** Refuse new upgrades from now on. */
  drain(): void {
    this.#draining = true
  }

  /** Close every socket with `error` (1001 on shutdown) and wait until they are gone. */
  async closeAll(error: ConcordError, timeoutMs = 5_000): Promise<void> {
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    this.#heartbeat = null
    const sockets = [...this.#tracked]
    const closed = sockets.map(ws => new Promise<void>(resolve => {
      if (ws.readyState === SOCKET_CLOSED) resolve()
      else ws.once('close', () => resolve())
    }))
    for (const ws of sockets) ws.connection!.close(error)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(closed), new Promise<void>(r => { timer = setTimeout(r, timeoutMs) })])
    clearTimeout(timer)
    for (const ws of this.#tracked) ws.terminate()
    this.#wss.close()
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#draining) {
      this.#refuse(socket, 503, 'CONCORD_ERR_SERVER_SHUTTING_DOWN')
      return
    }
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map(s => s.trim())
    let transport: Transport = protocols.includes(NATIVE_SUBPROTOCOL) ? 'native' : 'y-websocket'
    let document = ''
    let token = ''
    if (transport !== 'native') {
      try {
        const url = new URL(req.url ?? '/', 'http://localhost')
        if (HOCUSPOCUS_PATHS.includes(url.pathname)) transport = 'hocuspocus'
        else {
          document = decodeURIComponent(url.pathname.slice(1))
          token = url.searchParams.get('token') ?? ''
        }
      } catch {
        this.#refuse(socket, 400, 'CONCORD_ERR_DOC_INVALID_NAME')
        return
      }
      if (transport === 'y-websocket' && documentNameProblem(document) !== null) {
        this.#refuse(socket, 400, 'CONCORD_ERR_DOC_INVALID_NAME')
        return
      }
    }
    const ip = clientAddress(req, this.#config.trustProxyHops)
    // Node keeps what it read for `remoteAddress` (an object and a string, about 80 bytes) for the
    // socket's life; the address is kept once per address (AddressCount), and Node reads it again
    // if anything asks
    ;(req.socket as unknown as { _peername?: unknown })._peername = undefined
    const span = startSpan('concord.connect', { 'concord.transport': transport, ...(transport === 'y-websocket' ? { 'concord.document': document } : {}) })
    this.#wss.handleUpgrade(req, socket, head, ws => {
      const id = this.#upgraded(ws as GatewaySocket, req, transport, document, token, ip)
      endSpan(span, id === null ? 'connection refused' : undefined, id === null ? undefined : { 'concord.connection_id': id })
    })
  }

  #refuse(socket: Duplex, status: number, code: ErrorCode): void {
    this.#deps.metrics.refused(code)
    refuse(socket, status, code)
  }

  /** Returns the new connection's id, or null when it was refused. */
  #upgraded(ws: GatewaySocket, req: IncomingMessage, transport: Transport, document: string, token: string, ip: string): string | null {
    // accepted, then closed with a code the client can read (a refused upgrade shows only as 1006 in browsers)
    const address = this.#perIp.get(ip)
    const open = address?.open ?? 0
    if (open >= this.#config.maxConnectionsPerIp) {
      this.#log.info({ ip, open, code: 'CONCORD_ERR_LIMIT_CONNECTIONS_PER_IP' }, 'too many connections from one address')
      const e = new ConcordError('CONCORD_ERR_LIMIT_CONNECTIONS_PER_IP', `at most ${this.#config.maxConnectionsPerIp} connections per address`)
      this.#deps.metrics.refused(e.code)
      ws.close(e.closeCode ?? 1013, e.code)
      return null
    }
    const count = address ?? { ip, open: 0 }
    if (address === undefined) this.#perIp.set(ip, count)
    count.open++
    const connectionId = this.#idPrefix + (++this.#idCounter).toString(36)
    let connection: SocketConnection
    try {
      const deps = this.#deps
      connection = transport === 'native' ? new NativeConnection(ws, req, deps, connectionId)
        : transport === 'hocuspocus' ? new HocuspocusConnection(ws, req, deps, connectionId)
          : new YWebsocketConnection(ws, req, deps, connectionId, document, token)
    } catch (err) {
      this.#release(count)
      // after the 101 response: close as a WebSocket, not with an HTTP reply
      this.#log.error({ err }, 'accepting a connection failed')
      ws.close(1011, 'CONCORD_ERR_SERVER_INTERNAL')
      return null
    }
    ws.connection = connection
    ws.gateway = this
    ws.address = count
    this.#tracked.add(ws)
    this.#counts[transport]++
    connection.debug({ remote: ip }, 'connected')
    return connectionId
  }

  /** A socket closed: stop tracking it. */
  forget(ws: GatewaySocket): void {
    if (!this.#tracked.delete(ws)) return
    const c = ws.connection!
    if (c.peakHeldBytes > this.#peakHeldBytes) this.#peakHeldBytes = c.peakHeldBytes
    this.#counts[c.protocol]--
    this.#release(ws.address!)
  }

  #release(address: AddressCount): void {
    if (--address.open <= 0 && this.#perIp.get(address.ip) === address) this.#perIp.delete(address.ip)
  }

  /**
   * One timer for all sockets, each visited once per heartbeat interval (spread over it): a socket
   * that did not answer its last ping is terminated, the others are pinged. A socket the rate limit
   * kept unread at some point since its last ping is spared: its pong may still be waiting, unread,
   * behind what it sent before (`since` is before that ping).
   */
  #heartbeatOf(ws: GatewaySocket, since: number): void {
    if (!ws.alive && ws.connection!.readPausedAt < since) {
      this.#log.info({ connectionId: ws.connection!.id, code: 'CONCORD_ERR_HEARTBEAT_TIMEOUT' satisfies ErrorCode }, 'peer missed a heartbeat; terminating')
      ws.terminate()
      return
    }
    ws.alive = false
    try {
      ws.ping()
    } catch {
      ws.terminate()
    }
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data)
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return data
}

/** Refuse an upgrade with an HTTP status and the error code as the body. */
function refuse(socket: Duplex, status: number, code: ErrorCode): void {
  const body = JSON.stringify({ error: code })
  const text = status === 503 ? 'Service Unavailable' : status === 500 ? 'Internal Server Error' : 'Bad Request'
  socket.end(`HTTP/1.1 ${status} ${text}\r\n` +
    'Content-Type: application/json\r\nConnection: close\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

