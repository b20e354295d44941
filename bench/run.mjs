#!/usr/bin/env node
// Runs the same benchmark scenarios against Concord, Hocuspocus and the
// y-websocket reference server in one run (or against any server URL) and
// writes a markdown report with SVG charts (bench/results/). Progress goes to
// stderr. See bench/README.md. `concord bench` runs this script.
import { parseArgs } from 'node:util'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir, cpus, totalmem, availableParallelism, release } from 'node:os'
import { join, relative, resolve, dirname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { startServer, freePort, splitCommand, fillTemplate, killAllChildren, HOST, CLK_TCK, openFileLimit, readCpuTicks, readRssKB } from './lib/server-proc.mjs'
import { fmt } from './lib/stats.mjs'
import { progress } from './lib/progress.mjs'
import { latencyHistogram, timeSeries, barChart } from './lib/svg.mjs'
import { PROTOCOLS } from './lib/clients.mjs'
import { traceScenario, throughput } from './scenarios/stream.mjs'
import { fanoutScenario } from './scenarios/fanout.mjs'
import { bigroomScenario } from './scenarios/bigroom.mjs'
import { memoryScenario } from './scenarios/memory.mjs'
import * as coldload from './scenarios/coldload.mjs'
import { startPostgres, startRedis } from './lib/services.mjs'

const benchDir = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(benchDir, '..')
const require = createRequire(import.meta.url)
// ---------- options ----------

const ALL_SERVERS = ['concord', 'concord-native', 'concord-hocuspocus', 'hocuspocus', 'reference']
const ALL_SCENARIOS = ['memory', 'fanout', 'throughput', 'trace', 'trace-blog', 'coldload', 'connections', 'fanout-heavy', 'cross-node', 'bigroom', 'trace-window']
// run only when asked for (bench/curves.mjs asks)
const DEFAULT_SCENARIOS = [...ALL_SCENARIOS]
ALL_SCENARIOS.push('fanout-nodes')

const HELP = `usage: node bench/run.mjs [options]      (or: concord bench [options], npm run bench -- [options])

  --quick                 small sizes for every scenario (about two minutes for three servers)
  --only <servers>        any of ${ALL_SERVERS.join(', ')} (default: concord,hocuspocus,reference)
                          concord speaks y-websocket like the peers; concord-native is the same server
                          over Concord's native protocol (durable acks counted)
  --scenario <list>       any of ${ALL_SCENARIOS.join(', ')} (default: all but fanout-nodes)
  --url <ws://host:port>  run against a server that is already running (loopback only), instead of
                          starting servers; with --protocol, and --server-pid for CPU and memory figures
  --protocol <p>          with --url: ${PROTOCOLS.join(', ')} (default: y-websocket)
  --server-pid <pid>      with --url: the server's process id (CPU and RSS are read from /proc)
  --workers <n>           load-generator worker threads (default: ${Math.min(4, Math.max(2, availableParallelism()))})
  --out <file>            markdown report (default: bench/results/latest.md); charts go next to it

trace replay (trace: automerge-paper, trace-blog: seph-blog1)
  --trace <file>          default: ../shared/traces/automerge-paper.json.gz from the repo root
  --trace-blog <file>     default: ../shared/traces/seph-blog1.json.gz
  --txns <n>              replay only the first n txns of each trace (default: all; --quick: 20000)
  --window <n>            trace-window: the automerge-paper trace with at most n updates in flight (default: 100)
  --timeout <s>           a stream gives up after this many seconds (default: 600)

throughput (1 writer, N listeners)
  --typing <n>            single-character updates sent (default: 100000; --quick: 20000)
  --listeners <n>         listeners (default: 10)

fan-out latency
  --rooms <n> --clients <n> --rate <n> --duration <s>   default 50 × 10, 2/s, 20 s (--quick: 10 × 5, 2/s, 4 s)
  --heavy-rooms <n> --heavy-clients <n> --heavy-rate <n> --heavy-duration <s>
                          fanout-heavy: default 200 × 10, 5/s, 20 s (--quick: 20 × 10, 5/s, 4 s)
  --big-clients <n> --big-typing <n> --big-cursor <n> --big-duration <s> --big-warmup <s>
                          bigroom: one document, n editors each typing and moving the cursor so many
                          times a second (default 350, 1/s, 5/s, 20 s measured after 3 s of warm-up;
                          --quick: 40, 1/s, 5/s, 4 s after 1 s)
  --warmup <s>            fanout, fanout-heavy, cross-node, fanout-nodes: seconds of the same sending
                          before the measured window; their receipts are reported on rows of their
                          own (default: 2; --quick: 0.5)
  --max-clients <n>       fanout: at most n clients in all; the last rooms get one client fewer
                          (10,000 rooms of 2 in 20,000 open files: --max-clients 19900)
  --drain <s>             max wait for outstanding receipts after sending stops (default: 5)

idle memory and connections
  --connections <n>       memory: connections (default: 10000; --quick: 1000)
  --memory-rooms <n>      memory: rooms (default: connections/10)
  --max-connections <n>   connections: connections held by one server process (default: 50000; --quick: 2000)
  --settle <s>            idle time before RSS is read (default: 5; --quick: 2)
  --no-awareness          do not announce an awareness state per connection

cold load
  --coldload-runs <n>     restarts measured (default: 3; --quick: 2)

cross-node latency (each server as 2 nodes: Concord on PostgreSQL + Redis, Hocuspocus with
its Redis extension; the reference server has no multi-node mode; PostgreSQL and Redis are
started by the run from the machine's binaries, see bench/lib/services.mjs)
  --cluster-nodes <n>     fanout-nodes: the fan-out scenario (--rooms, --clients, --rate, --duration)
                          on n nodes of Concord (PostgreSQL + Redis), a room's clients spread over them
  --cross-rooms <n> --cross-rate <n> --cross-duration <s>
                          rooms of 2 clients, one per node, each writing rate/s
                          (default 50, 5/s, 20 s; --quick: 10, 5/s, 4 s)

server commands ({port} {host} {data} are substituted; 'node' is this Node binary)
  --concord-cmd <cmd>     default: ${defaultConcordCmd()}
  --hocuspocus-cmd <cmd>  default: node bench/servers/hocuspocus.mjs, with HOST={host} PORT={port}
  --reference-cmd <cmd>   default: node node_modules/@y/websocket-server/src/server.js, with HOST={host} PORT={port}
  --reference-leveldb     the reference server persists every update with its y-leveldb store
                          (YPERSISTENCE={data}); LevelDB does not fsync, so Concord's like is
                          --sqlite-synchronous normal (in --concord-cmd)
`

function defaultConcordCmd () {
  const bin = 'packages/server/bin/concord.js'
  const cli = 'packages/server/dist/cli/cli.js'
  const script = existsSync(join(repoRoot, bin)) || !existsSync(join(repoRoot, cli)) ? bin : cli
  // no rate limits and no per-IP cap: the load generator is one IP sending far more than one user would
  return `node ${script} serve --port {port} --host {host} --data {data} --auth none --log-level warn --rate-limit-messages 100000000 --rate-limit-bytes 100000000000 --max-connections-per-ip 1000000`
}

let args
try {
  args = parseArgs({
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      scenario: { type: 'string' },
      url: { type: 'string' },
      protocol: { type: 'string' },
      'server-pid': { type: 'string' },
      workers: { type: 'string' },
      out: { type: 'string' },
      trace: { type: 'string' },
      'trace-blog': { type: 'string' },
      txns: { type: 'string' },
      timeout: { type: 'string' },
      window: { type: 'string' },
      typing: { type: 'string' },
      listeners: { type: 'string' },
      rooms: { type: 'string' },
      clients: { type: 'string' },
      'max-clients': { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      'heavy-rooms': { type: 'string' },
      'heavy-clients': { type: 'string' },
      'heavy-rate': { type: 'string' },
      'heavy-duration': { type: 'string' },
      'big-clients': { type: 'string' },
      'big-typing': { type: 'string' },
      'big-cursor': { type: 'string' },
      'big-duration': { type: 'string' },
      'big-warmup': { type: 'string' },
      warmup: { type: 'string' },
      drain: { type: 'string' },
      connections: { type: 'string' },
      'memory-rooms': { type: 'string' },
      'max-connections': { type: 'string' },
      settle: { type: 'string' },
      'no-awareness': { type: 'boolean' },
      'coldload-runs': { type: 'string' },
      'cross-rooms': { type: 'string' },
      'cluster-nodes': { type: 'string' },
      'cross-rate': { type: 'string' },
      'cross-duration': { type: 'string' },
      'concord-cmd': { type: 'string' },
      'hocuspocus-cmd': { type: 'string' },
      'reference-cmd': { type: 'string' },
      'reference-leveldb': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    },
    strict: true,
    allowPositionals: false
  }).values
} catch (e) {
  process.stderr.write(`${e.message}\n\n${HELP}`)
  process.exit(2)
}
if (args.help) {
  process.stdout.write(HELP)
  process.exit(0)
}

const quick = !!args.quick
function num (name, def, { min = 0, integer = true, quickDef } = {}) {
  const raw = args[name]
  if (raw === undefined) return quick && quickDef !== undefined ? quickDef : def
  const v = Number(raw)
  if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    process.stderr.write(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'\n`)
    process.exit(2)
  }
  return v
}

function list (name, allowed, def) {
  const v = (args[name] ?? def.join(',')).split(',').map(s => s.trim()).filter(Boolean)
  for (const x of v) {
    if (!allowed.includes(x)) {
      process.stderr.write(`--${name}: unknown value '${x}' (allowed: ${allowed.join(', ')})\n`)
      process.exit(2)
    }
  }
  return [...new Set(v)]
}

function fail (msg) {
  process.stderr.write(`${msg}\n`)
  process.exit(2)
}

const external = args.url ?? null
if (external !== null) {
  let u
  try { u = new URL(external) } catch { fail(`--url: not a URL: ${external}`) }
  if (u.protocol !== 'ws:') fail('--url must be ws://host:port (loopback)')
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && !u.hostname.startsWith('127.')) fail('--url: the benchmark sends load to loopback addresses only')
  if (args.only) fail('--only does not apply with --url')
}
if (args.protocol && !PROTOCOLS.includes(args.protocol)) fail(`--protocol: one of ${PROTOCOLS.join(', ')}`)
if ((args.protocol || args['server-pid']) && external === null) fail('--protocol and --server-pid go with --url')

