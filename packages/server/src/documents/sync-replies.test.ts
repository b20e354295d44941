import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { SyncReplies, LARGE_DOCUMENT_BYTES, type SyncReply } from './sync-replies.js'
import { createMergeWorker, type MergeWorker } from './merge-worker.js'
import { ServerMetrics } from '../ops/metrics.js'

const workers: MergeWorker[] = []
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close()
})

/** A document as LiveDocument holds it: every update it applies is kept (as its sessions receive it). */
function setup(options: { worker?: boolean; compactEveryUpdates?: number } = {}): { doc: Y.Doc; replies: SyncReplies; metrics: ServerMetrics; sent: Uint8Array[] } {
  const doc = new Y.Doc()
  const metrics = new ServerMetrics({ processMetrics: false })
  let worker: MergeWorker | undefined
  if (options.worker) {
    worker = createMergeWorker()
    workers.push(worker)
  }
  let approx = 0
  const sent: Uint8Array[] = []
  const replies = new SyncReplies(doc, { ydoc: doc, drain: () => undefined, get approxBytes() { return approx } }, {
    compactEveryBytes: 1 << 30, compactEveryUpdates: options.compactEveryUpdates ?? 1000, metrics, worker,
  })
  doc.on('update', (u: Uint8Array) => {
    approx += u.length
    replies.keep(u)
    sent.push(u)
  })
  return { doc, replies, metrics, sent }
}

function bigText(doc: Y.Doc, bytes: number): void {
  const t = doc.getText('t')
  doc.transact(() => {
    for (let i = 0, n = 0; n < bytes; i++) {
      const s = `paragraph ${i} `.padEnd(1000, 'x')
      t.insert(Math.floor(t.length / 2), s)
      n += s.length
    }
  })
}

/** Full encodes on this thread so far. */
async function encodes(metrics: ServerMetrics): Promise<number> {
  return (await metrics.syncFullEncodes.get()).values[0]?.value ?? 0
}

