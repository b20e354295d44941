import type { Logger } from 'pino'
import type { ConcordError } from '@concord/protocol'
import type { DocumentSession } from './document-session.js'
import { LiveDocument, type LiveDocumentOptions } from './live-document.js'

/**
 * A counted reference to a loaded document (the document stays in memory while one is held).
 * `release` is idempotent. Not `StorageAdapter.lease`, which is a compaction lock.
 */
export interface DocumentHandle {
  readonly doc: LiveDocument
  release(): void
}

/** @deprecated renamed `DocumentHandle` (a reference count, not the storage's compaction lease). */
export type DocumentLease = DocumentHandle

/** One session's reference: it holds its document's entry, whose `release` (one per document) it calls once. */
class Handle implements DocumentHandle {
  readonly doc: LiveDocument
  #entry: Entry | null

  constructor(doc: LiveDocument, entry: Entry) {
    this.doc = doc
    this.#entry = entry
  }

  release(): void {
    const entry = this.#entry
    this.#entry = null
    entry?.release()
  }
}

interface Entry {
  name: string
  refs: number
  loading: Promise<LiveDocument>
  doc: LiveDocument | null
  unloading: boolean
  /** Drop one reference (shared by the document's handles, so that a handle holds no closure of its own). */
  release: () => void
}

/**
 * Loaded documents by name. Loads are single-flight (every session that asks
 * while a document loads waits for the same load, so nobody sees it empty),
 * references are counted, and a document is unloaded once its last session
 * has left and its log is flushed.
 */
export class DocumentRegistry {
  readonly #entries = new Map<string, Entry>()
  readonly #opts: Omit<LiveDocumentOptions, 'onFailed'>
  readonly #log: Logger
  #idleWaiters: (() => void)[] = []
  /** Failed documents whose last appends are still settling, by name: a reload waits for them. */
  readonly #evicting = new Map<string, Promise<void>>()
  #closed = false

  constructor(opts: Omit<LiveDocumentOptions, 'onFailed'>) {
    this.#opts = opts
    this.#log = opts.logger
  }

  /** Number of documents loaded or loading. */
  get size(): number {
    return this.#entries.size
  }

  /** Call `fn` for every session of every loaded document. */
  forEachSession(fn: (session: DocumentSession) => void): void {
    for (const entry of this.#entries.values()) {
      if (entry.doc === null) continue
      for (const s of [...entry.doc.sessions]) fn(s)
    }
  }

