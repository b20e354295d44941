import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { StorageAdapter, StoredVersion } from '../storage/storage-adapter.js'
import type { DocumentEventHandler } from './ports.js'
import { DEFAULTS } from '../config/server-config.js'

/** When a document's versions are saved on their own (checkpoints) and how long they are kept. */
export interface VersionPolicy {
  /** A checkpoint is taken once the first change after the last version is this old (and when the last session leaves). 0: only when the last session leaves. */
  checkpointEveryMs: number
  /** Checkpoints older than this are pruned when a new version is saved (named versions stay). 0: keep all. */
  retentionMs: number
  /** The last editor leaving takes no checkpoint within this long of the previous version (default 60 s): the log keeps those changes. */
  minCheckpointIntervalMs?: number
}

export interface VersionsOptions {
  storage: StorageAdapter
  logger: Logger
  /** Without a policy, no checkpoint is taken and no event is emitted (versions are saved on request only). */
  versions?: VersionPolicy
  /** document.changed (each durable update), document.created (its first), version.created. */
  onEvent?: DocumentEventHandler
}

/** What versions read of their document. */
export interface VersionsHost {
  readonly name: string
  /** Neither failed nor destroyed. */
  readonly open: boolean
  /** The whole document as one update. */
  encodeState(): Uint8Array
  /** Resolves when every update applied so far is durable. */
  whenFlushed(): Promise<void>
  /** The seq of the last durable log entry. */
  readonly lastDurableSeq: number
}

/**
 * A document's versions: snapshots kept apart from the log, with who changed the document
 * since the previous one. Checkpoints are taken by the policy (a while after the first change,
 * and when the last editor leaves); the document's events are emitted here too.
 */
export class Versions {
  readonly #host: VersionsHost
  readonly #opts: VersionsOptions
  /** Since the last version: durable updates, their authors, and when the first of them was stored. */
  #changes = 0
  #authors = new Set<string>()
  #firstChangeAt = 0
  /** A version being saved (unload waits for it). */
  #saving: Promise<unknown> | null = null
  /** Loaded with nothing stored: its first durable update creates it. */
  #isNew: boolean
  /** When this node last saved a version of the document (ms since the epoch; 0: not since the load). */
  #lastVersionAt = 0

  constructor(host: VersionsHost, opts: VersionsOptions, isNew: boolean) {
    this.#host = host
    this.#opts = opts
    this.#isNew = isNew
  }

  /** A version being saved, if any. */
  get saving(): Promise<unknown> | null {
    return this.#saving
  }

  /** Bookkeeping for a durable update: checkpoints, events. */
  noteDurable(userId: string | null): void {
    const policy = this.#opts.versions
    if (policy === undefined) return
    if (this.#changes++ === 0) this.#firstChangeAt = Date.now()
    if (userId !== null) this.#authors.add(userId)
    const onEvent = this.#opts.onEvent
    if (this.#isNew) {
      this.#isNew = false
      onEvent?.('document.created', { document: this.#host.name, createdBy: userId })
    }
    onEvent?.('document.changed', { document: this.#host.name, updates: 1 })
    if (policy.checkpointEveryMs > 0 && this.#saving === null && Date.now() - this.#firstChangeAt >= policy.checkpointEveryMs) this.#checkpoint()
  }

  /** The last session left: a checkpoint of what the editors did (unless one was saved a moment ago). */
  lastSessionLeft(): void {
    const policy = this.#opts.versions
    if (this.#changes > 0 && policy !== undefined && this.#host.open &&
      Date.now() - this.#lastVersionAt >= (policy.minCheckpointIntervalMs ?? DEFAULTS.minCheckpointIntervalMs)) {
      this.#checkpoint()
    }
  }

  #checkpoint(): void {
    if (this.#saving !== null) return
    const saving = this.create('auto', null, null).catch(err => this.#opts.logger.warn({ err, document: this.#host.name }, 'checkpoint failed'))
    this.#saving = saving
    void saving.finally(() => { if (this.#saving === saving) this.#saving = null })
  }

  /**
   * Save a version: the document's whole state now (a snapshot kept apart from the log),
   * with who changed it since the previous version. Resolves once it is stored.
   */
  async create(kind: 'auto' | 'named', name: string | null, createdBy: string | null): Promise<StoredVersion> {
    const document = this.#host.name
    const storage = this.#opts.storage
    const snapshot = this.#host.encodeState()
    const authors = [...this.#authors]
    this.#authors = new Set()
    this.#changes = 0
    await this.#host.whenFlushed()
    const version = { id: randomUUID(), kind, name, createdAt: Date.now(), createdBy, authors, seq: this.#host.lastDurableSeq }
    this.#lastVersionAt = version.createdAt
    await storage.saveVersion(document, { ...version, snapshot })
    const retention = this.#opts.versions?.retentionMs ?? 0
    if (retention > 0) await storage.pruneVersions(document, Date.now() - retention)
    this.#opts.logger.debug({ document, version: version.id, kind, bytes: snapshot.length }, 'version saved')
    // (emitted only with a policy, as every document event)
    if (this.#opts.versions !== undefined) this.#opts.onEvent?.('version.created', { document, version: { ...version, bytes: snapshot.length } })
    return { ...version, bytes: snapshot.length }
  }
}
