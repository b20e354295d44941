import * as Y from 'yjs'
import type { Logger } from 'pino'
import type { Backplane } from '../backplane/backplane.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import { foldState } from '../storage/fold.js'
import type { DurableLog } from './durable-log.js'
import type { ClientOwners } from './client-owners.js'
import type { DocumentMetrics } from './ports.js'

/** The byte threshold of compaction applies once the tail has at least this many updates. */
export const MIN_UPDATES_TO_COMPACT_BY_BYTES = 16

/** After a large update, compaction waits for this much quiet (and at most COMPACT_MAX_WAIT_MS). */
const COMPACT_DELAY_MS = 250
const COMPACT_MAX_WAIT_MS = 10_000

/** How long a compaction lease lasts if its holder never gives it back (a crash mid-compaction). */
const COMPACT_LEASE_MS = 30_000

export interface CompactorOptions {
  storage: StorageAdapter
  logger: Logger
  compactEveryUpdates: number
  compactEveryBytes: number
  backplane?: Backplane
  metrics?: DocumentMetrics
}

/** What compaction reads of its document. */
export interface CompactorHost {
  readonly name: string
  /** Neither failed nor destroyed. */
  readonly open: boolean
  readonly destroyed: boolean
  /** The document's Y.Doc (integrating a lazily loaded document first). */
  readonly ydoc: Y.Doc
  /** When an update last changed the document, and when the last large one arrived (ms since the epoch). */
  readonly lastUpdateAt: number
  readonly lastLargeAt: number
  /** A snapshot of the whole document was taken from memory: it is the new base of sync replies and size. */
  compacted(snapshot: Uint8Array): void
}

/**
 * Folds the log tail into a snapshot once it is long (by updates, or by bytes once it has
 * several), from the Y.Doc on a single node, or from the log itself under a lease in a cluster.
 */
export class Compactor {
  readonly #host: CompactorHost
  readonly #log: DurableLog
  readonly #owners: ClientOwners
  readonly #opts: CompactorOptions
  #compacting = false
  /** Settles when the compaction in flight (if any) has finished, successfully or not. */
  #done: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null

  constructor(host: CompactorHost, log: DurableLog, owners: ClientOwners, opts: CompactorOptions) {
    this.#host = host
    this.#log = log
    this.#owners = owners
    this.#opts = opts
  }

  /** Settles when the compaction in flight (if any) has finished. */
  get done(): Promise<void> | null {
    return this.#done
  }

  /** Stop a compaction that waits for quiet (it will not start). */
  stop(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
  }

