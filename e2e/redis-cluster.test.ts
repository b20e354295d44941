import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import type { DocHandle } from '@concord/client'
import { mintToken, type BackplaneHandlers } from '@concord/server'
import { createRedisBackplane, type RedisBackplane } from '@concord/server/backplane/redis'
import { connectClient, seededRandom, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { createDatabase, startPostgres, storedDocument, type PostgresServer } from './services/postgres.js'
import { startRedis, startRedisCluster, type RedisClusterNode, type RedisClusterServer } from './services/redis.js'
import { CLUSTER_LAYOUT } from '../packages/server/src/backplane/doc-streams.js'
import { keySlot } from '../packages/server/src/backplane/redis-url.js'

// Concord processes on one real PostgreSQL and a real Redis Cluster (three masters, one replica
// each, `--redis redis+cluster://…`): a document's stream and shard channel live on the master of
// its slot, so the documents spread over the masters, and a master's failure touches only its own.

const SECRET = 'redis-cluster-test-secret-0123456789-abcdef'
const ADMIN = 'redis-cluster-admin-token-0123456789'
const SEED = Number(process.env.CONCORD_TEST_SEED ?? Date.now() % 1_000_000)
console.log(`redis-cluster.test.ts: seed ${SEED} (CONCORD_TEST_SEED=${SEED} reproduces the document names and the typing order)`)
const random = seededRandom(SEED)

let postgres: PostgresServer
let cluster: RedisClusterServer
beforeAll(async () => {
  ;[postgres, cluster] = await Promise.all([startPostgres(), startRedisCluster({ masters: 3, replicasPerMaster: 1 })])
}, 120_000)
afterAll(async () => {
  postgres?.stop()
  await cluster?.stop()
})

const { procs, clients, dirs } = cleanupAfterEach()

async function node(store: string): Promise<ServerProcess> {
  const data = mkdtempSync(join(tmpdir(), 'concord-redis-cluster-'))
  dirs.push(data)
  const proc = await spawnServer(['--store', store, '--redis', cluster.url, '--data', data, '--port', '0', '--auth-secret', SECRET, '--admin-token', ADMIN,
    '--compact-every-updates', '50', '--rate-limit-messages', '1000000'])
  procs.push(proc)
  return proc
}

const http = (p: ServerProcess): string => p.url.replace('ws:', 'http:')

/** Revoke an acme user through `node`'s admin API; the response's status. */
const revokeThrough = async (node: ServerProcess, user: string): Promise<number> => (await fetch(`${http(node)}/admin/revoke`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
  body: JSON.stringify({ tenant: 'acme', user }),
})).status

async function token(userId: string): Promise<string> {
  return (await mintToken({ secret: SECRET, tenant: 'acme', userId, docs: { 'acme/*': 'write' } })).token
}

async function open(at: ServerProcess, userId: string, document: string): Promise<DocHandle> {
  const t = await token(userId)
  const client = connectClient(at.url, { getToken: async () => t })
  clients.push(client)
  const h = client.open(document)
  await h.whenSynced()
  return h
}

/** `perMaster` document names (random, from the seed) for each master, keyed by the master's port. */
async function documentsByMaster(prefix: string, perMaster: number): Promise<Map<RedisClusterNode, string[]>> {
  const masters = await cluster.masters()
  const out = new Map<RedisClusterNode, string[]>(masters.map(m => [m.node, []]))
  while ([...out.values()].some(list => list.length < perMaster)) {
    const name = `acme/${prefix}-${Math.floor(random() * 1e9).toString(36)}`
    const slot = keySlot(CLUSTER_LAYOUT.stream(name))
    const master = masters.find(m => m.slots.some(([a, b]) => slot >= a && slot <= b))!
    const list = out.get(master.node)!
    if (list.length < perMaster) list.push(name)
  }
  return out
}

const itemsOf = (d: Y.Doc, key = 'items'): string[] => [...d.getArray<string>(key).toArray()]

