#!/usr/bin/env node
// Where an idle connection's memory goes in a Concord server.
//
//   node --max-old-space-size=4096 bench/tools/heap-breakdown.mjs [y-websocket|native|hocuspocus|reference]
//        [--connections 5000] [--rooms N/10] [--no-awareness] [--top 40] [--keep DIR] [--allocations]
//
// Starts the server as `concord serve` (the memory scenario's command; `reference`: the
// y-websocket reference server) with --expose-gc and bench/tools/heap-probe.cjs preloaded, opens
// one warm-up connection and closes it, takes heap snapshot A (after two forced GCs), opens N
// connections over R rooms from this process (connection j joins room j mod R; each announces
// one awareness state unless --no-awareness), waits 3 s, and takes snapshot B. It prints the
// process figures (RSS, used heap, malloc'd memory, array buffers) per connection and the
// difference B - A of the heap's objects by kind, in bytes per connection: shallow sizes
// grouped by constructor (objects, closures) or, for arrays, strings and V8-internal nodes, by
// the object and field that holds them ("SocketSender.#drainWaiters"). Throwaway snapshots are
// deleted unless --keep names a folder.
//
// --allocations also samples every allocation the server makes while the connections open and
// settle (the inspector's sampling heap profiler, objects collected since included) and prints
// them per connection by the function that allocated them, and by the server's own functions
// they were allocated under. What connecting allocates matters for idle memory too: the young
// objects of many simultaneous connects survive into the old generation, and the memory
// scenario reads RSS before a full collection has freed them.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createClient, connectAll } from '../lib/clients.mjs'
import { freePort } from '../lib/server-proc.mjs'

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '5000' },
    rooms: { type: 'string' },
    'no-awareness': { type: 'boolean' },
    top: { type: 'string', default: '40' },
    keep: { type: 'string' },
    allocations: { type: 'boolean' }
  }
})
const target = positionals[0] ?? 'y-websocket'
if (!['y-websocket', 'native', 'hocuspocus', 'reference'].includes(target)) throw new Error(`unknown target ${target}`)
const protocol = target === 'reference' ? 'y-websocket' : target
const N = Number(args.connections)
const R = Number(args.rooms ?? Math.max(1, Math.round(N / 10)))
const TOP = Number(args.top)
const root = fileURLToPath(new URL('../..', import.meta.url))
const probe = fileURLToPath(new URL('./heap-probe.cjs', import.meta.url))
const dir = args.keep ?? mkdtempSync(join(tmpdir(), 'heap-breakdown-'))
mkdirSync(dir, { recursive: true })
const dataDir = mkdtempSync(join(tmpdir(), 'heap-breakdown-data-'))

const port = await freePort()
const serverArgs = target === 'reference'
  ? ['node_modules/@y/websocket-server/src/server.js']
  : ['packages/server/bin/concord.js', 'serve', '--port', String(port), '--host', '127.0.0.1', '--data', dataDir, '--auth', 'none', '--log-level', 'warn',
      '--rate-limit-messages', '100000000', '--rate-limit-bytes', '100000000000', '--max-connections-per-ip', '1000000']
const child = spawn(process.execPath, ['--expose-gc', '-r', probe, ...serverArgs], {
  cwd: root,
  env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) },
  stdio: ['ignore', 'inherit', 'inherit', 'ipc']
})
const ask = (msg) => new Promise((resolve) => {
  const on = (m) => { if (m?.heapProbe) { child.off('message', on); resolve(m) } }
  child.on('message', on)
  child.send({ heapProbe: true, ...msg })
})
/** Constructors too common to tell anything apart by themselves. */
const GENERIC = new Set(['Object', 'Array', 'Map', 'Set', 'closure ', 'system / Context', 'Promise', 'Uint8Array', 'ArrayBuffer', 'Buffer', 'closure native_bind'])

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))
const baseUrl = `ws://127.0.0.1:${port}`

