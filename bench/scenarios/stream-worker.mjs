// Streaming worker for the trace-replay, throughput and cold-load scenarios.
//
// role 'writer': precomputes one Yjs update per txn (from an editing trace, or
//   `typing` single-character appends), connects, and on 'go' sends every
//   update as its own message, as fast as the socket takes them.
// role 'observer': holds `observers` clients in one room and reports, per
//   client, when its replica contains the writer's last update (state-vector
//   check) and whether its text equals the expected text. Every `sampleMs` it
//   samples how many of the writer's updates the first client holds (the
//   throughput-over-time chart).
// With `window` (trace-window): the writer keeps at most `window` updates in flight, waiting
//   until the observer holds them. The observer publishes its progress (characters inserted plus
//   characters deleted, 2·clock − length of its text) in a SharedArrayBuffer; the writer knows the
//   progress after each of its updates, so it also times each update from its send to the moment
//   the observer holds it.
import { workerData } from 'node:worker_threads'
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'
import { createClient, connectAll, now } from '../lib/clients.mjs'
import { workerInbox, send, runWorker } from '../lib/workers.mjs'

const { role, url, protocol, source, connectTimeoutMs, window: inFlight, progress: progressBuffer } = workerData
/** trace-window: the observer's progress (see above), written by the observer, read by the writer. */
const progress = progressBuffer ? new Int32Array(progressBuffer) : null
const inbox = workerInbox()

/** The txns to replay as [pos, del, ins] patch lists, and the text they produce. */
export function loadSource ({ tracePath, txns: limit, typing }) {
  if (typing) {
    const phrase = 'the quick brown fox jumps over the lazy dog. '
    const txns = []
    let expected = ''
    for (let i = 0; i < typing; i++) {
      const ch = phrase[i % phrase.length]
      txns.push({ patches: [[expected.length, 0, ch]] })
      expected += ch
    }
    return { txns, total: typing, expected }
  }
  const t = JSON.parse(gunzipSync(readFileSync(tracePath)).toString('utf8'))
  if (t.kind !== 'sequential') throw new Error(`${tracePath}: only sequential traces can be replayed by one writer`)
  const total = t.txns.length
  const txns = limit && limit < total ? t.txns.slice(0, limit) : t.txns
  let expected
  if (txns.length === total) {
    expected = t.endContent
  } else {
    expected = t.startContent
    for (const { patches } of txns) for (const [pos, del, ins] of patches) expected = expected.slice(0, pos) + ins + expected.slice(pos + del)
  }
  return { txns, total, expected, startContent: t.startContent }
}

