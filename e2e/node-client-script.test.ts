import { describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnServer } from './server-process.js'
import { cleanupAfterEach } from './cleanup.js'
import { runNodeScript } from './node-script.js'

// Issue 18, "Node without ceremony": a plain Node ESM script (not vitest, no WebSocket
// option, no ws import of its own) that imports `@concord/client/node` connects to a real
// `concord serve`, edits, gets the durable-save ack and exits by itself.

const SCRIPT = fileURLToPath(new URL('./fixtures/node-sdk-script.mjs', import.meta.url))

describe('a plain Node script on @concord/client/node', () => {
  const { procs, dirs } = cleanupAfterEach()

  it('connects to concord serve with only a url, edits, gets the durable-save ack and exits 0; another script reads the edit', async () => {
    const data = mkdtempSync(join(tmpdir(), 'concord-node-script-'))
    dirs.push(data)
    const server = await spawnServer(['--data', data, '--port', '0'])
    procs.push(server)

    const write = await runNodeScript(SCRIPT, [server.url, 'node-script', 'write', 'typed in plain Node'])
    expect(write.stderr).toBe('')
    expect(write.code).toBe(0)
    const written = JSON.parse(write.stdout.trim()) as { text: string; saved: boolean; globalWebSocket: string; node: string }
    expect(written).toMatchObject({ text: 'typed in plain Node', saved: true })
    // On Node 20 (what these machines run) there is no global WebSocket: the entry brought ws itself.
    if (Number(written.node.split('.')[0]) < 22) expect(written.globalWebSocket).toBe('undefined')

    const read = await runNodeScript(SCRIPT, [server.url, 'node-script', 'read', 'typed in plain Node'])
    expect(read.stderr).toBe('')
    expect(read.code).toBe(0)
    expect(JSON.parse(read.stdout.trim())).toMatchObject({ text: 'typed in plain Node' })
  })
})
