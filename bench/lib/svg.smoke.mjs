// Smoke test for lib/svg.mjs: renders example charts from synthetic data to
// /tmp/svg-smoke/*.svg, checks that each one is well-formed, prints sizes and
// timings, and exits non-zero on any problem.
//
//   node bench/lib/svg.smoke.mjs [outDir]
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { barChart, latencyHistogram, niceTicks, timeSeries } from './svg.mjs'

const outDir = process.argv[2] || '/tmp/svg-smoke'
const problems = []

// ------------------------------------------------------------ synthetic data

/** Deterministic PRNG (mulberry32). */
function rng (seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function normal (rand) {
  const u = 1 - rand()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand())
}

/** n log-normal samples around `median` ms, with a share `tail` of slow ones around `tailMs`. */
function latencies (n, { median, sigma, tail = 0, tailMs = 0, seed }) {
  const rand = rng(seed)
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const slow = rand() < tail
    out[i] = (slow ? tailMs : median) * Math.exp((slow ? 0.4 : sigma) * normal(rand))
  }
  return out
}

function updatesPerSecond (seconds, { rate, ramp, noise, seed, gapAt = Infinity }) {
  const rand = rng(seed)
  const points = []
  for (let t = 0.1; t <= seconds + 1e-9; t += 0.1) {
    const ts = Math.round(t * 10) / 10
    const level = rate * Math.min(1, ts / ramp)
    const v = ts >= gapAt && ts < gapAt + 1.5 ? null : Math.max(0, level + level * noise * normal(rand))
    points.push([ts, v])
  }
  return points
}

// ------------------------------------------------------------ checks

/** Minimal well-formedness check: one root, balanced and properly nested tags, sane text. */
function check (name, svg) {
  const fail = (msg) => problems.push(`${name}: ${msg}`)
  if (!svg.startsWith('<svg')) fail('does not start with <svg')
  if (!svg.endsWith('</svg>')) fail('does not end with </svg>')
  for (const bad of ['NaN', 'undefined', 'Infinity', '[object']) if (svg.includes(bad)) fail(`contains "${bad}"`)
  if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(svg)) fail('unescaped &')
  const stack = []
  let roots = 0
  let opened = 0
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g
  let last = 0
  let m
  while ((m = tag.exec(svg))) {
    const between = svg.slice(last, m.index)
    if (between.includes('<') || between.includes('>')) fail(`stray < or > near offset ${m.index}: ${JSON.stringify(between.slice(0, 60))}`)
    last = tag.lastIndex
    const [, close, name2, , selfClose] = m
    if (close) {
      const top = stack.pop()
      if (top !== name2) { fail(`</${name2}> closes <${top}> at offset ${m.index}`); break }
    } else {
      opened++
      if (stack.length === 0) roots++
      if (!selfClose) stack.push(name2)
    }
  }
  if (svg.slice(last).trim()) fail('text after the root element')
  if (stack.length) fail(`unclosed: ${stack.join(' > ')}`)
  if (roots !== 1) fail(`${roots} root elements`)
  return opened
}

function expectEqual (what, actual, expected) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) problems.push(`${what}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`)
}

// ------------------------------------------------------------ niceTicks

expectEqual('niceTicks(0, 47)', niceTicks(0, 47), [0, 10, 20, 30, 40, 50])
expectEqual('niceTicks(0, 1)', niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1])
expectEqual('niceTicks(0.1, 29.9, 7)', niceTicks(0.1, 29.9, 7), [0, 5, 10, 15, 20, 25, 30])
expectEqual('niceTicks(-3, 7)', niceTicks(-3, 7), [-4, -2, 0, 2, 4, 6, 8])
expectEqual('niceTicks(0, 0)', niceTicks(0, 0), [0, 0.2, 0.4, 0.6, 0.8, 1])
expectEqual('niceTicks(5, 5)', niceTicks(5, 5), [2, 3, 4, 5, 6, 7, 8])
expectEqual('niceTicks(NaN, 1)', niceTicks(NaN, 1), [0, 1])
expectEqual('niceTicks(0, 0.3)', niceTicks(0, 0.3), [0, 0.1, 0.2, 0.3])

// ------------------------------------------------------------ charts

const withJunk = latencies(100_000, { median: 0.9, sigma: 0.9, seed: 3 })
withJunk.set([0, -1, -0.5, NaN, Infinity, 1e-9], 0)

const concord = latencies(500_000, { median: 1.2, sigma: 0.45, tail: 0.015, tailMs: 18, seed: 1 })
const reference = latencies(200_000, { median: 2.6, sigma: 0.7, tail: 0.02, tailMs: 40, seed: 2 })

