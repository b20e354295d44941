import pg from 'pg'
import type { AppendRecord, DocumentInfo, LoadedDocument, StorageAdapter, StoredUpdate, StoredVersion } from './storage-adapter.js'
import { GroupCommit } from './group-commit.js'
import { snapshotHash } from './snapshot-hash.js'
import type { AccessState, AccessStore } from './access-store.js'
import { ConcordError } from '@concord/protocol'
import { APPEND_FUNCTION_MIGRATION, createRegionOutbox, OUTBOX_MIGRATION, queueAccessChange, type RegionOutbox } from './postgres-regions.js'

/** The PostgreSQL store also keeps the access state (revocations, role overrides) every node shares. */
export interface PostgresStorage extends StorageAdapter {
  accessStore(): AccessStore
  /** Whether the schema has been checked (false while PostgreSQL was unreachable at startup). */
  readonly ready: boolean
  /** Run `hook` once the schema is checked, before the store reports ready (e.g. to load the access state). */
  beforeReady(hook: () => Promise<void>): void
  /** This region's outbox for its peer regions (appends fill it only with `replication` on). */
  regionOutbox(): RegionOutbox
}

export interface PostgresStorageOptions {
  /** postgres://user:password@host:port/database */
  connectionString: string
  /** Connections in the pool (default 4): appends use one at a time, loads and compactions the others. */
  poolSize?: number
  /** Group commit window when idle, as for SQLite (default 2 ms). */
  commitWindowMs?: number
  /**
   * Group commit window under steady load (default 10 ms, as for SQLite: fewer, larger transactions
   * save PostgreSQL and the node CPU; other nodes do not wait for it, since the Redis backplane relays
   * an update before its append commits; it delays the writer's ack).
   */
  busyCommitWindowMs?: number
  /** How long a query may wait for a connection before failing (default 10 s). */
  connectionTimeoutMs?: number
  /**
   * This store is one region of several: every append (and access change) also queues a row per
   * peer region in the outbox, in the same transaction (see postgres-regions.ts). Default false.
   */
  replication?: boolean
}

/**
 * Versioned schema migrations. Each runs once, in order, in a transaction that
 * holds an advisory lock, so nodes starting together migrate once.
 */
