import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import * as Y from 'yjs'
import type { StorageAdapter } from './storage-adapter.js'

/**
 * The shared contract every storage adapter passes. Call it from a test file:
 *
 *   storageContract('sqlite', async () => createSqliteStorage({ dataDir }), { reopen })
 *
 * `reopen`, when given, closes and opens the same store again, to check durability.
 */
export interface ContractFactory {
  create(): Promise<StorageAdapter>
  /** Open a second adapter on the same underlying store (after the first was closed). */
  reopen?(): Promise<StorageAdapter>
  cleanup?(): Promise<void>
  /** The store is shared by several nodes and implements compaction leases. */
  leases?: boolean
}

function textUpdate(doc: Y.Doc, fn: (t: Y.Text) => void): Uint8Array {
  let out: Uint8Array | null = null
  const h = (u: Uint8Array): void => { out = u }
  doc.on('update', h)
  doc.transact(() => fn(doc.getText('t')))
  doc.off('update', h)
  if (out === null) throw new Error('no update produced')
  return out
}

function replay(loaded: { snapshot: Uint8Array | null; updates: { update: Uint8Array }[] }): string {
  const doc = new Y.Doc()
  if (loaded.snapshot) Y.applyUpdate(doc, loaded.snapshot)
  for (const u of loaded.updates) Y.applyUpdate(doc, u.update)
  return doc.getText('t').toString()
}

