/**
 * Another node relays a client's update at once, before its append commits, and confirms it once it
 * is durable (issue 17: the PostgreSQL commit off the cross-node path). This node applies and fans
 * out such an update at once, and keeps it here until it is confirmed. Until then this node treats
 * the content as not durable:
 *
 * - an ack this node sends for its own clients' updates waits until every relayed update applied
 *   before them is durable (a client's edit may build on it, and an edit stored without what it
 *   builds on would not load), see `whenSettled`;
 * - an update that changed nothing here (its content may have come only through such a relay: the
 *   client re-sends after the origin node died) is acked only after this node appended the
 *   unconfirmed updates itself (`persist`);
 * - an update not confirmed within `confirmTimeoutMs` (the origin died, or its storage stalls) is
 *   appended by this node itself; and before the document unloads, and when the backplane may have
 *   lost confirmations (resync), all of them are.
 *
 * A duplicate append is harmless: Yjs updates are idempotent, and a load applies both copies.
 */
export interface UnconfirmedRelaysHost {
  /** Append a relayed update to storage (this node's own copy): resolves once durable. */
  append(update: Uint8Array, writer: string | null): Promise<void>
  /** Persisting failed: the document can no longer guarantee durability. */
  fail(err: unknown): void
}

export interface UnconfirmedRelaysOptions {
  /** How long a relayed update may stay unconfirmed before this node appends it itself. */
  confirmTimeoutMs: number
  /** Clock in ms (tests); default Date.now. */
  now?: () => number
}

/** The default bound on waiting for the origin node's confirmation, in ms (see docs/benchmarks.md, issue 17). */
export const DEFAULT_RELAY_CONFIRM_TIMEOUT_MS = 1_000

interface Entry {
  readonly id: string
  readonly update: Uint8Array
  readonly writer: string | null
  /** Position among the updates added (1, 2, ...): what `mark` and the waiters refer to. */
  readonly ordinal: number
  readonly deadline: number
  /** This node is appending it (it stays outstanding until that append or a confirmation settles it). */
  persisting: boolean
}

interface Waiter {
  readonly target: number
  readonly settled: () => void
  readonly failed: (err: unknown) => void
}

/** The relayed updates this node applied that are not known to be durable yet (see the file comment). */
export class UnconfirmedRelays {
  readonly #host: UnconfirmedRelaysHost
  readonly #timeoutMs: number
  readonly #now: () => number
  /** In the order they were added (a Map iterates in insertion order): the first is the oldest outstanding. */
  readonly #entries = new Map<string, Entry>()
  #added = 0
  /** Waiting for everything up to their target to settle; targets never decrease (FIFO). */
  #waiters: Waiter[] = []
  #timer: NodeJS.Timeout | null = null
  #timerAt = 0
  #closed = false
  /** Appends this node made of relayed updates (for tests and stats). */
  persisted = 0

  constructor(host: UnconfirmedRelaysHost, options: UnconfirmedRelaysOptions) {
    this.#host = host
    this.#timeoutMs = options.confirmTimeoutMs
    this.#now = options.now ?? Date.now
  }

  /** Relayed updates not yet known durable. */
  get size(): number {
    return this.#entries.size
  }

  /** The position of the latest relayed update applied so far: pass it to `whenSettled`/`persist`. */
  mark(): number {
    return this.#added
  }

  /** A relayed update this node applied; `id` names it in the origin's confirmation. */
  add(id: string, update: Uint8Array, writer: string | null): void {
    if (this.#closed || this.#entries.has(id)) return
    const entry: Entry = { id, update, writer, ordinal: ++this.#added, deadline: this.#now() + this.#timeoutMs, persisting: false }
    this.#entries.set(id, entry)
    this.#schedule()
  }

  /** The origin says these are durable (ids this node does not hold are ignored). */
  confirm(ids: readonly string[]): void {
    let any = false
    for (const id of ids) if (this.#entries.delete(id)) any = true
    if (any) this.#release()
  }

  /** Append every outstanding update up to `upTo` (default: all) that this node is not already appending. */
  persist(upTo = this.#added): void {
    for (const entry of this.#entries.values()) {
      if (entry.ordinal > upTo) break
      if (!entry.persisting) this.#persist(entry)
    }
  }

  /**
   * Run `settled` once every relayed update up to `target` is durable (confirmed, or appended
   * here): at once when they are; `failed` when this node's append of one of them failed.
   */
  whenSettled(target: number, settled: () => void, failed: (err: unknown) => void): void {
    if (this.#oldest() > target) {
      settled()
      return
    }
    this.#waiters.push({ target, settled, failed })
  }

  /** Resolves once every relayed update applied so far is durable, or could not be made so. */
  settled(): Promise<void> {
    return new Promise(resolve => this.whenSettled(this.#added, resolve, () => resolve()))
  }

  /** The document leaves memory: no timer; waiters are released (as failed: nothing more will settle). */
  close(): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#entries.clear()
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.failed(new Error('the document was closed'))
  }

  #oldest(): number {
    for (const entry of this.#entries.values()) return entry.ordinal
    return Number.POSITIVE_INFINITY
  }

  #persist(entry: Entry): void {
    entry.persisting = true
    this.persisted++
    this.#host.append(entry.update, entry.writer).then(() => {
      if (this.#entries.get(entry.id) === entry) {
        this.#entries.delete(entry.id)
        this.#release()
      }
    }, err => {
      if (this.#entries.get(entry.id) !== entry) return
      entry.persisting = false
      // whoever waits for it gets no ack: the document fails and its clients re-send
      const failedWaiters = this.#waiters.filter(w => w.target >= entry.ordinal)
      this.#waiters = this.#waiters.filter(w => w.target < entry.ordinal)
      this.#host.fail(err)
      for (const w of failedWaiters) w.failed(err)
    })
  }

  #release(): void {
    const oldest = this.#oldest()
    let n = 0
    while (n < this.#waiters.length && this.#waiters[n]!.target < oldest) n++
    if (n > 0) {
      const done = this.#waiters.splice(0, n)
      for (const w of done) w.settled()
    }
    this.#schedule()
  }

  /** One timer, at the deadline of the oldest update nobody appends yet. */
  #schedule(): void {
    if (this.#closed) return
    let next: Entry | null = null
    for (const entry of this.#entries.values()) {
      if (!entry.persisting) {
        next = entry
        break
      }
    }
    // (a timer that is no longer needed is left to fire and find nothing: confirmations usually
    // arrive within milliseconds, and clearing and setting a timer per relayed update costs more)
    if (next === null) return
    if (this.#timer !== null && this.#timerAt <= next.deadline) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timerAt = next.deadline
    this.#timer = setTimeout(() => {
      this.#timer = null
      const now = this.#now()
      for (const entry of this.#entries.values()) {
        if (entry.deadline > now) break
        if (!entry.persisting) this.#persist(entry)
      }
      this.#schedule()
    }, Math.max(0, next.deadline - this.#now()))
    this.#timer.unref?.()
  }
}