const MIGRATIONS: string[] = [
  // v1: the update log and one snapshot per document (the model of storage-adapter.ts)
  `CREATE TABLE concord_updates (
     seq BIGINT PRIMARY KEY,
     doc TEXT NOT NULL,
     data BYTEA NOT NULL,
     user_id TEXT,
     at BIGINT NOT NULL
   );
   CREATE SEQUENCE concord_updates_seq OWNED BY concord_updates.seq;
   CREATE INDEX concord_updates_doc_seq ON concord_updates (doc, seq);
   CREATE TABLE concord_snapshots (
     doc TEXT PRIMARY KEY,
     seq BIGINT NOT NULL,
     data BYTEA NOT NULL,
     at BIGINT NOT NULL
   );`,
  // v2: revocations and role overrides, shared by the nodes (one row, changed under a row lock)
  `CREATE TABLE concord_access (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     state JSONB NOT NULL
   );`,
  // v3: compaction leases (one node at a time compacts a document; expiry in the database's clock)
  `CREATE TABLE concord_leases (
     doc TEXT PRIMARY KEY,
     holder TEXT NOT NULL,
     expires_at TIMESTAMPTZ NOT NULL
   );`,
  // v4: history (versions apart from the log, and who writes with which Yjs client id)
  `CREATE TABLE concord_versions (
     doc TEXT NOT NULL,
     id TEXT NOT NULL,
     kind TEXT NOT NULL,
     name TEXT,
     created_at BIGINT NOT NULL,
     created_by TEXT,
     authors JSONB NOT NULL,
     seq BIGINT NOT NULL,
     data BYTEA NOT NULL,
     PRIMARY KEY (doc, id)
   );
   CREATE INDEX concord_versions_doc_created ON concord_versions (doc, created_at);
   CREATE TABLE concord_authors (
     doc TEXT NOT NULL,
     client BIGINT NOT NULL,
     user_id TEXT NOT NULL,
     PRIMARY KEY (doc, client)
   );`,
  // v5: a version refers to its snapshot by content hash (sha256, PostgreSQL 11+), and equal
  // snapshots of a document are stored once (twenty versions of an unchanged 4 MB document took
  // 84 MB before). Existing versions move their bytes there, deduplicated; the old table is
  // dropped, so its space is given back at once.
  `CREATE TABLE concord_version_snapshots (
     doc TEXT NOT NULL,
     hash BYTEA NOT NULL,
     data BYTEA NOT NULL,
     PRIMARY KEY (doc, hash)
   );
   INSERT INTO concord_version_snapshots (doc, hash, data)
     SELECT DISTINCT ON (doc, sha256(data)) doc, sha256(data), data FROM concord_versions;
   CREATE TABLE concord_versions_v5 (
     doc TEXT NOT NULL,
     id TEXT NOT NULL,
     kind TEXT NOT NULL,
     name TEXT,
     created_at BIGINT NOT NULL,
     created_by TEXT,
     authors JSONB NOT NULL,
     seq BIGINT NOT NULL,
     bytes BIGINT NOT NULL,
     hash BYTEA NOT NULL,
     CONSTRAINT concord_versions_v5_pkey PRIMARY KEY (doc, id)
   );
   INSERT INTO concord_versions_v5 (doc, id, kind, name, created_at, created_by, authors, seq, bytes, hash)
     SELECT doc, id, kind, name, created_at, created_by, authors, seq, LENGTH(data), sha256(data) FROM concord_versions;
   DROP TABLE concord_versions;
   ALTER TABLE concord_versions_v5 RENAME TO concord_versions;
   ALTER INDEX concord_versions_v5_pkey RENAME TO concord_versions_pkey;
   CREATE INDEX concord_versions_doc_created ON concord_versions (doc, created_at);
   CREATE INDEX concord_versions_doc_hash ON concord_versions (doc, hash);`,
  // v6: regions (the outbox for peer regions, the inbox of what they shipped, each log entry's origin)
  OUTBOX_MIGRATION,
  // v7: a batch of appends in one statement, so one round trip (it was five: BEGIN, the documents'
  // locks, the sequence numbers, the insert, COMMIT; each a write on the node and a statement here)
  APPEND_FUNCTION_MIGRATION,
]

type VersionRow = { id: string; kind: string; name: string | null; created_at: string; created_by: string | null; authors: string[]; seq: string; bytes: number }

function versionOf(r: VersionRow): StoredVersion {
  return { id: r.id, kind: r.kind === 'named' ? 'named' : 'auto', name: r.name, createdAt: Number(r.created_at), createdBy: r.created_by, authors: r.authors, seq: Number(r.seq), bytes: Number(r.bytes) }
}

const VERSION_COLUMNS = 'id, kind, name, created_at, created_by, authors, seq, bytes'

/**
 * Version changes of one document are serialised across nodes (a transaction-scoped advisory
 * lock; seed 1, apart from the append locks), so a snapshot is never collected while another
 * node is saving a version that refers to it.
 */
const LOCK_VERSIONS = 'SELECT pg_advisory_xact_lock(hashtextextended($1, 1))'
/** The document's snapshots no version refers to any more. */
const COLLECT_SNAPSHOTS = `DELETE FROM concord_version_snapshots s WHERE s.doc = $1
  AND NOT EXISTS (SELECT 1 FROM concord_versions v WHERE v.doc = s.doc AND v.hash = s.hash)`

/** An arbitrary constant: the advisory lock key of Concord's migrations. */
const MIGRATION_LOCK = 7_205_118_332

interface AppendItem {
  document: string
  record: AppendRecord
}

