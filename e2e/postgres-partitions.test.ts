import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import * as Y from 'yjs'
import { storageContract } from '@concord/server/storage/contract'
import { createPostgresStorage } from '@concord/server/storage/postgres'
import { createPartitionedPostgresStorage, type PartitionedPostgresStorage, type StorePartition } from '@concord/server/storage/postgres-partitions'
import { exportStore } from '../packages/server/src/content/store-archive.js'
import { createDatabase, startPostgresServers, type PostgresServer } from './services/postgres.js'

// Documents partitioned over three real PostgreSQL servers (separate processes on free ports).
const IDS = ['p1', 'p2', 'p3'] as const
let servers: PostgresServer[] = []
beforeAll(async () => {
  servers = await startPostgresServers(3)
}, 180_000)
afterAll(() => {
  for (const s of servers) s.stop()
})

/** A fresh database on each server, as the partitions p1, p2, p3. */
async function freshPartitions(prefix = 'part'): Promise<StorePartition[]> {
  return Promise.all(servers.map(async (s, i) => ({ id: IDS[i]!, connectionString: await createDatabase(s, prefix) })))
}

function text(value: string): Uint8Array {
  const d = new Y.Doc()
  d.getText('t').insert(0, value)
  return Y.encodeStateAsUpdate(d)
}

let partitions: StorePartition[] = []
storageContract('postgres, 3 partitions', {
  create: async () => {
    partitions = await freshPartitions('contract')
    return createPartitionedPostgresStorage({ partitions })
  },
  // the same databases, listed in another order: placement and identity do not depend on it
  reopen: async () => createPartitionedPostgresStorage({ partitions: [...partitions].reverse() }),
  leases: true,
})

/** The documents each database holds rows for, in any of the document-scoped tables. */
async function documentsIn(url: string): Promise<Map<string, number>> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const r = await c.query<{ doc: string; n: number }>(`SELECT doc, COUNT(*)::int AS n FROM (
      SELECT doc FROM concord_updates UNION ALL SELECT doc FROM concord_snapshots UNION ALL SELECT doc FROM concord_versions
      UNION ALL SELECT doc FROM concord_version_snapshots UNION ALL SELECT doc FROM concord_authors UNION ALL SELECT doc FROM concord_leases) AS rows GROUP BY doc`)
    return new Map(r.rows.map(row => [row.doc, row.n]))
  } finally {
    await c.end()
  }
}

describe('postgres partitions: placement', () => {
  it('puts each document, with its log, snapshot, versions, authors and lease, in exactly one database; the spread is even; listing and export cover them all', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 1_000_000)
    console.log(`postgres partitions placement: seed ${seed} (SEED=${seed} reproduces the names)`)
    let state = seed
    const random = (): number => {
      state = (state * 1_103_515_245 + 12_345) % 2_147_483_648
      return state / 2_147_483_648
    }
    const names = Array.from({ length: 240 }, (_, i) => `tenant-${Math.floor(random() * 5)}/doc-${i}-${Math.floor(random() * 1e9).toString(36)}`)
    const parts = await freshPartitions('spread')
    const store = await createPartitionedPostgresStorage({ partitions: parts })
    try {
      await Promise.all(names.map(async (name, i) => {
        const seq = await store.append(name, { update: text(name), userId: `user-${i % 7}` })
        await store.recordAuthors(name, [{ client: i + 1, userId: `user-${i % 7}` }])
        if (i % 3 === 0) await store.compact(name, text(name), seq)
        if (i % 4 === 0) await store.saveVersion(name, { id: 'v1', kind: 'named', name: 'first', createdAt: 1_000, createdBy: 'ann', authors: ['ann'], seq, snapshot: text(name) })
        if (i % 5 === 0) expect(await store.lease!(name, 'node-a', 60_000)).toBe(true)
      }))
      const held = await Promise.all(parts.map(p => documentsIn(p.connectionString)))
      const counts = new Map<string, number>()
      for (const name of names) {
        const holders = parts.filter((_, i) => held[i]!.has(name)).map(p => p.id)
        // exactly one database has rows for it, and it is the one placement names
        expect(holders, name).toEqual([store.partitionOf(name)])
        counts.set(holders[0]!, (counts.get(holders[0]!) ?? 0) + 1)
      }
      console.log(`postgres partitions placement: ${[...counts].map(([id, n]) => `${id} ${n}`).join(', ')} of ${names.length} documents`)
      // 80 expected each (standard deviation about 7.3): not degenerate
      for (const id of IDS) expect(counts.get(id) ?? 0, id).toBeGreaterThan(45)

      const listed = await store.list()
      expect(listed.map(d => d.name)).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
      expect(listed.every(d => d.bytes > 0 && d.lastSeq > 0)).toBe(true)
      const exported = exportStore(store, { concordVersion: 'test' })
      const lines: string[] = []
      for await (const line of exported.lines) lines.push(line)
      expect(exported.counts().documents).toBe(names.length)
      expect(exported.counts().versions).toBe(names.filter((_, i) => i % 4 === 0).length)
      for (const name of names) {
        const loaded = await store.load(name)
        const doc = new Y.Doc()
        if (loaded.snapshot) Y.applyUpdate(doc, loaded.snapshot)
        for (const u of loaded.updates) Y.applyUpdate(doc, u.update)
        expect(doc.getText('t').toString()).toBe(name)
      }
      // data that belongs to no document lives on the primary (the smallest id at the first start)
      await store.accessStore().update!(s => { s.revokedUsers.push({ tenant: 'tenant-1', userId: 'mallory', at: 1 }) })
      expect(store.partitions().map(p => [p.id, p.primary, p.state])).toEqual([['p1', true, 'open'], ['p2', false, 'open'], ['p3', false, 'open']])
      const access = await Promise.all(parts.map(async p => {
        const c = new pg.Client({ connectionString: p.connectionString })
        await c.connect()
        try {
          return (await c.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM concord_access')).rows[0]!.n
        } finally {
          await c.end()
        }
      }))
      expect(access).toEqual([1, 0, 0])
    } finally {
      await store.close()
    }
    // every node agrees: another store on the same databases (given in another order) reads the same
    const again = await createPartitionedPostgresStorage({ partitions: [parts[2]!, parts[0]!, parts[1]!] })
    try {
      expect((await again.list()).length).toBe(names.length)
      expect((await again.accessStore().load())?.revokedUsers.map(u => u.userId)).toEqual(['mallory'])
    } finally {
      await again.close()
    }
  })
})

