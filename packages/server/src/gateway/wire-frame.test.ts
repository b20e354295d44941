import { afterEach, describe, expect, it, vi } from 'vitest'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { wireFrame } from './wire-frame.js'
import { SocketSender, type SocketSenderOptions } from './socket-sender.js'
import type { SocketLike } from './socket-like.js'

const OPTIONS: SocketSenderOptions = { chunkBytes: 0, maxBufferedBytes: 64 << 20, slowReaderStallMs: 5_000, backpressureBytes: 1 << 20 }

/** `n` bytes counting up from `seed` (so that a misplaced byte shows). */
const bytes = (n: number, seed = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i + seed) & 0xff)

describe('wireFrame', () => {
  it('frames the parts as one unmasked binary FIN frame with the shortest length header', () => {
    for (const [length, header] of [[0, 2], [125, 2], [126, 4], [65_535, 4], [65_536, 10], [200_000, 10]] as const) {
      const a = bytes(Math.floor(length / 3), 1)
      const b = bytes(length - a.length, 7)
      const { frame, payload } = wireFrame([a, b])
      expect(frame.length, `length ${length}`).toBe(header + length)
      expect(frame[0]).toBe(0x82)
      // no mask bit; the length as RFC 6455 spells it
      const declared = header === 2 ? frame[1]! : header === 4 ? frame.readUInt16BE(2) : Number(frame.readBigUInt64BE(2))
      expect(frame[1]! & 0x80).toBe(0)
      if (header === 4) expect(frame[1]).toBe(126)
      if (header === 10) expect(frame[1]).toBe(127)
      expect(declared).toBe(length)
      expect(Buffer.compare(payload, Buffer.concat([a, b]))).toBe(0)
      expect(payload.buffer).toBe(frame.buffer)
    }
  })
})

describe('SocketSender.sendWire over a real ws socket', () => {
  const cleanup: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })

  async function pair(perMessageDeflate: boolean): Promise<{ server: WebSocket; received: Buffer[]; until: (n: number) => Promise<void> }> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: perMessageDeflate ? { threshold: 0 } : false })
    await once(wss, 'listening')
    cleanup.push(() => new Promise<void>(resolve => { wss.close(() => resolve()) }))
    const accepted = once(wss, 'connection') as Promise<[WebSocket]>
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate })
    cleanup.push(() => { client.terminate() })
    const received: Buffer[] = []
    let waiting: { n: number; resolve: () => void } | null = null
    client.on('message', (data: Buffer) => {
      received.push(data)
      if (waiting !== null && received.length >= waiting.n) waiting.resolve()
    })
    await once(client, 'open')
    const [server] = await accepted
    cleanup.push(() => { server.terminate() })
    const until = (n: number): Promise<void> => received.length >= n
      ? Promise.resolve()
      : new Promise(resolve => { waiting = { n, resolve } })
    return { server, received, until }
  }

  it('writes the frame straight to the net socket, in order with messages sent through ws', async () => {
    const { server, received, until } = await pair(false)
    const socket = server as unknown as SocketLike
    const write = vi.spyOn(socket._socket!, 'write')
    const seen: number[] = []
    const sender = new SocketSender(socket, { close: () => undefined }, { ...OPTIONS, onSend: (_f, length) => seen.push(length) })
    const expected: Uint8Array[] = []
    for (const length of [0, 125, 126, 65_535, 65_536, 200_000]) {
      const parts = [bytes(3, length), bytes(length, 5)]
      sender.sendWire(wireFrame(parts))
      expected.push(Buffer.concat(parts))
      // a message sent as fragments through ws lands after it, and before the next
      const between = [bytes(2, 9), bytes(4, 11)]
      sender.send(between)
      expected.push(Buffer.concat(between))
    }
    // in a batch the socket is corked: the frame joins the batch's writev
    sender.corked(() => {
      sender.sendWire(wireFrame([bytes(10, 3)]))
      expected.push(bytes(10, 3))
    })
    await until(expected.length)
    expect(received.map(b => b.length)).toEqual(expected.map(b => b.length))
    for (let i = 0; i < expected.length; i++) expect(Buffer.compare(received[i]!, expected[i]!), `message ${i}`).toBe(0)
    // each shared frame was one write of its own (ws writes header and payload apart)
    expect(write.mock.calls.filter(([data]) => (data as Buffer)[0] === 0x82 && (data as Buffer).length >= 5)).toHaveLength(7)
    expect(seen.filter((_, i) => i % 2 === 0)).toEqual([3, 128, 129, 65_538, 65_539, 200_003, 10])
  })

  it('goes through ws when the connection is compressed, and the peer gets the same messages', async () => {
    const { server, received, until } = await pair(true)
    const socket = server as unknown as SocketLike
    expect(socket.extensions).toContain('permessage-deflate')
    const write = vi.spyOn(socket._socket!, 'write')
    const sender = new SocketSender(socket, { close: () => undefined }, OPTIONS)
    const parts = [bytes(3), bytes(5_000, 2)]
    sender.sendWire(wireFrame(parts))
    sender.sendWire(wireFrame([bytes(1)]))
    await until(2)
    expect(Buffer.compare(received[0]!, Buffer.concat(parts))).toBe(0)
    expect(received[1]!.length).toBe(1)
    // compressed frames carry RSV1 (0xc2): none of ws's writes was our uncompressed frame
    expect(write.mock.calls.some(([data]) => (data as Buffer)[0] === 0x82)).toBe(false)
  })

  it('waits behind what ws has queued (a Blob being read): the messages arrive in the order they were sent', async () => {
    const { server, received, until } = await pair(false)
    const socket = server as unknown as SocketLike
    const sender = new SocketSender(socket, { close: () => undefined }, OPTIONS)
    // ws reads a Blob's bytes asynchronously, and queues what is sent meanwhile
    server.send(new Blob([bytes(5, 1) as Uint8Array<ArrayBuffer>]), { binary: true })
    expect(socket._sender!._state).not.toBe(0)
    sender.sendWire(wireFrame([bytes(7, 2)]))
    sender.sendWire(wireFrame([bytes(9, 3)]))
    await until(3)
    expect(received.map(b => b.length)).toEqual([5, 7, 9])
    expect(Buffer.compare(received[1]!, bytes(7, 2))).toBe(0)
  })

  it('falls back to send while ws has a fragmented message under way, and sends nothing once closed', async () => {
    const { server, received, until } = await pair(false)
    const socket = server as unknown as SocketLike
    const sender = new SocketSender(socket, { close: () => undefined }, OPTIONS)
    // ws is between the fragments of a message: a frame of ours written now would land inside it and
    // the peer would fail the connection (a new data frame where a continuation must come); through
    // send it continues the message, as any send would (the server never interleaves its parts)
    server.send(bytes(4, 1), { binary: true, fin: false })
    expect(socket._sender!._firstFragment).toBe(false)
    const write = vi.spyOn(socket._socket!, 'write')
    sender.sendWire(wireFrame([bytes(6, 2)]))
    // ws's own frame writes only: none is our whole frame
    expect(write.mock.calls.some(([data]) => (data as Buffer).length === 8)).toBe(false)
    server.send(bytes(4, 3), { binary: true, fin: true })
    await until(2)
    expect(received.map(b => b.length)).toEqual([4 + 6, 4])
    server.close()
    write.mockClear()
    sender.sendWire(wireFrame([bytes(6, 2)]))
    expect(write).not.toHaveBeenCalled()
  })
})
