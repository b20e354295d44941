import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'

/** What the thread is asked (see merge-worker-thread.ts). */
export type MergeOp =
  | { op: 'fold'; parts: Uint8Array[] }
  | { op: 'diff'; base: Uint8Array; updates: Uint8Array[]; stateVector: Uint8Array }

export type MergeRequest = MergeOp & { id: number }

export type MergeResponse =
  | { id: number; ok: true; update: Uint8Array }
  | { id: number; ok: true; step2: Uint8Array; updates: Uint8Array[] }
  | { id: number; ok: false; message: string }

/** After this many failures of its thread, the worker is no longer used (callers work on their own thread). */
const MAX_FAILURES = 3

/**
 * Yjs merges and diffs of encoded updates in a worker thread, so that encoding a large document
 * for a peer does not block the event loop (a 4 MB document took 70-80 ms to diff or merge here;
 * one of many small edits, 10 MB, over a second). One thread per server, started on first use
 * and not keeping the process alive while idle. Requests are answered in order.
 *
 * Large inputs that are sent again and again (a document's kept base state) are copied into
 * shared memory once, so a request costs the main thread no copy of them.
 */
export class MergeWorker {
  readonly #log: Logger | null
  #worker: Worker | null = null
  readonly #pending = new Map<number, { resolve: (r: MergeResponse) => void; reject: (e: Error) => void }>()
  #nextId = 1
  #failures = 0
  #closed = false
  /** Copies in shared memory of inputs sent before, by the original. */
  readonly #shared = new WeakMap<Uint8Array, Uint8Array>()

  constructor(options: { logger?: Logger } = {}) {
    this.#log = options.logger ?? null
  }

  /** False once the worker is closed or its thread failed too often: callers do the work themselves. */
  get available(): boolean {
    return !this.#closed && this.#failures < MAX_FAILURES
  }

  /** `base` followed by `updates`, merged into one update. */
  async fold(base: Uint8Array, updates: readonly Uint8Array[]): Promise<Uint8Array> {
    const res = await this.#request({ op: 'fold', parts: [this.#share(base), ...updates] })
    if (!('update' in res)) throw new Error('merge worker: unexpected answer to fold')
    return res.update
  }

  /** What a peer with `stateVector` lacks of `base` (as step 2), and of each of `updates` (those that add nothing are left out). */
  async diff(base: Uint8Array, updates: readonly Uint8Array[], stateVector: Uint8Array): Promise<{ updates: Uint8Array[]; step2: Uint8Array }> {
    const res = await this.#request({ op: 'diff', base: this.#share(base), updates: updates.map(u => this.#share(u)), stateVector: stateVector.slice() })
    if (!('step2' in res)) throw new Error('merge worker: unexpected answer to diff')
    return { updates: res.updates, step2: res.step2 }
  }

  async close(): Promise<void> {
    this.#closed = true
    const worker = this.#worker
    this.#worker = null
    this.#failAll(new Error('merge worker closed'))
    if (worker !== null) await worker.terminate()
  }

  /**
   * Inputs of 64 KiB or more go to the thread through shared memory: copied once (the same
   * object is not copied again), then handed over at no cost. Smaller ones are copied each time.
   */
  #share(u: Uint8Array): Uint8Array {
    if (u.length < 64 * 1024 || u.buffer instanceof SharedArrayBuffer) return u
    let s = this.#shared.get(u)
    if (s === undefined) {
      s = new Uint8Array(new SharedArrayBuffer(u.length))
      s.set(u)
      this.#shared.set(u, s)
    }
    return s
  }

  #request(req: MergeOp): Promise<MergeResponse> {
    if (!this.available) return Promise.reject(new Error('merge worker unavailable'))
    const worker = this.#start()
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, {
        resolve: res => (res.ok ? resolve(res) : reject(new Error(`merge worker: ${res.message}`))),
        reject,
      })
      worker.ref()
      worker.postMessage({ ...req, id } satisfies MergeRequest)
    })
  }

  #start(): Worker {
    if (this.#worker !== null) return this.#worker
    // from compiled code the thread sits next to this file; when tests run the TypeScript
    // source directly, use the compiled one (npm test builds first)
    const url = import.meta.url.endsWith('.ts')
      ? new URL('../../dist/documents/merge-worker-thread.js', import.meta.url)
      : new URL('./merge-worker-thread.js', import.meta.url)
    const worker = new Worker(url)
    worker.unref()
    worker.on('message', (res: MergeResponse) => {
      const p = this.#pending.get(res.id)
      if (p === undefined) return
      this.#pending.delete(res.id)
      if (this.#pending.size === 0) worker.unref()
      p.resolve(res)
    })
    const failed = (err: Error): void => {
      if (this.#worker !== worker) return
      this.#worker = null
      this.#failures++
      this.#log?.warn({ err, failures: this.#failures }, 'merge worker failed; requests in flight are answered on the main thread')
      this.#failAll(err)
    }
    worker.on('error', err => failed(err))
    worker.on('exit', code => failed(new Error(`merge worker exited (${code})`)))
    this.#worker = worker
    return worker
  }

  #failAll(err: Error): void {
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) p.reject(err)
  }
}

export function createMergeWorker(options: { logger?: Logger } = {}): MergeWorker {
  return new MergeWorker(options)
}
