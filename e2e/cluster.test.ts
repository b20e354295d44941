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

// Several Concord processes on one real PostgreSQL and one real Redis.
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

const database = (): Promise<string> => createDatabase(postgres, 'cluster')

async function node(store: string, extra: string[] = []): Promise<ServerProcess> {
  const data = mkdtempSync(join(tmpdir(), 'concord-cluster-'))
  dirs.push(data)
  const proc = await spawnServer(['--store', store, '--redis', redis.url, '--data', data, '--port', '0', '--compact-every-updates', '50', '--rate-limit-messages', '1000000', ...extra])
  procs.push(proc)
  return proc
}

const stored = storedDocument

const metricsOf = async (n: ServerProcess): Promise<string> => (await fetch(`${n.url.replace('ws:', 'http:')}/metrics`)).text()

const itemsOf = (d: Y.Doc): string[] => [...d.getArray<string>('items').toArray()].sort()

describe('a cluster: nodes on one PostgreSQL and one Redis', () => {
  it('30 clients spread over 3 nodes edit 10 documents: every client, and PostgreSQL, ends with every edit', async () => {
    const store = await database()
    const nodes = await Promise.all([node(store), node(store), node(store)])
    const DOCS = 10
    const EDITS = 20
    const handles: { doc: string; h: DocHandle; who: string }[] = []
    for (let c = 0; c < 30; c++) {
      const client = connectClient(nodes[c % 3]!.url)
      clients.push(client)
      const doc = `doc-${c % DOCS}`
      handles.push({ doc, h: client.open(doc), who: `c${c}` })
    }
    await Promise.all(handles.map(x => x.h.whenSynced()))
    // the nodes have been up for a few seconds (their clocks' origin), so that a delivery time
    // measured from the wrong origin would show below
    const startedAt = await Promise.all(nodes.map(async n => Number(/^process_start_time_seconds (\S+)/m.exec(await metricsOf(n))?.[1])))
    await waitFor(() => startedAt.every(s => Date.now() / 1000 - s > 3), { message: 'the nodes up for 3 s' })
    // everyone writes at once, in small bursts
    await Promise.all(handles.map(async ({ h, who }) => {
      for (let i = 0; i < EDITS; i++) {
        h.doc.getArray<string>('items').push([`${who}-${i}`])
        // pacing the load (bursts of five), not synchronisation
        if (i % 5 === 4) await new Promise(r => setTimeout(r, 5))
      }
    }))
    const expected = (doc: string): string[] => handles.filter(x => x.doc === doc).flatMap(x => Array.from({ length: EDITS }, (_, i) => `${x.who}-${i}`)).sort()
    await waitFor(() => handles.every(x => x.h.doc.getArray('items').length === 3 * EDITS), {
      timeoutMs: 15_000,
      message: () => `every client has all ${3 * EDITS} items of its document: ${handles.map(x => x.h.doc.getArray('items').length).join(',')}`,
    })
    for (const x of handles) expect(itemsOf(x.h.doc)).toEqual(expected(x.doc))
    await waitFor(() => handles.every(x => x.h.pendingCount === 0), { message: 'every edit acked' })
    for (let d = 0; d < DOCS; d++) expect(itemsOf(await stored(store, `doc-${d}`))).toEqual(expected(`doc-${d}`))
    // each node measured the delivery of every update it fanned out, two thirds of them relayed
    // from the other nodes, from its arrival on that node: milliseconds, not the process's age
    for (const n of nodes) {
      const text = await metricsOf(n)
      const count = Number(/^concord_update_delivery_seconds_count (\S+)/m.exec(text)?.[1])
      const sum = Number(/^concord_update_delivery_seconds_sum (\S+)/m.exec(text)?.[1])
      expect(count).toBeGreaterThan(0)
      expect(sum / count).toBeLessThan(1)
    }
  })

  it('a Redis restart loses nothing: the nodes resync from PostgreSQL and clients converge once Redis is back', async () => {
    const store = await database()
    const [a, b] = await Promise.all([node(store), node(store)])
    const ca = connectClient(a.url)
    const cb = connectClient(b.url)
    clients.push(ca, cb)
    const ha = ca.open('redis-restart')
    const hb = cb.open('redis-restart')
    await Promise.all([ha.whenSynced(), hb.whenSynced()])
    ha.doc.getArray<string>('items').push(['a-before'])
    await waitFor(() => hb.doc.getArray('items').length === 1, { message: 'relayed before the outage' })
    const ready = async (url: string): Promise<number> => (await fetch(`${url.replace('ws:', 'http:')}/readyz`)).status

    await redis.stopServer()
    await waitFor(async () => (await ready(a.url)) === 503, { message: '/readyz unready while Redis is down' })
    // both keep serving their own sessions; what they write is stored
    for (let i = 0; i < 10; i++) {
      ha.doc.getArray<string>('items').push([`a-${i}`])
      hb.doc.getArray<string>('items').push([`b-${i}`])
    }
    await waitFor(() => ha.pendingCount === 0 && hb.pendingCount === 0, { message: 'acked during the outage (PostgreSQL is up)' })
    expect(ha.doc.getArray('items').length).toBe(11)

    await redis.start()
    const back = Date.now()
    await waitFor(() => ha.doc.getArray('items').length === 21 && hb.doc.getArray('items').length === 21, {
      timeoutMs: 30_000,
      message: () => `converged after Redis returned: ${ha.doc.getArray('items').length} / ${hb.doc.getArray('items').length}`,
    })
    console.log(`redis restart: clients converged ${Date.now() - back} ms after Redis was back`)
    expect(itemsOf(ha.doc)).toEqual(itemsOf(hb.doc))
    await waitFor(async () => (await ready(a.url)) === 200, { message: '/readyz ready again' })
    // and the stream works again
    hb.doc.getArray<string>('items').push(['b-after'])
    await waitFor(() => ha.doc.getArray('items').length === 22, { message: 'relayed after the outage' })
    expect(itemsOf(await stored(store, 'redis-restart'))).toEqual(itemsOf(ha.doc))
  })

  it('a user connected to node A and revoked through node B\'s admin API is cut off, and stays refused on every node', async () => {
    const SECRET = 'a-cluster-test-secret-long-enough-0123456789'
    const ADMIN = 'cluster-admin-token-0123456789'
    const store = await database()
    const auth = ['--auth-secret', SECRET, '--admin-token', ADMIN]
    const [a, b] = await Promise.all([node(store, auth), node(store, auth)])
    const token = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'mallory', docs: { 'acme/*': 'write' } })).token
    const client = connectClient(a.url, { getToken: async () => token })
    clients.push(client)
    const h = client.open('acme/plan')
    await h.whenSynced()
    const errors: { code: string; at: number }[] = []
    h.on('error', e => errors.push({ code: e.code, at: Date.now() }))
    const revokedAt = Date.now()
    const res = await fetch(`${b.url.replace('ws:', 'http:')}/admin/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ tenant: 'acme', user: 'mallory' }),
    })
    expect(res.status).toBe(200)
    await waitFor(() => errors.some(e => e.code === 'CONCORD_ERR_AUTH_REVOKED'), { message: 'cut off on node A' })
    console.log(`cross-node revocation: cut off on node A ${errors.find(e => e.code === 'CONCORD_ERR_AUTH_REVOKED')!.at - revokedAt} ms after node B's admin call`)
    // a third node started afterwards refuses the user too: the revocation is in PostgreSQL
    const c = await node(store, auth)
    const late = connectClient(c.url, { getToken: async () => token })
    clients.push(late)
    const lh = late.open('acme/plan')
    const lateErrors: string[] = []
    lh.on('error', e => lateErrors.push(e.code))
    await waitFor(() => lateErrors.includes('CONCORD_ERR_AUTH_REVOKED'), { message: 'refused on a node started after the revocation' })
  })

  it('a node killed with SIGKILL mid-edit: its clients reconnect to the other nodes, every acked update is there, and everyone converges', async () => {
    const store = await database()
    const nodes = await Promise.all([node(store), node(store), node(store)])
    const urls = nodes.map(x => x.url)
    // each client prefers a different node and fails over to the others
    const writers = [0, 1, 2].map(i => {
      const client = connectClient(urls[i]!, { urls: [urls[i]!, ...urls.filter((_, k) => k !== i)], reconnect: { minDelayMs: 20, maxDelayMs: 200 } })
      clients.push(client)
      return { i, h: client.open('failover'), acked: new Set<string>(), sent: 0 }
    })
    await Promise.all(writers.map(w => w.h.whenSynced()))
    for (const w of writers) {
      w.h.on('ack', seqs => { for (const q of seqs) w.acked.add(`w${w.i}-${q - 1}`) })
    }
    const PER = 300
    const typing = Promise.all(writers.map(async w => {
      while (w.sent < PER) {
        w.h.doc.getArray<string>('items').push([`w${w.i}-${w.sent++}`])
        // typing pace, so the kill lands mid-stream; not synchronisation
        await new Promise(r => setTimeout(r, 3))
      }
    }))
    await waitFor(() => writers[0]!.acked.size >= 100, { message: '100 acks from the writer on node 0' })
    nodes[0]!.child.kill('SIGKILL')
    await nodes[0]!.exited
    const ackedAtKill = new Set(writers.flatMap(w => [...w.acked]))
    await typing
    const all = writers.flatMap(w => Array.from({ length: PER }, (_, k) => `w${w.i}-${k}`)).sort()
    await waitFor(() => writers.every(w => w.h.doc.getArray('items').length === all.length && w.h.pendingCount === 0), {
      timeoutMs: 20_000,
      message: () => `converged and acked: ${writers.map(w => `${w.h.doc.getArray('items').length}/${w.h.pendingCount}`).join(', ')}`,
    })
    for (const w of writers) expect(itemsOf(w.h.doc)).toEqual(all)
    const persisted = itemsOf(await stored(store, 'failover'))
    expect(persisted).toEqual(all)
    expect([...ackedAtKill].filter(x => !persisted.includes(x))).toEqual([])
    console.log(`node failure: ${ackedAtKill.size} updates acked when node 0 was killed; all ${all.length} present and converged`)
  })

  it('presence crosses nodes: a cursor set on node A shows on node B, and disappears there when its session ends', async () => {
    const store = await database()
    const [a, b] = await Promise.all([node(store), node(store)])
    const ca = connectClient(a.url)
    const cb = connectClient(b.url)
    clients.push(ca, cb)
    const ha = ca.open('presence')
    const hb = cb.open('presence')
    await Promise.all([ha.whenSynced(), hb.whenSynced()])
    const namesAtB = (): string[] => [...hb.awareness.getStates().values()].map(s => (s as { user?: { name?: string } }).user?.name).filter((x): x is string => x !== undefined)
    const t0 = Date.now()
    ha.awareness.setLocalStateField('user', { name: 'ada', cursor: 3 })
    await waitFor(() => namesAtB().includes('ada'), { message: 'ada\'s presence on node B' })
    console.log(`cross-node presence: shown on node B ${Date.now() - t0} ms after it was set on node A`)
    ha.awareness.setLocalStateField('user', { name: 'ada', cursor: 9 })
    await waitFor(() => [...hb.awareness.getStates().values()].some(s => (s as { user?: { cursor?: number } }).user?.cursor === 9), { message: 'the moved cursor on node B' })
    ca.close()
    await waitFor(() => !namesAtB().includes('ada'), { message: 'ada\'s presence removed on node B after her session ended' })
  })

  it('one node at a time compacts a document: a lease left by a node that died blocks compaction until it expires, then a live node compacts', async () => {
    const store = await database()
    const [a, b] = await Promise.all([node(store), node(store)])
    const db = new pg.Client({ connectionString: store })
    await db.connect()
    /** Compactions the nodes skipped because another node held the lease. */
    const skipped = async (): Promise<number> => {
      let n = 0
      for (const x of [a, b]) {
        const text = await (await fetch(`${x.url.replace('ws:', 'http:')}/metrics`)).text()
        n += Number(/^concord_compactions_total\{result="skipped"\} (\d+)/m.exec(text)?.[1] ?? 0)
      }
      return n
    }
    try {
      // a node that took the lease and died: nobody compacts this document until it expires (which
      // the test makes happen below, in the database's clock, rather than waiting for it)
      await db.query("INSERT INTO concord_leases (doc, holder, expires_at) VALUES ('leased', 'a-dead-node', clock_timestamp() + interval '1 hour')")
      const ca = connectClient(a.url)
      const cb = connectClient(b.url)
      clients.push(ca, cb)
      const ha = ca.open('leased')
      const hb = cb.open('leased')
      await Promise.all([ha.whenSynced(), hb.whenSynced()])
      const write = async (prefix: string, n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          ha.doc.getArray<string>('items').push([`${prefix}-a-${i}`])
          hb.doc.getArray<string>('items').push([`${prefix}-b-${i}`])
          // typing pace: many small updates, not one batch; not synchronisation
          await new Promise(r => setTimeout(r, 2))
        }
        await waitFor(() => ha.pendingCount === 0 && hb.pendingCount === 0, { message: 'every edit acked' })
      }
      const state = async (): Promise<{ snapshotSeq: number | null; tail: number; holder: string | null }> => {
        const snap = await db.query<{ seq: string }>("SELECT seq FROM concord_snapshots WHERE doc = 'leased'")
        const tail = await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM concord_updates WHERE doc = 'leased'")
        const lease = await db.query<{ holder: string }>("SELECT holder FROM concord_leases WHERE doc = 'leased'")
        return { snapshotSeq: snap.rows.length > 0 ? Number(snap.rows[0]!.seq) : null, tail: Number(tail.rows[0]!.n), holder: lease.rows[0]?.holder ?? null }
      }
      // 2 x 80 updates, past --compact-every-updates 50 on each node
      await write('held', 80)
      // the nodes tried to compact, and each attempt was turned away by the lease
      await waitFor(async () => (await skipped()) > 0, { message: 'a compaction skipped for the lease' })
      const held = await state()
      expect(held.snapshotSeq).toBe(null)
      expect(held.tail).toBeGreaterThanOrEqual(160)
      expect(held.holder).toBe('a-dead-node')

      // the dead node's lease runs out
      await db.query("UPDATE concord_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE doc = 'leased' AND holder = 'a-dead-node'")
      await write('expired', 80)
      await waitFor(async () => (await state()).snapshotSeq !== null, { timeoutMs: 30_000, message: 'a live node compacted after the lease expired' })
      await waitFor(async () => (await state()).holder === null, { message: 'the lease given back after the compaction' })
      const after = await state()
      expect(after.tail).toBeLessThan(held.tail)
      const expected = [...itemsOf(ha.doc)]
      expect(expected).toHaveLength(320)
      expect(itemsOf(await stored(store, 'leased'))).toEqual(expected)
    } finally {
      await db.end()
    }
  })

  it('a node that falls further behind than the stream keeps (stalled with SIGSTOP) notices the trimmed entries and reloads the document from PostgreSQL', async () => {
    const store = await database()
    const [a, b] = await Promise.all([node(store, ['--redis-stream-max-len', '20']), node(store, ['--redis-stream-max-len', '20'])])
    const ca = connectClient(a.url)
    const cb = connectClient(b.url)
    clients.push(ca, cb)
    const ha = ca.open('trimmed')
    const hb = cb.open('trimmed')
    await Promise.all([ha.whenSynced(), hb.whenSynced()])
    ha.doc.getArray<string>('items').push(['first'])
    await waitFor(() => hb.doc.getArray('items').length === 1, { message: 'relayed before the stall' })
    b.child.kill('SIGSTOP')
    try {
      // 400 updates, each its own stream entry, while node B reads nothing: Redis keeps only the
      // latest of them, so B's next read starts after a gap
      for (let i = 0; i < 400; i++) {
        ha.doc.getArray<string>('items').push([`a-${i}`])
        // one update per tick, so each is its own stream entry; not synchronisation
        await new Promise(r => setTimeout(r, 1))
      }
      await waitFor(() => ha.pendingCount === 0, { message: 'node A acked every update' })
    } finally {
      b.child.kill('SIGCONT')
    }
    const resumed = Date.now()
    await waitFor(() => hb.doc.getArray('items').length === 401, {
      timeoutMs: 30_000,
      message: () => `the client on node B has every item: ${hb.doc.getArray('items').length} of 401`,
    })
    console.log(`trimmed stream: node B caught up ${Date.now() - resumed} ms after it resumed`)
    expect(itemsOf(hb.doc)).toEqual(itemsOf(ha.doc))
    // node B serves the document normally afterwards
    hb.doc.getArray<string>('items').push(['b-after'])
    await waitFor(() => ha.doc.getArray('items').length === 402, { message: 'relayed from B after it caught up' })
  })

  it('kick and delete cross nodes: through node B\'s admin API, a user on node A is kicked, and a document open on node A is deleted everywhere', async () => {
    const ADMIN = 'cluster-admin-token-0123456789'
    const store = await database()
    const [a, b] = await Promise.all([node(store, ['--admin-token', ADMIN]), node(store, ['--admin-token', ADMIN])])
    const adminB = (path: string, init: RequestInit = {}): Promise<Response> =>
      fetch(`${b.url.replace('ws:', 'http:')}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } })
    const ca = connectClient(a.url)
    const cb = connectClient(b.url)
    clients.push(ca, cb)
    const kicked = ca.open('kick-me')
    const doomedA = ca.open('doomed')
    const doomedB = cb.open('doomed')
    await Promise.all([kicked.whenSynced(), doomedA.whenSynced(), doomedB.whenSynced()])
    doomedA.doc.getArray<string>('items').push(['x'])
    await doomedA.whenSaved()
    await waitFor(() => doomedB.doc.getArray('items').length === 1, { message: 'relayed' })
    const errors: string[] = []
    kicked.on('error', e => errors.push(`kick-me:${e.code}`))
    doomedA.on('error', e => errors.push(`doomedA:${e.code}`))
    doomedB.on('error', e => errors.push(`doomedB:${e.code}`))

    // the session lives on node A; node B does not know it and forwards the kick
    const { sessions } = (await (await fetch(`${a.url.replace('ws:', 'http:')}/admin/sessions?document=kick-me`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { sessions: { id: string }[] }
    expect(sessions).toHaveLength(1)
    const t0 = Date.now()
    expect((await adminB(`/admin/sessions/${encodeURIComponent(sessions[0]!.id)}`, { method: 'DELETE' })).status).toBe(200)
    await waitFor(() => errors.includes('kick-me:CONCORD_ERR_SESSION_KICKED'), { message: 'kicked on node A' })
    console.log(`cross-node kick: ${Date.now() - t0} ms`)
    expect(errors.filter(e => e.startsWith('doomed'))).toEqual([])

    const t1 = Date.now()
    expect((await adminB('/admin/documents/doomed', { method: 'DELETE' })).status).toBe(200)
    await waitFor(() => errors.includes('doomedA:CONCORD_ERR_DOC_DELETED') && errors.includes('doomedB:CONCORD_ERR_DOC_DELETED'), { message: 'both nodes\' sessions told of the deletion' })
    console.log(`cross-node delete: sessions on both nodes told within ${Date.now() - t1} ms`)
    await waitFor(async () => (await stored(store, 'doomed')).getArray('items').length === 0, { message: 'nothing of the document left in PostgreSQL' })
  })
})
