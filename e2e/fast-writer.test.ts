import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import type { ConcordClient } from '@concord/client'
import { encodeYMessage, FRAME_KINDS } from '@concord/protocol'
import { connectClient, RawNativeSocket, startServer, waitFor, type RunningServer } from './helpers.js'
import { loadTrace, type SequentialTrace } from './traces.js'

// ARCHITECTURE.md §3: fast honest clients are slowed, not cut. A client replaying a real
// editing trace as fast as its socket allows (an import script, a bot) goes over the
// per-socket rate limit of a server on default settings (1,000 messages a second, burst
// 5,000): the server reads its socket more slowly, and nothing it sent is refused or lost.

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

async function server(): Promise<RunningServer> {
  const s = await startServer()
  cleanups.push(() => s.close())
  return s
}

function provider(url: string, room: string): WebsocketProvider {
  const p = new WebsocketProvider(url, room, new Y.Doc(), { WebSocketPolyfill: WebSocket as never, disableBc: true })
  cleanups.push(() => p.destroy())
  return p
}

function client(url: string): ConcordClient {
  const c = connectClient(url)
  cleanups.push(() => c.close())
  return c
}

/** The text after the first `n` transactions, applied to a plain string. */
function expectedText(trace: SequentialTrace, n: number): string {
  let text = trace.startContent
  for (const txn of trace.txns.slice(0, n)) {
    for (const [pos, del, ins] of txn.patches) text = text.slice(0, pos) + ins + text.slice(pos + del)
  }
  return text
}

/** Each transaction in a transaction of its own, so each becomes one message. */
function replay(doc: Y.Doc, trace: SequentialTrace, n: number): void {
  const text = doc.getText('text')
  for (const txn of trace.txns.slice(0, n)) {
    doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        if (del > 0) text.delete(pos, del)
        if (ins.length > 0) text.insert(pos, ins)
      }
    })
  }
}

/** "none", or each distinct entry with its count. */
function summary(xs: string[]): string {
  const counts = new Map<string, number>()
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1)
  return counts.size === 0 ? 'none' : [...counts].map(([x, n]) => `${x} ×${n}`).join(', ')
}

/** Samples the server's own figures while a replay runs: whether it paused a socket, and the most it held for one. */
function sampleStats(srv: RunningServer): { stop: () => Promise<{ pausedSeen: boolean; maxHeldBytes: number; samples: number }> } {
  let running = true
  const seen = { pausedSeen: false, maxHeldBytes: 0, samples: 0 }
  const loop = (async () => {
    while (running) {
      const s = await fetch(`http://127.0.0.1:${srv.port}/server-info`).then(r => r.json() as Promise<{ readPaused: number; maxHeldBytes: number }>).catch(() => null)
      if (s === null) break
      seen.samples++
      if (s.readPaused > 0) seen.pausedSeen = true
      seen.maxHeldBytes = Math.max(seen.maxHeldBytes, s.maxHeldBytes)
      // sampling period of a poll that runs until stopped, not a wait for a condition
      await new Promise(r => setTimeout(r, 50))
    }
  })()
  return { stop: async () => { running = false; await loop; return seen } }
}

