import type { Redis } from 'ioredis'

/** What a channel subscriber tells the backplane. */
export interface ChannelEvents {
  /** A message of a subscribed channel. */
  message(channel: Buffer, message: Buffer): void
  /**
   * The connection that carries `channels` is ready: subscribe them (again) and read their streams
   * from where they were. `lapsed`: they were subscribed before and the connection that carried
   * them went away (a reconnection, a failover): what was published meanwhile was not heard, and
   * the Redis behind them may have lost entries.
   */
  ready(channels: string[], lapsed: boolean): void
}

/**
 * The document channels a node hears, on one connection (one Redis) or one per master of a
 * cluster (shard-subscribers.ts). The backplane subscribes a channel, then reads its stream: the
 * subscriber only says when a channel's connection is ready, and never resubscribes by itself.
 */
export interface ChannelSubscriber {
  /** A channel to route: `ready` names it once its connection is ready, unless it is ready now (`isReady`). */
  add(channel: string): void
  /** Stops hearing the channel. */
  remove(channel: string): void
  /** Subscribes the channel on its connection; rejects when that connection is not ready (`ready` will name the channel later). */
  subscribe(channel: string): Promise<void>
  isReady(channel: string): boolean
  close(): void
}

/** The channels of one Redis server, on one connection (PUBLISH/SUBSCRIBE). */
export class SingleChannelSubscriber implements ChannelSubscriber {
  readonly #redis: Redis
  readonly #channels = new Set<string>()
  #readyOnce = false

  /** `redis`: a connection of its own, created with `autoResubscribe: false`. */
  constructor(redis: Redis, events: ChannelEvents) {
    this.#redis = redis
    redis.on('messageBuffer', (channel: Buffer, message: Buffer) => events.message(channel, message))
    redis.on('ready', () => {
      const lapsed = this.#readyOnce
      this.#readyOnce = true
      events.ready([...this.#channels], lapsed)
    })
  }

  add(channel: string): void {
    this.#channels.add(channel)
  }

  remove(channel: string): void {
    this.#channels.delete(channel)
    if (this.#redis.status === 'ready') this.#redis.unsubscribe(channel).catch(() => undefined)
  }

  async subscribe(channel: string): Promise<void> {
    await this.#redis.subscribe(channel)
  }

  isReady(): boolean {
    return this.#redis.status === 'ready'
  }

  close(): void {
    this.#redis.disconnect()
  }
}
