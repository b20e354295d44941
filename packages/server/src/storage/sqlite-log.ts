import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { AppendRecord, DocumentInfo, LoadedDocument, NewVersion, StoredUpdate, StoredVersion, VersionStorage } from './storage-adapter.js'
import { snapshotHash } from './snapshot-hash.js'
import { ConcordError } from '@concord/protocol'
import { ConfigError } from '../config/server-config.js'

export interface SqliteStorageOptions {
  /** Folder that holds `concord.db` (created if missing). Use `filename` for an exact path. */
  dataDir?: string
  /** Exact database file path; `:memory:` for a private in-memory database. */
  filename?: string
  /**
   * SQLite `synchronous` setting. `FULL` (default) fsyncs the WAL on every
   * commit, so an acked update survives power loss; `NORMAL` survives process
   * crashes (kill -9) but may lose the last commits on power loss.
   */
  synchronous?: 'FULL' | 'NORMAL'
  /**
   * Where SQLite runs. `worker` (default): a worker thread owns the database,
   * so commits (and their fsync) never block the event loop that fans out
   * updates. `main`: in the calling thread.
   */
  thread?: 'worker' | 'main'
  /**
   * With `thread: 'worker'`: how much lower the worker's scheduling priority is than the process's
   * (a nice increment, Linux only). Default 10: a commit request rarely preempts the event loop
   * that fans out updates, and the worker still gets the CPU it needs whenever a core is free. On a
   * saturated machine its commits (acks), loads and pings slow before the fan-out does (a weight of
   * about a tenth of the event loop's). 0 leaves it at the process's priority.
   */
  workerNice?: number
  /**
   * Group commit window: an append arriving at an idle store waits this long
   * for others before the transaction starts. Default 2 ms: fewer fsyncs under
   * load, at most 2 ms more before the ack.
   */
  commitWindowMs?: number
  /**
   * The group commit window under steady load (the previous commit finished less
   * than this long ago). Default 10 ms: under load a commit (and its fsync) every
   * 10 ms instead of every 2, at most 8 ms more before those acks.
   */
  busyCommitWindowMs?: number
}

/** See `SqliteStorageOptions.workerNice`. */
export const DEFAULT_WORKER_NICE = 10

const SCHEMA_VERSION = 3

const MIGRATIONS: string[] = [
  // v1
  `CREATE TABLE updates (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     doc TEXT NOT NULL,
     data BLOB NOT NULL,
     user_id TEXT,
     at INTEGER NOT NULL
   );
   CREATE INDEX updates_doc_seq ON updates (doc, seq);
   CREATE TABLE snapshots (
     doc TEXT PRIMARY KEY,
     seq INTEGER NOT NULL,
     data BLOB NOT NULL,
     at INTEGER NOT NULL
   ) WITHOUT ROWID;`,
  // v2: history (versions apart from the log, and who writes with which Yjs client id)
  `CREATE TABLE versions (
     doc TEXT NOT NULL,
     id TEXT NOT NULL,
     kind TEXT NOT NULL,
     name TEXT,
     created_at INTEGER NOT NULL,
     created_by TEXT,
     authors TEXT NOT NULL,
     seq INTEGER NOT NULL,
     data BLOB NOT NULL,
     PRIMARY KEY (doc, id)
   ) WITHOUT ROWID;
   CREATE INDEX versions_doc_created ON versions (doc, created_at);
   CREATE TABLE authors (
     doc TEXT NOT NULL,
     client INTEGER NOT NULL,
     user_id TEXT NOT NULL,
     PRIMARY KEY (doc, client)
   ) WITHOUT ROWID;`,
  // v3: a version refers to its snapshot by content hash, and equal snapshots of a document are
  // stored once (twenty versions of an unchanged 4 MB document took 84 MB before). Existing
  // versions move their bytes there, deduplicated. The space freed is reused by SQLite; VACUUM
  // (offline) gives it back to the file system.
  `CREATE TABLE version_snapshots (
     doc TEXT NOT NULL,
     hash BLOB NOT NULL,
     data BLOB NOT NULL,
     PRIMARY KEY (doc, hash)
   );
   INSERT OR IGNORE INTO version_snapshots (doc, hash, data) SELECT doc, concord_sha256(data), data FROM versions;
   CREATE TABLE versions_v3 (
     doc TEXT NOT NULL,
     id TEXT NOT NULL,
     kind TEXT NOT NULL,
     name TEXT,
     created_at INTEGER NOT NULL,
     created_by TEXT,
     authors TEXT NOT NULL,
     seq INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     hash BLOB NOT NULL,
     PRIMARY KEY (doc, id)
   ) WITHOUT ROWID;
   INSERT INTO versions_v3 (doc, id, kind, name, created_at, created_by, authors, seq, bytes, hash)
     SELECT doc, id, kind, name, created_at, created_by, authors, seq, LENGTH(data), concord_sha256(data) FROM versions;
   DROP TABLE versions;
   ALTER TABLE versions_v3 RENAME TO versions;
   CREATE INDEX versions_doc_created ON versions (doc, created_at);
   CREATE INDEX versions_doc_hash ON versions (doc, hash);`,
]

