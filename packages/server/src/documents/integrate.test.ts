import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import type { ConcordError } from '@concord/protocol'
import { Integrator, OTHER_NODE, type Incoming, type Origin } from './integrate.js'
import { Admission } from './admission.js'
import { ClientOwners } from './client-owners.js'
import { DurableLog } from './durable-log.js'
import { ServerOrigin, type UpdateOrigin } from './origins.js'
import { createMemoryStorage } from '../storage/memory-storage.js'
import { silentLogger } from '../ops/logger.js'
import { FakeSession } from './testing.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'

/** The apply path with a real admission and log, and what it forwards recorded. */
function setup(): {
  ydoc: Y.Doc; storage: StorageAdapter; log: DurableLog; integrator: Integrator
  forwarded: { update: Uint8Array; origin: UpdateOrigin | null }[]; applied: { local: number; remote: number }
} {
  const ydoc = new Y.Doc()
  const storage = createMemoryStorage()
  const owners = new ClientOwners('d', storage, silentLogger())
  const admission = new Admission({ name: 'd', ydoc, approxBytes: 0 }, owners, {})
  const log = new DurableLog('d', { storage }, { durable: () => undefined, appended: () => undefined, appendedRelayed: () => undefined, fail: err => { throw err } })
  const forwarded: { update: Uint8Array; origin: UpdateOrigin | null }[] = []
  const applied = { local: 0, remote: 0 }
  const integrator = new Integrator(ydoc, {
    name: 'd', ydoc, admission, log,
    unavailable: () => null,
    refuse: (origin: UpdateOrigin | null, error: ConcordError, seq: number, closed: boolean) => origin?.documentError(error, seq, closed),
    beforeChange: () => null,
    applied: () => { applied.local++ },
    appliedRemote: () => { applied.remote++ },
    forward: (update, origin) => { forwarded.push({ update, origin }) },
    reset: err => { throw err },
  })
  return { ydoc, storage, log, integrator, forwarded, applied }
}

function updatesOf(fn: (d: Y.Doc) => void, doc = new Y.Doc()): Uint8Array[] {
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => { out.push(u) })
  fn(doc)
  return out
}

const item = (origin: Origin, seq: number, update: Uint8Array): Incoming => ({ origin, seq, update, at: performance.now() })

describe('the apply path, by origin', () => {
  it('a single client update is admitted, forwarded as received (no encode) to all but its sender, appended and acked once durable', async () => {
    const { ydoc, storage, log, integrator, forwarded, applied } = setup()
    const s = new FakeSession('alice')
    const [u] = updatesOf(d => d.getText('t').insert(0, 'hi'))
    integrator.apply([item(s, 1, u!)])
    expect(ydoc.getText('t').toString()).toBe('hi')
    expect(forwarded).toHaveLength(1)
    expect(forwarded[0]!.update).toBe(u)
    expect(forwarded[0]!.origin).toBe(s)
    expect(applied.local).toBe(1)
    await log.whenFlushed()
    expect(s.acks).toEqual([1])
    expect((await storage.load('d')).updates.map(r => r.userId)).toEqual(['alice'])
  })

  it('a batch is applied in one transaction: each update appended and acked on its own, one update forwarded for all', async () => {
    const { storage, log, integrator, forwarded } = setup()
    const a = new FakeSession('alice')
    const b = new FakeSession('bob')
    const ua = updatesOf(d => { d.getText('t').insert(0, 'a'); d.getText('t').insert(1, 'b') })
    const [ub] = updatesOf(d => d.getArray('x').push([1]))
    integrator.apply([item(a, 1, ua[0]!), item(a, 2, ua[1]!), item(b, 1, ub!)])
    // two writers: nobody is left out of what goes out
    expect(forwarded).toHaveLength(1)
    expect(forwarded[0]!.origin).toBeNull()
    const replica = new Y.Doc()
    Y.applyUpdate(replica, forwarded[0]!.update)
    expect(replica.getText('t').toString()).toBe('ab')
    expect(replica.getArray('x').toArray()).toEqual([1])
    await log.whenFlushed()
    expect(a.acks).toEqual([1, 2])
    expect(b.acks).toEqual([1])
    expect((await storage.load('d')).updates).toHaveLength(3)
  })

  it('a batch of one writer is not sent back to it; a refused update in a batch leaves the others applied', async () => {
    const { log, integrator, forwarded } = setup()
    const a = new FakeSession('alice')
    const [u1, u2, u3] = updatesOf(d => { d.getText('t').insert(0, 'a'); d.getText('t').insert(1, 'b'); d.getText('t').insert(2, 'c') })
    integrator.apply([item(a, 1, u1!), item(a, 3, u3!), item(a, 2, u2!)])
    expect(a.errorCodes).toEqual(['CONCORD_ERR_UPDATE_OUT_OF_ORDER'])
    expect(forwarded.map(f => f.origin)).toEqual([a])
    await log.whenFlushed()
    expect(a.acks).toEqual([1, 2])
  })

  it('an update that changes nothing is acked after the barrier, not forwarded and not appended', async () => {
    const { storage, log, integrator, forwarded } = setup()
    const s = new FakeSession('alice')
    const [u] = updatesOf(d => d.getText('t').insert(0, 'hi'))
    integrator.apply([item(s, 1, u!)])
    integrator.apply([item(s, 2, u!)])
    expect(forwarded).toHaveLength(1)
    await log.whenFlushed()
    expect(s.acks).toEqual([1, 2])
    expect((await storage.load('d')).updates).toHaveLength(1)
  })

  it('another node\'s update skips admission and the log: applied and forwarded to everyone, never appended', async () => {
    const { ydoc, storage, integrator, forwarded, applied } = setup()
    const [u] = updatesOf(d => d.getText('t').insert(0, 'remote'))
    integrator.apply([item(OTHER_NODE, 0, u!)])
    expect(ydoc.getText('t').toString()).toBe('remote')
    expect(forwarded).toEqual([{ update: u, origin: null }])
    expect(applied).toEqual({ local: 0, remote: 1 })
    expect((await storage.load('d')).updates).toHaveLength(0)
  })

  it('the server\'s update resolves once durable with whether it changed the document, and rejects with a client\'s refusal', async () => {
    const { integrator } = setup()
    const [u1, u2] = updatesOf(d => { d.getText('t').insert(0, 'a'); d.getText('t').insert(1, 'b') })
    const apply = (update: Uint8Array): Promise<{ changed: boolean }> => new Promise((resolve, reject) => {
      integrator.apply([item(new ServerOrigin('admin', resolve, reject), 1, update)])
    })
    await expect(apply(u2!)).rejects.toMatchObject({ code: 'CONCORD_ERR_UPDATE_OUT_OF_ORDER' })
    await expect(apply(u1!)).resolves.toEqual({ changed: true })
    await expect(apply(u1!)).resolves.toEqual({ changed: false })
  })
})