// the traces live beside the repository (../shared/traces); CONCORD_TRACES_DIR overrides, as for the tests
const tracesDir = process.env.CONCORD_TRACES_DIR ? resolve(process.env.CONCORD_TRACES_DIR) : '../shared/traces'
const opts = {
  quick,
  servers: external !== null ? ['external'] : list('only', ALL_SERVERS, ['concord', 'hocuspocus', 'reference']),
  scenarios: list('scenario', ALL_SCENARIOS, DEFAULT_SCENARIOS),
  workers: num('workers', Math.min(4, Math.max(2, availableParallelism())), { min: 1 }),
  out: resolve(args.out ?? join(benchDir, 'results', 'latest.md')),
  trace: resolve(repoRoot, args.trace ?? join(tracesDir, 'automerge-paper.json.gz')),
  traceBlog: resolve(repoRoot, args['trace-blog'] ?? join(tracesDir, 'seph-blog1.json.gz')),
  txns: num('txns', 0, { min: 1, quickDef: 20000 }),
  timeout: num('timeout', 600, { min: 1, integer: false }),
  window: num('window', 100, { min: 1 }),
  typing: num('typing', 100000, { min: 1, quickDef: 20000 }),
  listeners: num('listeners', 10, { min: 1 }),
  rooms: num('rooms', 50, { min: 1, quickDef: 10 }),
  clients: num('clients', 10, { min: 2, quickDef: 5 }),
  maxClients: num('max-clients', 0, { min: 1 }),
  rate: num('rate', 2, { min: 0.01, integer: false }),
  duration: num('duration', 20, { min: 0.1, integer: false, quickDef: 4 }),
  heavyRooms: num('heavy-rooms', 200, { min: 1, quickDef: 20 }),
  heavyClients: num('heavy-clients', 10, { min: 2 }),
  heavyRate: num('heavy-rate', 5, { min: 0.01, integer: false }),
  heavyDuration: num('heavy-duration', 20, { min: 0.1, integer: false, quickDef: 4 }),
  bigClients: num('big-clients', 350, { min: 2, quickDef: 40 }),
  bigTyping: num('big-typing', 1, { min: 0.01, integer: false }),
  bigCursor: num('big-cursor', 5, { min: 0.01, integer: false }),
  bigDuration: num('big-duration', 20, { min: 0.1, integer: false, quickDef: 4 }),
  bigWarmup: num('big-warmup', 3, { min: 0, integer: false, quickDef: 1 }),
  warmup: num('warmup', 2, { min: 0, integer: false, quickDef: 0.5 }),
  drain: num('drain', 5, { min: 0, integer: false }),
  connections: num('connections', 10000, { min: 1, quickDef: 1000 }),
  memoryRooms: num('memory-rooms', 0, { min: 1 }),
  maxConnections: num('max-connections', 50000, { min: 1, quickDef: 2000 }),
  settle: num('settle', 5, { min: 0, integer: false, quickDef: 2 }),
  coldloadRuns: num('coldload-runs', 3, { min: 1, quickDef: 2 }),
  crossRooms: num('cross-rooms', 50, { min: 1, quickDef: 10 }),
  clusterNodes: num('cluster-nodes', 2, { min: 1 }),
  crossRate: num('cross-rate', 5, { min: 0.01, integer: false }),
  crossDuration: num('cross-duration', 20, { min: 0.1, integer: false, quickDef: 4 }),
  awareness: !args['no-awareness']
}

