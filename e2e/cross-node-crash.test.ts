import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type * as Y from 'yjs'
import type { ConcordClient, DocHandle } from '@concord/client'
import { connectClient, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { createDatabase, startPostgres, storedDocument, type PostgresServer } from './services/postgres.js'
import { startRedis, type RedisServer } from './services/redis.js'
import { PausableProxy } from './pausable-proxy.js'

// Issue 17: a node relays a client's edit to the other nodes before its PostgreSQL commit. These
// tests stall one node's link to PostgreSQL (a proxy that holds the bytes), so an edit reaches the
// other node's client but is not durable, and then kill that node: the other node must store the
// edit itself, and ack the client's re-send of it only once it is durable.
let postgres: PostgresServer
let redis: RedisServer
beforeAll(async () => {
  ;[postgres, redis] = await Promise.all([startPostgres(), startRedis()])
}, 120_000)
afterAll(async () => {
  postgres?.stop()
  await redis?.stop()
})

const { procs, clients, dirs } = cleanupAfterEach()
const proxies: PausableProxy[] = []
afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close()
})

/** A node whose PostgreSQL connections go through a proxy the test can stall. */
async function nodeBehindProxy(database: string): Promise<{ proc: ServerProcess; link: PausableProxy }> {
  const link = new PausableProxy(postgres.port)
  proxies.push(link)
  const port = await link.listen()
  const store = postgres.urlOf(database).replace(`127.0.0.1:${postgres.port}`, `127.0.0.1:${port}`)
  const data = mkdtempSync(join(tmpdir(), 'concord-relay-'))
  dirs.push(data)
  const proc = await spawnServer(['--store', store, '--redis', redis.url, '--data', data, '--port', '0', '--rate-limit-messages', '1000000'])
  procs.push(proc)
  return { proc, link }
}

const items = (d: Y.Doc): string[] => d.getArray<string>('items').toArray()

interface Setup {
  database: string
  a: { proc: ServerProcess; link: PausableProxy }
  b: { proc: ServerProcess; link: PausableProxy }
  writer: ConcordClient
  wh: DocHandle
  bh: DocHandle
  acks: { seqs: number[]; at: number; stored: Promise<string[]> }[]
}

/** Two nodes; the writer on A (B as its second address), a reader on B; 'before' is durable, 'x' only relayed. */
async function relayedButNotDurable(doc: string): Promise<Setup> {
  const database = await createDatabase(postgres, 'relay')
  const dbName = database.slice(database.lastIndexOf('/') + 1)
  const [a, b] = await Promise.all([nodeBehindProxy(dbName), nodeBehindProxy(dbName)])
  const writer = connectClient(a.proc.url, { urls: [a.proc.url, b.proc.url], reconnect: { minDelayMs: 20, maxDelayMs: 200 } })
  const reader = connectClient(b.proc.url)
  clients.push(writer, reader)
  const wh = writer.open(doc)
  const bh = reader.open(doc)
  await Promise.all([wh.whenSynced(), bh.whenSynced()])
  const acks: Setup['acks'] = []
  // what PostgreSQL holds at the moment each ack arrives (read at once, straight from PostgreSQL)
  wh.on('ack', seqs => acks.push({ seqs, at: Date.now(), stored: storedDocument(database, doc).then(items) }))
  wh.doc.getArray<string>('items').push(['before'])
  await waitFor(() => wh.pendingCount === 0 && items(bh.doc).length === 1, { message: '"before" acked and relayed' })

  a.link.pause()
  const sentAt = Date.now()
  wh.doc.getArray<string>('items').push(['x'])
  await waitFor(() => items(bh.doc).includes('x'), { message: '"x" relayed to node B while node A cannot commit' })
  console.log(`relayed to node B's client ${Date.now() - sentAt} ms after the edit, with node A's PostgreSQL link stalled`)
  expect(wh.pendingCount).toBe(1)
  expect(items(await storedDocument(database, doc))).toEqual(['before'])
  return { database, a, b, writer, wh, bh, acks }
}

