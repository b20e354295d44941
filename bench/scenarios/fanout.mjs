// Scenario "fanout": R rooms x C clients; every client inserts a small
// timestamped entry into the room's Y.Text `rate` times per second for D
// seconds (after W seconds of warm-up, the same sending, whose receipts are reported apart); every
// other client of the room records receive time - send time.
import { randomBytes } from 'node:crypto'
import { WorkerHandle, terminateAll } from '../lib/workers.mjs'
import { startMeter, cpuRows } from '../lib/meter.mjs'
import { percentile, ms1, sortedConcat } from '../lib/stats.mjs'
import { now } from '../lib/clients.mjs'

const workerFile = new URL('./fanout-worker.mjs', import.meta.url)

/**
 * Clients per room: `clients` each, but at most `maxClients` (0: no cap) in all, the last rooms
 * getting one fewer (never below one).
 */
export function roomSizes (rooms, clients, maxClients = 0) {
  const sizes = new Array(rooms).fill(clients)
  let excess = maxClients > 0 ? rooms * clients - maxClients : 0
  // one client fewer per room from the last room back, again while some remain
  for (let cut = true; excess > 0 && cut;) {
    cut = false
    for (let r = rooms - 1; excess > 0 && r >= 0; r--) {
      if (sizes[r] === 1) continue
      sizes[r]--
      excess--
      cut = true
    }
  }
  if (excess > 0) throw new Error(`--max-clients ${maxClients} is fewer than one client per room (${rooms} rooms)`)
  return sizes
}

/** A fan-out scenario; `paramsOf(opts)` gives { rooms, clients, rate, duration } and optionally maxClients and warmup (s). */
export function fanoutScenario (paramsOf, name = 'fan-out latency') {
  return {
    describe (opts) {
      const p = paramsOf(opts)
      const total = roomSizes(p.rooms, p.clients, p.maxClients).reduce((n, c) => n + c, 0)
      const clients = total < p.rooms * p.clients ? `${p.clients} clients (${total.toLocaleString('en-US')} in all)` : `${p.clients} clients`
      return `${name} (${p.rooms} rooms × ${clients}, ${p.rate}/s each, ${p.duration} s${p.warmup ? ` after ${p.warmup} s of warm-up` : ''})`
    },
    run: (ctx) => run({ ...ctx, opts: { ...ctx.opts, ...paramsOf(ctx.opts) } })
  }
}

/** The server's RSS in KiB (summed over nodes), or null where it cannot be read (an external server without a pid). */
export function safeRss (server) {
  try { return server.rssKB?.() ?? null } catch { return null }
}

async function run ({ server, baseUrl, baseUrls, protocol, opts, log, progress }) {
  const tag = randomBytes(3).toString('hex')
  const rooms = Array.from({ length: opts.rooms }, (_, r) => `bench-fanout-${tag}-${r}`)
  const sizes = roomSizes(opts.rooms, opts.clients, opts.maxClients)
  const totalClients = sizes.reduce((n, c) => n + c, 0)
  const nWorkers = Math.max(1, Math.min(opts.workers, rooms.length))
  // whole rooms per worker, round robin
  const parts = Array.from({ length: nWorkers }, (_, w) => rooms.filter((_, r) => r % nWorkers === w))
  const partSizes = Array.from({ length: nWorkers }, (_, w) => sizes.filter((_, r) => r % nWorkers === w))
  const handles = parts.map((part, w) => new WorkerHandle(workerFile, {
    baseUrls: baseUrls ?? [baseUrl],
    protocol,
    rooms: part,
    roomClients: partSizes[w],
    ratePerSec: opts.rate,
    warmupMs: (opts.warmup ?? 0) * 1000,
    durationMs: opts.duration * 1000,
    drainMs: opts.drain * 1000,
    connectTimeoutMs: 30000,
    connectConcurrency: 50
  }, `fanout worker ${w}`))
  try {
    const connectTimeout = 60000 + totalClients * 20
    await Promise.all(handles.map(h => h.next('ready', connectTimeout)))
    const warmup = opts.warmup ?? 0
    const seconds = warmup + opts.duration
    log(`  fanout: ${totalClients} clients connected and synced in ${nWorkers} worker(s); sending for ${warmup ? `${warmup} s of warm-up, then ` : ''}${opts.duration} s`)
    const stop = startMeter(server)
    const startAt = now() + 300
    for (const h of handles) h.post({ type: 'go', startAt })
    const timeoutMs = (seconds + opts.drain + 30) * 1000
    const bar = progress?.('  sending', Math.round(seconds))
    const ticker = bar && setInterval(() => bar.set(Math.min(Math.round(seconds), Math.round((now() - startAt) / 1000))), 1000)
    const results = await Promise.all(handles.map(h => h.next('done', timeoutMs))).finally(() => { if (ticker) clearInterval(ticker) })
    bar?.done()
    const m = stop()
    const rssKB = safeRss(server)
    for (const h of handles) h.post({ type: 'close' })
    await Promise.all(handles.map(h => h.next('closed', 10000))).catch(() => {})

    const all = sortedConcat(results.map(r => r.latencies))
    const warm = sortedConcat(results.map(r => r.warmLatencies))
    const whole = sortedConcat([all, warm])
    const sum = (k) => results.reduce((n, r) => n + r[k], 0)
    const expected = sum('expected')
    const received = sum('received')
    const closed = sum('closedByServer')
    return {
      latencies: all,
      headline: percentile(all, 99),
      rows: [
        ['updates sent', sum('sent'), 0],
        ...(warmup ? [[`of which in the warm-up (first ${warmup} s)`, sum('warmSent'), 0]] : []),
        ['clients', totalClients, 0],
        ['expected receipts', expected, 0],
        ['lost updates (expected − received)', expected - received, 0],
        ['latency p50 (ms)', percentile(all, 50), 1],
        ['latency p99 (ms)', percentile(all, 99), 1],
        ['latency max (ms)', all.length ? all[all.length - 1] : NaN, 1],
        ...(warmup
          ? [[`warm-up (first ${warmup} s): p50 / p99 (ms)`, `${ms1(percentile(warm, 50))} / ${ms1(percentile(warm, 99))}`],
              ['whole run, warm-up included: p50 / p99 (ms)', `${ms1(percentile(whole, 50))} / ${ms1(percentile(whole, 99))}`]]
          : []),
        ['load-generator event-loop delay p99, worst worker (ms)', Math.max(...results.map(r => r.loopP99Ms)), 1],
        ...(closed ? [['sockets closed during the run', closed, 0]] : []),
        ...cpuRows(m),
        ...(rssKB ? [['server RSS with every client connected (MiB)', rssKB / 1024, 0]] : [])
      ]
    }
  } finally {
    await terminateAll(handles)
  }
}
