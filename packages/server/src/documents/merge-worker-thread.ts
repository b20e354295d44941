import { parentPort } from 'node:worker_threads'
import * as Y from 'yjs'
import type { MergeRequest, MergeResponse } from './merge-worker.js'

/**
 * Worker-thread side of `MergeWorker`: Yjs work on encoded updates, without a Y.Doc, off the
 * main thread. Requests are answered in order; every result is a fresh buffer, transferred back.
 */
const port = parentPort
if (port === null) throw new Error('merge-worker-thread must run in a worker thread')

/** Updates merged at once: Y.mergeUpdates grows faster than linearly with their number. */
const MERGE_GROUP = 64

port.on('message', (req: MergeRequest) => {
  try {
    if (req.op === 'fold') {
      const [base, ...rest] = req.parts
      const groups: Uint8Array[] = []
      for (let i = 0; i < rest.length; i += MERGE_GROUP) {
        const group = rest.slice(i, i + MERGE_GROUP)
        groups.push(group.length === 1 ? group[0]! : Y.mergeUpdates(group))
      }
      const folded = own(groups.length === 0 ? base! : Y.mergeUpdates([base!, ...groups]))
      port.postMessage({ id: req.id, ok: true, update: folded } satisfies MergeResponse, [folded.buffer as ArrayBuffer])
      return
    }
    // what a peer with this state vector lacks: of the base, and of each update since (each keeps
    // its delete set; one that adds nothing and deletes nothing is left out)
    const step2 = own(Y.diffUpdate(req.base, req.stateVector))
    const updates: Uint8Array[] = []
    for (const u of req.updates) {
      const d = own(Y.diffUpdate(u, req.stateVector))
      if (!isEmptyUpdate(d)) updates.push(d)
    }
    port.postMessage({ id: req.id, ok: true, step2, updates } satisfies MergeResponse, [step2.buffer as ArrayBuffer, ...updates.map(u => u.buffer as ArrayBuffer)])
  } catch (err) {
    port.postMessage({ id: req.id, ok: false, message: (err as Error).message } satisfies MergeResponse)
  }
})

/** A copy in a buffer of its own (a result may be, or share the buffer of, an input in shared memory). */
function own(u: Uint8Array): Uint8Array {
  return u.byteOffset === 0 && u.byteLength === u.buffer.byteLength && !(u.buffer instanceof SharedArrayBuffer) ? u : u.slice()
}

/** A Yjs v1 update with no structs and an empty delete set. */
function isEmptyUpdate(u: Uint8Array): boolean {
  return u.length === 2 && u[0] === 0 && u[1] === 0
}