async function writer () {
  const { txns, total, expected, startContent } = loadSource(source)
  // one Y transaction per txn, one update per txn, computed before the clock starts
  const src = new Y.Doc()
  const text = src.getText('text')
  const updates = []
  /** Progress (2·clock − length) once the observer holds update i. */
  const after = []
  src.on('update', (u) => updates.push(u))
  if (startContent) text.insert(0, startContent) // "" in every shipped trace
  const tPre = performance.now()
  for (const { patches } of txns) {
    src.transact(() => {
      for (const [pos, del, ins] of patches) {
        if (del) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      }
    })
    // (a txn that changes nothing makes no update)
    if (after.length < updates.length) after.push(2 * Y.getState(src.store, src.clientID) - text.length)
  }
  const precomputeMs = performance.now() - tPre
  if (text.toString() !== expected) throw new Error('local Y.Text replay does not match the plain-string replay')
  const finalClock = Y.getState(src.store, src.clientID)
  const updateBytes = updates.reduce((n, u) => n + u.length, 0)

  // The connection's own doc stays empty; received updates (echoes) are not applied.
  let acked = 0
  const client = createClient(url, { protocol, applyRemote: false, sendLocalUpdates: false, onAck: (ranges) => { for (const r of ranges) acked += r.to - r.from + 1 } })
  await client.connect({ timeoutMs: connectTimeoutMs })
  send({ type: 'ready', writerClientId: src.clientID, finalClock, expected, txns: txns.length, totalTxns: total, updates: updates.length, updateBytes, precomputeMs })

  await inbox.next('go')
  const t0 = now()
  let latencies = null
  if (inFlight) {
    // at most `inFlight` updates the observer does not hold yet; each timed from send to held
    const sentAt = new Float64Array(updates.length)
    latencies = new Float64Array(updates.length)
    let held = 0 // updates the observer is known to hold
    const seen = () => {
      const p = Atomics.load(progress, 0)
      const t = now()
      while (held < updates.length && held < sentAtCount && after[held] <= p) latencies[held] = t - sentAt[held++]
      return p
    }
    let sentAtCount = 0
    for (let i = 0; i < updates.length; i++) {
      while (i - held >= inFlight) {
        const p = seen()
        if (i - held < inFlight) break
        const wait = Atomics.waitAsync(progress, 0, p, 5000)
        if (wait.async) await wait.value
      }
      sentAt[i] = now()
      sentAtCount = i + 1
      if (!client.sendUpdate(updates[i])) throw new Error(`socket closed while sending update ${i}`)
    }
    while (held < updates.length) {
      const p = seen()
      if (held >= updates.length) break
      const wait = Atomics.waitAsync(progress, 0, p, 5000)
      if (wait.async && (await wait.value) === 'timed-out' && Atomics.load(progress, 0) === p) throw new Error(`the observer holds ${held} of ${updates.length} updates and stopped advancing`)
    }
  } else {
    for (let i = 0; i < updates.length; i++) {
      if (!client.sendUpdate(updates[i])) throw new Error(`socket closed while sending update ${i}`)
      if ((i & 255) === 255 && client.bufferedAmount > 4 * 1024 * 1024) await client.drain(1024 * 1024)
    }
  }
  const tSent = now()
  await client.drain(0)
  send({ type: 'done', t0, tSent, msgsIn: client.stats.msgsIn, latencies }, latencies ? [latencies.buffer] : [])
  // with acks (native protocol): report when every update is durable
  const waitAcks = await inbox.next('acks')
  const deadline = now() + waitAcks.timeoutMs
  while (protocol === 'native' && acked < updates.length && now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
  send({ type: 'acked', acked, tAcked: now() })
  await inbox.next('close')
  await client.close()
  send({ type: 'closed' })
}

async function observer () {
  const n = workerData.observers ?? 1
  const sampleMs = workerData.sampleMs ?? 100
  let target = null
  const tDone = new Array(n).fill(0)
  let remaining = n
  let resolveDone
  const whenDone = new Promise(resolve => { resolveDone = resolve })
  const clients = []
  for (let k = 0; k < n; k++) {
    const client = createClient(url, {
      protocol,
      sendLocalUpdates: false,
      // done when the replica holds the writer's last insert (state vector) and has the
      // expected length: a trace may end with deletions, which the state vector does not show
      onRemoteUpdate: () => {
        if (progress && k === 0) {
          Atomics.store(progress, 0, 2 * Y.getState(client.doc.store, target?.writerClientId ?? -1) - client.doc.getText('text').length)
          Atomics.notify(progress, 0)
        }
        if (target && !tDone[k] && Y.getState(client.doc.store, target.writerClientId) >= target.finalClock &&
          client.doc.getText('text').length === target.expected.length) {
          tDone[k] = now()
          if (--remaining === 0) resolveDone()
        }
      }
    })
    clients.push(client)
  }
  const errors = await connectAll(clients, { concurrency: 10, timeoutMs: connectTimeoutMs })
  if (errors.length) throw new Error(`${errors.length} observer(s) failed to connect: ${errors[0]}`)
  send({ type: 'ready' })
  target = await inbox.next('expect')
  const samples = []
  const first = clients[0]
  const timer = setInterval(() => samples.push([now(), Y.getState(first.doc.store, target.writerClientId)]), sampleMs)
  send({ type: 'armed' })
  await whenDone
  clearInterval(timer)
  samples.push([now(), Y.getState(first.doc.store, target.writerClientId)])
  const results = clients.map((c, k) => {
    const got = c.doc.getText('text').toString()
    return { tDone: tDone[k], ok: got === target.expected, gotLength: got.length, applyMs: c.applyMs, updatesIn: c.stats.updatesIn, bytesIn: c.stats.bytesIn }
  })
  send({ type: 'done', results, samples })
  await inbox.next('close')
  await Promise.all(clients.map(c => c.close()))
  send({ type: 'closed' })
}

if (role) runWorker(role === 'writer' ? writer : observer)
