import type { OfflineSnapshot, OfflineStore } from './offline-store.js'
import { decodeSharedRecord, encodeSharedRecord, viewOf, withSave, type SharedRecord } from './shared-record.js'

export interface IndexedDbOfflineStoreOptions {
  /** Name of the IndexedDB database (default `concord-offline`). */
  dbName?: string
  /** The IndexedDB factory (default `globalThis.indexedDB`). */
  indexedDB?: IDBFactory
}

const DB_VERSION = 1
/** The one object store: key = document name, value = the bytes of `encodeSharedRecord`. */
const OBJECT_STORE = 'documents'

/**
 * Browsers: one IndexedDB database with one object store, one record per
 * document. Every save is one readwrite transaction that resolves when it
 * completes, asked for with `durability: 'strict'` (flushed to disk where the
 * browser supports that hint).
 *
 * Tabs of one origin share the database. Each open handle is a writer: a save reads the
 * record, replaces that writer's section of pending updates, merges its state into the shared
 * one and writes it back in the same transaction, so tabs never overwrite each other's offline
 * edits. Each writer holds a Web Lock while its handle is open; when a tab closes or crashes its
 * locks go, and the next handle to load or reconnect adopts the pending updates it left.
 */
/** The IndexedDB store, which tabs share: it can also say what each writer left unsent. */
export interface IndexedDbOfflineStore extends OfflineStore {
  /**
   * What the database holds for `document` (null: nothing): the shared state, and per writer
   * (an open or closed handle of some tab) how many updates it has not had acked yet and
   * whether its tab still holds it (null where the browser has no Web Locks).
   */
  inspect(document: string): Promise<{ state: Uint8Array; writers: { writer: string; pending: number; savedAt: number; live: boolean | null }[] } | null>
}