describe('an edit relayed before its commit, and its origin node dies', () => {
  it('a node that loads the document while the edit is not durable gets it from the stream, and stores it once its origin is gone', async () => {
    const doc = 'relay-late-load'
    const database = await createDatabase(postgres, 'relay')
    const a = await nodeBehindProxy(database.slice(database.lastIndexOf('/') + 1))
    const writer = connectClient(a.proc.url)
    clients.push(writer)
    const wh = writer.open(doc)
    await wh.whenSynced()
    wh.doc.getArray<string>('items').push(['before'])
    await waitFor(() => wh.pendingCount === 0, { message: '"before" acked' })
    a.link.pause()
    wh.doc.getArray<string>('items').push(['x'])
    // no other node holds the document: "x" is only in node A's memory and in the stream
    const data = mkdtempSync(join(tmpdir(), 'concord-relay-'))
    dirs.push(data)
    const c = await spawnServer(['--store', database, '--redis', redis.url, '--data', data, '--port', '0'])
    procs.push(c)
    const late = connectClient(c.url)
    clients.push(late)
    const lh = late.open(doc)
    await lh.whenSynced()
    await waitFor(() => items(lh.doc).length === 2, { message: () => `the late node's client has both edits: ${items(lh.doc).join(',')}` })
    expect(items(lh.doc)).toEqual(['before', 'x'])
    expect(items(await storedDocument(database, doc))).toEqual(['before'])
    a.proc.child.kill('SIGKILL')
    await a.proc.exited
    await waitFor(async () => items(await storedDocument(database, doc)).includes('x'), { timeoutMs: 20_000, message: '"x" stored by the late node' })
  })

  it('node B stores it itself; a fresh load holds it, and the writer\'s re-send through node B is acked once it is durable', async () => {
    const doc = 'relay-crash'
    const { database, a, b, writer, wh, bh, acks } = await relayedButNotDurable(doc)
    a.proc.child.kill('SIGKILL')
    expect((await a.proc.exited).signal).toBe('SIGKILL')
    const killedAt = Date.now()

    // node B appends what its origin never confirmed
    await waitFor(async () => items(await storedDocument(database, doc)).includes('x'), { timeoutMs: 20_000, message: '"x" in PostgreSQL' })
    console.log(`node B stored the unconfirmed edit ${Date.now() - killedAt} ms after node A was killed`)

    // the writer reconnects (to node B) and re-sends what is unacked; its ack comes once durable
    await waitFor(() => wh.pendingCount === 0, { timeoutMs: 20_000, message: '"x" acked through node B' })
    expect(writer.url).toBe(b.proc.url)
    const last = acks[acks.length - 1]!
    expect(await last.stored).toContain('x')

    // a fresh load (a new node, straight to PostgreSQL) holds both edits once each
    const data = mkdtempSync(join(tmpdir(), 'concord-relay-'))
    dirs.push(data)
    const c = await spawnServer(['--store', database, '--redis', redis.url, '--data', data, '--port', '0'])
    procs.push(c)
    const fresh = connectClient(c.url)
    clients.push(fresh)
    const fh = fresh.open(doc)
    await fh.whenSynced()
    expect(items(fh.doc)).toEqual(['before', 'x'])
    expect(items(bh.doc)).toEqual(['before', 'x'])
    expect(items(await storedDocument(database, doc)).sort()).toEqual(['before', 'x'])
  })

  it('with node B\'s PostgreSQL link stalled too, the re-send that changed nothing on node B is acked only after node B stored the edit', async () => {
    const doc = 'relay-crash-stalled'
    const { database, a, b, writer, wh, bh, acks } = await relayedButNotDurable(doc)
    // node B cannot store anything either: not on its timer, not for the re-send
    b.link.pause()
    a.proc.child.kill('SIGKILL')
    await a.proc.exited
    const acksBefore = acks.length
    // the writer reconnects to node B and re-opens the document (its re-send goes out with the sync)
    let synced = 0
    wh.on('synced', () => { synced++ })
    await waitFor(() => writer.url === b.proc.url && synced > 0, { timeoutMs: 20_000, message: 'writer re-synced through node B' })
    expect(items(bh.doc)).toEqual(['before', 'x'])
    expect(items(await storedDocument(database, doc))).toEqual(['before'])
    const resumedAt = Date.now()
    b.link.resume()
    await waitFor(() => wh.pendingCount === 0, { timeoutMs: 20_000, message: '"x" acked through node B' })
    const late = acks.slice(acksBefore)
    expect(late.length).toBeGreaterThan(0)
    // no ack before node B's storage could commit, and PostgreSQL held the edit when the ack arrived
    for (const ack of late) {
      expect(ack.at).toBeGreaterThanOrEqual(resumedAt)
      expect(await ack.stored).toEqual(expect.arrayContaining(['before', 'x']))
    }
    console.log(`re-send acked ${late[0]!.at - resumedAt} ms after node B's PostgreSQL link came back`)
  })
})
