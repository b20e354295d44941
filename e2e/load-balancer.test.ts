import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectClient, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { createDatabase, startPostgres, storedDocument, type PostgresServer } from './services/postgres.js'
import { startRedis, type RedisServer } from './services/redis.js'
import { startNginx, type NginxServer } from './services/nginx.js'

// docs/deployment/nginx.conf, run by Debian's nginx, in front of two Concord nodes on one
// PostgreSQL and one Redis: what docs/deployment.md tells operators to deploy.
let postgres: PostgresServer
let redis: RedisServer
let nginx: NginxServer | null = null
beforeAll(async () => {
  ;[postgres, redis] = await Promise.all([startPostgres(), startRedis()])
}, 120_000)
afterAll(async () => {
  postgres?.stop()
  await redis?.stop()
})

const { procs, clients, dirs } = cleanupAfterEach()
afterEach(async () => {
  await nginx?.stop()
  nginx = null
})

describe('behind nginx (docs/deployment/nginx.conf)', () => {
  it('clients reach either node through one address, converge, and survive a node being killed', async () => {
    const store = await createDatabase(postgres, 'lb')
    const nodes: ServerProcess[] = []
    for (let i = 0; i < 2; i++) {
      const data = mkdtempSync(join(tmpdir(), 'concord-lb-'))
      dirs.push(data)
      nodes.push(await spawnServer(['--store', store, '--redis', redis.url, '--data', data, '--port', '0', '--rate-limit-messages', '1000000', '--trust-proxy', '1']))
    }
    procs.push(...nodes)
    nginx = await startNginx(nodes.map(n => `127.0.0.1:${n.port}`))
    // through the proxy: health, readiness, and WebSockets of both protocols
    expect((await fetch(`${nginx.url.replace('ws:', 'http:')}/readyz`)).status).toBe(200)
    const writers = Array.from({ length: 4 }, (_, i) => {
      const client = connectClient(nginx!.url, { reconnect: { minDelayMs: 20, maxDelayMs: 200 } })
      clients.push(client)
      return { i, h: client.open('behind-proxy'), sent: 0 }
    })
    await Promise.all(writers.map(w => w.h.whenSynced()))
    const PER = 150
    const typing = Promise.all(writers.map(async w => {
      while (w.sent < PER) {
        w.h.doc.getArray<string>('items').push([`w${w.i}-${w.sent++}`])
        // typing pace, so the kill lands mid-stream; not synchronisation
        await new Promise(r => setTimeout(r, 4))
      }
    }))
    await waitFor(() => writers.every(w => w.sent >= 50), { message: '50 edits each' })
    nodes[0]!.child.kill('SIGKILL')
    await typing
    const all = writers.flatMap(w => Array.from({ length: PER }, (_, k) => `w${w.i}-${k}`)).sort()
    await waitFor(() => writers.every(w => w.h.doc.getArray('items').length === all.length && w.h.pendingCount === 0), {
      timeoutMs: 20_000,
      message: () => `converged and acked through nginx: ${writers.map(w => `${w.h.doc.getArray('items').length}/${w.h.pendingCount}`).join(', ')}`,
    })
    for (const w of writers) expect([...w.h.doc.getArray<string>('items').toArray()].sort()).toEqual(all)
    expect([...(await storedDocument(store, 'behind-proxy')).getArray<string>('items').toArray()].sort()).toEqual(all)
  })
})
