// Scenario "trace": replay a real editing trace through the server.
//
// A writer worker applies every txn of the trace to a local Y.Doc (Y.Text
// 'text', one Y transaction per txn) and records the update each txn emits
// (before the clock starts). An observer worker joins the same room. On "go"
// the writer sends every update as its own sync/update message, as fast as the
// socket takes them; the clock stops when the observer's replica contains the
// writer's last update (state-vector check), after which the observer's text
// is compared with the expected text.
import { randomBytes } from 'node:crypto'
import { WorkerHandle, terminateAll } from '../lib/workers.mjs'
import { startMeter, cpuRows } from '../lib/meter.mjs'

const workerFile = new URL('./trace-worker.mjs', import.meta.url)

export function describe (opts) {
  return opts.txns ? `trace replay (first ${opts.txns.toLocaleString('en-US')} txns)` : 'trace replay (all txns)'
}

export async function run ({ server, baseUrl, opts, log }) {
  const room = `bench-trace-${randomBytes(4).toString('hex')}`
  const url = `${baseUrl}/${room}`
  const common = { url, tracePath: opts.trace, txns: opts.txns, connectTimeoutMs: 15000 }
  const writer = new WorkerHandle(workerFile, { ...common, role: 'writer' }, 'trace writer')
  const observer = new WorkerHandle(workerFile, { ...common, role: 'observer' }, 'trace observer')
  try {
    const [w] = await Promise.all([writer.next('ready', 120000), observer.next('ready', 30000)])
    log(`  trace: ${w.updates.toLocaleString('en-US')} updates (${(w.updateBytes / 1024).toFixed(0)} KiB of Yjs updates) precomputed in ${(w.precomputeMs / 1000).toFixed(1)} s; replaying`)
    observer.post({ type: 'expect', writerClientId: w.writerClientId, finalClock: w.finalClock, expected: w.expected })
    await observer.next('armed', 10000)
    const stop = startMeter(server)
    writer.post({ type: 'go' })
    const timeoutMs = opts.timeout * 1000
    const [wd, od] = await Promise.all([writer.next('done', timeoutMs), observer.next('done', timeoutMs)])
    const m = stop()
    writer.post({ type: 'close' })
    observer.post({ type: 'close' })
    await Promise.all([writer.next('closed', 5000), observer.next('closed', 5000)]).catch(() => {})
    if (!od.ok) throw new Error(`observer text (${od.gotLength} chars) differs from the expected text (${w.expected.length} chars)`)
    const convergeS = (od.tDone - wd.t0) / 1000
    return {
      rows: [
        ['txns replayed', w.txns, 0],
        ['time to converge (s)', convergeS, 2],
        ['throughput (txns/s)', w.txns / convergeS, 0],
        ['writer send time (s)', (wd.tSent - wd.t0) / 1000, 2],
        ['observer: update messages received', od.updatesIn, 0],
        ['observer: Yjs apply time (s)', od.applyMs / 1000, 2],
        ['final text matches', 'yes', null],
        ...cpuRows(m)
      ]
    }
  } finally {
    await terminateAll([writer, observer])
  }
}
