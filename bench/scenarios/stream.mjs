// Scenarios "trace", "trace-blog" and "throughput": one writer streams
// precomputed Yjs updates into a room as fast as its socket takes them;
// observers in the same room apply what they receive. The clock runs from the
// first send until an observer's replica holds the writer's last update.
//
//   trace, trace-blog  a real editing trace (automerge-paper, seph-blog1), one
//                      update per txn, 1 observer; the observer's text must
//                      equal the trace's final text.
//   throughput         `typing` single-character appends, `listeners`
//                      observers spread over worker threads; reported per
//                      listener: updates received per second.
import { randomBytes } from 'node:crypto'
import { basename } from 'node:path'
import { WorkerHandle, terminateAll } from '../lib/workers.mjs'
import { startMeter, cpuRows } from '../lib/meter.mjs'
import { percentile } from '../lib/stats.mjs'

const workerFile = new URL('./stream-worker.mjs', import.meta.url)

/** Runs one writer and `observers` observers split over `observerWorkers` threads. */
export async function stream ({ server, baseUrl, protocol, opts, log, progress }, { source, observers, observerWorkers, label, window }) {
  const room = `bench-${label}-${randomBytes(4).toString('hex')}`
  const url = `${baseUrl}/${room}`
  // trace-window: the observer's progress, shared with the writer
  const shared = window ? { window, progress: new SharedArrayBuffer(4) } : {}
  const common = { url, protocol, source, connectTimeoutMs: 15000, ...shared }
  const writer = new WorkerHandle(workerFile, { ...common, role: 'writer' }, `${label} writer`)
  const nw = Math.max(1, Math.min(observerWorkers, observers))
  const obs = Array.from({ length: nw }, (_, w) => new WorkerHandle(workerFile, {
    ...common,
    role: 'observer',
    observers: Math.floor(observers / nw) + (w < observers % nw ? 1 : 0),
    sampleMs: 100
  }, `${label} observer ${w}`))
  const all = [writer, ...obs]
  try {
    const [w] = await Promise.all([writer.next('ready', 180000), ...obs.map(o => o.next('ready', 60000))])
    log(`  ${label}: ${w.updates.toLocaleString('en-US')} updates (${(w.updateBytes / 1024).toFixed(0)} KiB) precomputed in ${(w.precomputeMs / 1000).toFixed(1)} s; ${observers} observer(s); streaming`)
    for (const o of obs) o.post({ type: 'expect', writerClientId: w.writerClientId, finalClock: w.finalClock, expected: w.expected })
    await Promise.all(obs.map(o => o.next('armed', 10000)))
    const stop = startMeter(server)
    const bar = progress?.(`  ${label}`, 0)
    writer.post({ type: 'go' })
    const timeoutMs = opts.timeout * 1000
    const [wd, ...od] = await Promise.all([writer.next('done', timeoutMs), ...obs.map(o => o.next('done', timeoutMs))])
    const m = stop()
    bar?.done()
    writer.post({ type: 'acks', timeoutMs: 30000 })
    const acks = await writer.next('acked', 40000)
    for (const h of all) h.post({ type: 'close' })
    await Promise.all(all.map(h => h.next('closed', 10000))).catch(() => {})
    const results = od.flatMap(d => d.results)
    const bad = results.find(r => !r.ok)
    if (bad) throw new Error(`an observer's text (${bad.gotLength} chars) differs from the expected text (${w.expected.length} chars)`)
    // throughput over time from the first observer's samples: updates held per 100 ms window
    const samples = od[0].samples
    const timeline = []
    for (let i = 1; i < samples.length; i++) {
      const [t, clock] = samples[i]
      const [tp, cp] = samples[i - 1]
      if (t <= wd.t0) continue
      timeline.push([(t - wd.t0) / 1000, Math.max(0, clock - cp) / Math.max(1e-3, (t - tp) / 1000)])
    }
    // the writer's clock counts characters, not updates: scale to updates/s
    const scale = w.updates / Math.max(1, w.finalClock)
    for (const p of timeline) p[1] *= scale
    return { room, w, wd, acks, results, m, timeline }
  } finally {
    await terminateAll(all)
  }
}

