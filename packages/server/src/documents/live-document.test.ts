import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { LiveDocument } from './live-document.js'
import { createMemoryStorage } from '../storage/memory-storage.js'
import { silentLogger } from '../ops/logger.js'
import { FakeSession, until } from './testing.js'
import { BIG_ROOM_SESSIONS, BIG_ROOM_WINDOW_MS } from './room-tick.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'

function load(storage: StorageAdapter, opts: Partial<{ compactEveryUpdates: number; onFailed: () => void }> = {}): Promise<LiveDocument> {
  return LiveDocument.load('d', {
    storage, logger: silentLogger(), presenceThrottleMs: 30,
    compactEveryUpdates: opts.compactEveryUpdates ?? 1000, compactEveryBytes: 1 << 30, onFailed: opts.onFailed,
  })
}

function updatesOf(fn: (d: Y.Doc) => void, doc = new Y.Doc()): Uint8Array[] {
  const out: Uint8Array[] = []
  const h = (u: Uint8Array): void => { out.push(u) }
  doc.on('update', h)
  fn(doc)
  doc.off('update', h)
  return out
}

describe('LiveDocument edit path', () => {
  it('refuses updates whose dependencies have not arrived yet (nothing is held back by Yjs), and takes them once re-sent after what they need', async () => {
    const storage = createMemoryStorage()
    const doc = await load(storage)
    const writer = new FakeSession('writer')
    const listener = new FakeSession('listener')
    doc.addSession(writer)
    doc.addSession(listener)
    const [u1, u2, u3] = updatesOf(d => {
      d.getText('t').insert(0, 'a')
      d.getText('t').insert(1, 'b')
      d.getText('t').insert(2, 'c')
    })
    doc.applyUpdate(writer, 2, u2!) // depends on u1
    doc.applyUpdate(writer, 3, u3!)
    await until(() => writer.errors.length >= 2, 'both refusals')
    expect(writer.errors).toEqual([
      { code: 'CONCORD_ERR_UPDATE_OUT_OF_ORDER', seq: 2, closed: false },
      { code: 'CONCORD_ERR_UPDATE_OUT_OF_ORDER', seq: 3, closed: false },
    ])
    expect(writer.acks).toEqual([])
    expect((await storage.load('d')).updates).toHaveLength(0)
    expect(doc.ydoc.store.pendingStructs).toBeNull()
    expect(listener.updates).toEqual([])
    // the client re-sends what is unacked, in order
    doc.applyUpdate(writer, 1, u1!)
    doc.applyUpdate(writer, 2, u2!)
    doc.applyUpdate(writer, 3, u3!)
    // the three go out in one fan-out (one event-loop turn), the acks once they are durable
    await until(() => writer.acks.length >= 3 && listener.updates.length > 0, 'the acks and the fan-out')
    expect(writer.acks.sort()).toEqual([1, 2, 3])
    expect(doc.ydoc.getText('t').toString()).toBe('abc')
    const replica = new Y.Doc()
    for (const u of listener.updates) Y.applyUpdate(replica, u)
    expect(replica.getText('t').toString()).toBe('abc')
    expect(replica.store.pendingStructs).toBeNull()
    const reloaded = await load(storage)
    expect(reloaded.ydoc.getText('t').toString()).toBe('abc')
  })

  it('acks a no-op update without storing or forwarding it again', async () => {
    const storage = createMemoryStorage({ commitDelayMs: 30 })
    const doc = await load(storage)
    const a = new FakeSession('a')
    const b = new FakeSession('b')
    doc.addSession(a)
    doc.addSession(b)
    const [u] = updatesOf(d => d.getText('t').insert(0, 'x'))
    doc.applyUpdate(a, 1, u!)
    doc.applyUpdate(b, 7, u!) // b sends the same content: nothing new
    await new Promise(r => setTimeout(r, 5))
    // not before the commit that carries the content is durable
    expect(b.acks).toEqual([])
    await new Promise(r => setTimeout(r, 60))
    expect(a.acks).toEqual([1])
    expect(b.acks).toEqual([7])
    expect((await storage.load('d')).updates).toHaveLength(1)
    expect(a.updates).toHaveLength(0)
    expect(b.updates).toHaveLength(1)
  })

  it('coalesces updates of one event-loop turn into one frame per listener and never echoes a writer its own updates', async () => {
    const doc = await load(createMemoryStorage())
    const w1 = new FakeSession('w1')
    const w2 = new FakeSession('w2')
    const l = new FakeSession('l')
    for (const s of [w1, w2, l]) doc.addSession(s)
    const d1 = new Y.Doc()
    const d2 = new Y.Doc()
    const a = updatesOf(d => { for (let i = 0; i < 10; i++) d.getText('t').insert(i, 'a') }, d1)
    const b = updatesOf(d => { for (let i = 0; i < 5; i++) d.getArray('x').push([i]) }, d2)
    a.forEach((u, i) => doc.applyUpdate(w1, i + 1, u))
    b.forEach((u, i) => doc.applyUpdate(w2, i + 1, u))
    // everything applied in this turn goes out in one fan-out
    await until(() => l.updates.length > 0, 'the fan-out')
    // the listener gets one merged frame; each writer gets the other's updates as they were
    expect(l.updates).toHaveLength(1)
    expect(w1.updates).toHaveLength(b.length)
    expect(w2.updates).toHaveLength(a.length)
    const atW1 = new Y.Doc()
    for (const u of w1.updates) Y.applyUpdate(atW1, u)
    const atW2 = new Y.Doc()
    for (const u of w2.updates) Y.applyUpdate(atW2, u)
    expect(atW2.getText('t').toString()).toBe('aaaaaaaaaa')
    expect(atW2.getArray('x').toArray()).toEqual([])
    expect(atW1.getText('t').toString()).toBe('')
    expect(atW1.getArray('x').toArray()).toEqual([0, 1, 2, 3, 4])
    const atL = new Y.Doc()
    Y.applyUpdate(atL, l.updates[0]!)
    expect(atL.getText('t').toString()).toBe('aaaaaaaaaa')
  })

  it('a few updates of one turn go out as they are, each writer getting only the others\' updates', async () => {
    const doc = await load(createMemoryStorage())
    const w1 = new FakeSession('w1')
    const w2 = new FakeSession('w2')
    const l = new FakeSession('l')
    for (const s of [w1, w2, l]) doc.addSession(s)
    const a = updatesOf(d => { d.getText('t').insert(0, 'a'); d.getText('t').insert(1, 'b') }, new Y.Doc())
    const b = updatesOf(d => { d.getArray('x').push([1]) }, new Y.Doc())
    a.forEach((u, i) => doc.applyUpdate(w1, i + 1, u))
    b.forEach((u, i) => doc.applyUpdate(w2, i + 1, u))
    await until(() => l.updates.length > 0, 'the fan-out')
    expect(l.updates).toEqual([...a, ...b])
    expect(w1.updates).toEqual(b)
    expect(w2.updates).toEqual(a)
  })

  it('rejects a malformed update with a coded error and leaves the document as it was', async () => {
    const storage = createMemoryStorage()
    const doc = await load(storage)
    const s = new FakeSession('s')
    doc.addSession(s)
    const [good] = updatesOf(d => d.getText('t').insert(0, 'ok'))
    doc.applyUpdate(s, 1, good!)
    doc.applyUpdate(s, 2, good!.subarray(0, good!.length - 2))
    await until(() => s.acks.length > 0, 'the ack of the good update')
    expect(s.errors).toEqual([{ code: 'CONCORD_ERR_UPDATE_MALFORMED', seq: 2, closed: false }])
    expect(s.acks).toEqual([1])
    expect(doc.ydoc.getText('t').toString()).toBe('ok')
  })

  it('when an append fails, no ack is sent, sessions are told the document closed, and the owner is notified', async () => {
    const storage = createMemoryStorage()
    storage.append = () => Promise.reject(new Error('disk full'))
    let failed = 0
    const doc = await load(storage, { onFailed: () => { failed++ } })
    const s = new FakeSession('s')
    doc.addSession(s)
    const [u] = updatesOf(d => d.getText('t').insert(0, 'lost?'))
    doc.applyUpdate(s, 1, u!)
    await until(() => failed > 0, 'the failure')
    expect(s.acks).toEqual([])
    expect(s.errors).toEqual([{ code: 'CONCORD_ERR_STORAGE_WRITE_FAILED', seq: 0, closed: true }])
    expect(failed).toBe(1)
    expect(doc.stats.failed).toBe(true)
  })

  it('an update Yjs fails to integrate: its sender gets UPDATE_MALFORMED, everyone gets DOC_RESET, and the owner reloads from the log', async () => {
    const storage = createMemoryStorage()
    let failed = 0
    const doc = await load(storage, { onFailed: () => { failed++ } })
    const a = new FakeSession('a')
    const b = new FakeSession('b')
    doc.addSession(a)
    doc.addSession(b)
    const [good, bad] = updatesOf(d => { d.getText('t').insert(0, 'kept'); d.getText('t').insert(4, '!') })
    doc.applyUpdate(a, 1, good!)
    await doc.whenFlushed()
    // simulate an integration failure inside Yjs
    doc.ydoc.on('beforeTransaction', () => { throw new Error('integration failed') })
    doc.applyUpdate(a, 2, bad!)
    expect(a.errors).toEqual([
      { code: 'CONCORD_ERR_UPDATE_MALFORMED', seq: 2, closed: false },
      { code: 'CONCORD_ERR_DOC_RESET', seq: 0, closed: true },
    ])
    expect(b.errors).toEqual([{ code: 'CONCORD_ERR_DOC_RESET', seq: 0, closed: true }])
    expect(failed).toBe(1)
    expect(a.acks).toEqual([1])
    const reloaded = await load(storage)
    expect(reloaded.ydoc.getText('t').toString()).toBe('kept')
  })

  it('compacts by threshold: a reload reads one snapshot and a tail below the threshold', async () => {
    const storage = createMemoryStorage()
    const doc = await load(storage, { compactEveryUpdates: 10 })
    const s = new FakeSession('s')
    doc.addSession(s)
    const ups = updatesOf(d => { for (let i = 0; i < 35; i++) d.getText('t').insert(i, String(i % 10)) })
    ups.forEach((u, i) => doc.applyUpdate(s, i + 1, u))
    await doc.whenFlushed()
    // compactions follow one another until the tail is below the threshold
    await until(() => doc.stats.tail.updates < 10, 'the compactions')
    const loaded = await storage.load('d')
    expect(loaded.snapshot).not.toBeNull()
    expect(loaded.updates.length).toBeLessThan(10)
    const reloaded = await load(storage)
    expect(reloaded.ydoc.getText('t').toString()).toBe(doc.ydoc.getText('t').toString())
    expect(reloaded.ydoc.getText('t').length).toBe(35)
  })

  it('relays presence coalesced per room and removes a session\'s states when it leaves', async () => {
    const { Awareness, encodeAwarenessUpdate, applyAwarenessUpdate } = await import('y-protocols/awareness')
    const doc = await load(createMemoryStorage())
    const a = new FakeSession('a')
    const b = new FakeSession('b')
    doc.addSession(a)
    doc.addSession(b)
    const local = new Awareness(new Y.Doc())
    for (let i = 0; i < 20; i++) {
      local.setLocalStateField('cursor', i)
      doc.presence.apply(a, encodeAwarenessUpdate(local, [local.clientID]))
    }
    await new Promise(r => setTimeout(r, 80))
    // 20 changes inside one throttle window: at most 2 relays (leading and trailing)
    expect(b.awareness.length).toBeGreaterThan(0)
    expect(b.awareness.length).toBeLessThanOrEqual(2)
    const seen = new Awareness(new Y.Doc())
    for (const u of b.awareness) applyAwarenessUpdate(seen, u, 'server')
    expect((seen.getStates().get(local.clientID) as { cursor: number }).cursor).toBe(19)
    doc.removeSession(a)
    await new Promise(r => setTimeout(r, 60))
    for (const u of b.awareness) applyAwarenessUpdate(seen, u, 'server')
    expect(seen.getStates().has(local.clientID)).toBe(false)
    local.destroy()
    seen.destroy()
    doc.destroy()
  })

  it('a session shows at most 8 presence client ids at once; those it removes or leaves behind free their place', async () => {
    const { Awareness, encodeAwarenessUpdate } = await import('y-protocols/awareness')
    const doc = await load(createMemoryStorage())
    const a = new FakeSession('a')
    doc.addSession(a)
    const clients = Array.from({ length: 9 }, () => new Awareness(new Y.Doc()))
    const show = (c: InstanceType<typeof Awareness>, state: Record<string, unknown> | null, session = a): void => {
      c.setLocalState(state)
      doc.presence.apply(session, encodeAwarenessUpdate(c, [c.clientID]))
    }
    for (const c of clients.slice(0, 8)) show(c, { n: 1 })
    expect(a.errorCodes).toEqual([])
    show(clients[8]!, { n: 1 })
    expect(a.errorCodes).toEqual(['CONCORD_ERR_LIMIT_PRESENCE'])
    expect(doc.presence.awareness.getStates().has(clients[8]!.clientID)).toBe(false)
    // one of the eight is removed: the ninth fits
    show(clients[0]!, null)
    show(clients[8]!, { n: 2 })
    expect(a.errorCodes).toEqual(['CONCORD_ERR_LIMIT_PRESENCE'])
    expect(doc.presence.awareness.getStates().has(clients[8]!.clientID)).toBe(true)
    // leaving removes all it shows; back in, it has its eight places again
    doc.removeSession(a)
    expect([...doc.presence.awareness.getStates().keys()]).toEqual([])
    const again = new FakeSession('a')
    doc.addSession(again)
    for (const c of clients.slice(1)) show(c, { n: 3 }, again)
    expect(again.errorCodes).toEqual([])
    expect(doc.presence.awareness.getStates().size).toBe(8)
    for (const c of clients) c.destroy()
    doc.destroy()
  })
})

