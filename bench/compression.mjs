// permessage-deflate (`--compression-threshold`): what it saves and what it costs, on the two
// workloads where it could matter, against the same server with compression off.
//
//   initial sync   a document holding a whole editing trace (automerge-paper, seph-blog1) is opened
//                  by `--syncs` fresh clients, one after another: bytes each received, time until
//                  synced, server CPU
//   typing         `--typists` clients in one room each type one character `--rate` times a second
//                  for `--seconds`: bytes on the wire per client, server CPU, server RSS
//
// Each server is a `concord serve` process (SQLite, auth none); the clients are the benchmark's
// y-websocket clients with compression offered (as browsers and `ws` offer it). Bytes are counted
// on the TCP socket (after compression). Prints a markdown table.
//
//   npx tsc -b && node bench/compression.mjs [--thresholds 0,1024] [--syncs 20] [--typists 20] [--rate 5] [--seconds 10]
import { parseArgs } from 'node:util'
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { WebSocket } from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { startServer, freePort, CLK_TCK } from './lib/server-proc.mjs'

const { values } = parseArgs({
  options: {
    thresholds: { type: 'string' },
    syncs: { type: 'string' },
    typists: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' }
  }
})
const THRESHOLDS = (values.thresholds ?? '0,1024').split(',').map(Number)
const SYNCS = Number(values.syncs ?? 20)
const TYPISTS = Number(values.typists ?? 20)
const RATE = Number(values.rate ?? 5)
const SECONDS = Number(values.seconds ?? 10)
const repo = fileURLToPath(new URL('..', import.meta.url))
const TRACES = ['automerge-paper', 'seph-blog1']

/** The final document of a trace, as one Yjs update. */
function traceState (name) {
  const t = JSON.parse(gunzipSync(readFileSync(join(repo, '..', 'shared', 'traces', `${name}.json.gz`))))
  const doc = new Y.Doc()
  const text = doc.getText('text')
  for (const txn of t.txns) {
    doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        if (del) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      }
    })
  }
  return Y.encodeStateAsUpdate(doc)
}

const MSG_SYNC = 0
const STEP1 = 0
const STEP2 = 1
const UPDATE = 2

/** A y-websocket client that offers permessage-deflate; counts the bytes its TCP socket read and wrote. */
function connect (url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: true })
    ws.binaryType = 'arraybuffer'
    const c = { ws, synced: null, onUpdate: null }
    let syncedResolve
    c.synced = new Promise(resolve => { syncedResolve = resolve })
    ws.on('open', () => {
      const e = encoding.createEncoder()
      encoding.writeVarUint(e, MSG_SYNC)
      encoding.writeVarUint(e, STEP1)
      encoding.writeVarUint8Array(e, Y.encodeStateVector(new Y.Doc()))
      ws.send(encoding.toUint8Array(e))
      resolve(c)
    })
    c.messageBytes = 0
    ws.on('message', (data) => {
      c.messageBytes += data.byteLength
      const d = decoding.createDecoder(new Uint8Array(data))
      if (decoding.readVarUint(d) !== MSG_SYNC) return
      const kind = decoding.readVarUint(d)
      if (kind === STEP2) syncedResolve()
      else if (kind === UPDATE) c.onUpdate?.()
    })
    ws.on('error', reject)
  })
}
const bytesIn = (c) => c.ws._socket.bytesRead
const bytesOut = (c) => c.ws._socket.bytesWritten
const negotiated = (c) => c.ws.extensions.includes('permessage-deflate')

function updateMessage (update) {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MSG_SYNC)
  encoding.writeVarUint(e, UPDATE)
  encoding.writeVarUint8Array(e, update)
  return encoding.toUint8Array(e)
}

async function withServer (threshold, fn) {
  const data = mkdtempSync(join(tmpdir(), 'concord-compression-'))
  const port = await freePort()
  const server = await startServer({
    argv: ['node', 'packages/server/bin/concord.js', 'serve', '--port', String(port), '--host', '127.0.0.1', '--data', data, '--auth', 'none', '--log-level', 'warn',
      '--rate-limit-messages', '100000000', '--rate-limit-bytes', '100000000000', '--max-connections-per-ip', '1000000', '--compression-threshold', String(threshold)],
    port,
    cwd: repo,
    logFile: join(data, 'server.log')
  })
  try {
    return await fn(`ws://127.0.0.1:${port}`, server)
  } finally {
    await server.stop()
    rmSync(data, { recursive: true, force: true })
  }
}

