#!/usr/bin/env node
// The backplane on one Redis and on a Redis Cluster of three masters (docs/benchmarks.md, "Redis
// Cluster"): two backplanes in this process stand for two nodes; node A publishes updates round
// robin over `--docs` documents, node B holds every one of them and counts what it hears; at most
// `--window` entries are in flight. Reported per target: updates delivered per second, the CPU
// of each redis-server (from /proc/<pid>/stat) and of this process, and Redis CPU per update.
//
//   npm run build && node bench/redis-cluster.mjs [--docs 300] [--seconds 10] [--bytes 40] [--window 20000]
//
// Everything runs on 127.0.0.1 and stops by itself (the servers by their pids).
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { createRedisBackplane } from '@concord/server/backplane/redis'
import { startRedis } from './lib/services.mjs'
import { startRedisCluster } from './lib/redis-cluster.mjs'

const { values: args } = parseArgs({
  options: {
    docs: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '10' },
    bytes: { type: 'string', default: '40' },
    window: { type: 'string', default: '20000' },
  },
})
const DOCS = Number(args.docs)
const SECONDS = Number(args.seconds)
const WINDOW = Number(args.window)
const PAYLOAD = new Uint8Array(Number(args.bytes)).fill(120)

/** CPU seconds (user + system) of a process so far. */
function cpuOf (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100 // utime, stime in clock ticks (100 Hz on Linux)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function run (label, url, pids) {
  const a = createRedisBackplane({ url })
  const b = createRedisBackplane({ url })
  const docs = Array.from({ length: DOCS }, (_, i) => `bench/doc-${i}`)
  let heard = 0
  const probes = new Set()
  for (const doc of docs) {
    b.subscribe(doc, await b.position(doc), {
      update: u => { if (u.length === 1) probes.add(doc); else heard++ },
      resync: () => undefined,
      presence: () => undefined,
    })
  }
  // every subscription is live once a probe on each document was heard
  const deadline = Date.now() + 30_000
  while (probes.size < DOCS) {
    if (Date.now() > deadline) throw new Error(`${label}: node B heard probes on ${probes.size} of ${DOCS} documents`)
    for (const doc of docs) if (!probes.has(doc)) a.publishUpdate(doc, new Uint8Array([1]))
    await sleep(100)
  }
  let sent = 0
  let next = 0
  const publish = () => {
    while (sent - heard < WINDOW) {
      a.publishUpdate(docs[next], PAYLOAD)
      next = (next + 1) % DOCS
      sent++
    }
  }
  // warm up for a second, then measure
  const end = Date.now() + 1_000 + SECONDS * 1_000
  let start = null
  while (Date.now() < end) {
    if (start === null && Date.now() >= end - SECONDS * 1_000) {
      start = { at: process.hrtime.bigint(), heard, cpu: process.cpuUsage(), redis: pids.map(cpuOf) }
    }
    publish()
    await new Promise(resolve => setImmediate(resolve))
  }
  const seconds = Number(process.hrtime.bigint() - start.at) / 1e9
  const delivered = heard - start.heard
  const self = process.cpuUsage(start.cpu)
  const redis = pids.map((pid, i) => (cpuOf(pid) - start.redis[i]) / seconds * 100)
  await Promise.all([a.close(), b.close()])
  const redisSum = redis.reduce((x, y) => x + y, 0)
  return {
    label,
    perSecond: Math.round(delivered / seconds),
    redis: redis.map(p => `${p.toFixed(0)}%`).join(' / '),
    redisMicrosPerUpdate: (redisSum / 100 * seconds * 1e6 / delivered).toFixed(2),
    busiestRedis: `${Math.max(...redis).toFixed(0)}%`,
    node: `${((self.user + self.system) / 1e6 / seconds * 100).toFixed(0)}%`,
  }
}

const rows = []
const single = await startRedis()
try {
  rows.push(await run('one Redis', single.url, [single.pid()]))
} finally {
  await single.stop()
}
const cluster = await startRedisCluster({ masters: 3 })
try {
  rows.push(await run('Redis Cluster, 3 masters', cluster.url, cluster.nodes.map(n => n.pid())))
} finally {
  await cluster.stop()
}
console.log(`\n${DOCS} documents, ${PAYLOAD.length}-byte updates, ${WINDOW} in flight at most, ${SECONDS} s measured (${single.version})\n`)
console.log('| Redis | updates/s delivered | redis-server CPU (each) | busiest redis-server | Redis CPU per update (µs, all servers) | this process (both backplanes) |')
console.log('| --- | --- | --- | --- | --- | --- |')
for (const r of rows) console.log(`| ${r.label} | ${r.perSecond.toLocaleString('en')} | ${r.redis} | ${r.busiestRedis} | ${r.redisMicrosPerUpdate} | ${r.node} |`)
