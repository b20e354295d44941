import type { Logger } from 'pino'
import type { OutboxEntry, RegionOutbox } from '../storage/postgres-regions.js'
import { PeerLink } from './peer-link.js'
import { validateRegions, type RegionsConfig } from './region-config.js'
import { ReplicationWatermark } from './replication-watermark.js'

/** What a node reports about one peer region (for /readyz, /metrics and the dashboard). */
export interface PeerStatus {
  peer: string
  /** Rows of this region waiting to be shipped to the peer. */
  queued: number
  /** Age of the oldest of them (seconds; 0 when none waits): how far the peer is behind this region. */
  lagSeconds: number
  /** Whether this node holds the peer's replicator lease (ships to it). */
  shipping: boolean
  /** The last attempt to ship reached the peer (null: this node has not tried). */
  linkUp: boolean | null
  /** When a batch last reached the peer from this node (ms since the epoch), or null. */
  lastShippedAt: number | null
  lastError: string | null
}

/** The replicator's metrics, set by the composition root (ops/metrics.ts implements them). */
export interface RegionMetrics {
  /** Queue depth and lag per peer, read from the outbox by every node. */
  peerStatus(peer: string, queued: number, lagSeconds: number): void
  /** A batch committed in the peer: its entries, and for each the time since it was appended here. */
  shipped(peer: string, delaysSeconds: number[]): void
}

export interface RegionReplicationOptions {
  config: RegionsConfig
  outbox: RegionOutbox
  /** This node's id (the lease holder's name). */
  nodeId: string
  /** The store's lease (one node of the region ships to a peer at a time). */
  lease(key: string, holder: string, ttlMs: number): Promise<boolean>
  releaseLease(key: string, holder: string): Promise<void>
  logger: Logger
  metrics?: RegionMetrics
  /** Told of every batch a peer committed (for the "replicated" status). */
  onShipped?: (peer: string, entries: OutboxEntry[]) => void
}

/**
 * Active-active replication between regions. Every append of this region queues a row per peer
 * in its PostgreSQL outbox, in the append's transaction. For each peer, one node of the region at
 * a time (a lease in the store) reads the outbox in id order, commits each batch in the peer's
 * PostgreSQL (appended with this region as its origin, taken in once), announces it on the peer's
 * Redis, and only then deletes it here. A link that fails is retried with backoff: the outbox
 * keeps everything meanwhile, so a partition costs lag, never data.
 */
export class RegionReplication {
  readonly #opts: RegionReplicationOptions
  readonly #config: RegionsConfig
  readonly #peers: PeerShipper[]
  /** Tells senders when their acked updates are durable in more regions (the documents' ReplicationTracker). */
  readonly tracker: ReplicationWatermark
  #statusTimer: NodeJS.Timeout | null = null
  #closed = false

  constructor(options: RegionReplicationOptions) {
    this.#opts = options
    this.#config = validateRegions(options.config)
    this.#peers = this.#config.peers.map(p => new PeerShipper(this.#config, p.name, new PeerLink(this.#config.name, p, this.#config.linkTimeoutMs ?? 5_000), options))
    this.tracker = new ReplicationWatermark({ outbox: options.outbox, peers: this.#config.peers.map(p => p.name) })
  }

  get region(): string {
    return this.#config.name
  }

  /** Registers the peers in the store (so appends queue for them) and starts shipping and status polls. */
  start(): void {
    void this.#registerPeers()
    for (const p of this.#peers) p.start()
    const poll = (): void => {
      void this.#pollStatus().finally(() => {
        if (!this.#closed) this.#statusTimer = setTimeout(poll, STATUS_POLL_MS)
      })
    }
    poll()
  }

  /** An administrator deleted `document` in this region: the peers delete it too (after what was queued before). */
  async documentDeleted(document: string): Promise<void> {
    await this.#opts.outbox.queueDelete(document)
  }

  status(): PeerStatus[] {
    return this.#peers.map(p => p.status())
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#statusTimer !== null) clearTimeout(this.#statusTimer)
    this.tracker.close()
    await Promise.all(this.#peers.map(p => p.close()))
  }

  async #registerPeers(): Promise<void> {
    let delay = 100
    while (!this.#closed) {
      try {
        await this.#opts.outbox.registerPeers(this.#config.peers.map(p => p.name))
        return
      } catch (err) {
        this.#opts.logger.debug({ err: (err as Error).message }, 'regions: registering the peer regions failed; retrying')
        await sleep(delay)
        delay = Math.min(2_000, delay * 2)
      }
    }
  }

  async #pollStatus(): Promise<void> {
    let depths
    try {
      depths = await this.#opts.outbox.depths()
    } catch {
      return
    }
    const now = Date.now()
    for (const d of depths) {
      const lag = d.oldestAt === null ? 0 : Math.max(0, now - d.oldestAt) / 1000
      this.#peers.find(p => p.peer === d.peer)?.observe(d.depth, lag)
      this.#opts.metrics?.peerStatus(d.peer, d.depth, lag)
    }
  }
}

const STATUS_POLL_MS = 1_000
/** Backoff between attempts on a failing link. */
const RETRY_MIN_MS = 100
const RETRY_MAX_MS = 2_000

class PeerShipper {
  readonly peer: string
  readonly #config: RegionsConfig
  readonly #link: PeerLink
  readonly #opts: RegionReplicationOptions
  readonly #leaseKey: string
  #loop: Promise<void> | null = null
  #closed = false
  #wake: (() => void) | null = null
  #holder = false
  #queued = 0
  #lag = 0
  #linkUp: boolean | null = null
  #lastShippedAt: number | null = null
  #lastError: string | null = null

