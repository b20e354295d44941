// Fan-out worker: holds whole rooms (all clients of each of its rooms), so a
// sender and its receivers share this thread's clock.
import { workerData } from 'node:worker_threads'
import { createClient, connectAll, now } from '../lib/clients.mjs'
import { workerInbox, send, runWorker, sleep } from '../lib/workers.mjs'
import { loopDelayMonitor } from '../lib/stats.mjs'

const { baseUrls, protocol, rooms, roomClients, ratePerSec, warmupMs = 0, durationMs, drainMs, connectTimeoutMs, connectConcurrency } = workerData
const inbox = workerInbox()
// one entry inserted per send: "<sender>.<seq>@<send time ms>;"
const ENTRY = /(\d+)\.(\d+)@([\d.]+);/g

async function main () {
  // receipts of what was sent in the first `warmupMs` (both ends' code still being compiled) are
  // kept apart from the measured window's
  const latencies = []
  const warmLatencies = []
  let measuredFrom = Infinity
  const entries = []
  const roomSent = new Array(rooms.length).fill(0)
  let warmSent = 0
  const roomReceived = new Array(rooms.length).fill(0)
  rooms.forEach((room, r) => {
    for (let i = 0; i < roomClients[r]; i++) {
      // Receivers do not apply what they receive: the timestamps are read from the
      // update bytes (the inserted text is in them verbatim), so the load generator's
      // Yjs work does not delay the receipts it measures. Each client's own inserts
      // still form a valid Yjs history (concurrent appends), which every server integrates.
      // Per sender, only entries with a higher seq than the last one seen count (a
      // server that echoed or repeated an entry would not be counted twice).
      const lastSeq = new Map()
      // with several server nodes, a room's clients are spread over them (client i on node i mod n)
      const client = createClient(`${baseUrls[i % baseUrls.length]}/${room}`, {
        protocol,
        applyRemote: false,
        onRemoteUpdate: (update) => {
          const recv = client.lastRecv
          const s = Buffer.from(update.buffer, update.byteOffset, update.byteLength).toString('latin1')
          for (const m of s.matchAll(ENTRY)) {
            const sender = Number(m[1])
            if (sender === i) continue
            const seq = Number(m[2])
            if (seq <= (lastSeq.get(sender) ?? -1)) continue
            lastSeq.set(sender, seq)
            roomReceived[r]++
            const sentAt = Number(m[3])
            ;(sentAt < measuredFrom ? warmLatencies : latencies).push(recv - sentAt)
          }
        }
      })
      const text = client.doc.getText('text')
      entries.push({ client, text, r, i, sent: 0 })
    }
  })

  const errors = await connectAll(entries.map(e => e.client), { concurrency: connectConcurrency, timeoutMs: connectTimeoutMs })
  if (errors.length) throw new Error(`${errors.length} of ${entries.length} connections failed, first: ${errors[0]}`)
  send({ type: 'ready', clients: entries.length })

  const { startAt } = await inbox.next('go')
  const period = 1000 / ratePerSec
  measuredFrom = startAt + warmupMs
  const endAt = measuredFrom + durationMs
  const loop = loopDelayMonitor(5)
  loop.enable()
  await new Promise(resolve => {
    let active = entries.length
    const schedule = (e, k) => {
      const due = startAt + e.phase + k * period
      if (due >= endAt) { if (--active === 0) resolve(); return }
      setTimeout(() => {
        const t = now()
        if (t < measuredFrom) warmSent++
        e.text.insert(e.text.length, `${e.i}.${e.sent}@${t.toFixed(3)};`) // the doc's update handler sends it
        e.sent++
        roomSent[e.r]++
        schedule(e, k + 1)
      }, Math.max(0, due - now()))
    }
    for (const e of entries) {
      e.phase = Math.random() * period // spread the sends, no synchronized bursts
      schedule(e, 0)
    }
  })
  const expected = () => roomSent.reduce((n, s, r) => n + s * (roomClients[r] - 1), 0)
  const received = () => roomReceived.reduce((n, x) => n + x, 0)
  const drainDeadline = now() + drainMs
  while (received() < expected() && now() < drainDeadline) await sleep(20)

  loop.disable()
  const lat = Float64Array.from(latencies)
  const warmLat = Float64Array.from(warmLatencies)
  const closedByServer = entries.filter(e => e.client.closedByServer || e.client.ws.readyState !== 1).length
  send({
    type: 'done',
    sent: roomSent.reduce((n, x) => n + x, 0),
    warmSent,
    sendDropped: entries.reduce((n, e) => n + e.client.stats.sendDropped, 0),
    expected: expected(),
    received: received(),
    closedByServer,
    otherMsgs: entries.reduce((n, e) => n + e.client.stats.otherMsgs, 0),
    latencies: lat,
    warmLatencies: warmLat,
    loopP99Ms: loop.p99Ms(),
    loopMaxMs: loop.maxMs()
  }, [lat.buffer, warmLat.buffer])
  await inbox.next('close')
  await Promise.all(entries.map(e => e.client.close()))
  send({ type: 'closed' })
}

runWorker(main)
