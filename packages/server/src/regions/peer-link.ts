import { announce, DEFAULT_STREAM_MAX_LEN, defineAnnounce, layoutOf, type StreamLayout } from '../backplane/doc-streams.js'
import { createRedisClient, type RedisClient } from '../backplane/redis-connection.js'
import { parseRedisUrl } from '../backplane/redis-url.js'
import { PeerInbox, type Delivered, type OutboxEntry } from '../storage/postgres-regions.js'
import type { PeerRegion } from './region-config.js'

/** Entries kept per stream, as the backplane's default. */
const STREAM_MAX_LEN = String(DEFAULT_STREAM_MAX_LEN)

/**
 * This region's link to one peer region: batches are committed in the peer's PostgreSQL, then
 * announced on the peer's Redis (backplane/doc-streams.ts), where the peer's nodes hear them as they hear each other's
 * updates (the node id `region:<origin>` is no node of theirs, so every one of them applies it).
 */
export class PeerLink {
  readonly peer: PeerRegion
  readonly #origin: string
  readonly #inbox: PeerInbox
  readonly #redis: RedisClient
  /** The peer's key names: one Redis, or a Redis Cluster (`redis+cluster://`). */
  readonly #layout: StreamLayout

  constructor(origin: string, peer: PeerRegion, timeoutMs: number) {
    this.peer = peer
    this.#origin = origin
    this.#inbox = new PeerInbox({ connectionString: peer.postgres, timeoutMs })
    const target = parseRedisUrl(peer.redis)
    this.#layout = layoutOf(target)
    // auto-pipelining: a batch's announcements leave in one write (one per master of a cluster,
    // where one pipeline may not span slots)
    this.#redis = createRedisClient(target, {
      lazyConnect: false, commandTimeout: timeoutMs, maxRetriesPerRequest: 1, connectTimeout: timeoutMs, enableAutoPipelining: true,
      retryStrategy: times => Math.min(100 * 2 ** times, 2_000), connectionName: `concord-region-${origin}`,
    })
    this.#redis.on('error', () => undefined)
    defineAnnounce(this.#redis)
  }

  /**
   * Ships a batch: durable in the peer (taken in once, whatever the number of attempts), then
   * announced there. Throws when either side of the link fails; the caller ships it again.
   */
  async ship(entries: OutboxEntry[]): Promise<Delivered> {
    const delivered = await this.#inbox.deliver(this.#origin, entries)
    const node = `region:${this.#origin}`
    const layout = this.#layout
    const commands: Promise<unknown>[] = []
    for (const u of delivered.updates) {
      const fields: (string | Buffer)[] = ['n', node, 'u', Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength)]
      if (u.userId !== null) fields.push('w', u.userId)
      // the edit's trace continues on the peer's nodes
      if (u.trace !== null) fields.push('t', u.trace)
      // the region's nodes hear it on the document's channel, as an update from a node of theirs
      commands.push(announce(this.#redis, layout, u.doc, DEFAULT_STREAM_MAX_LEN, fields) as Promise<string>)
    }
    for (const document of delivered.deleted) {
      commands.push(this.#redis.xadd(layout.control, 'MAXLEN', '~', STREAM_MAX_LEN, '*', 'n', node, 'c', JSON.stringify({ kind: 'document-deleted', document })))
    }
    for (const change of delivered.changes) {
      commands.push(this.#redis.xadd(layout.control, 'MAXLEN', '~', STREAM_MAX_LEN, '*', 'n', node, 'c', JSON.stringify({ kind: 'access', change })))
    }
    const failed = (await Promise.allSettled(commands)).find(r => r.status === 'rejected')
    if (failed !== undefined) throw new Error(`announcing on region ${this.peer.name}'s Redis failed: ${(failed.reason as Error).message}`)
    return delivered
  }

  /** Opens the database connection ahead of the first batch (Redis connects at once by itself). */
  warm(): Promise<void> {
    return this.#inbox.warm()
  }

  async close(): Promise<void> {
    this.#redis.disconnect()
    await this.#inbox.close()
  }
}
