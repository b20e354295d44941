import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import pg from 'pg'
import { freePort } from '../helpers.js'

/**
 * A real PostgreSQL server for tests: `initdb` in a temporary directory, `pg_ctl start` on a free
 * port of 127.0.0.1 (Unix socket in the same directory), torn down by `stop()`. The machine's
 * binaries are used (`CONCORD_PG_BIN`, else `pg_config --bindir`, else /usr/lib/postgresql/<v>/bin).
 * initdb refuses to run as root, so as root everything runs as the `postgres` user (`runuser`).
 */
export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string
  readonly port: number
  /** A URL of another database on this server. */
  urlOf(database: string): string
  /** Stop the server (fast shutdown); `start()` brings it back on the same port and data. */
  stopServer(): void
  start(): void
  /** Stop and delete everything. */
  stop(): void
}

function binDir(): string {
  const fromEnv = process.env.CONCORD_PG_BIN
  if (fromEnv) return fromEnv
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim()
    if (existsSync(join(dir, 'initdb'))) return dir
  } catch {}
  for (const v of ['17', '16', '15', '14', '13']) {
    const dir = `/usr/lib/postgresql/${v}/bin`
    if (existsSync(join(dir, 'initdb'))) return dir
  }
  throw new Error('PostgreSQL binaries not found (initdb, pg_ctl): install postgresql (Debian: apt-get install -y postgresql) or set CONCORD_PG_BIN')
}

function idOf(user: string): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim()),
  }
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = binDir()
  const asRoot = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'concord-pg-'))
  const data = join(dir, 'data')
  const logFile = join(dir, 'postgres.log')
  if (asRoot) {
    const { uid, gid } = idOf('postgres')
    chownSync(dir, uid, gid)
  }
  chmodSync(dir, 0o700)
  const run = (cmd: string, args: string[]): void => {
    const argv = asRoot ? ['-u', 'postgres', '--', join(bin, cmd), ...args] : args
    const r = spawnSync(asRoot ? 'runuser' : join(bin, cmd), argv, { encoding: 'utf8', timeout: 60_000 })
    if (r.status !== 0) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''
      throw new Error(`${cmd} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}\n${log}`)
    }
  }
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C'])
  const port = await freePort()
  const start = (): void => run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '30', '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`, 'start'])
  const stopServer = (): void => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'])
  start()
  let stopped = false
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    urlOf: database => `postgres://postgres@127.0.0.1:${port}/${database}`,
    stopServer,
    start,
    stop() {
      if (stopped) return
      stopped = true
      try { stopServer() } catch {}
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

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
