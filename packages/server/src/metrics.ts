import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { FRAME_KINDS } from '@concord/protocol'

/** What the gauges read when /metrics is scraped. */
export interface MetricsSources {
  connections(): { native: number; yWebsocket: number; pendingBytes: number }
  sessions(): number
  documentsLoaded(): number
}

export type Protocol = 'native' | 'y-websocket'

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

/**
 * The server's Prometheus metrics (`/metrics`), in a registry of its own so that
 * several servers in one process do not mix. Names follow `concord_<what>_<unit>`.
 * Hot paths use pre-resolved label children, so counting a message is a map
 * lookup and an addition.
 */
export class ServerMetrics {
  readonly registry = new Registry()
  readonly #messages: Counter<'direction' | 'protocol' | 'kind'>
  readonly #bytes: Counter<'direction' | 'protocol' | 'kind'>
  readonly #children = new Map<string, { messages: Counter.Internal; bytes: Counter.Internal }>()
  readonly #refused: Counter<'code'>
  readonly #presence: Counter<'source'>
  readonly updatesApplied: Counter
  readonly updateApply: Histogram
  readonly fanout: Histogram
  readonly storageAppend: Histogram
  readonly ack: Histogram
  readonly backplaneLag: Histogram
  readonly #compactions: Counter<'result'>
  readonly backplanePublished: Counter
  readonly #webhooks: Counter<'event' | 'result'>
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
    this.#messages = new Counter({ name: 'concord_messages_total', help: 'WebSocket messages, by direction (in, out), protocol and kind.', labelNames: ['direction', 'protocol', 'kind'], registers })
    this.#bytes = new Counter({ name: 'concord_message_bytes_total', help: 'WebSocket message bytes, by direction (in, out), protocol and kind.', labelNames: ['direction', 'protocol', 'kind'], registers })
    this.#refused = new Counter({ name: 'concord_refused_total', help: 'Refusals, rate limits and dropped or closed sessions, by error code.', labelNames: ['code'], registers })
    this.#presence = new Counter({ name: 'concord_presence_updates_total', help: 'Presence (awareness) updates received, from clients or from other nodes.', labelNames: ['source'], registers })
    this.updatesApplied = new Counter({ name: 'concord_updates_applied_total', help: 'Client updates that changed a document.', registers })
    this.updateApply = new Histogram({ name: 'concord_update_apply_seconds', help: 'Time to apply the updates of one socket read to a document (one Yjs transaction).', buckets: LATENCY_BUCKETS, registers })
    this.fanout = new Histogram({ name: 'concord_fanout_seconds', help: 'Time to hand one event-loop turn of updates to a document\'s sessions.', buckets: LATENCY_BUCKETS, registers })
    this.storageAppend = new Histogram({ name: 'concord_storage_append_seconds', help: 'From an update\'s append to storage until it is durable.', buckets: LATENCY_BUCKETS, registers })
    this.ack = new Histogram({ name: 'concord_ack_latency_seconds', help: 'From an update reaching its document until the sender\'s ack (saved) is sent.', buckets: LATENCY_BUCKETS, registers })
    this.backplaneLag = new Histogram({ name: 'concord_backplane_lag_seconds', help: 'From another node publishing an entry on Redis until this node reads it.', buckets: LATENCY_BUCKETS, registers })
    this.#compactions = new Counter({ name: 'concord_compactions_total', help: 'Log compactions, by result (done, skipped because another node holds the lease, failed).', labelNames: ['result'], registers })
    this.#webhooks = new Counter({ name: 'concord_webhook_attempts_total', help: 'Webhook delivery attempts, by event and result (delivered, retrying, failed: gave up).', labelNames: ['event', 'result'], registers })
    this.backplanePublished = new Counter({ name: 'concord_backplane_published_total', help: 'Updates published to the other nodes.', registers })
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry })
  }

  /** Where the gauges read from (the server wires it once its parts exist). */
  setSources(sources: MetricsSources): void {
    this.#sources = sources
  }

  #child(direction: 'in' | 'out', protocol: Protocol, kind: string): { messages: Counter.Internal; bytes: Counter.Internal } {
    const key = `${direction}|${protocol}|${kind}`
    let c = this.#children.get(key)
    if (c === undefined) {
      const labels = { direction, protocol, kind }
      c = { messages: this.#messages.labels(labels), bytes: this.#bytes.labels(labels) }
      this.#children.set(key, c)
    }
    return c
  }

  message(direction: 'in' | 'out', protocol: Protocol, kind: string, bytes: number): void {
    const c = this.#child(direction, protocol, kind)
    c.messages.inc()
    c.bytes.inc(bytes)
  }

  /** Messages received so far, all kinds. */
  async messagesReceived(): Promise<number> {
    return (await this.#messages.get()).values.filter(v => v.labels.direction === 'in').reduce((n, v) => n + v.value, 0)
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

  compaction(result: 'done' | 'skipped' | 'failed'): void {
    this.#compactions.inc({ result })
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
