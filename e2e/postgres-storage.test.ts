import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import * as Y from 'yjs'
import { storageContract } from '@concord/server/storage/contract'
import { createPostgresStorage } from '@concord/server/storage/postgres'
import { startPostgres, type PostgresServer } from './services/postgres.js'
import { PeerInbox } from '../packages/server/src/storage/postgres-regions.js'

// A real PostgreSQL, started from the machine's binaries in a temporary directory on a free port.
let server: PostgresServer
let admin: pg.Client
beforeAll(async () => {
  server = await startPostgres()
  admin = new pg.Client({ connectionString: server.url })
  await admin.connect()
}, 120_000)
afterAll(async () => {
  await admin?.end().catch(() => undefined)
  server?.stop()
})

let n = 0
async function freshDatabase(): Promise<string> {
  const name = `contract_${++n}`
  await admin.query(`CREATE DATABASE ${name}`)
  return server.urlOf(name)
}

let url = ''
storageContract('postgres', {
  create: async () => {
    url = await freshDatabase()
    return createPostgresStorage({ connectionString: url })
  },
  reopen: async () => createPostgresStorage({ connectionString: url }),
  leases: true,
})

describe('postgres storage: schema', () => {
  it('creates its schema once, records the version, and several nodes starting together migrate once', async () => {
    const db = await freshDatabase()
    const stores = await Promise.all([1, 2, 3].map(() => createPostgresStorage({ connectionString: db })))
    const c = new pg.Client({ connectionString: db })
    await c.connect()
    try {
      const versions = await c.query('SELECT version FROM concord_migrations ORDER BY version')
      expect(versions.rows.map(r => r.version)).toEqual([1, 2, 3, 4, 5, 6, 7])
      const tables = await c.query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'concord_%' ORDER BY tablename")
      expect(tables.rows.map(r => r.tablename)).toEqual(['concord_access', 'concord_authors', 'concord_leases', 'concord_migrations', 'concord_outbox', 'concord_region_inbox', 'concord_region_peers', 'concord_snapshots', 'concord_updates', 'concord_version_snapshots', 'concord_versions'])
      // all three append to one log; seqs are unique and grow per store
      const seqs = await Promise.all(stores.flatMap(s => [1, 2, 3].map(i => s.append('d', { update: new Uint8Array([0, 0]), userId: `u${i}` }))))
      expect(new Set(seqs).size).toBe(9)
      const rows = await c.query('SELECT COUNT(*)::int AS n FROM concord_updates')
      expect(rows.rows[0].n).toBe(9)
    } finally {
      await c.end()
      await Promise.all(stores.map(s => s.close()))
    }
  })

  it('moves the versions of a version-4 database to shared snapshots: equal ones stored once, every version still readable', async () => {
    const db = await freshDatabase()
    const first = await createPostgresStorage({ connectionString: db })
    await first.close()
    const state = (text: string): Uint8Array => {
      const d = new Y.Doc()
      d.getText('t').insert(0, text)
      return Y.encodeStateAsUpdate(d)
    }
    // each made once: a new Y.Doc has a random client id, whose varint length varies
    const same = state('x'.repeat(40_000))
    const other = state('other')
    const c = new pg.Client({ connectionString: db })
    await c.connect()
    try {
      // back to the schema of version 4: each version a whole copy (and no regions, version 6, nor
      // the one-statement append, version 7)
      await c.query(`DROP FUNCTION concord_append; DELETE FROM concord_migrations WHERE version = 7;
        DROP TABLE concord_region_peers, concord_outbox, concord_region_inbox; DROP FUNCTION concord_region_deliver;
        ALTER TABLE concord_updates DROP COLUMN origin; DELETE FROM concord_migrations WHERE version = 6;
        DROP TABLE concord_versions; DROP TABLE concord_version_snapshots; DELETE FROM concord_migrations WHERE version = 5;
        CREATE TABLE concord_versions (doc TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT, created_at BIGINT NOT NULL, created_by TEXT,
          authors JSONB NOT NULL, seq BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (doc, id));
        CREATE INDEX concord_versions_doc_created ON concord_versions (doc, created_at);`)
      for (let i = 1; i <= 5; i++) {
        await c.query('INSERT INTO concord_versions (doc, id, kind, name, created_at, created_by, authors, seq, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
          ['d', `n${i}`, 'named', `copy ${i}`, i * 1_000, 'mallory', '["mallory"]', 3, Buffer.from(same)])
      }
      await c.query('INSERT INTO concord_versions (doc, id, kind, name, created_at, created_by, authors, seq, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        ['d', 'c1', 'auto', null, 10_000, null, '[]', 4, Buffer.from(other)])
      const store = await createPostgresStorage({ connectionString: db })
      try {
        expect(await store.versionStorage('d')).toEqual({ versions: 6, snapshots: 2, bytes: same.length + other.length })
        expect((await store.listVersions('d')).map(v => [v.id, v.kind, v.name, v.createdBy, v.authors, v.seq, v.bytes])).toEqual([
          ...[1, 2, 3, 4, 5].map(i => [`n${i}`, 'named', `copy ${i}`, 'mallory', ['mallory'], 3, same.length]),
          ['c1', 'auto', null, null, [], 4, other.length],
        ])
        const doc = new Y.Doc()
        Y.applyUpdate(doc, (await store.loadVersion('d', 'n4'))!.snapshot)
        expect(doc.getText('t').toString()).toBe('x'.repeat(40_000))
        await store.saveVersion('d', { id: 'n6', kind: 'named', name: 'again', createdAt: 20_000, createdBy: null, authors: [], seq: 5, snapshot: same })
        expect(await store.versionStorage('d')).toEqual({ versions: 7, snapshots: 2, bytes: same.length + other.length })
      } finally {
        await store.close()
      }
      expect((await c.query('SELECT MAX(version) AS v FROM concord_migrations')).rows[0].v).toBe(7)
    } finally {
      await c.end()
    }
  })

  it('refuses to start on a schema newer than it knows, with a clear message', async () => {
    const db = await freshDatabase()
    const s = await createPostgresStorage({ connectionString: db })
    await s.close()
    const c = new pg.Client({ connectionString: db })
    await c.connect()
    await c.query('INSERT INTO concord_migrations (version) VALUES (99)')
    await c.end()
    await expect(createPostgresStorage({ connectionString: db })).rejects.toThrow(/schema is version 99, newer than this server knows/)
  })
})

describe('postgres storage: the region outbox and a peer\'s inbox', () => {
  const update = (text: string, client: number): Uint8Array => {
    const d = new Y.Doc()
    d.clientID = client
    d.getText('t').insert(0, text)
    return Y.encodeStateAsUpdate(d)
  }

  it('queues each append per peer in its transaction; a peer takes a batch in once, with its origin and authors, however often it is shipped', async () => {
    const [euUrl, usUrl] = [await freshDatabase(), await freshDatabase()]
    const plain = await createPostgresStorage({ connectionString: euUrl })
    await plain.regionOutbox().registerPeers(['us'])
    await plain.append('doc', { update: update('before', 1), userId: 'ada' })
    // a store without replication queues nothing, whatever peers are registered
    expect(await plain.regionOutbox().read('us', 10)).toEqual([])
    await plain.close()

    const eu = await createPostgresStorage({ connectionString: euUrl, replication: true })
    const us = await createPostgresStorage({ connectionString: usUrl, replication: true })
    const outbox = eu.regionOutbox()
    await outbox.registerPeers(['us', 'ap'])
    const updates = [update('one', 11), update('two', 12), update('three', 13)]
    await Promise.all(updates.map((u, i) => eu.append(i === 2 ? 'other' : 'doc', { update: u, userId: `user-${i}` })))
    await eu.accessStore().update!(s => { s.revokedUsers.push({ tenant: 'acme', userId: 'mallory', at: 1 }) },
      { op: { op: 'revoke-user', tenant: 'acme', userId: 'mallory', at: 1 }, change: { kind: 'revoked-user', tenant: 'acme', userId: 'mallory' } })
    const queued = await outbox.read('us', 10)
    expect(queued.map(e => e.kind)).toEqual(['update', 'update', 'update', 'access'])
    expect(queued.filter(e => e.kind === 'update').map(e => e.userId).sort()).toEqual(['user-0', 'user-1', 'user-2'])
    expect((await outbox.depths()).map(d => [d.peer, d.depth])).toEqual([['ap', 4], ['us', 4]])

    const inbox = new PeerInbox({ connectionString: usUrl })
    try {
      const first = await inbox.deliver('eu', queued)
      expect(first.fresh).toBe(4)
      // shipped again (its first commit's reply lost): nothing is taken in twice, but it is announced again
      const again = await inbox.deliver('eu', queued)
      expect(again).toMatchObject({ fresh: 0, changes: [{ kind: 'revoked-user', userId: 'mallory' }] })
      expect(again.updates).toHaveLength(3)
    } finally {
      await inbox.close()
    }
    const loaded = await us.load('doc')
    expect(loaded.updates).toHaveLength(2)
    const ydoc = new Y.Doc()
    for (const u of loaded.updates) Y.applyUpdate(ydoc, u.update)
    expect(ydoc.getText('t').toString().length).toBe('onetwo'.length)
    const rows = new pg.Client({ connectionString: usUrl })
    await rows.connect()
    try {
      expect((await rows.query('SELECT origin, COUNT(*)::int AS n FROM concord_updates GROUP BY origin')).rows).toEqual([{ origin: 'eu', n: 3 }])
      // replicated updates are not queued again in the peer (every region ships only its own)
      expect((await rows.query('SELECT COUNT(*)::int AS n FROM concord_outbox')).rows[0].n).toBe(0)
    } finally {
      await rows.end()
    }
    expect(await us.loadAuthors('doc')).toEqual(new Map([[11, 'user-0'], [12, 'user-1']]))
    expect((await us.accessStore().load())?.revokedUsers.map(u => u.userId)).toEqual(['mallory'])

    await outbox.remove('us', queued.map(e => e.id))
    expect((await outbox.depths()).map(d => [d.peer, d.depth])).toEqual([['ap', 4], ['us', 0]])
    await Promise.all([eu.close(), us.close()])
  })

  it('takes a batch in in order: an edit shipped after a deletion stays, what came before it goes', async () => {
    const [euUrl, usUrl] = [await freshDatabase(), await freshDatabase()]
    const eu = await createPostgresStorage({ connectionString: euUrl, replication: true })
    const us = await createPostgresStorage({ connectionString: usUrl, replication: true })
    await eu.regionOutbox().registerPeers(['us'])
    await eu.append('doc', { update: update('old', 21), userId: 'ada' })
    await eu.regionOutbox().queueDelete('doc')
    await eu.append('doc', { update: update('new', 22), userId: 'ada' })
    const queued = await eu.regionOutbox().read('us', 10)
    expect(queued.map(e => e.kind)).toEqual(['update', 'delete', 'update'])
    const inbox = new PeerInbox({ connectionString: usUrl })
    try {
      expect(await inbox.deliver('eu', queued)).toMatchObject({ fresh: 3, deleted: ['doc'] })
    } finally {
      await inbox.close()
    }
    const ydoc = new Y.Doc()
    for (const u of (await us.load('doc')).updates) Y.applyUpdate(ydoc, u.update)
    expect(ydoc.getText('t').toString()).toBe('new')
    await Promise.all([eu.close(), us.close()])
  })
})
