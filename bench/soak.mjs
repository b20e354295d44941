// Soak: a Concord server under steady editing, with clients joining and leaving all the time, for
// a long time (30 minutes by default; not part of `npm test`). Every `--sample` seconds it records
// the server's RSS and CPU, the clients connected, and the edit latency of that window; at the end
// it fits a line through the RSS of the second half (a leak shows as a slope) and compares the
// latency of the first and last windows. Writes a markdown report and an SVG chart.
//
//   npx tsc -b && node bench/soak.mjs [--minutes 30] [--rooms 100] [--clients 5] [--rate 1]
//                                     [--churn 5] [--sample 30] [--out bench/results/soak.md]
//
// Each room's text is kept bounded: an editor that sees more than 4,000 characters deletes the
// oldest entry, so a steady state exists (what remains growing is Yjs's tombstones).
import { parseArgs } from 'node:util'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { YClient, now } from './lib/yclient.mjs'
import { startServer, freePort, CLK_TCK } from './lib/server-proc.mjs'
import { percentile, loopDelayMonitor } from './lib/stats.mjs'
import { timeSeries } from './lib/svg.mjs'
import { eachEntry } from './lib/entries.mjs'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' },
    rooms: { type: 'string' },
    clients: { type: 'string' },
    rate: { type: 'string' },
    churn: { type: 'string' },
    sample: { type: 'string' },
    out: { type: 'string' }
  }
})
const MINUTES = Number(values.minutes ?? 30)
const ROOMS = Number(values.rooms ?? 100)
const PER_ROOM = Number(values.clients ?? 5)
const RATE = Number(values.rate ?? 1)
const CHURN = Number(values.churn ?? 5)
const SAMPLE_S = Number(values.sample ?? 30)
const repo = fileURLToPath(new URL('..', import.meta.url))
const out = values.out ?? join(repo, 'bench', 'results', 'soak.md')
const MAX_TEXT = 4000

const data = mkdtempSync(join(tmpdir(), 'concord-soak-'))
const port = await freePort()
const server = await startServer({
  argv: ['node', 'packages/server/bin/concord.js', 'serve', '--port', String(port), '--host', '127.0.0.1', '--data', data, '--auth', 'none', '--log-level', 'warn',
    '--rate-limit-messages', '100000000', '--rate-limit-bytes', '100000000000', '--max-connections-per-ip', '1000000'],
  port,
  cwd: repo,
  logFile: join(data, 'server.log')
})

let latencies = []
let lost = 0
let joins = 0
let leaves = 0
/** Every live editor, by room. */
const rooms = Array.from({ length: ROOMS }, () => new Set())

async function joinRoom (r) {
  const id = joins++
  const c = new YClient(`ws://127.0.0.1:${port}/soak-${r}`, {
    onRemoteUpdate: (update) => {
      // (the initial sync is not a receipt: what it brought is marked seen once connected)
      if (!c.joined) return
      // entries "<editor>.<seq>@<ms>;" in the update's bytes: each editor's entries once, in order
      const t = c.lastRecv
      eachEntry(update, (editor, n, sentAt) => {
        if (editor === id || n <= (c.last.get(editor) ?? -1)) return
        c.last.set(editor, n)
        latencies.push(t - sentAt)
      })
    }
  })
  c.last = new Map()
  c.id = id
  c.seq = 0
  await c.connect({ timeoutMs: 30000 })
  // what was there before it joined is not a receipt
  for (const m of c.doc.getText('t').toString().matchAll(/(\d+)\.(\d+)@/g)) c.last.set(Number(m[1]), Math.max(c.last.get(Number(m[1])) ?? -1, Number(m[2])))
  c.joined = true
  rooms[r].add(c)
  return c
}

async function leave (c, r) {
  rooms[r].delete(c)
  leaves++
  await c.close()
}

function type (c) {
  const text = c.doc.getText('t')
  c.doc.transact(() => {
    text.insert(text.length, `${c.id}.${c.seq++}@${now().toFixed(3)};`)
    if (text.length > MAX_TEXT) {
      // delete the oldest entry, whoever wrote it (those who left write no more; two editors
      // deleting the same entry at once is no conflict in Yjs)
      const s = text.toString()
      text.delete(0, s.indexOf(';') + 1)
    }
  })
}

