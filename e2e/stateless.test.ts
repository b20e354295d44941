import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { HocuspocusProvider } from '@hocuspocus/provider'
import { mintToken } from '@concord/server'
import { createRedisBackplane } from '@concord/server/backplane/redis'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'
import { startRedis, type RedisServer } from './services/redis.js'

// Stateless messages: app signals ("follow me", "reload") for a document's other sessions, on the
// native protocol, the SDK and the Hocuspocus transport, across nodes, with access control and limits.

const SECRET = 'e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz'

let redis: RedisServer
beforeAll(async () => { redis = await startRedis() }, 60_000)
afterAll(async () => { await redis?.stop() })

const servers: RunningServer[] = []
const clients: ConcordClient[] = []
const providers: HocuspocusProvider[] = []
afterEach(async () => {
  for (const p of providers.splice(0)) p.destroy()
  for (const c of clients.splice(0)) c.close()
  for (const s of servers.splice(0)) await s.close()
})

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<RunningServer> {
  const s = await startServer(options)
  servers.push(s)
  return s
}

function client(url: string, token?: string): ConcordClient {
  const c = connectClient(url, token !== undefined ? { token } : {})
  clients.push(c)
  return c
}

function hocuspocus(url: string, name: string, token = ''): HocuspocusProvider {
  const p = new HocuspocusProvider({ url, name, token, document: new Y.Doc(), WebSocketPolyfill: WebSocket as never } as ConstructorParameters<typeof HocuspocusProvider>[0])
  providers.push(p)
  return p
}

describe('stateless messages', () => {
  it('reach every other session of the document, SDK and Hocuspocus alike, but not the sender nor other documents', async () => {
    const s = await server()
    const a = client(s.url).open('room')
    const b = client(s.url).open('room')
    const other = client(s.url).open('elsewhere')
    const hp = hocuspocus(s.url, 'room')
    await Promise.all([a.whenSynced(), b.whenSynced(), other.whenSynced()])
    await waitFor(() => hp.synced)
    const atA: string[] = []
    const atB: string[] = []
    const atOther: string[] = []
    const atHp: string[] = []
    a.on('stateless', p => atA.push(p))
    b.on('stateless', p => atB.push(p))
    other.on('stateless', p => atOther.push(p))
    hp.on('stateless', ({ payload }: { payload: string }) => atHp.push(payload))

    expect(a.sendStateless(JSON.stringify({ follow: 'ada' }))).toBe(true)
    hp.sendStateless('reload')
    await waitFor(() => atB.length === 2 && atHp.length === 1 && atA.length === 1)
    expect(atB.sort()).toEqual(['reload', '{"follow":"ada"}'])
    expect(atHp).toEqual(['{"follow":"ada"}'])
    expect(atA).toEqual(['reload'])
    expect(atOther).toEqual([])
    // nothing of it is in the document
    expect(s.server.registry.peek('room')?.ydoc.share.size).toBe(0)
  })

  it('cross nodes over Redis', async () => {
    const n1 = await server({ backplane: createRedisBackplane({ url: redis.url }) })
    const n2 = await server({ backplane: createRedisBackplane({ url: redis.url }) })
    const a = client(n1.url).open('cross')
    const b = client(n2.url).open('cross')
    const hp = hocuspocus(n2.url, 'cross')
    await Promise.all([a.whenSynced(), b.whenSynced()])
    await waitFor(() => hp.synced, { message: 'the Hocuspocus provider on node 2 synced' })
    const atB: string[] = []
    const atHp: string[] = []
    b.on('stateless', p => atB.push(p))
    hp.on('stateless', ({ payload }: { payload: string }) => atHp.push(payload))
    // a subscription may take a moment to reach Redis: send until one arrives, then count exactly
    await waitFor(() => { a.sendStateless('ping'); return atB.length > 0 }, { intervalMs: 50, message: 'a first message across' })
    for (let i = 0; i < 5; i++) a.sendStateless(`n${i}`)
    await waitFor(() => atB.filter(p => p.startsWith('n')).length === 5 && atHp.filter(p => p.startsWith('n')).length === 5, { message: () => `five more (b: ${atB.join()}, hp: ${atHp.join()})` })
    expect(atB.filter(p => p.startsWith('n'))).toEqual(['n0', 'n1', 'n2', 'n3', 'n4'])
    expect(atHp.filter(p => p.startsWith('n'))).toEqual(['n0', 'n1', 'n2', 'n3', 'n4'])
  })

  it('a read-only session may send; an oversized or flooding sender is refused with a code and harms nobody', async () => {
    const s = await server({ auth: { secret: SECRET }, maxStatelessBytes: 1024, statelessPerSecond: 5 })
    const readToken = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'rita', docs: { 'acme/*': 'read' } })).token
    const writeToken = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'ada', docs: { 'acme/*': 'write' } })).token
    const reader = client(s.url, readToken).open('acme/talk')
    const writer = client(s.url, writeToken).open('acme/talk')
    await Promise.all([reader.whenSynced(), writer.whenSynced()])
    const atWriter: string[] = []
    const errors: string[] = []
    writer.on('stateless', p => atWriter.push(p))
    reader.on('error', e => errors.push(e.code))
    reader.sendStateless('raise hand')
    await waitFor(() => atWriter.length === 1)

    reader.sendStateless('x'.repeat(2_000))
    await waitFor(() => errors.length === 1)
    expect(errors).toEqual(['CONCORD_ERR_LIMIT_STATELESS'])

    // a burst of 100: at most the bucket's 10 (twice the rate, one already spent) get through, the rest are refused
    for (let i = 0; i < 100; i++) reader.sendStateless(`flood${i}`)
    await waitFor(() => errors.length + atWriter.filter(p => p.startsWith('flood')).length === 101, { message: 'every flood message delivered or refused' })
    const delivered = atWriter.filter(p => p.startsWith('flood')).length
    expect(delivered).toBeGreaterThan(0)
    expect(delivered).toBeLessThanOrEqual(10)
    // the document, and the writer's editing, are untouched
    writer.doc.getText('t').insert(0, 'still fine')
    await writer.whenSaved()
    expect(s.server.registry.peek('acme/talk')?.ydoc.getText('t').toString()).toBe('still fine')
  })
})