const cpuS = (server, t0) => (server.cpuTicks() - t0) / CLK_TCK

async function initialSync (url, server, trace, state) {
  const room = `${url}/sync-${trace}`
  const writer = await connect(room)
  await writer.synced
  writer.ws.send(updateMessage(state))
  // the state is in the document once a fresh client gets all of it back
  for (let tries = 0; ; tries++) {
    const probe = await connect(room)
    await probe.synced
    const got = probe.messageBytes
    probe.ws.close()
    if (got >= state.length) break
    if (tries > 200) throw new Error(`the server never served the ${state.length}-byte state (got ${got})`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const cpu0 = server.cpuTicks()
  const t0 = performance.now()
  let bytes = 0
  let on = true
  for (let i = 0; i < SYNCS; i++) {
    const c = await connect(room)
    await c.synced
    bytes += bytesIn(c)
    on &&= negotiated(c)
    c.ws.close()
  }
  const ms = (performance.now() - t0) / SYNCS
  writer.ws.close()
  return { bytesPerSync: bytes / SYNCS, msPerSync: ms, serverCpuS: cpuS(server, cpu0), negotiated: on }
}

async function typing (url, server) {
  const room = `${url}/typing`
  const clients = []
  for (let i = 0; i < TYPISTS; i++) {
    const c = await connect(room)
    await c.synced
    c.doc = new Y.Doc()
    c.doc.on('update', (u) => c.ws.send(updateMessage(u)))
    c.received = 0
    c.onUpdate = () => { c.received++ }
    clients.push(c)
  }
  const in0 = clients.map(bytesIn)
  const out0 = clients.map(bytesOut)
  const cpu0 = server.cpuTicks()
  const end = performance.now() + SECONDS * 1000
  await Promise.all(clients.map(async (c, i) => {
    await new Promise(resolve => setTimeout(resolve, Math.random() * 1000 / RATE))
    while (performance.now() < end) {
      const t = c.doc.getText('t')
      t.insert(t.length, String.fromCharCode(97 + (i % 26)))
      await new Promise(resolve => setTimeout(resolve, 1000 / RATE))
    }
  }))
  await new Promise(resolve => setTimeout(resolve, 500))
  const cpu = cpuS(server, cpu0)
  const rssMB = server.rssKB() / 1024
  const inPer = clients.reduce((n, c, i) => n + bytesIn(c) - in0[i], 0) / clients.length
  const outPer = clients.reduce((n, c, i) => n + bytesOut(c) - out0[i], 0) / clients.length
  for (const c of clients) c.ws.close()
  return { bytesInPerClient: inPer, bytesOutPerClient: outPer, serverCpuS: cpu, rssMB }
}

const states = Object.fromEntries(TRACES.map(t => [t, traceState(t)]))
const rows = []
for (const threshold of THRESHOLDS) {
  await withServer(threshold, async (url, server) => {
    const label = threshold === 0 ? 'off' : `≥ ${threshold} B`
    for (const trace of TRACES) {
      const r = await initialSync(url, server, trace, states[trace])
      rows.push(`| initial sync, ${trace} (${(states[trace].length / 1024).toFixed(0)} KiB state), ${SYNCS} clients | ${label}${threshold > 0 && !r.negotiated ? ' (not negotiated!)' : ''} | ${(r.bytesPerSync / 1024).toFixed(1)} KiB received per client | ${r.msPerSync.toFixed(1)} ms per sync | ${(r.serverCpuS * 1000 / SYNCS).toFixed(1)} ms | |`)
    }
    const t = await typing(url, server)
    rows.push(`| typing, ${TYPISTS} clients × ${RATE}/s, ${SECONDS} s | ${label} | ${(t.bytesInPerClient / 1024).toFixed(1)} KiB in + ${(t.bytesOutPerClient / 1024).toFixed(1)} KiB out per client | | ${t.serverCpuS.toFixed(2)} s total | ${t.rssMB.toFixed(0)} MB |`)
  })
}
console.log('| workload | compression | bytes on the wire | time | server CPU | server RSS after |')
console.log('|---|---|---:|---:|---:|---:|')
for (const r of rows) console.log(r)
