import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import * as Y from 'yjs'
import { storageContract } from '@concord/server/storage/contract'
import { createPostgresStorage } from '@concord/server/storage/postgres'
import { startPostgres, type PostgresServer } from './services/postgres.js'

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
      expect(versions.rows.map(r => r.version)).toEqual([1, 2, 3, 4, 5])
      const tables = await c.query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'concord_%' ORDER BY tablename")
      expect(tables.rows.map(r => r.tablename)).toEqual(['concord_access', 'concord_authors', 'concord_leases', 'concord_migrations', 'concord_snapshots', 'concord_updates', 'concord_version_snapshots', 'concord_versions'])
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
      // back to the schema of version 4: each version a whole copy
      await c.query(`DROP TABLE concord_versions; DROP TABLE concord_version_snapshots; DELETE FROM concord_migrations WHERE version = 5;
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
      expect((await c.query('SELECT MAX(version) AS v FROM concord_migrations')).rows[0].v).toBe(5)
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