async function workerReplies(metrics: ServerMetrics): Promise<number> {
  const line = (await metrics.text()).split('\n').find(l => l.startsWith('concord_sync_replies_total{source="worker"}'))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

/** A peer that starts from `from` and applies `parts` in order. */
function peerOf(from: Uint8Array | null, parts: Uint8Array[]): Y.Doc {
  const d = new Y.Doc()
  if (from !== null) Y.applyUpdate(d, from)
  for (const p of parts) Y.applyUpdate(d, p)
  return d
}

const all = (r: SyncReply): Uint8Array[] => [...r.updates, r.step2]

describe('SyncReplies', () => {
  it('a small document is encoded once per change, however many peers ask', async () => {
    const { doc, replies, metrics } = setup()
    doc.getText('t').insert(0, 'hello')
    const first = replies.now()
    for (let i = 0; i < 10; i++) expect(replies.now(Y.encodeStateVector(new Y.Doc())).step2).toBe(first.step2)
    expect(await encodes(metrics)).toBe(1)
    // the same state vector again: the same diff
    const sv = Y.encodeStateVector(peerOf(null, [first.step2]))
    doc.getText('t').insert(5, ' world')
    const diff = replies.now(sv)
    expect(replies.now(sv)).toBe(diff)
    expect(await encodes(metrics)).toBe(2)
    // a change: encoded again
    expect(replies.now().step2).not.toBe(first.step2)
    expect(await encodes(metrics)).toBe(3)
    expect(peerOf(null, all(replies.now())).getText('t').toString()).toBe('hello world')
  })

  it('a large document\'s first full encode becomes its base: later peers get it and the updates since, with no encode', async () => {
    const { doc, replies, metrics } = setup()
    bigText(doc, 400 * 1024)
    const first = replies.now()
    expect(first.step2.length).toBeGreaterThanOrEqual(LARGE_DOCUMENT_BYTES)
    doc.getText('t').insert(0, 'live ')
    doc.getText('t').delete(10, 3)
    for (let i = 0; i < 20; i++) {
      const r = replies.now()
      expect(r.step2).toBe(first.step2)
      expect(r.updates).toHaveLength(1) // the two updates since, merged
    }
    expect(await encodes(metrics)).toBe(1)
    const peer = peerOf(null, all(replies.now()))
    expect(peer.getText('t').toString()).toBe(doc.getText('t').toString())
    expect(peer.store.pendingStructs).toBeNull()
  })

  it('a diff of a large document is computed in the merge worker; what is applied meanwhile reaches the peer as updates, and the peer ends equal in either order', async () => {
    const { doc, replies, metrics, sent } = setup({ worker: true })
    bigText(doc, 400 * 1024)
    replies.now() // the base
    // a peer that holds the document up to here, then misses what follows
    const held = Y.encodeStateAsUpdate(doc)
    const t = doc.getText('t')
    for (let i = 0; i < 5; i++) t.insert(i * 50, `<before ${i}>`)
    const pending = replies.prepare(Y.encodeStateVector(peerOf(held, [])))
    expect(pending).toBeInstanceOf(Promise)
    // applied while the worker works: the session receives these as updates
    const mark = sent.length
    for (let i = 0; i < 5; i++) {
      t.insert(i * 70, `<meanwhile ${i}>`)
      t.delete(1000 + i * 10, 4)
    }
    const meanwhile = sent.slice(mark)
    const reply = await pending
    expect(await workerReplies(metrics)).toBe(1)
    expect(await encodes(metrics)).toBe(1)
    // the reply is small: it holds what the peer lacked, not the document
    expect(all(reply).reduce((n, u) => n + u.length, 0)).toBeLessThan(50_000)
    for (const order of [[...meanwhile, ...all(reply)], [...all(reply), ...meanwhile]]) {
      const peer = peerOf(held, order)
      expect(peer.getText('t').toString()).toBe(t.toString())
      expect(peer.store.pendingStructs).toBeNull()
      expect(peer.store.pendingDs).toBeNull()
    }
  })

  it('updates since the base are folded into a new base in the worker when they grow long, without an encode here', async () => {
    const { doc, replies, metrics } = setup({ worker: true, compactEveryUpdates: 2 })
    bigText(doc, 300 * 1024)
    const base = replies.now().step2
    const t = doc.getText('t')
    for (let i = 0; i < 9; i++) t.insert(i, `${i}`) // more than 4 x compactEveryUpdates: a fold starts
    await expect.poll(() => replies.now().step2 !== base, { timeout: 10_000 }).toBe(true)
    const r = replies.now()
    expect(r.updates).toEqual([])
    expect(peerOf(null, all(r)).getText('t').toString()).toBe(t.toString())
    // updates after the fold are kept on top of the folded base
    t.insert(0, 'after ')
    expect(peerOf(null, all(replies.now())).getText('t').toString()).toBe(t.toString())
    expect(await encodes(metrics)).toBe(1)
  })

  it('without a usable worker, diffs are encoded here', async () => {
    const { doc, replies, metrics } = setup({ worker: true })
    await workers[0]!.close()
    bigText(doc, 300 * 1024)
    const held = Y.encodeStateAsUpdate(doc)
    doc.getText('t').insert(0, 'new ')
    const reply = replies.prepare(Y.encodeStateVector(peerOf(held, [])))
    expect(reply).not.toBeInstanceOf(Promise)
    expect(peerOf(held, all(reply as SyncReply)).getText('t').toString()).toBe(doc.getText('t').toString())
    expect(await workerReplies(metrics)).toBe(0)
  })

  it('a state vector that cannot be decoded throws', () => {
    const { doc, replies } = setup()
    doc.getText('t').insert(0, 'x')
    expect(() => replies.prepare(new Uint8Array([0xff, 0xff, 0xff]))).toThrow()
  })
})