// ---------- servers ----------

const refPkgPath = require.resolve('@y/websocket-server/package.json')
const refVersion = JSON.parse(readFileSync(refPkgPath, 'utf8')).version
const refScript = relative(repoRoot, join(dirname(refPkgPath), 'src', 'server.js'))
const hpVersion = JSON.parse(readFileSync(join(dirname(dirname(require.resolve('@hocuspocus/server'))), 'package.json'), 'utf8')).version
const hpScript = relative(repoRoot, join(benchDir, 'servers', 'hocuspocus.mjs'))

/** Concord's nodes share one PostgreSQL database (fresh per run of the scenario) and Redis. */
async function concordCluster () {
  const store = await clusterDatabase()
  return { args: ['--store', store, '--redis', services.redis.url], env: {} }
}

const SERVERS = {
  concord: { label: 'Concord', template: args['concord-cmd'] ?? defaultConcordCmd(), env: {}, dataDir: true, persistent: true, protocol: 'y-websocket', cluster: concordCluster },
  'concord-native': { label: 'Concord (native protocol)', template: args['concord-cmd'] ?? defaultConcordCmd(), env: {}, dataDir: true, persistent: true, protocol: 'native', cluster: concordCluster },
  // the clients Hocuspocus's own run uses, against Concord (a stock provider's framing, sockets to the root)
  'concord-hocuspocus': { label: 'Concord (Hocuspocus protocol)', template: args['concord-cmd'] ?? defaultConcordCmd(), env: {}, dataDir: true, persistent: true, protocol: 'hocuspocus', cluster: concordCluster },
  hocuspocus: {
    label: `Hocuspocus ${hpVersion}`,
    template: args['hocuspocus-cmd'] ?? `node ${hpScript}`,
    env: args['hocuspocus-cmd'] ? {} : { HOST: '{host}', PORT: '{port}' },
    dataDir: false,
    persistent: false,
    protocol: 'hocuspocus',
    // @hocuspocus/extension-redis (bench/servers/hocuspocus.mjs adds it when REDIS_URL is set)
    cluster: async () => ({ args: [], env: { REDIS_URL: (await clusterServices()).redis.url } })
  },
  reference: {
    label: `y-websocket-server ${refVersion}${args['reference-leveldb'] ? ' + y-leveldb' : ''}`,
    template: args['reference-cmd'] ?? `node ${refScript}`,
    env: {
      ...(args['reference-cmd'] ? {} : { HOST: '{host}', PORT: '{port}' }),
      // the server's own persistence: every update written to LevelDB as it arrives
      ...(args['reference-leveldb'] ? { YPERSISTENCE: '{data}' } : {})
    },
    dataDir: Boolean(args['reference-leveldb']),
    persistent: false,
    protocol: 'y-websocket'
  },
  external: { label: external ?? '', external: true, persistent: false, protocol: args.protocol ?? 'y-websocket' }
}