  /** Call `fn` for every loaded document. */
  forEachDocument(fn: (doc: LiveDocument) => void): void {
    for (const entry of this.#entries.values()) if (entry.doc !== null) fn(entry.doc)
  }

  /** Sessions of the loaded documents (a pass over documents, not sessions). */
  sessionCount(): number {
    let n = 0
    for (const entry of this.#entries.values()) if (entry.doc !== null) n += entry.doc.sessions.size
    return n
  }

  names(): string[] {
    return [...this.#entries.keys()]
  }

  /** The loaded document, if it is loaded (not while it loads; no reference taken). */
  peek(name: string): LiveDocument | null {
    return this.#entries.get(name)?.doc ?? null
  }

  /**
   * Take a reference to `name`, loading it if needed. Release the handle when
   * done; when the load fails, the reference is dropped with it.
   */
  async acquire(name: string): Promise<DocumentHandle> {
    if (this.#closed) throw new Error('the document registry is closed')
    let entry = this.#entries.get(name)
    if (entry === undefined) {
      // a failed instance's appends must settle first, or the reload would miss them
      const evicting = this.#evicting.get(name)
      if (evicting !== undefined) {
        await evicting
        return this.acquire(name)
      }
      const created: Entry = { name, refs: 0, loading: null as unknown as Promise<LiveDocument>, doc: null, unloading: false, release: () => this.#release(created) }
      created.loading = LiveDocument.load(name, {
        ...this.#opts,
        onFailed: doc => this.#evict(created, doc),
      }).then(doc => {
        created.doc = doc
        if (this.#closed || this.#entries.get(name) !== created) {
          // loaded after shutdown began or after eviction: nobody may use it
          doc.destroy()
          throw new Error('the document registry is closed')
        }
        return doc
      }, err => {
        // a failed load leaves nothing behind; the next acquire tries again
        if (this.#entries.get(name) === created) this.#entries.delete(name)
        this.#notifyIdle()
        throw err
      })
      this.#entries.set(name, created)
      entry = created
    }
    entry.refs++
    const taken = entry
    const doc = await taken.loading
    return new Handle(doc, taken)
  }

  #release(entry: Entry): void {
    const name = entry.name
    entry.refs--
    if (entry.refs > 0 || entry.unloading) return
    entry.unloading = true
    void entry.loading.then(async doc => {
      await doc.settleForUnload()
      entry.unloading = false
      if (entry.refs > 0) return
      if (this.#entries.get(name) !== entry) {
        // evicted or registry cleared meanwhile: make sure its timers stop
        doc.destroy()
        return
      }
      this.#entries.delete(name)
      doc.destroy()
      this.#log.debug({ document: name }, 'document unloaded')
      this.#notifyIdle()
    }, () => undefined)
  }

  /** Resolves when no document is loaded. */
  whenEmpty(): Promise<void> {
    if (this.#entries.size === 0) return Promise.resolve()
    return new Promise(resolve => this.#idleWaiters.push(resolve))
  }

  /** Wait until no load is in progress (failed loads included). */
  async settleLoads(): Promise<void> {
    await Promise.allSettled([...this.#entries.values()].map(e => e.loading))
  }

  /** Wait until every loaded document's log is flushed and long log tails are compacted (before a shutdown). */
  async settleAll(): Promise<void> {
    await Promise.all([...this.#entries.values()].map(e => e.loading.then(d => d.settleForUnload(), () => undefined)))
  }

  /** Refuse new acquires and destroy everything (after sessions are gone and logs flushed). */
  destroyAll(): void {
    this.#closed = true
    for (const e of this.#entries.values()) {
      if (e.doc !== null) e.doc.destroy()
      // a load still running destroys its document when it completes (see acquire)
    }
    this.#entries.clear()
    this.#notifyIdle()
  }

  /**
   * Delete a document: its sessions here are told (`error`, closed), what they applied is
   * flushed, and then its log and snapshots are removed from storage. An acquire meanwhile waits
   * and then loads the document afresh (empty). Every node of a cluster runs this for a deleted
   * document, so rows a node was still appending are removed after its own flush too.
   */
  async deleteDocument(name: string, error: ConcordError): Promise<void> {
    const pending = this.#evicting.get(name)
    if (pending !== undefined) await pending
    const entry = this.#entries.get(name)
    if (entry !== undefined) this.#entries.delete(name)
    const done = (async () => {
      const doc = entry === undefined ? null : await entry.loading.catch(() => null)
      if (doc !== null) {
        await doc.closeForDeletion(error)
        doc.destroy()
      }
      await this.#opts.storage.delete(name)
    })()
    const settled = done.catch(() => undefined).finally(() => {
      if (this.#evicting.get(name) === settled) this.#evicting.delete(name)
      this.#notifyIdle()
    })
    this.#evicting.set(name, settled)
    await done
    this.#log.info({ document: name }, 'document deleted')
  }

  #evict(entry: Entry, doc: LiveDocument): void {
    const name = entry.name
    if (this.#entries.get(name) === entry) this.#entries.delete(name)
    const settled = doc.whenFlushed().then(() => {
      if (this.#evicting.get(name) === settled) this.#evicting.delete(name)
      doc.destroy()
      this.#notifyIdle()
    })
    this.#evicting.set(name, settled)
    this.#notifyIdle()
  }

  #notifyIdle(): void {
    if (this.#entries.size > 0 || this.#evicting.size > 0 || this.#idleWaiters.length === 0) return
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }
}
