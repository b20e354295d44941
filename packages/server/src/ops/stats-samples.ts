import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { DocumentRegistry } from '../documents/document-registry.js'
import type { FastHistogram, MetricsSources, ServerMetrics } from './metrics.js'

/** One point of the dashboard's charts. */
export interface StatsSample {
  /** ms since the epoch */
  t: number
  connections: number
  sessions: number
  documentsLoaded: number
  /** Client updates that changed a document, per second over the last interval. */
  updatesPerSecond: number
  /** Messages received per second over the last interval. */
  messagesInPerSecond: number
  /** Ack latency over the last interval (ms), estimated from the histogram; null without acks. */
  ackP50Ms: number | null
  ackP99Ms: number | null
  rssBytes: number
  heapUsedBytes: number
  /** Process CPU (user + system) over the last interval, 100 = one core busy; null before the first interval. */
  cpuPercent: number | null
  /** Event-loop delay over the last interval (p99, ms); null before the first interval. */
  eventLoopDelayMs: number | null
}

export interface BusyRoom {
  name: string
  sessions: number
  updatesPerSecond: number
  bytes: number
}

export interface StatsSnapshot {
  now: StatsSample
  intervalMs: number
  /** The samples kept, oldest first (named `history` in GET /admin/stats, which the dashboard reads). */
  history: StatsSample[]
  busiest: BusyRoom[]
}

type Buckets = { le: number; count: number }[]

/** Rooms listed as the busiest. */
const BUSIEST_ROOMS = 10

/** Whether a room with these figures is busier than `than`: more updates a second, then more sessions. */
function busier(updatesPerSecond: number, sessions: number, than: BusyRoom): boolean {
  return updatesPerSecond > than.updatesPerSecond || (updatesPerSecond === than.updatesPerSecond && sessions > than.sessions)
}

/**
 * The live dashboard's data: a sample of the server's figures every `intervalMs`
 * (default 2 s), the last `keep` of them (default 300: ten minutes), and the
 * busiest rooms of the last interval. Started by `start()`, stopped by `stop()`.
 */
export class StatsSamples {
  readonly #metrics: ServerMetrics
  readonly #sources: MetricsSources
  readonly #registry: DocumentRegistry
  readonly #intervalMs: number
  readonly #keep: number
  readonly #samples: StatsSample[] = []
  #timer: NodeJS.Timeout | null = null
  #last: { t: number; updates: number; messagesIn: number; ack: Buckets; perDoc: Map<string, number> } | null = null
  #busiest: BusyRoom[] = []
  #loopDelay: IntervalHistogram | null = null
  #cpu: { at: number; usage: NodeJS.CpuUsage } | null = null

  constructor(deps: { metrics: ServerMetrics; sources: MetricsSources; registry: DocumentRegistry; intervalMs?: number; keep?: number }) {
    this.#metrics = deps.metrics
    this.#sources = deps.sources
    this.#registry = deps.registry
    this.#intervalMs = deps.intervalMs ?? 2_000
    this.#keep = deps.keep ?? 300
  }

