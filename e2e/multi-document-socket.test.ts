import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import { FRAME_KINDS } from '@concord/protocol'
import { connectClient, RawNativeSocket, startServer, waitFor, cleanupAfterEach } from './helpers.js'

const live = cleanupAfterEach()

describe('one native socket, several documents', () => {
  it('syncs three documents independently over one socket; an error on one leaves the other two working', async () => {
    live.server = await startServer()
    const alice = connectClient(live.server.url)
    const bob = connectClient(live.server.url)
    live.clients.push(alice, bob)
    const names = ['doc-a', 'doc-b', 'doc-c']
    const ah = names.map(n => alice.open(n))
    const bh = names.map(n => bob.open(n))
    await Promise.all([...ah, ...bh].map(h => h.whenSynced()))
    // one socket per client carries all three documents
    const info = await (await fetch(`http://127.0.0.1:${live.server.port}/`)).json() as { connections: number; native: number; documentsLoaded: number }
    expect(info).toMatchObject({ connections: 2, native: 2, documentsLoaded: 3 })

    ah.forEach((h, i) => h.doc.getText('t').insert(0, `from alice ${i}`))
    bh[1]!.doc.getText('t').insert(0, 'bob says hi; ')
    await waitFor(() => ah.every((h, i) => bh[i]!.doc.getText('t').toString() === h.doc.getText('t').toString() && h.doc.getText('t').length > 0),
      { message: 'all three documents converge' })
    expect(bh[0]!.doc.getText('t').toString()).toBe('from alice 0')
    expect(bh[2]!.doc.getText('t').toString()).toBe('from alice 2')
    expect(bh[1]!.doc.getText('t').toString()).toMatch(/from alice 1/)
    await Promise.all(ah.map(h => h.whenSaved()))

    // a malformed update on doc-b: a coded error for doc-b only
    const errors: { code: string; seq: number }[] = []
    ah[1]!.on('error', e => errors.push(e))
    // the client API cannot send garbage, so a raw socket does
    const raw = await RawNativeSocket.connect(live.server.url)
    for (const n of names) raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: n, token: '', stateVector: new Uint8Array() })
    await Promise.all(names.map(n => raw.next(FRAME_KINDS.SYNC_STEP2, n)))
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'doc-b', seq: 7, update: new Uint8Array([1, 200, 3, 4, 5]) })
    const err = await raw.next(FRAME_KINDS.ERROR, 'doc-b')
    expect(err.code).toBe('CONCORD_ERR_UPDATE_MALFORMED')
    expect(err.seq).toBe(7)
    expect(err.closed).toBe(false)
    // an unknown frame kind for doc-c: a coded error for doc-c, socket stays open
    const e = new Uint8Array([99, 5, ...new TextEncoder().encode('doc-c'), 1, 2, 3])
    raw.send(e)
    const unknown = await raw.next(FRAME_KINDS.ERROR, 'doc-c')
    expect(unknown.code).toBe('CONCORD_ERR_PROTOCOL_UNKNOWN_KIND')

    // the other documents keep working on the same raw socket, and for the real clients
    const d = new Y.Doc()
    d.getText('t').insert(0, 'raw wrote this')
    const before = raw.frames.length
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'doc-a', seq: 1, update: Y.encodeStateAsUpdate(d) })
    const ack = await raw.next(FRAME_KINDS.ACK, 'doc-a', before)
    expect(ack.ranges).toEqual([{ from: 1, to: 1 }])
    await waitFor(() => bh[0]!.doc.getText('t').toString().includes('raw wrote this'), { message: 'doc-a still syncs' })
    ah[2]!.doc.getText('t').insert(0, 'still alive ')
    await waitFor(() => bh[2]!.doc.getText('t').toString().startsWith('still alive'), { message: 'doc-c still syncs' })
    expect(raw.closeCode).toBeNull()
    // and doc-b itself is still usable by everyone else
    ah[1]!.doc.getText('t').insert(0, '>> ')
    await waitFor(() => bh[1]!.doc.getText('t').toString().startsWith('>> '), { message: 'doc-b still syncs for clients' })
    expect(errors).toEqual([])
    raw.close()
  })

  it('closing one handle leaves the others syncing, and the server unloads the closed document', async () => {
    live.server = await startServer()
    const a = connectClient(live.server.url)
    const b = connectClient(live.server.url)
    live.clients.push(a, b)
    const [a1, a2] = [a.open('one'), a.open('two')]
    const [b2] = [b.open('two')]
    await Promise.all([a1.whenSynced(), a2.whenSynced(), b2.whenSynced()])
    a1.close()
    await waitFor(() => live.server!.server.registry.peek('one') === null, { message: 'document one unloaded' })
    a2.doc.getText('t').insert(0, 'hello')
    await waitFor(() => b2.doc.getText('t').toString() === 'hello')
  })

  it('acks tell exactly which updates are durable, and only after the append committed', async () => {
    const { createMemoryStorage } = await import('@concord/server')
    const storage = createMemoryStorage({ commitDelayMs: 50 })
    const socket: { raw: RawNativeSocket | null } = { raw: null }
    /** The client seqs of the 5 real updates (10..14) acked so far. */
    const ackedReal = (): Set<number> => {
      const acked = new Set<number>()
      for (const f of socket.raw?.frames ?? []) if (f.kind === FRAME_KINDS.ACK) for (const r of f.ranges) for (let s = r.from; s <= r.to; s++) if (s >= 10 && s <= 14) acked.add(s)
      return acked
    }
    /** For each append, as it committed: how many of the real updates the client had seen acked by then. */
    const ackedAtCommit: number[] = []
    const append = storage.append.bind(storage)
    storage.append = async (doc, rec) => {
      const seq = await append(doc, rec)
      if (doc === 'acks') ackedAtCommit.push(ackedReal().size)
      return seq
    }
    live.server = await startServer({ storage })
    const raw = await RawNativeSocket.connect(live.server.url)
    socket.raw = raw
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acks', token: '', stateVector: new Uint8Array() })
    await raw.next(FRAME_KINDS.SYNC_STEP2, 'acks')
    const d = new Y.Doc()
    const updates: Uint8Array[] = []
    d.on('update', (u: Uint8Array) => updates.push(u))
    for (let i = 0; i < 5; i++) d.getText('t').insert(i, String(i))
    updates.forEach((u, i) => raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'acks', seq: 10 + i, update: u }))
    // a duplicate of an already applied update, and a malformed one
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'acks', seq: 20, update: updates[0]! })
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'acks', seq: 21, update: new Uint8Array([9, 9, 9]) })
    const acked = new Set<number>()
    await waitFor(() => {
      for (const f of raw.frames) if (f.kind === FRAME_KINDS.ACK) for (const r of f.ranges) for (let s = r.from; s <= r.to; s++) acked.add(s)
      return acked.size >= 6
    }, { message: 'acks for 10..14 and 20' })
    expect([...acked].sort((x, y) => x - y)).toEqual([10, 11, 12, 13, 14, 20])
    const firstAck = raw.frames.findIndex(f => f.kind === FRAME_KINDS.ACK)
    expect(firstAck).toBeGreaterThan(-1)
    // no ack before the (delayed) commit finished: when the k-th append committed, at most the k-1
    // updates committed before it had been acked
    expect(ackedAtCommit.length).toBeGreaterThan(0)
    expect(ackedAtCommit.every((acked, k) => acked <= k), `acked at each commit: ${JSON.stringify(ackedAtCommit)}`).toBe(true)
    const err = await raw.next(FRAME_KINDS.ERROR, 'acks')
    expect(err).toMatchObject({ code: 'CONCORD_ERR_UPDATE_MALFORMED', seq: 21, closed: false })
    // the 5 real updates were stored, the duplicate and the garbage were not
    expect((await storage.load('acks')).updates).toHaveLength(5)
    raw.close()
  })

  it('a large initial sync is sent in chunks, and another document\'s small frames get through between them', async () => {
    live.server = await startServer({ chunkBytes: 16 * 1024 })
    const writer = connectClient(live.server.url)
    live.clients.push(writer)
    const big = writer.open('big')
    const small = writer.open('small')
    await Promise.all([big.whenSynced(), small.whenSynced()])
    big.doc.getText('t').insert(0, 'b'.repeat(1024 * 1024))
    small.doc.getText('t').insert(0, 'tiny')
    await Promise.all([big.whenSaved(), small.whenSaved()])
    const raw = await RawNativeSocket.connect(live.server.url)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'big', token: '', stateVector: new Uint8Array() })
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'small', token: '', stateVector: new Uint8Array() })
    await raw.next(FRAME_KINDS.SYNC_STEP2, 'small')
    const chunks = await waitFor(() => {
      const c = raw.frames.filter(f => f.kind === FRAME_KINDS.CHUNK && f.document === 'big')
      return c.length > 0 && c.length === (c[0] as { total: number }).total ? c : null
    }, { message: 'all chunks of the big document' })
    expect(chunks.length).toBeGreaterThan(60)
    const smallSync = raw.frames.findIndex(f => f.kind === FRAME_KINDS.SYNC_STEP2 && f.document === 'small')
    const lastChunk = raw.frames.lastIndexOf(chunks[chunks.length - 1]!)
    // the small document's sync did not wait behind the megabyte
    expect(smallSync).toBeLessThan(lastChunk)
    // and the chunks reassemble into the big document's SYNC_STEP2
    const { ChunkAssembler, decodeFrame } = await import('@concord/protocol')
    const assembler = new ChunkAssembler({ maxMessageBytes: 8 * 1024 * 1024 })
    let whole: Uint8Array | null = null
    for (const c of chunks) whole = assembler.push(c as never) ?? whole
    const frame = decodeFrame(whole!)
    expect(frame).toMatchObject({ kind: FRAME_KINDS.SYNC_STEP2, document: 'big' })
    const Y = await import('yjs')
    const copy = new Y.Doc()
    Y.applyUpdate(copy, (frame as { update: Uint8Array }).update)
    expect(copy.getText('t').length).toBe(1024 * 1024)
    raw.close()
  })
})
