#!/usr/bin/env node
// Runs the same benchmark scenarios against Concord and the y-websocket
// reference server in one run and prints a markdown table (stdout and
// bench/results/latest.md). Progress goes to stderr. See bench/README.md.
import { parseArgs } from 'node:util'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir, cpus, totalmem, availableParallelism, release } from 'node:os'
import { join, relative, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { startServer, freePort, splitCommand, fillTemplate, killAllChildren, HOST, CLK_TCK, openFileLimit } from './lib/server-proc.mjs'
import { fmt } from './lib/stats.mjs'
import * as trace from './scenarios/trace.mjs'
import * as fanout from './scenarios/fanout.mjs'
import * as memory from './scenarios/memory.mjs'

const benchDir = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(benchDir, '..')
const require = createRequire(import.meta.url)

// ---------- options ----------

const HELP = `usage: node bench/run.mjs [options]

  --only <servers>        concord, reference, or concord,reference (default: both)
  --scenario <list>       trace, fanout, memory, comma-separated (default: all three)
  --workers <n>           load-generator worker threads for fanout/memory (default: ${Math.min(4, Math.max(2, availableParallelism()))})
  --out <file>            markdown output (default: bench/results/latest.md)

trace replay
  --trace <file>          trace (default: ../shared/traces/automerge-paper.json.gz from the repo root)
  --txns <n>              replay only the first n txns (default: all)
  --timeout <s>           give up after this many seconds (default: 600)

fan-out latency
  --rooms <n>             rooms (default: 50)
  --clients <n>           clients per room (default: 10)
  --rate <n>              updates per second per client (default: 2)
  --duration <s>          sending time (default: 20)
  --drain <s>             max wait for outstanding receipts after sending stops (default: 5)

idle memory
  --connections <n>       connections (default: 10000)
  --memory-rooms <n>      rooms; connection j joins room j mod n (default: connections/10)
  --settle <s>            idle time before RSS is read (default: 5)
  --no-awareness          do not announce an awareness state per connection

server commands ({port} {host} {data} are substituted; 'node' is this Node binary)
  --concord-cmd <cmd>     default: node packages/server/bin/concord.js serve --port {port} --host {host} --data {data} --auth none --rate-limit-messages 100000000 --rate-limit-bytes 100000000000
                          (falls back to packages/server/dist/cli.js if bin/concord.js is missing)
  --reference-cmd <cmd>   default: node node_modules/@y/websocket-server/src/server.js, with HOST={host} PORT={port}
`

let args
try {
  args = parseArgs({
    options: {
      only: { type: 'string' },
      scenario: { type: 'string' },
      workers: { type: 'string' },
      out: { type: 'string' },
      trace: { type: 'string' },
      txns: { type: 'string' },
      timeout: { type: 'string' },
      rooms: { type: 'string' },
      clients: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      drain: { type: 'string' },
      connections: { type: 'string' },
      'memory-rooms': { type: 'string' },
      settle: { type: 'string' },
      'no-awareness': { type: 'boolean' },
      'concord-cmd': { type: 'string' },
      'reference-cmd': { type: 'string' },
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

function num (name, def, { min = 0, integer = true } = {}) {
  const raw = args[name]
  if (raw === undefined) return def
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

const opts = {
  servers: list('only', ['concord', 'reference'], ['concord', 'reference']),
  scenarios: list('scenario', ['trace', 'fanout', 'memory'], ['trace', 'fanout', 'memory']),
  workers: num('workers', Math.min(4, Math.max(2, availableParallelism())), { min: 1 }),
  out: resolve(args.out ?? join(benchDir, 'results', 'latest.md')),
  trace: resolve(repoRoot, args.trace ?? '../shared/traces/automerge-paper.json.gz'),
  txns: num('txns', 0, { min: 1 }),
  timeout: num('timeout', 600, { min: 1, integer: false }),
  rooms: num('rooms', 50, { min: 1 }),
  clients: num('clients', 10, { min: 2 }),
  rate: num('rate', 2, { min: 0.01, integer: false }),
  duration: num('duration', 20, { min: 0.1, integer: false }),
  drain: num('drain', 5, { min: 0, integer: false }),
  connections: num('connections', 10000, { min: 1 }),
  memoryRooms: num('memory-rooms', 0, { min: 1 }),
  settle: num('settle', 5, { min: 0, integer: false }),
  awareness: !args['no-awareness']
}

// ---------- servers ----------

const refPkgPath = require.resolve('@y/websocket-server/package.json')
const refVersion = JSON.parse(readFileSync(refPkgPath, 'utf8')).version
const refScript = relative(repoRoot, join(dirname(refPkgPath), 'src', 'server.js'))

function defaultConcordCmd () {
  const bin = 'packages/server/bin/concord.js'
  const cli = 'packages/server/dist/cli.js'
  const script = existsSync(join(repoRoot, bin)) || !existsSync(join(repoRoot, cli)) ? bin : cli
  return `node ${script} serve --port {port} --host {host} --data {data} --auth none --rate-limit-messages 100000000 --rate-limit-bytes 100000000000`
}

const SERVERS = {
  concord: {
    label: 'Concord',
    template: args['concord-cmd'] ?? defaultConcordCmd(),
    env: {},
    dataDir: true
  },
  reference: {
    label: `y-websocket-server ${refVersion}`,
    template: args['reference-cmd'] ?? `node ${refScript}`,
    env: args['reference-cmd'] ? {} : { HOST: '{host}', PORT: '{port}' },
    dataDir: false
  }
}

const SCENARIOS = { trace, fanout, memory }

// ---------- cleanup ----------

const tempDirs = new Set()
function cleanupSync () {
  killAllChildren()
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
if (opts.scenarios.includes('memory')) {
  const { soft } = openFileLimit()
  log(`open-file limit of this process: ${soft} (Node raises the soft limit to the hard one); the memory scenario needs >= ${opts.connections + 256}`)
}

/** results[scenario][server] = { rows } | { error } */
const results = {}
const errors = []
const t0 = Date.now()

for (const sc of opts.scenarios) {
  const scenario = SCENARIOS[sc]
  results[sc] = {}
  for (const sv of opts.servers) {
    const def = SERVERS[sv]
    let server = null
    let dataDir = null
    try {
      if (sc === 'memory') memory.checkFdLimit(opts)
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
      const started = Date.now()
      const r = await scenario.run({ server, baseUrl: `ws://${HOST}:${port}`, opts, log })
      if (!server.alive()) throw new Error('server process died during the scenario')
      results[sc][sv] = r
      log(`[${sc}] ${def.label}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    } catch (e) {
      const msg = (e && e.message) || String(e)
      results[sc][sv] = { error: msg }
      errors.push(`${sc} / ${def.label}: ${msg}`)
      log(`[${sc}] ${def.label}: ERROR ${msg}`)
    } finally {
      if (server) await server.stop()
      if (dataDir) { rmSync(dataDir, { recursive: true, force: true }); tempDirs.delete(dataDir) }
    }
  }
}

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
lines.push(`- load generator: ${opts.workers} worker thread(s) for fanout/memory; trace uses 1 writer + 1 observer thread; CLK_TCK ${CLK_TCK}`)
for (const sv of opts.servers) {
  const def = SERVERS[sv]
  const env = Object.entries(def.env).map(([k, v]) => `${k}=${v} `).join('')
  lines.push(`- ${def.label}: \`${env}${def.template}\``)
}
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
    if (r.rows) {
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
      if (r.error) return i === 0 ? `error: ${esc(firstLine(r.error)).slice(0, 120)}` : ''
      return byServer[sv].get(label) ?? '–'
    })
    lines.push(`| ${i === 0 ? `**${title}**` : ''} | ${label} | ${cells.join(' | ')} |`)
  })
}
if (errors.length) {
  lines.push('', 'Errors:', '')
  for (const e of errors) lines.push(`- ${esc(e)}`)
}
lines.push('')
const md = lines.join('\n')

mkdirSync(dirname(opts.out), { recursive: true })
writeFileSync(opts.out, md)
process.stdout.write(md)
log(`\nwritten to ${relative(process.cwd(), opts.out) || opts.out}; server logs in ${relative(process.cwd(), logDir)}/`)
log(`total time ${((Date.now() - t0) / 1000).toFixed(1)} s${errors.length ? `, ${errors.length} error(s)` : ''}`)
cleanupSync()
process.exit(errors.length ? 1 : 0)
