import type { Backplane } from '../backplane/backplane.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { UpdateOrigin } from './origins.js'
import { secondsSince, type DocumentMetrics, type DocumentTracer, type ReplicationTracker } from './ports.js'

export interface DurableLogOptions {
  storage: StorageAdapter
  backplane?: Backplane
  metrics?: DocumentMetrics
  tracer?: DocumentTracer
  replication?: ReplicationTracker
}

/** What the log tells its document. */
export interface DurableLogHost {
  /** An update is durable (before its sender is acked): `clients` are the Yjs clients whose items it carries. */
  durable(clients: ReadonlyMap<number, number>, userId: string | null): void
  /** An append settled successfully (compaction may be due). */
  appended(): void
  /** Storage failed: the document can no longer guarantee durability. */
  fail(err: unknown): void
}

/**
 * A document's side of its durable log: each applied client update appended (storage commits
 * them in groups and in order), published to the other nodes and acked to its sender only once
 * it is durable; the barrier after which an update that changed nothing is acked; the flush
 * waiters; and the log tail's size (what the next load replays, what compaction folds).
 */
export class DurableLog {
  readonly #document: string
  readonly #opts: DurableLogOptions
  readonly #host: DurableLogHost
  #inFlight = 0
  #lastAppend: Promise<unknown> = Promise.resolve()
  #flushWaiters: (() => void)[] = []
  /** The seq of the last durable log entry this node knows of. */
  lastDurableSeq = 0
  /** Log entries after the latest snapshot (what the next load would replay). */
  tailUpdates = 0
  tailBytes = 0

  constructor(document: string, opts: DurableLogOptions, host: DurableLogHost) {
    this.#document = document
    this.#opts = opts
    this.#host = host
  }

  /** Updates not yet durable (and acks waiting for the barrier). */
  get inFlight(): number {
    return this.#inFlight
  }

  /** `clients`: the Yjs clients whose items the update carries (from its inspection: no second decode). */
  append(update: Uint8Array, origin: UpdateOrigin | null, seq: number, at: number, clients: ReadonlyMap<number, number>): void {
    this.#inFlight++
    const appendStart = performance.now()
    const tracer = this.#opts.tracer
    const span = tracer?.startSpan('concord.storage.append', { 'concord.document': this.#document, 'concord.bytes': update.length, 'concord.storage': this.#opts.storage.kind }) ?? null
    const userId = origin?.userId ?? null
    const appended = this.#opts.storage.append(this.#document, { update, userId, at: Date.now() })
    this.#lastAppend = appended
    appended.then(logSeq => {
      // Other nodes get an update once it is durable, never before: a node that applied content
      // another node had not stored yet would treat a client's re-send of it (after that node
      // died) as nothing new, and the content would be acked without ever being stored.
      const metrics = this.#opts.metrics
      metrics?.storageAppend.observe(secondsSince(appendStart))
      tracer?.endSpan(span, undefined, { 'concord.seq': logSeq })
      if (this.#opts.backplane !== undefined) {
        this.#opts.backplane.publishUpdate(this.#document, update, userId)
        metrics?.backplanePublished.inc()
      }
      if (logSeq > this.lastDurableSeq) this.lastDurableSeq = logSeq
      this.tailUpdates++
      this.tailBytes += update.length
      this.#host.durable(clients, userId)
      if (seq > 0 && origin !== null) this.ack(origin, seq, at)
      this.#settled()
      this.#host.appended()
    }, err => {
      tracer?.endSpan(span, err)
      this.#settled()
      this.#host.fail(err)
    })
  }

  /** Tell `origin` its update `seq` is durable. */
  ack(origin: UpdateOrigin, seq: number, at: number): void {
    origin.ack(seq)
    this.#opts.replication?.acked(origin, seq)
    this.#opts.metrics?.ack.observe(secondsSince(at))
  }

  /** Ack an update that changed nothing once whatever carried its content before is durable. */
  ackAfterBarrier(origin: UpdateOrigin, seq: number, at: number): void {
    this.#inFlight++
    this.#lastAppend.then(() => {
      this.#settled()
      this.ack(origin, seq, at)
    }, err => {
      this.#settled()
      this.#host.fail(err)
    })
  }

  /** Resolves when every update appended so far is durable (the caller applies what is queued first). */
  whenFlushed(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve()
    return new Promise(resolve => this.#flushWaiters.push(resolve))
  }

  #settled(): void {
    this.#inFlight--
    if (this.#inFlight === 0 && this.#flushWaiters.length > 0) {
      const waiters = this.#flushWaiters
      this.#flushWaiters = []
      for (const w of waiters) w()
    }
  }
}
