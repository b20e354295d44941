import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { connectClient } from './helpers.js'
import { spawnServer } from './server-process.js'
import { createDatabase, startPostgres, storedDocument, type PostgresServer } from './services/postgres.js'
import { startRedis, type RedisServer } from './services/redis.js'

// A node of a cluster must stop when told to, whatever its Redis and PostgreSQL are doing: a rolling
// restart or `systemctl stop` during an outage may not hang. Each case starts a node on a fresh
// database, saves an edit, takes the services away, makes an edit that can no longer be saved, sends
// SIGTERM, and waits (with a deadline far above the bound) for the process to exit.
let postgres: PostgresServer
let redis: RedisServer
beforeAll(async () => {
  ;[postgres, redis] = await Promise.all([startPostgres(), startRedis()])
})
afterAll(async () => {
  await Promise.all([postgres?.stop(), redis?.stop()])
})

const BOUND_MS = 2_000

async function stopsWithin(down: { redis: boolean; postgres: boolean }): Promise<{ exitMs: number; logs: string; db: string }> {
  const db = await createDatabase(postgres, 'shutdown')
  const node = await spawnServer(['--port', '0', '--store', db, '--redis', redis.url, '--shutdown-timeout-ms', String(BOUND_MS), '--log-level', 'info'])
  const client = connectClient(node.url)
  try {
    const handle = client.open('bounded')
    await handle.whenSynced()
    handle.doc.getText('t').insert(0, 'saved before the outage')
    await handle.whenSaved()
    if (down.redis) await redis.stopServer()
    if (down.postgres) postgres.stopServer()
    // an edit the node can no longer store (PostgreSQL down) or tell the other nodes about (Redis down),
    // and a document opened now, whose load waits for the services
    handle.doc.getText('t').insert(0, 'typed during the outage; ')
    client.open('opened-during-the-outage')
    await new Promise(resolve => setTimeout(resolve, 300)) // let the edit reach the node (nothing to wait on: it may never be acked)
    const t0 = Date.now()
    node.child.kill('SIGTERM')
    const deadline = new Promise<'hung'>(resolve => setTimeout(() => resolve('hung'), 30_000).unref())
    const exit = await Promise.race([node.exited, deadline])
    const exitMs = Date.now() - t0
    if (exit === 'hung') node.child.kill('SIGKILL')
    expect(exit, `the node was still running 30 s after SIGTERM:\n${node.logs.join('\n').slice(-2000)}`).not.toBe('hung')
    return { exitMs, logs: node.logs.join('\n'), db }
  } finally {
    client.close()
    if (down.redis) await redis.start()
    if (down.postgres) postgres.start()
  }
}

describe('SIGTERM ends a cluster node within its shutdown bound, whatever its services are doing', () => {
  it('with Redis down: it exits, and what it stored stays stored', async () => {
    const { exitMs, logs, db } = await stopsWithin({ redis: true, postgres: false })
    console.log(`Redis down: exited ${exitMs} ms after SIGTERM (bound ${BOUND_MS} ms)`)
    // the document opened during the outage could not load (its stream position is on Redis)
    expect(logs).toContain('shutdown bound reached')
    expect(logs).toContain('stopped')
    expect((await storedDocument(db, 'bounded')).getText('t').toString()).toContain('saved before the outage')
  })

  it('with PostgreSQL down: it exits, says in its log that it gave up at the bound, and what was acked is stored', async () => {
    const { exitMs, logs, db } = await stopsWithin({ redis: false, postgres: true })
    console.log(`PostgreSQL down: exited ${exitMs} ms after SIGTERM (bound ${BOUND_MS} ms)`)
    expect(logs).toContain('shutdown bound reached')
    // the edit typed during the outage was still waiting for PostgreSQL: the log counts it as given up
    expect(logs).toMatch(/"unsavedUpdates":[1-9]/)
    // PostgreSQL is back: the acked edit is there (the one typed during the outage was never acked)
    expect((await storedDocument(db, 'bounded')).getText('t').toString()).toContain('saved before the outage')
  })

  it('with both down: it exits', async () => {
    const { exitMs } = await stopsWithin({ redis: true, postgres: true })
    console.log(`Redis and PostgreSQL down: exited ${exitMs} ms after SIGTERM (bound ${BOUND_MS} ms)`)
  })

  it('on healthy services the bound changes nothing: the edits are durable and the node stops at once', async () => {
    const db = await createDatabase(postgres, 'shutdown')
    const node = await spawnServer(['--port', '0', '--store', db, '--redis', redis.url, '--shutdown-timeout-ms', String(BOUND_MS)])
    const client = connectClient(node.url)
    const handle = client.open('healthy')
    await handle.whenSynced()
    for (let i = 0; i < 20; i++) handle.doc.getArray<number>('n').push([i])
    await handle.whenSaved()
    node.child.kill('SIGTERM')
    const exit = await node.exited
    client.close()
    expect(exit.code).toBe(0)
    const stored: Y.Doc = await storedDocument(db, 'healthy')
    expect(stored.getArray('n').toArray()).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })
})
