import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitFor } from '../helpers.js'

/**
 * A real Redis for tests: Debian's `redis-server` (installed by `npm test`'s setup when missing)
 * on a free port of 127.0.0.1, without persistence, in a temporary directory. `stopServer()` and
 * `start()` restart it on the same port (with no data: what a Redis restart without persistence does).
 */
export interface RedisServer {
  readonly url: string
  readonly port: number
  stopServer(): Promise<void>
  start(): Promise<void>
  stop(): Promise<void>
}

const BIN = process.env.CONCORD_REDIS_SERVER ?? '/usr/bin/redis-server'

function answersPing(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    s.setTimeout(500, () => { s.destroy(); resolve(false) })
    s.on('error', () => resolve(false))
    s.on('connect', () => s.write('PING\r\n'))
    s.on('data', d => { s.destroy(); resolve(d.toString().startsWith('+PONG')) })
  })
}

export async function startRedis(): Promise<RedisServer> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: install Debian's redis-server (npm test does it as root: scripts/ensure-system-packages.mjs)`)
  const dir = mkdtempSync(join(tmpdir(), 'concord-redis-'))
  const port = await freePort()
  let child: ChildProcess | null = null
  const start = async (): Promise<void> => {
    const c = spawn(BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], { stdio: 'ignore' })
    child = c
    await waitFor(() => c.exitCode === null ? answersPing(port) : Promise.reject(new Error(`redis-server exited (${c.exitCode})`)), { timeoutMs: 10_000, message: 'redis-server answers PING' })
  }
  const stopServer = async (): Promise<void> => {
    const c = child
    child = null
    if (c === null || c.exitCode !== null || c.signalCode !== null) return
    const exited = new Promise(resolve => c.once('exit', resolve))
    c.kill('SIGKILL')
    await exited
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stopServer,
    start,
    async stop() {
      await stopServer()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
