import { describe, it, expect } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import Database from 'better-sqlite3'
import { connectClient, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer } from './server-process.js'

const { procs, clients, dirs } = cleanupAfterEach()

/** What is on disk: replay the SQLite log (snapshot + tail) the way a load does. */
function readDisk(dataDir: string, doc: string): number[] {
  const db = new Database(join(dataDir, 'concord.db'), { readonly: true })
  try {
    const snap = db.prepare('SELECT seq, data FROM snapshots WHERE doc = ?').get(doc) as { seq: number; data: Buffer } | undefined
    const rows = db.prepare('SELECT data FROM updates WHERE doc = ? AND seq > ? ORDER BY seq').all(doc, snap?.seq ?? 0) as { data: Buffer }[]
    const ydoc = new Y.Doc()
    if (snap) Y.applyUpdate(ydoc, snap.data)
    for (const r of rows) Y.applyUpdate(ydoc, r.data)
    return ydoc.getArray<number>('items').toArray()
  } finally {
    db.close()
  }
}

describe('crash safety with SQLite', () => {
  it('every acked update survives SIGKILL; after reconnecting the client re-sends the rest and all 2,000 are there', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 1_000_000)
    console.log(`crash-recovery seed=${seed} (re-run with SEED=${seed})`)
    let s = seed
    const random = (): number => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const dataDir = mkdtempSync(join(tmpdir(), 'concord-crash-'))
    dirs.push(dataDir)
    const env = { CONCORD_LOG_LEVEL: 'info' }
    // a small compaction threshold, so the kill can also land during a compaction
    const first = await spawnServer(['--data', dataDir, '--port', '0', '--compact-every-updates', '97', '--rate-limit-messages', '1000000'], env)
    procs.push(first)
    const client = connectClient(first.url, { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    clients.push(client)
    const handle = client.open('crash')
    await handle.whenSynced()
    const items = handle.doc.getArray<number>('items')
    const acked = new Set<number>()
    const TOTAL = 2_000
    // seq n carries item n-1; seqs above TOTAL are resync updates, whose acks also list the seqs they carried
    handle.on('ack', seqs => { for (const q of seqs) if (q <= TOTAL) acked.add(q - 1) })

    // kill at a random point of the stream: after a random number of updates were sent
    const killAt = 100 + Math.floor(random() * 1_800)
    let sent = 0
    const writer = (async () => {
      while (sent < TOTAL) {
        const burst = 1 + Math.floor(random() * 20)
        for (let k = 0; k < burst && sent < TOTAL; k++) items.push([sent++])
        // pacing the stream of bursts, so the kill lands mid-stream; not synchronisation
        await new Promise(r => setTimeout(r, 2))
      }
    })()
    await waitFor(() => sent >= killAt, { message: `${killAt} updates sent` })
    first.child.kill('SIGKILL')
    const exit = await first.exited
    expect(exit.signal).toBe('SIGKILL')
    const ackedAtCrash = new Set(acked)
    console.log(`killed at ${killAt}: ${sent} sent, ${ackedAtCrash.size} acked`)

    // the bytes on disk hold every acked update
    const onDisk = new Set(readDisk(dataDir, 'crash'))
    const missing = [...ackedAtCrash].filter(i => !onDisk.has(i))
    expect(missing).toEqual([])
    expect(ackedAtCrash.size).toBeGreaterThan(0)

    await writer
    expect(sent).toBe(TOTAL)
    // restart on the same port; the client reconnects by itself and re-sends what is unacked
    const second = await spawnServer(['--data', dataDir, '--port', String(first.port), '--rate-limit-messages', '1000000'], env)
    procs.push(second)
    await waitFor(() => handle.pendingCount === 0, { timeoutMs: 30_000, message: 'all updates acked after restart' })
    expect(acked.size).toBe(TOTAL)

    // a fresh observer sees exactly the 2,000 items, once each
    const observer = connectClient(second.url)
    clients.push(observer)
    const oh = observer.open('crash')
    await oh.whenSynced()
    const seen = oh.doc.getArray<number>('items').toArray()
    expect(seen).toHaveLength(TOTAL)
    expect(new Set(seen).size).toBe(TOTAL)
    // and so does the disk after a graceful stop
    second.child.kill('SIGTERM')
    expect((await second.exited).code).toBe(0)
    expect(new Set(readDisk(dataDir, 'crash')).size).toBe(TOTAL)
  })

  it('SIGTERM drains: clients are closed with 1001 after their updates are durable, and the process exits 0', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'concord-drain-'))
    dirs.push(dataDir)
    const proc = await spawnServer(['--data', dataDir, '--port', '0'], { CONCORD_LOG_LEVEL: 'info' })
    procs.push(proc)
    const { WebSocket } = await import('ws')
    const ws = new WebSocket(`${proc.url}/drain-room`)
    const closed = new Promise<{ code: number; reason: string }>(resolve => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    await new Promise(r => ws.once('open', r))
    const doc = new Y.Doc()
    doc.getArray<number>('items').push([1, 2, 3])
    const { encodeYMessage } = await import('@concord/protocol')
    ws.send(encodeYMessage({ type: 'update', update: Y.encodeStateAsUpdate(doc) }))
    // the update is in flight when the signal arrives
    proc.child.kill('SIGTERM')
    expect(await closed).toEqual({ code: 1001, reason: 'CONCORD_ERR_SERVER_SHUTTING_DOWN' })
    expect((await proc.exited).code).toBe(0)
    expect(readDisk(dataDir, 'drain-room')).toEqual([1, 2, 3])
  })
})