describe('LiveDocument in a big room', () => {
  /** Records, for each message sent, the corked span it was sent in (0: not corked). */
  class SpanSession extends FakeSession {
    static spans = 0
    depth = 0
    span = 0
    readonly sent: { kind: 'update' | 'awareness'; span: number }[] = []
    cork(): void { if (this.depth++ === 0) this.span = ++SpanSession.spans }
    uncork(): void { if (--this.depth === 0) this.span = 0 }
    override sendUpdate(m: Parameters<FakeSession['sendUpdate']>[0]): void { this.sent.push({ kind: 'update', span: this.span }); super.sendUpdate(m) }
    override sendAwareness(m: Parameters<FakeSession['sendAwareness']>[0]): void { this.sent.push({ kind: 'awareness', span: this.span }); super.sendAwareness(m) }
  }

  it(`with ${BIG_ROOM_SESSIONS} sessions, an edit and a presence change made together reach each session in one corked send`, async () => {
    const { Awareness, encodeAwarenessUpdate } = await import('y-protocols/awareness')
    const doc = await load(createMemoryStorage())
    const sessions = Array.from({ length: BIG_ROOM_SESSIONS }, (_, i) => new SpanSession(`s${i}`))
    for (const s of sessions) doc.addSession(s)
    const [writer, ...listeners] = sessions as [SpanSession, ...SpanSession[]]
    const replica = new Y.Doc()
    const local = new Awareness(replica)
    const [update] = updatesOf(d => { d.getText('t').insert(0, 'hello') }, replica)
    local.setLocalStateField('cursor', 5)
    doc.applyUpdate(writer, 1, update!)
    doc.presence.apply(writer, encodeAwarenessUpdate(local, [local.clientID]))
    await until(() => listeners.every(s => s.updates.length === 1 && s.awareness.length === 1), 'the edit and the presence at everyone')
    for (const s of listeners) {
      expect(s.sent.map(m => m.kind)).toEqual(['update', 'awareness'])
      expect(s.sent[0]!.span).toBeGreaterThan(0)
      expect(s.sent[1]!.span).toBe(s.sent[0]!.span)
      expect(s.depth).toBe(0)
    }
    // the writer gets its own presence back, never its own edit
    expect(writer.updates).toEqual([])
    local.destroy()
    doc.destroy()
  })

  it('a presence change alone goes out on the room\'s tick, corked, and the next waits a period', async () => {
    const { Awareness, encodeAwarenessUpdate } = await import('y-protocols/awareness')
    const doc = await load(createMemoryStorage())
    const sessions = Array.from({ length: BIG_ROOM_SESSIONS }, (_, i) => new SpanSession(`p${i}`))
    for (const s of sessions) doc.addSession(s)
    const [mover, listener] = sessions as [SpanSession, SpanSession]
    const local = new Awareness(new Y.Doc())
    const sentAt: number[] = []
    const receivedAt: number[] = []
    const origPush = listener.awareness.push.bind(listener.awareness)
    listener.awareness.push = (...items: Uint8Array[]) => { receivedAt.push(performance.now()); return origPush(...items) }
    for (let i = 0; i < 2; i++) {
      local.setLocalStateField('cursor', i)
      sentAt.push(performance.now())
      doc.presence.apply(mover, encodeAwarenessUpdate(local, [local.clientID]))
      await until(() => listener.awareness.length === i + 1, `presence ${i}`)
    }
    expect(listener.sent.map(m => m.kind)).toEqual(['awareness', 'awareness'])
    for (const m of listener.sent) expect(m.span).toBeGreaterThan(0)
    // the second change came within the period of the first relay (a tick no earlier than the first
    // change): it waited for the next tick (less 1 ms: timers count whole milliseconds)
    expect(receivedAt[1]! - sentAt[0]!).toBeGreaterThanOrEqual(Math.max(BIG_ROOM_WINDOW_MS, doc.presence.periodMs) - 1)
    local.destroy()
    doc.destroy()
  })
})