// 50,000 connections need more than one source address (about 28,000 ephemeral ports each)
const sourceAddresses = (n) => Array.from({ length: Math.max(1, Math.ceil(n / 20000)) }, (_, i) => `127.0.0.${i + 1}`)

const SCENARIOS = {
  memory: memoryScenario(() => ({})),
  fanout: fanoutScenario(o => ({ rooms: o.rooms, clients: o.clients, maxClients: o.maxClients, rate: o.rate, duration: o.duration, warmup: o.warmup })),
  throughput,
  trace: traceScenario(o => o.trace),
  'trace-blog': traceScenario(o => o.traceBlog),
  'trace-window': traceScenario(o => o.trace, o => o.window),
  coldload,
  connections: memoryScenario(o => ({ connections: o.maxConnections, memoryRooms: Math.max(1, Math.round(o.maxConnections / 10)), localAddresses: sourceAddresses(o.maxConnections) }), 'concurrent idle connections'),
  'fanout-heavy': fanoutScenario(o => ({ rooms: o.heavyRooms, clients: o.heavyClients, rate: o.heavyRate, duration: o.heavyDuration, warmup: o.warmup }), 'heavy fan-out'),
  // two clients per room, on different nodes: every receipt crossed from one node to the other
  'cross-node': { ...fanoutScenario(o => ({ rooms: o.crossRooms, clients: 2, rate: o.crossRate, duration: o.crossDuration, warmup: o.warmup }), 'cross-node latency, 2 nodes'), nodes: 2 },
  bigroom: bigroomScenario,
  // the node curve (bench/curves.mjs): the same load over --cluster-nodes nodes
  'fanout-nodes': { ...fanoutScenario(o => ({ rooms: o.rooms, clients: o.clients, rate: o.rate, duration: o.duration, warmup: o.warmup }), `fan-out on ${opts.clusterNodes} node(s)`), nodes: opts.clusterNodes }
}
// scenarios measured for Concord only unless asked for explicitly: the peers have no cold load
// from disk, and 50,000 connections in a peer is not a question the table asks
const CONCORD_ONLY = new Set(['coldload', 'connections'])