  constructor(config: RegionsConfig, peer: string, link: PeerLink, opts: RegionReplicationOptions) {
    this.peer = peer
    this.#config = config
    this.#link = link
    this.#opts = opts
    // control characters are not valid in document names: this key is no document's
    this.#leaseKey = `\u0001region-replicator:${peer}`
  }

  start(): void {
    this.#loop = this.#run()
  }

  observe(queued: number, lagSeconds: number): void {
    this.#queued = queued
    this.#lag = lagSeconds
  }

  status(): PeerStatus {
    return { peer: this.peer, queued: this.#queued, lagSeconds: this.#lag, shipping: this.#holder, linkUp: this.#linkUp, lastShippedAt: this.#lastShippedAt, lastError: this.#lastError }
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#wake?.()
    // a batch in flight gets the link's timeout at most (the outbox keeps it otherwise)
    await this.#loop?.catch(() => undefined)
    if (this.#holder) await this.#opts.releaseLease(this.#leaseKey, this.#opts.nodeId).catch(() => undefined)
    await this.#link.close()
  }

  async #run(): Promise<void> {
    const leaseMs = this.#config.leaseMs ?? 5_000
    const pollMs = this.#config.pollMs ?? 20
    const batchSize = this.#config.batchSize ?? 500
    const log = this.#opts.logger
    let renewAt = 0
    let retry = RETRY_MIN_MS
    while (!this.#closed) {
      const now = Date.now()
      if (now >= renewAt) {
        const was = this.#holder
        this.#holder = await this.#opts.lease(this.#leaseKey, this.#opts.nodeId, leaseMs).catch(() => false)
        renewAt = now + leaseMs / 3
        if (this.#holder && !was) void this.#link.warm()
        if (this.#holder !== was) log.info({ peer: this.peer, shipping: this.#holder }, this.#holder ? 'regions: this node ships to the peer region' : 'regions: another node ships to the peer region')
      }
      if (!this.#holder) {
        await this.#sleep(Math.max(pollMs, leaseMs / 3))
        continue
      }
      let entries: OutboxEntry[]
      try {
        entries = await this.#opts.outbox.read(this.peer, batchSize)
      } catch {
        await this.#sleep(retry)
        retry = Math.min(RETRY_MAX_MS, retry * 2)
        continue
      }
      if (entries.length === 0) {
        await this.#sleep(pollMs)
        continue
      }
      try {
        await this.#link.ship(entries)
        const shippedAt = Date.now()
        await this.#opts.outbox.remove(this.peer, entries.map(e => e.id))
        if (this.#linkUp === false) log.info({ peer: this.peer }, 'regions: the link to the peer region is back')
        this.#linkUp = true
        this.#lastError = null
        this.#lastShippedAt = shippedAt
        retry = RETRY_MIN_MS
        this.#opts.metrics?.shipped(this.peer, entries.map(e => Math.max(0, shippedAt - e.at) / 1000))
        this.#opts.onShipped?.(this.peer, entries)
      } catch (err) {
        const message = (err as Error).message
        if (this.#linkUp !== false) log.warn({ peer: this.peer, err: message, queued: entries.length }, 'regions: shipping to the peer region failed; the outbox keeps the updates and the link is retried')
        this.#linkUp = false
        this.#lastError = message
        await this.#sleep(retry)
        retry = Math.min(RETRY_MAX_MS, retry * 2)
      }
    }
  }

  /** Waits `ms`, or less when the shipper is closed. */
  #sleep(ms: number): Promise<void> {
    return new Promise(resolve => {
      const timer = setTimeout(() => { this.#wake = null; resolve() }, ms)
      this.#wake = () => { clearTimeout(timer); this.#wake = null; resolve() }
    })
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}
