import { describe, it, expect, vi, afterEach } from 'vitest'
import { createMemoryStorage } from '@concord/server'
import { createClient, type WebSocketConstructor, type WebSocketLike } from '@concord/client'
import { connectClient, startServer, waitFor, cleanupAfterEach } from './helpers.js'

const live = cleanupAfterEach()

describe('status a client can trust', () => {
  it('saved turns true only after the durable ack: with slow storage the handle shows unsaved until the append completed', async () => {
    const storage = createMemoryStorage({ commitDelayMs: 800 })
    live.server = await startServer({ storage })
    const client = connectClient(live.server.url)
    live.clients.push(client)
    const h = client.open('slow-save')
    await h.whenSynced()
    expect(h.saved).toBe(true)
    const events: string[] = []
    let storedWhenSaved = -1
    h.on('unsaved', () => events.push('unsaved'))
    h.on('saved', () => {
      events.push('saved')
      void storage.load('slow-save').then(l => { storedWhenSaved = l.updates.length })
    })
    h.doc.getText('t').insert(0, 'careful')
    expect(h.saved).toBe(false)
    expect(events).toEqual(['unsaved'])
    // applied by the server (well inside the 800 ms commit delay), but not durable yet
    await waitFor(() => live.server!.server.registry.peek('slow-save')?.ydoc.getText('t').toString() === 'careful', { message: 'the edit applied by the server' })
    expect(live.server.server.registry.peek('slow-save')?.ydoc.getText('t').toString()).toBe('careful')
    expect(h.saved).toBe(false)
    await waitFor(() => h.saved, { message: 'saved after the commit' })
    expect(events).toEqual(['unsaved', 'saved'])
    await waitFor(() => storedWhenSaved >= 0)
    expect(storedWhenSaved).toBe(1)
  })

  it('offline is reported after offlineAfterMs without a connection, not on a blip, and online again after reconnecting', async () => {
    live.server = await startServer()
    const { port } = live.server
    const client = connectClient(live.server.url, { offlineAfterMs: 1_000, reconnect: { minDelayMs: 20, maxDelayMs: 100 } })
    live.clients.push(client)
    const h = client.open('net')
    await h.whenSynced()
    const events: string[] = []
    h.on('offline', () => events.push('offline'))
    h.on('online', () => events.push('online'))
    // a blip: the socket drops and comes back at once
    client.reconnect()
    await waitFor(() => h.status === 'synced' && client.status === 'connected')
    // kept on purpose: proves no 'offline' event follows a blip (half of offlineAfterMs later)
    await new Promise(r => setTimeout(r, 500))
    expect(events).toEqual([])
    // the server goes away for longer
    await live.server.close()
    live.server = null
    // kept on purpose: proves the handle is not offline before offlineAfterMs has passed
    await new Promise(r => setTimeout(r, 200))
    expect(h.offline).toBe(false)
    await waitFor(() => h.offline, { message: 'offline after 1 s' })
    h.doc.getText('t').insert(0, 'typed while offline')
    expect(h.saved).toBe(false)
    // a new server on the same port (the client knows only that URL)
    const { createServer } = await import('@concord/server')
    const again = createServer({ auth: 'none' })
    await again.listen(port, '127.0.0.1')
    try {
      await waitFor(() => !h.offline && h.status === 'synced' && h.saved, { message: 'online, synced and saved again' })
      expect(events).toEqual(['offline', 'online'])
      expect(again.registry.peek('net')?.ydoc.getText('t').toString()).toBe('typed while offline')
    } finally {
      client.close()
      await again.close()
    }
  })
})

describe('failover across urls', () => {
  it('moves to the next server when one is unreachable or goes away, and keeps editing', async () => {
    const { createServer: create } = await import('@concord/server')
    const first = create({ auth: 'none' })
    const second = create({ auth: 'none' })
    const a = await first.listen(0, '127.0.0.1')
    const b = await second.listen(0, '127.0.0.1')
    await first.close() // the first url is dead from the start
    const client = connectClient('unused', { urls: [a.url, b.url], reconnect: { minDelayMs: 10, maxDelayMs: 50 } })
    try {
      const h = client.open('failover')
      await h.whenSynced()
      expect(client.url).toBe(b.url)
      h.doc.getText('t').insert(0, 'served by the second node')
      await h.whenSaved()
      expect(second.registry.peek('failover')?.ydoc.getText('t').toString()).toBe('served by the second node')
    } finally {
      client.close()
      await second.close()
    }
  })
})