// ---------- cluster services (cross-node) ----------

/** PostgreSQL and Redis, started on first use and shared by the run's cluster scenarios. */
let services = null
let clusterNote = null
async function clusterServices () {
  if (services === null) {
    log('starting PostgreSQL and Redis for the cross-node scenario')
    const [postgres, redis] = await Promise.all([startPostgres(), startRedis()])
    services = { postgres, redis, databases: 0 }
    const hpRedis = JSON.parse(readFileSync(join(dirname(dirname(require.resolve('@hocuspocus/extension-redis'))), 'package.json'), 'utf8')).version
    clusterNote = `- cross-node: each server runs as 2 processes; Concord's add \`--store <a fresh database> --redis <url>\` (${postgres.version}; ${redis.version}, both started by the run), Hocuspocus's \`REDIS_URL=<url>\` (@hocuspocus/extension-redis ${hpRedis}); a room's 2 clients are on different nodes`
  }
  return services
}
function stopServicesSync () {
  if (services === null) return
  const { postgres, redis } = services
  services = null
  try { postgres.stop() } catch {}
  const pid = redis.pid()
  if (pid !== null) { try { process.kill(pid, 'SIGKILL') } catch {} }
}

/** A fresh PostgreSQL database for one Concord cluster. */
async function clusterDatabase () {
  const { postgres } = await clusterServices()
  const { default: pg } = await import('pg')
  const name = `bench_${process.pid}_${++services.databases}`
  const admin = new pg.Client({ connectionString: postgres.url })
  await admin.connect()
  try { await admin.query(`CREATE DATABASE ${name}`) } finally { await admin.end() }
  return postgres.urlOf(name)
}

/** Several server processes measured as one: CPU and RSS are their sums. */
function asOneServer (nodes) {
  return {
    pid: nodes[0].pid,
    cpuTicks: () => nodes.reduce((n, x) => n + x.cpuTicks(), 0),
    rssKB: () => nodes.reduce((n, x) => n + x.rssKB(), 0),
    alive: () => nodes.every(x => x.alive()),
    stop: async () => { await Promise.all(nodes.map(x => x.stop())) }
  }
}

