// Real PostgreSQL and Redis servers for tests and benchmarks, each in a temporary
// directory on a free port of 127.0.0.1, torn down by stop(). Shared by the e2e
// suite (e2e/services/*.ts) and the cross-node benchmark. Types: services.d.mts.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './server-proc.mjs'

/**
 * The machine's PostgreSQL binaries: `CONCORD_PG_BIN`, else `pg_config --bindir`,
 * else /usr/lib/postgresql/<v>/bin.
 */
function pgBinDir () {
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

function idOf (user) {
  return {
    uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim())
  }
}

/**
 * `initdb` in a temporary directory and `pg_ctl start` on a free port (Unix socket in the
 * same directory). initdb refuses to run as root, so as root everything runs as the
 * `postgres` user (`runuser`).
 */
export async function startPostgres () {
  const bin = pgBinDir()
  const asRoot = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'concord-pg-'))
  const data = join(dir, 'data')
  const logFile = join(dir, 'postgres.log')
  if (asRoot) {
    const { uid, gid } = idOf('postgres')
    chownSync(dir, uid, gid)
  }
  chmodSync(dir, 0o700)
  const run = (cmd, args) => {
    const argv = asRoot ? ['-u', 'postgres', '--', join(bin, cmd), ...args] : args
    const r = spawnSync(asRoot ? 'runuser' : join(bin, cmd), argv, { encoding: 'utf8', timeout: 60_000 })
    if (r.status !== 0) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''
      throw new Error(`${cmd} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}\n${log}`)
    }
  }
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C'])
  const port = await freePort()
  const start = () => run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '30', '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`, 'start'])
  const stopServer = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'])
  start()
  let stopped = false
  let version = ''
  try { version = execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).trim() } catch {}
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    version,
    port,
    urlOf: database => `postgres://postgres@127.0.0.1:${port}/${database}`,
    stopServer,
    start,
    stop () {
      if (stopped) return
      stopped = true
      try { stopServer() } catch {}
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

const REDIS_BIN = process.env.CONCORD_REDIS_SERVER ?? '/usr/bin/redis-server'

function answersPing (port) {
  return new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    s.setTimeout(500, () => { s.destroy(); resolve(false) })
    s.on('error', () => resolve(false))
    s.on('connect', () => s.write('PING\r\n'))
    s.on('data', d => { s.destroy(); resolve(d.toString().startsWith('+PONG')) })
  })
}

/**
 * Debian's `redis-server` (`npm test`'s setup installs it when missing) without
 * persistence. `stopServer()` and `start()` restart it on the same port, with no data:
 * what a Redis restart without persistence does.
 */
export async function startRedis () {
  if (!existsSync(REDIS_BIN)) throw new Error(`${REDIS_BIN} is missing: install Debian's redis-server (npm test does it as root: scripts/ensure-system-packages.mjs)`)
  const dir = mkdtempSync(join(tmpdir(), 'concord-redis-'))
  const port = await freePort()
  let child = null
  const start = async () => {
    const c = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], { stdio: 'ignore' })
    child = c
    const deadline = Date.now() + 10_000
    for (;;) {
      if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode})`)
      if (await answersPing(port)) return
      if (Date.now() > deadline) throw new Error('timed out after 10000 ms waiting for redis-server to answer PING')
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  }
  const stopServer = async () => {
    const c = child
    child = null
    if (c === null || c.exitCode !== null || c.signalCode !== null) return
    const exited = new Promise(resolve => c.once('exit', resolve))
    c.kill('SIGKILL')
    await exited
  }
  await start()
  let version = ''
  try { version = execFileSync(REDIS_BIN, ['--version'], { encoding: 'utf8' }).trim().split(' ').slice(0, 3).join(' ') } catch {}
  return {
    url: `redis://127.0.0.1:${port}`,
    version,
    port,
    pid: () => child?.pid ?? null,
    stopServer,
    start,
    async stop () {
      await stopServer()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