/**
 * PostgreSQL storage (`pg`): the same log-plus-snapshot model as SQLite.
 * Appends are group-committed (one transaction per batch) and resolve only
 * after PostgreSQL committed them, so an ack means the update is durable
 * (with the server's default `synchronous_commit = on`). Sequence numbers come
 * from one PostgreSQL sequence, so several nodes can append to the same store.
 */
export async function createPostgresStorage(options: PostgresStorageOptions): Promise<PostgresStorage> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 4,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
  })
  // an idle client that loses its connection (server restart) is dropped from the pool; the next
  // query opens a fresh one: no crash, no operator action
  pool.on('error', () => undefined)
  // The schema is checked (and created or migrated) before the store is used. A server that
  // starts while PostgreSQL is unreachable still starts: it keeps trying in the background, and
  // until then every operation fails at once (so /readyz says unready and opens are refused
  // with a retryable error) instead of waiting.
  let migrated = false
  let schemaChecked = false
  let closedEarly = false
  const readyHooks: (() => Promise<void>)[] = []
  try {
    await migrate(pool)
    schemaChecked = migrated = true
  } catch (err) {
    if (!isTransient(err)) {
      await pool.end().catch(() => undefined)
      throw err
    }
    void untilCommitted(async () => {
      await migrate(pool)
      schemaChecked = true
      for (const hook of readyHooks) await hook()
    }, () => closedEarly).then(() => { migrated = true }, () => undefined)
  }

  let closed = false
  // While PostgreSQL is unreachable (a restart, a failover), a batch is retried until it commits:
  // acks pause, the documents stay open, and writes resume by themselves. Re-running a batch
  // whose COMMIT was lost with the connection can log an update twice; Yjs updates are idempotent.
  const replication = options.replication === true
  const committer = new GroupCommit<AppendItem, number>(batch => untilCommitted(() => appendBatch(pool, batch, replication), () => closed), {
    lingerMs: options.commitWindowMs ?? 2,
    busyLingerMs: options.busyCommitWindowMs ?? 10,
  })
  const open = (): void => {
    if (closed) throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'postgres storage is closed')
    if (!migrated) throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'PostgreSQL is not reachable yet (its schema has not been checked)')
  }

  const EMPTY: AccessState = { revokedUsers: [], revokedTokens: [], roles: [] }
  const schemaOpen = (): void => {
    if (closed) throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'postgres storage is closed')
    if (!schemaChecked) throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'PostgreSQL is not reachable yet (its schema has not been checked)')
  }
  const accessStore: AccessStore = {
    async load() {
      schemaOpen()
      const r = await pool.query<{ state: AccessState }>('SELECT state FROM concord_access WHERE id = 1')
      return r.rows[0]?.state ?? null
    },
    async save(state) {
      schemaOpen()
      await pool.query('INSERT INTO concord_access (id, state) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET state = excluded.state', [JSON.stringify(state)])
    },
    async update(edit, replicate) {
      schemaOpen()
      return transaction(pool, async client => {
        if (replication && replicate !== undefined) await queueAccessChange(client, replicate)
        await client.query('INSERT INTO concord_access (id, state) VALUES (1, $1) ON CONFLICT (id) DO NOTHING', [JSON.stringify(EMPTY)])
        const r = await client.query<{ state: AccessState }>('SELECT state FROM concord_access WHERE id = 1 FOR UPDATE')
        const state = r.rows[0]!.state
        edit(state)
        await client.query('UPDATE concord_access SET state = $1 WHERE id = 1', [JSON.stringify(state)])
        return state
      })
    },
  }

  const outbox = createRegionOutbox(pool, schemaOpen)
  return {
    kind: 'postgres',
    accessStore: () => accessStore,
    regionOutbox: () => outbox,
    get ready() { return migrated },
    beforeReady(hook) {
      readyHooks.push(hook)
    },
    async load(document) {
      open()
      const client = await pool.connect()
      client.on('error', ignoreClientError)
      try {
        // one snapshot and the tail after it, seen at one point in time
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
        const snap = await client.query<{ seq: string; data: Buffer }>('SELECT seq, data FROM concord_snapshots WHERE doc = $1', [document])
        const snapshotSeq = snap.rows.length > 0 ? Number(snap.rows[0]!.seq) : 0
        const tail = await client.query<{ seq: string; data: Buffer; user_id: string | null; at: string }>(
          'SELECT seq, data, user_id, at FROM concord_updates WHERE doc = $1 AND seq > $2 ORDER BY seq', [document, snapshotSeq])
        await client.query('COMMIT')
        const updates: StoredUpdate[] = tail.rows.map(r => ({ seq: Number(r.seq), update: view(r.data), userId: r.user_id, at: Number(r.at) }))
        return { snapshot: snap.rows.length > 0 ? view(snap.rows[0]!.data) : null, snapshotSeq, updates } satisfies LoadedDocument
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw err
      } finally {
        client.off('error', ignoreClientError)
        client.release()
      }
    },
    append(document, record) {
      if (closed) return Promise.reject(new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'postgres storage is closed'))
      if (!migrated) return Promise.reject(new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'PostgreSQL is not reachable yet (its schema has not been checked)'))
      return committer.enqueue({ document, record })
    },
    async compact(document, snapshot, upToSeq) {
      open()
      await transaction(pool, async client => {
        // the document's snapshot row (if any) is locked, so two nodes compacting at once serialise
        const current = await client.query<{ seq: string }>('SELECT seq FROM concord_snapshots WHERE doc = $1 FOR UPDATE', [document])
        if (current.rows.length > 0 && Number(current.rows[0]!.seq) >= upToSeq) return
        await client.query(
          `INSERT INTO concord_snapshots (doc, seq, data, at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, data = excluded.data, at = excluded.at
           WHERE excluded.seq > concord_snapshots.seq`,
          [document, upToSeq, Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength), Date.now()])
        await client.query('DELETE FROM concord_updates WHERE doc = $1 AND seq <= $2', [document, upToSeq])
      })
    },
    async lease(document, holder, ttlMs) {
      open()
      // the database's clock decides expiry, so nodes with skewed clocks agree
      const r = await pool.query<{ holder: string }>(
        `INSERT INTO concord_leases (doc, holder, expires_at) VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
         ON CONFLICT (doc) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE concord_leases.holder = excluded.holder OR concord_leases.expires_at < clock_timestamp()
         RETURNING holder`, [document, holder, Math.max(1, Math.round(ttlMs))])
      return r.rows.length === 1
    },
    async releaseLease(document, holder) {
      open()
      await pool.query('DELETE FROM concord_leases WHERE doc = $1 AND holder = $2', [document, holder])
    },
    async delete(document) {
      open()
      await committer.barrier().catch(() => undefined)
      await transaction(pool, async client => {
        await client.query('DELETE FROM concord_updates WHERE doc = $1', [document])
        await client.query('DELETE FROM concord_snapshots WHERE doc = $1', [document])
        await client.query('DELETE FROM concord_versions WHERE doc = $1', [document])
        await client.query('DELETE FROM concord_version_snapshots WHERE doc = $1', [document])
        await client.query('DELETE FROM concord_authors WHERE doc = $1', [document])
      })
    },
    async saveVersion(document, v) {
      open()
      const hash = snapshotHash(v.snapshot)
      await transaction(pool, async client => {
        await client.query(LOCK_VERSIONS, [document])
        // a snapshot the document already has is not sent again
        const held = await client.query('SELECT 1 FROM concord_version_snapshots WHERE doc = $1 AND hash = $2', [document, hash])
        if (held.rows.length === 0) {
          await client.query('INSERT INTO concord_version_snapshots (doc, hash, data) VALUES ($1, $2, $3)',
            [document, hash, Buffer.from(v.snapshot.buffer, v.snapshot.byteOffset, v.snapshot.byteLength)])
        }
        await client.query(
          `INSERT INTO concord_versions (doc, id, kind, name, created_at, created_by, authors, seq, bytes, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (doc, id) DO UPDATE SET kind = excluded.kind, name = excluded.name, created_at = excluded.created_at, created_by = excluded.created_by,
             authors = excluded.authors, seq = excluded.seq, bytes = excluded.bytes, hash = excluded.hash`,
          [document, v.id, v.kind, v.name, v.createdAt, v.createdBy, JSON.stringify(v.authors), v.seq, v.snapshot.length, hash])
        // replacing a version of the same id may have let go of another snapshot
        await client.query(COLLECT_SNAPSHOTS, [document])
      })
    },
    async listVersions(document) {
      open()
      const r = await pool.query<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM concord_versions WHERE doc = $1 ORDER BY created_at, id`, [document])
      return r.rows.map(versionOf)
    },
    async loadVersion(document, id) {
      open()
      const r = await pool.query<VersionRow & { data: Buffer }>(
        `SELECT v.id, v.kind, v.name, v.created_at, v.created_by, v.authors, v.seq, v.bytes, s.data FROM concord_versions v
         JOIN concord_version_snapshots s ON s.doc = v.doc AND s.hash = v.hash WHERE v.doc = $1 AND v.id = $2`, [document, id])
      const row = r.rows[0]
      return row === undefined ? null : { version: versionOf(row), snapshot: view(row.data) }
    },
    async pruneVersions(document, olderThan) {
      open()
      return transaction(pool, async client => {
        await client.query(LOCK_VERSIONS, [document])
        const r = await client.query("DELETE FROM concord_versions WHERE doc = $1 AND kind = 'auto' AND created_at < $2", [document, olderThan])
        // a snapshot still referred to by a kept version stays
        if ((r.rowCount ?? 0) > 0) await client.query(COLLECT_SNAPSHOTS, [document])
        return r.rowCount ?? 0
      })
    },
    async deleteVersion(document, id) {
      open()
      return transaction(pool, async client => {
        await client.query(LOCK_VERSIONS, [document])
        const r = await client.query('DELETE FROM concord_versions WHERE doc = $1 AND id = $2', [document, id])
        if ((r.rowCount ?? 0) > 0) await client.query(COLLECT_SNAPSHOTS, [document])
        return (r.rowCount ?? 0) > 0
      })
    },
    async versionStorage(document) {
      open()
      const r = await pool.query<{ versions: number; snapshots: number; bytes: string }>(
        `SELECT (SELECT COUNT(*) FROM concord_versions WHERE doc = $1)::int AS versions, COUNT(*)::int AS snapshots,
           COALESCE(SUM(LENGTH(data)), 0)::bigint AS bytes FROM concord_version_snapshots WHERE doc = $1`, [document])
      const row = r.rows[0]!
      return { versions: row.versions, snapshots: row.snapshots, bytes: Number(row.bytes) }
    },
    async recordAuthors(document, list) {
      open()
      if (list.length === 0) return
      await pool.query(
        `INSERT INTO concord_authors (doc, client, user_id) SELECT $1, c, u FROM UNNEST($2::bigint[], $3::text[]) AS t(c, u) ON CONFLICT (doc, client) DO NOTHING`,
        [document, list.map(a => a.client), list.map(a => a.userId)])
    },
    async loadAuthors(document) {
      open()
      const r = await pool.query<{ client: string; user_id: string }>('SELECT client, user_id FROM concord_authors WHERE doc = $1', [document])
      return new Map(r.rows.map(row => [Number(row.client), row.user_id]))
    },
    async list() {
      open()
      const r = await pool.query<{ doc: string; last_seq: string; tail: string; bytes: string; updated_at: string }>(
        `SELECT doc, MAX(last_seq) AS last_seq, SUM(tail) AS tail, SUM(bytes) AS bytes, MAX(updated_at) AS updated_at FROM (
           SELECT doc, MAX(seq) AS last_seq, COUNT(*) AS tail, SUM(LENGTH(data)) AS bytes, MAX(at) AS updated_at FROM concord_updates GROUP BY doc
           UNION ALL
           SELECT doc, seq, 0, LENGTH(data), at FROM concord_snapshots
         ) AS parts GROUP BY doc ORDER BY doc`)
      return r.rows.map(row => ({
        name: row.doc,
        lastSeq: Number(row.last_seq),
        tailUpdates: Number(row.tail),
        bytes: Number(row.bytes),
        updatedAt: Number(row.updated_at),
      }) satisfies DocumentInfo)
    },
    flush: () => committer.barrier(),
    async ping() {
      open()
      await pool.query('SELECT 1')
    },
    async close() {
      if (closed) return
      closedEarly = true
      // everything enqueued gets up to 10 s to commit (PostgreSQL may be down); then retries stop
      // and what is left is not acked (its clients send it again)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([committer.barrier().catch(() => undefined), new Promise(resolve => { timer = setTimeout(resolve, 10_000) })])
      clearTimeout(timer)
      closed = true
      await committer.barrier().catch(() => undefined)
      await pool.end()
    },
  }
}

/** Errors that mean "PostgreSQL is not reachable right now", not "this write is wrong". */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  const code = e?.code ?? ''
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) return true
  // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e?.message ?? '')
}

async function untilCommitted<T>(fn: () => Promise<T>, closed: () => boolean): Promise<T> {
  let delay = 50
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (!isTransient(err) || closed()) throw err
      await new Promise(resolve => setTimeout(resolve, delay))
      delay = Math.min(2_000, delay * 2)
    }
  }
}

async function migrate(pool: pg.Pool): Promise<void> {
  await transaction(pool, async client => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await client.query('CREATE TABLE IF NOT EXISTS concord_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())')
    const r = await client.query<{ version: number | null }>('SELECT MAX(version) AS version FROM concord_migrations')
    const current = r.rows[0]?.version ?? 0
    if (current > MIGRATIONS.length) {
      throw new ConcordError('CONCORD_ERR_STORAGE_SCHEMA_TOO_NEW', `the database's schema is version ${current}, newer than this server knows (${MIGRATIONS.length}): upgrade the server`)
    }
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      await client.query(MIGRATIONS[v - 1]!)
      await client.query('INSERT INTO concord_migrations (version) VALUES ($1)', [v])
    }
  })
}

