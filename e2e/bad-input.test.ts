import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { encodeFrame, FRAME_KINDS } from '@concord/protocol'
import { connectClient, RawNativeSocket, startServer, waitFor, cleanupAfterEach } from './helpers.js'

const live = cleanupAfterEach()

/** Two healthy clients editing one document; returns a check that they still sync. */
async function bystanders(url: string): Promise<() => Promise<void>> {
  const a = connectClient(url)
  const b = connectClient(url)
  live.clients.push(a, b)
  const ha = a.open('shared')
  const hb = b.open('shared')
  await Promise.all([ha.whenSynced(), hb.whenSynced()])
  let n = 0
  return async () => {
    const word = `ok${n++};`
    ha.doc.getText('t').insert(ha.doc.getText('t').length, word)
    await waitFor(() => hb.doc.getText('t').toString().endsWith(word), { message: 'bystanders still sync' })
    await ha.whenSaved()
  }
}

function rawYws(url: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url)
  const closed = new Promise<{ code: number; reason: string }>(resolve => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }))
    ws.once('error', reject)
  })
}

describe('bad input gets a coded error or close code and harms no one else', () => {
  it('native: garbage bytes close only that socket with 4400 CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', async () => {
    live.server = await startServer()
    const stillWorks = await bystanders(live.server.url)
    const raw = await RawNativeSocket.connect(live.server.url)
    raw.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
    expect(await raw.closed).toEqual({ code: 4400, reason: 'CONCORD_ERR_PROTOCOL_MALFORMED_FRAME' })
    await stillWorks()
  })

  it('native: a frame before HELLO, a text frame, and an unsupported version each get their close code', async () => {
    live.server = await startServer()
    const stillWorks = await bystanders(live.server.url)
    const early = await RawNativeSocket.connect(live.server.url, false)
    early.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'x', token: '', stateVector: new Uint8Array() })
    expect(await early.closed).toEqual({ code: 4400, reason: 'CONCORD_ERR_PROTOCOL_HANDSHAKE_REQUIRED' })
    const text = await RawNativeSocket.connect(live.server.url)
    text.send('hello')
    expect(await text.closed).toEqual({ code: 1003, reason: 'CONCORD_ERR_PROTOCOL_TEXT_FRAME' })
    const future = await RawNativeSocket.connect(live.server.url, false)
    future.sendFrame({ kind: FRAME_KINDS.HELLO, document: '', minVersion: 7, maxVersion: 9, client: 'from the future' })
    expect(await future.closed).toEqual({ code: 4406, reason: 'CONCORD_ERR_PROTOCOL_UNSUPPORTED_VERSION' })
    await stillWorks()
  })

  it('native: unknown kinds, unopened documents, bad names and malformed awareness are document-scoped errors; the socket stays open', async () => {
    live.server = await startServer()
    const stillWorks = await bystanders(live.server.url)
    const raw = await RawNativeSocket.connect(live.server.url)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'mine', token: '', stateVector: new Uint8Array() })
    await raw.next(FRAME_KINDS.SYNC_STEP2, 'mine')
    raw.send(new Uint8Array([42, 4, ...new TextEncoder().encode('mine')]))
    expect(await raw.next(FRAME_KINDS.ERROR, 'mine')).toMatchObject({ code: 'CONCORD_ERR_PROTOCOL_UNKNOWN_KIND', closed: false })
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'never-opened', seq: 3, update: new Uint8Array([0, 0]) })
    expect(await raw.next(FRAME_KINDS.ERROR, 'never-opened')).toMatchObject({ code: 'CONCORD_ERR_DOC_NOT_OPEN', seq: 3 })
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'bad\u0000name', token: '', stateVector: new Uint8Array() })
    expect(await raw.next(FRAME_KINDS.ERROR, 'bad\u0000name')).toMatchObject({ code: 'CONCORD_ERR_DOC_INVALID_NAME', closed: true })
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: '', token: '', stateVector: new Uint8Array() })
    expect(await raw.next(FRAME_KINDS.ERROR, '')).toMatchObject({ code: 'CONCORD_ERR_DOC_INVALID_NAME' })
    raw.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: 'mine', update: new Uint8Array([5, 1, 2]) })
    expect(await waitFor(() => raw.frames.find(f => f.kind === FRAME_KINDS.ERROR && f.code === 'CONCORD_ERR_AWARENESS_MALFORMED')))
      .toMatchObject({ document: 'mine', seq: 0, closed: false })
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'mine', token: '', stateVector: new Uint8Array() })
    expect(await waitFor(() => raw.frames.find(f => f.kind === FRAME_KINDS.ERROR && f.code === 'CONCORD_ERR_DOC_ALREADY_OPEN')))
      .toMatchObject({ document: 'mine', closed: false })
    // still usable
    const d = new Y.Doc()
    d.getText('t').insert(0, 'fine')
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'mine', seq: 1, update: Y.encodeStateAsUpdate(d) })
    expect((await raw.next(FRAME_KINDS.ACK, 'mine')).ranges).toEqual([{ from: 1, to: 1 }])
    expect(raw.closeCode).toBeNull()
    await stillWorks()
    raw.close()
  })

  it('oversized messages close with 1009; oversized chunked messages with 1009 and the error code', async () => {
    live.server = await startServer({ maxMessageBytes: 64 * 1024, chunkBytes: 16 * 1024 })
    const stillWorks = await bystanders(live.server.url)
    const big = await RawNativeSocket.connect(live.server.url)
    big.send(new Uint8Array(100 * 1024))
    expect((await big.closed).code).toBe(1009)
    // (on a socket with a document open for writing: before that, chunks get a smaller budget; see chunks-before-write.test.ts)
    const chunked = await RawNativeSocket.connect(live.server.url)
    chunked.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'x', token: '', stateVector: new Uint8Array() })
    expect(await chunked.next(FRAME_KINDS.OPENED, 'x')).toMatchObject({ role: 'write' })
    for (let i = 0; i < 6; i++) {
      chunked.sendFrame({ kind: FRAME_KINDS.CHUNK, document: 'x', messageId: 1, index: i, total: 10, data: new Uint8Array(16 * 1024) })
    }
    expect(await chunked.closed).toEqual({ code: 1009, reason: 'CONCORD_ERR_MESSAGE_TOO_LARGE' })
    const yws = await rawYws(`${live.server.url}/shared`)
    yws.ws.send(new Uint8Array(70 * 1024))
    expect((await yws.closed).code).toBe(1009)
    await stillWorks()
  })

  it('a chunked update within limits is reassembled and applied', async () => {
    live.server = await startServer({ chunkBytes: 1024 })
    const raw = await RawNativeSocket.connect(live.server.url)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'big', token: '', stateVector: new Uint8Array() })
    await raw.next(FRAME_KINDS.SYNC_STEP2, 'big')
    const d = new Y.Doc()
    d.getText('t').insert(0, 'y'.repeat(10_000))
    const frame = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'big', seq: 5, update: Y.encodeStateAsUpdate(d) })
    const total = Math.ceil(frame.length / 1024)
    for (let i = 0; i < total; i++) {
      raw.sendFrame({ kind: FRAME_KINDS.CHUNK, document: 'big', messageId: 77, index: i, total, data: frame.subarray(i * 1024, (i + 1) * 1024) })
      // a small frame in between chunks
      if (i === 2) raw.sendFrame({ kind: FRAME_KINDS.PING, document: '' })
    }
    expect((await raw.next(FRAME_KINDS.ACK, 'big')).ranges).toEqual([{ from: 5, to: 5 }])
    expect(live.server.server.registry.peek('big')?.ydoc.getText('t').length).toBe(10_000)
    raw.close()
  })

  it('y-websocket: malformed and unknown messages close that socket with 4400 and a code', async () => {
    live.server = await startServer()
    const stillWorks = await bystanders(live.server.url)
    const a = await rawYws(`${live.server.url}/shared`)
    a.ws.send(new Uint8Array([0, 1, 200]))
    expect(await a.closed).toEqual({ code: 4400, reason: 'CONCORD_ERR_PROTOCOL_MALFORMED_FRAME' })
    const b = await rawYws(`${live.server.url}/shared`)
    b.ws.send(new Uint8Array([77, 1, 2]))
    expect(await b.closed).toEqual({ code: 4400, reason: 'CONCORD_ERR_PROTOCOL_UNKNOWN_KIND' })
    const c = await rawYws(`${live.server.url}/shared`)
    c.ws.send(new Uint8Array([0, 2, 3, 1, 2, 3])) // sync update with garbage Yjs content
    expect(await c.closed).toEqual({ code: 4400, reason: 'CONCORD_ERR_UPDATE_MALFORMED' })
    await stillWorks()
    // the garbage did not reach the store or the other sessions
    expect(live.server.server.registry.peek('shared')?.ydoc.getText('t').toString()).toMatch(/^(ok\d;)+$/)
  })

  it('an upgrade for an invalid room name is refused with HTTP 400 before the upgrade', async () => {
    live.server = await startServer()
    const res = await new Promise<number>(resolve => {
      const ws = new WebSocket(`${live.server!.url}/%E0%A4%A`)
      ws.on('unexpected-response', (_req, r) => resolve(r.statusCode ?? 0))
      ws.on('error', () => undefined)
    })
    expect(res).toBe(400)
  })

  it('a request line whose URL cannot be parsed gets 400 (HTTP and upgrade) and the server keeps running', async () => {
    live.server = await startServer()
    const stillWorks = await bystanders(live.server.url)
    const { connect } = await import('node:net')
    const ask = (text: string): Promise<string> => new Promise((resolve, reject) => {
      const sock = connect(live.server!.port, '127.0.0.1', () => sock.write(text))
      let got = ''
      sock.on('data', d => { got += d.toString() })
      sock.on('end', () => resolve(got))
      sock.on('error', reject)
    })
    expect(await ask('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400.*CONCORD_ERR_HTTP_BAD_REQUEST/s)
    const upgrade = await ask('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    expect(upgrade).toMatch(/^HTTP\/1\.1 400/)
    await stillWorks()
  })

  it('a reader that stops reading is closed instead of buffering without bound; a big first sync alone is not "slow"', async () => {
    live.server = await startServer({ maxBufferedBytes: 64 * 1024, chunkBytes: 16 * 1024 })
    const writer = connectClient(live.server.url)
    live.clients.push(writer)
    const h = writer.open('big-doc')
    await h.whenSynced()
    h.doc.getText('t').insert(0, 'z'.repeat(4 * 1024 * 1024))
    await h.whenSaved()
    // a reader that does read gets the whole 4 MiB document, far above maxBufferedBytes
    const reader = connectClient(live.server.url)
    live.clients.push(reader)
    const r = reader.open('big-doc')
    await r.whenSynced()
    expect(r.doc.getText('t').length).toBe(4 * 1024 * 1024)
    // a reader that stops reading is dropped once more piles up behind the document
    const slow = await RawNativeSocket.connect(live.server.url)
    ;(slow.ws as unknown as { _socket: { pause(): void } })._socket.pause()
    slow.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'big-doc', token: '', stateVector: new Uint8Array() })
    await waitFor(async () => {
      h.doc.getText('t').insert(0, 'more ' + 'm'.repeat(20_000))
      const info = await (await fetch(`http://127.0.0.1:${live.server!.port}/`)).json() as { connections: number }
      return info.connections === 2
    }, { message: 'the slow reader was dropped', intervalMs: 50 })
    // the others are unaffected
    await h.whenSaved()
    await waitFor(() => r.doc.getText('t').toString().startsWith('more '))
  })

  it('a peer that stops answering pings is terminated by the heartbeat', async () => {
    live.server = await startServer({ heartbeatIntervalMs: 100 })
    const raw = await RawNativeSocket.connect(live.server.url)
    // stop reading: no pong can be sent back
    ;(raw.ws as unknown as { _socket: { pause(): void } })._socket.pause()
    raw.ws.pong = () => undefined
    await waitFor(async () => {
      const info = await (await fetch(`http://127.0.0.1:${live.server!.port}/`)).json() as { connections: number }
      return info.connections === 0
    }, { message: 'server dropped the silent peer', timeoutMs: 5_000 })
  })
})
