import { Worker } from 'node:worker_threads'
import type { DocumentInfo, LoadedDocument, StorageAdapter } from './storage-adapter.js'
import { GroupCommit } from './group-commit.js'
import { SqliteLog, type AppendItem, type SqliteStorageOptions } from './sqlite-log.js'
import type { SqliteRequest, SqliteResponse } from './sqlite-worker.js'

export type { SqliteStorageOptions } from './sqlite-log.js'

/** Distributes the ops of the worker protocol without the request id. */
type Request = SqliteRequest extends infer R ? R extends { id: number } ? Omit<R, 'id'> : never : never

/**
 * Embedded durable storage: SQLite in WAL mode via better-sqlite3, by default
 * in a worker thread. Appends are group-committed: while one transaction is
 * being written, the next batch collects.
 */
export function createSqliteStorage(options: SqliteStorageOptions): StorageAdapter {
  return options.thread === 'main' ? inThread(options) : inWorker(options)
}

function inThread(options: SqliteStorageOptions): StorageAdapter {
  const log = new SqliteLog(options)
  const committer = new GroupCommit<AppendItem, number>(batch => log.append(batch))
  let closed = false
  const check = (): void => {
    if (closed) throw new Error('sqlite storage is closed')
  }
  return {
    kind: 'sqlite',
    async load(document) {
      check()
      return log.load(document)
    },
    append(document, record) {
      if (closed) return Promise.reject(new Error('sqlite storage is closed'))
      return committer.enqueue({ document, record })
    },
    async compact(document, snapshot, upToSeq) {
      check()
      log.compact(document, snapshot, upToSeq)
    },
    async delete(document) {
      check()
      await committer.barrier().catch(() => undefined)
      log.delete(document)
    },
    async list() {
      check()
      return log.list()
    },
    flush: () => committer.barrier(),
    async ping() {
      check()
      log.ping()
    },
    async close() {
      if (closed) return
      await committer.barrier().catch(() => undefined)
      closed = true
      log.close()
    },
  }
}

function inWorker(options: SqliteStorageOptions): StorageAdapter {
  // from compiled code the worker sits next to this file; when tests run the
  // TypeScript source directly, use the compiled worker (npm test builds first)
  const workerUrl = import.meta.url.endsWith('.ts')
    ? new URL('../../dist/storage/sqlite-worker.js', import.meta.url)
    : new URL('./sqlite-worker.js', import.meta.url)
  const worker = new Worker(workerUrl, { workerData: { ...options, thread: 'main' } })
  // the worker must not keep a finished process alive; pending requests keep it referenced
  worker.unref()
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  let nextId = 1
  let dead: Error | null = null
  let closed = false

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
      worker.postMessage({ ...req, id })
    })
  }
  const committer = new GroupCommit<AppendItem, number>(batch => request<number[]>({ op: 'append', batch }))
  const check = (): void => {
    if (closed) throw new Error('sqlite storage is closed')
  }

  return {
    kind: 'sqlite',
    async load(document) {
      check()
      return request<LoadedDocument>({ op: 'load', document })
    },
    append(document, record) {
      if (closed) return Promise.reject(new Error('sqlite storage is closed'))
      return committer.enqueue({ document, record })
    },
    async compact(document, snapshot, upToSeq) {
      check()
      await request({ op: 'compact', document, snapshot, upToSeq })
    },
    async delete(document) {
      check()
      await committer.barrier().catch(() => undefined)
      await request({ op: 'delete', document })
    },
    async list() {
      check()
      return request<DocumentInfo[]>({ op: 'list' })
    },
    flush: () => committer.barrier(),
    async ping() {
      check()
      await request({ op: 'ping' })
    },
    async close() {
      if (closed) return
      await committer.barrier().catch(() => undefined)
      closed = true
      await request({ op: 'close' }).catch(() => undefined)
      await worker.terminate()
    },
  }
}
