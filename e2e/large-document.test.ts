import { describe, it, expect, afterEach } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import type { ConcordClient, TransferProgress } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'
import { spawnServer, type ServerProcess } from './server-process.js'

const LOADER = fileURLToPath(new URL('./fixtures/large-loader.mjs', import.meta.url))

/** A document of about `bytes` encoded bytes: paragraphs typed at changing places, some deleted, plus a board. */
function buildLargeDocument(bytes: number): Y.Doc {
  const doc = new Y.Doc()
  const body = doc.getText('body')
  let seed = 7
  const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
  let written = 0
  for (let i = 0; written < bytes; i++) {
    let paragraph = `\n${i}: `
    while (paragraph.length < 2000) paragraph += Math.floor(random() * 1e9).toString(36) + ' '
    body.insert(Math.floor(random() * body.length), paragraph)
    written += paragraph.length
    if (i % 10 === 9) body.delete(Math.floor(random() * (body.length - 100)), 50)
  }
  const cards = doc.getArray<Y.Map<unknown>>('cards')
  for (let i = 0; i < 5000; i++) {
    const card = new Y.Map<unknown>()
    card.set('title', `card ${i}`)
    card.set('column', i % 4)
    cards.push([card])
  }
  return doc
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')

describe('large documents', () => {
  const cleanup: (() => unknown)[] = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })

  it('a 50 MB document loads through the SDK in chunks while another client\'s small edits and cursor moves keep arriving within 100 ms', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'concord-large-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))

    // the document is already stored (as after a long life): one snapshot of about 50 MB
    const source = buildLargeDocument(50_000_000)
    const snapshot = Y.encodeStateAsUpdate(source)
    expect(snapshot.length).toBeGreaterThan(50_000_000)
    const seeding = createSqliteStorage({ dataDir: dir })
    const seq = await seeding.append('big', { update: snapshot })
    await seeding.compact('big', snapshot, seq)
    await seeding.close()

    const server: ServerProcess = await spawnServer(['--data', dir])
    cleanup.push(async () => {
      server.child.kill('SIGTERM')
      await server.exited
    })

    // two collaborators are already in the document
    const writer = connectClient(server.url)
    const observer = connectClient(server.url)
    cleanup.push(() => { writer.close(); observer.close() })
    const w = writer.open('big')
    const o = observer.open('big')
    await Promise.all([w.whenSynced(), o.whenSynced()])
    expect(o.doc.getText('body').toString()).toBe(source.getText('body').toString())

    // the observer measures how long the writer's edits and cursor moves take to reach it
    const sentEdits = new Map<string, number>()
    const editLatency: number[] = []
    let lastSeen = 0
    // each edit also bumps a counter in a small map, in the same transaction: reading which edits
    // arrived from the map costs nothing, while a text event's delta walks the whole 50 MB text
    o.doc.getMap('ticks').observe(ev => {
      if (!ev.keysChanged.has('edit')) return
      const n = o.doc.getMap<number>('ticks').get('edit')!
      for (let k = lastSeen + 1; k <= n; k++) editLatency.push(Date.now() - sentEdits.get(String(k))!)
      lastSeen = Math.max(lastSeen, n)
    })
    const cursorLatency: number[] = []
    const seenCursors = new Set<number>()
    o.awareness.on('change', () => {
      for (const [id, state] of o.awareness.getStates()) {
        const sentAt = (state as { sentAt?: number }).sentAt
        if (id === o.doc.clientID || typeof sentAt !== 'number' || seenCursors.has(sentAt)) continue
        seenCursors.add(sentAt)
        cursorLatency.push(Date.now() - sentAt)
      }
    })

    // for comparison: the same traffic before anyone loads the document
    const text = w.doc.getText('body')
    let i = 0
    const step = async (): Promise<void> => {
      i++
      sentEdits.set(String(i), Date.now())
      w.doc.transact(() => {
        text.insert(0, `[e${i}]`)
        w.doc.getMap('ticks').set('edit', i)
      })
      w.awareness.setLocalStateField('cursor', { index: i })
      w.awareness.setLocalStateField('sentAt', Date.now())
      await new Promise(r => setTimeout(r, 25))
    }
    for (let k = 0; k < 40; k++) await step()
    await waitFor(() => editLatency.length === i, { message: 'the baseline edits to arrive' })
    const baselineEdits = editLatency.splice(0)
    const baselineCursors = cursorLatency.splice(0)
    const baselineCount = i

    // a third client loads the whole document (in its own process)
    const endMarker = `END-${Math.random().toString(36).slice(2)}`
    const events: ({ type: string; at: number } & Record<string, unknown>)[] = []
    const loader: ChildProcess = spawn(process.execPath, [LOADER, server.url, 'big', endMarker], { stdio: ['ignore', 'pipe', 'inherit'] })
    cleanup.push(() => { if (loader.exitCode === null) loader.kill('SIGKILL') })
    let buffered = ''
    loader.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      let nl: number
      while ((nl = buffered.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buffered.slice(0, nl)))
        buffered = buffered.slice(nl + 1)
      }
    })
    const loadStarted = Date.now()

    // meanwhile the writer keeps typing and moving its cursor, every 25 ms
    let syncedAt = 0
    while (Date.now() - loadStarted < 90_000) {
      const synced = events.find(e => e.type === 'synced')
      if (synced !== undefined && syncedAt === 0) syncedAt = Date.now()
      // keep going a little after the load finished, so edits that crossed it are measured too
      if (syncedAt > 0 && Date.now() - syncedAt > 500) break
      await step()
    }
    expect(syncedAt, 'the loader synced').toBeGreaterThan(0)
    text.insert(text.length, endMarker)
    await waitFor(() => events.some(e => e.type === 'final'), { timeoutMs: 60_000, message: 'the loader to receive the end marker' })
    await waitFor(() => o.doc.getText('body').toString() === text.toString(), { message: 'the observer to converge' })

    // the load came in chunks, with progress from the first to the last
    const progress = events.filter(e => e.type === 'progress') as unknown as (TransferProgress & { at: number })[]
    const sync = progress.filter(p => p.totalChunks > 100)
    expect(sync.length).toBeGreaterThan(100)
    expect(sync.every(p => p.direction === 'download')).toBe(true)
    expect(sync.map(p => p.chunks)).toEqual(sync.map((_, k) => k + 1))
    expect(sync.at(-1)!.chunks).toBe(sync.at(-1)!.totalChunks)
    expect(sync.at(-1)!.bytes).toBeGreaterThan(50_000_000)
    const final = events.find(e => e.type === 'final')!
    expect(final.sha256).toBe(sha256(text.toString()))

    const synced = events.find(e => e.type === 'synced')!
    const stats = (xs: number[]): string => {
      const s = [...xs].sort((a, b) => a - b)
      return `n=${s.length} p50=${s[Math.floor(s.length / 2)]} max=${s.at(-1)} ms`
    }
    const loaderPresence = events.filter(e => e.type === 'presence' && e.at < synced.at).length
    console.log(`50 MB load: ${snapshot.length} bytes in ${sync.length} chunks, synced after ${String(synced.ms)} ms; ` +
      `edits at the observer ${stats(editLatency)} (before the load: ${stats(baselineEdits)}); ` +
      `cursor moves ${stats(cursorLatency)} (before: ${stats(baselineCursors)}); ` +
      `presence updates the loader received before its sync completed: ${loaderPresence}`)
    // every edit made during the load arrived, each within 100 ms, and so did the cursor moves
    expect(editLatency.length).toBe(i - baselineCount)
    expect(i - baselineCount).toBeGreaterThan(20)
    expect(Math.max(...editLatency)).toBeLessThan(100)
    expect(cursorLatency.length).toBeGreaterThan(10)
    expect(Math.max(...cursorLatency)).toBeLessThan(100)
  }, 180_000)

  it('sends a large local update a chunk at a time, so small frames sent after it overtake it', async () => {
    let server: RunningServer | null = await startServer()
    const clients: ConcordClient[] = []
    cleanup.push(async () => { for (const c of clients) c.close(); await server?.close(); server = null })
    const uploader = connectClient(server.url)
    const observer = connectClient(server.url)
    clients.push(uploader, observer)
    const [bigU, sideU] = [uploader.open('upload-big'), uploader.open('upload-side')]
    const [bigO, sideO] = [observer.open('upload-big'), observer.open('upload-side')]
    await Promise.all([bigU, sideU, bigO, sideO].map(h => h.whenSynced()))

    const order: string[] = []
    bigO.on('progress', () => { if (order.at(-1) !== 'big chunk') order.push('big chunk') })
    sideO.doc.getText('t').observe(() => order.push('side edit'))
    const uploads: TransferProgress[] = []
    bigU.on('progress', p => uploads.push(p))

    // about 20 MB in one local transaction, then a one-character edit of another document
    const big = buildLargeDocument(20_000_000)
    Y.applyUpdate(bigU.doc, Y.encodeStateAsUpdate(big))
    sideU.doc.getText('t').insert(0, 'x')

    await waitFor(() => bigO.doc.getText('body').length === big.getText('body').length, { timeoutMs: 60_000, message: 'the big update to arrive' })
    await waitFor(() => sideO.doc.getText('t').toString() === 'x', { message: 'the side edit to arrive' })
    await bigU.whenSaved()
    // the small edit did not wait behind 20 MB: it reached the other client first
    expect(order[0]).toBe('side edit')
    expect(order).toContain('big chunk')
    expect(uploads.length).toBeGreaterThan(50)
    expect(uploads.every(p => p.direction === 'upload')).toBe(true)
    expect(uploads.map(p => p.chunks)).toEqual(uploads.map((_, k) => k + 1))
    expect(uploads.at(-1)!.bytes).toBeGreaterThan(19_000_000)
  }, 120_000)
})
