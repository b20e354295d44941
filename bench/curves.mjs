// How Concord's cost grows: server CPU per delivered update and server memory per client against
// room size, number of documents and number of nodes. Each point is one run of `bench/run.mjs`
// (Concord only); its markdown report is parsed, and the points go to a JSON file, a markdown
// table and SVG charts next to it (docs/benchmarks.md "How cost grows" shows them; the capacity
// model in docs/deployment.md is built on them).
//
//   node bench/curves.mjs [--out bench/results/curves] [--rooms 2,10,50,100,200,350]
//                         [--documents 100,1000,5000,10000] [--nodes 1,2,3] [--duration 10]
//                         [--max-clients 19900]
//
//   rooms      scenario bigroom: one document, n editors typing 1/s and moving the cursor 5/s
//   documents  scenario fanout: n documents of 2 clients each typing 0.2/s, at most --max-clients
//              clients in all (default 19,900: this machine allows 20,000 open files per process,
//              so 10,000 documents have 9,900 of 2 clients and 100 of one)
//   nodes      scenario fanout-nodes: 500 documents of 4 clients typing 1/s, on n Concord nodes
//              (PostgreSQL + Redis), each room's clients spread over the nodes
import { parseArgs } from 'node:util'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { timeSeries } from './lib/svg.mjs'

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    rooms: { type: 'string' },
    documents: { type: 'string' },
    nodes: { type: 'string' },
    duration: { type: 'string' },
    'max-clients': { type: 'string' }
  }
})
const repo = fileURLToPath(new URL('..', import.meta.url))
const outDir = values.out ?? join(repo, 'bench', 'results', 'curves')
const list = (v, def) => (v ?? def).split(',').filter(Boolean).map(Number)
const ROOMS = list(values.rooms, '2,10,50,100,200,350')
const DOCUMENTS = list(values.documents, '100,1000,5000,10000')
const MAX_CLIENTS = Number(values['max-clients'] ?? 19900)
const NODES = list(values.nodes, '1,2,3')
const DURATION = Number(values.duration ?? 10)
mkdirSync(outDir, { recursive: true })

/** Runs bench/run.mjs with `args` and returns the report's rows as metric -> number (first column). */
function run (name, args) {
  const out = join(outDir, `${name}.md`)
  const t0 = Date.now()
  const r = spawnSync(process.execPath, [join(repo, 'bench', 'run.mjs'), '--only', 'concord', '--out', out, ...args], { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 30 * 60_000 })
  if (r.status !== 0) throw new Error(`${name}: bench/run.mjs exited ${r.status}\n${r.stderr.slice(-2000)}`)
  const rows = new Map()
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    if (!line.startsWith('| ')) continue
    const cells = line.split('|').map(c => c.trim())
    const value = Number((cells[3] ?? '').replace(/,/g, '').split(' ')[0])
    if (cells[2] && Number.isFinite(value)) rows.set(cells[2], value)
  }
  process.stderr.write(`${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`)
  return rows
}

const points = { rooms: [], documents: [], nodes: [] }

for (const n of ROOMS) {
  const r = run(`room-${n}`, ['--scenario', 'bigroom', '--big-clients', String(n), '--big-duration', String(DURATION)])
  // every edit reaches n − 1 editors and every cursor move too
  const delivered = r.get('edits sent') * (n - 1) + r.get('presence changes sent') * (n - 1)
  points.rooms.push({
    x: n,
    clients: n,
    delivered,
    rssMiB: r.get('server RSS with every client connected (MiB)'),
    cpuUsPerDelivered: r.get('server CPU (s)') * 1e6 / delivered,
    rssKiBPerClient: r.get('server RSS with every client connected (MiB)') * 1024 / n,
    serverCpuS: r.get('server CPU (s)'),
    wallS: r.get('measured wall time (s)'),
    editP99: r.get('edit latency p99 (ms)'),
    presenceP95: r.get('presence latency p95 (ms)'),
    generatorLoopP99: r.get('load-generator event-loop delay p99, worst worker (ms)')
  })
}

for (const d of DOCUMENTS) {
  const r = run(`documents-${d}`, ['--scenario', 'fanout', '--rooms', String(d), '--clients', '2', '--max-clients', String(MAX_CLIENTS), '--rate', '0.2', '--duration', String(Math.max(DURATION, 20))])
  const clients = r.get('clients')
  const delivered = r.get('expected receipts') - r.get('lost updates (expected − received)')
  points.documents.push({
    x: d,
    clients,
    delivered,
    cpuUsPerDelivered: r.get('server CPU (s)') * 1e6 / delivered,
    rssKiBPerClient: r.get('server RSS with every client connected (MiB)') * 1024 / clients,
    rssMiB: r.get('server RSS with every client connected (MiB)'),
    serverCpuS: r.get('server CPU (s)'),
    wallS: r.get('measured wall time (s)'),
    p99: r.get('latency p99 (ms)'),
    lost: r.get('lost updates (expected − received)')
  })
}

