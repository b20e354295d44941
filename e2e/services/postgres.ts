import * as Y from 'yjs'
import pg from 'pg'
import type { PostgresServer } from '../../bench/lib/services.mjs'

// A real PostgreSQL server (initdb and pg_ctl in a temporary directory, as the postgres user
// when run as root): bench/lib/services.mjs, shared with the cross-node benchmark.
export { startPostgres, type PostgresServer } from '../../bench/lib/services.mjs'

let databases = 0

/** A new, empty database on `server` (a connection per call: a test may have restarted PostgreSQL). */
export async function createDatabase(server: PostgresServer, prefix: string): Promise<string> {
  const name = `${prefix}_${process.pid}_${++databases}`
  const admin = new pg.Client({ connectionString: server.url })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  return server.urlOf(name)
}

/** A document as Concord's PostgreSQL store holds it: the snapshot and the tail, replayed the way a load does. */
export async function storedDocument(url: string, doc: string): Promise<Y.Doc> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    // one snapshot of the database for both reads: a compaction committing between them would
    // otherwise move rows into a snapshot this reader has already read
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const snap = await c.query<{ seq: string; data: Buffer }>('SELECT seq, data FROM concord_snapshots WHERE doc = $1', [doc])
    const tail = await c.query<{ data: Buffer }>('SELECT data FROM concord_updates WHERE doc = $1 AND seq > $2 ORDER BY seq', [doc, snap.rows[0]?.seq ?? 0])
    await c.query('COMMIT')
    const ydoc = new Y.Doc()
    if (snap.rows[0]) Y.applyUpdate(ydoc, snap.rows[0].data)
    for (const r of tail.rows) Y.applyUpdate(ydoc, r.data)
    return ydoc
  } finally {
    await c.end()
  }
}
