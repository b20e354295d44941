import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import * as Y from 'yjs'
import { storageContract } from '@concord/server/storage/contract'
import { createPostgresStorage } from '@concord/server/storage/postgres'
import { createPartitionedPostgresStorage, type PartitionedPostgresStorage, type StorePartition } from '@concord/server/storage/postgres-partitions'
import { ERROR_CODES, type ErrorCode } from '@concord/protocol'
import type { DocHandle } from '@concord/client'
import { exportStore } from '../packages/server/src/content/store-archive.js'
import { homePartition } from '../packages/server/src/storage/partition-placement.js'
import { readPartitionRecord, writePartitionRecord } from '../packages/server/src/storage/partition-identity.js'
import { connectClient, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { crashPostgres, createDatabase, startPostgresServers, storedDocument, type PostgresServer } from './services/postgres.js'

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

describe('postgres partitions: a partition down when the store opens', () => {
  it('opens with the others, serves their documents, and takes the missing one in once it answers; without the primary it serves nothing', async () => {
    const parts = await freshPartitions('late')
    // the first start checks and records every database
    const first = await createPartitionedPostgresStorage({ partitions: parts })
    await first.close()
    const docOn = (id: string, tag: string): string => {
      for (let i = 0; ; i++) if (homePartition(`late/${tag}-${i}`, IDS) === id) return `late/${tag}-${i}`
    }
    servers[2]!.stopServer()
    let store: PartitionedPostgresStorage | null = null
    try {
      store = await createPartitionedPostgresStorage({ partitions: parts })
      expect(store.ready).toBe(true)
      expect(store.partitions().map(p => p.state)).toEqual(['open', 'open', 'waiting'])
      await store.append(docOn('p1', 'a'), { update: text('one') })
      await store.append(docOn('p2', 'b'), { update: text('two') })
      await expect(store.load(docOn('p3', 'c'))).rejects.toMatchObject({ code: 'CONCORD_ERR_STORAGE_UNAVAILABLE', message: expect.stringMatching(/partition "p3" .* is not reachable yet/) })
      await expect(store.append(docOn('p3', 'c'), { update: text('three') })).rejects.toMatchObject({ code: 'CONCORD_ERR_STORAGE_UNAVAILABLE' })
      // a listing that would miss a partition fails rather than look complete
      await expect(store.list()).rejects.toThrow(/p3/)
      await store.ping()
    } finally {
      servers[2]!.start()
    }
    await waitFor(() => store!.partitions()[2]!.state === 'open', { timeoutMs: 20_000, message: 'p3 taken in' })
    await store.append(docOn('p3', 'c'), { update: text('three') })
    expect((await store.list()).map(d => d.name).sort()).toEqual([docOn('p1', 'a'), docOn('p2', 'b'), docOn('p3', 'c')].sort())
    await store.close()

    // the primary (p1) down at the start: revocations cannot be read, so no document is served until it answers
    servers[0]!.stopServer()
    let ready = false
    try {
      store = await createPartitionedPostgresStorage({ partitions: parts })
      store.beforeReady(async () => {
        await store!.accessStore().load()
        ready = true
      })
      expect(store.ready).toBe(false)
      await expect(store.load(docOn('p2', 'b'))).rejects.toThrow(/primary partition "p1" is not reachable yet/)
      await expect(store.ping()).rejects.toMatchObject({ code: 'CONCORD_ERR_STORAGE_UNAVAILABLE' })
    } finally {
      servers[0]!.start()
    }
    await waitFor(() => store!.ready, { timeoutMs: 20_000, message: 'the primary taken in' })
    expect(ready).toBe(true)
    expect((await store.load(docOn('p2', 'b'))).updates).toHaveLength(1)

    // the primary down once the store is open: the access state cannot change (a retryable error), documents elsewhere go on
    servers[0]!.stopServer()
    try {
      await expect(store.accessStore().update!(s => { s.revokedUsers.push({ tenant: 'late', userId: 'mallory', at: 1 }) }))
        .rejects.toMatchObject({ code: 'CONCORD_ERR_STORAGE_UNAVAILABLE', message: expect.stringMatching(/primary partition "p1" is not reachable/) })
      await store.append(docOn('p2', 'b'), { update: text('more') })
      expect((await store.load(docOn('p2', 'b'))).updates).toHaveLength(2)
      await store.ping()
    } finally {
      servers[0]!.start()
    }
    await store.close()
  })
})

const BIN = fileURLToPath(new URL('../packages/server/bin/concord.js', import.meta.url))
const { procs, clients, dirs } = cleanupAfterEach()

/** `--store p1=…,p2=…,p3=…` */
const storeArg = (parts: StorePartition[]): string => parts.map(p => `${p.id}=${p.connectionString}`).join(',')

async function serve(parts: StorePartition[], extra: string[] = []): Promise<ServerProcess> {
  const data = mkdtempSync(join(tmpdir(), 'concord-partitions-node-'))
  dirs.push(data)
  const proc = await spawnServer(['--store', storeArg(parts), '--data', data, '--port', '0', '--rate-limit-messages', '1000000', ...extra])
  procs.push(proc)
  return proc
}

/** Run the CLI to completion (asynchronously), at most 60 s. */
function concord(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.on('exit', code => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('postgres partitions: a server on them', () => {
  it('keeps acking the documents of the live partitions while one PostgreSQL server is down, refuses to open its documents with a retryable error, and loses nothing once it is back', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 1_000_000)
    const victimIndex = seed % 3
    console.log(`postgres partitions outage: seed ${seed}, crashing the server of ${IDS[victimIndex]} (SEED=${seed} reproduces it)`)
    const parts = await freshPartitions('outage')
    const node = await serve(parts, ['--compact-every-updates', '40'])
    const http = node.url.replace('ws:', 'http:')
    // two documents per partition, named from the seed
    const docs: string[] = []
    for (let i = 0; docs.length < 6; i++) {
      const name = `acme/outage-${seed}-${i}`
      if (docs.filter(d => homePartition(d, IDS) === homePartition(name, IDS)).length < 2) docs.push(name)
    }
    const homeOf = (doc: string): string => homePartition(doc, IDS)
    const victim = IDS[victimIndex]!
    const writer = connectClient(node.url, { reconnect: { minDelayMs: 50, maxDelayMs: 300 } })
    const reader = connectClient(node.url, { reconnect: { minDelayMs: 50, maxDelayMs: 300 } })
    clients.push(writer, reader)
    const w = docs.map(d => writer.open(d))
    const r = docs.map(d => reader.open(d))
    await Promise.all([...w, ...r].map(h => h.whenSynced()))
    const acks = docs.map(() => 0)
    w.forEach((h, i) => h.on('ack', seqs => { acks[i]! += seqs.length }))
    const typed = docs.map(() => 0)
    let typing = true
    const typist = (async () => {
      while (typing) {
        w.forEach((h, i) => h.doc.getArray<number>('items').push([typed[i]!++]))
        // pacing the typing (not synchronisation): about 50 edits a second per document
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    })()
    await waitFor(() => acks.every(n => n >= 20), { timeoutMs: 20_000, message: 'every document acked before the crash' })

    const down = servers[victimIndex]!
    await crashPostgres(down)
    let restarted = false
    try {
      const ackedAtCrash = [...acks]
      // the two live partitions' documents keep being acked (durable in their PostgreSQL)
      await waitFor(() => docs.every((d, i) => homeOf(d) === victim || acks[i]! >= ackedAtCrash[i]! + 40), {
        timeoutMs: 30_000, message: () => `acks on the live partitions (${docs.map((d, i) => `${homeOf(d)}: ${ackedAtCrash[i]} -> ${acks[i]}`).join(', ')})`,
      })
      // while the dead partition's documents are not: their edits pile up, unacked (and are relayed live)
      await waitFor(() => docs.every((d, i) => homeOf(d) !== victim || w[i]!.pendingCount >= 40), { timeoutMs: 30_000, message: 'edits pending on the dead partition' })
      for (const [i, d] of docs.entries()) if (homeOf(d) !== victim) expect(w[i]!.pendingCount, d).toBeLessThan(40)
      // a document of the dead partition cannot be opened: the coded, retryable error of a PostgreSQL that is down
      const late = connectClient(node.url, { reconnect: { minDelayMs: 50, maxDelayMs: 300 } })
      clients.push(late)
      let lateName = ''
      for (let i = 0; lateName === ''; i++) if (homeOf(`acme/late-${seed}-${i}`) === victim) lateName = `acme/late-${seed}-${i}`
      const lateHandle: DocHandle = late.open(lateName)
      const refused = await new Promise<{ code: string }>(resolve => lateHandle.once('error', resolve))
      expect(refused.code).toBe('CONCORD_ERR_DOC_LOAD_FAILED')
      expect(ERROR_CODES[refused.code as ErrorCode].retryable).toBe(true)
      // written offline meanwhile: sent once the document opens
      lateHandle.doc.getArray<number>('items').push([42])
      // one partition down does not make the node unready (the load balancer would drain every node)
      expect((await fetch(`${http}/readyz`)).status).toBe(200)

      down.start()
      restarted = true
      typing = false
      await typist
      await waitFor(() => w.every(h => h.pendingCount === 0) && lateHandle.pendingCount === 0, {
        timeoutMs: 60_000, message: () => `every edit acked after the restart (pending ${w.map(h => h.pendingCount).join(', ')}, late ${lateHandle.pendingCount})`,
      })
      console.log(`postgres partitions outage: typed ${typed.join(', ')} per document; ${docs.map((d, i) => `${homeOf(d)} ${acks[i]}`).join(', ')} acks`)
      // every client converges
      await waitFor(() => r.every((h, i) => JSON.stringify(h.doc.getArray('items').toArray()) === JSON.stringify(w[i]!.doc.getArray('items').toArray())), {
        timeoutMs: 30_000, message: 'readers converge with the writer',
      })
      // every update typed is stored once, on its document's partition only
      const held = await Promise.all(parts.map(p => documentsIn(p.connectionString)))
      for (const [i, d] of docs.entries()) {
        const home = parts.find(p => p.id === homeOf(d))!
        const items = (await storedDocument(home.connectionString, d)).getArray<number>('items').toArray()
        expect(items.length, d).toBe(typed[i])
        expect([...items].sort((a, b) => a - b), d).toEqual(Array.from({ length: typed[i]! }, (_, k) => k))
        expect(parts.filter((_, k) => held[k]!.has(d)).map(p => p.id), d).toEqual([home.id])
      }
      const lateHome = parts.find(p => p.id === victim)!
      expect((await storedDocument(lateHome.connectionString, lateName)).getArray<number>('items').toArray()).toEqual([42])
    } finally {
      if (!restarted) down.start()
      typing = false
      await typist
    }
  }, 180_000)

  it('a node given partitions that disagree with the databases refuses to start and says why; export and import go over every partition', async () => {
    const parts = await freshPartitions('cli')
    const node = await serve(parts)
    const client = connectClient(node.url)
    clients.push(client)
    const names = Array.from({ length: 30 }, (_, i) => `acme/cli-${i}`)
    const handles = names.map(n => client.open(n))
    handles.forEach((h, i) => h.doc.getText('t').insert(0, names[i]!))
    await waitFor(() => handles.every(h => h.status === 'synced' && h.pendingCount === 0), { message: 'written' })
    node.child.kill('SIGTERM')
    expect((await node.exited).code).toBe(0)

    // p1 and p2 swapped
    const swapped = [{ ...parts[0]!, connectionString: parts[1]!.connectionString }, { ...parts[1]!, connectionString: parts[0]!.connectionString }, parts[2]!]
    const data = mkdtempSync(join(tmpdir(), 'concord-partitions-refused-'))
    dirs.push(data)
    const refused = await concord(['serve', '--store', storeArg(swapped), '--data', data, '--auth', 'none', '--port', '0'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/concord: the database at postgres:\/\/\S+ is partition "p2" of \{p1, p2, p3\}, but this node names it "p1"/)
    expect(refused.stderr).toContain('CONCORD_ERR_CONFIG_INVALID')
    // one partition left out
    const fewer = await concord(['serve', '--store-partition', `p1=${parts[0]!.connectionString}`, '--store-partition', `p2=${parts[1]!.connectionString}`, '--data', data, '--auth', 'none', '--port', '0'])
    expect(fewer.code).toBe(2)
    expect(fewer.stderr).toMatch(/belongs to the partitions \{p1, p2, p3\}, but this node is configured with \{p1, p2\}/)

    // export reads every partition (given in any order); import places each document on its partition
    const archive = join(data, 'all.ndjson.gz')
    const exported = await concord(['export', '--store', storeArg([parts[2]!, parts[0]!, parts[1]!]), '--out', archive])
    expect(exported.code, exported.stderr).toBe(0)
    expect(exported.stderr).toMatch(/concord export: 30 documents/)
    expect(readFileSync(archive).byteLength).toBeGreaterThan(0)
    const target = await freshPartitions('cli_import')
    const imported = await concord(['import', '--store', storeArg(target), '--in', archive])
    expect(imported.code, imported.stderr).toBe(0)
    expect(imported.stdout).toMatch(/concord import: 30 documents/)
    const held = await Promise.all(target.map(p => documentsIn(p.connectionString)))
    for (const n of names) {
      const home = homePartition(n, IDS)
      expect(target.filter((_, k) => held[k]!.has(n)).map(p => p.id), n).toEqual([home])
      expect((await storedDocument(target.find(p => p.id === home)!.connectionString, n)).getText('t').toString()).toBe(n)
    }
  }, 120_000)
})

describe('postgres partitions: adding one', () => {
  it('concord repartition moves only the documents the new partition wins, with their log, versions and authors; the old set is refused afterwards', async () => {
    const parts = await freshPartitions('grow')
    const store = await createPartitionedPostgresStorage({ partitions: parts })
    const names = Array.from({ length: 60 }, (_, i) => `grow/doc-${i}`)
    for (const [i, name] of names.entries()) {
      const doc = new Y.Doc()
      doc.clientID = 1_000 + i
      const updates: Uint8Array[] = []
      doc.on('update', (u: Uint8Array) => updates.push(u))
      doc.getText('t').insert(0, name)
      doc.getText('t').insert(name.length, '!')
      const first = await store.append(name, { update: updates[0]!, userId: 'ann', at: 1_000 + i })
      if (i % 2 === 0) await store.compact(name, updates[0]!, first)
      await store.append(name, { update: updates[1]!, userId: 'bob', at: 2_000 + i })
      await store.recordAuthors(name, [{ client: doc.clientID, userId: 'ann' }])
      if (i % 3 === 0) await store.saveVersion(name, { id: 'v1', kind: 'named', name: 'draft', createdAt: 5_000, createdBy: 'ann', authors: ['ann'], seq: first, snapshot: updates[0]! })
    }
    await store.close()
    const p4 = { id: 'p4', connectionString: await createDatabase(servers[0]!, 'grow_p4') }
    const grown = [...parts, p4]
    const newIds = grown.map(p => p.id)
    const movers = names.filter(n => homePartition(n, newIds) !== homePartition(n, IDS))
    expect(movers.every(n => homePartition(n, newIds) === 'p4')).toBe(true)
    console.log(`postgres partitions repartition: ${movers.length} of ${names.length} documents change partition`)
    expect(movers.length).toBeGreaterThan(3)

    // nodes given the new set before the move are refused
    await expect(createPartitionedPostgresStorage({ partitions: grown })).rejects.toThrow(/belongs to the partitions \{p1, p2, p3\}, but this node is configured with \{p1, p2, p3, p4\}/)
    // a run interrupted after marking a database: no node starts on it, with the old set or the new one
    const marked = (await readPartitionRecord(parts[1]!.connectionString))!
    await writePartitionRecord(parts[1]!.connectionString, { ...marked, next: newIds })
    await expect(createPartitionedPostgresStorage({ partitions: parts })).rejects.toThrow(/partition "p2" .* is being repartitioned from \{p1, p2, p3\} to \{p1, p2, p3, p4\}: run concord repartition/)
    const run = await concord(['repartition', '--store', storeArg(grown), '--quiet'])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain(`concord repartition: {p1, p2, p3} -> {p1, p2, p3, p4} (primary p1): ${movers.length} of ${names.length} documents moved`)

    const held = await Promise.all(grown.map(p => documentsIn(p.connectionString)))
    const after = await createPartitionedPostgresStorage({ partitions: grown })
    try {
      for (const [i, name] of names.entries()) {
        expect(grown.filter((_, k) => held[k]!.has(name)).map(p => p.id), name).toEqual([homePartition(name, newIds)])
        const loaded = await after.load(name)
        const doc = new Y.Doc()
        if (loaded.snapshot) Y.applyUpdate(doc, loaded.snapshot)
        for (const u of loaded.updates) Y.applyUpdate(doc, u.update)
        expect(doc.getText('t').toString(), name).toBe(`${name}!`)
        // the log's entries keep their writers and times
        expect(loaded.updates.map(u => [u.userId, u.at]), name).toEqual(i % 2 === 0 ? [['bob', 2_000 + i]] : [['ann', 1_000 + i], ['bob', 2_000 + i]])
        expect([...(await after.loadAuthors(name))], name).toEqual([[1_000 + i, 'ann']])
        const versions = await after.listVersions(name)
        expect(versions.map(v => [v.id, v.name, v.createdBy]), name).toEqual(i % 3 === 0 ? [['v1', 'draft', 'ann']] : [])
      }
      expect((await after.list()).length).toBe(names.length)
    } finally {
      await after.close()
    }
    // the old set no longer starts; running it again moves nothing
    await expect(createPartitionedPostgresStorage({ partitions: parts })).rejects.toThrow(/configured with \{p1, p2, p3\}/)
    const again = await concord(['repartition', '--store', storeArg(grown), '--quiet'])
    expect(again.stdout).toContain(`0 of ${names.length} documents moved`)
    // removing a partition is not what it does
    const shrink = await concord(['repartition', '--store', storeArg(parts)])
    expect(shrink.code).toBe(2)
    expect(shrink.stderr).toMatch(/leave out "p4".*it does not remove them/)
  }, 120_000)
})