  start(): void {
    if (this.#timer !== null) return
    // 20 ms resolution: a delay shorter than that does not show, which is fine for a dashboard
    this.#loopDelay = monitorEventLoopDelay({ resolution: 20 })
    this.#loopDelay.enable()
    this.#cpu = { at: performance.now(), usage: process.cpuUsage() }
    void this.#sample()
    this.#timer = setInterval(() => { void this.#sample() }, this.#intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#loopDelay?.disable()
    this.#loopDelay = null
  }

  async snapshot(): Promise<StatsSnapshot> {
    const last = this.#samples[this.#samples.length - 1]
    const mem = process.memoryUsage()
    const now: StatsSample = {
      t: Date.now(),
      connections: this.#sources.connectionCount(),
      sessions: this.#sources.sessions(),
      documentsLoaded: this.#sources.documentsLoaded(),
      updatesPerSecond: last?.updatesPerSecond ?? 0,
      messagesInPerSecond: last?.messagesInPerSecond ?? 0,
      ackP50Ms: last?.ackP50Ms ?? null,
      ackP99Ms: last?.ackP99Ms ?? null,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      cpuPercent: last?.cpuPercent ?? null,
      eventLoopDelayMs: last?.eventLoopDelayMs ?? null,
    }
    return { now, intervalMs: this.#intervalMs, history: [...this.#samples], busiest: this.#busiest }
  }

  async #sample(): Promise<void> {
    const t = Date.now()
    const updates = await counterValue(this.#metrics.updatesApplied)
    const messagesIn = await this.#metrics.messagesReceived()
    const ack = await buckets(this.#metrics.ack)
    // a pass over the documents, allocating only for the ten busiest (at 10,000 documents a room
    // object per document and a sort held the event loop for tens of milliseconds every sample)
    const perDoc = new Map<string, number>()
    const prev = this.#last
    const seconds = prev === null ? 0 : (t - prev.t) / 1000
    const busiest: BusyRoom[] = []
    this.#registry.forEachDocument(doc => {
      const applied = doc.stats.updatesApplied
      perDoc.set(doc.name, applied)
      const before = prev?.perDoc.get(doc.name) ?? applied
      const updatesPerSecond = seconds > 0 ? Math.max(0, applied - before) / seconds : 0
      const sessions = doc.sessions.size
      if (busiest.length === BUSIEST_ROOMS) {
        const last = busiest[BUSIEST_ROOMS - 1]!
        if (!busier(updatesPerSecond, sessions, last)) return
        busiest.pop()
      }
      const room = { name: doc.name, sessions, updatesPerSecond, bytes: doc.stats.approxBytes }
      let i = busiest.length
      while (i > 0 && busier(updatesPerSecond, sessions, busiest[i - 1]!)) i--
      busiest.splice(i, 0, room)
    })
    this.#busiest = busiest
    const mem = process.memoryUsage()
    const sample: StatsSample = {
      t,
      connections: this.#sources.connectionCount(),
      sessions: this.#sources.sessions(),
      documentsLoaded: this.#sources.documentsLoaded(),
      updatesPerSecond: prev !== null && seconds > 0 ? (updates - prev.updates) / seconds : 0,
      messagesInPerSecond: prev !== null && seconds > 0 ? (messagesIn - prev.messagesIn) / seconds : 0,
      ackP50Ms: prev !== null ? quantileMs(difference(ack, prev.ack), 0.5) : null,
      ackP99Ms: prev !== null ? quantileMs(difference(ack, prev.ack), 0.99) : null,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      ...this.#processLoad(prev !== null),
    }
    this.#last = { t, updates, messagesIn, ack, perDoc }
    this.#samples.push(sample)
    if (this.#samples.length > this.#keep) this.#samples.shift()
  }

  /** CPU and event-loop delay since the previous sample (null for the first one, which has no interval). */
  #processLoad(hasInterval: boolean): { cpuPercent: number | null; eventLoopDelayMs: number | null } {
    let cpuPercent: number | null = null
    const before = this.#cpu
    if (before !== null) {
      const at = performance.now()
      const usage = process.cpuUsage()
      const elapsedUs = (at - before.at) * 1000
      if (hasInterval && elapsedUs > 0) cpuPercent = ((usage.user - before.usage.user) + (usage.system - before.usage.system)) / elapsedUs * 100
      this.#cpu = { at, usage }
    }
    let eventLoopDelayMs: number | null = null
    const h = this.#loopDelay
    if (h !== null) {
      // the histogram measures how late its 20 ms timer fires, so the resolution is taken off
      if (hasInterval && h.count > 0) eventLoopDelayMs = Math.max(0, h.percentile(99) / 1e6 - 20)
      h.reset()
    }
    return { cpuPercent, eventLoopDelayMs }
  }
}

async function counterValue(counter: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await counter.get()).values.reduce((n, v) => n + v.value, 0)
}

/** Cumulative bucket counts of a histogram, by upper bound (+Inf last). */
async function buckets(h: FastHistogram): Promise<Buckets> {
  const out: Buckets = []
  for (const v of (await h.get()).values) {
    if (!v.metricName?.endsWith('_bucket')) continue
    const le = v.labels.le
    out.push({ le: le === '+Inf' ? Infinity : Number(le), count: v.value })
  }
  return out.sort((a, b) => a.le - b.le)
}

function difference(now: Buckets, before: Buckets): Buckets {
  return now.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }))
}

/** The quantile of cumulative buckets, interpolated within its bucket (as Prometheus's histogram_quantile). */
export function quantileMs(cumulative: Buckets, q: number): number | null {
  const total = cumulative[cumulative.length - 1]?.count ?? 0
  if (total <= 0) return null
  const rank = q * total
  let lower = 0
  let below = 0
  for (const b of cumulative) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower * 1000
      const inBucket = b.count - below
      const share = inBucket > 0 ? (rank - below) / inBucket : 1
      return (lower + (b.le - lower) * share) * 1000
    }
    lower = b.le
    below = b.count
  }
  return lower * 1000
}
