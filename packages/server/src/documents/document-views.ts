import * as Y from 'yjs'
import type { SyncReplies, SyncReply } from './sync-replies.js'

/** What a document reports of itself. */
export interface DocumentStatsSource {
  readonly failed: boolean
  readonly updatesApplied: number
  readonly lastChangeAt: number
  readonly approxBytes: number
  readonly appendsInFlight: number
  readonly tail: { updates: number; bytes: number }
}

/** A document's figures, read-only (`doc.stats`): for the admin API and the stats samples. */
export class DocumentStats {
  readonly #source: DocumentStatsSource

  constructor(source: DocumentStatsSource) {
    this.#source = source
  }

  /** Whether the document failed (or was closed for deletion) and takes no more updates. */
  get failed(): boolean {
    return this.#source.failed
  }

  /** Client updates that changed the document since it was loaded on this node. */
  get updatesApplied(): number {
    return this.#source.updatesApplied
  }

  /** When an update last changed the document on this node (ms since the epoch; 0: not since the load). */
  get lastChangeAt(): number {
    return this.#source.lastChangeAt
  }

  /** The encoded size of the document, approximately. */
  get approxBytes(): number {
    return this.#source.approxBytes
  }

  /** Updates not yet durable. */
  get appendsInFlight(): number {
    return this.#source.appendsInFlight
  }

  /** Log entries after the latest snapshot (what the next load would replay). */
  get tail(): { updates: number; bytes: number } {
    return this.#source.tail
  }
}

export interface DocumentSyncHost {
  /** Applies what is queued for the document. */
  drain(): void
  /** The document's Y.Doc (integrating a lazily loaded document first). */
  readonly ydoc: Y.Doc
  /** Runs `fn` once the document is integrated into its Y.Doc. */
  whenIntegrated(fn: () => void): void
}

/**
 * What peers read of a document (`doc.sync`): its state vector, diffs, the answers to sync step 1
 * and the whole state. Each covers everything received before it (what is queued is applied first).
 */
export class DocumentSync {
  readonly #replies: SyncReplies
  readonly #host: DocumentSyncHost

  constructor(replies: SyncReplies, host: DocumentSyncHost) {
    this.#replies = replies
    this.#host = host
  }

  stateVector(): Uint8Array {
    this.#host.drain()
    return Y.encodeStateVector(this.#host.ydoc)
  }

  /** What a peer with `stateVector` is missing, as one update. */
  diff(stateVector?: Uint8Array): Uint8Array {
    this.#host.drain()
    return Y.encodeStateAsUpdate(this.#host.ydoc, stateVector)
  }

  /** The whole document as one Yjs update (what is queued is applied first; the last encode is reused while nothing changed). */
  encodeState(): Uint8Array {
    return this.#replies.encodeWhole()
  }

  /**
   * The answer to a peer's sync step 1, now and on this thread: `updates` to send first
   * (possibly none), then `step2` (see `SyncReplies.now`). Throws when the state vector
   * cannot be decoded.
   */
  reply(stateVector?: Uint8Array): SyncReply {
    return this.#replies.now(stateVector)
  }

  /**
   * The answer to a peer's sync step 1 as sessions send it: at once when it is kept or cheap,
   * later when a large document's diff is computed in the merge worker. It covers what the
   * document has applied now; a session that is (or is now made) one of `sessions` receives
   * everything applied after as updates. Throws when the state vector cannot be decoded.
   */
  prepareReply(stateVector?: Uint8Array): SyncReply | Promise<SyncReply> {
    return this.#replies.prepare(stateVector)
  }

  /**
   * Runs `fn` once the document is integrated into its Y.Doc: now, or right after a
   * lazily loaded document is (see `LiveDocument`). Used for what can wait a moment,
   * like the server's own sync step 1, so the stored bytes go out first.
   */
  whenIntegrated(fn: () => void): void {
    this.#host.whenIntegrated(fn)
  }
}