// ---------- cleanup ----------

const tempDirs = new Set()
function cleanupSync () {
  killAllChildren()
  stopServicesSync()
  for (const d of tempDirs) { try { rmSync(d, { recursive: true, force: true }) } catch {} }
  tempDirs.clear()
}
process.on('exit', cleanupSync)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\n${sig}: stopping servers\n`)
    cleanupSync()
    process.exit(130)
  })
}
process.on('uncaughtException', (e) => {
  process.stderr.write(`uncaught: ${e.stack || e}\n`)
  cleanupSync()
  process.exit(1)
})
process.on('unhandledRejection', (e) => {
  process.stderr.write(`unhandled rejection: ${e && e.stack ? e.stack : e}\n`)
  cleanupSync()
  process.exit(1)
})

// ---------- run ----------

const log = (s) => process.stderr.write(s + '\n')
const shellQuote = (s) => /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
const commandLine = ['node', relative(process.cwd(), fileURLToPath(import.meta.url)) || 'bench/run.mjs', ...process.argv.slice(2)].map(shellQuote).join(' ')
const logDir = join(benchDir, 'results', 'logs')
mkdirSync(logDir, { recursive: true })

log(`command: ${commandLine}`)
for (const sc of ['memory', 'connections']) {
  if (!opts.scenarios.includes(sc)) continue
  const { soft } = openFileLimit()
  const need = (sc === 'memory' ? opts.connections : opts.maxConnections) + 256
  log(`open-file limit of this process: ${soft} (Node raises the soft limit to the hard one); ${sc} needs >= ${need}`)
}

/** results[scenario][server] = { rows, ... } | { error } | { skipped } */
const results = {}
const errors = []
const t0 = Date.now()
const overall = progress('benchmark', opts.scenarios.length * opts.servers.length)

function externalServer () {
  const pid = args['server-pid'] ? Number(args['server-pid']) : null
  if (pid !== null) {
    readCpuTicks(pid) // throws if there is no such process
    return { pid, cpuTicks: () => readCpuTicks(pid), rssKB: () => readRssKB(pid), alive: () => { try { readCpuTicks(pid); return true } catch { return false } }, stop: async () => {} }
  }
  return { pid: null, cpuTicks: () => NaN, rssKB: null, alive: () => true, stop: async () => {} }
}

for (const sc of opts.scenarios) {
  const scenario = SCENARIOS[sc]
  results[sc] = {}
  for (const sv of opts.servers) {
    const def = SERVERS[sv]
    overall.tick(0)
    if (CONCORD_ONLY.has(sc) && !sv.startsWith('concord') && !def.external) {
      results[sc][sv] = { skipped: true }
      overall.tick()
      continue
    }
    if (scenario.nodes && (def.external || !def.cluster)) {
      results[sc][sv] = { skipped: true, reason: def.external ? 'one URL given' : 'no multi-node mode' }
      overall.tick()
      continue
    }
    let server = null
    let dataDir = null
    try {
      scenario.checkFdLimit?.(opts)
      let baseUrl
      let baseUrls = null
      let restart = null
      if (scenario.nodes) {
        log(`[${sc}] ${def.label}: starting ${scenario.nodes} nodes`)
        const extra = await def.cluster()
        const nodes = []
        server = { stop: async () => { await Promise.all(nodes.map(x => x.stop())) } } // stops what started if one fails
        for (let k = 0; k < scenario.nodes; k++) {
          const port = await freePort()
          dataDir ??= mkdtempSync(join(tmpdir(), 'concord-bench-'))
          tempDirs.add(dataDir)
          const nodeData = join(dataDir, `node-${k}`)
          mkdirSync(nodeData)
          const vars = { port, host: HOST, data: nodeData }
          const argv = [...fillTemplate(splitCommand(def.template), vars), ...extra.args]
          const env = { ...Object.fromEntries(Object.entries(def.env).map(([key, v]) => [key, fillTemplate([v], vars)[0]])), ...extra.env }
          const logFile = join(logDir, `${sc}-${sv}-${k}.log`)
          writeFileSync(logFile, `# ${new Date().toISOString()} ${Object.entries(env).map(([key, v]) => `${key}=${v} `).join('')}${argv.join(' ')}\n`)
          nodes.push(await startServer({ argv, env, port, logFile, cwd: repoRoot }))
        }
        server = asOneServer(nodes)
        baseUrls = nodes.map(x => `ws://${HOST}:${x.port}`)
        baseUrl = baseUrls[0]
        log(`[${sc}] ${def.label}: pids ${nodes.map(x => x.pid).join(', ')} on ${baseUrls.join(', ')}`)
      } else if (def.external) {
        server = externalServer()
        baseUrl = external.replace(/\/+$/, '')
        log(`[${sc}] ${def.label} (${def.protocol})`)
      } else {
        log(`[${sc}] ${def.label}: starting server`)
        const port = await freePort()
        if (def.dataDir) {
          dataDir = mkdtempSync(join(tmpdir(), 'concord-bench-'))
          tempDirs.add(dataDir)
        }
        const vars = { port, host: HOST, data: dataDir ?? '' }
        const argv = fillTemplate(splitCommand(def.template), vars)
        const env = Object.fromEntries(Object.entries(def.env).map(([k, v]) => [k, fillTemplate([v], vars)[0]]))
        const logFile = join(logDir, `${sc}-${sv}.log`)
        writeFileSync(logFile, `# ${new Date().toISOString()} ${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}${argv.join(' ')}\n`)
        server = await startServer({ argv, env, port, logFile, cwd: repoRoot })
        log(`[${sc}] ${def.label}: pid ${server.pid} listening on ${HOST}:${port}`)
        baseUrl = `ws://${HOST}:${port}`
        // stop (SIGTERM: a graceful shutdown) and start again on the same port and data directory
        restart = async () => {
          await server.stop()
          server = await startServer({ argv, env, port, logFile, cwd: repoRoot })
          return server
        }
      }
      const started = Date.now()
      const ctx = {
        get server () { return server },
        baseUrl,
        ...(baseUrls ? { baseUrls } : {}),
        protocol: def.protocol,
        persistent: def.persistent,
        restart,
        opts,
        log,
        progress: (label, total) => progress(label, total)
      }
      const r = await scenario.run(ctx)
      if (!server.alive()) throw new Error('server process died during the scenario')
      results[sc][sv] = r
      log(`[${sc}] ${def.label}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    } catch (e) {
      const msg = (e && e.message) || String(e)
      results[sc][sv] = { error: msg }
      errors.push(`${sc} / ${def.label}: ${msg}`)
      log(`[${sc}] ${def.label}: ERROR ${msg}`)
    } finally {
      if (server && !def.external) await server.stop()
      if (dataDir) { rmSync(dataDir, { recursive: true, force: true }); tempDirs.delete(dataDir) }
    }
    overall.tick()
  }
}
overall.done()

// ---------- report ----------

const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ')
const firstLine = (s) => String(s).split('\n')[0]
const cell = (v, digits) => typeof v === 'number' ? fmt(v, digits ?? 0) : esc(v)

const cpu = cpus()[0]?.model?.trim() || 'unknown CPU'
const lines = []
lines.push('# Concord benchmark results', '')
lines.push(`- date: ${new Date(t0).toISOString()}`)
lines.push(`- command: \`${commandLine}\``)
lines.push(`- machine: ${cpu}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}`)
lines.push(`- load generator: ${opts.workers} worker thread(s) for fan-out, memory and the throughput listeners; the writer and each observer group have their own thread; CLK_TCK ${CLK_TCK}`)
for (const sv of opts.servers) {
  const def = SERVERS[sv]
  if (def.external) {
    lines.push(`- ${def.label}: an external server over the ${def.protocol} protocol${args['server-pid'] ? `, pid ${args['server-pid']}` : ' (no pid: no server CPU or memory figures)'}`)
    continue
  }
  const env = Object.entries(def.env).map(([k, v]) => `${k}=${v} `).join('')
  lines.push(`- ${def.label}: ${def.protocol} protocol; \`${env}${def.template}\``)
}
if (clusterNote !== null) lines.push(clusterNote)
lines.push('')
lines.push(`| scenario | metric | ${opts.servers.map(sv => SERVERS[sv].label).join(' | ')} |`)
lines.push(`| --- | --- | ${opts.servers.map(() => '---:').join(' | ')} |`)
for (const sc of opts.scenarios) {
  const title = SCENARIOS[sc].describe(opts)
  const metrics = []
  const byServer = {}
  for (const sv of opts.servers) {
    const r = results[sc][sv]
    byServer[sv] = new Map()
    if (r && r.rows) {
      for (const [label, value, digits] of r.rows) {
        if (!metrics.includes(label)) metrics.push(label)
        byServer[sv].set(label, cell(value, digits))
      }
    }
  }
  if (metrics.length === 0) metrics.push('result')
  metrics.forEach((label, i) => {
    const cells = opts.servers.map(sv => {
      const r = results[sc][sv]
      if (r.skipped) return i === 0 ? `not measured${r.reason ? ` (${r.reason})` : ''}` : ''
      if (r.error) return i === 0 ? `error: ${esc(firstLine(r.error)).slice(0, 120)}` : ''
      return byServer[sv].get(label) ?? '–'
    })
    lines.push(`| ${i === 0 ? `**${title}**` : ''} | ${label} | ${cells.join(' | ')} |`)
  })
}
// ---------- charts ----------