/** A WebSocket that opens and is then closed by the "server" with a given code. */
function scriptedSocket(code: number, reason: string): WebSocketConstructor & { created: number[] } {
  const created: number[] = []
  class Scripted implements WebSocketLike {
    binaryType = 'arraybuffer'
    readyState = 0
    protocol = 'concord'
    onopen: ((ev: unknown) => void) | null = null
    onclose: ((ev: { code: number; reason: string }) => void) | null = null
    onerror: ((ev: unknown) => void) | null = null
    onmessage: ((ev: { data: unknown }) => void) | null = null
    constructor() {
      created.push(Date.now())
      // the scripted close comes asynchronously, as a real socket's would (not a wait)
      setTimeout(() => {
        this.readyState = 3
        this.onclose?.({ code, reason })
      }, 1)
    }
    send(): void {}
    close(): void {}
  }
  return Object.assign(Scripted as unknown as WebSocketConstructor, { created })
}

describe('reconnect policy by close code', () => {
  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })

  it('a permanent close (4403) stops reconnecting and surfaces the code', async () => {
    vi.useFakeTimers()
    const WS = scriptedSocket(4403, 'CONCORD_ERR_AUTH_FORBIDDEN')
    const errors: { code: string; closeCode?: number }[] = []
    const client = createClient({ url: 'ws://unused', WebSocket: WS })
    client.on('error', e => errors.push(e))
    await vi.advanceTimersByTimeAsync(60_000)
    expect(WS.created).toHaveLength(1)
    expect(client.status).toBe('failed')
    expect(errors).toEqual([expect.objectContaining({ code: 'CONCORD_ERR_AUTH_FORBIDDEN', closeCode: 4403 })])
    client.close()
  })

  for (const [code, reason] of [[1013, 'CONCORD_ERR_LIMIT_SLOW_READER'], [1001, 'CONCORD_ERR_SERVER_SHUTTING_DOWN']] as const) {
    it(`a transient close (${code}) retries with growing, jittered, capped delays`, async () => {
      vi.useFakeTimers()
      // the top of the jitter range, so each delay shows its cap
      vi.spyOn(Math, 'random').mockReturnValue(0.999)
      const WS = scriptedSocket(code, reason)
      const client = createClient({ url: 'ws://unused', WebSocket: WS, reconnect: { minDelayMs: 100, maxDelayMs: 3_000 } })
      await vi.advanceTimersByTimeAsync(30_000)
      client.close()
      const gaps = WS.created.slice(1).map((t, i) => t - WS.created[i]! - 1) // minus the 1 ms until the close
      expect(gaps.length).toBeGreaterThan(8)
      // 100, 200, 400, ... doubling up to the cap, never above it
      expect(gaps.slice(0, 5)).toEqual([99, 199, 399, 799, 1598])
      expect(Math.max(...gaps)).toBeLessThanOrEqual(3_000)
      expect(gaps.slice(-3).every(g => g >= 2_990)).toBe(true)
    })
  }

  it('jitter spreads the delays (full jitter: anywhere from 0 to the cap)', async () => {
    vi.useFakeTimers()
    const values = [0.1, 0.9, 0.5, 0.0, 0.7]
    let i = 0
    vi.spyOn(Math, 'random').mockImplementation(() => values[i++ % values.length]!)
    const WS = scriptedSocket(1013, 'x')
    const client = createClient({ url: 'ws://unused', WebSocket: WS, reconnect: { minDelayMs: 1_000, maxDelayMs: 100_000 } })
    await vi.advanceTimersByTimeAsync(40_000)
    client.close()
    const gaps = WS.created.slice(1).map((t, k) => t - WS.created[k]! - 1)
    // caps 1000, 2000, 4000, 8000, 16000 times the random values (a 0 ms timer fires after 1 ms in Node)
    expect(gaps.slice(0, 5)).toEqual([100, 1800, 2000, 1, 11200])
  })
})
