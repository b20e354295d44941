import * as Y from 'yjs'
import type { DocumentMetrics } from './ports.js'
import type { MergeWorker } from './merge-worker.js'

/** The answer to a peer's sync step 1: `updates` to send first (possibly none), then `step2`. */
export interface SyncReply {
  updates: Uint8Array[]
  step2: Uint8Array
}

/** Documents whose encoded state is at least this large keep it for sync replies (see `SyncReplies`). */
export const LARGE_DOCUMENT_BYTES = 256 * 1024

/** Updates since the base are merged in groups of this many (Y.mergeUpdates grows faster than linearly). */
const MERGE_GROUP = 64

/** The document whose replies these are. */
export interface SyncRepliesHost {
  /** The document's Y.Doc (integrating a lazily loaded document first). */
  readonly ydoc: Y.Doc
  /** Applies what is queued for the document: a reply covers everything received before it. */
  drain(): void
  /** The document's encoded size, approximately. */
  readonly approxBytes: number
}

export interface SyncRepliesOptions {
  compactEveryBytes: number
  compactEveryUpdates: number
  metrics?: DocumentMetrics
  /** Where large diffs and merges run; without it, on the main thread. */
  worker?: MergeWorker
}

/**
 * The answers to peers' sync step 1 for one document, and the encoded state kept for them.
 *
 * A large document keeps an encoded base state (taken at load, at compaction, or at the first
 * full reply) and every update applied since: together they are the whole document. A peer
 * that holds little of it gets those bytes as they are; a peer that holds more gets a diff
 * computed from them in the merge worker. When the updates since grow long, the worker folds
 * them into a new base. So however many peers ask, the main thread encodes a large document at
 * most once per base (measured: 70 ms for a 4 MB document, a second for 10 MB of small edits;
 * forty step 1 frames on a 4 MB document stalled every other document for 4 s before).
 *
 * A small document's full state is encoded at most once per change of the document, and the
 * last diff is reused for the same state vector while nothing changed.
 *
 * Order: a reply covers what the document had applied when it was asked for. Whatever is
 * applied after that reaches the session as updates, possibly before the reply computed off
 * the main thread; Yjs holds such updates until what they build on arrives, so the session
 * ends with everything either way.
 */
export class SyncReplies {
  readonly #host: SyncRepliesHost
  readonly #opts: SyncRepliesOptions
  #base: Uint8Array | null = null
  #since: Uint8Array[] = []
  #sinceBytes = 0
  /** `#since` merged in complete groups of MERGE_GROUP (filled as needed). */
  #groups: Uint8Array[] = []
  /** The incomplete last group merged, for the length of `#since` it was merged at. */
  #tail: { length: number; update: Uint8Array } | null = null
  #folding = false
  /** Bumped by every transaction on the Y.Doc: cached encodes are valid while it stays the same. */
  #version = 0
  #full: { version: number; update: Uint8Array } | null = null
  #lastDiff: { version: number; stateVector: Uint8Array; reply: SyncReply } | null = null

