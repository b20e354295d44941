import { Worker } from 'node:worker_threads'
import type { DocumentInfo, HistoryStore, LoadedDocument, StorageAdapter } from './storage-adapter.js'
import { GroupCommit } from './group-commit.js'
import { SqliteLog, type AppendItem, type SqliteStorageOptions } from './sqlite-log.js'
import { packAppendBatch } from './append-packing.js'
import type { HistoryMethod, SqliteRequest, SqliteResponse } from './sqlite-worker.js'
import { ConcordError } from '@concord/protocol'

export type { SqliteStorageOptions } from './sqlite-log.js'

/** Distributes the ops of the worker protocol without the request id. */
type Request = SqliteRequest extends infer R ? R extends { id: number } ? Omit<R, 'id'> : never : never

/**
 * Embedded durable storage: SQLite in WAL mode via better-sqlite3, by default
 * in a worker thread. Appends are group-committed: while one transaction is
 * being written, the next batch collects.
 */
export function createSqliteStorage(options: SqliteStorageOptions): StorageAdapter {
  return adapterOver(options.thread === 'main' ? inThread(options) : inWorker(options), options.commitWindowMs ?? 2, options.busyCommitWindowMs ?? 10)
}

/** The SQLite operations, wherever they run. */
interface Backend {
  append(batch: AppendItem[]): Promise<number[]> | number[]
  load(document: string): Promise<LoadedDocument>
  compact(document: string, snapshot: Uint8Array, upToSeq: number): Promise<void>
  delete(document: string): Promise<void>
  list(): Promise<DocumentInfo[]>
  ping(): Promise<void>
  close(): Promise<void>
  history<M extends HistoryMethod>(method: M, args: Parameters<HistoryStore[M]>): ReturnType<HistoryStore[M]>
}

function adapterOver(backend: Backend, commitWindowMs: number, busyCommitWindowMs: number): StorageAdapter {
  const committer = new GroupCommit<AppendItem, number>(batch => backend.append(batch), { lingerMs: commitWindowMs, busyLingerMs: busyCommitWindowMs })
  let closed = false
  const open = (): void => {
    if (closed) throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'sqlite storage is closed')
  }
  return {
    kind: 'sqlite',
    async load(document) {
      open()
      return backend.load(document)
    },
    append(document, record) {
      if (closed) return Promise.reject(new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', 'sqlite storage is closed'))
      return committer.enqueue({ document, record })
    },
    async compact(document, snapshot, upToSeq) {
      open()
      await backend.compact(document, snapshot, upToSeq)
    },
    async delete(document) {
      open()
      await committer.barrier().catch(() => undefined)
      await backend.delete(document)
    },
    async list() {
      open()
      return backend.list()
    },
    async saveVersion(document, version) {
      open()
      await backend.history('saveVersion', [document, version])
    },
    async listVersions(document) {
      open()
      return backend.history('listVersions', [document])
    },
    async loadVersion(document, id) {
      open()
      return backend.history('loadVersion', [document, id])
    },
    async pruneVersions(document, olderThan) {
      open()
      return backend.history('pruneVersions', [document, olderThan])
    },
    async deleteVersion(document, id) {
      open()
      return backend.history('deleteVersion', [document, id])
    },
    async versionStorage(document) {
      open()
      return backend.history('versionStorage', [document])
    },
    async recordAuthors(document, authors) {
      open()
      await backend.history('recordAuthors', [document, authors])
    },
    async loadAuthors(document) {
      open()
      return backend.history('loadAuthors', [document])
    },
    flush: () => committer.barrier(),
    async ping() {
      open()
      await backend.ping()
    },
    async close() {
      if (closed) return
      await committer.barrier().catch(() => undefined)
      closed = true
      await backend.close()
    },
  }
}

function inThread(options: SqliteStorageOptions): Backend {
  const log = new SqliteLog(options)
  return {
    append: batch => log.append(batch),
    load: async document => log.load(document),
    compact: async (document, snapshot, upToSeq) => log.compact(document, snapshot, upToSeq),
    delete: async document => log.delete(document),
    list: async () => log.list(),
    ping: async () => log.ping(),
    close: async () => log.close(),
    history: (method, args) => Promise.resolve((log[method] as (...a: unknown[]) => unknown).apply(log, args)) as ReturnType<HistoryStore[typeof method]>,
  }
}

function inWorker(options: SqliteStorageOptions): Backend {
  // from compiled code the worker sits next to this file; when tests run the
  // TypeScript source directly, use the compiled worker (npm test builds first)
  const workerUrl = import.meta.url.endsWith('.ts')
    ? new URL('../../dist/storage/sqlite-worker.js', import.meta.url)
    : new URL('./sqlite-worker.js', import.meta.url)
  const worker = new Worker(workerUrl, { workerData: { ...options, thread: 'main' } })
  // an idle worker must not keep a finished process alive; pending requests keep it referenced
  worker.unref()
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  let nextId = 1
  let dead: Error | null = null

  const fail = (err: Error): void => {
    dead ??= err
    for (const p of pending.values()) p.reject(err)
    pending.clear()
  }
  worker.on('message', (res: SqliteResponse) => {
    const p = pending.get(res.id)
    if (p === undefined) return
    pending.delete(res.id)
    if (pending.size === 0) worker.unref()
    if (res.ok) p.resolve(res.value)
    else p.reject(new Error(`sqlite: ${res.message}`))
  })
  worker.on('error', err => fail(new Error(`sqlite worker failed: ${err.message}`, { cause: err })))
  worker.on('exit', code => fail(new Error(`sqlite worker exited (${code})`)))

  const request = <T>(req: Request): Promise<T> => {
    if (dead !== null) return Promise.reject(dead)
    const id = nextId++
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      worker.ref()
      const message = { ...req, id }
      worker.postMessage(message, 'packed' in message ? [message.packed.meta.buffer as ArrayBuffer, message.packed.data.buffer as ArrayBuffer] : [])
    })
  }
  return {
    // one structured clone per object is slow for thousands of small updates: the
    // batch goes over as two transferred buffers (no copy) and a short string table
    append: async batch => Array.from(await request<Float64Array>({ op: 'append', packed: packAppendBatch(batch) })),
    load: document => request<LoadedDocument>({ op: 'load', document }),
    compact: (document, snapshot, upToSeq) => request({ op: 'compact', document, snapshot, upToSeq }),
    delete: document => request({ op: 'delete', document }),
    list: () => request<DocumentInfo[]>({ op: 'list' }),
    ping: () => request({ op: 'ping' }),
    history: (method, args) => request({ op: 'history', method, args }) as ReturnType<HistoryStore[typeof method]>,
    async close() {
      await request({ op: 'close' }).catch(() => undefined)
      await worker.terminate()
    },
  }
}