  /**
   * Before the document leaves memory: a log tail long enough to compact is compacted now (a
   * burst can outrun compaction while the document is open), so the next load reads a
   * snapshot and a short tail. The caller has flushed the log.
   */
  async beforeUnload(): Promise<void> {
    if (this.#done !== null) await this.#done
    const log = this.#log
    if (!this.#host.open || log.tailUpdates < MIN_UPDATES_TO_COMPACT_BY_BYTES) return
    if (log.tailUpdates < this.#opts.compactEveryUpdates && log.tailBytes < this.#opts.compactEveryBytes) return
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
      this.#compacting = false
    }
    if (this.#compacting) return
    this.#compacting = true
    this.#compact()
    if (this.#done !== null) await this.#done
  }

  maybeCompact(): void {
    if (this.#compacting || !this.#host.open) return
    const log = this.#log
    // by bytes only once there are several updates to fold: a tail that is one big paste
    // loads as fast as a snapshot would, and encoding the document for it would stall the room
    const byBytes = log.tailBytes >= this.#opts.compactEveryBytes && log.tailUpdates >= MIN_UPDATES_TO_COMPACT_BY_BYTES
    if (log.tailUpdates < this.#opts.compactEveryUpdates && !byBytes) return
    this.#compacting = true
    if (Date.now() - this.#host.lastLargeAt > COMPACT_MAX_WAIT_MS) {
      this.#compact()
      return
    }
    // Shortly after a large update, wait until the room is quiet for a moment (at most
    // COMPACT_MAX_WAIT_MS): encoding a big document runs on this thread, and the people
    // typing next to a big paste would wait for it.
    const since = Date.now()
    const check = (): void => {
      const now = Date.now()
      if (now - this.#host.lastUpdateAt < COMPACT_DELAY_MS && now - since < COMPACT_MAX_WAIT_MS) {
        this.#timer = setTimeout(check, COMPACT_DELAY_MS)
        this.#timer.unref()
        return
      }
      this.#timer = null
      this.#compact()
    }
    this.#timer = setTimeout(check, COMPACT_DELAY_MS)
    this.#timer.unref()
  }

  #compact(): void {
    if (!this.#host.open) {
      this.#compacting = false
      return
    }
    if (this.#opts.backplane !== undefined) {
      this.#compactFromStorage(this.#opts.backplane.nodeId)
      return
    }
    const name = this.#host.name
    const log = this.#log
    const upToSeq = log.lastDurableSeq
    const countedUpdates = log.tailUpdates
    const countedBytes = log.tailBytes
    // the Y.Doc holds every durable update (each was applied before it was appended)
    let snapshot: Uint8Array
    try {
      // (Yjs includes what it holds back for missing dependencies)
      snapshot = Y.encodeStateAsUpdate(this.#host.ydoc)
    } catch (err) {
      // never let a compaction take the process down: the log stays as it is
      this.#compacting = false
      this.#opts.logger.warn({ err, document: name }, 'compaction could not encode the document; the log is kept')
      return
    }
    this.#host.compacted(snapshot)
    // the log tail holds the writers of client ids whose authors rows may still be on their way
    this.#done = this.#owners.written().then(() => this.#opts.storage.compact(name, snapshot, upToSeq)).then(() => {
      this.#done = null
      log.tailUpdates -= countedUpdates
      log.tailBytes -= countedBytes
      this.#compacting = false
      this.#opts.metrics?.compaction('done')
      this.#opts.logger.debug({ document: name, upToSeq, snapshotBytes: snapshot.length }, 'compacted')
      // appends that landed while compacting may have crossed the threshold again
      this.maybeCompact()
    }, err => {
      this.#done = null
      this.#compacting = false
      this.#opts.metrics?.compaction('failed')
      this.#opts.logger.warn({ err, document: name }, 'compaction failed; will retry after the next append')
    })
  }

  /**
   * One node at a time compacts a document (a lease in the shared store, which expires if its
   * holder dies mid-way; compactions that overlap anyway are safe, only wasteful).
   * With other nodes writing to the same log, this node's Y.Doc may not yet hold an update
   * another node stored (it is still on the backplane), so the snapshot is built from the log
   * itself: the stored snapshot and tail, up to the last seq read.
   */
  #compactFromStorage(holder: string): void {
    const name = this.#host.name
    const log = this.#log
    const countedUpdates = log.tailUpdates
    const countedBytes = log.tailBytes
    const storage = this.#opts.storage
    const metrics = this.#opts.metrics
    const logger = this.#opts.logger
    this.#done = (async () => {
      let leased = false
      try {
        if (storage.lease !== undefined) {
          leased = await storage.lease(name, holder, COMPACT_LEASE_MS)
          if (!leased) {
            // another node is compacting this document: what it folds includes this node's tail
            log.tailUpdates = Math.max(0, log.tailUpdates - countedUpdates)
            log.tailBytes = Math.max(0, log.tailBytes - countedBytes)
            metrics?.compaction('skipped')
            logger.debug({ document: name }, 'compaction skipped: another node holds the lease')
            return
          }
        }
        await this.#owners.written()
        const loaded = await storage.load(name)
        if (loaded.updates.length === 0 || this.#host.destroyed) return
        const upToSeq = loaded.updates[loaded.updates.length - 1]!.seq
        const snapshot = foldState(loaded.snapshot, loaded.updates.map(u => u.update))
        await storage.compact(name, snapshot, upToSeq)
        log.tailUpdates = Math.max(0, log.tailUpdates - countedUpdates)
        log.tailBytes = Math.max(0, log.tailBytes - countedBytes)
        metrics?.compaction('done')
        logger.debug({ document: name, upToSeq, snapshotBytes: snapshot.length }, 'compacted from the log')
      } catch (err) {
        metrics?.compaction('failed')
        logger.warn({ err, document: name }, 'compaction failed; will retry after the next append')
      } finally {
        if (leased) await storage.releaseLease?.(name, holder).catch(() => undefined)
        this.#done = null
        this.#compacting = false
      }
    })()
  }
}