describe('postgres partitions: identity', () => {
  it('refuses a configuration the databases disagree with: swapped URLs, another set of partitions, or a database holding other partitions\' documents', async () => {
    const parts = await freshPartitions('identity')
    const first: PartitionedPostgresStorage = await createPartitionedPostgresStorage({ partitions: parts })
    await first.append('some/doc', { update: text('x') })
    await first.close()
    const [a, b, c] = parts as [StorePartition, StorePartition, StorePartition]
    // p1 and p2 given each other's database
    await expect(createPartitionedPostgresStorage({ partitions: [{ id: 'p1', connectionString: b.connectionString }, { id: 'p2', connectionString: a.connectionString }, c] }))
      .rejects.toThrow(/is partition "p2" of \{p1, p2, p3\}, but this node names it "p1"/)
    // a node that was not told about p3: it would look for p3's documents elsewhere
    await expect(createPartitionedPostgresStorage({ partitions: [a, b] }))
      .rejects.toThrow(/belongs to the partitions \{p1, p2, p3\}, but this node is configured with \{p1, p2\}: every node must be given the same partitions/)
    // and one told about a fourth
    const extra = { id: 'p4', connectionString: await createDatabase(servers[0]!, 'identity_extra') }
    await expect(createPartitionedPostgresStorage({ partitions: [a, b, c, extra] })).rejects.toThrow(/configured with \{p1, p2, p3, p4\}/)
    // the same database twice
    await expect(createPartitionedPostgresStorage({ partitions: [a, { id: 'p2', connectionString: a.connectionString }] })).rejects.toThrow(/same database/)

    // an existing single PostgreSQL store whose documents would belong elsewhere cannot become a partition
    const single = await createDatabase(servers[1]!, 'identity_single')
    const plain = await createPostgresStorage({ connectionString: single })
    const names = Array.from({ length: 12 }, (_, i) => `old/doc-${i}`)
    for (const n of names) await plain.append(n, { update: text(n) })
    await plain.close()
    const fresh = await Promise.all([servers[0]!, servers[2]!].map(s => createDatabase(s, 'identity_new')))
    await expect(createPartitionedPostgresStorage({ partitions: [{ id: 'p1', connectionString: fresh[0]! }, { id: 'p2', connectionString: single }, { id: 'p3', connectionString: fresh[1]! }] }))
      .rejects.toThrow(/holds \d+ document\(s\) that belong to other partitions of \{p1, p2, p3\}/)
    // none of the refusals changed what the first databases say: the right configuration still starts
    const ok = await createPartitionedPostgresStorage({ partitions: [a, b, c] })
    expect((await ok.list()).map(d => d.name)).toEqual(['some/doc'])
    await ok.close()
  })
})
