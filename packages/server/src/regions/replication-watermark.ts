import type { RegionOutbox } from '../storage/postgres-regions.js'

/** A session that can be told how many regions hold its update (documents/ports.ts's ReplicationListener). */
interface Listener {
  replicated?(seq: number, regions: number): void
}

interface Waiter {
  listener: Listener
  seq: number
  /** The outbox sequence read at the first poll after the ack (null until then). */
  mark: number | null
  /** Regions reported so far (1: this one, at the ack). */
  told: number
}

export interface ReplicationWatermarkOptions {
  outbox: Pick<RegionOutbox, 'watermark'>
  /** The peer regions (their number caps the count). */
  peers: readonly string[]
  /** How often the outbox is read while an ack waits (default 100 ms). */
  pollMs?: number
  /** Acks waiting at most (the oldest give way: their senders just do not hear of it; default 100,000). */
  maxWaiting?: number
}

/**
 * Tells a sender when its acked update is durable in more regions, from a watermark rather than
 * per-update messages: an update acked here is committed, so its outbox rows have ids at most the
 * outbox sequence read after the ack; once a peer's oldest waiting row is above that mark (or it
 * has none), those rows were committed in the peer. An update that changed nothing (its content
 * was already here) is covered the same way: whatever carried its content was committed before it
 * was acked. Every node reads its own region's PostgreSQL; nothing crosses the backplane.
 *
 * With more than two regions the count is exact for content appended in this region; content that
 * came from a third region is counted as shipped by this region (each region ships only its own).
 */
export class ReplicationWatermark {
  readonly #opts: ReplicationWatermarkOptions
  #waiting: Waiter[] = []
  #timer: NodeJS.Timeout | null = null
  #polling = false
  #closed = false

  constructor(options: ReplicationWatermarkOptions) {
    this.#opts = options
  }

  /** The update `seq` of `listener` is durable here (documents/durable-log.ts calls it on each ack). */
  acked(listener: Listener, seq: number): void {
    if (this.#closed || listener.replicated === undefined || this.#opts.peers.length === 0) return
    this.#waiting.push({ listener, seq, mark: null, told: 1 })
    const max = this.#opts.maxWaiting ?? 100_000
    if (this.#waiting.length > max) this.#waiting.splice(0, this.#waiting.length - max)
    this.#schedule()
  }

  /** Acks whose senders have not heard that every region holds them yet. */
  get waiting(): number {
    return this.#waiting.length
  }

  close(): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#waiting = []
  }

  #schedule(): void {
    if (this.#timer !== null || this.#polling || this.#closed) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.#poll()
    }, this.#opts.pollMs ?? 100)
  }

  async #poll(): Promise<void> {
    if (this.#waiting.length === 0) return
    this.#polling = true
    // only acks made before the read starts may take its mark
    const eligible = this.#waiting.length
    let mark: { last: number; oldest: Map<string, number | null> } | null = null
    try {
      mark = await this.#opts.outbox.watermark()
    } catch {
      // PostgreSQL unreachable: try again later, nothing is lost
    }
    this.#polling = false
    if (mark !== null && !this.#closed) this.#apply(mark, eligible)
    if (this.#waiting.length > 0) this.#schedule()
  }

  #apply(mark: { last: number; oldest: Map<string, number | null> }, eligible: number): void {
    const peers = this.#opts.peers
    const keep: Waiter[] = []
    for (let i = 0; i < this.#waiting.length; i++) {
      const w = this.#waiting[i]!
      if (i < eligible && w.mark === null) w.mark = mark.last
      if (w.mark === null) {
        keep.push(w)
        continue
      }
      let regions = 1
      for (const peer of peers) {
        const oldest = mark.oldest.get(peer)
        if (oldest === null || (oldest !== undefined && oldest > w.mark)) regions++
      }
      if (regions > w.told) {
        w.told = regions
        w.listener.replicated!(w.seq, regions)
      }
      if (regions <= peers.length) keep.push(w)
    }
    this.#waiting = keep
  }
}
