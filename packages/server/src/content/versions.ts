import { contentUpdate, type ContentInput } from './content-merge.js'
import { foldState } from '../storage/fold.js'
import { ConcordError } from '@concord/protocol'
import type { DocumentRegistry } from '../documents/document-registry.js'
import type { StorageAdapter, StoredVersion } from '../storage/storage-adapter.js'
import { attribution, diffVersions, type AttributedSpan, type DiffOp } from './content-ops.js'
import { restoreUpdate } from './restore.js'

/** What a document looked like at a moment: a version, plus the logged updates after it when the log still has them. */
export interface ContentAt {
  update: Uint8Array
  /** The version it starts from (null: replayed from the start of the log). */
  version: StoredVersion | null
  /** False when updates between the version and the moment were compacted away: the content is the version's. */
  exact: boolean
}

function notFound(message: string): ConcordError {
  return new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', message)
}

/**
 * Versions, time travel, diffs, attribution and restore of documents, over the
 * registry (for documents loaded here) and storage (for the rest).
 */
export class DocumentVersions {
  readonly #registry: DocumentRegistry
  readonly #storage: StorageAdapter
  readonly #maxNamedVersions: number
  /** Per document, the creation or deletion of a named version under way (they run one at a time). */
  readonly #changing = new Map<string, Promise<unknown>>()

  constructor(deps: { registry: DocumentRegistry; storage: StorageAdapter; maxNamedVersions?: number }) {
    this.#registry = deps.registry
    this.#storage = deps.storage
    this.#maxNamedVersions = deps.maxNamedVersions ?? Infinity
  }

  list(document: string): Promise<StoredVersion[]> {
    return this.#storage.listVersions(document)
  }