export function createIndexedDbOfflineStore(options: IndexedDbOfflineStoreOptions = {}): IndexedDbOfflineStore {
  const dbName = options.dbName ?? 'concord-offline'
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB
  if (factory === undefined) {
    throw new Error('IndexedDB offline store: IndexedDB is not available here (pass options.indexedDB; in Node use createFileOfflineStore)')
  }
  let connection: Promise<IDBDatabase> | null = null

  const open = (): Promise<IDBDatabase> => {
    if (connection !== null) return connection
    const opened = new Promise<IDBDatabase>((resolve, reject) => {
      const request = factory.open(dbName, DB_VERSION)
      request.onupgradeneeded = () => {
        const db = request.result
        if (!db.objectStoreNames.contains(OBJECT_STORE)) db.createObjectStore(OBJECT_STORE)
      }
      request.onsuccess = () => {
        const db = request.result
        const forget = (): void => {
          if (connection === opened) connection = null
        }
        // another tab upgrades or deletes the database: let it, and open again on next use
        db.onversionchange = () => {
          db.close()
          forget()
        }
        // the browser closed it (storage cleared, disk error): open again on next use
        db.onclose = forget
        resolve(db)
      }
      request.onerror = () => reject(failure(`opening database "${dbName}"`, request.error))
      // (a blocked open waits until other tabs close their connections, then succeeds)
    })
    connection = opened
    // a failed open is not kept: the next call tries again
    opened.catch(() => {
      if (connection === opened) connection = null
    })
    return opened
  }

  /** Run one transaction and settle when it completes (or fails) as a whole. */
  const transact = async <T>(what: string, mode: IDBTransactionMode, use: (store: IDBObjectStore) => IDBRequest): Promise<T> => {
    let db = await open()
    let tx: IDBTransaction
    try {
      tx = db.transaction(OBJECT_STORE, mode, { durability: 'strict' })
    } catch (err) {
      // the connection was closed under us (InvalidStateError): open once more
      if ((err as DOMException)?.name !== 'InvalidStateError') throw failure(what, err)
      connection = null
      db = await open()
      try {
        tx = db.transaction(OBJECT_STORE, mode, { durability: 'strict' })
      } catch (err2) {
        throw failure(what, err2)
      }
    }
    return new Promise<T>((resolve, reject) => {
      let request: IDBRequest
      try {
        request = use(tx.objectStore(OBJECT_STORE))
      } catch (err) {
        // e.g. DataCloneError: the transaction is aborted, report the cause
        try { tx.abort() } catch { /* already finished */ }
        reject(failure(what, err))
        return
      }
      tx.oncomplete = () => resolve(request.result as T)
      // a failed request aborts the transaction; quota errors show up only here
      tx.onabort = () => reject(failure(what, tx.error ?? request.error ?? new Error('transaction aborted')))
    })
  }

  const locks = webLocks()
  /** This page's writers that hold their lock, by id (released by `release`). */
  const held = new Map<string, { granted: Promise<void>; release: () => void }>()
  /** Per document and writer: the writers whose sections it adopted, dropped at its next save. */
  const adopting = new Map<string, Set<string>>()
  const key = (document: string, writer: string): string => `${writer}\u0000${document}`
  const lockName = (writer: string): string => `concord-offline:${dbName}:${writer}`

  /** Writers whose handle closed: a save still in flight for one must not take its lock again. */
  const released = new Set<string>()

  const hold = (writer: string): Promise<void> => {
    if (released.has(writer)) return Promise.resolve()
    const existing = held.get(writer)
    if (existing !== undefined) return existing.granted
    let release = (): void => {}
    const done = new Promise<void>(resolve => { release = resolve })
    const granted = locks === null
      ? Promise.resolve()
      : new Promise<void>(resolve => {
        locks.request(lockName(writer), () => {
          resolve()
          return done
        }).catch(() => resolve())
      })
    held.set(writer, { granted, release })
    return granted
  }

  /**
   * Which writers are gone: without Web Locks nobody can tell, so every other writer counts as
   * gone (their updates are then sent twice, which Yjs makes harmless).
   */
  const goneTest = async (writer: string): Promise<(other: string) => boolean> => {
    if (locks === null) return other => other !== writer
    const state = await locks.query()
    const live = new Set<string>()
    for (const lock of [...(state.held ?? []), ...(state.pending ?? [])]) if (lock.name !== undefined) live.add(lock.name)
    return other => other !== writer && !live.has(lockName(other))
  }

  const read = async (document: string): Promise<SharedRecord | null> => {
    const value = await transact<unknown>(`reading "${document}" from database "${dbName}"`, 'readonly', store => store.get(document))
    if (value === undefined) return null
    const bytes = value instanceof Uint8Array ? value : value instanceof ArrayBuffer ? new Uint8Array(value) : null
    if (bytes === null) throw new Error(`IndexedDB offline store: the record of "${document}" in database "${dbName}" is not a snapshot`)
    return decodeSharedRecord(bytes)
  }

  /** A private writer id for callers that name none (one store instance, one writer). */
  const anonymous = randomId()

  return {
    async load(document, writer = anonymous) {
      await hold(writer)
      const record = await read(document)
      if (record === null) return null
      const { snapshot, adopted } = viewOf(record, writer, await goneTest(writer))
      adopting.set(key(document, writer), new Set(adopted))
      return snapshot
    },
    async adopt(document, writer) {
      const record = await read(document)
      if (record === null) return []
      const gone = await goneTest(writer)
      const already = adopting.get(key(document, writer)) ?? new Set<string>()
      const updates: Uint8Array[] = []
      for (const s of record.sections) {
        if (already.has(s.writer) || !gone(s.writer)) continue
        already.add(s.writer)
        for (const p of s.pending) updates.push(p.update)
      }
      adopting.set(key(document, writer), already)
      return updates
    },
    async save(document, snapshot: OfflineSnapshot, writer = anonymous) {
      await hold(writer)
      const drop = adopting.get(key(document, writer)) ?? new Set<string>()
      await transact(`saving "${document}" in database "${dbName}"`, 'readwrite', store => {
        const get = store.get(document)
        get.onsuccess = () => {
          let record: SharedRecord | null = null
          const value: unknown = get.result
          const bytes = value instanceof Uint8Array ? value : value instanceof ArrayBuffer ? new Uint8Array(value) : null
          // an unreadable record is replaced by what this writer has
          if (bytes !== null) try { record = decodeSharedRecord(bytes) } catch { record = null }
          store.put(encodeSharedRecord(withSave(record, writer, snapshot, drop, Date.now())), document)
        }
        return get
      })
      // those sections are gone now (this writer's section holds their updates)
      const current = adopting.get(key(document, writer))
      if (current !== undefined) for (const w of drop) current.delete(w)
    },
    async inspect(document) {
      const record = await read(document)
      if (record === null) return null
      const gone = locks === null ? null : await goneTest(anonymous)
      return {
        state: record.state,
        writers: record.sections.map(s => ({ writer: s.writer, pending: s.pending.length, savedAt: s.savedAt, live: gone === null ? null : !gone(s.writer) })),
      }
    },
    async remove(document) {
      await transact(`removing "${document}" from database "${dbName}"`, 'readwrite', store => store.delete(document))
    },
    release(document, writer) {
      adopting.delete(key(document, writer))
      released.add(writer)
      const lock = held.get(writer)
      if (lock === undefined) return
      held.delete(writer)
      lock.release()
    },
  }
}

interface WebLocks {
  request(name: string, callback: () => Promise<void>): Promise<unknown>
  query(): Promise<{ held?: { name?: string }[]; pending?: { name?: string }[] }>
}

/** The Web Locks API where the page has it (secure contexts: https, localhost, 127.0.0.1). */
function webLocks(): WebLocks | null {
  const locks = (globalThis as { navigator?: { locks?: WebLocks } }).navigator?.locks
  return locks !== undefined && typeof locks.request === 'function' && typeof locks.query === 'function' ? locks : null
}

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto
  return c?.randomUUID !== undefined ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
}

function failure(what: string, cause: unknown): Error {
  const detail = cause instanceof Error || cause instanceof DOMException
    ? `${cause.name}: ${cause.message}`
    : String(cause)
  return new Error(`IndexedDB offline store: ${what} failed (${detail})`, { cause })
}
