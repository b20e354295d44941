// Scenario "bigroom": one document with N editors (default 350), each typing about once a second
// and moving its cursor about five times a second, for D seconds. Reported: keystroke-to-receipt
// latency of edits (p50/p99) and of presence (p50/p95/p99) at every client, of what was sent after a
// warm-up of W seconds (the same editing; its latencies are reported apart), what was lost, whether
// the clients that keep a full document converged, and the load generator's own CPU and
// event-loop delay (a generator that falls behind would show up as latency that is not the server's).
import { randomBytes } from 'node:crypto'
import { WorkerHandle, terminateAll } from '../lib/workers.mjs'
import { startMeter, cpuRows } from '../lib/meter.mjs'
import { LatencyHistogram, ms1 } from '../lib/stats.mjs'
import { now } from '../lib/clients.mjs'
import { safeRss } from './fanout.mjs'

const workerFile = new URL('./bigroom-worker.mjs', import.meta.url)

export const bigroomScenario = {
  describe (opts) {
    return `big room (${opts.bigClients} editors in one document, typing ${opts.bigTyping}/s and moving the cursor ${opts.bigCursor}/s each, ${opts.bigDuration} s after ${opts.bigWarmup} s of warm-up)`
  },
  run
}

async function run ({ server, baseUrl, baseUrls, protocol, opts, log, progress }) {
  const room = `bench-bigroom-${randomBytes(3).toString('hex')}`
  const n = opts.bigClients
  const nWorkers = Math.max(1, Math.min(opts.workers, n))
  const per = Math.ceil(n / nWorkers)
  const handles = []
  // awareness clocks 1..clockSlots-1 per sender, and when each was sent (shared by all workers)
  const clockSlots = Math.ceil(opts.bigCursor * (opts.bigWarmup + opts.bigDuration)) + 2
  const sendTimes = new SharedArrayBuffer(n * clockSlots * 8)
  const finalClocks = new SharedArrayBuffer(n * 4)
  for (let w = 0; w < nWorkers; w++) {
    const first = w * per
    const count = Math.min(per, n - first)
    if (count <= 0) break
    handles.push(new WorkerHandle(workerFile, {
      baseUrls: baseUrls ?? [baseUrl],
      protocol,
      room,
      first,
      count,
      totalClients: n,
      typingRate: opts.bigTyping,
      cursorRate: opts.bigCursor,
      warmupMs: opts.bigWarmup * 1000,
      durationMs: opts.bigDuration * 1000,
      drainMs: opts.drain * 1000,
      // a few clients keep the whole document, to check that everyone converges
      fullDocs: Math.min(3, n),
      connectTimeoutMs: 60000,
      connectConcurrency: 25,
      sendTimes,
      finalClocks,
      clockSlots
    }, `bigroom worker ${w}`))
  }
  try {
    await Promise.all(handles.map(h => h.next('ready', 120000 + n * 100)))
    log(`  bigroom: ${n} editors connected in ${handles.length} worker(s); editing for ${opts.bigWarmup} s of warm-up, then ${opts.bigDuration} s measured`)
    const stop = startMeter(server)
    const startAt = now() + 500
    for (const h of handles) h.post({ type: 'go', startAt })
    const seconds = opts.bigWarmup + opts.bigDuration
    const bar = progress?.('  editing', Math.round(seconds))
    const ticker = bar && setInterval(() => bar.set(Math.min(Math.round(seconds), Math.round((now() - startAt) / 1000))), 1000)
    const timeoutMs = (seconds + 60) * 1000
    const sent = await Promise.all(handles.map(h => h.next('sent', timeoutMs))).finally(() => { if (ticker) clearInterval(ticker) })
    bar?.done()
    const totalSent = sent.reduce((s, m) => s + m.sent, 0)
    for (const h of handles) h.post({ type: 'expect', totalSent })
    const results = await Promise.all(handles.map(h => h.next('done', (opts.drain + 60) * 1000)))
    const m = stop()
    const rssKB = safeRss(server)
    for (const h of handles) h.post({ type: 'close' })
    await Promise.all(handles.map(h => h.next('closed', 10000))).catch(() => {})

    const merge = (k) => {
      const h = new LatencyHistogram()
      for (const r of results) h.merge(r[k].counts, r[k].n, r[k].sample)
      return h
    }
    const edits = merge('edit')
    const presence = merge('presence')
    const warmEdits = merge('warmEdit')
    const warmPresence = merge('warmPresence')
    // the whole run: warm-up and measured window together
    const allEdits = merge('edit')
    const allPresence = merge('presence')
    for (const r of results) {
      allEdits.merge(r.warmEdit.counts, r.warmEdit.n, r.warmEdit.sample)
      allPresence.merge(r.warmPresence.counts, r.warmPresence.n, r.warmPresence.sample)
    }
    const sum = (k) => results.reduce((s, r) => s + r[k], 0)
    const texts = results.flatMap(r => r.texts)
    const entriesIn = (t) => (t.match(/\d+\.\d+@[\d.]+;/g) ?? []).length
    const converged = texts.length > 0 && texts.every(t => t === texts[0]) && entriesIn(texts[0]) === totalSent
    return {
      // a sample of the edit latencies (every 4th) for the histogram chart
      latencies: Float64Array.from(edits.sample).sort(),
      headline: presence.percentile(95),
      rows: [
        ['edits sent', totalSent, 0],
        ['lost edits (expected − received)', sum('expectedEdits') - sum('editsReceived'), 0],
        ['edit latency p50 (ms)', edits.percentile(50), 1],
        ['edit latency p99 (ms)', edits.percentile(99), 1],
        ['presence changes sent', sum('presenceSent'), 0],
        ['presence receipts (of sent × other editors)', `${sum('presenceReceived').toLocaleString('en-US')} / ${sum('presenceExpected').toLocaleString('en-US')}`],
        ['presence states superseded before delivery (coalesced)', sum('presenceSuperseded'), 0],
        ['final cursors missing (of receivers × senders)', sum('finalsMissing'), 0],
        ['presence latency p50 (ms)', presence.percentile(50), 1],
        ['presence latency p95 (ms)', presence.percentile(95), 1],
        ['presence latency p99 (ms)', presence.percentile(99), 1],
        [`warm-up (first ${opts.bigWarmup} s): edit p99 / presence p95 (ms)`, `${ms1(warmEdits.percentile(99))} / ${ms1(warmPresence.percentile(95))}`],
        ['whole run, warm-up included: edit p99 / presence p95 (ms)', `${ms1(allEdits.percentile(99))} / ${ms1(allPresence.percentile(95))}`],
        ['full replicas converged (1 = yes)', converged ? 1 : 0, 0],
        ['sockets closed during the run', sum('closedByServer'), 0],
        ['load-generator event-loop delay p99, worst worker (ms)', Math.max(...results.map(r => r.loopP99Ms)), 1],
        ['load-generator event-loop delay max (ms)', Math.max(...results.map(r => r.loopMaxMs)), 1],
        ...cpuRows(m),
        ...(rssKB ? [['server RSS with every client connected (MiB)', rssKB / 1024, 0]] : [])
      ]
    }
  } finally {
    await terminateAll(handles)
  }
}