type VersionRow = { id: string; kind: string; name: string | null; created_at: number; created_by: string | null; authors: string; seq: number; bytes: number }

function versionOf(r: VersionRow): StoredVersion {
  return { id: r.id, kind: r.kind === 'named' ? 'named' : 'auto', name: r.name, createdAt: r.created_at, createdBy: r.created_by, authors: JSON.parse(r.authors) as string[], seq: r.seq, bytes: r.bytes }
}

export interface AppendItem {
  document: string
  record: AppendRecord
}

/** The synchronous SQLite log (better-sqlite3, WAL). Used in a worker thread or in the main thread. */
export class SqliteLog {
  readonly #db: Database.Database
  readonly #appendBatch: (batch: AppendItem[]) => number[]
  readonly #compact: (document: string, snapshot: Uint8Array, upToSeq: number) => void
  readonly #delete: (document: string) => void
  readonly #recordAuthors: (document: string, list: { client: number; userId: string }[]) => void
  readonly #saveVersion: (document: string, v: NewVersion) => void
  readonly #pruneVersions: (document: string, olderThan: number) => number
  readonly #deleteVersion: (document: string, id: string) => boolean
  readonly #load: (document: string) => LoadedDocument
  readonly #stmts

  constructor(options: SqliteStorageOptions) {
    let filename = options.filename
    if (filename === undefined) {
      if (options.dataDir === undefined) throw new ConfigError('SQLite storage needs dataDir or filename')
      mkdirSync(options.dataDir, { recursive: true })
      filename = join(options.dataDir, 'concord.db')
    }
    const db = new Database(filename)
    this.#db = db
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`)
    db.pragma('busy_timeout = 5000')
    // used by the v3 migration to key existing version snapshots by their content
    db.function('concord_sha256', { deterministic: true }, (data: unknown) => snapshotHash(data as Uint8Array))
    migrate(db)
    const s = {
      insert: db.prepare<[string, Uint8Array, string | null, number]>('INSERT INTO updates (doc, data, user_id, at) VALUES (?, ?, ?, ?)'),
      selectSnapshot: db.prepare<[string], { seq: number; data: Buffer }>('SELECT seq, data FROM snapshots WHERE doc = ?'),
      selectTail: db.prepare<[string, number], { seq: number; data: Buffer; user_id: string | null; at: number }>(
        'SELECT seq, data, user_id, at FROM updates WHERE doc = ? AND seq > ? ORDER BY seq'),
      upsertSnapshot: db.prepare<[string, number, Uint8Array, number]>(
        `INSERT INTO snapshots (doc, seq, data, at) VALUES (?, ?, ?, ?)
         ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, data = excluded.data, at = excluded.at
         WHERE excluded.seq > snapshots.seq`),
      deleteUpTo: db.prepare<[string, number]>('DELETE FROM updates WHERE doc = ? AND seq <= ?'),
      deleteUpdates: db.prepare<[string]>('DELETE FROM updates WHERE doc = ?'),
      deleteSnapshot: db.prepare<[string]>('DELETE FROM snapshots WHERE doc = ?'),
      list: db.prepare<[], { doc: string; last_seq: number; tail: number; bytes: number; updated_at: number }>(
        `SELECT doc, MAX(last_seq) AS last_seq, SUM(tail) AS tail, SUM(bytes) AS bytes, MAX(updated_at) AS updated_at FROM (
           SELECT doc, MAX(seq) AS last_seq, COUNT(*) AS tail, SUM(LENGTH(data)) AS bytes, MAX(at) AS updated_at FROM updates GROUP BY doc
           UNION ALL
           SELECT doc, seq, 0, LENGTH(data), at FROM snapshots
         ) GROUP BY doc ORDER BY doc`),
      ping: db.prepare('SELECT 1'),
      // a snapshot already stored for the document is not written again (the unique key is checked first)
      insertSnapshot: db.prepare<[string, Buffer, Uint8Array]>('INSERT OR IGNORE INTO version_snapshots (doc, hash, data) VALUES (?, ?, ?)'),
      insertVersion: db.prepare<[string, string, string, string | null, number, string | null, string, number, number, Buffer]>(
        'INSERT OR REPLACE INTO versions (doc, id, kind, name, created_at, created_by, authors, seq, bytes, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      listVersions: db.prepare<[string], VersionRow>(
        'SELECT id, kind, name, created_at, created_by, authors, seq, bytes FROM versions WHERE doc = ? ORDER BY created_at, id'),
      loadVersion: db.prepare<[string, string], VersionRow & { data: Buffer }>(
        `SELECT v.id, v.kind, v.name, v.created_at, v.created_by, v.authors, v.seq, v.bytes, s.data FROM versions v
         JOIN version_snapshots s ON s.doc = v.doc AND s.hash = v.hash WHERE v.doc = ? AND v.id = ?`),
      pruneVersions: db.prepare<[string, number]>("DELETE FROM versions WHERE doc = ? AND kind = 'auto' AND created_at < ?"),
      deleteVersion: db.prepare<[string, string]>('DELETE FROM versions WHERE doc = ? AND id = ?'),
      deleteVersions: db.prepare<[string]>('DELETE FROM versions WHERE doc = ?'),
      // snapshots no version of the document refers to any more
      collectSnapshots: db.prepare<[string, string]>('DELETE FROM version_snapshots WHERE doc = ? AND hash NOT IN (SELECT hash FROM versions WHERE doc = ?)'),
      deleteSnapshots: db.prepare<[string]>('DELETE FROM version_snapshots WHERE doc = ?'),
      versionStorage: db.prepare<[string, string], VersionStorage>(
        `SELECT (SELECT COUNT(*) FROM versions WHERE doc = ?) AS versions, COUNT(*) AS snapshots, COALESCE(SUM(LENGTH(data)), 0) AS bytes
         FROM version_snapshots WHERE doc = ?`),
      insertAuthor: db.prepare<[string, number, string]>('INSERT OR IGNORE INTO authors (doc, client, user_id) VALUES (?, ?, ?)'),
      selectAuthors: db.prepare<[string], { client: number; user_id: string }>('SELECT client, user_id FROM authors WHERE doc = ?'),
      deleteAuthors: db.prepare<[string]>('DELETE FROM authors WHERE doc = ?'),
    }
    this.#stmts = s
    this.#appendBatch = db.transaction((batch: AppendItem[]) => {
      const seqs: number[] = []
      for (const { document, record } of batch) {
        const info = s.insert.run(document, record.update, record.userId ?? null, record.at ?? Date.now())
        seqs.push(Number(info.lastInsertRowid))
      }
      return seqs
    })
    this.#compact = db.transaction((document: string, snapshot: Uint8Array, upToSeq: number) => {
      const current = s.selectSnapshot.get(document)
      if (current !== undefined && current.seq >= upToSeq) return
      s.upsertSnapshot.run(document, upToSeq, snapshot, Date.now())
      s.deleteUpTo.run(document, upToSeq)
    })
    this.#delete = db.transaction((document: string) => {
      s.deleteUpdates.run(document)
      s.deleteSnapshot.run(document)
      s.deleteVersions.run(document)
      s.deleteSnapshots.run(document)
      s.deleteAuthors.run(document)
    })
    this.#saveVersion = db.transaction((document: string, v: NewVersion) => {
      const hash = snapshotHash(v.snapshot)
      s.insertSnapshot.run(document, hash, v.snapshot)
      s.insertVersion.run(document, v.id, v.kind, v.name, v.createdAt, v.createdBy, JSON.stringify(v.authors), v.seq, v.snapshot.length, hash)
      // replacing a version of the same id may have let go of another snapshot (REPLACE's delete
      // is not counted in changes, so collect always: a scan of this document's few snapshots)
      s.collectSnapshots.run(document, document)
    })
    this.#pruneVersions = db.transaction((document: string, olderThan: number) => {
      const n = s.pruneVersions.run(document, olderThan).changes
      // a snapshot still referred to by a kept version stays
      if (n > 0) s.collectSnapshots.run(document, document)
      return n
    })
    this.#deleteVersion = db.transaction((document: string, id: string) => {
      const n = s.deleteVersion.run(document, id).changes
      if (n > 0) s.collectSnapshots.run(document, document)
      return n > 0
    })
    // the snapshot and the tail in one read transaction: another process (a server, or `concord
    // export` next to one) may compact between the two statements, and the tail read after it
    // would start past updates the snapshot read before it does not hold
    this.#load = db.transaction((document: string) => {
      const snap = s.selectSnapshot.get(document)
      const snapshotSeq = snap?.seq ?? 0
      const updates: StoredUpdate[] = s.selectTail.all(document, snapshotSeq).map(r => ({
        seq: r.seq, update: view(r.data), userId: r.user_id, at: r.at,
      }))
      return { snapshot: snap ? view(snap.data) : null, snapshotSeq, updates }
    })
    this.#recordAuthors = db.transaction((document: string, list: { client: number; userId: string }[]) => {
      for (const a of list) s.insertAuthor.run(document, a.client, a.userId)
    })
  }

  append(batch: AppendItem[]): number[] {
    return this.#appendBatch(batch)
  }

  load(document: string): LoadedDocument {
    return this.#load(document)
  }

  compact(document: string, snapshot: Uint8Array, upToSeq: number): void {
    this.#compact(document, snapshot, upToSeq)
  }

  delete(document: string): void {
    this.#delete(document)
  }

  saveVersion(document: string, v: NewVersion): void {
    this.#saveVersion(document, v)
  }

  listVersions(document: string): StoredVersion[] {
    return this.#stmts.listVersions.all(document).map(versionOf)
  }

  loadVersion(document: string, id: string): { version: StoredVersion; snapshot: Uint8Array } | null {
    const r = this.#stmts.loadVersion.get(document, id)
    return r === undefined ? null : { version: versionOf(r), snapshot: view(r.data) }
  }

  pruneVersions(document: string, olderThan: number): number {
    return this.#pruneVersions(document, olderThan)
  }

  deleteVersion(document: string, id: string): boolean {
    return this.#deleteVersion(document, id)
  }

  versionStorage(document: string): VersionStorage {
    const r = this.#stmts.versionStorage.get(document, document)!
    return { versions: r.versions, snapshots: r.snapshots, bytes: r.bytes }
  }

  recordAuthors(document: string, list: { client: number; userId: string }[]): void {
    this.#recordAuthors(document, list)
  }

  loadAuthors(document: string): Map<number, string> {
    return new Map(this.#stmts.selectAuthors.all(document).map(r => [r.client, r.user_id]))
  }

  list(): DocumentInfo[] {
    return this.#stmts.list.all().map(r => ({
      name: r.doc, lastSeq: r.last_seq, tailUpdates: r.tail, bytes: r.bytes, updatedAt: r.updated_at,
    }))
  }

  ping(): void {
    this.#stmts.ping.get()
  }

  close(): void {
    this.#db.close()
  }
}

function view(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > SCHEMA_VERSION) {
    throw new ConcordError('CONCORD_ERR_STORAGE_SCHEMA_TOO_NEW', `database schema version ${current} is newer than this server understands (${SCHEMA_VERSION})`)
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!)
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
}
