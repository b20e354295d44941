#!/usr/bin/env node
// Cross-region lag: two regions (each its own PostgreSQL, Redis and two `concord serve` nodes),
// linked through TCP proxies that add --latency ms in each direction (bench/lib/link-proxy.mjs).
// Not part of `npm test`; the figures are in docs/benchmarks.md.
//
//   node bench/regions.mjs [--rooms 20] [--rate 5] [--duration 20] [--latency 80]
//                          [--partition-seconds 10] [--concord <path of bin/concord.js>]
//
// Each room has a writer and a reader in each region (on alternating nodes). Every writer appends
// `{ at, id }` to a Y.Array --rate times a second for --duration seconds; readers record, for every
// item from the other region, the time from `at` to its arrival (one process, one clock), and for
// items of their own region on the other node, the cross-node time as a reference.
// Then, unless --partition-seconds 0: the link is partitioned for that long while both sides keep
// writing, healed, and the time until every reader holds every item is measured.
import { parseArgs } from 'node:util'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import WebSocket from 'ws'
import pg from 'pg'
import { createClient } from '@concord/client'
import { startPostgres, startRedis } from './lib/services.mjs'
import { LinkProxy } from './lib/link-proxy.mjs'
import { startServer, freePort, HOST, CLK_TCK, readCpuTicks, killAllChildren } from './lib/server-proc.mjs'
import { percentile, fmt } from './lib/stats.mjs'

const benchDir = dirname(fileURLToPath(import.meta.url))
const { values: opts } = parseArgs({
  options: {
    concord: { type: 'string', default: join(benchDir, '..', 'packages', 'server', 'bin', 'concord.js') },
    rooms: { type: 'string', default: '20' },
    rate: { type: 'string', default: '5' },
    duration: { type: 'string', default: '20' },
    latency: { type: 'string', default: '80' },
    'partition-seconds': { type: 'string', default: '10' },
  },
})
const ROOMS = Number(opts.rooms)
const RATE = Number(opts.rate)
const DURATION_S = Number(opts.duration)
const LATENCY = Number(opts.latency)
const PARTITION_S = Number(opts['partition-seconds'])
const sleep = ms => new Promise(r => setTimeout(r, ms))

