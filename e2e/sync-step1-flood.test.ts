import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { ChunkAssembler, decodeFrame, FRAME_KINDS, type Frame } from '@concord/protocol'
import { cleanupAfterEach, connectClient, RawNativeSocket, startServer, waitFor, type RunningServer } from './helpers.js'

/**
 * A read-only session floods SYNC_STEP1 on a large document (the security review's attack:
 * forty step 1 frames on a 4 MB document raised another document's PING→PONG from 3 ms to
 * 4 s, each frame answered with a fresh full encode on the main thread).
 */

const live = cleanupAfterEach()
const raws: RawNativeSocket[] = []
const providers: WebsocketProvider[] = []
afterEach(() => {
  for (const r of raws.splice(0)) r.close()
  for (const p of providers.splice(0).reverse()) p.destroy()  // the provider before the global WebSocket it reads
})

/** A document of about `bytes` encoded bytes, in one transaction: paragraphs typed at changing places, some deleted, and a board. */
function buildLargeDocument(doc: Y.Doc, bytes: number): void {
  const body = doc.getText('body')
  let seed = 7
  const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
  doc.transact(() => {
    let written = 0
    for (let i = 0; written < bytes; i++) {
      let paragraph = `\n${i}: `
      while (paragraph.length < 2000) paragraph += Math.floor(random() * 1e9).toString(36) + ' '
      body.insert(Math.floor(random() * body.length), paragraph)
      written += paragraph.length
      if (i % 10 === 9) body.delete(Math.floor(random() * (body.length - 100)), 50)
    }
    const cards = doc.getArray<Y.Map<unknown>>('cards')
    for (let i = 0; i < 2000; i++) {
      const card = new Y.Map<unknown>()
      card.set('title', `card ${i}`)
      card.set('column', i % 4)
      cards.push([card])
    }
  })
}

/** The whole frames a raw socket received for `document` (chunked ones reassembled), read as they arrive. */
function wholeFrames(raw: RawNativeSocket, document: string): () => Frame[] {
  // (a server that answered every step 1 would have dozens of large replies in flight at once)
  const assembler = new ChunkAssembler({ maxMessageBytes: 64 * 1024 * 1024, maxInFlight: 1000, maxBufferedBytes: 1 << 30 })
  const out: Frame[] = []
  let read = 0
  return () => {
    for (; read < raw.frames.length; read++) {
      const f = raw.frames[read]!
      if (f.document !== document) continue
      if (f.kind !== FRAME_KINDS.CHUNK) {
        out.push(f)
        continue
      }
      const whole = assembler.push(f)
      if (whole !== null) out.push(decodeFrame(whole) as Frame)
    }
    return out
  }
}

/** /metrics as a map from `name{labels}` to value. */
async function scrape(server: RunningServer): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text()
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^(concord_[^\s]+) ([0-9.e+-]+)$/.exec(line)
    if (m) values.set(m[1]!, Number(m[2]))
  }
  return values
}

/** PING→PONG round trips on a raw socket, one after the other, in ms. */
async function pingPong(raw: RawNativeSocket, times: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < times; i++) {
    const before = raw.frames.filter(f => f.kind === FRAME_KINDS.PONG).length
    const start = performance.now()
    raw.sendFrame({ kind: FRAME_KINDS.PING, document: '' })
    await waitFor(() => raw.frames.filter(f => f.kind === FRAME_KINDS.PONG).length > before, { intervalMs: 1, message: 'the bystander\'s PONG' })
    out.push(performance.now() - start)
  }
  return out
}

