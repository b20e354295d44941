import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { FRAME_KINDS } from '@concord/protocol'
import type { DocumentMetrics } from '../documents/ports.js'

/** What the gauges read when /metrics is scraped. */
export interface MetricsSources {
  /** With the bytes queued for all sockets: a pass over every socket (for scrapes). */
  connections(): { native: number; yWebsocket: number; hocuspocus?: number; pendingBytes: number }
  /** Open sockets, without the pass over them (the dashboard samples this every 2 s). */
  connectionCount(): number
  sessions(): number
  documentsLoaded(): number
}

export type Protocol = 'native' | 'y-websocket' | 'hocuspocus'

/** Latency buckets in seconds: 0.25 ms to 10 s. */
const LATENCY_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

const NATIVE_KIND_NAMES: string[] = []
for (const [name, kind] of Object.entries(FRAME_KINDS)) NATIVE_KIND_NAMES[kind] = name.toLowerCase()

/** The kind of a native frame, from its first byte (kinds are below 128, one byte). */
export function nativeKind(first: number | undefined): string {
  return (first !== undefined && NATIVE_KIND_NAMES[first]) || 'unknown'
}

/** The kind of a y-websocket message, from its first two bytes. */
export function yWebsocketKind(message: Uint8Array): string {
  switch (message[0]) {
    case 0: return message[1] === 0 ? 'sync_step1' : message[1] === 1 ? 'sync_step2' : message[1] === 2 ? 'update' : 'sync'
    case 1: return 'awareness'
    case 2: return 'auth'
    case 3: return 'query_awareness'
    default: return 'unknown'
  }
}

const HOCUSPOCUS_KIND_NAMES = ['sync', 'awareness', 'auth', 'query_awareness', 'sync_reply', 'stateless', 'broadcast_stateless', 'close', 'sync_status', 'ping', 'pong']

/** The kind of a Hocuspocus message: its type follows the routing key (a varString), or it is a one-byte ping or pong. */
export function hocuspocusKind(message: Uint8Array, next?: Uint8Array): string {
  if (message.length === 1 && next === undefined) return HOCUSPOCUS_KIND_NAMES[message[0]!] ?? 'unknown'
  // a key shorter than 128 bytes has a one-byte length
  const length = message[0]
  if (length === undefined || length >= 0x80) return 'unknown'
  // a message sent as parts may have the routing key alone as its first part
  const type = 1 + length < message.length ? message[1 + length] : next?.[0]
  return HOCUSPOCUS_KIND_NAMES[type ?? -1] ?? 'unknown'
}

type Labels = Record<string, string>
type Cells = { messages: { value: number }; bytes: { value: number } }

/** What the registry formats: one metric and its values (prom-client's metric interface). */
export interface ExposedMetric {
  name: string
  help: string
  type: 'counter' | 'histogram'
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[]
  aggregator: 'sum'
}

/**
 * A histogram for hot paths: an observation is a short loop over the bounds and two
 * additions (prom-client's own takes about 200 ns, ten times as long). Exposed through the
 * registry as a Prometheus histogram.
 */
export class FastHistogram {
  readonly name: string
  readonly help: string
  readonly #bounds: number[]
  readonly #counts: Float64Array
  #sum = 0
  #count = 0

  constructor(name: string, help: string, bounds: number[]) {
    this.name = name
    this.help = help
    this.#bounds = bounds
    this.#counts = new Float64Array(bounds.length)
  }