try {
  for (let i = 0; ; i++) {
    try {
      const c = createClient(`${baseUrl}/heap-warmup`, { protocol })
      await c.connect({ timeoutMs: 2000 })
      c.sendAwareness({ user: { name: 'warm-up' } })
      await sleep(200)
      await c.close()
      break
    } catch (e) {
      if (i > 100) throw e
      await sleep(200)
    }
  }
  await sleep(1000)
  // snapshot A first: writing a snapshot leaves memory behind, so both readings come after one
  const { snapshot: snapA } = await ask({ snapshot: join(dir, 'a.heapsnapshot') })
  await sleep(500)
  const a = await ask({})
  if (args.allocations) await ask({ allocations: 'start' })
  const clients = Array.from({ length: N }, (_, j) => createClient(`${baseUrl}/heap-room-${j % R}`, { protocol }))
  const errors = await connectAll(clients, {
    concurrency: 50,
    timeoutMs: 60000,
    onConnected: args['no-awareness'] ? undefined : (c, k) => c.sendAwareness({ user: { name: `bench-${k}` } })
  })
  if (errors.length > 0) throw new Error(`${errors.length} connections failed: ${errors[0]}`)
  await sleep(3000)
  const sampled = args.allocations ? (await ask({ allocations: 'stop' })).profile : null
  const b = await ask({})
  const { snapshot: snapB } = await ask({ snapshot: join(dir, 'b.heapsnapshot') })
  const open = clients.filter(c => c.ws && c.ws.readyState === 1).length

  const per = (k) => (b[k] - a[k]) / open
  console.log(`${target}: ${open} idle connections, ${R} rooms${args['no-awareness'] ? '' : ', 1 awareness state each'} (after forced GC)`)
  console.log(`  per connection: RSS ${(per('rss') / 1024).toFixed(2)} KiB (anon ${((b.rssAnonKB - a.rssAnonKB) / open).toFixed(2)} KiB), used heap ${(per('heapUsed') / 1024).toFixed(2)} KiB, ` +
    `heap total ${(per('heapTotal') / 1024).toFixed(2)} KiB, external ${(per('external') / 1024).toFixed(2)} KiB (array buffers ${(per('arrayBuffers') / 1024).toFixed(2)}), malloc'd by V8 ${(per('mallocedMemory') / 1024).toFixed(2)} KiB`)

  console.log('  heap spaces, per connection (KiB): ' + Object.keys(b.spaces).map(k => {
    const d = (f) => ((b.spaces[k][f] - (a.spaces[k]?.[f] ?? 0)) / open / 1024).toFixed(2)
    return `${k} size ${d('size')} used ${d('used')}`
  }).join('; '))
  const sa = aggregate(JSON.parse(readFileSync(snapA, 'utf8')))
  const sb = aggregate(JSON.parse(readFileSync(snapB, 'utf8')))
  const rows = []
  for (const [key, v] of sb.groups) {
    const w = sa.groups.get(key) ?? { count: 0, size: 0 }
    rows.push({ key, count: (v.count - w.count) / open, size: (v.size - w.size) / open })
  }
  for (const [key, w] of sa.groups) if (!sb.groups.has(key)) rows.push({ key, count: -w.count / open, size: -w.size / open })
  rows.sort((x, y) => y.size - x.size)
  const total = (sb.total - sa.total) / open
  console.log(`  heap snapshot, shallow sizes B - A: ${total.toFixed(0)} B per connection; the largest ${TOP} groups:`)
  console.log('    bytes/conn  objects/conn  group')
  for (const r of rows.slice(0, TOP)) console.log(`    ${r.size.toFixed(0).padStart(10)}  ${r.count.toFixed(2).padStart(12)}  ${r.key}`)
  if (sampled !== null) printAllocations(sampled, open)
  await Promise.all(clients.map(c => c.close()))
} finally {
  child.kill('SIGTERM')
  rmSync(dataDir, { recursive: true, force: true })
  if (!args.keep) rmSync(dir, { recursive: true, force: true })
}
process.exit(0)

