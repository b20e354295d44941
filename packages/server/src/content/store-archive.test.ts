import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ConcordError } from '@concord/protocol'
import { createMemoryStorage } from '../storage/memory-storage.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import { foldState } from '../storage/fold.js'
import { documentToText } from './document-export.js'
import { checkArchive, exportStore, importStore, type ArchiveSource } from './store-archive.js'

function edit(client: number, text: string, base?: Uint8Array): Uint8Array {
  const doc = new Y.Doc()
  doc.clientID = client
  if (base !== undefined) Y.applyUpdate(doc, base)
  const before = Y.encodeStateVector(doc)
  doc.getText('default').insert(doc.getText('default').length, text)
  return Y.encodeStateAsUpdate(doc, before)
}

async function textOf(storage: StorageAdapter, name: string): Promise<string | null> {
  const loaded = await storage.load(name)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, foldState(loaded.snapshot, loaded.updates.map(u => u.update)))
  return documentToText(doc)
}

/** A store with two documents: one compacted with versions, one only in the log (its authors rows not written yet). */
async function filled(): Promise<StorageAdapter> {
  const s = createMemoryStorage()
  const a1 = edit(11, 'ann wrote this. ')
  await s.append('acme/plan', { update: a1, userId: 'ann' })
  const b1 = edit(22, 'bob added that.', a1)
  const seq = await s.append('acme/plan', { update: b1, userId: 'bob' })
  await s.recordAuthors('acme/plan', [{ client: 11, userId: 'ann' }, { client: 22, userId: 'bob' }])
  await s.saveVersion('acme/plan', { id: 'v-first', kind: 'named', name: 'first draft', createdAt: 1000, createdBy: 'ann', authors: ['ann'], seq: 1, snapshot: foldState(null, [a1]) })
  await s.compact('acme/plan', foldState(null, [a1, b1]), seq)
  await s.saveVersion('acme/plan', { id: 'v-auto', kind: 'auto', name: null, createdAt: 2000, createdBy: null, authors: ['bob'], seq, snapshot: foldState(null, [a1, b1]) })
  await s.append('acme/notes', { update: edit(33, 'carol only'), userId: 'carol' })
  return s
}

async function archiveOf(storage: StorageAdapter): Promise<{ text: string; open: ArchiveSource }> {
  let text = ''
  for await (const line of exportStore(storage, { concordVersion: '0.1.0' }).lines) text += line
  // in uneven chunks, as a file stream would give them
  const bytes = Buffer.from(text, 'utf8')
  return { text, open: async function* () { for (let i = 0; i < bytes.length; i += 37) yield bytes.subarray(i, i + 37) } }
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    if (err instanceof ConcordError) return err.code
    throw err
  }
  return undefined
}

describe('export and import over the storage interface', () => {
  it('copies every document with its text, versions and authors (including the log tail\'s writers)', async () => {
    const source = await filled()
    const { open } = await archiveOf(source)
    const target = createMemoryStorage()
    const summary = await importStore(target, open, await checkArchive(open))
    expect(summary).toMatchObject({ documents: 2, versions: 2, authors: 3, existing: [] })
    expect((await target.list()).map(d => d.name).sort()).toEqual(['acme/notes', 'acme/plan'])
    for (const name of ['acme/plan', 'acme/notes']) expect(await textOf(target, name)).toBe(await textOf(source, name))
    expect(await textOf(target, 'acme/plan')).toBe('ann wrote this. bob added that.')
    const strip = (v: { bytes: number; seq: number }): object => ({ ...v, seq: 0, bytes: 0 })
    expect((await target.listVersions('acme/plan')).map(strip)).toEqual((await source.listVersions('acme/plan')).map(strip))
    for (const id of ['v-first', 'v-auto']) expect((await target.loadVersion('acme/plan', id))!.snapshot).toEqual((await source.loadVersion('acme/plan', id))!.snapshot)
    expect(await target.loadAuthors('acme/plan')).toEqual(new Map([[11, 'ann'], [22, 'bob']]))
    // carol's authors row was never written: her client id is learned from the log tail
    expect(await target.loadAuthors('acme/notes')).toEqual(new Map([[33, 'carol']]))
    // the imported state is the target's snapshot; the version that covered the whole document covers it
    const loaded = await target.load('acme/plan')
    expect(loaded.updates).toEqual([])
    expect((await target.listVersions('acme/plan')).map(v => v.seq)).toEqual([0, loaded.snapshotSeq])
  })

  it('refuses documents the target has, writing nothing; --overwrite replaces them; --merge merges the Yjs states and keeps the target\'s versions', async () => {
    const source = await filled()
    const { open } = await archiveOf(source)
    const checked = await checkArchive(open)
    const target = createMemoryStorage()
    await target.append('acme/plan', { update: edit(44, 'dan was here. '), userId: 'dan' })
    await target.saveVersion('acme/plan', { id: 'v-first', kind: 'named', name: 'dan\'s', createdAt: 5, createdBy: 'dan', authors: ['dan'], seq: 1, snapshot: edit(44, 'x') })
    expect(await codeOf(importStore(target, open, checked))).toBe('CONCORD_ERR_IMPORT_DOCUMENT_EXISTS')
    expect((await target.list()).map(d => d.name)).toEqual(['acme/plan'])
    expect(await textOf(target, 'acme/plan')).toBe('dan was here. ')

    const merged = await importStore(target, open, checked, { onExisting: 'merge' })
    expect(merged.existing).toEqual(['acme/plan'])
    const text = (await textOf(target, 'acme/plan'))!
    expect(text).toContain('dan was here. ')
    expect(text).toContain('ann wrote this. bob added that.')
    expect((await target.listVersions('acme/plan')).map(v => `${v.id}:${v.name}`)).toEqual(['v-first:dan\'s', 'v-auto:null'])
    expect(await target.loadAuthors('acme/plan')).toEqual(new Map([[11, 'ann'], [22, 'bob']]))

    await importStore(target, open, checked, { onExisting: 'overwrite' })
    expect(await textOf(target, 'acme/plan')).toBe('ann wrote this. bob added that.')
    expect((await target.listVersions('acme/plan')).map(v => `${v.id}:${v.name}`)).toEqual(['v-first:first draft', 'v-auto:null'])
  })

  it('checks the whole archive before writing: a damaged document near the end leaves the target untouched', async () => {
    const { text } = await archiveOf(await filled())
    const lines = text.split('\n')
    const damaged = lines.map((l, i) => i === lines.length - 3 ? l.replace('"carol"', '"mallory"') : l).join('\n')
    const open: ArchiveSource = async function* () { yield damaged }
    expect(await codeOf(checkArchive(open))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    const cut: ArchiveSource = async function* () { yield text.slice(0, text.length - 40) }
    expect(await codeOf(checkArchive(cut))).toBe('CONCORD_ERR_ARCHIVE_TRUNCATED')
  })

  it('exports an empty store as an archive of no documents, which imports as nothing', async () => {
    const { text, open } = await archiveOf(createMemoryStorage())
    expect(text.trim().split('\n')).toHaveLength(2)
    const target = createMemoryStorage()
    expect(await importStore(target, open, await checkArchive(open))).toMatchObject({ documents: 0, versions: 0 })
    expect(await target.list()).toEqual([])
  })
})
