import { describe, it, expect, afterEach } from 'vitest'
import { readFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import * as Y from 'yjs'
import { ConcordError, encodeFrame, FRAME_KINDS, NATIVE_SUBPROTOCOL, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, type Frame } from '@concord/protocol'
import type { Authenticate } from '@concord/server'
import { RawNativeSocket, startServer, waitFor } from './helpers.js'
import { spawnServer, type ServerProcess } from './server-process.js'

// An unauthenticated socket (HELLO only, or an OPEN still being authenticated) or one that
// may only read must not make the server hold much of what it sends: incomplete chunked
// messages and frames queued before OPEN share the pre-open budget (maxQueuedBytesBeforeOpen,
// 5 MiB by default), and a single WebSocket message may be no larger, until a document is
// open for writing. Every piece of a chunked message is charged to the byte rate limit.

const MiB = 1024 * 1024
const BUDGET = 5 * MiB
const PIECE = 256 * 1024
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

interface Info { connections: number; heldBytes: number; maxHeldBytes: number; peakHeldBytes: number; readPaused: number }
async function info(port: number): Promise<Info> {
  return (await fetch(`http://127.0.0.1:${port}/server-info`)).json() as Promise<Info>
}

/** Polls the server's figures until stopped: the most bytes it held for one socket, and whether it paused one. */
function sampler(port: number): { stop: () => Promise<{ maxHeldBytes: number; pausedSeen: boolean }> } {
  let running = true
  const seen = { maxHeldBytes: 0, pausedSeen: false }
  const loop = (async () => {
    while (running) {
      const i = await info(port).catch(() => null)
      if (i === null) break
      seen.maxHeldBytes = Math.max(seen.maxHeldBytes, i.maxHeldBytes)
      if (i.readPaused > 0) seen.pausedSeen = true
      // sampling period of a poll that runs until stopped, not a wait for a condition
      await new Promise(r => setTimeout(r, 20))
    }
  })()
  return { stop: async () => { running = false; await loop; return seen } }
}

async function raw(url: string, hello = true): Promise<RawNativeSocket> {
  const s = await RawNativeSocket.connect(url, hello)
  cleanups.push(() => s.ws.terminate())
  return s
}

/**
 * `pieces` × PIECE zero bytes of a chunked message that announces one piece more and never
 * sends it (what an attacker sends to make the server hold them; it need not even be a frame).
 */
function sendPieces(s: RawNativeSocket, document: string, messageId: number, pieces: number): void {
  const data = new Uint8Array(PIECE)
  for (let i = 0; i < pieces; i++) {
    if (s.ws.readyState !== s.ws.OPEN) return
    s.sendFrame({ kind: FRAME_KINDS.CHUNK, document, messageId, index: i, total: pieces + 1, data })
  }
}

/**
 * A native socket on raw TCP that says HELLO and then starts one unfragmented binary message
 * of `declared` bytes, sending only `sent` of them: ws would buffer them and wait for the rest.
 */
async function partialMessage(port: number, declared: number, sent: number): Promise<{ socket: Socket; closed: Promise<number | null> }> {
  const socket = netConnect(port, '127.0.0.1')
  cleanups.push(() => socket.destroy())
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${NATIVE_SUBPROTOCOL}\r\n\r\n`)
  let head = Buffer.alloc(0)
  let closeCode: number | null = null
  await new Promise<void>(resolve => {
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onData)
      // the server's frames after the 101 (unmasked): at its close frame, note the code and hang up
      let frames = head.subarray(end + 4)
      const onFrames = (f: Buffer): void => {
        frames = Buffer.concat([frames, f])
        for (;;) {
          if (frames.length < 2) return
          let len = frames[1]! & 0x7f
          let at = 2
          if (len === 126) { if (frames.length < 4) return; len = frames.readUInt16BE(2); at = 4 }
          else if (len === 127) { if (frames.length < 10) return; len = Number(frames.readBigUInt64BE(2)); at = 10 }
          if (frames.length < at + len) return
          if ((frames[0]! & 0x0f) === 0x8) {
            closeCode = len >= 2 ? frames.readUInt16BE(at) : 1005
            socket.destroy()
            return
          }
          frames = frames.subarray(at + len)
        }
      }
      socket.on('data', onFrames)
      resolve()
    }
    socket.on('data', onData)
  })
  socket.on('error', () => undefined)
  const closed = new Promise<number | null>(resolve => socket.once('close', () => resolve(closeCode)))
  const hello = encodeFrame({ kind: FRAME_KINDS.HELLO, document: '', minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, client: 'partial' })
  socket.write(masked(hello, hello.length))
  // the header claims `declared` bytes; the (unmasked, all-zero) body stops short
  const header = Buffer.from([0x82, 0x80 | 127, 0, 0, 0, 0, (declared >>> 24) & 0xff, (declared >>> 16) & 0xff, (declared >>> 8) & 0xff, declared & 0xff, 0, 0, 0, 0])
  socket.write(header)
  for (let off = 0; off < sent && !socket.destroyed; off += MiB) socket.write(Buffer.alloc(Math.min(MiB, sent - off)))
  return { socket, closed }
}

function masked(payload: Uint8Array, len: number): Buffer {
  const header = len < 126 ? Buffer.from([0x82, 0x80 | len]) : Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff])
  const mask = randomBytes(4)
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!
  return Buffer.concat([header, mask, body])
}

describe('before a document is open for writing, a socket cannot make the server hold what it sends', () => {
  it('HELLO-only sockets sending 32 MiB of an unfinished chunked message are closed with 1008 at the 5 MiB budget; one starting a 32 MiB message is closed with 1009 at its header', { timeout: 60_000 }, async () => {
    const server: ServerProcess = await spawnServer(['--store', 'memory', '--port', '0'])
    cleanups.push(async () => {
      if (server.child.exitCode === null) {
        server.child.kill('SIGTERM')
        await server.exited
      }
    })
    const pid = server.child.pid!
    const rssBefore = rssBytes(pid)
    let rssMax = rssBefore
    const rssTimer = setInterval(() => { rssMax = Math.max(rssMax, rssBytes(pid)) }, 20)
    cleanups.push(() => clearInterval(rssTimer))
    const stats = sampler(server.port)

    const chunkers = await Promise.all([0, 1, 2].map(() => raw(server.url)))
    chunkers.forEach((s, i) => sendPieces(s, `doc-${i}`, 1, 128))
    const partials = await Promise.all([0, 1].map(() => partialMessage(server.port, 32 * MiB, 31 * MiB)))
    const closes = await Promise.all(chunkers.map(s => s.closed))
    const partialCloses = await Promise.all(partials.map(p => p.closed))
    await waitFor(async () => (await info(server.port)).connections === 0, { message: 'every attacking socket gone' })
    const seen = await stats.stop()
    clearInterval(rssTimer)
    const after = await info(server.port)
    console.log(`before write access: 3 sockets × 32 MiB of chunks and 2 × 31 MiB of one unfinished message; ` +
      `most bytes one socket made the server hold ${after.peakHeldBytes}, held after ${after.heldBytes}; server RSS ${(rssBefore / MiB).toFixed(0)} MiB, ` +
      `peak ${(rssMax / MiB).toFixed(0)} MiB (+${((rssMax - rssBefore) / MiB).toFixed(0)} MiB)`)
    for (const c of closes) expect(c).toEqual({ code: 1008, reason: 'CONCORD_ERR_LIMIT_CHUNKS_BEFORE_WRITE' })
    for (const c of partialCloses) expect(c).toBe(1009)
    // never more than the budget per socket (plus a piece waiting for the rate limit), nothing after
    expect(after.peakHeldBytes).toBeLessThanOrEqual(BUDGET + PIECE)
    expect(seen.maxHeldBytes).toBeLessThanOrEqual(BUDGET + PIECE)
    expect(after.heldBytes).toBe(0)
    // 160 MiB were sent; the server's memory grew by a fraction of that
    expect(rssMax - rssBefore).toBeLessThan(64 * MiB)
  })

  it('an OPEN still being authenticated does not open the budget: its chunks are refused with a coded close', async () => {
    const srv = await startServer({ onAuthenticate: () => new Promise(() => undefined), authTimeoutMs: 30_000 })
    cleanups.push(() => srv.close())
    const stats = sampler(srv.port)
    const s = await raw(srv.url)
    s.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'pending', token: 'not checked yet', stateVector: new Uint8Array() })
    sendPieces(s, 'pending', 1, 64)
    expect(await s.closed).toEqual({ code: 1008, reason: 'CONCORD_ERR_LIMIT_CHUNKS_BEFORE_WRITE' })
    await waitFor(async () => (await info(srv.port)).connections === 0)
    const seen = await stats.stop()
    const { peakHeldBytes } = await info(srv.port)
    console.log(`pending OPEN: 16 MiB of chunks sent, the most bytes it made the server hold ${peakHeldBytes} (sampled: ${seen.maxHeldBytes})`)
    expect(peakHeldBytes).toBeLessThanOrEqual(BUDGET + PIECE)
    expect(peakHeldBytes).toBeGreaterThan(BUDGET - PIECE)
  })

  it('a read-only session gets the same budget; a writer may send a large chunked update, and a chunked OPEN fits the budget', async () => {
    const byToken: Authenticate = ({ token }) => {
      if (token === 'writer') return { userId: 'w', role: 'write' }
      if (token.startsWith('reader')) return { userId: 'r', role: 'read' }
      throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'unknown token')
    }
    const srv = await startServer({ onAuthenticate: byToken })
    cleanups.push(() => srv.close())

    const reader = await raw(srv.url)
    reader.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: 'reader', stateVector: new Uint8Array() })
    expect(await reader.next(FRAME_KINDS.OPENED, 'doc')).toMatchObject({ role: 'read' })
    sendPieces(reader, 'doc', 1, 64)
    expect(await reader.closed).toEqual({ code: 1008, reason: 'CONCORD_ERR_LIMIT_CHUNKS_BEFORE_WRITE' })

    // an honest client whose OPEN is larger than a chunk sends it chunked before it may write
    const opener = await raw(srv.url)
    const open = encodeFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: `reader${'.'.repeat(300_000)}`, stateVector: new Uint8Array() })
    const pieces = Math.ceil(open.length / (64 * 1024))
    for (let i = 0; i < pieces; i++) {
      opener.sendFrame({ kind: FRAME_KINDS.CHUNK, document: 'doc', messageId: 9, index: i, total: pieces, data: open.subarray(i * 64 * 1024, (i + 1) * 64 * 1024) })
    }
    expect(await opener.next(FRAME_KINDS.OPENED, 'doc')).toMatchObject({ role: 'read' })

    // a writer sends an 8 MiB update in chunks, as the client does above chunkBytes
    const writer = await raw(srv.url)
    writer.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: 'writer', stateVector: new Uint8Array() })
    await writer.next(FRAME_KINDS.SYNC_STEP2, 'doc')
    const d = new Y.Doc()
    d.getText('t').insert(0, 'w'.repeat(8 * MiB))
    const frame = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'doc', seq: 1, update: Y.encodeStateAsUpdate(d) })
    const total = Math.ceil(frame.length / PIECE)
    for (let i = 0; i < total; i++) {
      writer.sendFrame({ kind: FRAME_KINDS.CHUNK, document: 'doc', messageId: 1, index: i, total, data: frame.subarray(i * PIECE, (i + 1) * PIECE) })
    }
    expect((await writer.next(FRAME_KINDS.ACK, 'doc')).ranges).toEqual([{ from: 1, to: 1 }])
    expect(srv.server.registry.peek('doc')?.ydoc.getText('t').length).toBe(8 * MiB)
    expect(writer.closeCode).toBeNull()
    expect(opener.closeCode).toBeNull()
  })
})

describe('chunking does not get around the byte rate limit', () => {
  it('every piece is charged its real size: chunked messages whose first piece is tiny still slow the socket to the byte rate, and all are applied', async () => {
    // 1 MiB/s, burst 2 MiB; the messages total 6 MiB
    const srv = await startServer({ maxMessageBytes: 2 * MiB, chunkBytes: 64 * 1024, rateLimitBytesPerSecond: MiB, rateLimitBytesBurst: 2 * MiB })
    cleanups.push(() => srv.close())
    const s = await raw(srv.url)
    s.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'flood', token: '', stateVector: new Uint8Array() })
    await s.next(FRAME_KINDS.SYNC_STEP2, 'flood')
    const stats = sampler(srv.port)
    const source = new Y.Doc()
    const updates: Uint8Array[] = []
    source.on('update', (u: Uint8Array) => updates.push(u))
    for (let i = 0; i < 4; i++) source.getText('t').insert(0, String(i).repeat(1_500_000))
    // each message in two pieces: 1 KiB (the smallest a piece may be), then all the rest
    updates.forEach((update, i) => {
      const frame = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'flood', seq: i + 1, update } as Frame)
      s.sendFrame({ kind: FRAME_KINDS.CHUNK, document: 'flood', messageId: i + 1, index: 0, total: 2, data: frame.subarray(0, 1024) })
      s.sendFrame({ kind: FRAME_KINDS.CHUNK, document: 'flood', messageId: i + 1, index: 1, total: 2, data: frame.subarray(1024) })
    })
    await waitFor(() => {
      const acked = s.frames.filter(f => f.kind === FRAME_KINDS.ACK).flatMap(f => (f as Extract<Frame, { kind: typeof FRAME_KINDS.ACK }>).ranges)
      return acked.some(r => r.to >= 4) || undefined
    }, { timeoutMs: 30_000, message: 'all four updates acked' })
    const seen = await stats.stop()
    console.log(`chunked flood: 4 × 1.5 MB in pieces of 1 KiB + the rest, at 1 MiB/s: the server paused the socket: ${seen.pausedSeen}; most bytes held ${seen.maxHeldBytes}`)
    expect(seen.pausedSeen).toBe(true)
    expect(s.frames.filter(f => f.kind === FRAME_KINDS.ERROR)).toEqual([])
    expect(s.closeCode).toBeNull()
    expect(srv.server.registry.peek('flood')?.ydoc.getText('t').length).toBe(6_000_000)
  })
})
