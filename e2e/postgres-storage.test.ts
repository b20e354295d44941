import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
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
      expect(versions.rows.map(r => r.version)).toEqual([1, 2, 3, 4])
      const tables = await c.query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'concord_%' ORDER BY tablename")
      expect(tables.rows.map(r => r.tablename)).toEqual(['concord_access', 'concord_authors', 'concord_leases', 'concord_migrations', 'concord_snapshots', 'concord_updates', 'concord_versions'])
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
