import type { Backplane } from '../backplane/backplane.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { UpdateOrigin } from './origins.js'
import { secondsSince, type DocumentMetrics, type DocumentTracer, type ReplicationTracker } from './ports.js'
import { DEFAULT_RELAY_CONFIRM_TIMEOUT_MS, UnconfirmedRelays } from './unconfirmed-relays.js'

export interface DurableLogOptions {
  storage: StorageAdapter
  backplane?: Backplane
  metrics?: DocumentMetrics
  tracer?: DocumentTracer
  replication?: ReplicationTracker
  /** How long another node's relayed update may stay unconfirmed before this node appends it itself (ms, default 1,000). */
  relayConfirmTimeoutMs?: number
}

/** What the log tells its document. */
export interface DurableLogHost {
  /** An update is durable (before its sender is acked): `clients` are the Yjs clients whose items it carries. */
  durable(clients: ReadonlyMap<number, number>, userId: string | null, update: Uint8Array): void
  /** An append settled successfully (compaction may be due). */
  appended(): void
  /** This node appended another node's relayed update itself (it stayed unconfirmed): `writer` wrote it. */
  appendedRelayed(update: Uint8Array, writer: string | null): void
  /** Storage failed: the document can no longer guarantee durability. */
  fail(err: unknown): void
}

/**
 * A document's side of its durable log: each applied client update appended (storage commits
 * them in groups and in order), relayed to the other nodes at once and confirmed to them once it
 * is durable, acked to its sender only once it is durable (and everything it may build on is);
 * the other nodes' relayed updates not confirmed yet (`relays`); the barrier after which an update
 * that changed nothing is acked; the flush waiters; and the log tail's size (what the next load
 * replays, what compaction folds).
 */
export class DurableLog {
  readonly #document: string
  readonly #opts: DurableLogOptions
  readonly #host: DurableLogHost
  #inFlight = 0
  #lastAppend: Promise<unknown> = Promise.resolve()
  #flushWaiters: (() => void)[] = []
  /** The W3C traceparent of the edit being applied now (set by the document around its apply span). */
  trace: string | null = null
  /** The seq of the last durable log entry this node knows of. */
  lastDurableSeq = 0
  /** Log entries after the latest snapshot (what the next load would replay). */
  tailUpdates = 0
  tailBytes = 0
  /** Other nodes' updates this node applied before they were durable, until they are (see `UnconfirmedRelays`). */
  readonly relays: UnconfirmedRelays

  constructor(document: string, opts: DurableLogOptions, host: DurableLogHost) {
    this.#document = document
    this.#opts = opts
    this.#host = host
    this.relays = new UnconfirmedRelays({
      append: (update, writer) => this.#appendRelayed(update, writer),
      fail: err => this.#host.fail(err),
    }, { confirmTimeoutMs: opts.relayConfirmTimeoutMs ?? DEFAULT_RELAY_CONFIRM_TIMEOUT_MS })
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
    const trace = this.trace
    const span = tracer?.startSpan('concord.storage.append', { 'concord.document': this.#document, 'concord.bytes': update.length, 'concord.storage': this.#opts.storage.kind }, trace) ?? null
    const userId = origin?.userId ?? null
    // what other nodes relayed before this update was applied: it may build on it
    const relayedBefore = this.relays.mark()
    const appended = this.#opts.storage.append(this.#document, trace === null ? { update, userId, at: Date.now() } : { update, userId, at: Date.now(), trace })
    this.#lastAppend = appended
    // Other nodes get the update at once, before it is durable (the commit is off the cross-node
    // path), and a confirmation once it is. Until then they treat it as not durable: a node that
    // applied content nobody had stored would treat a client's re-send of it (after the origin
    // died) as nothing new, and ack it without it ever being stored. So a node appends what stays
    // unconfirmed, and acks nothing that may depend on it before it is durable (`UnconfirmedRelays`).
    // (a backplane without relays gets the update once it is durable)
    const backplane = this.#opts.backplane
    const relayId = backplane?.relayUpdate?.(this.#document, update, userId, trace) ?? null
    if (relayId !== null) this.#opts.metrics?.backplanePublished.inc()
    appended.then(logSeq => {
      const metrics = this.#opts.metrics
      metrics?.storageAppend.observe(secondsSince(appendStart))
      tracer?.endSpan(span, undefined, { 'concord.seq': logSeq })
      if (relayId !== null) {
        backplane!.confirmDurable?.(this.#document, relayId)
      } else if (backplane !== undefined) {
        backplane.publishUpdate(this.#document, update, userId, trace)
        metrics?.backplanePublished.inc()
      }
      if (logSeq > this.lastDurableSeq) this.lastDurableSeq = logSeq
      this.tailUpdates++
      this.tailBytes += update.length
      this.#host.durable(clients, userId, update)
      if (seq > 0 && origin !== null && this.relays.size === 0) {
        // (the common case, and always on a single node: no closure per ack)
        this.ack(origin, seq, at)
        this.#settled()
      } else if (seq > 0 && origin !== null) {
        this.relays.whenSettled(relayedBefore, () => {
          this.ack(origin, seq, at)
          this.#settled()
        }, () => this.#settled())
      } else {
        this.#settled()
      }
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

  /**
   * Ack an update that changed nothing once whatever carried its content before is durable: this
   * node's appends queued before it, and other nodes' relayed updates, which this node appends now
   * unless already confirmed (the content may exist only in them: its origin may have died).
   */
  ackAfterBarrier(origin: UpdateOrigin, seq: number, at: number): void {
    this.#inFlight++
    const relayedBefore = this.relays.mark()
    this.relays.persist(relayedBefore)
    this.#lastAppend.then(() => {
      this.relays.whenSettled(relayedBefore, () => {
        this.#settled()
        this.ack(origin, seq, at)
      }, () => this.#settled())
    }, err => {
      this.#settled()
      this.#host.fail(err)
    })
  }

  /**
   * Resolves when every update applied so far is durable (the caller applies what is queued
   * first): this node's appends, and other nodes' relayed updates (confirmed by their origin, or
   * appended here once unconfirmed for too long; `persistRelayed` first appends them now).
   */
  whenFlushed(): Promise<void> {
    return this.relays.settled().then(() => {
      if (this.#inFlight === 0) return
      return new Promise<void>(resolve => this.#flushWaiters.push(resolve))
    })
  }

  /** Append every relayed update not confirmed yet now (before an unload, after a backplane outage). */
  persistRelayed(): void {
    this.relays.persist()
  }

  /** This node's own copy of another node's relayed update that stayed unconfirmed: not relayed again, not acked. */
  #appendRelayed(update: Uint8Array, writer: string | null): Promise<void> {
    this.#inFlight++
    const appended = this.#opts.storage.append(this.#document, { update, userId: writer, at: Date.now() })
    this.#lastAppend = appended
    return appended.then(logSeq => {
      if (logSeq > this.lastDurableSeq) this.lastDurableSeq = logSeq
      this.tailUpdates++
      this.tailBytes += update.length
      this.#host.appendedRelayed(update, writer)
      this.#settled()
      this.#host.appended()
    }, err => {
      this.#settled()
      throw err
    })
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
