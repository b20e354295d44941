import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { AppendRecord, DocumentInfo, LoadedDocument, StorageAdapter, StoredUpdate } from './storage-adapter.js'
import { GroupCommit } from './group-commit.js'

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
}

const SCHEMA_VERSION = 1

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
]

/** Embedded durable storage: SQLite in WAL mode via better-sqlite3. */
export function createSqliteStorage(options: SqliteStorageOptions): StorageAdapter {
  let filename = options.filename
  if (filename === undefined) {
    if (options.dataDir === undefined) throw new TypeError('createSqliteStorage needs dataDir or filename')
    mkdirSync(options.dataDir, { recursive: true })
    filename = join(options.dataDir, 'concord.db')
  }
  const db = new Database(filename)
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`)
  db.pragma('busy_timeout = 5000')
  migrate(db)

  const insert = db.prepare<[string, Uint8Array, string | null, number]>(
    'INSERT INTO updates (doc, data, user_id, at) VALUES (?, ?, ?, ?)')
  const selectSnapshot = db.prepare<[string], { seq: number; data: Buffer }>('SELECT seq, data FROM snapshots WHERE doc = ?')
  const selectTail = db.prepare<[string, number], { seq: number; data: Buffer; user_id: string | null; at: number }>(
    'SELECT seq, data, user_id, at FROM updates WHERE doc = ? AND seq > ? ORDER BY seq')
  const upsertSnapshot = db.prepare<[string, number, Uint8Array, number]>(
    `INSERT INTO snapshots (doc, seq, data, at) VALUES (?, ?, ?, ?)
     ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, data = excluded.data, at = excluded.at
     WHERE excluded.seq > snapshots.seq`)
  const deleteUpTo = db.prepare<[string, number]>('DELETE FROM updates WHERE doc = ? AND seq <= ?')
  const deleteUpdates = db.prepare<[string]>('DELETE FROM updates WHERE doc = ?')
  const deleteSnapshot = db.prepare<[string]>('DELETE FROM snapshots WHERE doc = ?')
  const listDocs = db.prepare<[], { doc: string; last_seq: number; tail: number; bytes: number; updated_at: number }>(
    `SELECT doc, MAX(last_seq) AS last_seq, SUM(tail) AS tail, SUM(bytes) AS bytes, MAX(updated_at) AS updated_at FROM (
       SELECT doc, MAX(seq) AS last_seq, COUNT(*) AS tail, SUM(LENGTH(data)) AS bytes, MAX(at) AS updated_at FROM updates GROUP BY doc
       UNION ALL
       SELECT doc, seq, 0, LENGTH(data), at FROM snapshots
     ) GROUP BY doc ORDER BY doc`)

  const appendBatch = db.transaction((batch: { document: string; record: AppendRecord }[]) => {
    const seqs: number[] = []
    for (const { document, record } of batch) {
      const info = insert.run(document, record.update, record.userId ?? null, record.at ?? Date.now())
      seqs.push(Number(info.lastInsertRowid))
    }
    return seqs
  })
  const compactTx = db.transaction((document: string, snapshot: Uint8Array, upToSeq: number) => {
    const current = selectSnapshot.get(document)
    if (current !== undefined && current.seq >= upToSeq) return
    upsertSnapshot.run(document, upToSeq, snapshot, Date.now())
    deleteUpTo.run(document, upToSeq)
  })
  const deleteTx = db.transaction((document: string) => {
    deleteUpdates.run(document)
    deleteSnapshot.run(document)
  })

  let closed = false
  const check = (): void => {
    if (closed) throw new Error('sqlite storage is closed')
  }
  const committer = new GroupCommit<{ document: string; record: AppendRecord }, number>(batch => appendBatch(batch))

  return {
    kind: 'sqlite',
    async load(document): Promise<LoadedDocument> {
      check()
      const snap = selectSnapshot.get(document)
      const snapshotSeq = snap?.seq ?? 0
      const updates: StoredUpdate[] = selectTail.all(document, snapshotSeq).map(r => ({
        seq: r.seq, update: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength), userId: r.user_id, at: r.at,
      }))
      return {
        snapshot: snap ? new Uint8Array(snap.data.buffer, snap.data.byteOffset, snap.data.byteLength) : null,
        snapshotSeq,
        updates,
      }
    },
    append(document, record) {
      if (closed) return Promise.reject(new Error(`${this.kind} storage is closed`))
      return committer.enqueue({ document, record })
    },
    async compact(document, snapshot, upToSeq) {
      check()
      compactTx(document, snapshot, upToSeq)
    },
    async delete(document) {
      check()
      await committer.barrier().catch(() => undefined)
      deleteTx(document)
    },
    async list(): Promise<DocumentInfo[]> {
      check()
      return listDocs.all().map(r => ({
        name: r.doc, lastSeq: r.last_seq, tailUpdates: r.tail, bytes: r.bytes, updatedAt: r.updated_at,
      }))
    },
    flush() {
      return committer.barrier()
    },
    async ping() {
      check()
      db.prepare('SELECT 1').get()
    },
    async close() {
      if (closed) return
      await committer.barrier().catch(() => undefined)
      closed = true
      db.close()
    },
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > SCHEMA_VERSION) {
    throw new Error(`database schema version ${current} is newer than this server understands (${SCHEMA_VERSION})`)
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!)
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
}
