// Small numeric helpers for reports.
import { monitorEventLoopDelay } from 'node:perf_hooks'

/** Nearest-rank percentile (p in 0..100) of an ascending-sorted array. */
export function percentile (sorted, p) {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

/** Formats a number with `digits` decimals and thousands separators; '–' for NaN. */
export function fmt (x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–'
  return Number(x).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** Milliseconds with one decimal and no separators, '–' when not finite (a cell holding two figures). */
export const ms1 = (ms) => Number.isFinite(ms) ? ms.toFixed(1) : '–'

/** The values of several Float64Arrays in one, sorted ascending. */
export function sortedConcat (arrays) {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0))
  let off = 0
  for (const a of arrays) { out.set(a, off); off += a.length }
  return out.sort()
}

/** Integer count with separators. */
export const int = (x) => fmt(x, 0)

/**
 * Latencies in 0.1 ms buckets up to 60 s (the last bucket holds everything above): millions of
 * samples at a fixed cost, percentiles to 0.1 ms. `sample` keeps every `every`-th value for charts.
 */
export class LatencyHistogram {
  constructor (every = 16) {
    this.counts = new Uint32Array(600_001)
    this.n = 0
    this.every = every
    this.sample = []
  }

  add (ms) {
    const b = ms <= 0 ? 0 : Math.min(600_000, Math.round(ms * 10))
    this.counts[b]++
    if (this.n++ % this.every === 0) this.sample.push(ms)
  }

  /** Adds another histogram's counts (e.g. one a worker sent). */
  merge (counts, n, sample) {
    for (let i = 0; i < counts.length; i++) if (counts[i] !== 0) this.counts[i] += counts[i]
    this.n += n
    for (const x of sample) this.sample.push(x)
  }

  /** Nearest-rank percentile in ms (NaN when empty). */
  percentile (p) {
    if (this.n === 0) return NaN
    const rank = Math.max(1, Math.ceil((p / 100) * this.n))
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]
      if (seen >= rank) return i / 10
    }
    return NaN
  }
}

/**
 * An event-loop delay monitor whose figures are the delay beyond the timer's own period: Node's
 * histogram records the whole interval between timer runs (an idle loop reads `resolutionMs`).
 */
export function loopDelayMonitor (resolutionMs = 5) {
  const h = monitorEventLoopDelay({ resolution: resolutionMs })
  const beyond = (ns) => Math.max(0, ns / 1e6 - resolutionMs)
  return {
    enable: () => h.enable(),
    disable: () => h.disable(),
    reset: () => h.reset(),
    p99Ms: () => beyond(h.percentile(99)),
    maxMs: () => beyond(h.max)
  }
}
