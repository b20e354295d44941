import * as Y from 'yjs'
import { SharedMessage } from './shared-message.js'
import type { DocumentSession } from './document-session.js'
import type { DocumentMetrics } from './ports.js'
import { microtask } from './microtask.js'
import { BIG_ROOM_SESSIONS, BIG_ROOM_WINDOW_MS, RoomTick } from './room-tick.js'

/** Up to this many updates applied together go out unmerged (see `FanOut`). */
const SEPARATE_MAX = 8

/** A burst is merged into frames of at most this many updates (Y.mergeUpdates grows faster than linearly). */
export const MERGE_GROUP = 64

/**
 * At most this many flushes by microtask (all documents together) before the event loop turns;
 * after them, flushes wait for the loop's check phase, as one batch per document. A poll phase
 * that brings this many reads means a busy server: sending each read's updates at once then costs
 * a socket write per read and recipient, where the batch costs one per recipient (heavy fan-out,
 * 200 rooms x 10 x 5/s: p50 500 ms by microtask against 220 ms batched). A quiet server sends at
 * once. The cap also ends a chain of edits answering edits (two bots on direct connections), which
 * would otherwise run microtasks for ever, and no socket, timer or heartbeat would run again.
 */
export const MAX_CHAINED_FLUSHES = 32

/** Flushes by microtask since the event loop last turned, every document's (reset from the check phase). */
let chained = 0
let resetScheduled = false
const resetChain = (): void => {
  chained = 0
  resetScheduled = false
}

/** Updates at least this large are forwarded on their own, never merged with others. */
export const LARGE_UPDATE_BYTES = 64 * 1024

/** An update to send, and who it came from (not sent back to them; null: everyone gets it). */
export interface Outgoing {
  update: Uint8Array
  origin: object | null
  /** When it arrived (performance.now()): the delivery latency is measured from here. */
  at: number
}

/**
 * Everything applied together (what one socket read brought, or a synchronous run of applies) goes
 * out together; in a big room, everything since the room's last tick (`room-tick.ts`). A few updates go
 * out as they are, each encoded once and shared, handed to each socket's kernel
 * buffer in one write (Y.mergeUpdates costs more than the frames it saves when
 * there are few). More than that are merged into frames of at most MERGE_GROUP
 * updates for the sessions that wrote none of them; a session that wrote some
 * gets the others' as they are. Nobody is sent its own updates back.
 */
export class FanOut {
  readonly #document: string
  readonly #sessions: ReadonlySet<DocumentSession>
  readonly #metrics: DocumentMetrics | undefined
  /** Runs the flush from the event loop (a throw fails the document, not the process). */
  readonly #flushContained: () => void
  /** A big room's clock (its document's, shared with presence; else one of its own, every BIG_ROOM_WINDOW_MS). */
  readonly #tick: RoomTick
  #outbox: Outgoing[] = []
  #scheduled = false

  constructor(document: string, sessions: ReadonlySet<DocumentSession>, metrics: DocumentMetrics | undefined, contain: (fn: () => void) => void, tick?: RoomTick) {
    this.#document = document
    this.#sessions = sessions
    this.#metrics = metrics
    this.#flushContained = () => { contain(this.flush) }
    this.#tick = tick ?? new RoomTick(() => BIG_ROOM_WINDOW_MS, this.#flushContained)
  }

  /** Send `update` to every session but `origin`, with the others applied together with it. */
  enqueue(update: Uint8Array, origin: object | null, at: number): void {
    this.#outbox.push({ update, origin, at })
    if (this.#scheduled) return
    this.#scheduled = true
    // a small room's updates go out as soon as the read that brought them is applied (what one read
    // brings is already one batch): waiting for the end of the event loop's poll phase made every
    // update wait for all the other sockets' reads of that phase, p99 30 ms of 20,000 on a loaded
    // machine (docs/benchmarks.md, "Fan-out tail")
    if (this.#sessions.size >= BIG_ROOM_SESSIONS) this.#tick.request()
    else if (chained >= MAX_CHAINED_FLUSHES) setImmediate(this.#flushContained)
    else {
      chained++
      if (!resetScheduled) {
        resetScheduled = true
        setImmediate(resetChain)
      }
      microtask(this.#flushContained)
    }
  }

  /** Forget what is queued (the document leaves memory). */
  clear(): void {
    this.#outbox = []
  }

  readonly flush = (): void => {
    this.#scheduled = false
    const items = this.#outbox
    this.#outbox = []
    if (items.length === 0 || this.#sessions.size === 0) return
    const start = performance.now()
    this.#fanoutItems(items)
    const metrics = this.#metrics
    if (metrics === undefined) return
    const end = performance.now()
    metrics.fanout.observe((end - start) / 1000)
    for (const item of items) metrics.updateDelivery.observe((end - item.at) / 1000)
  }

  #fanoutItems(items: Outgoing[]): void {
    // in a big room a merge (once) costs less than the frames it saves (once per recipient)
    if (items.length <= SEPARATE_MAX && (items.length === 1 || this.#sessions.size < BIG_ROOM_SESSIONS)) {
      this.#sendSeparately(items)
      return
    }
    // Y.mergeUpdates grows faster than linearly with the number of updates, so
    // a large burst goes out as a few frames of at most MERGE_GROUP updates each;
    // a large update goes out alone, as received (merging would re-encode all of it)
    let group: Outgoing[] = []
    for (const item of items) {
      if (item.update.length >= LARGE_UPDATE_BYTES) {
        if (group.length > 0) this.#send(group)
        group = []
        this.#send([item])
        continue
      }
      group.push(item)
      if (group.length === MERGE_GROUP) {
        this.#send(group)
        group = []
      }
    }
    if (group.length > 0) this.#send(group)
  }

  #sendSeparately(items: Outgoing[]): void {
    const messages = items.map(i => new SharedMessage('update', this.#document, i.update))
    if (items.length === 1) {
      const origin = items[0]!.origin
      for (const s of this.#sessions) if (s !== origin) s.sendUpdate(messages[0]!)
      return
    }
    for (const s of this.#sessions) {
      let own = 0
      for (const i of items) if (i.origin === s) own++
      if (own === 0) s.sendUpdates(messages)
      else if (own < items.length) s.sendUpdates(messages.filter((_, k) => items[k]!.origin !== s))
    }
  }

  #send(items: Outgoing[]): void {
    const all = new SharedMessage('update', this.#document, merge(items))
    if (items.length === 1) {
      const origin = items[0]!.origin
      for (const s of this.#sessions) if (s !== origin) s.sendUpdate(all)
      return
    }
    const origins = new Set<object | null>()
    for (const i of items) origins.add(i.origin)
    let separate: SharedMessage[] | null = null
    for (const s of this.#sessions) {
      if (!origins.has(s)) {
        s.sendUpdate(all)
        continue
      }
      // the session wrote part of this batch: it gets the others' updates as they
      // are (one merge per writer would cost more than the frames it saves)
      separate ??= items.map(i => new SharedMessage('update', this.#document, i.update))
      const others = separate.filter((_, k) => items[k]!.origin !== s)
      if (others.length > 0) s.sendUpdates(others)
    }
  }
}

function merge(items: Outgoing[]): Uint8Array {
  return items.length === 1 ? items[0]!.update : Y.mergeUpdates(items.map(i => i.update))
}
