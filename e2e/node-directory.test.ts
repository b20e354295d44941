import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createNodeDirectory, type NodeDirectory, type NodeFigures, type NodeDirectoryOptions } from '@concord/server/backplane/node-directory'
import { waitFor } from './helpers.js'
import { startRedis, type RedisServer } from './services/redis.js'

// The node directory on a real Redis: heartbeats with a TTL, the list of live nodes, questions to
// every node with a bounded wait, and what happens when a node goes away or Redis does.

let redis: RedisServer
let raw: Redis
beforeAll(async () => {
  redis = await startRedis()
  raw = new Redis(redis.url, { maxRetriesPerRequest: null })
}, 60_000)
afterAll(async () => {
  raw?.disconnect()
  await redis?.stop()
})

const open: NodeDirectory[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map(d => d.close()))
})

let prefixes = 0
function prefix(): string {
  return `test${process.pid}-${++prefixes}:`
}

function figures(connections: number): NodeFigures {
  return {
    region: 'eu', version: '9.9.9', startedAt: 1_700_000_000_000, httpUrl: `http://127.0.0.1:${1000 + connections}`,
    connections, sessions: connections * 2, documentsLoaded: 1, rssBytes: 123456789, heapUsedBytes: 4567, cpuPercent: 12.5,
    eventLoopDelayMs: null, updatesPerSecond: 3.25, peers: [{ peer: 'us', shipping: true, linkUp: false }],
  }
}

function directory(keyPrefix: string, nodeId: string, connections: number, extra: Partial<NodeDirectoryOptions> = {}): NodeDirectory {
  const d = createNodeDirectory({ url: redis.url, keyPrefix, heartbeatIntervalMs: 200, ...extra })
  open.push(d)
  d.start({ nodeId, describe: () => figures(connections) })
  return d
}

/** A node that publishes a heartbeat (by hand) but never reads its questions: it cannot answer. */
async function silentNode(keyPrefix: string, nodeId: string, ttlMs: number): Promise<void> {
  const [seconds, micros] = await raw.time()
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  await raw.multi()
    .hset(`${keyPrefix}node:${nodeId}`, { nodeId, version: '9.9.9', connections: '7', sessions: '0', at: String(Date.now()) })
    .pexpire(`${keyPrefix}node:${nodeId}`, ttlMs)
    .zadd(`${keyPrefix}nodes`, now + ttlMs, nodeId)
    .exec()
}

describe('the node directory on a real Redis', () => {
  it('lists every live node with its heartbeat; a node that closes is gone at once, one that stops beating after its TTL', async () => {
    const p = prefix()
    const a = directory(p, 'node-a', 1)
    directory(p, 'node-b', 2)
    const both = await waitFor(async () => {
      const nodes = await a.list()
      return nodes.length === 2 ? nodes : null
    }, { message: 'both nodes listed' })
    expect(both.map(n => n.nodeId)).toEqual(['node-a', 'node-b'])
    expect(both[1]).toMatchObject({ ...figures(2), nodeId: 'node-b' })
    expect(both[1]!.at).toBeGreaterThan(0)
    // one hash per node, with a TTL of three heartbeats
    const ttl = await raw.pttl(`${p}node:node-b`)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(600)

    // a graceful close removes the entry (no wait for the TTL)
    await open.splice(1, 1)[0]!.close()
    expect((await a.list()).map(n => n.nodeId)).toEqual(['node-a'])
    expect(await raw.exists(`${p}node:node-b`)).toBe(0)

    // a node that stops publishing (killed) drops out once its heartbeat expires, and from the index too
    await silentNode(p, 'node-dead', 2_000)
    expect((await a.list()).map(n => n.nodeId)).toEqual(['node-a', 'node-dead'])
    await waitFor(async () => (await a.list()).length === 1, { message: 'the silent node to expire' })
    await waitFor(async () => (await raw.zrange(`${p}nodes`, 0, -1)).join() === 'node-a', { message: 'the index to forget the expired node' })
  })

  it('asks every other node and waits for all of them, or reports which did not answer in time', async () => {
    const p = prefix()
    const a = directory(p, 'node-a', 1)
    const b = directory(p, 'node-b', 2)
    const c = directory(p, 'node-c', 3)
    b.onQuery('echo', args => ({ from: 'b', args }))
    c.onQuery('echo', args => ({ from: 'c', args }))
    a.onQuery('echo', () => { throw new Error('a is never asked by itself') })
    await waitFor(async () => (await a.list()).length === 3, { message: 'three nodes listed' })

    const answered = await a.ask('echo', { x: 1 })
    expect(answered.asked).toEqual(['node-b', 'node-c'])
    expect(answered.missing).toEqual([])
    expect(Object.fromEntries(answered.answers)).toEqual({ 'node-b': { from: 'b', args: { x: 1 } }, 'node-c': { from: 'c', args: { x: 1 } } })
    // answers are removed from the asker's inbox once read; the inbox expires with its node
    await waitFor(async () => (await raw.xlen(`${p}node-inbox:node-a`)) === 0, { message: 'the read answers removed from the inbox' })
    expect(await raw.pttl(`${p}node-inbox:node-a`)).toBeGreaterThan(0)

    // a node that cannot answer this question (no handler) is reported, not waited for
    const unknown = await a.ask('nobody-answers-this', null, { timeoutMs: 5_000 })
    expect(unknown.missing).toEqual(['node-b', 'node-c'])

    // a node that is listed but silent: the others answer, it is reported missing after the wait
    await silentNode(p, 'node-silent', 10_000)
    const partial = await a.ask('echo', { x: 2 }, { timeoutMs: 300 })
    expect(partial.asked).toEqual(['node-b', 'node-c', 'node-silent'])
    expect([...partial.answers.keys()].sort()).toEqual(['node-b', 'node-c'])
    expect(partial.missing).toEqual(['node-silent'])
  })

  it('bounds the questions in flight, and fails with a code while Redis is away; after Redis returns the nodes are listed and answer again', async () => {
    const p = prefix()
    const a = directory(p, 'node-a', 1, { maxPendingQueries: 1 })
    const b = directory(p, 'node-b', 2)
    b.onQuery('echo', args => args)
    await silentNode(p, 'node-silent', 60_000)
    await waitFor(async () => (await a.list()).length === 3, { message: 'three nodes listed' })
    const first = a.ask('echo', 1, { timeoutMs: 2_000 })
    // the first question is in flight (it waits for the silent node): a second one is refused
    await waitFor(async () => {
      try {
        await a.ask('echo', 2)
        return false
      } catch (err) {
        expect(err).toMatchObject({ code: 'CONCORD_ERR_BACKPLANE_UNAVAILABLE' })
        return true
      }
    }, { message: 'the second question to be refused' })
    expect((await first).missing).toEqual(['node-silent'])

    await redis.stopServer()
    await expect(a.list()).rejects.toMatchObject({ code: 'CONCORD_ERR_BACKPLANE_UNAVAILABLE' })
    await expect(a.ask('echo', 3)).rejects.toMatchObject({ code: 'CONCORD_ERR_BACKPLANE_UNAVAILABLE' })
    await redis.start()
    // Redis came back empty: the heartbeats put both nodes back, and questions flow again
    await waitFor(async () => (await a.list().catch(() => [])).length === 2, { timeoutMs: 15_000, message: 'both nodes listed after Redis returned' })
    await waitFor(async () => {
      const again = await a.ask('echo', 4, { timeoutMs: 500 })
      return again.missing.length === 0 && again.answers.get('node-b') === 4
    }, { timeoutMs: 15_000, message: 'node-b to answer after Redis returned' })
  }, 60_000)
})