describe('LiveDocument initial sync of a large document', () => {
  function bigText(doc: Y.Doc, bytes: number): void {
    const t = doc.getText('t')
    let n = 0
    for (let i = 0; n < bytes; i++) {
      const s = `paragraph ${i} `.padEnd(1000, 'x')
      t.insert(Math.floor(t.length / 2), s)
      n += s.length
    }
  }

  function replay(parts: Uint8Array[]): Y.Doc {
    const d = new Y.Doc()
    for (const p of parts) Y.applyUpdate(d, p)
    return d
  }

  it('answers a fresh peer with the kept base state and the updates since, which together are the whole document', async () => {
    const storage = createMemoryStorage()
    const author = new Y.Doc()
    bigText(author, 400 * 1024)
    const base = Y.encodeStateAsUpdate(author)
    await storage.append('d', { update: base })
    await storage.compact('d', base, 1)
    const tail = updatesOf(d => { d.getText('t').insert(0, 'from the log ') }, author)
    await storage.append('d', { update: tail[0]! })
    const doc = await load(storage)
    const writer = new FakeSession('writer', 'write', null) // the stored base has no recorded writer: only an anonymous session may continue its client id
    doc.addSession(writer)
    const live = updatesOf(d => {
      d.getText('t').insert(0, 'live ')
      d.getText('t').delete(10, 3)
    }, author)
    for (const [i, u] of live.entries()) doc.applyUpdate(writer, i + 1, u)

    const reply = doc.sync.reply()
    // the base is the stored snapshot and the rest follows as updates
    expect(reply.step2).toEqual(base)
    expect(reply.updates.length).toBeGreaterThan(0)
    // a peer that applies them in the order sent (updates first, held pending) ends equal to the server
    const peer = replay([...reply.updates, reply.step2])
    expect(peer.getText('t').toString()).toBe(doc.ydoc.getText('t').toString())
    expect(peer.getText('t').toString()).toBe(author.getText('t').toString())
    expect(peer.store.pendingStructs).toBeNull()
    // an empty state vector counts as fresh
    expect(doc.sync.reply(Y.encodeStateVector(new Y.Doc())).step2).toBe(reply.step2)
  })

  it('answers a peer that already holds most of the document with a small diff instead', async () => {
    const storage = createMemoryStorage()
    const author = new Y.Doc()
    bigText(author, 400 * 1024)
    const base = Y.encodeStateAsUpdate(author)
    await storage.append('d', { update: base })
    await storage.compact('d', base, 1)
    const doc = await load(storage)
    const peer = replay([base])
    const writer = new FakeSession('writer', 'write', null)
    doc.addSession(writer)
    doc.applyUpdate(writer, 1, updatesOf(d => { d.getText('t').insert(0, 'new ') }, author)[0]!)
    const reply = doc.sync.reply(Y.encodeStateVector(peer))
    expect(reply.updates).toEqual([])
    expect(reply.step2.length).toBeLessThan(10_000)
    Y.applyUpdate(peer, reply.step2)
    expect(peer.getText('t').toString()).toBe(author.getText('t').toString())
  })

  it('takes the compaction snapshot as the new base, and small documents keep no copy', async () => {
    const storage = createMemoryStorage()
    const doc = await load(storage, { compactEveryUpdates: 3 })
    const writer = new FakeSession('writer')
    doc.addSession(writer)
    const author = new Y.Doc()
    const small = updatesOf(d => { d.getText('t').insert(0, 'small') }, author)
    doc.applyUpdate(writer, 1, small[0]!)
    // small: a fresh encode every time
    expect(doc.sync.reply().updates).toEqual([])
    const big = updatesOf(d => { bigText(d, 300 * 1024) }, author)
    for (const [i, u] of big.entries()) doc.applyUpdate(writer, i + 2, u)
    await until(async () => (await storage.load('d')).snapshot !== null, 'the compaction')
    const compacted = (await storage.load('d')).snapshot
    expect(compacted).not.toBeNull()
    const reply = doc.sync.reply()
    expect(reply.step2.length).toBeGreaterThanOrEqual(256 * 1024)
    const peer = replay([...reply.updates, reply.step2])
    expect(peer.getText('t').toString()).toBe(author.getText('t').toString())
  })
})

