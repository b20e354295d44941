import { describe, it, expect, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import * as Y from 'yjs'
import { createMemoryStorage, type StorageAdapter } from '@concord/server'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer, NO_RATE_LIMIT } from './helpers.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

let running: RunningServer | null = null
const clients: ConcordClient[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await running?.close()
  running = null
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    // a turn of the event loop between collections, for finalizers and weak references to run
    // (a measurement, printed and bounded loosely below; there is no event to wait for)
    await new Promise(r => setTimeout(r, 20))
  }
  return process.memoryUsage().heapUsed
}

describe('document registry lifecycle', () => {
  it('1,000 documents opened, edited and closed leave the registry empty and memory back near its baseline', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'concord-registry-'))
    dirs.push(dataDir)
    running = await startServer({ ...NO_RATE_LIMIT, storage: createSqliteStorage({ dataDir }) })
    const client = connectClient(running.url)
    clients.push(client)
    const cycle = async (from: number, count: number): Promise<void> => {
      for (let start = from; start < from + count; start += 50) {
        const handles = Array.from({ length: 50 }, (_, i) => client.open(`doc-${start + i}`))
        await Promise.all(handles.map(h => h.whenSynced()))
        handles.forEach((h, i) => h.doc.getText('t').insert(0, `content of document ${start + i} `.repeat(20)))
        await Promise.all(handles.map(h => h.whenSaved()))
        for (const h of handles) h.close()
      }
      await waitFor(() => running!.server.registry.size === 0, { message: () => `registry empty (${running!.server.registry.size} left)` })
    }
    await cycle(0, 100) // warm-up: code paths, pools, SQLite statement caches
    const baseline = await heapAfterGc()
    await cycle(100, 1_000)
    expect(running.server.registry.size).toBe(0)
    const after = await heapAfterGc()
    const growthMb = (after - baseline) / 2 ** 20
    console.log(`heap after warm-up ${(baseline / 2 ** 20).toFixed(1)} MB, after 1,000 more documents ${(after / 2 ** 20).toFixed(1)} MB (${growthMb >= 0 ? '+' : ''}${growthMb.toFixed(1)} MB)`)
    // 1,000 documents of ~700 bytes of text each held in memory would be far above this
    expect(growthMb).toBeLessThan(5)
    // and the data is still there
    const check = client.open('doc-777')
    await check.whenSynced()
    expect(check.doc.getText('t').toString()).toContain('content of document 777 ')
  })

  it('loads once for concurrent joiners; a client that joins while the document loads never sees it empty', async () => {
    const inner = createMemoryStorage()
    const seed = new Y.Doc()
    seed.getText('t').insert(0, 'already here')
    await inner.append('slow', { update: Y.encodeStateAsUpdate(seed) })
    let loads = 0
    const storage: StorageAdapter = {
      ...inner,
      kind: inner.kind,
      load: async name => {
        loads++
        // a slow storage load is the fixture of this test, not synchronisation
        await new Promise(r => setTimeout(r, 200))
        return inner.load(name)
      },
    }
    running = await startServer({ ...NO_RATE_LIMIT, storage })
    const a = connectClient(running.url)
    const b = connectClient(running.url)
    clients.push(a, b)
    const ha = a.open('slow')
    // b joins while a's load is under way (each load takes 200 ms)
    await waitFor(() => loads === 1, { message: "a's load to start" })
    const hb = b.open('slow')
    const texts: string[] = []
    for (const h of [ha, hb]) h.on('synced', () => texts.push(h.doc.getText('t').toString()))
    await Promise.all([ha.whenSynced(), hb.whenSynced()])
    expect(texts).toEqual(['already here', 'already here'])
    expect(loads).toBe(1)
  })

  it('a failed load is reported as a retryable document error and the next open tries again', async () => {
    const inner = createMemoryStorage()
    let failNext = true
    const storage: StorageAdapter = {
      ...inner,
      kind: inner.kind,
      load: async name => {
        if (failNext) {
          failNext = false
          throw new Error('disk unavailable')
        }
        return inner.load(name)
      },
    }
    running = await startServer({ ...NO_RATE_LIMIT, storage })
    const client = connectClient(running.url, { reconnect: { minDelayMs: 10, maxDelayMs: 50 } })
    clients.push(client)
    const h = client.open('flaky')
    const errors: string[] = []
    h.on('error', e => errors.push(e.code))
    h.doc.getText('t').insert(0, 'typed before the store answered')
    await h.whenSynced()
    await h.whenSaved()
    expect(errors).toEqual(['CONCORD_ERR_DOC_LOAD_FAILED'])
    expect(running.server.registry.peek('flaky')?.ydoc.getText('t').toString()).toBe('typed before the store answered')
  })
})
