import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import pg from 'pg'
import type { DocHandle } from '@concord/client'
import { mintToken } from '@concord/server'
import { connectClient, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { createDatabase, startPostgres, storedDocument, type PostgresServer } from './services/postgres.js'
import { startRedis, type RedisServer } from './services/redis.js'
import { LinkProxy } from '../bench/lib/link-proxy.mjs'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'

// Two regions, each with its own PostgreSQL, its own Redis and two Concord nodes. Each region
// reaches the other's PostgreSQL and Redis only through the link: TCP proxies adding
// LINK_LATENCY_MS in each direction, which the tests partition and heal.
const LINK_LATENCY_MS = 80
const SECRET = 'regions-test-secret-of-at-least-32-characters'
const ADMIN = 'regions-admin-token'

interface Region {
  name: string
  postgres: PostgresServer
  redis: RedisServer
  /** What the other region's nodes dial to reach this region's PostgreSQL and Redis. */
  pgLink: LinkProxy
  redisLink: LinkProxy
}

let eu: Region
let us: Region

async function region(name: string): Promise<Region> {
  const [postgres, redis] = await Promise.all([startPostgres(), startRedis()])
  const pgLink = new LinkProxy({ targetPort: postgres.port, latencyMs: LINK_LATENCY_MS })
  const redisLink = new LinkProxy({ targetPort: redis.port, latencyMs: LINK_LATENCY_MS })
  await Promise.all([pgLink.listen(), redisLink.listen()])
  return { name, postgres, redis, pgLink, redisLink }
}

beforeAll(async () => {
  ;[eu, us] = await Promise.all([region('eu'), region('us')])
}, 180_000)
afterAll(async () => {
  for (const r of [eu, us]) {
    if (r === undefined) continue
    await r.pgLink.close()
    await r.redisLink.close()
    r.postgres.stop()
    await r.redis.stop()
  }
})

const { procs, clients, dirs } = cleanupAfterEach()

/** A fresh database in each region (same name: the two regions hold the same documents). */
async function databases(): Promise<{ eu: string; us: string }> {
  const [a, b] = await Promise.all([createDatabase(eu.postgres, 'regions'), createDatabase(us.postgres, 'regions')])
  return { eu: a, us: b }
}

/** The peer's database as seen through the link. */
function viaLink(peer: Region, url: string): string {
  return url.replace(`:${peer.postgres.port}/`, `:${peer.pgLink.port}/`)
}

async function node(self: Region, peer: Region, dbs: { eu: string; us: string }, extra: string[] = []): Promise<ServerProcess> {
  const data = mkdtempSync(join(tmpdir(), `concord-region-${self.name}-`))
  dirs.push(data)
  const own = self === eu ? dbs.eu : dbs.us
  const theirs = viaLink(peer, peer === eu ? dbs.eu : dbs.us)
  const proc = await spawnServer([
    '--store', own, '--redis', self.redis.url, '--data', data, '--port', '0', '--rate-limit-messages', '1000000',
    '--auth-secret', SECRET, '--admin-token', ADMIN, '--shutdown-timeout-ms', '3000',
    '--region', self.name, '--peer-region', `${peer.name}=${theirs},redis://127.0.0.1:${peer.redisLink.port}`, ...extra,
  ])
  procs.push(proc)
  return proc
}

async function cluster(): Promise<{ dbs: { eu: string; us: string }; euNodes: ServerProcess[]; usNodes: ServerProcess[] }> {
  const dbs = await databases()
  const [e1, e2, u1, u2] = await Promise.all([node(eu, us, dbs), node(eu, us, dbs), node(us, eu, dbs), node(us, eu, dbs)])
  return { dbs, euNodes: [e1!, e2!], usNodes: [u1!, u2!] }
}

async function writerToken(user: string): Promise<string> {
  return (await mintToken({ secret: SECRET, tenant: 'acme', userId: user, docs: { 'acme/*': 'write' }, expiresInSec: 3600 })).token
}

const items = (d: Y.Doc, name = 'items'): string[] => d.getArray<string>(name).toArray()
/** Sorted, with duplicates kept (a duplicated item would show). */
const sorted = (list: string[]): string[] => [...list].sort()

interface Editor { who: string; handle: DocHandle; doc: string }

async function editors(nodes: ServerProcess[], docs: string[], perNode: number, tag: string): Promise<Editor[]> {
  const out: Editor[] = []
  for (const [n, proc] of nodes.entries()) {
    for (let i = 0; i < perNode; i++) {
      const who = `${tag}${n}-${i}`
      const client = connectClient(proc.url, { token: await writerToken(who) })
      clients.push(client)
      const doc = docs[(n * perNode + i) % docs.length]!
      out.push({ who, handle: client.open(doc), doc })
    }
  }
  await Promise.all(out.map(e => e.handle.whenSynced()))
  return out
}

/** `count` items per editor, in small bursts; resolves once every one is acked (saved in its own region). */
async function edit(list: Editor[], from: number, count: number): Promise<void> {
  await Promise.all(list.map(async e => {
    for (let i = from; i < from + count; i++) {
      e.handle.doc.getArray<string>('items').push([`${e.who}:${i}`])
      // typing pace, not synchronisation
      if (i % 4 === 3) await new Promise(r => setTimeout(r, 10))
    }
  }))
  await waitFor(() => list.every(e => e.handle.pendingCount === 0), { timeoutMs: 20_000, message: 'every edit acked in its region' })
}

function expectedItems(list: Editor[], doc: string, upTo: number): string[] {
  return sorted(list.filter(e => e.doc === doc).flatMap(e => Array.from({ length: upTo }, (_, i) => `${e.who}:${i}`)))
}

async function storedItems(url: string, doc: string): Promise<string[]> {
  return sorted(items(await storedDocument(url, doc)))
}

async function readyz(proc: ServerProcess): Promise<{ region?: string; peers?: { peer: string; queued: number; lagSeconds: number; linkUp: boolean | null; shipping: boolean }[] }> {
  const res = await fetch(`http://127.0.0.1:${proc.port}/readyz`)
  return await res.json() as never
}

interface RegionsView { name: string; peers: { peer: string; queued: number; lagSeconds: number; linkUp: boolean | null; shippingNode: string | null }[] }
async function adminStats(proc: ServerProcess): Promise<{ node: string; regions: RegionsView | null }> {
  const res = await fetch(`http://127.0.0.1:${proc.port}/admin/stats`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return await res.json() as never
}

async function metric(proc: ServerProcess, name: string, peer: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${proc.port}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith(`${name}{peer="${peer}"}`))
  return line === undefined ? Number.NaN : Number(line.split(' ').pop())
}

describe('active-active regions: two regions, each its own PostgreSQL, Redis and two nodes, linked with 80 ms each way', () => {
  it('clients in both regions edit the same documents: every client and both PostgreSQL databases converge, nothing duplicated', async () => {
    const { dbs, euNodes, usNodes } = await cluster()
    const docs = ['acme/plan', 'acme/notes', 'acme/board']
    const all = [...await editors(euNodes, docs, 2, 'eu'), ...await editors(usNodes, docs, 2, 'us')]
    const started = Date.now()
    await edit(all, 0, 12)
    const perDoc = docs.map(d => expectedItems(all, d, 12))
    await waitFor(() => all.every(e => sorted(items(e.handle.doc)).length === perDoc[docs.indexOf(e.doc)]!.length), {
      timeoutMs: 30_000, message: () => `every client has its document's items: ${all.map(e => items(e.handle.doc).length).join(',')}`,
    })
    const convergedMs = Date.now() - started
    for (const e of all) expect(sorted(items(e.handle.doc))).toEqual(perDoc[docs.indexOf(e.doc)])
    // both regions' databases hold everything (the other region's edits arrived by replication)
    for (const [i, d] of docs.entries()) {
      await waitFor(async () => (await storedItems(dbs.eu, d)).length === perDoc[i]!.length && (await storedItems(dbs.us, d)).length === perDoc[i]!.length,
        { timeoutMs: 20_000, message: `${d} complete in both databases` })
      expect(await storedItems(dbs.eu, d)).toEqual(perDoc[i])
      expect(await storedItems(dbs.us, d)).toEqual(perDoc[i])
    }
    // the replicated log entries carry their origin; the outboxes drain
    const usRows = new pg.Client({ connectionString: dbs.us })
    await usRows.connect()
    try {
      const origins = await usRows.query<{ origin: string | null; n: string }>('SELECT origin, COUNT(*) AS n FROM concord_updates GROUP BY origin ORDER BY origin')
      expect(origins.rows.map(r => r.origin)).toContain('eu')
    } finally {
      await usRows.end()
    }
    // every node reads the queue from its region's outbox (once a second)
    await waitFor(async () => (await Promise.all([...euNodes, ...usNodes].map(readyz))).every(r => r.peers?.[0]?.queued === 0),
      { timeoutMs: 10_000, message: 'both outboxes drained, as every node reports (readyz)' })
    const ready = await readyz(euNodes[1]!)
    expect(ready).toMatchObject({ region: 'eu', peers: [{ peer: 'us', queued: 0 }] })
    // exactly one node of each region ships to the other
    const shipping = await Promise.all([...euNodes, ...usNodes].map(async p => (await readyz(p)).peers?.[0]?.shipping))
    expect(shipping.slice(0, 2).filter(Boolean)).toHaveLength(1)
    expect(shipping.slice(2).filter(Boolean)).toHaveLength(1)
    expect(await metric(euNodes[0]!, 'concord_region_replication_queue', 'us')).toBe(0)
    console.log(`regions: ${all.length} clients, ${all.length * 12} edits, every client converged ${convergedMs} ms after the first edit`)
  }, 120_000)

  it('a 10 s partition while both sides keep editing: each region keeps serving, queues, and both converge after the link returns', async () => {
    const { dbs, euNodes, usNodes } = await cluster()
    const docs = ['acme/split']
    const euEditors = await editors(euNodes, docs, 1, 'eu')
    const usEditors = await editors(usNodes, docs, 1, 'us')
    const all = [...euEditors, ...usEditors]
    await edit(all, 0, 5)
    await waitFor(() => all.every(e => items(e.handle.doc).length === 20), { timeoutMs: 20_000, message: 'converged before the partition' })

    const partitionedAt = Date.now()
    for (const r of [eu, us]) { r.pgLink.partition(); r.redisLink.partition() }
    // both sides keep editing, and every edit is acked by its own region (saved there)
    await edit(all, 5, 15)
    // during the partition each side sees only its own region's new edits
    const euDuring = items(euEditors[0]!.handle.doc).length
    expect(euDuring).toBeLessThan(all.length * 20)
    expect(euDuring).toBeGreaterThanOrEqual(euEditors.length * 20 + usEditors.length * 5)
    await waitFor(async () => (await metric(euNodes[0]!, 'concord_region_replication_queue', 'us')) > 0, { message: 'eu queues for us during the partition' })
    // the admin API (and the dashboard's regions panel) of either eu node says so too
    await waitFor(async () => {
      const peer = (await adminStats(euNodes[1]!)).regions?.peers[0]
      return peer?.peer === 'us' && peer.queued > 0
    }, { message: 'eu node 2\'s /admin/stats to show the queue for us' })
    const readyDuring = await fetch(`http://127.0.0.1:${euNodes[0]!.port}/readyz`)
    expect(readyDuring.status).toBe(200)
    // the partition lasts 10 s in all
    await new Promise(r => setTimeout(r, Math.max(0, 9_000 - (Date.now() - partitionedAt))))
    const lagDuring = await metric(euNodes[0]!, 'concord_region_replication_lag_seconds', 'us')
    expect(lagDuring).toBeGreaterThan(0)
    expect((await readyz(euNodes[1]!)).peers?.[0]).toMatchObject({ peer: 'us' })
    await new Promise(r => setTimeout(r, Math.max(0, 10_000 - (Date.now() - partitionedAt))))
    const healedAt = Date.now()
    for (const r of [eu, us]) { r.pgLink.heal(); r.redisLink.heal() }

    const expected = expectedItems(all, 'acme/split', 20)
    await waitFor(() => all.every(e => items(e.handle.doc).length === expected.length), {
      timeoutMs: 15_000, message: () => `converged within 15 s of the heal: ${all.map(e => items(e.handle.doc).length).join(',')} of ${expected.length}`,
    })
    await waitFor(async () => (await storedItems(dbs.eu, 'acme/split')).length === expected.length && (await storedItems(dbs.us, 'acme/split')).length === expected.length,
      { timeoutMs: 15_000, message: 'both databases complete within 15 s of the heal' })
    const convergedMs = Date.now() - healedAt
    for (const e of all) expect(sorted(items(e.handle.doc))).toEqual(expected)
    expect(await storedItems(dbs.eu, 'acme/split')).toEqual(expected)
    expect(await storedItems(dbs.us, 'acme/split')).toEqual(expected)
    await waitFor(async () => (await metric(euNodes[0]!, 'concord_region_replication_queue', 'us')) === 0, { message: 'the outbox drained' })
    // after the heal both eu nodes report the same link: the one of the node that ships to us (from its heartbeat)
    const euIds = await Promise.all(euNodes.map(async n => (await adminStats(n)).node))
    let shown: RegionsView[] = []
    await waitFor(async () => {
      shown = (await Promise.all(euNodes.map(adminStats))).map(v => v.regions!)
      return shown.every(r => r.name === 'eu' && r.peers.length === 1 && r.peers[0]!.peer === 'us' && r.peers[0]!.queued === 0 && r.peers[0]!.linkUp === true &&
        euIds.includes(r.peers[0]!.shippingNode ?? '') && r.peers[0]!.shippingNode === shown[0]!.peers[0]!.shippingNode)
    }, { timeoutMs: 15_000, intervalMs: 200, message: () => `both eu nodes to show the link to us up, from the node that ships (${JSON.stringify(shown)})` })
    console.log(`partition: lag ${lagDuring.toFixed(1)} s while partitioned; everything in both regions ${convergedMs} ms after the link returned`)
  }, 120_000)

  it('the node that ships dies: another node of its region takes the lease over and nothing is lost', async () => {
    const { dbs, euNodes, usNodes } = await cluster()
    await waitFor(async () => (await Promise.all(euNodes.map(readyz))).some(r => r.peers?.[0]?.shipping === true), { message: 'a node of eu ships to us' })
    const shipperIndex = (await Promise.all(euNodes.map(readyz))).findIndex(r => r.peers?.[0]?.shipping === true)
    const shipper = euNodes[shipperIndex]!
    const survivor = euNodes[1 - shipperIndex]!
    // the writer is on the node that survives; the shipper dies while it writes
    const writer = connectClient(survivor.url, { token: await writerToken('writer') })
    const reader = connectClient(usNodes[0]!.url, { token: await writerToken('reader') })
    clients.push(writer, reader)
    const [w, r] = [writer.open('acme/takeover'), reader.open('acme/takeover')]
    await Promise.all([w.whenSynced(), r.whenSynced()])
    for (let i = 0; i < 5; i++) w.doc.getArray<string>('items').push([`before:${i}`])
    await waitFor(() => items(r.doc).length === 5, { message: 'replicated before the kill' })
    const killedAt = Date.now()
    shipper.child.kill('SIGKILL')
    await shipper.exited
    for (let i = 0; i < 5; i++) w.doc.getArray<string>('items').push([`after:${i}`])
    await waitFor(() => items(r.doc).length === 10, { timeoutMs: 20_000, message: 'the edits made after the kill reach us once the lease moved' })
    const tookOverMs = Date.now() - killedAt
    expect((await readyz(survivor)).peers?.[0]?.shipping).toBe(true)
    await waitFor(async () => (await storedItems(dbs.us, 'acme/takeover')).length === 10, { message: 'us has every edit' })
    console.log(`regions: the shipping node was killed; its region shipped again ${tookOverMs} ms later (lease 5 s)`)
  }, 60_000)

  it('a revocation made in one region cuts the user off in the other', async () => {
    const { euNodes, usNodes } = await cluster()
    const mallory = connectClient(usNodes[1]!.url, { token: await writerToken('mallory') })
    clients.push(mallory)
    const h = mallory.open('acme/plan')
    await h.whenSynced()
    const errors: { code: string; at: number }[] = []
    h.on('error', e => errors.push({ code: e.code, at: Date.now() }))
    const revokedAt = Date.now()
    const res = await fetch(`http://127.0.0.1:${euNodes[0]!.port}/admin/revoke`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'acme', user: 'mallory' }),
    })
    expect(res.status).toBe(200)
    await waitFor(() => errors.some(e => e.code === 'CONCORD_ERR_AUTH_REVOKED'), { timeoutMs: 10_000, message: 'the revocation made in eu to cut mallory off in us' })
    const cutOffMs = errors.find(e => e.code === 'CONCORD_ERR_AUTH_REVOKED')!.at - revokedAt
    // and us refuses mallory from now on, on every node
    const again = connectClient(usNodes[0]!.url, { token: await writerToken('mallory') })
    clients.push(again)
    const refused = new Promise<string>(resolve => again.open('acme/plan').on('error', e => resolve(e.code)))
    expect(await refused).toBe('CONCORD_ERR_AUTH_REVOKED')
    console.log(`regions: a revocation in eu cut the user off in us ${cutOffMs} ms after the admin call (link ${LINK_LATENCY_MS} ms each way)`)
  }, 60_000)

  it('losing a whole region: its clients fail over with nothing replicated lost, and when it returns what it had acked but not shipped flows out', async () => {
    const { dbs, euNodes, usNodes } = await cluster()
    const doc = 'acme/failover'
    // a client of eu that knows both regions and wants to know when its work is in two of them
    const traveller = connectClient(euNodes[0]!.url, { urls: [euNodes[0]!.url, usNodes[0]!.url], token: await writerToken('traveller'), replicatedRegions: 2 })
    // a client of eu that disappears with the region (its work is only in eu's database then)
    const local = connectClient(euNodes[1]!.url, { token: await writerToken('local') })
    const stay = connectClient(usNodes[1]!.url, { token: await writerToken('stay') })
    clients.push(traveller, local, stay)
    const [t, l, u] = [traveller.open(doc), local.open(doc), stay.open(doc)]
    await Promise.all([t.whenSynced(), l.whenSynced(), u.whenSynced()])
    const push = (h: DocHandle, tag: string, n: number): string[] => {
      const list = Array.from({ length: n }, (_, i) => `${tag}:${i}`)
      for (const item of list) h.doc.getArray<string>('items').push([item])
      return list
    }
    expect(t.replicated).toBe(true)

    // batch A: saved, then reported replicated (durable in both regions)
    const a = push(t, 'A', 10)
    expect(t.replicated).toBe(false)
    await t.whenReplicated()
    expect(t.unreplicatedCount).toBe(0)
    expect(await storedItems(dbs.us, doc)).toEqual(expect.arrayContaining(a))

    // the link goes down: eu keeps acking (saved) what it cannot ship
    for (const r of [eu, us]) { r.pgLink.partition(); r.redisLink.partition() }
    const b = push(t, 'B', 10)
    const lost = push(l, 'L', 10)
    const c = push(u, 'C', 10)
    await waitFor(() => t.pendingCount === 0 && l.pendingCount === 0 && u.pendingCount === 0, { timeoutMs: 20_000, message: 'every edit saved in its own region' })
    expect(t.replicated).toBe(false)
    expect(t.unreplicatedCount).toBeGreaterThan(0)
    local.close()

    // eu dies: its nodes are killed, its database stops; the link comes back (to nobody in eu)
    const killedAt = Date.now()
    for (const n of euNodes) n.child.kill('SIGKILL')
    await Promise.all(euNodes.map(n => n.exited))
    eu.postgres.stopServer()
    for (const r of [eu, us]) { r.pgLink.heal(); r.redisLink.heal() }

    // the traveller moves to us and sends again what us lacks of its own (batch B); batch A was
    // there already. It holds the vanished client's batch too (they shared eu), but that is its
    // writer's to send: it reaches us when eu returns
    await waitFor(() => traveller.url === usNodes[0]!.url && t.synced && items(t.doc).length === 40, { timeoutMs: 30_000, message: () => `the traveller failed over to us: ${traveller.url}, ${items(t.doc).length} items` })
    const failedOverMs = Date.now() - killedAt
    await waitFor(async () => (await storedItems(dbs.us, doc)).length === 30, { timeoutMs: 20_000, message: 'us holds A, B and C' })
    expect(await storedItems(dbs.us, doc)).toEqual(sorted([...a, ...b, ...c]))
    expect(sorted(items(u.doc))).toEqual(sorted([...a, ...b, ...c]))
    // durable in one region only (eu is gone): not replicated yet
    expect(t.replicated).toBe(false)

    // eu returns: its outbox ships what it had acked but not shipped (the vanished client's batch),
    // and us ships what eu missed
    eu.postgres.start()
    const [e1, e2] = await Promise.all([node(eu, us, dbs), node(eu, us, dbs)])
    const everything = sorted([...a, ...b, ...c, ...lost])
    const returnedAt = Date.now()
    await waitFor(async () => (await storedItems(dbs.us, doc)).length === 40 && (await storedItems(dbs.eu, doc)).length === 40,
      { timeoutMs: 30_000, message: 'both databases hold everything once eu is back' })
    expect(await storedItems(dbs.us, doc)).toEqual(everything)
    expect(await storedItems(dbs.eu, doc)).toEqual(everything)
    await waitFor(() => items(t.doc).length === 40 && items(u.doc).length === 40, { timeoutMs: 20_000, message: 'the clients have everything' })
    expect(sorted(items(t.doc))).toEqual(everything)
    expect(sorted(items(u.doc))).toEqual(everything)
    // and the traveller's work is now durable in both regions
    await t.whenReplicated()
    const back = connectClient(e1!.url, { token: await writerToken('back') })
    clients.push(back)
    const h = back.open(doc)
    await h.whenSynced()
    expect(sorted(items(h.doc))).toEqual(everything)
    void e2
    console.log(`region loss: the traveller failed over in ${failedOverMs} ms; after eu returned, both regions held everything in ${Date.now() - returnedAt} ms`)
  }, 180_000)

  it('a document deleted in one region is deleted in the other: its sessions there are told, its rows are gone, and it starts empty', async () => {
    const { dbs, euNodes, usNodes } = await cluster()
    const doc = 'acme/doomed'
    const [a, b] = await Promise.all([
      (async () => connectClient(euNodes[0]!.url, { token: await writerToken('a') }))(),
      (async () => connectClient(usNodes[0]!.url, { token: await writerToken('b') }))(),
    ])
    clients.push(a, b)
    const [ha, hb] = [a.open(doc), b.open(doc)]
    await Promise.all([ha.whenSynced(), hb.whenSynced()])
    const errors: string[] = []
    hb.on('error', e => errors.push(e.code))
    ha.doc.getArray<string>('items').push(['from eu'])
    hb.doc.getArray<string>('items').push(['from us'])
    await waitFor(async () => (await storedItems(dbs.us, doc)).length === 2 && (await storedItems(dbs.eu, doc)).length === 2, { message: 'both regions hold the document' })
    const res = await fetch(`http://127.0.0.1:${euNodes[1]!.port}/admin/documents/${encodeURIComponent(doc)}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })
    expect(res.status).toBeLessThan(300)
    await waitFor(() => errors.includes('CONCORD_ERR_DOC_DELETED'), { timeoutMs: 15_000, message: 'the session in us told of the deletion made in eu' })
    const rows = async (url: string): Promise<number> => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        return (await c.query<{ n: number }>('SELECT (SELECT COUNT(*) FROM concord_updates WHERE doc = $1)::int + (SELECT COUNT(*) FROM concord_snapshots WHERE doc = $1)::int AS n', [doc])).rows[0]!.n
      } finally {
        await c.end()
      }
    }
    await waitFor(async () => (await rows(dbs.us)) === 0 && (await rows(dbs.eu)) === 0, { message: 'no row of the document left in either region' })
    // opened again in us, it is empty
    const c = connectClient(usNodes[1]!.url, { token: await writerToken('c') })
    clients.push(c)
    const hc = c.open(doc)
    await hc.whenSynced()
    expect(items(hc.doc)).toEqual([])
  }, 60_000)

  it('one edit is one trace: its OpenTelemetry context travels with it to the other nodes of its region and to the other region', async () => {
    // a minimal OTLP/HTTP (JSON) collector
    const spans: { name: string; traceId: string; spanId: string; parentSpanId: string; node: string; document: unknown }[] = []
    const collector = createHttpServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', c => chunks.push(c as Buffer))
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: { name: string; traceId: string; spanId: string; parentSpanId?: string; attributes?: { key: string; value: Record<string, unknown> }[] }[] }[] }[] }
          for (const rs of body.resourceSpans) {
            const node = rs.resource.attributes.find(a => a.key === 'service.instance.id')?.value.stringValue ?? ''
            for (const ss of rs.scopeSpans) {
              for (const sp of ss.spans) {
                spans.push({ name: sp.name, traceId: sp.traceId, spanId: sp.spanId, parentSpanId: sp.parentSpanId ?? '', node, document: (sp.attributes ?? []).find(a => a.key === 'concord.document')?.value.stringValue })
              }
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{}')
      })
    })
    await new Promise<void>(resolve => collector.listen(0, '127.0.0.1', () => resolve()))
    try {
      const otel = ['--otel', `http://127.0.0.1:${(collector.address() as AddressInfo).port}`]
      process.env.OTEL_BSP_SCHEDULE_DELAY = '100'
      const dbs = await databases()
      const [e1, e2, u1] = await Promise.all([node(eu, us, dbs, otel), node(eu, us, dbs, otel), node(us, eu, dbs, otel)])
      delete process.env.OTEL_BSP_SCHEDULE_DELAY
      const doc = 'acme/traced'
      const [writer, sameRegion, otherRegion] = await Promise.all(['w', 'r1', 'r2'].map(async u => connectClient([e1, e2, u1][['w', 'r1', 'r2'].indexOf(u)]!.url, { token: await writerToken(u) })))
      clients.push(writer!, sameRegion!, otherRegion!)
      const [w, r1, r2] = [writer!.open(doc), sameRegion!.open(doc), otherRegion!.open(doc)]
      await Promise.all([w.whenSynced(), r1.whenSynced(), r2.whenSynced()])
      w.doc.getText('t').insert(0, 'traced edit')
      await waitFor(() => r1.doc.getText('t').toString() === 'traced edit' && r2.doc.getText('t').toString() === 'traced edit', { timeoutMs: 20_000, message: 'the edit everywhere' })
      const nodeIds = await Promise.all([e1!, e2!, u1!].map(async p => ((await readyz(p)) as { node?: string }).node ?? ''))
      const applyOf = (): typeof spans[number] | undefined => spans.find(sp => sp.name === 'concord.update.apply' && sp.document === doc)
      const inTrace = (name: string, nodeId: string): typeof spans[number] | undefined => {
        const apply = applyOf()
        return apply === undefined ? undefined : spans.find(sp => sp.traceId === apply.traceId && sp.name === name && sp.node === nodeId)
      }
      await waitFor(() => inTrace('concord.storage.append', nodeIds[0]!) !== undefined && inTrace('concord.update.remote', nodeIds[1]!) !== undefined &&
        inTrace('concord.update.remote', nodeIds[2]!) !== undefined, {
        timeoutMs: 15_000, message: () => `the edit's spans on its node, the other node of eu and the node of us (so far: ${spans.map(sp => `${sp.name}@${sp.node.slice(0, 4)}`).join(', ')})`,
      })
      const apply = applyOf()!
      expect(apply.node).toBe(nodeIds[0])
      // the append continues the apply span; the other node of eu and the node of us continue the same trace
      expect(inTrace('concord.storage.append', nodeIds[0]!)!.parentSpanId).toBe(apply.spanId)
      expect(inTrace('concord.update.remote', nodeIds[1]!)!.parentSpanId).toBe(apply.spanId)
      expect(inTrace('concord.update.remote', nodeIds[2]!)!.parentSpanId).toBe(apply.spanId)
      const nodesOfRemotes = new Set(spans.filter(sp => sp.traceId === apply.traceId && sp.name === 'concord.update.remote').map(sp => sp.node))
      console.log(`trace ${apply!.traceId}: apply and append on the writer's node, remote applies on ${nodesOfRemotes.size} other nodes (both regions)`)
    } finally {
      collector.close()
    }
  }, 90_000)
})