describe('a cluster of nodes on a Redis Cluster', () => {
  it('clients on three nodes edit documents on every master and converge; each document\'s keys and shard channel are on its own master', async () => {
    const store = await createDatabase(postgres, 'rcluster')
    const nodes = await Promise.all([node(store), node(store), node(store)])
    const byMaster = await documentsByMaster('spread', 3)
    const docs = [...byMaster.values()].flat()
    // two writers per document, on different nodes
    const writers: { doc: string; who: string; h: DocHandle }[] = []
    for (const [i, doc] of docs.entries()) {
      for (const k of [0, 1]) {
        const who = `u${i}-${k}`
        writers.push({ doc, who, h: await open(nodes[(i + k) % 3]!, who, doc) })
      }
    }
    const EDITS = 30
    await Promise.all(writers.map(async ({ h, who }) => {
      for (let n = 0; n < EDITS; n++) {
        h.doc.getArray<string>('items').push([`${who}-${n}`])
        // pacing the load, not synchronisation
        if (n % 5 === 4) await new Promise(r => setTimeout(r, 5))
      }
    }))
    const expected = (doc: string): string[] => writers.filter(w => w.doc === doc).flatMap(w => Array.from({ length: EDITS }, (_, n) => `${w.who}-${n}`)).sort()
    await waitFor(() => writers.every(w => w.h.doc.getArray('items').length === 2 * EDITS && w.h.pendingCount === 0), {
      timeoutMs: 20_000,
      message: () => `every client has all ${2 * EDITS} items of its document, acked: ${writers.map(w => `${w.h.doc.getArray('items').length}/${w.h.pendingCount}`).join(',')}`,
    })
    for (const w of writers) expect(itemsOf(w.h.doc).sort()).toEqual(expected(w.doc))
    for (const doc of docs) expect(itemsOf(await storedDocument(store, doc)).sort()).toEqual(expected(doc))

    // each document's stream is on the master of its slot, and its shard channel has a subscriber
    // there per node holding it; no plain channel is used
    const keysPerMaster: number[] = []
    for (const [master, names] of byMaster) {
      const r = cluster.connect(master)
      try {
        for (const doc of names) {
          const stream = CLUSTER_LAYOUT.stream(doc)
          expect(Number(await r.cluster('KEYSLOT', stream))).toBe(keySlot(stream))
          expect(await r.exists(stream)).toBe(1)
          expect(await r.call('PUBSUB', 'SHARDNUMSUB', CLUSTER_LAYOUT.channel(doc))).toEqual([CLUSTER_LAYOUT.channel(doc), 2])
        }
        expect(await r.call('PUBSUB', 'CHANNELS')).toEqual([])
        keysPerMaster.push(await r.dbsize())
      } finally {
        r.disconnect()
      }
    }
    console.log(`redis cluster: ${docs.length} documents, keys per master ${keysPerMaster.join(' / ')}`)
    expect(keysPerMaster.filter(n => n > 0).length).toBe(3)

    // the node directory works on the cluster: every node lists all three, and asks them for their sessions
    const admin = async <T>(path: string): Promise<T> => await (await fetch(`${http(nodes[0]!)}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })).json() as T
    expect((await admin<{ totals: { nodes: number } }>('/admin/stats')).totals.nodes).toBe(3)
    const sessions = await admin<{ sessions: unknown[]; missingNodes: string[] }>('/admin/sessions')
    expect(sessions.missingNodes).toEqual([])
    expect(sessions.sessions).toHaveLength(writers.length)
  })

  it('presence crosses nodes, and a user revoked through node B\'s admin API is cut off on node A', async () => {
    const store = await createDatabase(postgres, 'rcluster')
    const [a, b] = await Promise.all([node(store), node(store)])
    const doc = [...(await documentsByMaster('presence', 1)).values()][0]![0]!
    const ha = await open(a, 'ada', doc)
    const hb = await open(b, 'bob', doc)
    const namesAtB = (): string[] => [...hb.awareness.getStates().values()].map(s => (s as { user?: { name?: string } }).user?.name).filter((x): x is string => x !== undefined)
    const t0 = Date.now()
    ha.awareness.setLocalStateField('user', { name: 'ada', cursor: 3 })
    await waitFor(() => namesAtB().includes('ada'), { message: 'ada\'s presence on node B' })
    console.log(`redis cluster: presence shown on node B ${Date.now() - t0} ms after it was set on node A`)

    const errors: string[] = []
    ha.on('error', e => errors.push(e.code))
    const revokedAt = Date.now()
    expect(await revokeThrough(b, 'ada')).toBe(200)
    await waitFor(() => errors.includes('CONCORD_ERR_AUTH_REVOKED'), { message: 'ada cut off on node A' })
    console.log(`redis cluster: revocation cut ada off on node A ${Date.now() - revokedAt} ms after node B's admin call`)
    await waitFor(() => !namesAtB().includes('ada'), { message: 'ada\'s presence gone on node B' })
  })

  it('a master killed while clients type: its replica takes over, and every update reaches every client once, in order, and PostgreSQL', async () => {
    const store = await createDatabase(postgres, 'rcluster')
    const [a, b] = await Promise.all([node(store), node(store)])
    const byMaster = await documentsByMaster('failover', 2)
    // the master of the control stream (revocations, kicks): it fails over with the documents
    const victim = await cluster.masterOf(keySlot(CLUSTER_LAYOUT.control))
    // the victim's documents, and one on another master, which must carry on as well
    const docs = [...byMaster.get(victim)!, [...byMaster].find(([m]) => m !== victim)![1][0]!]
    // on each document a writer on each node; each writer appends to an array of its own, so that
    // every client can check each writer's sequence: all of it, once each, in the order typed
    const writers: { doc: string; who: string; h: DocHandle; acked: number; typed: number }[] = []
    for (const [i, doc] of docs.entries()) {
      for (const [k, at] of [a, b].entries()) {
        const w = { doc, who: `w${i}${'ab'[k]}`, h: await open(at, `writer-${i}-${k}`, doc), acked: 0, typed: 0 }
        w.h.on('ack', seqs => { w.acked += seqs.length })
        writers.push(w)
      }
    }
    const readers = writers
    // every writer types before the kill, through the failover, and 40 more updates once the replica took over
    let healthy = false
    let stop = false
    const typing = Promise.all(writers.map(async w => {
      let after = 0
      while (!stop && (!healthy || after < 40)) {
        w.h.doc.getArray<string>(w.who).push([`${w.who}-${w.typed++}`])
        if (healthy) after++
        // typing pace, random per writer (from the seed), so the kill lands mid-stream; not synchronisation
        await new Promise(r => setTimeout(r, 2 + Math.floor(random() * 6)))
      }
    }))
    const typedBefore = await waitFor(() => writers.every(w => w.acked >= 30) && writers.reduce((n, w) => n + w.typed, 0), { timeoutMs: 20_000, message: '30 acks from every writer' })
    const killedAt = Date.now()
    await cluster.kill(victim)
    // /readyz of both nodes while the master is away: one master's failover must not make every node unready
    const readiness: number[] = []
    const sampling = (async () => {
      while (!healthy) {
        for (const p of [a, b]) readiness.push((await fetch(`${http(p)}/readyz`)).status)
        // sampling pace, not synchronisation
        await new Promise(r => setTimeout(r, 100))
      }
    })()
    try {
      await cluster.waitHealthy({ timeoutMs: 30_000 })
    } finally {
      healthy = true
      // (a failed wait stops the typing too)
      setTimeout(() => { stop = true }, 30_000).unref()
    }
    const promoted = await cluster.masterOf(keySlot(CLUSTER_LAYOUT.stream(docs[0]!)))
    expect(promoted.port).not.toBe(victim.port)
    const typedAtFailover = writers.reduce((n, w) => n + w.typed, 0)
    console.log(`redis cluster failover: master ${victim.port} killed after ${typedBefore} updates typed; replica ${promoted.port} served its slots ${Date.now() - killedAt} ms later, ${typedAtFailover - typedBefore} updates typed meanwhile`)
    await typing
    stop = true
    await sampling
    expect(readiness.length).toBeGreaterThan(0)
    expect(readiness.filter(status => status !== 200)).toEqual([])

    const expectedOf = (who: string): string[] => Array.from({ length: writers.find(w => w.who === who)!.typed }, (_, n) => `${who}-${n}`)
    const complete = (h: DocHandle, doc: string): boolean => writers.filter(w => w.doc === doc).every(w => h.doc.getArray(w.who).length >= w.typed)
    await waitFor(() => readers.every(r => complete(r.h, r.doc) && r.h.pendingCount === 0), {
      timeoutMs: 30_000,
      message: () => `every client has every writer's updates (${writers.map(w => w.typed).join('+')}), acked: ${readers.map(r => writers.filter(w => w.doc === r.doc).map(w => r.h.doc.getArray(w.who).length).join('+') + `/${r.h.pendingCount}`).join(', ')}`,
    })
    console.log(`redis cluster failover: every client converged ${Date.now() - killedAt} ms after the kill`)
    for (const r of readers) {
      for (const w of writers.filter(x => x.doc === r.doc)) expect(itemsOf(r.h.doc, w.who), `${w.who} at ${r.who}`).toEqual(expectedOf(w.who))
    }
    for (const doc of docs) {
      const stored = await storedDocument(store, doc)
      for (const w of writers.filter(x => x.doc === doc)) expect(itemsOf(stored, w.who), `${w.who} in PostgreSQL`).toEqual(expectedOf(w.who))
    }
    // what the nodes did: their documents on the dead master moved to the promoted replica, where
    // they caught up from the streams and resynced from PostgreSQL
    for (const [name, proc] of [['A', a], ['B', b]] as const) {
      const said = (msg: string): number => proc.logs.filter(line => line.includes(`"msg":"${msg}`)).length
      console.log(`redis cluster failover: node ${name} logged ${said('backplane: documents moved to another cluster master')} moves, ${said('backplane: redis is back')} resyncs, ${said('backplane publish failed')} failed publications, ${said('backplane: entries could not be published')} resync markers for them`)
      expect(said('backplane: documents moved to another cluster master')).toBeGreaterThan(0)
    }
        // and the documents live on: an edit after the failover crosses nodes through the promoted master
    const [first, second] = writers
    first!.h.doc.getArray<string>('after').push(['hello'])
    await waitFor(() => second!.h.doc.getArray('after').length === 1, { message: 'an edit after the failover relayed' })
    const r = cluster.connect(promoted)
    try {
      expect(await r.call('PUBSUB', 'SHARDNUMSUB', CLUSTER_LAYOUT.channel(docs[0]!))).toEqual([CLUSTER_LAYOUT.channel(docs[0]!), 2])
    } finally {
      r.disconnect()
    }
    // and the control stream, which failed over too: a revocation through node B cuts the writer off on node A
    const errors: string[] = []
    first!.h.on('error', e => errors.push(e.code))
    expect(await revokeThrough(b, 'writer-0-0')).toBe(200)
    await waitFor(() => errors.includes('CONCORD_ERR_AUTH_REVOKED'), { message: 'the writer on node A cut off after the failover' })
    // the node directory (on whichever master serves its slot now) lists both nodes and gets their answers
    await waitFor(async () => {
      const res = await fetch(`${http(a)}/admin/sessions`, { headers: { authorization: `Bearer ${ADMIN}` } })
      const view = await res.json() as { nodes: string[]; missingNodes: string[] }
      return res.status === 200 && view.nodes.length === 2 && view.missingNodes.length === 0
    }, { message: 'node A\'s /admin/sessions covering both nodes after the failover' })
    // (its waits are bounded one by one; together they may pass the default 60 s on a loaded machine)
  }, 150_000)

  it('a master restarted empty (no persistence): a node hears the entries after it once each, in order, and resyncs for what was lost', async () => {
    const a = createRedisBackplane({ url: cluster.url, blockMs: 50 }) as RedisBackplane
    const b = createRedisBackplane({ url: cluster.url, blockMs: 50 }) as RedisBackplane
    try {
      const doc = `acme/restart-${Math.floor(random() * 1e9).toString(36)}`
      const got: string[] = []
      let resyncs = 0
      const handlers: BackplaneHandlers = { update: u => { got.push(Buffer.from(u).toString()) }, resync: () => { resyncs++ }, presence: () => undefined }
      b.subscribe(doc, await b.position(doc), handlers)
      const master = await cluster.masterOf(keySlot(CLUSTER_LAYOUT.stream(doc)))
      const subscribed = async (): Promise<boolean> => {
        const r = cluster.connect(await cluster.masterOf(keySlot(CLUSTER_LAYOUT.stream(doc))))
        try {
          return (await r.call('PUBSUB', 'SHARDNUMSUB', CLUSTER_LAYOUT.channel(doc)) as [string, number])[1] === 1
        } finally {
          r.disconnect()
        }
      }
      await waitFor(subscribed, { message: 'node B subscribed to the document\'s shard channel' })
      const sent: string[] = []
      for (let i = 0; i < 100; i++) a.publishUpdate(doc, new Uint8Array(Buffer.from(sent[sent.length] = `before-${i}`)))
      await waitFor(() => got.length === 100, { message: () => `the first 100 entries at node B: ${got.length}` })
      await cluster.kill(master)
      await cluster.restart(master)
      await cluster.waitHealthy()
      await waitFor(async () => resyncs > 0 && await subscribed(), { timeoutMs: 20_000, message: 'node B resubscribed after the restart, and resynced' })
      for (let i = 0; i < 100; i++) a.publishUpdate(doc, new Uint8Array(Buffer.from(sent[sent.length] = `after-${i}`)))
      await waitFor(() => got.filter(x => x.startsWith('after-')).length === 100, { timeoutMs: 20_000, message: () => `the last 100 entries at node B: ${got.length}` })
      expect(got).toEqual(sent)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a node\'s shard subscription cut (the master stays up) while another node writes: every entry arrives once, in order', async () => {
    const a = createRedisBackplane({ url: cluster.url, blockMs: 50 }) as RedisBackplane
    const b = createRedisBackplane({ url: cluster.url, blockMs: 50 }) as RedisBackplane
    try {
      const doc = `acme/cut-${Math.floor(random() * 1e9).toString(36)}`
      const got: string[] = []
      b.subscribe(doc, await b.position(doc), { update: u => { got.push(Buffer.from(u).toString()) }, resync: () => undefined, presence: () => undefined })
      const master = cluster.connect(await cluster.masterOf(keySlot(CLUSTER_LAYOUT.stream(doc))))
      try {
        const subscribed = async (): Promise<boolean> => (await master.call('PUBSUB', 'SHARDNUMSUB', CLUSTER_LAYOUT.channel(doc)) as [string, number])[1] === 1
        await waitFor(subscribed, { message: 'node B subscribed' })
        const sent: string[] = []
        let killed = 0
        for (let i = 0; i < 400; i++) {
          sent.push(`u${i}`)
          a.relayUpdate(doc, new Uint8Array(Buffer.from(`u${i}`)))
          if (i === 100 || i === 250) {
            // cut node B's subscriber connection to this master, the second time once it is back
            await waitFor(subscribed, { message: 'node B subscribed again' })
            for (const line of String(await master.client('LIST')).split('\n')) {
              const id = line.includes(`name=concord-sub-${b.nodeId}`) ? /\bid=(\d+)/.exec(line)?.[1] : undefined
              if (id !== undefined) killed += Number(await master.client('KILL', 'ID', id))
            }
          }
          if (i % 50 === 0) await new Promise(resolve => setImmediate(resolve))
        }
        expect(killed).toBe(2)
        await waitFor(() => got.length >= 400, { message: () => `400 entries at node B: ${got.length}` })
        expect(got).toEqual(sent)
      } finally {
        master.disconnect()
      }
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a region on the cluster and a region on one Redis replicate to each other (a peer region\'s Redis may be a cluster)', async () => {
    const single = await startRedis()
    try {
      const [euDb, usDb] = await Promise.all([createDatabase(postgres, 'rcluster_eu'), createDatabase(postgres, 'rcluster_us')])
      const regionNode = async (name: string, db: string, redis: string, peer: string): Promise<ServerProcess> => {
        const data = mkdtempSync(join(tmpdir(), 'concord-redis-cluster-region-'))
        dirs.push(data)
        const proc = await spawnServer(['--store', db, '--redis', redis, '--data', data, '--port', '0', '--auth-secret', SECRET, '--admin-token', ADMIN, '--region', name, '--peer-region', peer])
        procs.push(proc)
        return proc
      }
      // eu's nodes announce on us's cluster; us's on eu's Redis
      const [eu, us] = await Promise.all([
        regionNode('eu', euDb, cluster.url, `us=${usDb},${single.url}`),
        regionNode('us', usDb, single.url, `eu=${euDb},${cluster.url}`),
      ])
      const docs = [...(await documentsByMaster('regions', 1)).values()].flat()
      const pairs = await Promise.all(docs.map(async (doc, i) => ({ doc, atEu: await open(eu, `eu-${i}`, doc), atUs: await open(us, `us-${i}`, doc) })))
      for (const p of pairs) {
        for (let n = 0; n < 10; n++) {
          p.atEu.doc.getArray<string>('items').push([`eu-${n}`])
          p.atUs.doc.getArray<string>('items').push([`us-${n}`])
        }
      }
      await waitFor(() => pairs.every(p => p.atEu.doc.getArray('items').length === 20 && p.atUs.doc.getArray('items').length === 20), {
        timeoutMs: 30_000, message: () => `both regions' clients have all 20 items: ${pairs.map(p => `${p.atEu.doc.getArray('items').length}/${p.atUs.doc.getArray('items').length}`).join(', ')}`,
      })
      for (const p of pairs) expect(itemsOf(p.atEu.doc).sort()).toEqual(itemsOf(p.atUs.doc).sort())
    } finally {
      await single.stop()
    }
  })
})