  constructor(doc: Y.Doc, host: SyncRepliesHost, opts: SyncRepliesOptions) {
    this.#host = host
    this.#opts = opts
    doc.on('afterTransaction', () => { this.#version++ })
  }

  /**
   * A reply now, on this thread. For a large document and a peer that holds little of it,
   * the kept base state and the updates since, already encoded; the peer integrates the
   * updates once the base arrives. Otherwise a diff encoded here. Throws when the state
   * vector cannot be decoded.
   */
  now(stateVector?: Uint8Array): SyncReply {
    this.#host.drain()
    if (this.#holdsLittle(stateVector)) return this.#whole()
    return this.#encodeDiff(stateVector!)
  }

  /**
   * A reply, maybe later: as `now`, except that a diff of a large document is computed in the
   * merge worker from the kept state (the promise never rejects: on a worker failure it is
   * encoded here). Throws when the state vector cannot be decoded.
   */
  prepare(stateVector?: Uint8Array): SyncReply | Promise<SyncReply> {
    this.#host.drain()
    if (this.#holdsLittle(stateVector)) return this.#whole()
    const sv = stateVector!
    const worker = this.#opts.worker
    if (worker === undefined || !worker.available || this.#host.approxBytes < LARGE_DOCUMENT_BYTES) return this.#encodeDiff(sv)
    const cached = this.#cachedDiff(sv)
    if (cached !== null) return cached
    // a document that grew large here has no base yet: its first full encode becomes it
    if (this.#base === null) this.#encodeFull()
    const base = this.#base
    if (base === null) return this.#encodeDiff(sv)
    const version = this.#version
    return worker.diff(base, this.#sinceMerged(), sv).then(reply => {
      this.#opts.metrics?.syncReply('worker')
      if (version === this.#version) this.#lastDiff = { version, stateVector: sv.slice(), reply }
      return reply
    }, () => this.#encodeDiff(sv)) // what was applied since the request reaches the session as updates; a diff of now covers it too
  }

  /** The whole document as one update, reusing the last encode while nothing changed. */
  encodeWhole(): Uint8Array {
    this.#host.drain()
    return this.#encodeFull(false)
  }

  /** A new base (at load or compaction) with the updates applied since it; a small document keeps none. */
  setBase(base: Uint8Array, since: Uint8Array[]): void {
    this.#groups = []
    this.#tail = null
    if (base.length < LARGE_DOCUMENT_BYTES) {
      this.#base = null
      this.#since = []
      this.#sinceBytes = 0
      return
    }
    this.#base = base
    this.#since = since
    this.#sinceBytes = since.reduce((n, u) => n + u.length, 0)
    if (this.#sinceTooLong(1)) this.setBase(new Uint8Array(0), [])
  }

  /** An update the document applied (as its sessions receive it). */
  keep(update: Uint8Array): void {
    // the document changed: earlier encodes are stale (dropped now, not kept in memory until the next one)
    this.#full = null
    this.#lastDiff = null
    if (this.#base === null) return
    this.#since.push(update)
    this.#sinceBytes += update.length
    if (!this.#sinceTooLong(1)) return
    const worker = this.#opts.worker
    if (worker !== undefined && worker.available) {
      if (!this.#folding) this.#fold(worker)
      // a fold that cannot keep up: no copy is kept (as without a worker)
      if (this.#sinceTooLong(2)) this.setBase(new Uint8Array(0), [])
      return
    }
    this.setBase(new Uint8Array(0), [])
  }

  /** The base and the updates since merged into a new base, in the worker; the updates that arrive meanwhile stay in `#since`. */
  #fold(worker: MergeWorker): void {
    this.#folding = true
    const base = this.#base!
    const count = this.#since.length
    const bytes = this.#sinceBytes
    worker.fold(base, this.#since.slice()).then(folded => {
      this.#folding = false
      if (this.#base !== base) return
      this.#base = folded
      this.#since = this.#since.slice(count)
      this.#sinceBytes -= bytes
      this.#groups = []
      this.#tail = null
    }, () => {
      this.#folding = false
      if (this.#base === base) this.setBase(new Uint8Array(0), [])
    })
  }

  /**
   * Compaction keeps the updates since the base few; when it falls behind (or keeps
   * failing), merging them for each joining peer would cost more than encoding the
   * document once, so they are folded into a new base (or no copy is kept).
   */
  #sinceTooLong(factor: number): boolean {
    return this.#sinceBytes > factor * Math.max(2 * this.#opts.compactEveryBytes, 8 * 1024 * 1024) || this.#since.length > factor * 4 * this.#opts.compactEveryUpdates
  }

  /** The whole document: the kept base and the updates since, or one encode reused while nothing changed. */
  #whole(): SyncReply {
    if (this.#base !== null) {
      this.#opts.metrics?.syncReply('kept')
      return { updates: this.#sinceMerged(), step2: this.#base }
    }
    const reused = this.#full?.version === this.#version
    const update = this.#encodeFull()
    this.#opts.metrics?.syncReply(reused ? 'reused' : 'encoded')
    return { updates: this.#base === update ? this.#sinceMerged() : [], step2: update }
  }

  /** The whole document encoded here (or the last such encode, while nothing changed); a large one becomes the base. */
  #encodeFull(forReply = true): Uint8Array {
    let update: Uint8Array
    if (this.#full?.version === this.#version) {
      update = this.#full.update
    } else {
      update = forReply ? this.#encode() : Y.encodeStateAsUpdate(this.#host.ydoc)
      this.#full = { version: this.#version, update }
    }
    // a large document keeps it as its base: the next peers get the same bytes and the updates since
    if (this.#base === null && update.length >= LARGE_DOCUMENT_BYTES) this.setBase(update, [])
    return update
  }

  #encodeDiff(stateVector: Uint8Array): SyncReply {
    const cached = this.#cachedDiff(stateVector)
    if (cached !== null) return cached
    const reply = { updates: [], step2: this.#encode(stateVector) }
    this.#opts.metrics?.syncReply('encoded')
    this.#lastDiff = { version: this.#version, stateVector: stateVector.slice(), reply }
    return reply
  }

  #cachedDiff(stateVector: Uint8Array): SyncReply | null {
    const last = this.#lastDiff
    if (last === null || last.version !== this.#version || !sameBytes(last.stateVector, stateVector)) return null
    this.#opts.metrics?.syncReply('reused')
    return last.reply
  }

  #encode(stateVector?: Uint8Array): Uint8Array {
    const doc = this.#host.ydoc
    this.#opts.metrics?.syncFullEncodes.inc()
    return Y.encodeStateAsUpdate(doc, stateVector)
  }

  /** `#since` in groups of at most MERGE_GROUP updates, each merged once. */
  #sinceMerged(): Uint8Array[] {
    const since = this.#since
    const complete = Math.floor(since.length / MERGE_GROUP)
    while (this.#groups.length < complete) {
      const i = this.#groups.length * MERGE_GROUP
      this.#groups.push(Y.mergeUpdates(since.slice(i, i + MERGE_GROUP)))
    }
    const rest = since.length - complete * MERGE_GROUP
    if (rest === 0) return this.#groups.slice()
    if (rest === 1) return [...this.#groups, since[since.length - 1]!]
    if (this.#tail?.length !== since.length) this.#tail = { length: since.length, update: Y.mergeUpdates(since.slice(complete * MERGE_GROUP)) }
    return [...this.#groups, this.#tail.update]
  }

  /** True when a peer with this state vector has less than a tenth of the document's items. */
  #holdsLittle(stateVector?: Uint8Array): boolean {
    if (stateVector === undefined || stateVector.length === 0) return true
    const theirs = Y.decodeStateVector(stateVector)
    if (theirs.size === 0) return true
    const doc = this.#host.ydoc
    let ours = 0
    let held = 0
    for (const client of doc.store.clients.keys()) {
      const n = Y.getState(doc.store, client)
      ours += n
      held += Math.min(n, theirs.get(client) ?? 0)
    }
    return held * 10 < ours
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
