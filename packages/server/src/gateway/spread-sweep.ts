/** A sweep is spread over at most this many ticks (one every interval / slices). */
export const SWEEP_MAX_SLICES = 300
/** Ticks are at least this far apart (a short interval has fewer slices). */
export const SWEEP_MIN_TICK_MS = 100

/**
 * Visits every item of a set once per interval, spread evenly over the interval instead of all at
 * once: a heartbeat that pinged 20,000 sockets in one timer callback held the event loop for
 * 300 ms every interval (updates waited behind it: p99 250 ms on 10,000 documents of 2 clients,
 * docs/benchmarks.md "How cost grows"). Items are visited in the set's order, so each is visited
 * about one interval after its previous visit; items added during a round are visited in it if
 * the round has not passed them, else in the next one.
 *
 * `visit(item, since)`: `since` is when the previous round started, a time before the item's
 * previous visit (0 in the first round).
 */
export class SpreadSweep<T> {
  readonly tickMs: number
  readonly #items: ReadonlySet<T>
  readonly #intervalMs: number
  readonly #visit: (item: T, since: number) => void
  readonly #now: () => number
  #roundStart = 0
  #previousStart = 0
  #iterator: Iterator<T> | null = null
  #total = 0
  #visited = 0

  constructor(items: ReadonlySet<T>, intervalMs: number, visit: (item: T, since: number) => void, now: () => number = Date.now) {
    this.#items = items
    this.#intervalMs = intervalMs
    this.#visit = visit
    this.#now = now
    const slices = Math.max(1, Math.min(SWEEP_MAX_SLICES, Math.floor(intervalMs / SWEEP_MIN_TICK_MS)))
    this.tickMs = intervalMs / slices
  }

  /** Call every `tickMs`: starts a round once the last one is an interval old, and visits this tick's share. */
  tick(): void {
    const now = this.#now()
    if (this.#iterator === null) {
      if (this.#roundStart !== 0 && now - this.#roundStart < this.#intervalMs - this.tickMs / 2) return
      this.#previousStart = this.#roundStart
      this.#roundStart = now
      this.#iterator = this.#items.values()
      this.#total = this.#items.size
      this.#visited = 0
    }
    // by the end of this tick, the share of the round that the time elapsed stands for
    const share = Math.min(1, (now - this.#roundStart + this.tickMs) / this.#intervalMs)
    const target = Math.ceil(this.#total * share)
    while (this.#visited < target) {
      const next = this.#iterator.next()
      if (next.done === true) {
        this.#iterator = null
        return
      }
      this.#visited++
      this.#visit(next.value, this.#previousStart)
    }
    if (this.#visited >= this.#total || share >= 1) this.#iterator = null
  }
}
