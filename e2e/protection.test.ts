import { describe, it, expect, afterEach } from 'vitest'
import { setPriority } from 'node:os'
import { pino } from 'pino'
import { FRAME_KINDS, encodeFrame } from '@concord/protocol'
import type { ConcordClient } from '@concord/client'
import { connectClient, RawNativeSocket, stalledNativeReader, startServer, waitFor, type RunningServer } from './helpers.js'
import { childClient, FIXTURES, measureTyping, memoryServerProcess, percentile } from './latency-helpers.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

function client(url: string): ConcordClient {
  const c = connectClient(url)
  cleanups.push(() => c.close())
  return c
}

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<RunningServer> {
  const s = await startServer(options)
  cleanups.push(() => s.close())
  return s
}

describe('one noisy or hostile session does not hurt the others', () => {
  // Several busy processes share two cores; now and then an attempt lands a scheduling hiccup.
  // A retry repeats the whole scenario (each attempt prints its figures).
  it('a flood of 10,000 messages a second from one session is rate limited, then cut off; the room keeps p99 under 50 ms', { timeout: 60_000, retry: 2 }, async () => {
    const srv = await memoryServerProcess([], cleanups)
    const typist = client(srv.url).open('room')
    const watcher = client(srv.url).open('room')
    await Promise.all([typist.whenSynced(), watcher.whenSynced()])
    // the flooder: a bare socket with write access, sending real updates, in a process of its own
    // (another machine; low priority so that its own sending does not pose as server delay here)
    const flooder = childClient(FIXTURES.flooder, [srv.url, 'room', '10000', '15000'], cleanups)
    setPriority(flooder.pid, 19)
    await flooder.next('opened')
    const typing = measureTyping(typist, watcher)
    await new Promise(r => setTimeout(r, 300))
    flooder.send('go')
    const done = await flooder.next('done', 30_000) as unknown as { sent: number; sendMs: number; acked: number; refusals: number; closeCode: number; closeReason: string }
    await typing.stop()
    const p99 = percentile(typing.latencies, 0.99)
    const rate = done.sent / done.sendMs * 1000
    console.log(`flood: ${done.sent} frames in ${done.sendMs} ms (${Math.round(rate)}/s); ${done.acked} applied, ${done.refusals} refusal reports, ` +
      `closed ${done.closeCode} ${done.closeReason}; room latency p50 ${percentile(typing.latencies, 0.5)} p99 ${p99} max ${Math.max(...typing.latencies)} ms over ${typing.latencies.length} keystrokes`)
    expect(rate).toBeGreaterThan(9_000)
    expect(done.refusals).toBeGreaterThan(10)
    expect({ code: done.closeCode, reason: done.closeReason }).toEqual({ code: 4529, reason: 'CONCORD_ERR_LIMIT_RATE' })
    // what got through was at most the burst plus the sustained rate
    expect(done.acked).toBeLessThan(5_000 + 1_000 * (done.sendMs / 1000 + 1))
    expect(typing.latencies.length).toBeGreaterThan(100)
    expect(p99).toBeLessThan(50)
    // refused updates left gaps, so later accepted ones wait for them; everyone holds the same document
    await waitFor(() => watcher.doc.getText('flood').toString() === typist.doc.getText('flood').toString() && watcher.doc.getText('flood').length >= 5_000)
  })

  it('a reader that stops reading stays within the memory bound and is closed with 1013, while its room keeps real-time latency', async () => {
    const maxBufferedBytes = 512 * 1024
    const logs: { code?: string }[] = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as { code?: string }) } })
    const srv = await server({ maxBufferedBytes, backpressureBytes: 64 * 1024, slowReaderStallMs: 2_000, logger })
    const writer = client(srv.url).open('room')
    const typist = client(srv.url).open('room')
    const watcher = client(srv.url).open('room')
    await Promise.all([writer.whenSynced(), typist.whenSynced(), watcher.whenSynced()])
    const slow = await stalledNativeReader(srv.url, [encodeFrame({ kind: FRAME_KINDS.OPEN, document: 'room', token: '', stateVector: new Uint8Array() })])
    cleanups.push(() => slow.destroy())
    await waitFor(async () => (await stats(srv)).connections === 4)
    // the stalled socket reads nothing, not even its close: the server's count tells when it is gone
    let slowClosed = false

    const typing = measureTyping(typist, watcher)
    // a heavy writer: 32 KiB every 10 ms, enough to fill the slow reader's kernel buffers and then some
    let maxPending = 0
    const started = Date.now()
    let written = 0
    while (!slowClosed && Date.now() - started < 30_000) {
      writer.doc.getText('bulk').insert(0, 'b'.repeat(32 * 1024))
      written += 32 * 1024
      const now = await stats(srv)
      maxPending = Math.max(maxPending, now.maxPendingBytes)
      slowClosed = now.connections === 3
      await new Promise(r => setTimeout(r, 10))
    }
    await typing.stop()
    const closedAfter = Date.now() - started
    const p99 = percentile(typing.latencies, 0.99)
    const log = logs.find(l => l.code === 'CONCORD_ERR_LIMIT_SLOW_READER')
    console.log(`slow reader: closed after ${closedAfter} ms and ${(written / 1e6).toFixed(1)} MB written; ` +
      `most bytes waiting for one socket ${maxPending}; room latency p99 ${p99} ms over ${typing.latencies.length} keystrokes`)
    // it cannot read the close frame (1013, CONCORD_ERR_LIMIT_SLOW_READER), so the server logs why and cuts it
    expect(slowClosed).toBe(true)
    expect(log).toBeDefined()
    // the server never held more for the stalled socket (queued plus held back) than its bound, plus one update
    expect(maxPending).toBeLessThanOrEqual(maxBufferedBytes + 64 * 1024)
    expect(maxPending).toBeGreaterThan(64 * 1024)
    expect(p99).toBeLessThan(50)
    await waitFor(() => watcher.doc.getText('bulk').length === written)
  }, 60_000)

  it('an update that would grow a document past its maximum size is refused and not applied', async () => {
    const srv = await server({ maxDocumentBytes: 100_000 })
    const h = client(srv.url).open('capped')
    await h.whenSynced()
    h.doc.getText('t').insert(0, 'small ')
    await h.whenSaved()
    const errors: { code: string; seq: number }[] = []
    h.on('error', e => errors.push(e))
    h.doc.getText('t').insert(0, 'x'.repeat(150_000))
    await waitFor(() => errors.length > 0)
    expect(errors[0]).toMatchObject({ code: 'CONCORD_ERR_LIMIT_DOCUMENT_SIZE' })
    expect(srv.server.registry.peek('capped')!.ydoc.getText('t').toString()).toBe('small ')
    // a refusal ends the wait for that update: saved again, with the refused text only in the local copy
    await h.whenSaved()
  })

  it('too many sockets from one address: the extra one is closed with 1013 and a code; closing one makes room', async () => {
    const srv = await server({ maxConnectionsPerIp: 3 })
    const sockets = await Promise.all([0, 1, 2].map(() => RawNativeSocket.connect(srv.url)))
    for (const s of sockets) cleanups.push(() => s.close())
    const extra = new RawNativeSocket(srv.url)
    expect(await extra.closed).toEqual({ code: 1013, reason: 'CONCORD_ERR_LIMIT_CONNECTIONS_PER_IP' })
    sockets[0]!.close()
    await sockets[0]!.closed
    await waitFor(async () => (await stats(srv)).connections === 2)
    const again = await RawNativeSocket.connect(srv.url)
    cleanups.push(() => again.close())
    expect(again.closeCode).toBeNull()
  })
})