describe('LiveDocument refuses deletions of what it does not have yet', () => {
  it('a delete of clocks beyond the document is refused (it would wait and erase them when they arrive); deleting what the same update inserts is fine', async () => {
    const storage = createMemoryStorage()
    const doc = await load(storage)
    const mallory = new FakeSession('mallory')
    const honest = new FakeSession('honest')
    doc.addSession(mallory)
    doc.addSession(honest)
    // honest text from client 7, of which the server has the first update only
    const author = new Y.Doc()
    author.clientID = 7
    const [first, second] = updatesOf(d => {
      d.getText('t').insert(0, 'abc')
      d.getText('t').insert(3, 'def')
    }, author)
    doc.applyUpdate(honest, 1, first!)
    // a delete of 7:0..6 (the second half is not there yet)
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0)
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, 7)
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, 0)
    encoding.writeVarUint(e, 6)
    doc.applyUpdate(mallory, 5, encoding.toUint8Array(e))
    expect(mallory.errors).toEqual([{ code: 'CONCORD_ERR_UPDATE_OUT_OF_ORDER', seq: 5, closed: false }])
    doc.applyUpdate(honest, 2, second!)
    expect(doc.ydoc.getText('t').toString()).toBe('abcdef')
    // an offline client that typed and erased in one update
    const offline = new Y.Doc()
    offline.getText('t').insert(0, 'typo')
    offline.getText('t').delete(0, 4)
    offline.getText('t').insert(0, 'ok ')
    doc.applyUpdate(honest, 3, Y.encodeStateAsUpdate(offline))
    expect(honest.errors).toEqual([])
    expect(doc.ydoc.getText('t').toString()).toContain('ok ')
  })
})

describe('LiveDocument failures in callbacks of the event loop', () => {
  it('a stored state Yjs cannot integrate, met after the load returned (lazy integration), fails that document with a coded error instead of ending the process', async () => {
    const author = new Y.Doc()
    author.getText('t').insert(0, 'x'.repeat(400 * 1024))
    const whole = Y.encodeStateAsUpdate(author)
    // a snapshot cut short, as a damaged disk might return it: large enough to be integrated lazily
    const damaged = whole.slice(0, whole.length - 1000)
    const inner = createMemoryStorage()
    const storage: StorageAdapter = { ...inner, kind: 'memory', load: async () => ({ snapshot: damaged, snapshotSeq: 1, updates: [] }) }
    const failures: unknown[] = []
    const doc = await load(storage, { onFailed: () => { failures.push(1) } })
    const reader = new FakeSession('reader', 'read')
    doc.addSession(reader)
    // the integration runs from setImmediate: before, its throw was an uncaught exception
    await new Promise(r => setTimeout(r, 50))
    expect(failures).toHaveLength(1)
    expect(doc.stats.failed).toBe(true)
    expect(reader.errors).toEqual([{ code: 'CONCORD_ERR_DOC_LOAD_FAILED', seq: 0, closed: true }])
  })
})
