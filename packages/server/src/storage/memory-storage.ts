import type { AppendRecord, DocumentInfo, LoadedDocument, StorageAdapter, StoredUpdate, StoredVersion } from './storage-adapter.js'
import { GroupCommit } from './group-commit.js'
import { snapshotHash } from './snapshot-hash.js'
import { ConcordError } from '@concord/protocol'

interface MemoryDoc {
  snapshot: Uint8Array | null
  snapshotSeq: number
  snapshotAt: number
  updates: StoredUpdate[]
}

export interface MemoryStorageOptions {
  /** Artificial commit delay, to exercise group commit in tests. */
  commitDelayMs?: number
}

/** In-memory storage for tests and throwaway runs. Same semantics as the durable adapters. */
export function createMemoryStorage(options: MemoryStorageOptions = {}): StorageAdapter {
  const docs = new Map<string, MemoryDoc>()
  let nextSeq = 1
  const leases = new Map<string, { holder: string; expiresAt: number }>()
  // a document's versions refer to its snapshots by content hash: equal snapshots are kept once
  const versions = new Map<string, { version: StoredVersion; hash: string }[]>()
  const snapshots = new Map<string, Map<string, Uint8Array>>()
  /** Drop the document's snapshots no version refers to any more. */
  const collect = (document: string): void => {
    const held = snapshots.get(document)
    if (held === undefined) return
    const used = new Set((versions.get(document) ?? []).map(e => e.hash))
    for (const hash of held.keys()) if (!used.has(hash)) held.delete(hash)
    if (held.size === 0) snapshots.delete(document)
  }
  const authors = new Map<string, Map<number, string>>()
  let closed = false
  const get = (name: string): MemoryDoc => {
    let d = docs.get(name)
    if (d === undefined) {
      d = { snapshot: null, snapshotSeq: 0, snapshotAt: 0, updates: [] }
      docs.set(name, d)
    }
    return d
  }
  const check = (): void => {
    if (closed) throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'storage is closed')
  }
  const committer = new GroupCommit<{ document: string; record: AppendRecord }, number>(async batch => {
    if (options.commitDelayMs) await new Promise(r => setTimeout(r, options.commitDelayMs))
    return batch.map(({ document, record }) => {
      const seq = nextSeq++
      get(document).updates.push({
        seq, update: record.update.slice(), userId: record.userId ?? null, at: record.at ?? Date.now(),
      })
      return seq
    })
  })
  return {
    kind: 'memory',
    async load(document): Promise<LoadedDocument> {
      check()
      const d = docs.get(document)
      if (d === undefined) return { snapshot: null, snapshotSeq: 0, updates: [] }
      return { snapshot: d.snapshot, snapshotSeq: d.snapshotSeq, updates: d.updates.slice() }
    },
    append(document, record) {
      if (closed) return Promise.reject(new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', `${this.kind} storage is closed`))
      return committer.enqueue({ document, record })
    },
    async compact(document, snapshot, upToSeq) {
      check()
      const d = docs.get(document)
      if (d === undefined || upToSeq <= d.snapshotSeq) return
      d.snapshot = snapshot.slice()
      d.snapshotSeq = upToSeq
      d.snapshotAt = Date.now()
      d.updates = d.updates.filter(u => u.seq > upToSeq)
    },
    async lease(document, holder, ttlMs) {
      check()
      const now = Date.now()
      const held = leases.get(document)
      if (held !== undefined && held.holder !== holder && held.expiresAt >= now) return false
      leases.set(document, { holder, expiresAt: now + ttlMs })
      return true
    },
    async releaseLease(document, holder) {
      check()
      if (leases.get(document)?.holder === holder) leases.delete(document)
    },
    async saveVersion(document, v) {
      check()
      const { snapshot, ...meta } = v
      const hash = snapshotHash(snapshot).toString('hex')
      const held = snapshots.get(document) ?? new Map<string, Uint8Array>()
      if (!held.has(hash)) held.set(hash, snapshot.slice())
      snapshots.set(document, held)
      const list = (versions.get(document) ?? []).filter(e => e.version.id !== meta.id)
      list.push({ version: { ...meta, authors: [...meta.authors], bytes: snapshot.length }, hash })
      list.sort((a, b) => a.version.createdAt - b.version.createdAt)
      versions.set(document, list)
      collect(document)
    },
    async listVersions(document) {
      check()
      return (versions.get(document) ?? []).map(e => ({ ...e.version }))
    },
    async loadVersion(document, id) {
      check()
      const e = (versions.get(document) ?? []).find(x => x.version.id === id)
      return e === undefined ? null : { version: { ...e.version }, snapshot: snapshots.get(document)!.get(e.hash)! }
    },
    async pruneVersions(document, olderThan) {
      check()
      const list = versions.get(document) ?? []
      const kept = list.filter(e => e.version.kind === 'named' || e.version.createdAt >= olderThan)
      versions.set(document, kept)
      collect(document)
      return list.length - kept.length
    },
    async deleteVersion(document, id) {
      check()
      const list = versions.get(document) ?? []
      const kept = list.filter(e => e.version.id !== id)
      versions.set(document, kept)
      collect(document)
      return kept.length < list.length
    },
    async versionStorage(document) {
      check()
      const held = [...(snapshots.get(document)?.values() ?? [])]
      return { versions: versions.get(document)?.length ?? 0, snapshots: held.length, bytes: held.reduce((n, s) => n + s.length, 0) }
    },
    async recordAuthors(document, list) {
      check()
      const m = authors.get(document) ?? new Map<number, string>()
      for (const { client, userId } of list) if (!m.has(client)) m.set(client, userId)
      authors.set(document, m)
    },
    async loadAuthors(document) {
      check()
      return new Map(authors.get(document) ?? [])
    },
    async delete(document) {
      check()
      docs.delete(document)
      versions.delete(document)
      snapshots.delete(document)
      authors.delete(document)
    },
    async list(): Promise<DocumentInfo[]> {
      check()
      return [...docs.entries()].map(([name, d]) => ({
        name,
        lastSeq: d.updates.length ? d.updates[d.updates.length - 1]!.seq : d.snapshotSeq,
        tailUpdates: d.updates.length,
        bytes: (d.snapshot?.length ?? 0) + d.updates.reduce((n, u) => n + u.update.length, 0),
        updatedAt: d.updates.length ? d.updates[d.updates.length - 1]!.at : d.snapshotAt,
      }))
    },
    flush() {
      return committer.barrier()
    },
    async ping() {
      check()
    },
    async close() {
      if (closed) return
      await committer.barrier().catch(() => undefined)
      closed = true
    },
  }
}
