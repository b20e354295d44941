/**
 * Group commit: items enqueued while a commit is in flight (or within the same
 * event-loop turn) are written together by the next call of `commit`.
 * Each enqueue gets the result for its item once that batch is durable.
 */
export class GroupCommit<T, R> {
  readonly #commit: (batch: T[]) => Promise<R[]> | R[]
  readonly #lingerMs: number
  readonly #busyLingerMs: number
  /** When the last commit finished (0: never). */
  #lastCommitAt = 0
  #queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = []
  /** When the oldest item of `#queue` was enqueued (performance.now()). */
  #queueSince = 0
  #inFlight = false
  #scheduled = false
  /** Items enqueued so far, and items whose batch has finished (committed or failed). */
  #enqueued = 0
  #finished = 0
  /** Barriers waiting for `#finished` to reach their target; a failed batch fails the barriers it covers. */
  #barriers: { target: number; resolve: () => void; reject: (e: unknown) => void }[] = []

  /**
   * `lingerMs`: how long the first item of an idle queue waits for company
   * before its commit starts (0: the next event-loop turn). A few milliseconds
   * turn a steady trickle of updates into fewer, larger commits (fewer fsyncs).
   * `busyLingerMs`: the wait instead when the previous commit finished less than
   * that long ago, that is under steady load: there, fewer and larger commits save
   * more CPU than the few milliseconds they add to acks (default: `lingerMs`).
   * A window counts from the oldest waiting item's enqueue, also for items that
   * arrived while a commit was in flight: those wait out the rest of the window
   * after it, so a steady stream does not turn into a chain of one-item commits.
   */
  constructor(commit: (batch: T[]) => Promise<R[]> | R[], options: { lingerMs?: number; busyLingerMs?: number } = {}) {
    this.#commit = commit
    this.#lingerMs = options.lingerMs ?? 0
    this.#busyLingerMs = Math.max(this.#lingerMs, options.busyLingerMs ?? this.#lingerMs)
  }

  /** Items enqueued and not yet committed. */
  get outstanding(): number {
    return this.#enqueued - this.#finished
  }

  enqueue(item: T): Promise<R> {
    if (this.#queue.length === 0) this.#queueSince = performance.now()
    const p = new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
    })
    this.#enqueued++
    this.#schedule()
    return p
  }

  /** Resolves when everything enqueued so far has been committed; rejects if any of it failed. */
  barrier(): Promise<void> {
    const target = this.#enqueued
    if (this.#finished >= target) return Promise.resolve()
    return new Promise((resolve, reject) => this.#barriers.push({ target, resolve, reject }))
  }

  /** `afterCommit`: called as a commit finishes with items queued (run at once when their window is over). */
  #schedule(afterCommit = false): void {
    if (this.#scheduled || this.#inFlight) return
    const busy = this.#busyLingerMs > this.#lingerMs && Date.now() - this.#lastCommitAt < this.#busyLingerMs
    const wait = this.#queueSince + (busy ? this.#busyLingerMs : this.#lingerMs) - performance.now()
    if (afterCommit && wait <= 0) {
      void this.#run()
      return
    }
    this.#scheduled = true
    const run = (): void => {
      this.#scheduled = false
      void this.#run()
    }
    if (wait > 0) setTimeout(run, wait)
    else setImmediate(run)
  }

  async #run(): Promise<void> {
    if (this.#inFlight || this.#queue.length === 0) return
    const batch = this.#queue
    this.#queue = []
    this.#inFlight = true
    const from = this.#finished
    let error: unknown = null
    let failed = false
    try {
      const results = await this.#commit(batch.map(b => b.item))
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i] as R)
    } catch (err) {
      failed = true
      error = err
      for (const b of batch) b.reject(err)
    } finally {
      this.#lastCommitAt = Date.now()
      this.#finished = from + batch.length
      this.#settleBarriers(failed, error, from)
      this.#inFlight = false
      if (this.#queue.length > 0) this.#schedule(true)
    }
  }

  #settleBarriers(failed: boolean, error: unknown, batchStart: number): void {
    if (this.#barriers.length === 0) return
    const waiting: { target: number; resolve: () => void; reject: (e: unknown) => void }[] = []
    for (const b of this.#barriers) {
      // a barrier covers this batch if it was set after the batch's first item was enqueued
      if (failed && b.target > batchStart) b.reject(error)
      else if (this.#finished >= b.target) b.resolve()
      else waiting.push(b)
    }
    this.#barriers = waiting
  }
}
