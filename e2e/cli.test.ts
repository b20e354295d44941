import { describe, it, expect, afterEach } from 'vitest'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { spawnServer, type ServerProcess } from './server-process.js'

const BIN = fileURLToPath(new URL('../packages/server/bin/concord.js', import.meta.url))
const procs: ServerProcess[] = []
afterEach(() => {
  for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
})

describe('the concord command', () => {
  it('prints help and version, and refuses unknown commands and bad options with exit code 2', () => {
    const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' })
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/concord serve \[options\]/)
    for (const flag of ['--port', '--host', '--store', '--data', '--log-level', '--cors-origin']) expect(help.stdout).toContain(flag)
    const version = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' })
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
    const unknown = spawnSync(process.execPath, [BIN, 'launch'], { encoding: 'utf8' })
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toContain('unknown command "launch"')
    const bad = spawnSync(process.execPath, [BIN, 'serve', '--store', 'floppy'], { encoding: 'utf8' })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('invalid store "floppy"')
  })

  it('serve takes its options from the environment, answers /healthz and /readyz, and exits 0 on SIGINT', async () => {
    const proc = await spawnServer([], { CONCORD_PORT: '0', CONCORD_STORE: 'memory', CONCORD_LOG_LEVEL: 'info' })
    procs.push(proc)
    const base = `http://127.0.0.1:${proc.port}`
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' })
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready', storage: 'memory' })
    const missing = await fetch(`${base}/nope`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: 'CONCORD_ERR_HTTP_NOT_FOUND' })
    const lines = proc.logs.map(l => { try { return JSON.parse(l) as Record<string, unknown> } catch { return null } }).filter(Boolean)
    expect(lines.some(l => l!.msg === 'listening' && l!.storage === 'memory')).toBe(true)
    proc.child.kill('SIGINT')
    expect((await proc.exited).code).toBe(0)
  })
})