const summary = (ms: number[]): string => {
  const s = [...ms].sort((a, b) => a - b)
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(1)} ms, max ${s[s.length - 1]!.toFixed(1)} ms (${s.length} pings)`
}

describe('a flood of sync step 1 frames', () => {
  it('costs a bounded number of encodes: a read-only session is answered once per outstanding reply, a bystander keeps getting PONGs, an honest client converges', async () => {
    const server = live.server = await startServer({
      onAuthenticate: ({ token }) => ({ userId: token, role: token.startsWith('reader') ? 'read' : 'write' }),
    })
    // a 4 MB document written live (no stored snapshot: the server has no encoded state of it yet)
    const writer = connectClient(server.url, { token: 'writer' })
    live.clients.push(writer)
    const w = writer.open('big')
    await w.whenSynced()
    buildLargeDocument(w.doc, 4_000_000)
    await w.whenSaved()
    expect(Y.encodeStateAsUpdate(w.doc).length).toBeGreaterThan(4_000_000)
    const start = await scrape(server)

    // a bystander on another document, and what its PING→PONG takes while nothing happens
    const bystander = await RawNativeSocket.connect(server.url)
    raws.push(bystander)
    const quiet = await pingPong(bystander, 10)

    // the attacker: a read-only session on the big document
    const attacker = await RawNativeSocket.connect(server.url)
    raws.push(attacker)
    attacker.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'big', token: 'reader', stateVector: new Uint8Array() })
    expect(await attacker.next(FRAME_KINDS.OPENED, 'big')).toMatchObject({ role: 'read' })
    const frames = wholeFrames(attacker, 'big')
    await waitFor(() => frames().some(f => f.kind === FRAME_KINDS.SYNC_STEP2), { timeoutMs: 30_000, message: 'the attacker\'s initial sync' })
    const before = await scrape(server)
    const repliesBefore = frames().filter(f => f.kind === FRAME_KINDS.SYNC_STEP2).length

    // forty step 1 frames saying "I hold nothing", then ten that each claim a different part
    const writerClient = w.doc.clientID
    const clock = Y.getState(w.doc.store, writerClient)
    const flood: Uint8Array[] = []
    for (let i = 0; i < 40; i++) flood.push(Y.encodeStateVector(new Y.Doc())) // one byte: no clients
    for (let i = 0; i < 10; i++) flood.push(Y.encodeStateVector(new Map([[writerClient, Math.floor(clock * (0.5 + i / 25))]])))
    for (const stateVector of flood) attacker.sendFrame({ kind: FRAME_KINDS.SYNC_STEP1, document: 'big', stateVector })

    // meanwhile an honest client joins, and the bystander keeps pinging
    const honestClient = connectClient(server.url, { token: 'honest' })
    live.clients.push(honestClient)
    const honest = honestClient.open('big')
    const errors: string[] = []
    honest.on('error', e => errors.push(e.code))
    const [during] = await Promise.all([pingPong(bystander, 20), honest.whenSynced()])

    // every step 1 was either answered or coalesced into a later reply
    let after = await scrape(server)
    const coalesced = (): number => (after.get('concord_sync_step1_coalesced_total') ?? 0) - (before.get('concord_sync_step1_coalesced_total') ?? 0)
    const replies = (): number => frames().filter(f => f.kind === FRAME_KINDS.SYNC_STEP2).length - repliesBefore
    await waitFor(async () => {
      after = await scrape(server)
      return replies() + coalesced() === flood.length
    }, { timeoutMs: 30_000, message: () => `the flood to be answered (${replies()} replies, ${coalesced()} coalesced of ${flood.length})` })
    console.log(`bystander PING→PONG quiet: ${summary(quiet)}; during the flood: ${summary(during)}; attacker replies ${replies()}, coalesced ${coalesced()}`)
    // one reply outstanding per session: a burst of frames is answered a few times, not fifty
    expect(replies()).toBeLessThanOrEqual(5)
    // the document was encoded once on the main thread (its first full reply, kept since), however many asked
    const encodes = (after.get('concord_sync_full_encodes_total') ?? 0) - (start.get('concord_sync_full_encodes_total') ?? 0)
    expect(encodes).toBeLessThanOrEqual(1)
    // the last reply answered the last state vector, a partial one: a diff computed in the merge worker
    expect((after.get('concord_sync_replies_total{source="worker"}') ?? 0) - (before.get('concord_sync_replies_total{source="worker"}') ?? 0)).toBeGreaterThanOrEqual(1)
    const last = frames().filter(f => f.kind === FRAME_KINDS.SYNC_STEP2).at(-1) as Extract<Frame, { kind: typeof FRAME_KINDS.SYNC_STEP2 }>
    const claimed = new Y.Doc()
    Y.applyUpdate(claimed, last.update)
    expect(claimed.store.pendingStructs).not.toBeNull() // it starts where the claimed state ends
    // the read-only session was never refused for asking
    expect(attacker.frames.filter(f => f.kind === FRAME_KINDS.ERROR)).toEqual([])

    // the honest client converged, without an error
    await waitFor(() => honest.doc.getText('body').toString() === w.doc.getText('body').toString(), { message: 'the honest client to converge' })
    expect(honest.doc.getArray('cards').length).toBe(2000)
    expect(errors).toEqual([])
  })

  it('a session answered from the merge worker while others edit ends equal to the server; a stock y-websocket provider resyncing meanwhile is never refused', async () => {
    const server = live.server = await startServer()
    const writer = connectClient(server.url)
    live.clients.push(writer)
    const w = writer.open('doc')
    await w.whenSynced()
    buildLargeDocument(w.doc, 1_000_000)
    await w.whenSaved()

    // a peer that synced once and then went away while the writer went on
    const peer = new Y.Doc()
    const first = await RawNativeSocket.connect(server.url)
    raws.push(first)
    first.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: '', stateVector: new Uint8Array() })
    const firstFrames = wholeFrames(first, 'doc')
    await waitFor(() => firstFrames().some(f => f.kind === FRAME_KINDS.SYNC_STEP2), { message: 'the first sync' })
    for (const f of firstFrames()) if (f.kind === FRAME_KINDS.UPDATE || f.kind === FRAME_KINDS.SYNC_STEP2) Y.applyUpdate(peer, f.update)
    first.close()
    const text = w.doc.getText('body')
    for (let i = 0; i < 20; i++) text.insert((i * 997) % text.length, `<offline ${i}>`)
    await w.whenSaved()
    // a stock provider that asks for the server's state (step 1) every 50 ms (its resync timer reads
    // the global WebSocket's OPEN constant, which Node 20 lacks)
    const g = globalThis as { WebSocket?: unknown }
    const hadWebSocket = 'WebSocket' in g
    g.WebSocket ??= WebSocket
    if (!hadWebSocket) providers.push({ destroy: () => { delete g.WebSocket } } as never)
    const yws = new WebsocketProvider(server.url, 'doc', new Y.Doc(), { WebSocketPolyfill: WebSocket as never, disableBc: true, resyncInterval: 50 })
    providers.push(yws)
    let closes = 0
    yws.on('connection-close', () => { closes++ })
    await waitFor(() => yws.synced, { message: 'the provider to sync' })
    const before = await scrape(server)

    // it comes back holding most of the document: its diff is computed off the main thread,
    // and the writer keeps editing while it is
    const again = await RawNativeSocket.connect(server.url)
    raws.push(again)
    again.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: '', stateVector: Y.encodeStateVector(peer) })
    const frames = wholeFrames(again, 'doc')
    let edits = 0
    while (!frames().some(f => f.kind === FRAME_KINDS.SYNC_STEP2) || edits < 20) {
      text.insert((edits * 131) % text.length, `<live ${edits++}>`)
      w.doc.getArray('cards').delete(0, 1)
      await new Promise(r => setImmediate(r))
      if (edits > 10_000) throw new Error('no SYNC_STEP2 after 10000 edits')
    }
    await w.whenSaved()
    const after = await scrape(server)
    // (the provider's resyncs are diffs of a large document too)
    expect((after.get('concord_sync_replies_total{source="worker"}') ?? 0) - (before.get('concord_sync_replies_total{source="worker"}') ?? 0)).toBeGreaterThanOrEqual(1)

    // what arrived, in the order it arrived (updates applied meanwhile may come before the reply)
    const step2At = frames().findIndex(f => f.kind === FRAME_KINDS.SYNC_STEP2)
    console.log(`updates before the worker's reply: ${frames().slice(0, step2At).filter(f => f.kind === FRAME_KINDS.UPDATE).length}; edits during: ${edits}`)
    const serverDoc = server.server.registry.peek('doc')!
    await waitFor(() => {
      for (const f of frames().splice(0)) if (f.kind === FRAME_KINDS.UPDATE || f.kind === FRAME_KINDS.SYNC_STEP2) Y.applyUpdate(peer, f.update)
      return peer.getText('body').toString() === serverDoc.ydoc.getText('body').toString()
    }, { message: 'the returning peer to equal the server' })
    expect(Y.encodeStateVector(peer)).toEqual(Y.encodeStateVector(serverDoc.ydoc))
    expect(peer.getArray('cards').length).toBe(serverDoc.ydoc.getArray('cards').length)
    expect(peer.store.pendingStructs).toBeNull()
    expect(peer.getText('body').toString()).toBe(text.toString())
    // the provider kept resyncing through all of it, converged, and was never closed
    await waitFor(() => yws.doc.getText('body').toString() === text.toString(), { message: 'the provider to converge' })
    expect(closes).toBe(0)
  })
})