function ackRows (protocol, acks, wd, n) {
  if (protocol !== 'native') return []
  return [['durable acks received', `${acks.acked.toLocaleString('en-US')} / ${n.toLocaleString('en-US')}`, null], ['time to last ack (s)', (acks.tAcked - wd.t0) / 1000, 2]]
}

/**
 * A trace-replay scenario over `pathOf(opts)`; with `windowOf(opts)`, the writer keeps at most
 * that many updates in flight (waiting until the observer holds them), which measures the time
 * from an update's arrival to its fan-out rather than how fast a socket is drained.
 */
export function traceScenario (pathOf, windowOf = null) {
  return {
    describe (opts) {
      const name = basename(pathOf(opts)).replace(/\.json(\.gz)?$/, '')
      const window = windowOf?.(opts)
      return `trace ${name} (${opts.txns ? `first ${opts.txns.toLocaleString('en-US')} txns` : 'all txns'}), writer → observer${window ? `, at most ${window} updates in flight` : ''}`
    },
    async run (ctx) {
      const { opts, protocol } = ctx
      const window = windowOf?.(opts) ?? null
      const { w, wd, acks, results, m, timeline } = await stream(ctx, {
        source: { tracePath: pathOf(opts), txns: opts.txns },
        observers: 1,
        observerWorkers: 1,
        label: window ? 'trace-window' : 'trace',
        window
      })
      const od = results[0]
      const convergeS = (od.tDone - wd.t0) / 1000
      const lat = wd.latencies ? Float64Array.from(wd.latencies).sort() : null
      return {
        headline: convergeS,
        timeline,
        ...(lat ? { latencies: lat } : {}),
        rows: [
          ['txns replayed', w.txns, 0],
          ...(lat ? [['update send → held by the observer, p50 (ms)', percentile(lat, 50), 2], ['update send → held by the observer, p99 (ms)', percentile(lat, 99), 2]] : []),
          ['time to converge (s)', convergeS, 2],
          ['throughput (txns/s)', w.txns / convergeS, 0],
          ['writer send time (s)', (wd.tSent - wd.t0) / 1000, 2],
          ['observer: update messages received', od.updatesIn, 0],
          ['observer: Yjs apply time (s)', od.applyMs / 1000, 2],
          ['final text matches', 'yes', null],
          ...ackRows(protocol, acks, wd, w.updates),
          ...cpuRows(m)
        ]
      }
    }
  }
}

export const throughput = {
  describe (opts) {
    return `throughput: 1 writer + ${opts.listeners} listeners, ${opts.typing.toLocaleString('en-US')} single-character updates`
  },
  async run (ctx) {
    const { opts, protocol } = ctx
    const { w, wd, acks, results, m, timeline } = await stream(ctx, {
      source: { typing: opts.typing },
      observers: opts.listeners,
      observerWorkers: opts.workers,
      label: 'throughput'
    })
    const rates = results.map(r => w.updates / ((r.tDone - wd.t0) / 1000)).sort((a, b) => a - b)
    const mean = rates.reduce((a, b) => a + b, 0) / rates.length
    const lastS = Math.max(...results.map(r => r.tDone - wd.t0)) / 1000
    return {
      headline: mean,
      timeline,
      rows: [
        ['updates sent', w.updates, 0],
        ['updates/s received per listener (mean)', mean, 0],
        ['updates/s received per listener (slowest)', rates[0], 0],
        ['time until the last listener has all (s)', lastS, 2],
        ['writer send time (s)', (wd.tSent - wd.t0) / 1000, 2],
        ['messages received per listener (mean)', results.reduce((n, r) => n + r.updatesIn, 0) / results.length, 0],
        ['final text matches at every listener', 'yes', null],
        ...ackRows(protocol, acks, wd, w.updates),
        ...cpuRows(m)
      ]
    }
  }
}