for (const k of NODES) {
  const r = run(`nodes-${k}`, ['--scenario', 'fanout-nodes', '--cluster-nodes', String(k), '--rooms', '500', '--clients', '4', '--rate', '1', '--duration', String(Math.max(DURATION, 20))])
  const delivered = r.get('expected receipts') - r.get('lost updates (expected − received)')
  points.nodes.push({
    x: k,
    clients: 2000,
    delivered,
    rssMiB: r.get('server RSS with every client connected (MiB)'),
    cpuUsPerDelivered: r.get('server CPU (s)') * 1e6 / delivered,
    rssKiBPerClient: r.get('server RSS with every client connected (MiB)') * 1024 / 2000,
    serverCpuS: r.get('server CPU (s)'),
    wallS: r.get('measured wall time (s)'),
    p99: r.get('latency p99 (ms)'),
    lost: r.get('lost updates (expected − received)')
  })
}

// marginal costs between neighbouring points: what one more delivered update and one more client
// cost, without the process's fixed share (its idle CPU, its RSS before any client), which dominates
// the averages of small runs
for (const key of ['rooms', 'documents']) {
  const ps = points[key]
  for (let i = 1; i < ps.length; i++) {
    ps[i].marginalCpuUs = (ps[i].serverCpuS - ps[i - 1].serverCpuS) * 1e6 / (ps[i].delivered - ps[i - 1].delivered)
    ps[i].marginalKiBPerClient = (ps[i].rssMiB - ps[i - 1].rssMiB) * 1024 / (ps[i].clients - ps[i - 1].clients)
  }
}

writeFileSync(join(outDir, 'curves.json'), JSON.stringify({ date: new Date().toISOString(), duration: DURATION, points }, null, 2))

const charts = [
  ['rooms', 'editors in one document', 'room size'],
  ['documents', 'documents (2 clients each)', 'documents'],
  ['nodes', 'nodes (500 documents × 4 clients)', 'nodes']
]
for (const [key, xLabel, what] of charts) {
  if (points[key].length === 0) continue
  const marginal = key !== 'nodes'
  writeFileSync(join(outDir, `${key}-cpu.svg`), timeSeries({
    title: `Server CPU per delivered update (µs) against ${what}`,
    xLabel,
    yLabel: 'µs of server CPU per delivered update',
    series: [
      { name: 'average (whole process)', points: points[key].map(p => [p.x, p.cpuUsPerDelivered]) },
      ...(marginal ? [{ name: 'marginal (from the previous point)', points: points[key].slice(1).map(p => [p.x, p.marginalCpuUs]) }] : [])
    ]
  }))
  writeFileSync(join(outDir, `${key}-memory.svg`), timeSeries({
    title: `Server memory per client (KiB) against ${what}`,
    xLabel,
    yLabel: 'KiB of server RSS per client',
    series: [
      { name: 'average (whole process)', points: points[key].map(p => [p.x, p.rssKiBPerClient]) },
      ...(marginal ? [{ name: 'marginal (from the previous point)', points: points[key].slice(1).map(p => [p.x, p.marginalKiBPerClient]) }] : [])
    ]
  }))
}

const fmt = (x, d = 1) => Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–'
const md = ['| curve | x | delivered updates | server CPU (s) | CPU per delivered update, average / marginal (µs) | RSS (MiB) | RSS per client, average / marginal (KiB) | latency |', '|---|---:|---:|---:|---:|---:|---:|---|']
const both = (a, m) => `${fmt(a)} / ${fmt(m)}`
for (const p of points.rooms) md.push(`| room size | ${p.x} | ${p.delivered.toLocaleString('en-US')} | ${fmt(p.serverCpuS, 2)} | ${both(p.cpuUsPerDelivered, p.marginalCpuUs)} | ${fmt(p.rssMiB, 0)} | ${both(p.rssKiBPerClient, p.marginalKiBPerClient)} | edits p99 ${fmt(p.editP99)} ms, presence p95 ${fmt(p.presenceP95)} ms (generator loop p99 ${fmt(p.generatorLoopP99)} ms) |`)
for (const p of points.documents) md.push(`| documents | ${p.x.toLocaleString('en-US')} (${p.clients.toLocaleString('en-US')} clients) | ${p.delivered.toLocaleString('en-US')} | ${fmt(p.serverCpuS, 2)} | ${both(p.cpuUsPerDelivered, p.marginalCpuUs)} | ${fmt(p.rssMiB, 0)} | ${both(p.rssKiBPerClient, p.marginalKiBPerClient)} | p99 ${fmt(p.p99)} ms, ${p.lost} lost |`)
for (const p of points.nodes) md.push(`| nodes | ${p.x} | ${p.delivered.toLocaleString('en-US')} | ${fmt(p.serverCpuS, 2)} | ${fmt(p.cpuUsPerDelivered)} | ${fmt(p.rssMiB, 0)} | ${fmt(p.rssKiBPerClient)} | p99 ${fmt(p.p99)} ms, ${p.lost} lost |`)
writeFileSync(join(outDir, 'curves.md'), md.join('\n') + '\n')
console.log(md.join('\n'))
