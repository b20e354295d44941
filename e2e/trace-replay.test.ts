import { describe, it, expect, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '@concord/server'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer, NO_RATE_LIMIT } from './helpers.js'
import { loadTrace } from './traces.js'

const servers: RunningServer[] = []
const clients: ConcordClient[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const s of servers.splice(0)) await s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('trace replay through the server', () => {
  it('automerge-paper: the observer ends equal to endContent, and after a restart the document loads from a compacted SQLite log', async () => {
    const trace = loadTrace('automerge-paper')
    const dataDir = mkdtempSync(join(tmpdir(), 'concord-trace-'))
    dirs.push(dataDir)
    const compactEveryUpdates = 1_000
    const first = await startServer({ ...NO_RATE_LIMIT, storage: createSqliteStorage({ dataDir }), compactEveryUpdates, logger: createLogger('warn') })
    servers.push(first)

    const writer = connectClient(first.url)
    const observer = connectClient(first.url)
    clients.push(writer, observer)
    const w = writer.open('automerge-paper')
    const o = observer.open('automerge-paper')
    await Promise.all([w.whenSynced(), o.whenSynced()])
    const text = w.doc.getText('text')
    const observed = o.doc.getText('text')
    text.insert(0, trace.startContent)
    const started = performance.now()
    for (const txn of trace.txns) {
      w.doc.transact(() => {
        for (const [pos, del, ins] of txn.patches) {
          if (del > 0) text.delete(pos, del)
          if (ins.length > 0) text.insert(pos, ins)
        }
      })
    }
    expect(text.toString()).toBe(trace.endContent)
    await waitFor(() => observed.length === trace.endContent.length && observed.toString() === trace.endContent,
      { timeoutMs: 120_000, intervalMs: 50, message: 'observer to reach endContent' })
    console.log(`automerge-paper: ${trace.txns.length} transactions replayed and observed in ${Math.round(performance.now() - started)} ms`)
    await w.whenSaved()
    expect(w.pendingCount).toBe(0)
    await first.close()
    servers.length = 0

    // the log was compacted: a load reads one snapshot and a tail below the threshold
    const store = createSqliteStorage({ dataDir })
    const loaded = await store.load('automerge-paper')
    await store.close()
    expect(loaded.snapshot).not.toBeNull()
    expect(loaded.updates.length).toBeLessThan(compactEveryUpdates)

    const second = await startServer({ ...NO_RATE_LIMIT, storage: createSqliteStorage({ dataDir }), compactEveryUpdates })
    servers.push(second)
    const reader = connectClient(second.url)
    clients.push(reader)
    const r = reader.open('automerge-paper')
    await r.whenSynced()
    expect(r.doc.getText('text').toString()).toBe(trace.endContent)
  })
})
