import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, waitFor } from '../helpers.js'
import { connect } from 'node:net'

const BIN = process.env.CONCORD_NGINX ?? '/usr/sbin/nginx'
/** The configuration docs/deployment.md documents: the test runs it, with its addresses replaced. */
export const NGINX_CONF = fileURLToPath(new URL('../../docs/deployment/nginx.conf', import.meta.url))

export interface NginxServer {
  /** ws://127.0.0.1:<port> */
  readonly url: string
  stop(): Promise<void>
}

/** Debian's nginx with docs/deployment/nginx.conf, on a free port, in front of `upstreams` (host:port). */
export async function startNginx(upstreams: string[]): Promise<NginxServer> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: install Debian's nginx (npm test does it as root: scripts/ensure-system-packages.mjs)`)
  const dir = mkdtempSync(join(tmpdir(), 'concord-nginx-'))
  chmodSync(dir, 0o755)
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    mkdirSync(join(dir, d))
    chmodSync(join(dir, d), 0o777)
  }
  const port = await freePort()
  let site = readFileSync(NGINX_CONF, 'utf8')
  // the documented upstream servers and listen address, replaced by the test's
  site = site.replace(/upstream concord \{[^}]*\}/, `upstream concord {\n${upstreams.map(u => `    server ${u} max_fails=1 fail_timeout=5s;`).join('\n')}\n}`)
  site = site.replace(/listen 80;/, `listen 127.0.0.1:${port};`)
  writeFileSync(join(dir, 'concord.conf'), site)
  writeFileSync(join(dir, 'nginx.conf'), [
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${join(dir, 'body')};`,
    `  proxy_temp_path ${join(dir, 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'scgi')};`,
    `  include ${join(dir, 'concord.conf')};`,
    '}',
  ].join('\n'))
  const child: ChildProcess = spawn(BIN, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const accepts = (): Promise<boolean> => new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    s.on('connect', () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  })
  await waitFor(() => child.exitCode === null ? accepts() : Promise.reject(new Error(`nginx exited (${child.exitCode}): ${stderr}`)), { timeoutMs: 10_000, message: 'nginx listening' })
  return {
    url: `ws://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise(resolve => child.once('exit', resolve))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 3000))])
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
