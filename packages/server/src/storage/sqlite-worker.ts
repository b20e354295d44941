import { parentPort, workerData } from 'node:worker_threads'
import { DEFAULT_WORKER_NICE, SqliteLog, type SqliteStorageOptions } from './sqlite-log.js'
import { unpackAppendBatch, type PackedAppendBatch } from './append-packing.js'
import { lowerThreadPriority } from './thread-priority.js'

/** Worker-thread side of the SQLite adapter: owns the database, answers requests in order. */
export type SqliteRequest =
  | { id: number; op: 'append'; packed: PackedAppendBatch }
  | { id: number; op: 'load'; document: string }
  | { id: number; op: 'compact'; document: string; snapshot: Uint8Array; upToSeq: number }
  | { id: number; op: 'delete'; document: string }
  | { id: number; op: 'list' }
  | { id: number; op: 'ping' }
  | { id: number; op: 'history'; method: HistoryMethod; args: unknown[] }
  | { id: number; op: 'close' }

/** The history operations, run as `log[method](...args)`. */
export type HistoryMethod = 'saveVersion' | 'listVersions' | 'loadVersion' | 'pruneVersions' | 'deleteVersion' | 'versionStorage' | 'recordAuthors' | 'loadAuthors'
const HISTORY_METHODS = new Set<string>(['saveVersion', 'listVersions', 'loadVersion', 'pruneVersions', 'deleteVersion', 'versionStorage', 'recordAuthors', 'loadAuthors'])

export type SqliteResponse =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string }

const port = parentPort
if (port === null) throw new Error('sqlite-worker must run in a worker thread')

const options = workerData as SqliteStorageOptions
lowerThreadPriority(options.workerNice ?? DEFAULT_WORKER_NICE)

let log: SqliteLog | null = null
let openError: Error | null = null
try {
  log = new SqliteLog(options)
} catch (err) {
  openError = err as Error
}

port.on('message', (req: SqliteRequest) => {
  try {
    if (log === null) throw openError ?? new Error('database is closed')
    let value: unknown
    switch (req.op) {
      case 'append': {
        const seqs = Float64Array.from(log.append(unpackAppendBatch(req.packed)))
        port.postMessage({ id: req.id, ok: true, value: seqs } satisfies SqliteResponse, [seqs.buffer])
        return
      }
      case 'load':
        value = log.load(req.document)
        break
      case 'compact':
        log.compact(req.document, req.snapshot, req.upToSeq)
        break
      case 'delete':
        log.delete(req.document)
        break
      case 'list':
        value = log.list()
        break
      case 'ping':
        log.ping()
        break
      case 'history': {
        if (!HISTORY_METHODS.has(req.method)) throw new Error(`unknown history method ${req.method}`)
        const fn = log[req.method] as (...args: unknown[]) => unknown
        value = fn.apply(log, req.args)
        break
      }
      case 'close':
        log.close()
        log = null
        openError = new Error('database is closed')
        break
    }
    port.postMessage({ id: req.id, ok: true, value } satisfies SqliteResponse)
  } catch (err) {
    port.postMessage({ id: req.id, ok: false, message: (err as Error).message } satisfies SqliteResponse)
  }
})
