// Preloaded into a server process by heap-breakdown.mjs (node --expose-gc -r ./heap-probe.cjs ...).
// On an IPC message { snapshot: path } it collects garbage, writes a heap snapshot to `path` and
// answers with the process's memory figures; on { stats: true } it answers the figures alone; on
// { allocations: 'start' } it starts the inspector's sampling heap profiler (every allocation
// counted, collected or not), and { allocations: 'stop' } answers with its profile.
// Loaded only by that tool: it changes nothing else in the process.
'use strict'
const v8 = require('node:v8')
const { readFileSync } = require('node:fs')

function figures () {
  if (global.gc) { global.gc(); global.gc() }
  const mu = process.memoryUsage()
  const hs = v8.getHeapStatistics()
  const status = readFileSync('/proc/self/status', 'utf8')
  const kB = (key) => Number((status.match(new RegExp(`^${key}:\\s+(\\d+)`, 'm')) ?? [])[1] ?? NaN)
  return {
    rss: mu.rss,
    heapUsed: mu.heapUsed,
    heapTotal: mu.heapTotal,
    external: mu.external,
    arrayBuffers: mu.arrayBuffers,
    mallocedMemory: hs.malloced_memory,
    rssAnonKB: kB('RssAnon'),
    rssFileKB: kB('RssFile'),
    spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map(s => [s.space_name, { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size }]))
  }
}

/** The inspector's sampling heap profiler, counting every allocation (collected ones too). */
let profiler = null
async function allocations (m) {
  if (m.allocations === 'start') {
    const inspector = require('node:inspector')
    const session = new inspector.Session()
    session.connect()
    const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (e, r) => e ? reject(e) : resolve(r)))
    profiler = post
    await post('HeapProfiler.enable')
    await post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
    return {}
  }
  const { profile } = await profiler('HeapProfiler.stopSampling')
  return { profile }
}

if (process.send) {
  process.on('message', async (m) => {
    if (m === null || typeof m !== 'object' || !('heapProbe' in m)) return
    if (m.allocations) {
      process.send({ heapProbe: true, ...(await allocations(m)) })
      return
    }
    const out = figures()
    if (m.snapshot) out.snapshot = v8.writeHeapSnapshot(m.snapshot)
    process.send({ heapProbe: true, ...out })
  })
  // an IPC channel would keep the process alive after the server stops
  process.channel?.unref()
}
