import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createRedisBackplane, type RedisBackplane } from '@concord/server/backplane/redis'
import type { BackplaneHandlers } from '@concord/server'
import { waitFor } from './helpers.js'
import { startRedis, type RedisServer } from './services/redis.js'

// The backplane on a real Redis: a node hears the entries of the documents it holds on their
// channels and reads the stream only to catch up (after subscribing, after its connection came
// back). What must hold: every entry once, in the order it was written, whatever the connection does.

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

const open: RedisBackplane[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map(b => b.close()))
})

function node(): RedisBackplane {
  const b = createRedisBackplane({ url: redis.url, blockMs: 50 }) as RedisBackplane
  open.push(b)
  return b
}

let docs = 0
const docName = (): string => `doc-${process.pid}-${++docs}`

/** What a node received for a document: updates as text, with their relay ids, and resyncs. */
function recorder(): { handlers: BackplaneHandlers; updates: string[]; relayIds: (string | null)[]; durable: string[]; resyncs: number } {
  const r = {
    updates: [] as string[], relayIds: [] as (string | null)[], durable: [] as string[], resyncs: 0,
    handlers: {} as BackplaneHandlers,
  }
  r.handlers = {
    update: (u, _writer, relayId) => { r.updates.push(Buffer.from(u).toString()); r.relayIds.push(relayId ?? null) },
    durable: ids => { r.durable.push(...ids) },
    resync: () => { r.resyncs++ },
    presence: () => undefined,
  }
  return r
}

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s))

describe('backplane channels', () => {
  it('delivers another node\'s entries once each and in order, not its own, with relay ids and confirmations', async () => {
    const a = node()
    const b = node()
    const doc = docName()
    const atA = recorder()
    const atB = recorder()
    a.subscribe(doc, await a.position(doc), atA.handlers)
    b.subscribe(doc, await b.position(doc), atB.handlers)
    await waitFor(async () => Number((await raw.pubsub('NUMSUB', `concord:live:${doc}`))[1]) === 2)
    const sent: string[] = []
    const ids: string[] = []
    for (let i = 0; i < 300; i++) {
      sent.push(`u${i}`)
      ids.push(a.relayUpdate(doc, text(`u${i}`), 'alice'))
    }
    for (const id of ids.slice(0, 100)) a.confirmDurable(doc, id)
    await waitFor(() => atB.updates.length === 300 && atB.durable.length === 100)
    expect(atB.updates).toEqual(sent)
    expect(atB.relayIds).toEqual(ids)
    expect(atB.durable).toEqual(ids.slice(0, 100))
    expect(atA.updates).toEqual([])
  })

  it('a node subscribing from an earlier position reads what came before from the stream, then hears the rest', async () => {
    const a = node()
    const b = node()
    const doc = docName()
    const from = await b.position(doc)
    for (let i = 0; i < 1_500; i++) a.publishUpdate(doc, text(`early${i}`))
    await waitFor(async () => (await raw.xlen(`concord:doc:${doc}`)) === 1_500)
    const atB = recorder()
    b.subscribe(doc, from, atB.handlers)
    for (let i = 0; i < 50; i++) a.publishUpdate(doc, text(`late${i}`))
    await waitFor(() => atB.updates.length === 1_550)
    expect(atB.updates).toEqual([...Array.from({ length: 1_500 }, (_, i) => `early${i}`), ...Array.from({ length: 50 }, (_, i) => `late${i}`)])
  })

  it('loses nothing when its subscription connection is cut while another node keeps writing', async () => {
    const a = node()
    const b = node()
    const doc = docName()
    const atB = recorder()
    b.subscribe(doc, await b.position(doc), atB.handlers)
    await waitFor(async () => Number((await raw.pubsub('NUMSUB', `concord:live:${doc}`))[1]) === 1)
    const sent: string[] = []
    let killed = 0
    for (let i = 0; i < 400; i++) {
      sent.push(`u${i}`)
      a.relayUpdate(doc, text(`u${i}`))
      if (i === 100 || i === 250) {
        // cut the node's subscriber connection (Redis itself stays up), the second time once it is back
        await waitFor(async () => Number((await raw.pubsub('NUMSUB', `concord:live:${doc}`))[1]) === 1)
        const list = String(await raw.client('LIST'))
        for (const line of list.split('\n')) {
          if (!line.includes(`name=concord-sub-${b.nodeId}`)) continue
          const id = /\bid=(\d+)/.exec(line)?.[1]
          if (id !== undefined) killed += Number(await raw.client('KILL', 'ID', id))
        }
      }
      if (i % 50 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    expect(killed).toBe(2)
    await waitFor(() => atB.updates.length >= 400)
    expect(atB.updates).toEqual(sent)
  })

  it('ignores a malformed message on a document channel and goes on with the next entries', async () => {
    const a = node()
    const b = node()
    const doc = docName()
    const atB = recorder()
    b.subscribe(doc, await b.position(doc), atB.handlers)
    await waitFor(async () => Number((await raw.pubsub('NUMSUB', `concord:live:${doc}`))[1]) === 1)
    for (const junk of ['', 'no newline', '1-1\n5:n', '1-1\n99999999999:x', '1-1\nx:y', '9999999999999-0\n1:n']) {
      await raw.publish(`concord:live:${doc}`, junk)
    }
    a.publishUpdate(doc, text('after'))
    await waitFor(() => atB.updates.length === 1)
    expect(atB.updates).toEqual(['after'])
  })
})
