import { describe, it, expect, afterEach } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createServer, type ConcordServer } from '@concord/server'
import { freePort } from './helpers.js'

const run = promisify(execFile)
const FIXTURE = fileURLToPath(new URL('./fixtures/offline-client.mjs', import.meta.url))
const dirs: string[] = []
let server: ConcordServer | null = null
afterEach(async () => {
  await server?.close()
  server = null
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function client(url: string, dir: string, ...args: string[]): Promise<{ text: string; pending: number; connected: boolean }> {
  const { stdout } = await run(process.execPath, [FIXTURE, url, dir, ...args], { timeout: 30_000 })
  return JSON.parse(stdout.trim().split('\n').pop()!)
}

describe('offline edits survive a client restart', () => {
  it('a client edits while the server is down, is restarted (new process, same local store), and only then reconnects: its edits arrive', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'concord-offline-'))
    dirs.push(dir)
    const port = await freePort()
    const url = `ws://127.0.0.1:${port}`
    // two separate processes edit with no server reachable
    expect(await client(url, dir, 'write', 'first ')).toEqual({ text: 'first ', pending: 1, connected: false })
    expect(await client(url, dir, 'write', 'second')).toEqual({ text: 'first second', pending: 2, connected: false })
    // the server comes up; a third process reconnects and sends what is unacked
    server = createServer({ auth: 'none' })
    await server.listen(port, '127.0.0.1')
    expect(await client(url, dir, 'sync')).toEqual({ text: 'first second', pending: 0, connected: true })
    const stored = await server.storage.load('offline-doc')
    expect(stored.updates.length).toBeGreaterThan(0)
    const { Doc, applyUpdate } = await import('yjs')
    const check = new Doc()
    for (const u of stored.updates) applyUpdate(check, u.update)
    expect(check.getText('t').toString()).toBe('first second')
    // the acks reached the local store too: offline again, only the new edit is pending
    await server.close()
    server = null
    expect(await client(url, dir, 'write', '!')).toEqual({ text: 'first second!', pending: 1, connected: false })
  })
})
