import { ConcordError } from '@concord/protocol'
import { ConfigError } from '../config/server-config.js'
import type { AccessStore } from './access-store.js'
import { claimPartition, redact } from './partition-identity.js'
import { Placement } from './partition-placement.js'
import { createPostgresStorage, isTransient, type PostgresStorage, type PostgresStorageOptions } from './postgres-storage.js'
import type { DocumentInfo, StorageAdapter } from './storage-adapter.js'

/** One PostgreSQL server (database) of a partitioned store. */
export interface StorePartition {
  /** The partition's name: documents are placed by it, never by the URL (partition-placement.ts). */
  id: string
  /** postgres://user:password@host:port/database */
  connectionString: string
}

/** Where the store tells what happens after it started (a partition reached late, or refused then). */
export interface PartitionLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface PartitionedStorageOptions extends Omit<PostgresStorageOptions, 'connectionString' | 'replication'> {
  partitions: StorePartition[]
  logger?: PartitionLogger
}

/** A partition as this node sees it. */
export interface PartitionStatus {
  id: string
  /** Where revocations and roles live (the data that belongs to no document). */
  primary: boolean
  /**
   * `open`: its database was checked and is in use (it may still be down for a while: then its
   * documents' appends wait and their loads fail, as with one PostgreSQL); `waiting`: not reached
   * since this node started; `refused`: reached after the start, and its database disagreed
   * with this node's configuration (its documents stay refused).
   */
  state: 'open' | 'waiting' | 'refused'
  /** Why, for `refused`. */
  error?: string
}

/** The PostgreSQL store's extras that `concord serve` uses, over several partitions. */
export interface PartitionedPostgresStorage extends StorageAdapter {
  /** Revocations and role overrides: on the primary partition. */
  accessStore(): AccessStore
  /** Whether the primary partition has been reached (and the `beforeReady` hooks have run). */
  readonly ready: boolean
  beforeReady(hook: () => Promise<void>): void
  /** The id of `document`'s partition. */
  partitionOf(document: string): string
  partitions(): PartitionStatus[]
}

interface Part {
  id: string
  url: string
  store: PostgresStorage | null
  error: Error | null
}

/**
 * Documents partitioned by name over several PostgreSQL servers: each document lives in exactly
 * one of them (rendezvous hashing of its name over the partition ids), in an ordinary PostgreSQL
 * store (postgres-storage.ts) of its own per partition, so a document's log, snapshots, versions,
 * authors and compaction lease are where that store keeps them. Revocations and role overrides
 * live on the primary partition. Listing fans out to every partition and merges.
 *
 * A partition that is down concerns its documents only: their appends wait and retry (acks pause),
 * their loads fail with a retryable error, and documents elsewhere go on. Each database is checked
 * against this configuration (partition-identity.ts) before it is used: at the start for those that
 * answer (a disagreement refuses the start), later for the others.
 */
