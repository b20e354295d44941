import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createRedisBackplane, type RedisBackplane } from '@concord/server/backplane/redis'
import { waitFor } from './helpers.js'
import { startRedis, type RedisServer } from './services/redis.js'

// An update whose publication Redis refuses (here: out of memory; on a Redis Cluster, a failover
// longer than the client's retries) is missing on the other nodes' streams. The node that wrote it
// flushes the document and posts a resync marker once Redis takes commands again, so that the
// other nodes reload the document from storage, where the update is.

let redis: RedisServer
let raw: Redis
beforeAll(async () => {
  redis = await startRedis()
  raw = new Redis(redis.url, { maxRetriesPerRequest: null })
  raw.on('error', () => undefined)
}, 60_000)
afterAll(async () => {
  raw?.disconnect()
  await redis?.stop()
})

describe('a publication Redis refuses', () => {
  it('is made good by a resync marker once Redis takes writes again: the other node reloads the document', async () => {
    const a = createRedisBackplane({ url: redis.url, blockMs: 50 }) as RedisBackplane
    const b = createRedisBackplane({ url: redis.url, blockMs: 50 }) as RedisBackplane
    try {
      const doc = `refused-${process.pid}`
      const flushed: string[][] = []
      a.onReconnect = async documents => { flushed.push(documents) }
      const heard: string[] = []
      let resyncs = 0
      b.subscribe(doc, await b.position(doc), { update: u => { heard.push(Buffer.from(u).toString()) }, resync: () => { resyncs++ }, presence: () => undefined })
      await waitFor(async () => Number((await raw.pubsub('NUMSUB', `concord:live:${doc}`))[1]) === 1, { message: 'node B subscribed' })
      a.publishUpdate(doc, new Uint8Array(Buffer.from('before')))
      await waitFor(() => heard.length === 1, { message: 'the first update heard' })

      // Redis refuses every write now
      await raw.config('SET', 'maxmemory-policy', 'noeviction')
      await raw.config('SET', 'maxmemory', '1')
      a.publishUpdate(doc, new Uint8Array(Buffer.from('refused')))
      // node A flushes the document before it tries its marker (which Redis refuses too, for now)
      await waitFor(() => flushed.some(list => list.includes(doc)), { message: 'node A flushed the document after the refusal' })
      expect(resyncs).toBe(0)

      await raw.config('SET', 'maxmemory', '0')
      await waitFor(() => resyncs > 0, { timeoutMs: 15_000, message: 'node B told to reload the document' })
      expect(heard).toEqual(['before'])
      // and the stream goes on
      a.publishUpdate(doc, new Uint8Array(Buffer.from('after')))
      await waitFor(() => heard.length === 2, { message: 'an update after the refusal heard' })
      expect(heard).toEqual(['before', 'after'])
    } finally {
      await raw.config('SET', 'maxmemory', '0')
      await Promise.all([a.close(), b.close()])
    }
  })
})