const chartBase = basename(opts.out).replace(/\.md$/, '')
const chartDir = dirname(opts.out)
const charts = []
const labelOf = (sv) => SERVERS[sv].label
const measured = (sc) => opts.servers.filter(sv => results[sc]?.[sv] && !results[sc][sv].error && !results[sc][sv].skipped)
function chart (name, title, svg) {
  const file = `${chartBase}-${name}.svg`
  writeFileSync(join(chartDir, file), svg)
  charts.push(`![${title}](${file})`)
}
mkdirSync(chartDir, { recursive: true })
for (const sc of ['fanout', 'fanout-heavy', 'cross-node', 'bigroom']) {
  const svs = measured(sc).filter(sv => results[sc][sv].latencies)
  if (svs.length === 0) continue
  chart(sc, `${SCENARIOS[sc].describe(opts)}: latency histogram`, latencyHistogram({
    title: `${SCENARIOS[sc].describe(opts)}: latency`,
    series: svs.map(sv => ({ name: labelOf(sv), samplesMs: results[sc][sv].latencies }))
  }))
}
for (const [sc, yLabel] of [['throughput', 'updates/s at the first listener'], ['trace', 'txns/s at the observer'], ['trace-blog', 'txns/s at the observer']]) {
  const svs = measured(sc).filter(sv => results[sc][sv].timeline)
  if (svs.length === 0) continue
  chart(sc, `${SCENARIOS[sc].describe(opts)}: throughput over time`, timeSeries({
    title: `${SCENARIOS[sc].describe(opts)}: throughput over time`,
    yLabel,
    series: svs.map(sv => ({ name: labelOf(sv), points: results[sc][sv].timeline }))
  }))
}
{
  const svs = measured('memory')
  if (svs.length > 0) {
    chart('memory', 'idle memory per connection', barChart({
      title: `${SCENARIOS.memory.describe(opts)}: RSS per connection`,
      yLabel: 'KiB per connection',
      categories: svs.map(labelOf),
      series: [{ name: 'KiB per connection', values: svs.map(sv => results.memory[sv].headline ?? null) }]
    }))
  }
}
if (charts.length) lines.push('', '## Charts', '', ...charts.flatMap(c => [c, '']))

if (errors.length) {
  lines.push('', 'Errors:', '')
  for (const e of errors) lines.push(`- ${esc(e)}`)
}
lines.push('')
const md = lines.join('\n')

mkdirSync(dirname(opts.out), { recursive: true })
writeFileSync(opts.out, md)
process.stdout.write(md)
log(`\nwritten to ${relative(process.cwd(), opts.out) || opts.out} (+ ${charts.length} SVG chart(s) beside it); server logs in ${relative(process.cwd(), logDir)}/`)
log(`total time ${((Date.now() - t0) / 1000).toFixed(1)} s${errors.length ? `, ${errors.length} error(s)` : ''}`)
cleanupSync()
process.exit(errors.length ? 1 : 0)