/**
 * One batch, one transaction, one round trip (`concord_append`, schema v7). Sequence numbers are
 * drawn under the documents' locks and handed out in batch order, so a document's seqs grow in the
 * order its updates were appended and are committed in that order.
 */
async function appendBatch(pool: pg.Pool, batch: AppendItem[], replication: boolean): Promise<number[]> {
  const now = Date.now()
  const r = await pool.query<{ seqs: string[] }>('SELECT concord_append($1::text[], $2::bytea[], $3::text[], $4::bigint[], $5::text[], $6::boolean) AS seqs', [
    batch.map(b => b.document),
    batch.map(b => Buffer.from(b.record.update.buffer, b.record.update.byteOffset, b.record.update.byteLength)),
    batch.map(b => b.record.userId ?? null),
    batch.map(b => b.record.at ?? now),
    replication ? batch.map(b => b.record.trace ?? null) : null,
    replication,
  ])
  return r.rows[0]!.seqs.map(Number)
}

/** A connection lost between two queries is reported by the next query; its 'error' event must not crash the process. */
const ignoreClientError = (): void => undefined

async function transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  client.on('error', ignoreClientError)
  let broken = false
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => { broken = true })
    throw err
  } finally {
    // a connection that failed mid-transaction is not given back to the pool
    client.off('error', ignoreClientError)
    client.release(broken)
  }
}

function view(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}