describe('behind a proxy', () => {
  it('with --trust-proxy 1 the per-address limit counts the address the proxy appended to X-Forwarded-For, never what the client wrote before it', async () => {
    const srv = await server({ maxConnectionsPerIp: 1, trustProxyHops: 1 })
    const via = (chain: string): Promise<{ code: number; reason: string } | null> => {
      const s = new RawNativeSocket(srv.url, { 'x-forwarded-for': chain })
      cleanups.push(() => s.close())
      // open and still open a moment later, or closed by the server
      return Promise.race([s.closed, s.opened.then(() => new Promise<{ code: number; reason: string } | null>(resolve => setTimeout(() => resolve(s.closeCode === null ? null : { code: s.closeCode, reason: s.closeReason }), 300)))])
    }
    // two clients behind the same proxy (the socket peer is 127.0.0.1 for both): each has its own budget
    expect(await via('203.0.113.7')).toBeNull()
    expect(await via('203.0.113.8')).toBeNull()
    // a third from the first address is refused, whatever it claims further left
    expect(await via('10.9.9.9, 203.0.113.7')).toEqual({ code: 1013, reason: 'CONCORD_ERR_LIMIT_CONNECTIONS_PER_IP' })
    expect(await via('203.0.113.7')).toEqual({ code: 1013, reason: 'CONCORD_ERR_LIMIT_CONNECTIONS_PER_IP' })
  })

  it('without --trust-proxy, X-Forwarded-For is ignored: the socket peer is the address', async () => {
    const srv = await server({ maxConnectionsPerIp: 1 })
    const first = await RawNativeSocket.connect(srv.url, true, { 'x-forwarded-for': '203.0.113.7' })
    cleanups.push(() => first.close())
    const second = new RawNativeSocket(srv.url, { 'x-forwarded-for': '203.0.113.8' })
    cleanups.push(() => second.close())
    expect(await second.closed).toEqual({ code: 1013, reason: 'CONCORD_ERR_LIMIT_CONNECTIONS_PER_IP' })
  })
})

async function stats(srv: RunningServer): Promise<{ connections: number; maxPendingBytes: number }> {
  return (await fetch(`http://127.0.0.1:${srv.port}/`)).json() as Promise<{ connections: number; maxPendingBytes: number }>
}