export async function createPartitionedPostgresStorage(options: PartitionedStorageOptions): Promise<PartitionedPostgresStorage> {
  const { partitions: configured, logger, ...pgOptions } = options
  const placement = new Placement(configured.map(p => p.id))
  const urls = configured.map(p => p.connectionString)
  const twice = urls.find((u, i) => urls.indexOf(u) !== i)
  if (twice !== undefined) throw new ConfigError(`two partitions are given the same database (${redact(twice)}): each partition needs its own`)
  const ids = placement.ids
  const timeoutMs = options.connectionTimeoutMs ?? 10_000
  const parts = new Map<string, Part>(configured.map(p => [p.id, { id: p.id, url: p.connectionString, store: null, error: null }]))
  /** The primary partition's id, once a database has said it. */
  let primary: string | null = null
  let primaryOpen = false
  const hooks: (() => Promise<void>)[] = []
  let closed = false
  let wake: () => void = () => undefined
  const closing = new Promise<void>(resolve => { wake = resolve })

  const unavailable = (message: string): ConcordError => new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', message)

  /** Check the partition's database, then open its store. */
  async function attach(part: Part): Promise<void> {
    const record = await claimPartition(part.url, { id: part.id, partitions: ids, primary }, timeoutMs)
    if (primary !== null && record.primary !== primary) {
      throw new ConfigError(`partition "${part.id}" (${redact(part.url)}) names "${record.primary}" the primary partition, another names "${primary}": the databases disagree`)
    }
    primary = record.primary
    const store = await createPostgresStorage({ ...pgOptions, connectionString: part.url })
    if (closed) {
      await store.close()
      return
    }
    part.store = store
    if (part.id === primary) openPrimary(store)
  }

  let primaryOpening = false
  /** The primary's store is there: once it is reachable, run the hooks (the access state is read), then serve documents. */
  function openPrimary(store: PostgresStorage): void {
    if (primaryOpening) return
    primaryOpening = true
    const open = async (): Promise<void> => {
      for (const hook of hooks) await retrying(hook, 'reading the primary partition')
      primaryOpen = true
    }
    if (store.ready) void open()
    else store.beforeReady(open)
  }

  /** `fn` until it succeeds or the store closes: every error is retried (the primary answered a moment ago; it is back soon). */
  async function retrying(fn: () => Promise<void>, what: string): Promise<void> {
    let delay = 50
    let told = ''
    for (;;) {
      try {
        return await fn()
      } catch (err) {
        if (closed) throw err
        const message = (err as Error).message
        if (message !== told) logger?.warn({ err: message }, `partitioned store: ${what} failed, retrying`)
        told = message
        await pause(delay)
        delay = Math.min(2_000, delay * 2)
      }
    }
  }

  function pause(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    return Promise.race([closing, new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })]).finally(() => clearTimeout(timer))
  }

  /** A partition not reached at the start: tried again in the background until it answers. */
  async function keepTrying(part: Part, first: unknown): Promise<void> {
    let delay = 50
    let told = (first as Error).message
    logger?.warn({ partition: part.id, postgres: redact(part.url), err: told }, 'partitioned store: partition not reachable; its documents are refused until it is')
    while (!closed) {
      await pause(delay)
      if (closed) return
      delay = Math.min(2_000, delay * 2)
      try {
        await attach(part)
        logger?.info({ partition: part.id, postgres: redact(part.url) }, 'partitioned store: partition reached and checked')
        return
      } catch (err) {
        if (err instanceof ConfigError) {
          part.error = err
          logger?.error({ partition: part.id, postgres: redact(part.url), err: err.message }, 'partitioned store: partition refused; its documents stay refused until the configuration is fixed')
          return
        }
        if ((err as Error).message !== told && !isTransient(err)) logger?.warn({ partition: part.id, err: (err as Error).message }, 'partitioned store: partition check failed, retrying')
        told = (err as Error).message
      }
    }
  }

  const all = [...parts.values()]
  const attempts = await Promise.allSettled(all.map(attach))
  const fatal = attempts.flatMap(a => a.status === 'rejected' && !isTransient(a.reason) ? [a.reason as unknown] : [])
  if (fatal.length > 0) {
    closed = true
    wake()
    await Promise.all(all.map(p => p.store?.close().catch(() => undefined)))
    // a disagreement with the databases says more than whatever else failed
    throw fatal.find(e => e instanceof ConfigError) ?? fatal[0]
  }
  attempts.forEach((a, i) => { if (a.status === 'rejected') void keepTrying(all[i]!, a.reason) })

  function gate(): void {
    if (closed) throw unavailable('the partitioned PostgreSQL store is closed')
    if (!primaryOpen) {
      throw unavailable(`the primary partition${primary !== null ? ` "${primary}"` : ''} is not reachable yet (revocations and roles are read from it before any document is served)`)
    }
  }
  function storeOf(part: Part): PostgresStorage {
    if (part.store !== null) return part.store
    if (part.error !== null) throw unavailable(`partition "${part.id}" is refused: ${part.error.message}`)
    throw unavailable(`partition "${part.id}" (${redact(part.url)}) is not reachable yet (its database has not been checked)`)
  }
  /** The store of `document`'s partition. */
  function route(document: string): PostgresStorage {
    gate()
    return storeOf(parts.get(placement.home(document))!)
  }
  function primaryStore(): PostgresStorage {
    if (closed) throw unavailable('the partitioned PostgreSQL store is closed')
    if (primary === null) throw unavailable('no partition has been reached yet: the primary partition (revocations and roles) is not known')
    return storeOf(parts.get(primary)!)
  }

  /** The access state's operations, on the primary; its PostgreSQL out of reach is the store's retryable error (a 503 for the admin API). */
  async function onPrimary<T>(fn: (store: AccessStore) => Promise<T>): Promise<T> {
    try {
      return await fn(primaryStore().accessStore())
    } catch (err) {
      if (isTransient(err)) throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', `the primary partition "${primary}" is not reachable: ${(err as Error).message}`, { cause: err })
      throw err
    }
  }
  const accessStore: AccessStore = {
    load: () => onPrimary(a => a.load()),
    save: state => onPrimary(a => a.save(state)),
    update: (edit, replicate) => onPrimary(a => a.update!(edit, replicate)),
  }

  return {
    kind: 'postgres-partitioned',
    accessStore: () => accessStore,
    get ready() { return primaryOpen },
    beforeReady(hook) {
      hooks.push(hook)
    },
    partitionOf: document => placement.home(document),
    partitions: () => ids.map(id => {
      const part = parts.get(id)!
      return {
        id, primary: id === primary, state: part.store !== null ? 'open' : part.error !== null ? 'refused' : 'waiting',
        ...(part.error !== null ? { error: part.error.message } : {}),
      } satisfies PartitionStatus
    }),
    load: async document => route(document).load(document),
    append(document, record) {
      try {
        return route(document).append(document, record)
      } catch (err) {
        return Promise.reject(err)
      }
    },
    compact: async (document, snapshot, upToSeq) => route(document).compact(document, snapshot, upToSeq),
    lease: async (document, holder, ttlMs) => route(document).lease!(document, holder, ttlMs),
    releaseLease: async (document, holder) => route(document).releaseLease!(document, holder),
    delete: async document => route(document).delete(document),
    saveVersion: async (document, version) => route(document).saveVersion(document, version),
    listVersions: async document => route(document).listVersions(document),
    loadVersion: async (document, id) => route(document).loadVersion(document, id),
    pruneVersions: async (document, olderThan) => route(document).pruneVersions(document, olderThan),
    deleteVersion: async (document, id) => route(document).deleteVersion(document, id),
    versionStorage: async document => route(document).versionStorage(document),
    recordAuthors: async (document, authors) => route(document).recordAuthors(document, authors),
    loadAuthors: async document => route(document).loadAuthors(document),
    /**
     * Every partition's documents, merged in name order. A document found on a partition that is
     * not its home (left there by an interrupted move) is not listed: loads never look there.
     * Fails while any partition cannot answer: a listing (an export) that left one out would look
     * complete.
     */
    async list() {
      gate()
      const lists = await Promise.all(ids.map(async id => {
        const listed = await storeOf(parts.get(id)!).list()
        return listed.filter(d => placement.home(d.name) === id)
      }))
      return lists.flat().sort((a: DocumentInfo, b: DocumentInfo) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    },
    async flush() {
      await Promise.all(all.map(p => p.store?.flush()))
    },
    /**
     * Ready while the primary has been read and at least one partition answers: a partition
     * that is down concerns its own documents, and making every node unready for it would take
     * the others' documents down too (the load balancer would drain every node).
     */
    async ping() {
      gate()
      const pings = await Promise.allSettled(all.map(async p => storeOf(p).ping()))
      if (pings.every(p => p.status === 'rejected')) throw (pings[0] as PromiseRejectedResult).reason
    },
    async close() {
      if (closed) return
      closed = true
      wake()
      await Promise.all(all.map(p => p.store?.close()))
    },
  }
}
