// Big-room worker: holds a slice of the one room's clients (the room is too big for one thread).
// Every client types about `typingRate` times a second (an entry "<sender>.<seq>@<send time>;"
// appended to the room's Y.Text) and moves its cursor `cursorRate` times a second (an awareness
// state). Receivers read the timestamps of edits from the bytes they receive without applying
// anything, except the `fullDocs` clients, which keep a full Y.Doc to check convergence. Presence is
// read cheaper still: client i writes under Yjs client id BASE + i, and the time it sent awareness
// clock k is in a SharedArrayBuffer all workers see, so a receiver decodes only the client ids and
// clocks of an awareness update and skips its JSON. All threads share one clock
// (performance.timeOrigin + now()). Everything sent in the first `warmupMs` (both ends' code still
// being compiled, the room's first states arriving) is checked like the rest, and its latencies are
// kept apart: the headline percentiles are of what was sent after it.
import { workerData } from 'node:worker_threads'
import * as Y from 'yjs'
import { createClient, connectAll, now } from '../lib/clients.mjs'
import { workerInbox, send, runWorker, sleep } from '../lib/workers.mjs'
import { LatencyHistogram, loopDelayMonitor } from '../lib/stats.mjs'
import { eachEntry } from '../lib/entries.mjs'

const {
  baseUrls, protocol, room, first, count, totalClients, typingRate, cursorRate, warmupMs, durationMs, drainMs,
  fullDocs, connectTimeoutMs, connectConcurrency, sendTimes, finalClocks, clockSlots
} = workerData
/** When sender i sent awareness clock k: sentAt[i * clockSlots + k]. */
const sentAt = new Float64Array(sendTimes)
/** The awareness clock each sender ended with (0 until it has). */
const finalClock = new Int32Array(finalClocks)
export const BASE = 10_000_000
const inbox = workerInbox()

/** Calls visit(clientId, clock) for each entry of an awareness update, skipping the states' JSON. */
function eachAwarenessEntry (u, visit) {
  let pos = 0
  const varUint = () => {
    let n = 0
    let mult = 1
    for (;;) {
      if (pos >= u.length) throw new Error('awareness update ends inside a number')
      const b = u[pos++]
      n += (b & 0x7f) * mult
      if (b < 0x80) return n
      mult *= 128
    }
  }
  for (let count = varUint(); count > 0; count--) {
    const client = varUint()
    const clock = varUint()
    const json = varUint() // (read before adding: `pos += varUint()` would add to the old pos)
    pos += json
    visit(client, clock)
  }
}

