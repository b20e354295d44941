// Load-generator worker threads and a tiny message protocol:
//   worker -> main: { type: 'ready' | 'done' | ..., ... }  or  { type: 'error', message }
//   main -> worker: { type: 'go' | 'close' | ..., ... }
import { Worker, parentPort } from 'node:worker_threads'

/** Main-thread handle of one worker. */
export class WorkerHandle {
  constructor (fileUrl, workerData, name) {
    this.name = name
    this.queue = []
    this.waiters = []
    this.failure = null
    this.exited = false
    this.worker = new Worker(fileUrl, { workerData })
    this.worker.on('message', (m) => {
      if (m && m.type === 'error') return this._fail(new Error(`${name}: ${m.message}`))
      const i = this.waiters.findIndex(w => w.type === m.type)
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1)
        clearTimeout(w.timer)
        w.resolve(m)
      } else this.queue.push(m)
    })
    this.worker.on('error', (e) => this._fail(new Error(`${name}: ${e.stack || e.message}`)))
    this.worker.on('exit', (code) => {
      this.exited = true
      if (!this.terminating) this._fail(new Error(`${name} exited (code ${code}) unexpectedly`))
    })
  }

  _fail (err) {
    if (!this.failure) this.failure = err
    for (const w of this.waiters.splice(0)) { clearTimeout(w.timer); w.reject(this.failure) }
  }

  /** Resolves with the next message of `type` (rejects on worker error or after timeoutMs). */
  next (type, timeoutMs = 60000) {
    const i = this.queue.findIndex(m => m.type === type)
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0])
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      const w = { type, resolve, reject }
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        reject(new Error(`${this.name}: no '${type}' message within ${Math.round(timeoutMs / 1000)} s`))
      }, timeoutMs)
      this.waiters.push(w)
    })
  }

  post (msg) { if (!this.exited) this.worker.postMessage(msg) }

  async terminate () {
    this.terminating = true
    if (!this.exited) await this.worker.terminate()
  }
}

/** Terminates every handle (ignores errors). */
export async function terminateAll (handles) {
  await Promise.all(handles.map(h => h.terminate().catch(() => {})))
}

// ---- worker side ----

/** Messages from the main thread, awaited by type. */
export function workerInbox () {
  const queue = []
  const waiters = []
  parentPort.on('message', (m) => {
    const i = waiters.findIndex(w => w.type === m.type)
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m)
    else queue.push(m)
  })
  return {
    next (type) {
      const i = queue.findIndex(m => m.type === type)
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0])
      return new Promise(resolve => waiters.push({ type, resolve }))
    }
  }
}

export function send (msg, transfer) { parentPort.postMessage(msg, transfer) }

/** Runs `main` in a worker; reports a thrown error to the main thread as { type: 'error' }. */
export function runWorker (main) {
  main().catch((e) => {
    send({ type: 'error', message: e && e.stack ? e.stack : String(e) })
  })
}

export const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))
