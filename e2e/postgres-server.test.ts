import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectClient, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { createDatabase, startPostgres, storedDocument, type PostgresServer } from './services/postgres.js'

// Concord as a child process on a real PostgreSQL (started from the machine's binaries).
let postgres: PostgresServer
beforeAll(async () => {
  postgres = await startPostgres()
}, 120_000)
afterAll(() => {
  postgres?.stop()
})

const { procs, clients, dirs } = cleanupAfterEach()

const database = (): Promise<string> => createDatabase(postgres, 'server')

/** The items of a document as PostgreSQL holds it. */
async function readStore(url: string, doc: string): Promise<number[]> {
  return (await storedDocument(url, doc)).getArray<number>('items').toArray()
}

async function serve(url: string, port = 0): Promise<ServerProcess> {
  const data = mkdtempSync(join(tmpdir(), 'concord-pg-node-'))
  dirs.push(data)
  const proc = await spawnServer(['--store', url, '--data', data, '--port', String(port), '--compact-every-updates', '97', '--rate-limit-messages', '1000000'])
  procs.push(proc)
  return proc
}

describe('Concord on PostgreSQL', () => {
  it('every acked update is in PostgreSQL when the server is killed; after a restart the client re-sends the rest', async () => {
    const url = await database()
    const first = await serve(url)
    const client = connectClient(first.url, { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    clients.push(client)
    const handle = client.open('crash')
    await handle.whenSynced()
    const items = handle.doc.getArray<number>('items')
    const acked = new Set<number>()
    const TOTAL = 1_000
    handle.on('ack', seqs => { for (const q of seqs) if (q <= TOTAL) acked.add(q - 1) })
    let sent = 0
    const writer = (async () => {
      while (sent < TOTAL) {
        for (let k = 0; k < 10 && sent < TOTAL; k++) items.push([sent++])
        // pacing the stream, so the kill lands mid-stream; not synchronisation
        await new Promise(r => setTimeout(r, 2))
      }
    })()
    await waitFor(() => acked.size >= 300, { message: '300 acks' })
    first.child.kill('SIGKILL')
    await first.exited
    const ackedAtCrash = new Set(acked)
    const stored = new Set(await readStore(url, 'crash'))
    expect([...ackedAtCrash].filter(i => !stored.has(i))).toEqual([])
    console.log(`postgres crash: ${sent} sent, ${ackedAtCrash.size} acked at the kill, ${stored.size} in PostgreSQL`)
    await writer
    const second = await serve(url, first.port)
    await waitFor(() => handle.pendingCount === 0, { timeoutMs: 30_000, message: 'all updates acked after restart' })
    expect(acked.size).toBe(TOTAL)
    second.child.kill('SIGTERM')
    expect((await second.exited).code).toBe(0)
    const final = await readStore(url, 'crash')
    expect(final).toHaveLength(TOTAL)
    expect(new Set(final).size).toBe(TOTAL)
  })

  it('a PostgreSQL restart pauses acks and readiness, the room keeps editing live, and writes resume by themselves with nothing lost', async () => {
    const url = await database()
    const server = await serve(url)
    const writerClient = connectClient(server.url)
    const readerClient = connectClient(server.url)
    clients.push(writerClient, readerClient)
    const w = writerClient.open('restart')
    const r = readerClient.open('restart')
    await Promise.all([w.whenSynced(), r.whenSynced()])
    const items = w.doc.getArray<number>('items')
    let acks = 0
    w.on('ack', seqs => { acks += seqs.length })
    for (let i = 0; i < 50; i++) items.push([i])
    await waitFor(() => w.pendingCount === 0, { message: 'first 50 acked' })
    const ready = async (): Promise<number> => (await fetch(`${server.url.replace('ws:', 'http:')}/readyz`)).status
    expect(await ready()).toBe(200)

    postgres.stopServer()
    try {
      await waitFor(async () => (await ready()) === 503, { message: '/readyz unready while PostgreSQL is down' })
      const acksBefore = acks
      for (let i = 50; i < 100; i++) items.push([i])
      // the other client still gets every edit at once: the room does not wait for storage
      await waitFor(() => r.doc.getArray('items').length === 100, { message: 'edits relayed during the outage' })
      // kept on purpose: 500 ms in which no ack may arrive while PostgreSQL is down
      await new Promise(resolve => setTimeout(resolve, 500))
      expect(acks).toBe(acksBefore)
      expect(w.pendingCount).toBeGreaterThan(0)
    } finally {
      postgres.start()
    }
    const back = Date.now()
    await waitFor(() => w.pendingCount === 0, { timeoutMs: 15_000, message: 'acks resume after PostgreSQL is back' })
    console.log(`postgres restart: acks resumed ${Date.now() - back} ms after PostgreSQL was back`)
    await waitFor(async () => (await ready()) === 200, { message: '/readyz ready again' })
    const stored = await readStore(url, 'restart')
    expect(stored).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })

  it('a node started while PostgreSQL is down starts unready, and becomes ready and serves documents once PostgreSQL is up', async () => {
    const url = await database()
    postgres.stopServer()
    let server: ServerProcess
    try {
      server = await serve(url)
      const ready = async (): Promise<number> => (await fetch(`${server.url.replace('ws:', 'http:')}/readyz`)).status
      expect(await ready()).toBe(503)
      expect((await fetch(`${server.url.replace('ws:', 'http:')}/healthz`)).status).toBe(200)
    } finally {
      postgres.start()
    }
    const ready = async (): Promise<number> => (await fetch(`${server.url.replace('ws:', 'http:')}/readyz`)).status
    await waitFor(async () => (await ready()) === 200, { timeoutMs: 15_000, message: '/readyz ready once PostgreSQL is up' })
    const client = connectClient(server.url)
    clients.push(client)
    const h = client.open('late')
    await h.whenSynced()
    h.doc.getArray<number>('items').push([1, 2, 3])
    await waitFor(() => h.pendingCount === 0, { message: 'acked' })
    expect(await readStore(url, 'late')).toEqual([1, 2, 3])
  })
})