  observe(value: number): void {
    const b = this.#bounds
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        this.#counts[i]!++
        break
      }
    }
    this.#sum += value
    this.#count++
  }

  /** prom-client's metric interface (the registry formats what this returns). */
  async get(): Promise<ExposedMetric> {
    const values: ExposedMetric['values'] = []
    let cumulative = 0
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i]!
      values.push({ value: cumulative, labels: { le: this.#bounds[i]! }, metricName: `${this.name}_bucket` })
    }
    values.push({ value: this.#count, labels: { le: '+Inf' }, metricName: `${this.name}_bucket` })
    values.push({ value: this.#sum, labels: {}, metricName: `${this.name}_sum` })
    values.push({ value: this.#count, labels: {}, metricName: `${this.name}_count` })
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' }
  }

  reset(): void {
    this.#counts.fill(0)
    this.#sum = 0
    this.#count = 0
  }
}

/** A labelled counter for hot paths: the caller keeps the cell and adds to it (a property increment). */
export class FastCounter {
  readonly name: string
  readonly help: string
  readonly #cells = new Map<string, { labels: Labels; value: number }>()

  constructor(name: string, help: string) {
    this.name = name
    this.help = help
  }

  /** The cell of these labels (keep it: adding to `value` is the increment). */
  cell(key: string, labels: Labels): { labels: Labels; value: number } {
    let c = this.#cells.get(key)
    if (c === undefined) {
      c = { labels, value: 0 }
      this.#cells.set(key, c)
    }
    return c
  }

  cells(): IterableIterator<{ labels: Labels; value: number }> {
    return this.#cells.values()
  }

  async get(): Promise<ExposedMetric> {
    return { name: this.name, help: this.help, type: 'counter', values: [...this.#cells.values()].map(c => ({ value: c.value, labels: c.labels })), aggregator: 'sum' }
  }

  reset(): void {
    for (const c of this.#cells.values()) c.value = 0
  }
}

/**
 * The server's Prometheus metrics (`/metrics`), in a registry of its own so that
 * several servers in one process do not mix. Names follow `concord_<what>_<unit>`.
 * Hot paths use pre-resolved label children, so counting a message is a map
 * lookup and an addition.
 *
 * About 20 public members, over the ~15 of a class here, on purpose: it is a catalogue with one
 * member per metric family, each layer sees only the part it uses (`DocumentMetrics`,
 * `GatewayMetrics`), and grouping them would add a lookup on the hot paths for no reader's gain.
 */
export class ServerMetrics implements DocumentMetrics {
  readonly registry = new Registry()
  readonly #messages = new FastCounter('concord_messages_total', 'WebSocket messages, by direction (in, out), protocol and kind.')
  readonly #bytes = new FastCounter('concord_message_bytes_total', 'WebSocket message bytes, by direction (in, out), protocol and kind.')
  readonly #children = {
    in: { native: new Map<string, Cells>(), 'y-websocket': new Map<string, Cells>(), hocuspocus: new Map<string, Cells>() },
    out: { native: new Map<string, Cells>(), 'y-websocket': new Map<string, Cells>(), hocuspocus: new Map<string, Cells>() },
  }
  readonly #refused: Counter<'code'>
  readonly #presence: Counter<'source'>
  readonly updatesApplied: Counter
  readonly updateApply: FastHistogram
  readonly fanout: FastHistogram
  readonly updateDelivery: FastHistogram
  readonly storageAppend: FastHistogram
  readonly ack: FastHistogram
  readonly backplaneLag: FastHistogram
  readonly #compactions: Counter<'result'>
  readonly backplanePublished: Counter
  /** Yjs encodes of a document's state on the main thread to answer a sync step 1 (each walks the whole document). */
  readonly syncFullEncodes: Counter
  readonly #syncReplies: Counter<'source'>
  /** Sync step 1 frames answered by the reply to a later one (one reply outstanding per session and document). */
  readonly syncStep1Coalesced: Counter
  readonly #webhooks: Counter<'event' | 'result'>
  readonly #webhooksDropped: Counter
  readonly #hookFailures: Counter
  readonly #regionLag: Gauge<'peer'>
  readonly #regionQueue: Gauge<'peer'>
  readonly #regionDelay: Histogram<'peer'>
  readonly #regionShipped: Counter<'peer'>
  #sources: MetricsSources | null = null

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry]
    const sources = (): MetricsSources | null => this.#sources
    new Gauge({
      name: 'concord_connections', help: 'Open WebSocket connections, by protocol.', labelNames: ['protocol'], registers,
      collect() {
        const c = sources()?.connections()
        this.set({ protocol: 'native' }, c?.native ?? 0)
        this.set({ protocol: 'y-websocket' }, c?.yWebsocket ?? 0)
        this.set({ protocol: 'hocuspocus' }, c?.hocuspocus ?? 0)
      },
    })
    new Gauge({
      name: 'concord_send_pending_bytes', help: 'Bytes queued for clients that have not read them yet.', registers,
      collect() { this.set(sources()?.connections().pendingBytes ?? 0) },
    })
    new Gauge({
      name: 'concord_sessions', help: 'Open document sessions (a native socket may hold several).', registers,
      collect() { this.set(sources()?.sessions() ?? 0) },
    })
    new Gauge({
      name: 'concord_documents_loaded', help: 'Documents held in memory on this node.', registers,
      collect() { this.set(sources()?.documentsLoaded() ?? 0) },
    })
    this.registry.registerMetric(this.#messages as never)
    this.registry.registerMetric(this.#bytes as never)
    this.#refused = new Counter({ name: 'concord_refused_total', help: 'Refusals, rate limits and dropped or closed sessions, by error code.', labelNames: ['code'], registers })
    this.#presence = new Counter({ name: 'concord_presence_updates_total', help: 'Presence (awareness) updates received, from clients or from other nodes.', labelNames: ['source'], registers })
    this.updatesApplied = new Counter({ name: 'concord_updates_applied_total', help: 'Client updates that changed a document.', registers })
    const histogram = (name: string, help: string): FastHistogram => {
      const h = new FastHistogram(name, help, LATENCY_BUCKETS)
      this.registry.registerMetric(h as never)
      return h
    }
    this.updateApply = histogram('concord_update_apply_seconds', 'Time to apply the updates of one socket read to a document (one Yjs transaction).')
    this.fanout = histogram('concord_fanout_seconds', 'Time to hand the updates applied together to a document\'s sessions.')
    this.updateDelivery = histogram('concord_update_delivery_seconds', 'From an update\'s arrival at this node (its socket read, or its relay from another node) until it is handed to the sockets of the document\'s other sessions: the server\'s share of keystroke-to-screen latency.')
    this.storageAppend = histogram('concord_storage_append_seconds', 'From an update\'s append to storage until it is durable.')
    this.ack = histogram('concord_ack_latency_seconds', 'From an update reaching its document until the sender\'s ack (saved) is sent.')
    this.backplaneLag = histogram('concord_backplane_lag_seconds', 'From another node publishing an entry on Redis until this node reads it.')
    this.#compactions = new Counter({ name: 'concord_compactions_total', help: 'Log compactions, by result (done, skipped because another node holds the lease, failed).', labelNames: ['result'], registers })
    this.#webhooks = new Counter({ name: 'concord_webhook_attempts_total', help: 'Webhook delivery attempts, by event and result (delivered, retrying, failed: gave up).', labelNames: ['event', 'result'], registers })
    this.#hookFailures = new Counter({ name: 'concord_extension_hook_failures_total', help: 'Extension hooks that threw, rejected or timed out (a refusal included), by extension and hook.', labelNames: ['extension', 'hook'], registers })
    this.#webhooksDropped = new Counter({ name: 'concord_webhook_events_dropped_total', help: 'Webhook deliveries dropped unsent because their endpoint\'s queue was full (maxQueuedWebhookEvents; the oldest give way).', registers })
    this.backplanePublished = new Counter({ name: 'concord_backplane_published_total', help: 'Updates published to the other nodes.', registers })
    this.syncFullEncodes = new Counter({ name: 'concord_sync_full_encodes_total', help: 'Yjs encodes of a document\'s state on the main thread to answer a sync step 1 (each walks the whole document; kept or reused bytes and replies computed in the merge worker are not counted).', registers })
    this.#syncReplies = new Counter({ name: 'concord_sync_replies_total', help: 'Answers to sync step 1 (and OPEN), by source: kept (the kept base and updates since), reused (bytes of an earlier encode), encoded (a Yjs encode on the main thread), worker (computed in the merge worker).', labelNames: ['source'], registers })
    this.syncStep1Coalesced = new Counter({ name: 'concord_sync_step1_coalesced_total', help: 'Sync step 1 frames not answered on their own: a later step 1 of the same session and document arrived while a reply was outstanding, and one reply answered the latest.', registers })
    this.#regionLag = new Gauge({ name: 'concord_region_replication_lag_seconds', help: 'Per peer region: age of the oldest update of this region not yet committed there (0: caught up).', labelNames: ['peer'], registers })
    this.#regionQueue = new Gauge({ name: 'concord_region_replication_queue', help: 'Per peer region: outbox rows (updates and access changes) of this region waiting to be shipped there.', labelNames: ['peer'], registers })
    this.#regionDelay = new Histogram({
      name: 'concord_region_replication_delay_seconds', help: 'Per peer region: from an update\'s append in this region until it is committed in the peer (observed by the node that ships).',
      labelNames: ['peer'], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers,
    })
    this.#regionShipped = new Counter({ name: 'concord_region_replicated_total', help: 'Per peer region: outbox rows committed there by this node.', labelNames: ['peer'], registers })
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry })
  }

  /** Where the gauges read from (the server wires it once its parts exist). */
  setSources(sources: MetricsSources): void {
    this.#sources = sources
  }

  #child(direction: 'in' | 'out', protocol: Protocol, kind: string): { messages: { value: number }; bytes: { value: number } } {
    // one map per direction and protocol: no key string built per message
    const byKind = this.#children[direction][protocol]
    let c = byKind.get(kind)
    if (c === undefined) {
      const key = `${direction}|${protocol}|${kind}`
      const labels = { direction, protocol, kind }
      c = { messages: this.#messages.cell(key, labels), bytes: this.#bytes.cell(key, { ...labels }) }
      byKind.set(kind, c)
    }
    return c
  }

  message(direction: 'in' | 'out', protocol: Protocol, kind: string, bytes: number): void {
    const c = this.#child(direction, protocol, kind)
    c.messages.value++
    c.bytes.value += bytes
  }

  /** Messages received so far, all kinds. */
  async messagesReceived(): Promise<number> {
    let n = 0
    for (const c of this.#messages.cells()) if (c.labels.direction === 'in') n += c.value
    return n
  }

  refused(code: string): void {
    this.#refused.inc({ code })
  }

  presence(source: 'client' | 'backplane'): void {
    this.#presence.inc({ source })
  }

  webhook(event: string, result: string): void {
    this.#webhooks.inc({ event, result })
  }

  hookFailed(extension: string, hook: string): void {
    this.#hookFailures.inc({ extension, hook })
  }

  webhookDropped(): void {
    this.#webhooksDropped.inc()
  }

  compaction(result: 'done' | 'skipped' | 'failed'): void {
    this.#compactions.inc({ result })
  }

  syncReply(source: 'kept' | 'reused' | 'encoded' | 'worker'): void {
    this.#syncReplies.inc({ source })
  }

  /** The region replicator's metrics (regions/region-replicator.ts's RegionMetrics). */
  readonly regions = {
    peerStatus: (peer: string, queued: number, lagSeconds: number): void => {
      this.#regionQueue.set({ peer }, queued)
      this.#regionLag.set({ peer }, lagSeconds)
    },
    shipped: (peer: string, delaysSeconds: number[]): void => {
      for (const d of delaysSeconds) this.#regionDelay.observe({ peer }, d)
      this.#regionShipped.inc({ peer }, delaysSeconds.length)
    },
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics()
  }
}

/** Seconds since `start` (a `performance.now()` reading). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000
}
