import { afterEach } from 'vitest'
import { WebSocket } from 'ws'
import { connect as netConnect, createServer as createNetServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import { createServer, type ConcordServer, type ServerOptions } from '@concord/server'
import { createClient, type ClientOptions, type ConcordClient, type WebSocketConstructor } from '@concord/client'
import {
  decodeFrame, encodeFrame, FRAME_KINDS, isUnknownFrame, NATIVE_SUBPROTOCOL, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
  type Frame, type UnknownFrame,
} from '@concord/protocol'

export interface RunningServer {
  server: ConcordServer
  url: string
  port: number
  close(): Promise<void>
}

/** For tests that replay traces or blast thousands of updates on purpose: the per-socket rate limit out of the way. */
export const NO_RATE_LIMIT = { rateLimitMessagesPerSecond: 1e9, rateLimitMessagesBurst: 1e9, rateLimitBytesPerSecond: 1e12, rateLimitBytesBurst: 1e12 } as const

/** An in-process server; without `auth` or `onAuthenticate` it runs with `auth: 'none'`. */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const server = createServer(options.auth === undefined && options.onAuthenticate === undefined ? { auth: 'none', ...options } : options)
  const { port, url } = await server.listen(0, '127.0.0.1')
  return { server, url, port, close: () => server.close() }
}

/** Poll `check` until it returns true (or a value that is not false/undefined), or fail after the deadline. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 10, message = 'condition' }: { timeoutMs?: number; intervalMs?: number; message?: string | (() => string) } = {},
): Promise<Exclude<T, false | undefined | null>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== false && v !== undefined && v !== null) return v as Exclude<T, false | undefined | null>
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof message === 'function' ? message() : message}${last ? `: ${String(last)}` : ''}`)
    }
    await new Promise(r => setTimeout(r, intervalMs))
  }
}

export function connectClient(url: string, options: Partial<ClientOptions> = {}): ConcordClient {
  return createClient({
    url,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    reconnect: { minDelayMs: 20, maxDelayMs: 300 },
    ...options,
  })
}

/** A bare native-protocol socket for frame-level tests. */
export class RawNativeSocket {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  /** Frames of kinds this protocol version does not know (a server should never send one). */
  readonly unknownFrames: UnknownFrame[] = []
  closeCode: number | null = null
  closeReason = ''
  /** Answer PING with PONG, as every native client must (off: a client that ignores them). */
  answerPings = true
  readonly opened: Promise<void>
  readonly closed: Promise<{ code: number; reason: string }>

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, [NATIVE_SUBPROTOCOL], { headers })
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve())
      this.ws.once('error', reject)
    })
    this.closed = new Promise(resolve => {
      this.ws.on('close', (code, reason) => {
        this.closeCode = code
        this.closeReason = reason.toString()
        resolve({ code, reason: this.closeReason })
      })
    })
    this.ws.on('message', (data: Buffer) => {
      const frame = decodeFrame(new Uint8Array(data))
      if (isUnknownFrame(frame)) this.unknownFrames.push(frame)
      else this.frames.push(frame)
      // the protocol requires an answer to PING (the server's flow control of chunks relies on it)
      if (frame.kind === FRAME_KINDS.PING && this.answerPings && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(encodeFrame({ kind: FRAME_KINDS.PONG, document: '' }))
      }
    })
  }

  static async connect(url: string, hello = true, headers: Record<string, string> = {}): Promise<RawNativeSocket> {
    const s = new RawNativeSocket(url, headers)
    await s.opened
    if (hello) {
      s.send(encodeFrame({ kind: FRAME_KINDS.HELLO, document: '', minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, client: 'raw-test' }))
      await s.next(FRAME_KINDS.WELCOME)
    }
    return s
  }

  send(bytes: Uint8Array | string): void {
    this.ws.send(bytes)
  }

  sendFrame(frame: Frame): void {
    this.ws.send(encodeFrame(frame))
  }

  /** Wait for a frame of `kind` (optionally for `document`) that arrived after index `from`. */
  async next<K extends number>(kind: K, document?: string, from = 0): Promise<Extract<Frame, { kind: K }>> {
    return waitFor(() => this.frames.slice(from).find(f => f.kind === kind && (document === undefined || f.document === document)) as Extract<Frame, { kind: K }> | undefined,
      { message: `frame kind ${kind}${document !== undefined ? ` for ${document}` : ''}` })
  }

  close(): void {
    this.ws.close()
  }
}

/**
 * Servers and clients a test file starts, closed after each test:
 * `const live = cleanupAfterEach()`, then `live.server = await startServer()` and `live.clients.push(c)`.
 */
export function cleanupAfterEach(): { server: RunningServer | null; clients: ConcordClient[] } {
  const live: { server: RunningServer | null; clients: ConcordClient[] } = { server: null, clients: [] }
  afterEach(async () => {
    for (const c of live.clients.splice(0)) c.close()
    await live.server?.close()
    live.server = null
  })
  return live
}

/** A small seeded PRNG (mulberry32) for reproducible randomised tests (the server's unit tests use the same). */
export { seededRandom } from '../packages/server/src/documents/testing.js'

/**
 * A native-protocol client that says HELLO, sends `frames`, and then never
 * reads again: a raw TCP socket, paused for good, so the server's sends pile up
 * in the kernel and then in the server (a `ws` client cannot be stalled
 * reliably: it resumes its socket by itself). `closed` resolves when the server
 * ends the connection.
 */
export async function stalledNativeReader(url: string, frames: Uint8Array[]): Promise<{ closed: Promise<void>; destroy: () => void }> {
  const { port, hostname } = new URL(url)
  const socket = netConnect(Number(port), hostname)
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${NATIVE_SUBPROTOCOL}\r\n\r\n`)
  // read only the 101 response
  await new Promise<void>((resolve, reject) => {
    let head = ''
    const onData = (d: Buffer): void => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      socket.pause()
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`))
      else resolve()
    }
    socket.on('data', onData)
  })
  const hello = encodeFrame({ kind: FRAME_KINDS.HELLO, document: '', minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, client: 'stalled' })
  for (const f of [hello, ...frames]) socket.write(maskedBinaryFrame(f))
  const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
  socket.on('error', () => undefined)
  return { closed, destroy: () => socket.destroy() }
}

/** A client-to-server WebSocket binary frame (clients must mask). */
function maskedBinaryFrame(payload: Uint8Array): Buffer {
  const len = payload.length
  const header = len < 126 ? Buffer.from([0x82, 0x80 | len]) : len < 65536
    ? Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff])
    : Buffer.concat([Buffer.from([0x82, 0x80 | 127, 0, 0, 0, 0]), Buffer.from([(len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff])])
  const mask = randomBytes(4)
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!
  return Buffer.concat([header, mask, body])
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const probe = createNetServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', () => resolve()))
  const port = (probe.address() as { port: number }).port
  await new Promise<void>(resolve => probe.close(() => resolve()))
  return port
}
