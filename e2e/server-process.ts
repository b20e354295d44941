import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { waitFor } from './helpers.js'

const BIN = fileURLToPath(new URL('../packages/server/bin/concord.js', import.meta.url))

export interface ServerProcess {
  child: ChildProcess
  port: number
  url: string
  logs: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Run `concord serve` as a child process and wait until it listens (`nodeArgs`: e.g. `--cpu-prof` to profile it;
 * `bin`: another `concord`, e.g. one installed from the packed tarballs); `--auth none` unless `args` choose.
 */
export async function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = [], bin = BIN): Promise<ServerProcess> {
  // tests that are not about authentication run the server open
  const auth = args.some(a => a.startsWith('--auth')) || env.CONCORD_AUTH !== undefined ? [] : ['--auth', 'none']
  const child = spawn(process.execPath, [...nodeArgs, bin, 'serve', '--host', '127.0.0.1', ...auth, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: string[] = []
  let port = 0
  let buffered = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      logs.push(line)
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number }
        if (entry.msg === 'listening' && entry.port) port = entry.port
      } catch { /* not JSON */ }
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  let gone = false
  void exited.then(() => { gone = true })
  await waitFor(() => port > 0 || gone, { timeoutMs: 20_000, message: 'server process to listen' })
  if (port === 0) throw new Error(`server exited before listening:\n${logs.join('\n')}`)
  return { child, port, url: `ws://127.0.0.1:${port}`, logs, exited }
}