  /**
   * A named version of the document as it is now. Refused with CONCORD_ERR_LIMIT_NAMED_VERSIONS
   * when the document has `maxNamedVersions` already (checked before the document is loaded;
   * creations and deletions of one document run one at a time on this node, so concurrent
   * requests cannot overshoot the cap here; each node of a cluster checks on its own).
   */
  create(document: string, name: string, createdBy: string | null): Promise<StoredVersion> {
    return this.#oneAtATime(document, async () => {
      const named = (await this.#storage.listVersions(document)).filter(v => v.kind === 'named').length
      if (named >= this.#maxNamedVersions) {
        throw new ConcordError('CONCORD_ERR_LIMIT_NAMED_VERSIONS',
          `document ${document} has ${named} named versions, the most this server keeps per document; ` +
          'delete one (DELETE /v1/documents/{name}/versions/{id}) to make room', { document })
      }
      const lease = await this.#registry.acquire(document)
      try {
        return await lease.doc.versions.create('named', name, createdBy)
      } finally {
        lease.release()
      }
    })
  }

  /**
   * Delete a version. Named versions may be deleted by whoever may create them; checkpoints
   * (`auto`) go by retention, and only an admin (`asAdmin`) may delete one early. A snapshot that
   * another version shares stays stored.
   */
  delete(document: string, id: string, asAdmin: boolean): Promise<StoredVersion> {
    return this.#oneAtATime(document, async () => {
      const version = (await this.#storage.listVersions(document)).find(v => v.id === id)
      if (version === undefined) throw notFound(`document ${document} has no version ${id}`)
      if (version.kind !== 'named' && !asAdmin) {
        throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'checkpoints are removed by retention; only an admin may delete one', { document })
      }
      if (!(await this.#storage.deleteVersion(document, id))) throw notFound(`document ${document} has no version ${id}`)
      return version
    })
  }

  async #oneAtATime<T>(document: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#changing.get(document) ?? Promise.resolve()
    const run = before.then(fn, fn)
    const settled = run.catch(() => undefined)
    this.#changing.set(document, settled)
    try {
      return await run
    } finally {
      if (this.#changing.get(document) === settled) this.#changing.delete(document)
    }
  }

  async version(document: string, id: string): Promise<{ version: StoredVersion; snapshot: Uint8Array }> {
    const found = await this.#storage.loadVersion(document, id)
    if (found === null) throw notFound(`document ${document} has no version ${id}`)
    return found
  }

  /** The document's current state, from memory when loaded here. */
  current(document: string): Promise<Uint8Array> {
    return currentState(this.#registry, this.#storage, document)
  }

  /** The document as it was at `at` (ms since the epoch). */
  async at(document: string, at: number): Promise<ContentAt> {
    const versions = await this.#storage.listVersions(document)
    const base = [...versions].reverse().find(v => v.createdAt <= at) ?? null
    const stored = await this.#storage.load(document)
    const baseSeq = base?.seq ?? 0
    // the log still holds everything after the base when nothing up to base+1 was compacted away
    const covered = stored.snapshotSeq <= baseSeq
    if (base === null && !covered) throw notFound(`document ${document} has no version from before ${new Date(at).toISOString()}, and its older log was compacted`)
    const later = covered ? stored.updates.filter(u => u.seq > baseSeq && u.at <= at).map(u => u.update) : []
    const snapshot = base === null ? null : (await this.version(document, base.id)).snapshot
    return { update: foldState(snapshot, later), version: base, exact: covered }
  }

  /** Text changes from version `from` to version `to` (`current` names the document now). */
  async diff(document: string, from: string, to: string, field?: string): Promise<DiffOp[]> {
    const [older, newer, authors] = await Promise.all([this.#state(document, from), this.#state(document, to), this.#storage.loadAuthors(document)])
    const ops = diffVersions(older, newer, authors, field)
    if (ops === null) throw notFound(`document ${document} has no text${field !== undefined ? ` named ${field}` : ''}`)
    return ops
  }

  /** Who wrote which part of the current text. */
  async attribution(document: string, field?: string): Promise<AttributedSpan[]> {
    const [state, authors] = await Promise.all([this.current(document), this.#storage.loadAuthors(document)])
    const spans = attribution(state, authors, field)
    if (spans === null) throw notFound(`document ${document} has no text${field !== undefined ? ` named ${field}` : ''}`)
    return spans
  }

  /**
   * Bring the document back to a version as a new change: every session receives it like any
   * edit (nobody is disconnected), and offline clients merge their edits into it when they return.
   */
  async restore(document: string, id: string, userId: string | null): Promise<{ changed: boolean; version: StoredVersion }> {
    const { version, snapshot } = await this.version(document, id)
    const lease = await this.#registry.acquire(document)
    try {
      const update = restoreUpdate(lease.doc.sync.encodeState(), snapshot)
      if (update === null) return { changed: false, version }
      const result = await lease.doc.applyServerUpdate(update, userId)
      return { changed: result.changed, version }
    } finally {
      lease.release()
    }
  }

  /** Merge content (text, JSON, ProseMirror JSON) into the document as one change by `userId`. */
  async mergeContent(document: string, input: ContentInput, userId: string | null): Promise<{ changed: boolean }> {
    const lease = await this.#registry.acquire(document)
    try {
      const update = contentUpdate(lease.doc.sync.encodeState(), input)
      if (update === null) return { changed: false }
      return await lease.doc.applyServerUpdate(update, userId)
    } finally {
      lease.release()
    }
  }

  async #state(document: string, id: string): Promise<Uint8Array> {
    return id === 'current' ? this.current(document) : (await this.version(document, id)).snapshot
  }
}

/** A document's whole state as one update: from memory when it is loaded here, else from storage. */
export async function currentState(registry: DocumentRegistry, storage: StorageAdapter, document: string): Promise<Uint8Array> {
  const doc = registry.peek(document)
  if (doc !== null && !doc.stats.failed) return doc.sync.encodeState()
  const stored = await storage.load(document)
  return foldState(stored.snapshot, stored.updates.map(u => u.update))
}
