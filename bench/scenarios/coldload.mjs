// Scenario "coldload": how long the first client waits for a document that is
// only on disk. A writer streams a trace into a room (as in "trace"); the
// server is stopped (SIGTERM: it flushes and exits) and started again on the
// same data directory, and one client opens the document. Measured, for each
// of `coldloadRuns` restarts: from the start of the WebSocket handshake until
// the whole document has arrived (before the client applies it), and the
// client's apply time. Only for servers that persist documents.
import { percentile } from '../lib/stats.mjs'
import { createClient, now } from '../lib/clients.mjs'
import { stream } from './stream.mjs'
import { basename } from 'node:path'
import * as Y from 'yjs'

export function describe (opts) {
  const name = basename(opts.trace).replace(/\.json(\.gz)?$/, '')
  return `cold load of the ${name} document (${opts.txns ? `first ${opts.txns.toLocaleString('en-US')} txns` : 'all txns'}) after a restart`
}

export async function run (ctx) {
  const { opts, protocol, log, restart } = ctx
  if (!ctx.persistent) return { rows: [['cold load', 'n/a: keeps documents in memory only', null]] }
  if (!restart) throw new Error('needs to restart the server (not available with --url)')
  const { w, room } = await stream(ctx, { source: { tracePath: opts.trace, txns: opts.txns }, observers: 1, observerWorkers: 1, label: 'coldload' })
  const loads = []
  let bytes = 0
  let applyMs = 0
  for (let i = 0; i < opts.coldloadRuns; i++) {
    await restart()
    let tStep2 = 0
    const client = createClient(`${ctx.baseUrl}/${room}`, {
      protocol,
      sendLocalUpdates: false,
      // the receive time of the message that completes the document (taken before it is applied)
      onRemoteUpdate: (update, subType) => { if (subType === 1 && !tStep2) tStep2 = client.lastRecv }
    })
    const t0 = now()
    await client.connect({ timeoutMs: 60000 })
    loads.push(tStep2 - t0)
    bytes = client.stats.bytesIn
    applyMs = client.applyMs
    const text = client.doc.getText('text').toString()
    await client.close()
    if (text !== w.expected) throw new Error(`after restart ${i + 1} the document holds ${text.length} chars, expected ${w.expected.length}`)
    if (Y.getState(client.doc.store, w.writerClientId) < w.finalClock) throw new Error(`after restart ${i + 1} the document lacks updates`)
    log(`  coldload: restart ${i + 1}: document received in ${loads[i].toFixed(1)} ms`)
  }
  const sorted = Float64Array.from(loads).sort()
  return {
    headline: percentile(sorted, 50),
    rows: [
      ['txns in the document', w.txns, 0],
      ['restarts', loads.length, 0],
      ['document received, median (ms)', percentile(sorted, 50), 1],
      ['document received, max (ms)', sorted[sorted.length - 1], 1],
      ['bytes received by the client', bytes, 0],
      ['client apply time (ms)', applyMs, 1],
      ['text matches after every restart', 'yes', null]
    ]
  }
}
