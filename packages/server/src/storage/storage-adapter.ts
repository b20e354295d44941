/**
 * The storage model: one append-only update log per document plus at most one
 * snapshot. Compaction folds a prefix of the log into a new snapshot, so a load
 * reads one snapshot and a bounded tail.
 *
 * Sequence numbers are assigned by the adapter, increase strictly within a
 * document, and are never reused.
 */
export interface StoredUpdate {
  seq: number
  update: Uint8Array
  /** Who sent the update, when known. */
  userId: string | null
  /** Milliseconds since the epoch at which the server received it. */
  at: number
}

export interface LoadedDocument {
  /** The latest snapshot, or null when the document has none. */
  snapshot: Uint8Array | null
  /** The seq up to which (inclusive) the snapshot covers the log; 0 without a snapshot. */
  snapshotSeq: number
  /** Log entries after the snapshot, in seq order. */
  updates: StoredUpdate[]
}

export interface AppendRecord {
  update: Uint8Array
  userId?: string | null
  at?: number
  /** The edit's W3C traceparent (stores that ship to other regions keep it with the update; others ignore it). */
  trace?: string | null
}

export interface DocumentInfo {
  name: string
  /** Highest seq in the log (or the snapshot's seq). */
  lastSeq: number
  /** Number of log entries after the snapshot. */
  tailUpdates: number
  /** Total bytes of snapshot plus tail. */
  bytes: number
  updatedAt: number
}

/** A version of a document: a full snapshot kept apart from the log (compaction never touches it). */
export interface StoredVersion {
  id: string
  /** `auto`: a checkpoint the server took; `named`: created by someone (kept by retention). */
  kind: 'auto' | 'named'
  name: string | null
  /** ms since the epoch */
  createdAt: number
  /** Who created a named version (null for checkpoints). */
  createdBy: string | null
  /** Users whose updates it holds since the previous version. */
  authors: string[]
  /** The log position it covers. */
  seq: number
  /** Size of its snapshot. Versions with the same content share one stored copy (see `versionStorage`). */
  bytes: number
}

export type NewVersion = Omit<StoredVersion, 'bytes'> & { snapshot: Uint8Array }

/** What a document's versions take in the store: their snapshots are stored once per distinct content. */
export interface VersionStorage {
  versions: number
  /** Distinct snapshots stored (versions with identical content share one). */
  snapshots: number
  /** Bytes of those snapshots. */
  bytes: number
}

/** History: versions and who wrote with which Yjs client id (both survive compaction). */
export interface HistoryStore {
  /**
   * Store a version. Its snapshot is stored once per distinct content (SHA-256) within the
   * document: a version whose snapshot equals one already stored (no change since) refers to
   * those bytes instead of copying them.
   */
  saveVersion(document: string, version: NewVersion): Promise<void>
  /** Oldest first. */
  listVersions(document: string): Promise<StoredVersion[]>
  loadVersion(document: string, id: string): Promise<{ version: StoredVersion; snapshot: Uint8Array } | null>
  /** Remove `auto` versions created before `olderThan` (ms since the epoch); named ones stay. Returns how many. */
  pruneVersions(document: string, olderThan: number): Promise<number>
  /** Remove one version (a snapshot another version shares stays). Resolves true when it existed. */
  deleteVersion(document: string, id: string): Promise<boolean>
  /** How many versions the document has, and the distinct snapshots and bytes they hold. */
  versionStorage(document: string): Promise<VersionStorage>
  /** Who writes with these Yjs client ids (the first writer of a client id keeps it). */
  recordAuthors(document: string, authors: { client: number; userId: string }[]): Promise<void>
  loadAuthors(document: string): Promise<Map<number, string>>
}

export interface StorageAdapter extends HistoryStore {
  /** Short name for logs: `memory`, `sqlite`, ... */
  readonly kind: string
  load(document: string): Promise<LoadedDocument>
  /**
   * Append one update. Resolves with its seq only once the append is durable.
   * Appends are group-committed: everything enqueued while a commit is in
   * flight goes into the next commit. The adapter may keep a reference to
   * `record.update` until the promise settles: do not mutate it before then.
   */
  append(document: string, record: AppendRecord): Promise<number>
  /**
   * Replace the log up to `upToSeq` (inclusive) with `snapshot`, atomically.
   * `snapshot` must contain every update with seq <= upToSeq.
   * A snapshot older than the current one is ignored.
   */
  compact(document: string, snapshot: Uint8Array, upToSeq: number): Promise<void>
  /**
   * Take or renew a lease on compacting `document` for `ttlMs`: true when `holder` has it now
   * (nobody had it, it expired, or `holder` had it already). Stores shared by several nodes
   * implement it so one node at a time compacts a document; a holder that dies loses the lease
   * when it expires. A store used by one process may omit it.
   */
  lease?(document: string, holder: string, ttlMs: number): Promise<boolean>
  /** Give a lease back before it expires (no-op when `holder` does not hold it). */
  releaseLease?(document: string, holder: string): Promise<void>
  /** Remove the document's log, snapshot, versions and authors. */
  delete(document: string): Promise<void>
  list(): Promise<DocumentInfo[]>
  /** Resolves once every append enqueued before the call is durable (rejects if one failed). */
  flush(): Promise<void>
  /** Quick check that the store answers, for /readyz. */
  ping(): Promise<void>
  /** Flush and release resources. Further calls reject. */
  close(): Promise<void>
}
