// Smoke test of the benchmark clients against the three servers:
//
//   node bench/lib/clients.smoke.mjs
//
// Starts Concord (memory store, no auth), the y-websocket reference server and
// Hocuspocus (bench/servers/hocuspocus.mjs) as child processes on free ports of
// 127.0.0.1, and for each (server, protocol) pair that fits:
//   1. connects two clients A and B to one room (both sync);
//   2. A inserts text into doc.getText('text'); B must hold the same text;
//   3. A announces an awareness state; B must receive it (A's clientID);
//   4. native: A must get an ACK for its update (hocuspocus: a SyncStatus);
//   5. A inserts 2 MB at once (native: sent and relayed as CHUNK frames);
//      B must converge, and a third client C that joins afterwards must get
//      everything in its initial sync.
// Each step has 5 s (10 s for step 5). Prints one line per pair with PASS or
// FAIL and exits 1 if any failed. The children are stopped by their PIDs.
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { dirname, resolve } from 'node:path'
import * as decoding from 'lib0/decoding'
import { createClient } from './clients.mjs'

const HOST = '127.0.0.1'
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const STEP_MS = 5000

const SERVERS = {
  concord: (port) => ({
    args: ['packages/server/bin/concord.js', 'serve', '--port', String(port), '--host', HOST,
      '--store', 'memory', '--auth', 'none', '--log-level', 'warn'],
    env: {}
  }),
  reference: (port) => ({
    args: ['node_modules/@y/websocket-server/src/server.js'],
    env: { HOST, PORT: String(port) }
  }),
  hocuspocus: (port) => ({
    args: ['bench/servers/hocuspocus.mjs'],
    env: { HOST, PORT: String(port) }
  })
}

const PAIRS = [
  ['concord', 'y-websocket'],
  ['concord', 'native'],
  ['reference', 'y-websocket'],
  ['hocuspocus', 'hocuspocus']
]

/** @type {Map<number, import('node:child_process').ChildProcess>} */
const children = new Map()