const started = now()
const samples = []
try {
  for (let r = 0; r < ROOMS; r++) for (let k = 0; k < PER_ROOM; k++) await joinRoom(r)
  process.stderr.write(`soak: ${ROOMS * PER_ROOM} editors in ${ROOMS} rooms; ${MINUTES} min\n`)
  const endAt = now() + MINUTES * 60_000
  // typing: every editor RATE/s, spread out
  const typer = setInterval(() => {
    for (const room of rooms) for (const c of room) if (Math.random() < RATE / 10) type(c)
  }, 100)
  // churn: CHURN editors a second leave and as many join (other rooms)
  let churning = Promise.resolve()
  const churner = setInterval(() => {
    churning = churning.then(async () => {
      for (let i = 0; i < CHURN; i++) {
        // one editor of a room that has some leaves, and one joins a room at random
        const occupied = rooms.map((s, r) => r).filter(r => rooms[r].size > 0)
        const r = occupied[Math.floor(Math.random() * occupied.length)]
        const c = r === undefined ? undefined : [...rooms[r]][Math.floor(Math.random() * rooms[r].size)]
        if (c) await leave(c, r)
        await joinRoom(Math.floor(Math.random() * ROOMS))
      }
    }).catch(err => { lost++; process.stderr.write(`churn: ${err.message}\n`) })
  }, 1000)
  let cpu0 = server.cpuTicks()
  let t0 = now()
  const loop = loopDelayMonitor(10)
  loop.enable()
  while (now() < endAt) {
    await new Promise(resolve => setTimeout(resolve, SAMPLE_S * 1000))
    const window = latencies.sort((a, b) => a - b)
    latencies = []
    const cpu = server.cpuTicks()
    const t = now()
    samples.push({
      minute: (t - started) / 60_000,
      rssMiB: server.rssKB() / 1024,
      cpuPct: ((cpu - cpu0) / CLK_TCK) / ((t - t0) / 1000) * 100,
      editors: rooms.reduce((n, s) => n + s.size, 0),
      p50: percentile(window, 50),
      p99: percentile(window, 99),
      receipts: window.length,
      loopP99: loop.p99Ms()
    })
    loop.reset()
    cpu0 = cpu
    t0 = t
    const s = samples.at(-1)
    process.stderr.write(`soak ${s.minute.toFixed(1)} min: RSS ${s.rssMiB.toFixed(0)} MiB, CPU ${s.cpuPct.toFixed(0)} %, ${s.editors} editors, p50/p99 ${s.p50.toFixed(1)}/${s.p99.toFixed(1)} ms, generator loop p99 ${s.loopP99.toFixed(0)} ms\n`)
  }
  clearInterval(typer)
  clearInterval(churner)
  await churning
} finally {
  for (const room of rooms) for (const c of room) await c.close().catch(() => {})
  await server.stop()
  rmSync(data, { recursive: true, force: true })
}

// the second half's RSS: least-squares slope in MiB per minute
const half = samples.slice(Math.floor(samples.length / 2))
const mx = half.reduce((n, s) => n + s.minute, 0) / half.length
const my = half.reduce((n, s) => n + s.rssMiB, 0) / half.length
const slope = half.reduce((n, s) => n + (s.minute - mx) * (s.rssMiB - my), 0) / Math.max(1e-9, half.reduce((n, s) => n + (s.minute - mx) ** 2, 0))
const first = samples[0]
const last = samples.at(-1)
const md = [
  `# Soak: ${MINUTES} min, ${ROOMS} rooms × ${PER_ROOM} editors typing ${RATE}/s, ${CHURN} leaving and ${CHURN} joining every second`,
  '',
  `- command: \`node bench/soak.mjs ${process.argv.slice(2).join(' ')}\``,
  `- date: ${new Date().toISOString()}; joins ${joins.toLocaleString('en-US')}, leaves ${leaves.toLocaleString('en-US')}, churn errors ${lost}`,
  `- RSS over the second half: ${slope >= 0 ? '+' : ''}${slope.toFixed(2)} MiB per minute (least squares over ${half.length} samples); first sample ${first?.rssMiB.toFixed(0)} MiB, last ${last?.rssMiB.toFixed(0)} MiB`,
  `- edit latency p99: first window ${first?.p99.toFixed(1)} ms, last window ${last?.p99.toFixed(1)} ms`,
  '',
  '| minute | server RSS (MiB) | server CPU (%) | editors | receipts | p50 (ms) | p99 (ms) | load generator event-loop delay p99 (ms) |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...samples.map(s => `| ${s.minute.toFixed(1)} | ${s.rssMiB.toFixed(0)} | ${s.cpuPct.toFixed(0)} | ${s.editors} | ${s.receipts.toLocaleString('en-US')} | ${s.p50.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.loopP99.toFixed(0)} |`),
  '',
  '![RSS and p99 over time](soak.svg)'
].join('\n')
writeFileSync(out, md + '\n')
writeFileSync(join(dirname(out), 'soak.svg'), timeSeries({
  title: 'Soak: server RSS (MiB) and edit latency p99 (ms) over time',
  xLabel: 'minutes',
  yLabel: 'MiB / ms',
  series: [
    { name: 'server RSS (MiB)', points: samples.map(s => [s.minute, s.rssMiB]) },
    { name: 'edit latency p99 (ms)', points: samples.map(s => [s.minute, s.p99]) }
  ]
}))
console.log(md)