const dirs = []
const cleanup = []
process.on('exit', () => { killAllChildren(); for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

async function region (name) {
  const [postgres, redis] = await Promise.all([startPostgres(), startRedis()])
  cleanup.push(async () => { postgres.stop(); await redis.stop() })
  const admin = new pg.Client({ connectionString: postgres.url })
  await admin.connect()
  await admin.query('CREATE DATABASE concord')
  await admin.end()
  const pgLink = new LinkProxy({ targetPort: postgres.port, latencyMs: LATENCY })
  const redisLink = new LinkProxy({ targetPort: redis.port, latencyMs: LATENCY })
  await Promise.all([pgLink.listen(), redisLink.listen()])
  cleanup.push(() => Promise.all([pgLink.close(), redisLink.close()]))
  return { name, postgres, redis, db: postgres.urlOf('concord'), pgLink, redisLink, nodes: [] }
}

async function node (self, peer) {
  const port = await freePort()
  const data = mkdtempSync(join(tmpdir(), `concord-bench-region-${self.name}-`))
  dirs.push(data)
  const peerDb = peer.db.replace(`:${peer.postgres.port}/`, `:${peer.pgLink.port}/`)
  const server = await startServer({
    argv: ['node', opts.concord, 'serve', '--port', String(port), '--host', HOST, '--data', data, '--auth', 'none', '--log-level', 'warn',
      '--store', self.db, '--redis', self.redis.url, '--region', self.name, '--peer-region', `${peer.name}=${peerDb},redis://127.0.0.1:${peer.redisLink.port}`,
      '--rate-limit-messages', '100000000', '--rate-limit-bytes', '100000000000', '--max-connections-per-ip', '1000000'],
    port, logFile: join(data, 'server.log'),
  })
  self.nodes.push({ port, url: `ws://${HOST}:${port}`, server })
}

function client (url) {
  return createClient({ url, WebSocket, reconnect: { minDelayMs: 50, maxDelayMs: 500 } })
}

const eu = await region('eu')
const us = await region('us')
await Promise.all([node(eu, us), node(eu, us), node(us, eu), node(us, eu)])
console.log(`regions bench: 2 regions × 2 nodes, link +${LATENCY} ms each way; ${ROOMS} rooms, a writer and a reader per region and room, ${RATE}/s per writer for ${DURATION_S} s`)
console.log(`  ${eu.postgres.version}; ${eu.redis.version}`)

const crossRegion = { 'eu→us': [], 'us→eu': [] }
const crossNode = []
const readers = []
const writers = []
for (let r = 0; r < ROOMS; r++) {
  const doc = `room-${r}`
  for (const [self, other] of [[eu, us], [us, eu]]) {
    const w = client(self.nodes[r % 2].url)
    const rd = client(self.nodes[(r + 1) % 2].url)
    const wh = w.open(doc)
    const rh = rd.open(doc)
    writers.push({ client: w, handle: wh, region: self.name, doc })
    const reader = { client: rd, handle: rh, region: self.name, doc, seen: new Set() }
    readers.push(reader)
    rh.doc.getArray('items').observe(event => {
      const now = Date.now()
      for (const delta of event.changes.delta) {
        for (const item of delta.insert ?? []) {
          reader.seen.add(item.id)
          if (item.region === self.name) {
            if (item.writerNode !== undefined) crossNode.push(now - item.at)
          } else {
            crossRegion[`${other.name}→${self.name}`].push(now - item.at)
          }
        }
      }
    })
  }
}
await Promise.all([...writers, ...readers].map(x => x.handle.whenSynced()))

const cpuBefore = new Map([...eu.nodes, ...us.nodes].map(n => [n.port, readCpuTicks(n.server.pid)]))
let sent = 0
/** Items written per room (every reader of a room must get them all). */
const sentTo = new Map()
async function writeFor (seconds, tag) {
  const until = Date.now() + seconds * 1000
  const interval = 1000 / RATE
  await Promise.all(writers.map(async (w, wi) => {
    // spread the writers over the interval
    await sleep((wi / writers.length) * interval)
    let i = 0
    while (Date.now() < until) {
      w.handle.doc.getArray('items').push([{ id: `${tag}-${wi}-${i++}`, at: Date.now(), region: w.region, writerNode: wi }])
      sent++
      sentTo.set(w.doc, (sentTo.get(w.doc) ?? 0) + 1)
      await sleep(interval)
    }
  }))
}

await writeFor(DURATION_S, 'steady')
const missing = r => Math.max(0, (sentTo.get(r.doc) ?? 0) - r.seen.size)
const deadline = Date.now() + 30_000
while (Date.now() < deadline && readers.some(r => missing(r) > 0)) await sleep(50)
const cpu = [...eu.nodes, ...us.nodes].reduce((s, n) => s + (readCpuTicks(n.server.pid) - cpuBefore.get(n.port)) / CLK_TCK, 0)
const lost = readers.reduce((s, r) => s + missing(r), 0)

const row = (name, list) => {
  const s = [...list].sort((a, b) => a - b)
  return `| ${name} | ${s.length} | ${fmt(percentile(s, 50), 1)} | ${fmt(percentile(s, 99), 1)} | ${fmt(s[s.length - 1] ?? 0, 1)} |`
}
console.log('\n| path | received | p50 (ms) | p99 (ms) | max (ms) |')
console.log('| --- | ---: | ---: | ---: | ---: |')
console.log(row('eu → us (cross-region)', crossRegion['eu→us']))
console.log(row('us → eu (cross-region)', crossRegion['us→eu']))
console.log(row('same region, other node', crossNode))
console.log(`\nsent ${sent}, missing at any reader after 30 s: ${lost}; server CPU (4 nodes) ${fmt(cpu, 2)} s over ${DURATION_S} s`)

if (PARTITION_S > 0) {
  for (const r of [eu, us]) { r.pgLink.partition(); r.redisLink.partition() }
  const start = Date.now()
  await writeFor(PARTITION_S, 'split')
  const written = Date.now() - start
  for (const r of [eu, us]) { r.pgLink.heal(); r.redisLink.heal() }
  const healedAt = Date.now()
  const catchUpDeadline = healedAt + 60_000
  while (Date.now() < catchUpDeadline && readers.some(r => missing(r) > 0)) await sleep(20)
  const caughtUp = readers.every(r => missing(r) === 0)
  console.log(`partition: ${fmt(written / 1000, 1)} s with both regions writing (${sent} items in all); after the link returned, every reader held every item ${caughtUp ? `in ${Date.now() - healedAt} ms` : 'NOT within 60 s'}`)
}

for (const x of [...writers, ...readers]) x.client.close()
for (const n of [...eu.nodes, ...us.nodes]) await n.server.stop()
for (const c of cleanup.reverse()) await c()
process.exit(0)
