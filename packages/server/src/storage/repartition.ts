import { ConfigError } from '../config/server-config.js'
import { readPartitionRecord, redact, writePartitionRecord, type StoredPartitionRecord } from './partition-identity.js'
import { Placement } from './partition-placement.js'
import type { StorePartition } from './partitioned-storage.js'
import { createPostgresStorage, type PostgresStorage } from './postgres-storage.js'
import type { StorageAdapter } from './storage-adapter.js'

export interface RepartitionOptions {
  /** The new set: every partition of the current set (same ids, their databases) and the new ones. */
  partitions: StorePartition[]
  timeoutMs?: number
  /** Told after each document moved. */
  onMoved?: (document: string, from: string, to: string) => void
}

export interface RepartitionSummary {
  /** The set before (sorted ids). */
  from: string[]
  to: string[]
  primary: string
  /** Documents in the store, and those that changed partition. */
  documents: number
  moved: number
}

/**
 * `concord repartition`: add partitions to a partitioned store, offline (no node may run on it).
 * Only the documents whose home changes move (about 1/n for one partition added to n - 1), each
 * with its log (entries, writers, times), snapshot, versions and authors, straight to its new home.
 *
 * Crash-safe by re-running: every database of the current set is first marked as being moved to
 * the new set (nodes refuse to start on a marked database); a document is copied (after removing
 * whatever an interrupted run left at its new home) and only then removed from its old one; the
 * new set is recorded in every database at the end.
 */
export async function repartition(options: RepartitionOptions): Promise<RepartitionSummary> {
  const placement = new Placement(options.partitions.map(p => p.id))
  const to = placement.ids
  const timeoutMs = options.timeoutMs ?? 10_000
  const byId = new Map(options.partitions.map(p => [p.id, p]))
  const records = new Map<string, StoredPartitionRecord | null>()
  for (const p of options.partitions) records.set(p.id, await readPartitionRecord(p.connectionString, timeoutMs))

  const claimed = [...records].filter((e): e is [string, StoredPartitionRecord] => e[1] !== null)
  if (claimed.length === 0) throw new ConfigError('none of these databases is a partition yet: there is nothing to move (start the nodes on them)')
  for (const [id, record] of claimed) {
    if (record.id !== id) throw new ConfigError(`the database at ${redact(byId.get(id)!.connectionString)} is partition "${record.id}", but it is given as "${id}"`)
  }
  const done = (r: StoredPartitionRecord): boolean => r.next === null && same(r.partitions, to)
  // the current set: what the databases not finished yet say
  const current = claimed.map(([, r]) => r).find(r => !done(r))?.partitions ?? to
  const primary = claimed[0]![1].primary
  for (const [id, record] of claimed) {
    if (record.primary !== primary) throw new ConfigError(`the databases disagree about the primary partition ("${primary}", and "${record.primary}" on "${id}")`)
    if (!done(record) && !same(record.partitions, current)) throw new ConfigError(`the databases disagree about the partitions: {${current.join(', ')}}, and {${record.partitions.join(', ')}} on "${id}"`)
    if (record.next !== null && !same(record.next, to)) throw new ConfigError(`partition "${id}" is being moved to {${record.next.join(', ')}}, not {${to.join(', ')}}: finish that first (run concord repartition with those partitions)`)
  }
  const removed = current.filter(id => !byId.has(id))
  if (removed.length > 0) throw new ConfigError(`the new partitions leave out ${removed.map(id => `"${id}"`).join(', ')} of {${current.join(', ')}}: concord repartition adds partitions; it does not remove them`)
  for (const id of current) {
    if (records.get(id) === null) throw new ConfigError(`partition "${id}" of {${current.join(', ')}} is given a database that is no partition (${redact(byId.get(id)!.connectionString)}): give each partition its own database`)
  }

  // 1. mark: no node starts on a database of the current set until the move is finished
  for (const id of current) {
    const record = records.get(id)!
    if (!done(record) && record.next === null) await writePartitionRecord(byId.get(id)!.connectionString, { ...record, next: [...to] }, timeoutMs)
  }
  // 2. move the documents whose home changes
  const stores = new Map<string, PostgresStorage>()
  let documents = 0
  let moved = 0
  try {
    for (const p of options.partitions) stores.set(p.id, await openStore(p))
    for (const id of current) {
      const source = stores.get(id)!
      for (const info of await source.list()) {
        const home = placement.home(info.name)
        if (home !== id) {
          await moveDocument(source, stores.get(home)!, info.name, info.updatedAt)
          moved++
          options.onMoved?.(info.name, id, home)
        }
        documents++
      }
    }
  } finally {
    await Promise.all([...stores.values()].map(s => s.close().catch(() => undefined)))
  }
  // 3. every database says the new set
  for (const p of options.partitions) await writePartitionRecord(p.connectionString, { id: p.id, partitions: [...to], primary, next: null }, timeoutMs)
  return { from: [...current], to: [...to], primary, documents, moved }
}

async function openStore(p: StorePartition): Promise<PostgresStorage> {
  const store = await createPostgresStorage({ connectionString: p.connectionString })
  if (!store.ready) {
    await store.close().catch(() => undefined)
    throw new ConfigError(`partition "${p.id}" (${redact(p.connectionString)}) is not reachable: every partition must be, to repartition`)
  }
  return store
}

/**
 * Copy one document to `to` (its snapshot, then its log entries in order, with their writers and
 * times; its authors; its versions, their log positions mapped to the new log), then remove it
 * from `from`.
 */
export async function moveDocument(from: StorageAdapter, to: StorageAdapter, name: string, updatedAt: number): Promise<void> {
  const loaded = await from.load(name)
  await to.delete(name)
  /** Old seq → new seq, increasing. */
  const seqs: [number, number][] = []
  if (loaded.snapshot !== null) {
    const seq = await to.append(name, { update: loaded.snapshot, userId: null, at: updatedAt })
    await to.compact(name, loaded.snapshot, seq)
    seqs.push([loaded.snapshotSeq, seq])
  }
  // enqueued together: one group commit, seqs in this order
  const tail = await Promise.all(loaded.updates.map(u => to.append(name, { update: u.update, userId: u.userId, at: u.at })))
  loaded.updates.forEach((u, i) => seqs.push([u.seq, tail[i]!]))
  const authors = await from.loadAuthors(name)
  if (authors.size > 0) await to.recordAuthors(name, [...authors].map(([client, userId]) => ({ client, userId })))
  for (const v of await from.listVersions(name)) {
    const found = await from.loadVersion(name, v.id)
    if (found === null) continue
    const { bytes: _bytes, ...meta } = found.version
    // a position inside what the snapshot folded has no entry any more, here as there: unknown (0)
    const mapped = v.seq < loaded.snapshotSeq ? 0 : seqs.filter(([old]) => old <= v.seq).at(-1)?.[1] ?? 0
    await to.saveVersion(name, { ...meta, seq: mapped, snapshot: found.snapshot })
  }
  await from.delete(name)
}

function same(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort()
  const y = [...b].sort()
  return x.length === y.length && x.every((v, i) => v === y[i])
}