function killChildren (signal = 'SIGKILL') {
  for (const [pid, child] of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(pid, signal) } catch {}
    }
  }
}
process.on('exit', () => killChildren('SIGKILL'))
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killChildren('SIGKILL'); process.exit(130) })
}

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function portOpen (port) {
  return new Promise(resolve => {
    const s = net.connect({ port, host: HOST })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

/** Spawns the server (no shell: the PID is the server's) and waits for its port. */
async function startServer (name) {
  const port = await freePort()
  const { args, env } = SERVERS[name](port)
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.set(child.pid, child)
  let log = ''
  const keep = (d) => { log = (log + d.toString()).slice(-4000) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const deadline = Date.now() + 20000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited early (code ${child.exitCode}, signal ${child.signalCode}):\n${log}`)
    if (await portOpen(port)) break
    if (Date.now() > deadline) throw new Error(`${name} did not listen on ${HOST}:${port} within 20 s:\n${log}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { name, port, pid: child.pid, child, log: () => log }
}

/** Stops a child by its PID: SIGTERM, then SIGKILL after 3 s. */
async function stopServer (srv) {
  const { child, pid } = srv
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  try { process.kill(pid, 'SIGTERM') } catch {}
  const t = await Promise.race([exited.then(() => true), new Promise(resolve => setTimeout(() => resolve(false), 3000))])
  if (!t) {
    try { process.kill(pid, 'SIGKILL') } catch {}
    await exited
  }
}

/** Resolves once `check()` is truthy (checked every 5 ms), rejects after `ms` with `what`. */
async function waitFor (check, ms, what) {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timeout (${ms} ms): ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** The clientIDs announced in an awareness update (count (clientId clock state){count}). */
function awarenessClients (update) {
  const dec = decoding.createDecoder(update)
  const n = decoding.readVarUint(dec)
  const out = []
  for (let i = 0; i < n; i++) {
    const clientId = decoding.readVarUint(dec)
    decoding.readVarUint(dec)
    out.push({ clientId, state: decoding.readVarString(dec) })
  }
  return out
}

async function runPair (srv, protocol) {
  const room = encodeURIComponent(`smoke/${srv.name}-${protocol}-${process.pid}`)
  const url = `ws://${HOST}:${srv.port}/${room}`
  const seenAwareness = []
  let acks = 0
  const a = createClient(url, { protocol, onAck: () => { acks++ } })
  const b = createClient(url, { protocol, onAwareness: (u) => seenAwareness.push(...awarenessClients(u)) })
  const clients = [a, b]
  const t = {}
  try {
    await a.connect({ timeoutMs: STEP_MS })
    await b.connect({ timeoutMs: STEP_MS })

    let t0 = Date.now()
    const text = `hello from ${protocol} at ${t0}`
    a.doc.getText('text').insert(0, text)
    await waitFor(() => b.doc.getText('text').toString() === text, STEP_MS, 'B did not receive the text of A')
    t.text = Date.now() - t0

    t0 = Date.now()
    a.sendAwareness({ user: { name: 'A' } }, 1)
    await waitFor(() => seenAwareness.some(e => e.clientId === a.doc.clientID && JSON.parse(e.state)?.user?.name === 'A'),
      STEP_MS, 'B did not receive the awareness state of A')
    t.awareness = Date.now() - t0

    if (protocol === 'native' || protocol === 'hocuspocus') {
      t0 = Date.now()
      await waitFor(() => acks > 0 && a.stats.acks > 0, STEP_MS, `A got no ${protocol === 'native' ? 'ACK' : 'SyncStatus'}`)
      t.ack = Date.now() - t0
    }

    t0 = Date.now()
    const big = 'x'.repeat(2 * 1024 * 1024)
    a.doc.getText('text').insert(0, big)
    const want = big + text
    await waitFor(() => b.doc.getText('text').length === want.length, 2 * STEP_MS, 'B did not receive the 2 MB insert')
    if (b.doc.getText('text').toString() !== want) throw new Error('B holds different text after the 2 MB insert')
    const c = createClient(url, { protocol })
    clients.push(c)
    await c.connect({ timeoutMs: 2 * STEP_MS })
    if (c.doc.getText('text').toString() !== want) throw new Error('late joiner C did not get the whole text in its initial sync')
    t.large = Date.now() - t0

    const errs = clients.map(x => x.stats.errors ?? 0).reduce((x, y) => x + y, 0)
    if (errs) throw new Error(`ERROR frames received: ${errs} (last: ${JSON.stringify(a.lastError ?? b.lastError)})`)
    const detail = [
      `text ${t.text} ms`,
      `awareness ${t.awareness} ms`,
      t.ack !== undefined ? `ack ${t.ack} ms (A acks ${a.stats.acks})` : null,
      `2 MB + late join ${t.large} ms`,
      `A in/out ${a.stats.msgsIn}/${a.stats.msgsOut} msgs, B other ${b.stats.otherMsgs}`
    ].filter(Boolean).join(', ')
    return { ok: true, detail }
  } catch (e) {
    const extra = clients.map((x, i) => `${'ABC'[i]}: synced ${x.synced}, stats ${JSON.stringify(x.stats)}, closed ${x.closeCode || '-'} ${x.closeReason || ''}`).join('; ')
    return { ok: false, detail: `${e.message} [${extra}]` }
  } finally {
    await Promise.all(clients.map(x => x.close(1000)))
  }
}

async function main () {
  const started = new Map()
  let failed = 0
  try {
    for (const [server, protocol] of PAIRS) {
      const label = `${server} × ${protocol}`
      let srv = started.get(server)
      if (!srv) {
        try {
          srv = await startServer(server)
          started.set(server, srv)
        } catch (e) {
          failed++
          console.log(`FAIL ${label}: could not start ${server}: ${e.message}`)
          continue
        }
      }
      const r = await runPair(srv, protocol)
      if (!r.ok) failed++
      console.log(`${r.ok ? 'PASS' : 'FAIL'} ${label}: ${r.detail}`)
      if (!r.ok && srv.log().trim()) console.log(`  ${server} log tail:\n${srv.log().trim().split('\n').slice(-15).map(l => '    ' + l).join('\n')}`)
    }
  } finally {
    for (const srv of started.values()) await stopServer(srv)
    killChildren('SIGKILL')
  }
  console.log(failed ? `${failed} of ${PAIRS.length} pairs failed` : `all ${PAIRS.length} pairs passed`)
  process.exitCode = failed ? 1 : 0
}

main().catch((e) => {
  console.error(e)
  killChildren('SIGKILL')
  process.exit(1)
})
