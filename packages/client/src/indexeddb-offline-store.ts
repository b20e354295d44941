import { decodeSnapshot, encodeSnapshot, type OfflineStore } from './offline-store.js'

export interface IndexedDbOfflineStoreOptions {
  /** Name of the IndexedDB database (default `concord-offline`). */
  dbName?: string
  /** The IndexedDB factory (default `globalThis.indexedDB`). */
  indexedDB?: IDBFactory
}

const DB_VERSION = 1
/** The one object store: key = document name, value = the bytes of `encodeSnapshot`. */
const OBJECT_STORE = 'documents'

/**
 * Browsers: one IndexedDB database with one object store, one record per
 * document. Every save is one readwrite transaction that resolves when it
 * completes, asked for with `durability: 'strict'` (flushed to disk where the
 * browser supports that hint).
 */
export function createIndexedDbOfflineStore(options: IndexedDbOfflineStoreOptions = {}): OfflineStore {
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

  return {
    async load(document) {
      const value = await transact<unknown>(`reading "${document}" from database "${dbName}"`, 'readonly', store => store.get(document))
      if (value === undefined) return null
      if (value instanceof Uint8Array) return decodeSnapshot(value)
      if (value instanceof ArrayBuffer) return decodeSnapshot(new Uint8Array(value))
      throw new Error(`IndexedDB offline store: the record of "${document}" in database "${dbName}" is not a snapshot`)
    },
    async save(document, snapshot) {
      const bytes = encodeSnapshot(snapshot)
      await transact(`saving "${document}" in database "${dbName}"`, 'readwrite', store => store.put(bytes, document))
    },
    async remove(document) {
      await transact(`removing "${document}" from database "${dbName}"`, 'readwrite', store => store.delete(document))
    },
  }
}

function failure(what: string, cause: unknown): Error {
  const detail = cause instanceof Error || cause instanceof DOMException
    ? `${cause.name}: ${cause.message}`
    : String(cause)
  return new Error(`IndexedDB offline store: ${what} failed (${detail})`, { cause })
}
