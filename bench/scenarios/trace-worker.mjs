// Trace replay worker: role 'writer' or 'observer' (see trace.mjs).
import { workerData } from 'node:worker_threads'
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'
import { YClient, now } from '../lib/yclient.mjs'
import { workerInbox, send, runWorker } from '../lib/workers.mjs'

const { role, url, tracePath, txns: limit, connectTimeoutMs } = workerData
const inbox = workerInbox()

async function writer () {
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

  // Precompute the updates: one Y transaction per txn, one update per txn.
  // This local Yjs work is done before the measured interval.
  const src = new Y.Doc()
  const text = src.getText('text')
  const updates = []
  src.on('update', (u) => updates.push(u))
  if (t.startContent) text.insert(0, t.startContent) // "" in every shipped trace
  const tPre = performance.now()
  for (const { patches } of txns) {
    src.transact(() => {
      for (const [pos, del, ins] of patches) {
        if (del) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      }
    })
  }
  const precomputeMs = performance.now() - tPre
  if (text.toString() !== expected) throw new Error('local Y.Text replay does not match the plain-string replay')
  const finalClock = Y.getState(src.store, src.clientID)
  const updateBytes = updates.reduce((n, u) => n + u.length, 0)

  // The connection's own doc stays empty; received updates (e.g. echoes of our
  // own updates) are decoded but not applied.
  const client = new YClient(url, { applyRemote: false, sendLocalUpdates: false })
  await client.connect({ timeoutMs: connectTimeoutMs })
  send({
    type: 'ready',
    writerClientId: src.clientID,
    finalClock,
    expected,
    txns: txns.length,
    totalTxns: total,
    updates: updates.length,
    updateBytes,
    precomputeMs
  })

  await inbox.next('go')
  const t0 = now()
  for (let i = 0; i < updates.length; i++) {
    if (!client.sendUpdate(updates[i])) throw new Error(`socket closed while sending update ${i}`)
    if ((i & 255) === 255 && client.bufferedAmount > 4 * 1024 * 1024) await client.drain(1024 * 1024)
  }
  const tSent = now()
  await client.drain(0)
  const tFlushed = now()
  send({ type: 'done', t0, tSent, tFlushed, msgsIn: client.stats.msgsIn, otherMsgs: client.stats.otherMsgs })
  await inbox.next('close')
  await client.close()
  send({ type: 'closed' })
}

async function observer () {
  let target = null
  let tDone = 0
  let resolveDone
  const whenDone = new Promise(resolve => { resolveDone = resolve })
  const client = new YClient(url, {
    sendLocalUpdates: false,
    onRemoteUpdate: () => {
      if (target && !tDone && Y.getState(client.doc.store, target.writerClientId) >= target.finalClock) {
        tDone = now()
        resolveDone()
      }
    }
  })
  await client.connect({ timeoutMs: connectTimeoutMs })
  send({ type: 'ready' })
  target = await inbox.next('expect')
  send({ type: 'armed' })
  await whenDone
  const got = client.doc.getText('text').toString()
  const ok = got === target.expected
  send({
    type: 'done',
    tDone,
    ok,
    gotLength: got.length,
    applyMs: client.applyMs,
    updatesIn: client.stats.updatesIn,
    bytesIn: client.stats.bytesIn,
    otherMsgs: client.stats.otherMsgs
  })
  await inbox.next('close')
  await client.close()
  send({ type: 'closed' })
}

runWorker(role === 'writer' ? writer : observer)