const charts = [
  ['latency-3-servers', () => latencyHistogram({
    title: 'Round-trip latency, 50 rooms × 10 clients, 2 updates/s',
    series: [
      { name: 'concord', samplesMs: concord },
      { name: 'y-websocket', samplesMs: reference },
      { name: 'hocuspocus', samplesMs: withJunk }
    ]
  })],
  ['latency-close-percentiles', () => latencyHistogram({
    title: 'Latency, four servers with nearly equal medians',
    series: [
      { name: 'a', samplesMs: latencies(50_000, { median: 1.0, sigma: 0.3, seed: 4 }) },
      { name: 'b', samplesMs: latencies(50_000, { median: 1.05, sigma: 0.3, seed: 5 }) },
      { name: 'c', samplesMs: latencies(50_000, { median: 1.1, sigma: 0.35, seed: 6 }) },
      { name: 'd', samplesMs: latencies(50_000, { median: 1.2, sigma: 0.3, seed: 7 }) }
    ]
  })],
  ['latency-single-narrow', () => latencyHistogram({
    title: 'Single series, narrow range',
    series: [{ name: 'concord', samplesMs: Array.from({ length: 2000 }, (_, i) => 3 + (i % 100) / 100) }]
  })],
  ['latency-one-empty', () => latencyHistogram({
    title: 'One series without samples',
    series: [{ name: 'concord', samplesMs: latencies(10_000, { median: 0.2, sigma: 0.5, seed: 8 }) }, { name: 'reference', samplesMs: [] }]
  })],
  ['latency-small-untitled', () => latencyHistogram({
    width: 480,
    height: 260,
    series: [{ name: 'concord', samplesMs: concord.subarray(0, 20_000) }, { name: 'reference', samplesMs: reference.subarray(0, 20_000) }]
  })],
  ['latency-empty', () => latencyHistogram({ title: 'No samples at all', series: [{ name: 'a', samplesMs: [] }, { name: 'b', samplesMs: new Float64Array(0) }] })],
  ['timeseries', () => timeSeries({
    title: 'Updates received per second (100 ms windows)',
    yLabel: 'updates/s',
    series: [
      { name: 'concord', points: updatesPerSecond(30, { rate: 9800, ramp: 2, noise: 0.04, seed: 9 }) },
      { name: 'y-websocket', points: updatesPerSecond(30, { rate: 7200, ramp: 4, noise: 0.09, seed: 10, gapAt: 12 }) },
      { name: 'hocuspocus', points: updatesPerSecond(27, { rate: 5100, ramp: 1, noise: 0.15, seed: 11 }) }
    ]
  })],
  ['timeseries-few-points', () => timeSeries({
    title: 'RSS while connecting',
    yLabel: 'RSS (MiB)',
    xLabel: 'connections open (thousands)',
    series: [{ name: 'concord', points: [[0, 61.5], [1, 80.2], [2, 97.9], [5, 151], [10, 240.4]] }]
  })],
  ['timeseries-empty', () => timeSeries({ title: 'Empty time series', yLabel: 'updates/s', series: [{ name: 'a', points: [] }, { name: 'b', points: [[1, null]] }] })],
  ['bars', () => barChart({
    title: 'Memory per idle connection <RSS after settle> & "awareness" on',
    categories: ['1,000 conns', '5,000 conns', '10,000 conns'],
    yLabel: 'KiB per connection',
    series: [
      { name: 'concord', values: [41.3, 38.9, 37.2] },
      { name: 'y-websocket', values: [58.1, 55.4, null] },
      { name: 'hocuspocus', values: [96.5, 91.2, 90.7] }
    ]
  })],
  ['bars-many', () => barChart({
    title: 'Six scenarios, four servers (narrow bars: rotated labels)',
    categories: ['trace replay', 'fan-out 50×10', 'idle memory', 'a rather long category name that does not fit', 'cold start', 'reconnect storm'],
    yLabel: 'CPU seconds',
    series: [
      { name: 'concord', values: [12.345, 3.5, 0.42, 1234.5, 0.05, 18] },
      { name: 'y-websocket', values: [15.9, 4.1, null, 980, 0.07, 22.25] },
      { name: 'hocuspocus', values: [22.1, 6.3, 0.9, 1500, null, 31] },
      { name: 'another server', values: [9.7, 2.9, 0.3, 870, 0.04, 15] }
    ]
  })],
  ['bars-single', () => barChart({
    title: 'Single series with a negative value',
    categories: ['a', 'b', 'c', 'd'],
    yLabel: 'Δ throughput (%)',
    series: [{ name: 'concord vs reference', values: [12.5, -4.2, 0, 33] }]
  })],
  ['bars-empty', () => barChart({ title: 'No categories', series: [] })]
]

mkdirSync(outDir, { recursive: true })
console.log(`writing to ${outDir}`)
console.log('chart'.padEnd(28) + 'bytes'.padStart(9) + 'elements'.padStart(10) + 'ms'.padStart(9))
for (const [name, render] of charts) {
  let svg
  const t0 = performance.now()
  try {
    svg = render()
  } catch (err) {
    problems.push(`${name}: threw ${err?.stack || err}`)
    continue
  }
  const ms = performance.now() - t0
  const elements = check(name, svg)
  writeFileSync(join(outDir, `${name}.svg`), svg)
  console.log(name.padEnd(28) + String(svg.length).padStart(9) + String(elements).padStart(10) + ms.toFixed(1).padStart(9))
  if (ms > 3000) problems.push(`${name}: took ${ms.toFixed(0)} ms`)
}

// 1e6 samples: bucketing must stay fast
{
  const big = latencies(1_000_000, { median: 2, sigma: 0.8, seed: 12 })
  const t0 = performance.now()
  const svg = latencyHistogram({ title: '1e6 samples', series: [{ name: 'x', samplesMs: big }] })
  const ms = performance.now() - t0
  check('latency-1e6', svg)
  console.log('latency-1e6 (not written)'.padEnd(28) + String(svg.length).padStart(9) + ''.padStart(10) + ms.toFixed(1).padStart(9))
  if (ms > 1500) problems.push(`latency-1e6: took ${ms.toFixed(0)} ms`)
}

if (problems.length) {
  console.error(`\n${problems.length} problem(s):\n` + problems.map((p) => '  - ' + p).join('\n'))
  process.exit(1)
}
console.log('\nall charts OK')
