import type { Cluster, Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { ChannelEvents, ChannelSubscriber } from './channel-subscriber.js'
import { createNodeConnection, type RedisClientOptions } from './redis-connection.js'
import { keySlot, type RedisTarget } from './redis-url.js'

/** A connection to one master, subscribed to the shard channels of the slots it serves. */
interface Shard {
  /** `host:port`, as the cluster's slot table names the master. */
  readonly key: string
  readonly redis: Redis
  readonly channels: Set<string>
  /** Its connection was ready once: when it is ready again, its channels lapsed. */
  readyOnce: boolean
}

/** How often the slot table is read again while a master with channels is unreachable (a replica may have taken over). */
const REFRESH_WHILE_DOWN_MS = 500

/**
 * The document channels of a Redis Cluster: shard channels (SSUBSCRIBE), each heard on a
 * connection to the master that serves its slot, one connection per master. A shard channel's
 * messages travel only through the master (and replicas) of its slot, where a plain PUBLISH would
 * be forwarded to every node of the cluster.
 *
 * Routing follows the cluster client's slot table (`cluster.slots`, read again by ioredis on
 * MOVED, on a failover and every few seconds; `refresh` events). When a master's connection
 * drops, the table is read every 500 ms until its slots have a reachable master again: when a
 * replica took over, the channels move to it, and are `ready` as `lapsed` once it answers (the
 * backplane then subscribes, reads the streams from where it was, and resyncs: the promoted
 * replica may lack the last entries its master took). A master that comes back as itself
 * reconnects, and its channels lapsed too.
 *
 * ioredis has sharded subscribers of its own (`shardedSubscribers`), but resubscribes by itself
 * and says nothing when a subscription lapsed, which is when the backplane must read the stream.
 */
export class ShardSubscribers implements ChannelSubscriber {
  readonly #cluster: Cluster
  readonly #target: Extract<RedisTarget, { kind: 'cluster' }>
  readonly #events: ChannelEvents
  readonly #options: RedisClientOptions
  readonly #log: Logger
  readonly #shards = new Map<string, Shard>()
  /** Each channel's shard; null until the slot table is known. */
  readonly #route = new Map<string, Shard | null>()
  /** Channels that moved to another master: lapsed once its connection is ready. */
  readonly #moved = new Set<string>()
  #timer: NodeJS.Timeout | null = null
  #closed = false

  /** `cluster`: the backplane's command client, whose slot table this follows. */
  constructor(cluster: Cluster, target: Extract<RedisTarget, { kind: 'cluster' }>, events: ChannelEvents, options: RedisClientOptions, logger: Logger) {
    this.#cluster = cluster
    this.#target = target
    this.#events = events
    this.#options = options
    this.#log = logger
    cluster.on('refresh', () => this.#reroute())
  }

  add(channel: string): void {
    const shard = this.#shardOf(channel)
    this.#route.set(channel, shard)
    if (shard === null) this.#watch()
    else shard.channels.add(channel)
  }

  remove(channel: string): void {
    const shard = this.#route.get(channel)
    this.#route.delete(channel)
    this.#moved.delete(channel)
    if (shard === undefined || shard === null) return
    shard.channels.delete(channel)
    if (shard.redis.status === 'ready') shard.redis.sunsubscribe(channel).catch(() => undefined)
  }

  async subscribe(channel: string): Promise<void> {
    const shard = this.#route.get(channel)
    if (shard === undefined || shard === null) throw new Error('no master is known yet for the channel\'s slot')
    try {
      await shard.redis.ssubscribe(channel)
    } catch (err) {
      // the slot moved (a failover, a resharding): read the table again, the channel follows it
      if (/^MOVED /.test((err as Error).message)) this.#cluster.refreshSlotsCache()
      throw err
    }
  }

  isReady(channel: string): boolean {
    return this.#route.get(channel)?.redis.status === 'ready'
  }

  close(): void {
    this.#closed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    for (const shard of this.#shards.values()) shard.redis.disconnect()
    this.#shards.clear()
  }

  #masterOf(channel: string): string | undefined {
    return this.#cluster.slots[keySlot(channel)]?.[0]
  }

  #shardOf(channel: string): Shard | null {
    const key = this.#masterOf(channel)
    if (key === undefined) return null
    return this.#shards.get(key) ?? this.#open(key)
  }

  #open(key: string): Shard {
    const colon = key.lastIndexOf(':')
    const host = key.slice(0, colon)
    const port = Number(key.slice(colon + 1))
    // commands fail at once while the connection is down (the backplane retries, and `ready` names the channels when it is back)
    const redis = createNodeConnection(this.#target, host, port, { ...this.#options, autoResubscribe: false, enableOfflineQueue: false, lazyConnect: false })
    const shard: Shard = { key, redis, channels: new Set(), readyOnce: false }
    this.#shards.set(key, shard)
    redis.on('error', err => this.#log.debug({ err: err.message, node: key }, 'backplane: shard subscriber connection error'))
    redis.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.#events.message(channel, message))
    redis.on('ready', () => {
      if (this.#closed || this.#shards.get(key) !== shard) return
      const fresh: string[] = []
      const moved: string[] = []
      for (const channel of shard.channels) {
        if (this.#moved.delete(channel)) moved.push(channel)
        else fresh.push(channel)
      }
      const reconnected = shard.readyOnce
      shard.readyOnce = true
      if (moved.length > 0) this.#log.info({ node: key, channels: moved.length }, 'backplane: documents moved to another cluster master; catching up')
      if (reconnected && fresh.length > 0) this.#log.info({ node: key, channels: fresh.length }, 'backplane: a cluster master is reachable again; catching up on its documents')
      // after a reconnection every channel of the shard lapsed; else only those that moved here
      if (reconnected) this.#events.ready([...moved, ...fresh], true)
      else {
        if (fresh.length > 0) this.#events.ready(fresh, false)
        if (moved.length > 0) this.#events.ready(moved, true)
      }
    })
    redis.on('close', () => {
      if (this.#closed || this.#shards.get(key) !== shard) return
      // a replica may be taking over: read the slot table now, and again until the channels have a master
      if (shard.channels.size > 0) this.#cluster.refreshSlotsCache()
      this.#watch()
    })
    return shard
  }

  /**
   * The slot table was read: channels whose slot another master serves now move to it, channels
   * not routed yet are, and connections to nodes that serve no slot any more and carry no channel
   * are closed.
   */
  #reroute(): void {
    if (this.#closed) return
    const ready = new Map<Shard, { fresh: string[]; lapsed: string[] }>()
    for (const [channel, shard] of this.#route) {
      const key = this.#masterOf(channel)
      if (key === undefined || key === shard?.key) continue
      const next = this.#shards.get(key) ?? this.#open(key)
      if (shard !== null) {
        shard.channels.delete(channel)
        if (shard.redis.status === 'ready') shard.redis.sunsubscribe(channel).catch(() => undefined)
      }
      next.channels.add(channel)
      this.#route.set(channel, next)
      if (next.redis.status === 'ready') {
        let lists = ready.get(next)
        if (lists === undefined) ready.set(next, lists = { fresh: [], lapsed: [] })
        if (shard !== null) {
          this.#moved.delete(channel)
          lists.lapsed.push(channel)
        } else {
          lists.fresh.push(channel)
        }
      } else if (shard !== null) {
        this.#moved.add(channel)
      }
    }
    const masters = new Set<string>()
    for (const nodes of this.#cluster.slots) if (nodes?.[0] !== undefined) masters.add(nodes[0])
    for (const [key, shard] of this.#shards) {
      if (shard.channels.size > 0 || masters.has(key)) continue
      this.#shards.delete(key)
      shard.redis.disconnect()
    }
    for (const [shard, { fresh, lapsed }] of ready) {
      if (fresh.length > 0) this.#events.ready(fresh, false)
      if (lapsed.length > 0) {
        this.#log.info({ node: shard.key, channels: lapsed.length }, 'backplane: documents moved to another cluster master; catching up')
        this.#events.ready(lapsed, true)
      }
    }
  }

  /** Reads the slot table every REFRESH_WHILE_DOWN_MS while a channel has no master or its master is unreachable. */
  #watch(): void {
    if (this.#timer !== null || this.#closed) return
    this.#timer = setInterval(() => {
      let waiting = false
      for (const shard of this.#route.values()) {
        if (shard === null || shard.redis.status !== 'ready') {
          waiting = true
          break
        }
      }
      if (!waiting) {
        clearInterval(this.#timer!)
        this.#timer = null
        return
      }
      this.#cluster.refreshSlotsCache()
    }, REFRESH_WHILE_DOWN_MS)
    this.#timer.unref()
  }
}
