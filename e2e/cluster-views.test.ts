import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DocHandle } from '@concord/client'
import { mintToken } from '@concord/server'
import { connectClient, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { createDatabase, startPostgres, type PostgresServer } from './services/postgres.js'
import { startRedis, type RedisServer } from './services/redis.js'

// One view of the whole region: three `concord serve` processes on one PostgreSQL and one Redis;
// any node's /admin/sessions and /admin/stats cover every node, and a tenant admin still sees only
// its tenant, wherever the sessions live.

const SECRET = 'cluster-views-secret-0123456789-abcdefghijk'
const ADMIN = 'cluster-views-admin-token-0123456789'

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

interface Node {
  proc: ServerProcess
  http: string
  id: string
}

async function node(store: string): Promise<Node> {
  const data = mkdtempSync(join(tmpdir(), 'concord-cluster-views-'))
  dirs.push(data)
  const proc = await spawnServer(['--store', store, '--redis', redis.url, '--data', data, '--port', '0', '--auth-secret', SECRET, '--admin-token', ADMIN])
  procs.push(proc)
  const http = proc.url.replace('ws:', 'http:')
  const { node: id } = await (await get(http, '/admin/stats')).json() as { node: string }
  return { proc, http, id }
}

function get(http: string, path: string, bearer = ADMIN, method = 'GET'): Promise<Response> {
  return fetch(`${http}${path}`, { method, headers: { authorization: `Bearer ${bearer}` } })
}

interface SessionRow { id: string; document: string; userId: string; node: string }
interface SessionsView { node: string; sessions: SessionRow[]; nodes: string[]; missingNodes: string[]; truncated: boolean; clusterError: string | null }
interface StatsView {
  node: string
  nodes: { nodeId: string; self: boolean; connections: number; sessions: number; version: string; httpUrl: string | null }[]
  totals: { nodes: number; connections: number; sessions: number }
  now: { connections: number }
  regions: unknown
}

async function sessions(http: string, bearer = ADMIN): Promise<SessionsView> {
  const res = await get(http, '/admin/sessions', bearer)
  expect(res.status).toBe(200)
  return await res.json() as SessionsView
}

/**
 * The sessions view once every live node answered: a node that does not answer within the query
 * timeout (1 s) is listed in `missingNodes` instead, which a loaded machine running the whole suite
 * sees at times; the view is asked for again until none is missing.
 */
async function answered(http: string, bearer = ADMIN): Promise<SessionsView> {
  let view: SessionsView | null = null
  await waitFor(async () => {
    view = await sessions(http, bearer)
    return view.missingNodes.length === 0
  }, { timeoutMs: 20_000, intervalMs: 100, message: () => `every node to answer (missing: ${view?.missingNodes.join(', ')})` })
  return view!
}

async function stats(http: string, bearer = ADMIN): Promise<StatsView> {
  const res = await get(http, '/admin/stats', bearer)
  expect(res.status).toBe(200)
  return await res.json() as StatsView
}

/** A writer in `tenant`, connected to `at`, with `document` open. */
async function writer(at: Node, tenant: string, user: string, document: string): Promise<DocHandle> {
  const token = (await mintToken({ secret: SECRET, tenant, userId: user, docs: { [`${tenant}/*`]: 'write' } })).token
  const client = connectClient(at.proc.url, { getToken: async () => token })
  clients.push(client)
  const h = client.open(document)
  await h.whenSynced()
  return h
}

/** Until `at`'s directory lists `count` live nodes (each publishes its first heartbeat once it reads questions). */
async function listed(at: Node, count: number): Promise<void> {
  await waitFor(async () => (await stats(at.http)).nodes.length === count, { timeoutMs: 15_000, intervalMs: 100, message: `${count} nodes in the directory` })
}

const tenantAdmin = async (tenant: string): Promise<string> => (await mintToken({ secret: SECRET, tenant, userId: `${tenant}-admin`, admin: true })).token
const sorted = (xs: string[]): string[] => [...xs].sort()

describe('one view of the whole region', () => {
  it('any node lists every node\'s sessions and sums every node\'s figures; a killed node is reported missing, then drops out of the directory', async () => {
    const store = await createDatabase(postgres, 'cluster_views')
    const [a, b, c] = await Promise.all([node(store), node(store), node(store)])
    const ids = sorted([a.id, b.id, c.id])
    await writer(a, 'acme', 'ada', 'acme/plan')
    await writer(b, 'acme', 'bob', 'acme/plan')
    await writer(b, 'acme', 'bea', 'acme/notes')
    await writer(c, 'globex', 'carl', 'globex/x')
    await Promise.all([listed(a, 3), listed(c, 3)])

    // node A lists the sessions that live on B and C, each with its node
    const view = await answered(a.http)
    expect(view.node).toBe(a.id)
    expect(view.nodes[0]).toBe(a.id)
    expect(sorted(view.nodes)).toEqual(ids)
    expect(view.missingNodes).toEqual([])
    expect(view.truncated).toBe(false)
    expect(view.clusterError).toBeNull()
    expect(new Map(view.sessions.map(s => [s.userId, s.node]))).toEqual(new Map([['ada', a.id], ['bob', b.id], ['bea', b.id], ['carl', c.id]]))
    // ?document= is applied on every node
    const plan = (await (await get(c.http, '/admin/sessions?document=acme%2Fplan')).json()) as SessionsView
    expect(sorted(plan.sessions.map(s => `${s.userId}@${s.node}`))).toEqual(sorted([`ada@${a.id}`, `bob@${b.id}`]))

    // /admin/stats on B: a row per live node (B marked), totals over them (heartbeats every 2 s)
    let last: StatsView | null = null
    await waitFor(async () => {
      last = await stats(b.http)
      return last.totals.connections === 4 && last.totals.sessions === 4 && last.nodes.length === 3
    }, { timeoutMs: 15_000, intervalMs: 200, message: () => `B's /admin/stats to sum 4 connections and sessions over 3 nodes: ${JSON.stringify(last?.totals)}` })
    const s = last! as StatsView
    expect(s.nodes.map(n => n.nodeId)).toEqual(ids)
    expect(s.nodes.filter(n => n.self).map(n => n.nodeId)).toEqual([b.id])
    expect(new Map(s.nodes.map(n => [n.nodeId, n.connections]))).toEqual(new Map([[a.id, 1], [b.id, 2], [c.id, 1]]))
    expect(s.totals.nodes).toBe(3)
    expect(s.nodes.find(n => n.nodeId === c.id)!.httpUrl).toBe(c.http)
    expect(s.now.connections).toBe(2)
    expect(s.regions).toBeNull()

    // node C dies (SIGKILL: no goodbye): A still answers at once, naming C as missing while C's
    // heartbeat lives; A's and B's sessions are listed as before
    c.proc.child.kill('SIGKILL')
    await c.proc.exited
    const during = await sessions(a.http)
    expect(during.missingNodes).toEqual([c.id])
    expect(sorted(during.nodes)).toEqual(sorted([a.id, b.id]))
    expect(sorted(during.sessions.map(x => x.userId))).toEqual(['ada', 'bea', 'bob'])
    // once its heartbeat expired (three beats), C is no longer listed nor waited for
    await waitFor(async () => (await stats(a.http)).nodes.length === 2, { timeoutMs: 20_000, intervalMs: 250, message: 'the killed node to drop out of the directory' })
    const after = await sessions(a.http)
    expect(after.missingNodes).toEqual([])
    expect(sorted(after.nodes)).toEqual(sorted([a.id, b.id]))

    // a node that stops gracefully leaves the directory at once
    const exited = b.proc.exited
    b.proc.child.kill('SIGTERM')
    await exited
    expect((await stats(a.http)).nodes.map(n => n.nodeId)).toEqual([a.id])
    expect((await answered(a.http)).missingNodes).toEqual([])
  }, 120_000)

  it('a tenant admin sees and kicks its tenant\'s sessions on every node, and nothing of another tenant\'s', async () => {
    const store = await createDatabase(postgres, 'cluster_views')
    const [a, b] = await Promise.all([node(store), node(store)])
    await writer(a, 'acme', 'ada', 'acme/plan')
    const bob = await writer(b, 'acme', 'bob', 'acme/plan')
    await writer(b, 'globex', 'gus', 'globex/plan')
    await writer(a, 'globex', 'gia', 'globex/plan')
    const acme = await tenantAdmin('acme')
    const globex = await tenantAdmin('globex')
    await Promise.all([listed(a, 2), listed(b, 2)])

    // acme's admin, through node A: acme's sessions on A and on B; nothing of globex anywhere
    const acmeView = await answered(a.http, acme)
    expect(sorted(acmeView.sessions.map(s => `${s.userId}@${s.node}`))).toEqual(sorted([`ada@${a.id}`, `bob@${b.id}`]))
    expect(acmeView.sessions.every(s => s.document.startsWith('acme/'))).toBe(true)
    expect(sorted(acmeView.nodes)).toEqual(sorted([a.id, b.id]))
    // and globex's admin, through node B, the reverse
    const globexView = await answered(b.http, globex)
    expect(sorted(globexView.sessions.map(s => `${s.userId}@${s.node}`))).toEqual(sorted([`gia@${a.id}`, `gus@${b.id}`]))
    // naming another tenant's document lists nothing of it
    expect((await get(a.http, '/admin/sessions?document=globex%2Fplan', acme)).status).toBe(403)

    // the ids a tenant admin cannot see, it cannot kick: gus (globex, on B) through A by acme's admin
    const all = await answered(a.http)
    const gusId = all.sessions.find(s => s.userId === 'gus')!.id
    const bobId = all.sessions.find(s => s.userId === 'bob')!.id
    expect((await get(a.http, `/admin/sessions/${encodeURIComponent(gusId)}`, acme, 'DELETE')).status).toBe(404)
    // its own session on the other node it can: bob on B, through A
    const errors: string[] = []
    bob.on('error', e => errors.push(e.code))
    expect((await get(a.http, `/admin/sessions/${encodeURIComponent(bobId)}`, acme, 'DELETE')).status).toBe(200)
    await waitFor(() => errors.includes('CONCORD_ERR_SESSION_KICKED'), { message: 'bob kicked on node B' })
    await waitFor(async () => !(await answered(a.http)).sessions.some(s => s.userId === 'bob'), { message: 'bob no longer listed' })
    expect((await answered(a.http)).sessions.some(s => s.userId === 'gus')).toBe(true)
  }, 120_000)
})
