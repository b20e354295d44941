import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { getPriority, tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import * as Y from 'yjs'
import { storageContract } from './storage-contract.js'
import { createMemoryStorage } from './memory-storage.js'
import { createSqliteStorage } from './sqlite-storage.js'

storageContract('memory', { create: async () => createMemoryStorage(), leases: true })
storageContract('memory with slow commits', { create: async () => createMemoryStorage({ commitDelayMs: 5 }) })

for (const thread of ['worker', 'main'] as const) {
  let dir = ''
  storageContract(`sqlite (${thread} thread)`, {
    create: async () => {
      dir = mkdtempSync(join(tmpdir(), 'concord-sqlite-'))
      return createSqliteStorage({ dataDir: dir, thread })
    },
    reopen: async () => createSqliteStorage({ dataDir: dir, thread }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  })
}

describe('sqlite storage: schema migration', () => {
  it('moves the versions of a version-2 database to shared snapshots: equal ones stored once, every version still readable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'concord-sqlite-v2-'))
    try {
      // a database as the server of schema version 2 left it: each version a whole copy
      const old = new Database(join(dir, 'concord.db'))
      old.exec(`CREATE TABLE updates (seq INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL, data BLOB NOT NULL, user_id TEXT, at INTEGER NOT NULL);
        CREATE INDEX updates_doc_seq ON updates (doc, seq);
        CREATE TABLE snapshots (doc TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE versions (doc TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT, created_at INTEGER NOT NULL, created_by TEXT,
          authors TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc, id)) WITHOUT ROWID;
        CREATE INDEX versions_doc_created ON versions (doc, created_at);
        CREATE TABLE authors (doc TEXT NOT NULL, client INTEGER NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (doc, client)) WITHOUT ROWID;`)
      old.pragma('user_version = 2')
      const state = (text: string): Uint8Array => {
        const d = new Y.Doc()
        d.getText('t').insert(0, text)
        return Y.encodeStateAsUpdate(d)
      }
      // each made once: a new Y.Doc has a random client id, whose varint length varies
      const same = state('x'.repeat(40_000))
      const other = state('other')
      const insert = old.prepare('INSERT INTO versions (doc, id, kind, name, created_at, created_by, authors, seq, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      for (let i = 1; i <= 5; i++) insert.run('d', `n${i}`, 'named', `copy ${i}`, i * 1_000, 'mallory', '["mallory"]', 3, same)
      insert.run('d', 'c1', 'auto', null, 10_000, null, '[]', 4, other)
      old.close()

      const store = createSqliteStorage({ dataDir: dir, thread: 'main' })
      try {
        expect(await store.versionStorage('d')).toEqual({ versions: 6, snapshots: 2, bytes: same.length + other.length })
        const listed = await store.listVersions('d')
        expect(listed.map(v => [v.id, v.kind, v.name, v.createdBy, v.authors, v.seq, v.bytes])).toEqual([
          ...[1, 2, 3, 4, 5].map(i => [`n${i}`, 'named', `copy ${i}`, 'mallory', ['mallory'], 3, same.length]),
          ['c1', 'auto', null, null, [], 4, other.length],
        ])
        const loaded = await store.loadVersion('d', 'n4')
        const doc = new Y.Doc()
        Y.applyUpdate(doc, loaded!.snapshot)
        expect(doc.getText('t').toString()).toBe('x'.repeat(40_000))
        // and the migrated store keeps working: a new version of the same state adds no bytes
        await store.saveVersion('d', { id: 'n6', kind: 'named', name: 'again', createdAt: 20_000, createdBy: null, authors: [], seq: 5, snapshot: same })
        expect(await store.versionStorage('d')).toEqual({ versions: 7, snapshots: 2, bytes: same.length + other.length })
      } finally {
        await store.close()
      }
      const check = new Database(join(dir, 'concord.db'), { readonly: true })
      expect(check.pragma('user_version', { simple: true })).toBe(3)
      check.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('sqlite storage: the worker thread', () => {
  /** Nice values of this process's threads, read from /proc (Linux). */
  const threadNices = (): number[] => readdirSync('/proc/self/task').map(tid => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
  })

  // (a process already at nice 19 cannot show a thread lowered)
  it.runIf(process.platform === 'linux' && getPriority() < 19)('runs at a lower priority than the event loop (nice + 10 by default, as configured, or unchanged with 0)', async () => {
    const base = getPriority()
    for (const [workerNice, expected] of [[undefined, Math.min(19, base + 10)], [3, Math.min(19, base + 3)], [0, null]] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'concord-sqlite-nice-'))
      const before = threadNices().filter(n => n !== base).length
      const store = createSqliteStorage({ dataDir: dir, ...(workerNice === undefined ? {} : { workerNice }) })
      try {
        // the worker has opened the database once this answers
        await store.append('d', { update: new Uint8Array([0, 0]), userId: null })
        const lowered = threadNices().filter(n => n !== base)
        if (expected === null) expect(lowered.length).toBe(before)
        else expect(lowered).toContain(expected)
        // the calling thread keeps its priority, and the worker still commits
        expect(getPriority()).toBe(base)
        expect((await store.load('d')).updates.length).toBe(1)
      } finally {
        await store.close()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  })
})