export function storageContract(name: string, factory: ContractFactory): void {
  describe(`storage contract: ${name}`, () => {
    let store: StorageAdapter

    beforeEach(async () => {
      store = await factory.create()
    })
    afterEach(async () => {
      await store.close()
      await factory.cleanup?.()
    })

    it('loads an unknown document as empty', async () => {
      const loaded = await store.load('nope')
      expect(loaded.snapshot).toBeNull()
      expect(loaded.snapshotSeq).toBe(0)
      expect(loaded.updates).toEqual([])
    })

    it('appends with strictly increasing seqs per document and loads them in order with who and when', async () => {
      const doc = new Y.Doc()
      const u1 = textUpdate(doc, t => t.insert(0, 'a'))
      const u2 = textUpdate(doc, t => t.insert(1, 'b'))
      const u3 = textUpdate(doc, t => t.insert(2, 'c'))
      const before = Date.now()
      const seqs = await Promise.all([
        store.append('d', { update: u1, userId: 'alice', at: before }),
        store.append('other', { update: u1 }),
        store.append('d', { update: u2, userId: null }),
        store.append('d', { update: u3, userId: 'bob' }),
      ])
      expect(seqs[2]!).toBeGreaterThan(seqs[0]!)
      expect(seqs[3]!).toBeGreaterThan(seqs[2]!)
      const loaded = await store.load('d')
      expect(loaded.updates.map(u => u.seq)).toEqual([seqs[0], seqs[2], seqs[3]])
      expect(loaded.updates.map(u => u.userId)).toEqual(['alice', null, 'bob'])
      expect(loaded.updates[0]!.at).toBe(before)
      expect(loaded.updates[1]!.at).toBeGreaterThanOrEqual(before)
      expect(replay(loaded)).toBe('abc')
      expect(replay(await store.load('other'))).toBe('a')
    })

    it('group-commits appends enqueued in one turn and flush() waits for them', async () => {
      const doc = new Y.Doc()
      let settled = 0
      for (let i = 0; i < 200; i++) {
        void store.append('g', { update: textUpdate(doc, t => t.insert(t.length, 'x')) }).then(() => { settled++ })
      }
      await store.flush()
      await Promise.resolve() // let the per-append callbacks queued before flush resolved run
      expect(settled).toBe(200)
      expect((await store.load('g')).updates).toHaveLength(200)
    })

    it('compacts a prefix into a snapshot: load reads the snapshot and only the tail', async () => {
      const doc = new Y.Doc()
      const seqs: number[] = []
      for (let i = 0; i < 10; i++) seqs.push(await store.append('c', { update: textUpdate(doc, t => t.insert(t.length, String(i))) }))
      // snapshot covering the first 6 updates only
      const partial = new Y.Doc()
      for (const u of (await store.load('c')).updates.slice(0, 6)) Y.applyUpdate(partial, u.update)
      await store.compact('c', Y.encodeStateAsUpdate(partial), seqs[5]!)
      const loaded = await store.load('c')
      expect(loaded.snapshotSeq).toBe(seqs[5])
      expect(loaded.updates.map(u => u.seq)).toEqual(seqs.slice(6))
      expect(replay(loaded)).toBe('0123456789')
      // an older snapshot never replaces a newer one
      await store.compact('c', new Uint8Array([0, 0]), seqs[2]!)
      const again = await store.load('c')
      expect(again.snapshotSeq).toBe(seqs[5])
      expect(replay(again)).toBe('0123456789')
      // appends after compaction continue past the snapshot
      const next = await store.append('c', { update: textUpdate(doc, t => t.insert(t.length, '!')) })
      expect(next).toBeGreaterThan(seqs[9]!)
      expect(replay(await store.load('c'))).toBe('0123456789!')
    })

    it('lists documents with their size and deletes them', async () => {
      const doc = new Y.Doc()
      await store.append('x', { update: textUpdate(doc, t => t.insert(0, 'x')) })
      await store.append('y', { update: textUpdate(doc, t => t.insert(0, 'y')) })
      const list = await store.list()
      expect(list.map(d => d.name).sort()).toEqual(['x', 'y'])
      expect(list.every(d => d.bytes > 0 && d.tailUpdates === 1 && d.lastSeq > 0)).toBe(true)
      await store.delete('x')
      expect((await store.list()).map(d => d.name)).toEqual(['y'])
      expect(replay(await store.load('x'))).toBe('')
    })

    if (factory.leases) it('leases compaction to one holder at a time, until it is released or expires', async () => {
      expect(store.lease).toBeTypeOf('function')
      if (store.lease === undefined || store.releaseLease === undefined) return
      expect(await store.lease('l', 'node-a', 10_000)).toBe(true)
      expect(await store.lease('l', 'node-b', 10_000)).toBe(false)
      expect(await store.lease('l', 'node-a', 10_000)).toBe(true) // renewal by the holder
      expect(await store.lease('other', 'node-b', 10_000)).toBe(true) // per document
      await store.releaseLease('l', 'node-b') // not the holder: no effect
      expect(await store.lease('l', 'node-b', 10_000)).toBe(false)
      await store.releaseLease('l', 'node-a')
      expect(await store.lease('l', 'node-b', 150)).toBe(true)
      expect(await store.lease('l', 'node-a', 10_000)).toBe(false)
      // a holder that never comes back loses the lease when it expires
      await new Promise(resolve => setTimeout(resolve, 300))
      expect(await store.lease('l', 'node-a', 10_000)).toBe(true)
    })

    it('keeps versions apart from the log: compaction leaves them, retention prunes old checkpoints but not named versions', async () => {
      const doc = new Y.Doc()
      const seqs: number[] = []
      for (let i = 0; i < 6; i++) seqs.push(await store.append('h', { update: textUpdate(doc, t => t.insert(t.length, String(i))) }))
      const at = (text: string): Uint8Array => {
        const d = new Y.Doc()
        d.getText('t').insert(0, text)
        return Y.encodeStateAsUpdate(d)
      }
      await store.saveVersion('h', { id: 'v1', kind: 'auto', name: null, createdAt: 1_000, createdBy: null, authors: ['ann'], seq: seqs[2]!, snapshot: at('012') })
      await store.saveVersion('h', { id: 'v2', kind: 'named', name: 'draft', createdAt: 2_000, createdBy: 'bob', authors: ['ann', 'bob'], seq: seqs[4]!, snapshot: at('01234') })
      await store.saveVersion('h', { id: 'v3', kind: 'auto', name: null, createdAt: 3_000, createdBy: null, authors: [], seq: seqs[5]!, snapshot: at('012345') })
      await store.saveVersion('other', { id: 'v1', kind: 'auto', name: null, createdAt: 1_000, createdBy: null, authors: [], seq: 1, snapshot: at('x') })
      // compaction of the whole log does not touch them
      await store.compact('h', Y.encodeStateAsUpdate(doc), seqs[5]!)
      const listed = await store.listVersions('h')
      expect(listed.map(v => [v.id, v.kind, v.name, v.createdBy, v.authors, v.createdAt])).toEqual([
        ['v1', 'auto', null, null, ['ann'], 1_000], ['v2', 'named', 'draft', 'bob', ['ann', 'bob'], 2_000], ['v3', 'auto', null, null, [], 3_000],
      ])
      expect(listed.every(v => v.bytes > 0)).toBe(true)
      expect(listed[1]!.seq).toBe(seqs[4])
      const v2 = await store.loadVersion('h', 'v2')
      const shown = new Y.Doc()
      Y.applyUpdate(shown, v2!.snapshot)
      expect(shown.getText('t').toString()).toBe('01234')
      expect(await store.loadVersion('h', 'nope')).toBe(null)
      // retention: checkpoints before 2,500 go, named versions stay
      expect(await store.pruneVersions('h', 2_500)).toBe(1)
      expect((await store.listVersions('h')).map(v => v.id)).toEqual(['v2', 'v3'])
      expect((await store.listVersions('other')).map(v => v.id)).toEqual(['v1'])
    })

    it('stores a snapshot once per document and content: versions of an unchanged document refer to it, and pruning or deleting one keeps what others refer to', async () => {
      const textOf = (snapshot: Uint8Array): string => {
        const d = new Y.Doc()
        Y.applyUpdate(d, snapshot)
        return d.getText('t').toString()
      }
      const big = (text: string): Uint8Array => {
        const d = new Y.Doc()
        d.getText('t').insert(0, text)
        return Y.encodeStateAsUpdate(d)
      }
      const a = big('a'.repeat(50_000))
      const b = big('b'.repeat(30_000))
      const version = (id: string, kind: 'auto' | 'named', createdAt: number, snapshot: Uint8Array): Parameters<StorageAdapter['saveVersion']>[1] =>
        ({ id, kind, name: kind === 'named' ? id : null, createdAt, createdBy: null, authors: [], seq: 7, snapshot })
      // three versions of the same state: one copy of the bytes
      await store.saveVersion('s', version('v1', 'auto', 1_000, a))
      await store.saveVersion('s', version('v2', 'named', 2_000, a.slice()))
      await store.saveVersion('s', version('v3', 'named', 3_000, a.slice()))
      expect(await store.versionStorage('s')).toEqual({ versions: 3, snapshots: 1, bytes: a.length })
      expect((await store.listVersions('s')).map(v => v.bytes)).toEqual([a.length, a.length, a.length])
      await store.saveVersion('s', version('v4', 'auto', 4_000, b))
      expect(await store.versionStorage('s')).toEqual({ versions: 4, snapshots: 2, bytes: a.length + b.length })
      // the same content in another document is that document's own copy
      await store.saveVersion('other', version('w1', 'named', 1_000, a))
      expect(await store.versionStorage('other')).toEqual({ versions: 1, snapshots: 1, bytes: a.length })
      // pruning the checkpoint that came first leaves the bytes the named versions refer to
      expect(await store.pruneVersions('s', 2_500)).toBe(1)
      expect(textOf((await store.loadVersion('s', 'v2'))!.snapshot)).toBe('a'.repeat(50_000))
      expect(await store.versionStorage('s')).toEqual({ versions: 3, snapshots: 2, bytes: a.length + b.length })
      // deleting one named version leaves the other's bytes; deleting the last one frees them
      expect(await store.deleteVersion('s', 'v2')).toBe(true)
      expect(await store.deleteVersion('s', 'v2')).toBe(false)
      expect(await store.deleteVersion('s', 'nope')).toBe(false)
      const v3 = await store.loadVersion('s', 'v3')
      expect(v3!.version).toMatchObject({ id: 'v3', kind: 'named', bytes: a.length })
      expect(textOf(v3!.snapshot)).toBe('a'.repeat(50_000))
      expect(await store.deleteVersion('s', 'v3')).toBe(true)
      expect(await store.versionStorage('s')).toEqual({ versions: 1, snapshots: 1, bytes: b.length })
      expect((await store.listVersions('s')).map(v => v.id)).toEqual(['v4'])
      // saving a version again under its id replaces it, and lets go of its old snapshot
      await store.saveVersion('s', version('v4', 'auto', 4_000, a))
      expect(await store.versionStorage('s')).toEqual({ versions: 1, snapshots: 1, bytes: a.length })
      expect(textOf((await store.loadVersion('s', 'v4'))!.snapshot)).toBe('a'.repeat(50_000))
      expect(await store.versionStorage('other')).toEqual({ versions: 1, snapshots: 1, bytes: a.length })
      if (factory.reopen) {
        await store.close()
        store = await factory.reopen()
        expect(await store.versionStorage('s')).toEqual({ versions: 1, snapshots: 1, bytes: a.length })
        expect(textOf((await store.loadVersion('other', 'w1'))!.snapshot)).toBe('a'.repeat(50_000))
      }
      await store.delete('other')
      expect(await store.versionStorage('other')).toEqual({ versions: 0, snapshots: 0, bytes: 0 })
      expect(await store.versionStorage('s')).toEqual({ versions: 1, snapshots: 1, bytes: a.length })
    })

    it('records who writes with which Yjs client id (the first writer keeps it), and deleting a document removes its history', async () => {
      await store.recordAuthors('a', [{ client: 1, userId: 'ann' }, { client: 2, userId: 'bob' }])
      await store.recordAuthors('a', [{ client: 1, userId: 'mallory' }, { client: 3, userId: 'cy' }])
      await store.recordAuthors('b', [{ client: 1, userId: 'zed' }])
      expect([...(await store.loadAuthors('a')).entries()].sort()).toEqual([[1, 'ann'], [2, 'bob'], [3, 'cy']])
      expect([...(await store.loadAuthors('b')).entries()]).toEqual([[1, 'zed']])
      const doc = new Y.Doc()
      await store.append('a', { update: textUpdate(doc, t => t.insert(0, 'x')) })
      await store.saveVersion('a', { id: 'v', kind: 'named', name: 'n', createdAt: 1, createdBy: null, authors: [], seq: 1, snapshot: new Uint8Array([0, 0]) })
      await store.delete('a')
      expect((await store.loadAuthors('a')).size).toBe(0)
      expect(await store.listVersions('a')).toEqual([])
      expect((await store.loadAuthors('b')).size).toBe(1)
    })

    it('refuses work after close', async () => {
      await store.close()
      await expect(store.load('d')).rejects.toThrow()
      await expect(store.append('d', { update: new Uint8Array([0, 0]) })).rejects.toThrow()
      store = await factory.create() // for afterEach
    })

    if (factory.reopen) {
      const reopen = factory.reopen
      it('keeps acked appends and snapshots across close and reopen', async () => {
        const doc = new Y.Doc()
        for (let i = 0; i < 5; i++) await store.append('p', { update: textUpdate(doc, t => t.insert(t.length, String(i))), userId: 'u' })
        const seq = (await store.load('p')).updates[2]!.seq
        const partial = new Y.Doc()
        for (const u of (await store.load('p')).updates.slice(0, 3)) Y.applyUpdate(partial, u.update)
        await store.compact('p', Y.encodeStateAsUpdate(partial), seq)
        await store.close()
        store = await reopen()
        const loaded = await store.load('p')
        expect(loaded.snapshotSeq).toBe(seq)
        expect(loaded.updates).toHaveLength(2)
        expect(replay(loaded)).toBe('01234')
      })
    }
  })
}