describe('a fast honest writer on default settings is slowed, never refused or disconnected', () => {
  it('a stock y-websocket provider replays 30,000 transactions of seph-blog1 as fast as it can: no close, and an observer ends with the expected text', { timeout: 180_000 }, async () => {
    const trace = loadTrace('seph-blog1')
    const N = 30_000
    const expected = expectedText(trace, N)
    const srv = await server()
    const writer = provider(srv.url, 'import')
    const observer = provider(srv.url, 'import')
    await waitFor(() => writer.synced && observer.synced, { message: 'both providers synced' })
    const events: string[] = []
    writer.on('connection-close', (event: { code?: number; reason?: string } | null) => events.push(`connection-close ${event?.code} ${event?.reason}`))
    writer.on('connection-error', () => events.push('connection-error'))
    writer.on('status', ({ status }: { status: string }) => events.push(`status ${status}`))
    const stats = sampleStats(srv)

    const started = performance.now()
    replay(writer.doc, trace, N)
    const queuedMs = performance.now() - started
    expect(writer.doc.getText('text').toString()).toBe(expected)
    const observed = observer.doc.getText('text')
    await waitFor(() => observed.length === expected.length && observed.toString() === expected,
      { timeoutMs: 150_000, intervalMs: 100, message: () => `observer to reach the expected text (has ${observed.length} of ${expected.length} characters; writer events: ${summary(events)})` })
    const replayMs = performance.now() - started
    const seen = await stats.stop()
    console.log(`y-websocket fast writer: ${N} transactions handed to the socket in ${Math.round(queuedMs)} ms, all observed after ${Math.round(replayMs)} ms ` +
      `(${Math.round(N / replayMs * 1000)}/s); server paused the socket: ${seen.pausedSeen}; most bytes held for one socket ${seen.maxHeldBytes}`)
    expect(events).toEqual([])
    expect(writer.wsconnected).toBe(true)
    // the writer did go over the limit: the server read it more slowly rather than refusing it
    expect(seen.pausedSeen).toBe(true)
    // and the server's copy agrees
    expect(srv.server.registry.peek('import')!.ydoc.getText('text').toString()).toBe(expected)
  })

  it('a native client replays 12,000 transactions as fast as it can: no CONCORD_ERR_LIMIT_RATE, no reconnect, all saved and observed', { timeout: 120_000 }, async () => {
    const trace = loadTrace('seph-blog1')
    const N = 12_000
    const expected = expectedText(trace, N)
    const srv = await server()
    const writerClient = client(srv.url)
    const w = writerClient.open('import')
    const o = client(srv.url).open('import')
    await Promise.all([w.whenSynced(), o.whenSynced()])
    const errors: string[] = []
    const statuses: string[] = []
    writerClient.on('error', e => errors.push(e.code))
    w.on('error', e => errors.push(e.code))
    writerClient.on('status', s => statuses.push(s))
    const stats = sampleStats(srv)

    const started = performance.now()
    replay(w.doc, trace, N)
    await waitFor(() => o.doc.getText('text').toString() === expected,
      { timeoutMs: 100_000, intervalMs: 100, message: () => `observer to reach the expected text (errors: ${summary(errors)}; statuses: ${summary(statuses)})` })
    await w.whenSaved()
    const replayMs = performance.now() - started
    const seen = await stats.stop()
    console.log(`native fast writer: ${N} transactions observed and saved after ${Math.round(replayMs)} ms (${Math.round(N / replayMs * 1000)}/s); ` +
      `server paused the socket: ${seen.pausedSeen}; most bytes held for one socket ${seen.maxHeldBytes}`)
    expect(summary(errors)).toBe('none')
    expect(summary(statuses)).toBe('none')
    expect(w.pendingCount).toBe(0)
    expect(seen.pausedSeen).toBe(true)
  })

  it('a writer held back for many heartbeat intervals is not taken for dead, and a y-websocket one hears from the server meanwhile', { timeout: 60_000 }, async () => {
    // 256 KiB/s, burst 512 KiB, heartbeat every 200 ms: each 400 KB update waits about 1.5 s, the socket unread
    const srv = await startServer({ heartbeatIntervalMs: 200, maxMessageBytes: 512 * 1024, rateLimitBytesPerSecond: 256 * 1024, rateLimitBytesBurst: 512 * 1024 })
    cleanups.push(() => srv.close())
    const updates = (tag: string): Uint8Array[] => {
      const d = new Y.Doc()
      const out: Uint8Array[] = []
      d.on('update', (u: Uint8Array) => out.push(u))
      for (let i = 0; i < 4; i++) d.getText('t').insert(0, tag.repeat(400_000))
      return out
    }
    const stats = sampleStats(srv)

    const native = await RawNativeSocket.connect(srv.url)
    cleanups.push(() => native.ws.terminate())
    native.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'native', token: '', stateVector: new Uint8Array() })
    await native.next(FRAME_KINDS.SYNC_STEP2, 'native')

    const yws = new WebSocket(`${srv.url}/yws`)
    cleanups.push(() => yws.terminate())
    const received: Uint8Array[] = []
    let ywsClose: number | null = null
    yws.on('message', (data: Buffer) => received.push(new Uint8Array(data)))
    yws.on('close', code => { ywsClose = code })
    await new Promise<void>((resolve, reject) => { yws.once('open', () => resolve()); yws.once('error', reject) })
    yws.send(encodeYMessage({ type: 'sync-step1', stateVector: new Uint8Array([0]) }))
    await waitFor(() => received.some(m => m[0] === 0 && m[1] === 1), { message: 'the y-websocket sync reply' })
    const before = received.length

    updates('n').forEach((update, i) => native.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'native', seq: i + 1, update }))
    for (const update of updates('y')) yws.send(encodeYMessage({ type: 'update', update }))
    await waitFor(() => srv.server.registry.peek('native')?.ydoc.getText('t').length === 1_600_000 &&
      srv.server.registry.peek('yws')?.ydoc.getText('t').length === 1_600_000, { timeoutMs: 30_000, message: 'both writers\' updates applied' })
    await waitFor(() => native.frames.some(f => f.kind === FRAME_KINDS.ACK && f.ranges.some(r => r.to === 4)), { message: 'the last update acked' })
    const seen = await stats.stop()
    const keepalives = received.slice(before).filter(m => m.length === 3 && m[0] === 1 && m[1] === 1 && m[2] === 0).length
    console.log(`held back: server paused a socket: ${seen.pausedSeen}; the y-websocket writer got ${keepalives} empty awareness updates while slowed`)
    expect(seen.pausedSeen).toBe(true)
    expect(native.closeCode).toBeNull()
    expect(ywsClose).toBeNull()
    expect(keepalives).toBeGreaterThan(0)
  })

  it('a native client the server reads slowly is not taken for a slow reader while its PONGs wait behind what it sent', { timeout: 60_000 }, async () => {
    // chunked sends wait for a PONG after each 64 KiB window; a reader silent for 300 ms is slow.
    // The client below has queued about 4 s of messages (50 a second) before each PONG.
    const srv = await startServer({
      chunkBytes: 16 * 1024, chunkWindowBytes: 64 * 1024, slowReaderStallMs: 300,
      rateLimitMessagesPerSecond: 50, rateLimitMessagesBurst: 10,
    })
    cleanups.push(() => srv.close())
    const writer = client(srv.url).open('big')
    await writer.whenSynced()
    writer.doc.getText('t').insert(0, 'b'.repeat(1024 * 1024))
    await writer.whenSaved()

    const raw = await RawNativeSocket.connect(srv.url)
    cleanups.push(() => raw.ws.terminate())
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'big', token: '', stateVector: new Uint8Array() })
    for (let i = 0; i < 200; i++) raw.sendFrame({ kind: FRAME_KINDS.QUERY_AWARENESS, document: 'big' })
    const { ChunkAssembler, decodeFrame } = await import('@concord/protocol')
    const assembler = new ChunkAssembler({ maxMessageBytes: 8 * 1024 * 1024 })
    let step2: Uint8Array | null = null
    let seen = 0
    await waitFor(() => {
      for (const f of raw.frames.slice(seen)) if (f.kind === FRAME_KINDS.CHUNK) step2 = assembler.push(f) ?? step2
      seen = raw.frames.length
      return step2 !== null || raw.closeCode !== null
    }, { timeoutMs: 30_000, message: 'the chunked initial sync' })
    console.log(`slowly read client: ${raw.frames.filter(f => f.kind === FRAME_KINDS.PING).length} windows, closed: ${raw.closeCode} ${raw.closeReason}`)
    expect(raw.closeCode).toBeNull()
    const frame = decodeFrame(step2!) as { kind: number; update: Uint8Array }
    expect(frame.kind).toBe(FRAME_KINDS.SYNC_STEP2)
    const d = new Y.Doc()
    Y.applyUpdate(d, frame.update)
    expect(d.getText('t').length).toBe(1024 * 1024)
  })
})