/** Shallow sizes of a snapshot's nodes grouped by kind (see the top of this file). */
function aggregate (snap) {
  const { node_fields: nf, edge_fields: ef, node_types: [types], edge_types: [etypes] } = snap.snapshot.meta
  const NF = nf.length
  const EF = ef.length
  const iType = nf.indexOf('type')
  const iName = nf.indexOf('name')
  const iSize = nf.indexOf('self_size')
  const iEdges = nf.indexOf('edge_count')
  const eType = ef.indexOf('type')
  const eName = ef.indexOf('name_or_index')
  const eTo = ef.indexOf('to_node')
  const { nodes, edges, strings } = snap
  const count = nodes.length / NF
  // the first strong retainer of each node, and the edge's name
  const owner = new Int32Array(count).fill(-1)
  const ownerEdge = new Array(count)
  for (let n = 0, e = 0; n < count; n++) {
    const ne = nodes[n * NF + iEdges]
    for (let k = 0; k < ne; k++, e += EF) {
      const to = edges[e + eTo] / NF
      const et = etypes[edges[e + eType]]
      if (et === 'weak' || owner[to] !== -1) continue
      owner[to] = n
      ownerEdge[to] = et === 'element' || et === 'hidden' ? `[${edges[e + eName]}]` : strings[edges[e + eName]]
    }
  }
  const nameOf = (n) => strings[nodes[n * NF + iName]]
  const typeOf = (n) => types[nodes[n * NF + iType]]
  const label = (n) => {
    const t = typeOf(n)
    if (t === 'object' || t === 'closure' || t === 'regexp') return `${t === 'closure' ? 'closure ' : ''}${nameOf(n)}`
    return null
  }
  /** The nearest object or closure above `n` (through arrays and internal nodes), with the path's first field. */
  const holder = (n) => {
    let cur = n
    let field = ''
    for (let depth = 0; depth < 6 && owner[cur] !== -1; depth++) {
      field = ownerEdge[cur] + (field ? `.${field}` : '')
      cur = owner[cur]
      const l = label(cur)
      if (l !== null && !GENERIC.has(l)) return `${l}.${field}`
    }
    return cur === n ? '(root)' : `${typeOf(cur)} ${nameOf(cur).slice(0, 40)}.${field}`
  }
  const groups = new Map()
  let total = 0
  for (let n = 0; n < count; n++) {
    const size = nodes[n * NF + iSize]
    total += size
    const t = typeOf(n)
    let key = label(n)
    if (key === null) {
      const name = t === 'string' || t === 'concatenated string' || t === 'sliced string' || t === 'number' ? '' : ` ${nameOf(n).slice(0, 50)}`
      key = `(${t}${name}) in ${holder(n)}`
    } else if (GENERIC.has(key)) {
      // a plain object, array, collection or closure says little by itself: name who holds it
      key = `${key} in ${holder(n)}`
    }
    const g = groups.get(key)
    if (g) { g.count++; g.size += size } else groups.set(key, { count: 1, size })
  }
  return { groups, total }
}

/** A sampling heap profile: allocated bytes per connection by allocating function, and under the server's own functions. */
function printAllocations (profile, open) {
  const frame = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(root, '').replace(/^file:\/\//, '')}:${n.callFrame.lineNumber + 1}`
  const stacks = new Map()
  const walk = (n, stack) => {
    const here = [...stack, frame(n)]
    stacks.set(n.id, here)
    for (const c of n.children) walk(c, here)
  }
  walk(profile.head, [])
  const self = new Map()
  const under = new Map()
  let total = 0
  for (const { nodeId, size } of profile.samples) {
    total += size
    const stack = stacks.get(nodeId)
    const top = stack.at(-1)
    self.set(top, (self.get(top) ?? 0) + size)
    for (const f of new Set(stack)) if (f.startsWith('packages/') || f.includes(' packages/')) under.set(f, (under.get(f) ?? 0) + size)
  }
  const print = (map) => {
    for (const [k, v] of [...map].sort((x, y) => y[1] - x[1]).slice(0, TOP)) console.log(`    ${(v / open).toFixed(0).padStart(10)}  ${k}`)
  }
  console.log(`  allocated while connecting and settling (sampled, collected objects included): ${(total / open / 1024).toFixed(1)} KiB per connection; by allocating function, bytes/conn:`)
  print(self)
  console.log('  by the server\'s own functions they were allocated under (inclusive), bytes/conn:')
  print(under)
}