async function main () {
  const editLatencies = new LatencyHistogram(4)
  const presenceLatencies = new LatencyHistogram(64)
  // what was sent during the warm-up
  const warmEdits = new LatencyHistogram(4)
  const warmPresence = new LatencyHistogram(64)
  let measuredFrom = Infinity
  let editsReceived = 0
  let presenceReceived = 0
  let presenceSuperseded = 0
  const entries = []
  for (let i = first; i < first + count; i++) {
    /** Per sender: the next seq not yet seen. */
    const lastEdit = new Int32Array(totalClients)
    const lastCursor = new Int32Array(totalClients)
    const full = i < fullDocs
    const doc = new Y.Doc()
    doc.clientID = BASE + i
    const client = createClient(`${baseUrls[i % baseUrls.length]}/${room}`, {
      protocol,
      doc,
      applyRemote: full,
      onRemoteUpdate: (update) => {
        const recv = client.lastRecv
        eachEntry(update, (sender, seq, sentAt) => {
          if (sender === i || sender >= totalClients || seq < lastEdit[sender]) return
          lastEdit[sender] = seq + 1
          editsReceived++
          if (sentAt < measuredFrom) warmEdits.add(recv - sentAt)
          else editLatencies.add(recv - sentAt)
        })
      },
      onAwareness: (update) => {
        const recv = client.lastRecv
        eachAwarenessEntry(update, (clientId, clock) => {
          const sender = clientId - BASE
          if (sender === i || sender < 0 || sender >= totalClients || clock >= clockSlots) return
          const last = lastCursor[sender]
          if (clock <= last) return
          lastCursor[sender] = clock
          presenceReceived++
          // a server that coalesces sends only the newest state of each client per flush
          if (last > 0 && clock > last + 1) presenceSuperseded += clock - last - 1
          const at = sentAt[sender * clockSlots + clock]
          if (at < measuredFrom) warmPresence.add(recv - at)
          else presenceLatencies.add(recv - at)
        })
      }
    })
    entries.push({ client, text: client.doc.getText('text'), i, sent: 0, moves: 0, clock: 0, lastCursor, lastEdit })
  }

  const errors = await connectAll(entries.map(e => e.client), { concurrency: connectConcurrency, timeoutMs: connectTimeoutMs })
  if (errors.length) throw new Error(`${errors.length} of ${entries.length} connections failed, first: ${errors[0]}`)
  send({ type: 'ready', clients: entries.length })

  const cursor = (e) => {
    if (e.clock + 1 >= clockSlots) return
    e.clock++
    e.moves++
    sentAt[e.i * clockSlots + e.clock] = now()
    e.client.sendAwareness({ user: { name: `editor ${e.i}`, color: '#3366cc' }, cursor: { anchor: e.moves, head: e.moves } }, e.clock)
  }

  const { startAt } = await inbox.next('go')
  const loop = loopDelayMonitor(5)
  loop.enable()
  measuredFrom = startAt + warmupMs
  const endAt = measuredFrom + durationMs
  await new Promise(resolve => {
    let active = entries.length * 2
    const every = (e, period, act) => {
      const phase = Math.random() * period // spread the sends: no synchronized bursts
      const step = (k) => {
        const due = startAt + phase + k * period
        if (due >= endAt) { if (--active === 0) resolve(); return }
        setTimeout(() => { act(); step(k + 1) }, Math.max(0, due - now()))
      }
      step(0)
    }
    for (const e of entries) {
      every(e, 1000 / typingRate, () => {
        e.text.insert(e.text.length, `${e.i}.${e.sent}@${now().toFixed(3)};`) // the doc's update handler sends it
        e.sent++
      })
      every(e, 1000 / cursorRate, () => cursor(e))
    }
  })
  loop.disable()
  // the last cursor position of everyone must reach everyone
  for (const e of entries) Atomics.store(finalClock, e.i, e.clock)
  send({ type: 'sent', sent: entries.reduce((n, e) => n + e.sent, 0) })
  const { totalSent } = await inbox.next('expect')
  // every entry of every other client, at every client of this worker
  const expectedEdits = entries.reduce((n, e) => n + totalSent - e.sent, 0)
  const finalsMissing = () => {
    let missing = 0
    for (const e of entries) {
      for (let s = 0; s < totalClients; s++) if (s !== e.i && e.lastCursor[s] < Atomics.load(finalClock, s)) missing++
    }
    return missing
  }
  const drainDeadline = now() + drainMs
  while ((editsReceived < expectedEdits || finalsMissing() > 0) && now() < drainDeadline) await sleep(20)

  const texts = entries.filter(e => e.i < fullDocs).map(e => e.text.toString())
  const pack = (h) => ({ counts: h.counts, n: h.n, sample: Float64Array.from(h.sample) })
  const edit = pack(editLatencies)
  const presence = pack(presenceLatencies)
  const warmEdit = pack(warmEdits)
  const warmPres = pack(warmPresence)
  send({
    type: 'done',
    expectedEdits,
    editsReceived,
    presenceSent: entries.reduce((n, e) => n + e.moves, 0),
    presenceExpected: entries.reduce((n, e) => n + e.moves * (totalClients - 1), 0),
    presenceReceived,
    presenceSuperseded,
    finalsMissing: finalsMissing(),
    closedByServer: entries.filter(e => e.client.closedByServer || e.client.ws.readyState !== 1).length,
    loopP99Ms: loop.p99Ms(),
    loopMaxMs: loop.maxMs(),
    texts,
    edit,
    presence,
    warmEdit,
    warmPresence: warmPres
  }, [edit, presence, warmEdit, warmPres].flatMap(h => [h.counts.buffer, h.sample.buffer]))
  await inbox.next('close')
  await Promise.all(entries.map(e => e.client.close()))
  send({ type: 'closed' })
}

runWorker(main)
