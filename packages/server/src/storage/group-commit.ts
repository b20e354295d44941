/**
 * Group commit: items enqueued while a commit is in flight (or within the same
 * event-loop turn) are written together by the next call of `commit`.
 * Each enqueue gets the result for its item once that batch is durable.
 */
export class GroupCommit<T, R> {
  readonly #commit: (batch: T[]) => Promise<R[]> | R[]
  readonly #lingerMs: number
  #queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = []
  #inFlight = false
  #scheduled = false
  readonly #outstanding = new Set<Promise<R>>()

  /**
   * `lingerMs`: how long the first item of an idle queue waits for company
   * before its commit starts (0: the next event-loop turn). A few milliseconds
   * turn a steady trickle of updates into fewer, larger commits (fewer fsyncs).
   */
  constructor(commit: (batch: T[]) => Promise<R[]> | R[], options: { lingerMs?: number } = {}) {
    this.#commit = commit
    this.#lingerMs = options.lingerMs ?? 0
  }

  /** Items enqueued and not yet committed. */
  get outstanding(): number {
    return this.#outstanding.size
  }

  enqueue(item: T): Promise<R> {
    const p = new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
    })
    this.#outstanding.add(p)
    const forget = (): void => { this.#outstanding.delete(p) }
    p.then(forget, forget)
    this.#schedule()
    return p
  }

  /** Resolves when everything enqueued so far has been committed; rejects if any of it failed. */
  async barrier(): Promise<void> {
    if (this.#outstanding.size === 0) return
    await Promise.all([...this.#outstanding])
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight) return
    this.#scheduled = true
    const run = (): void => {
      this.#scheduled = false
      void this.#run()
    }
    if (this.#lingerMs > 0) setTimeout(run, this.#lingerMs)
    else setImmediate(run)
  }

  async #run(): Promise<void> {
    if (this.#inFlight || this.#queue.length === 0) return
    const batch = this.#queue
    this.#queue = []
    this.#inFlight = true
    try {
      const results = await this.#commit(batch.map(b => b.item))
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i] as R)
    } catch (err) {
      for (const b of batch) b.reject(err)
    } finally {
      this.#inFlight = false
      if (this.#queue.length > 0) void this.#run()
    }
  }
}
