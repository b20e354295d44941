import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as Y from 'yjs'
import pg from 'pg'
import { startPostgres, type PostgresServer } from '../../bench/lib/services.mjs'

// A real PostgreSQL server (initdb and pg_ctl in a temporary directory, as the postgres user
// when run as root): bench/lib/services.mjs, shared with the cross-node benchmark.
export { startPostgres, type PostgresServer } from '../../bench/lib/services.mjs'

let databases = 0

/** A new, empty database on `server` (a connection per call: a test may have restarted PostgreSQL). */
export async function createDatabase(server: PostgresServer, prefix: string): Promise<string> {
  const name = `${prefix}_${process.pid}_${++databases}`
  // bounded: a server that does not answer fails the test with this message, not a test timeout
  const admin = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 15_000, query_timeout: 30_000 })
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

/**
 * `n` real PostgreSQL servers (separate processes, data directories and free ports: a partition's
 * failure must not be another's). Started one after another (initdb is CPU-bound); if one fails,
 * those started are stopped.
 */
export async function startPostgresServers(n: number): Promise<PostgresServer[]> {
  const servers: PostgresServer[] = []
  try {
    for (let i = 0; i < n; i++) servers.push(await startPostgres())
  } catch (err) {
    for (const s of servers) s.stop()
    throw err
  }
  return servers
}

/** The postmaster's pid and data directory, asked of the server itself. */
async function postmasterOf(server: PostgresServer): Promise<{ pid: number; dataDir: string }> {
  const c = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 5_000 })
  await c.connect()
  try {
    const dataDir = (await c.query<{ data_directory: string }>('SHOW data_directory')).rows[0]!.data_directory
    // the first line of postmaster.pid is the postmaster's pid
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${dataDir}/postmaster.pid`)
    return { pid, dataDir }
  } finally {
    await c.end()
  }
}

/**
 * Crash one server as a power cut would look to its clients: SIGQUIT to its postmaster (by the pid
 * in its own data directory: what `pg_ctl stop -m immediate` sends), which ends every backend at
 * once without a checkpoint; the next `start()` runs crash recovery. Resolves once the postmaster
 * has exited (at most `timeoutMs`). Only a server this process started is touched.
 */
export async function crashPostgres(server: PostgresServer, timeoutMs = 30_000): Promise<void> {
  const { pid, dataDir } = await postmasterOf(server)
  process.kill(pid, 'SIGQUIT')
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let alive = true
    try {
      process.kill(pid, 0)
    } catch {
      alive = false
    }
    // the postmaster exits after its backends (pg_ctl start takes over a stale postmaster.pid)
    if (!alive) return
    if (Date.now() > deadline) throw new Error(`PostgreSQL (pid ${pid}, ${dataDir}) did not exit within ${timeoutMs} ms of SIGQUIT`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
