import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ChunkAssembler, ConcordError, decodeFrame, encodeFrame, FRAME_KINDS, type FrameOf } from '@concord/protocol'
import { SLOW_READER_GRACE_MS, SocketSender, type SocketSenderOptions } from './socket-sender.js'
import { FakeSocket } from './testing.js'

const OPTIONS: SocketSenderOptions = { chunkBytes: 0, maxBufferedBytes: 1_000, slowReaderStallMs: 500, backpressureBytes: 100 }

function setup(options: Partial<SocketSenderOptions> = {}, readPausedAt?: () => number): { socket: FakeSocket; sender: SocketSender; closed: ConcordError[] } {
  const socket = new FakeSocket()
  const closed: ConcordError[] = []
  const owner = { close: (e: ConcordError) => { closed.push(e) }, get readPausedAt() { return readPausedAt?.() ?? 0 } }
  const sender = new SocketSender(socket, owner, { ...OPTIONS, ...options })
  return { socket, sender, closed }
}

const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill)

describe('SocketSender', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('sends a message at once, and a message given as parts as fragments of one message', () => {
    const { socket, sender } = setup()
    const seen: number[] = []
    const s2 = new SocketSender(socket, { close: () => undefined }, { ...OPTIONS, onSend: (_first, length) => seen.push(length) })
    sender.send(bytes(3))
    s2.send([bytes(2), bytes(4)])
    expect(socket.sent.map(f => [f.data.length, f.fin])).toEqual([[3, true], [2, false], [4, true]])
    expect(seen).toEqual([6])
  })

  it('sends nothing once stopped or once the socket is no longer open', () => {
    const { socket, sender } = setup()
    socket.readyState = 2
    sender.send(bytes(3))
    socket.readyState = 1
    sender.stop()
    sender.send(bytes(3))
    expect(socket.sent).toEqual([])
  })

  it('is congested above the backpressure mark, and calls whenDrained once below it', () => {
    const { socket, sender } = setup()
    expect(sender.congested).toBe(false)
    socket.bufferedAmount = 101
    expect(sender.congested).toBe(true)
    let drained = 0
    sender.whenDrained(() => drained++)
    // still congested but reading (the buffer shrinks): not a slow reader
    for (let i = 0; i < 10; i++) {
      socket.bufferedAmount -= 0.1
      vi.advanceTimersByTime(100)
    }
    expect(drained).toBe(0)
    socket.bufferedAmount = 50
    vi.advanceTimersByTime(20)
    expect(drained).toBe(1)
  })

  it('closes a congested socket that reads nothing for the stall time as a slow reader', () => {
    const { socket, sender, closed } = setup()
    socket.bufferedAmount = 500
    sender.whenDrained(() => { throw new Error('never drained') })
    vi.advanceTimersByTime(OPTIONS.slowReaderStallMs)
    expect(closed).toEqual([])
    vi.advanceTimersByTime(40)
    expect(closed.map(e => e.code)).toEqual(['CONCORD_ERR_LIMIT_SLOW_READER'])
  })

  it('a reader with more than maxBufferedBytes waiting is cut off once it stalls, or at once above four times that', () => {
    const { socket, sender, closed } = setup()
    socket.bufferedAmount = 1_200
    sender.send(bytes(10))
    expect(closed).toEqual([])
    vi.advanceTimersByTime(OPTIONS.slowReaderStallMs + 1)
    sender.send(bytes(10))
    expect(closed.map(e => e.code)).toEqual(['CONCORD_ERR_LIMIT_SLOW_READER'])
    // stopped: nothing more goes out, and it is not reported twice
    sender.send(bytes(10))
    expect(socket.sent).toHaveLength(1)
    expect(closed).toHaveLength(1)

    const other = setup()
    other.socket.bufferedAmount = 4_001
    other.sender.send(bytes(10))
    expect(other.closed.map(e => e.code)).toEqual(['CONCORD_ERR_LIMIT_SLOW_READER'])
    expect(other.socket.sent).toEqual([])
  })

  it('counts held bytes against maxBufferedBytes: beyond it the socket is a slow reader', () => {
    const { sender, closed } = setup()
    expect(sender.hold(600)).toBe(true)
    expect(sender.pendingBytes).toBe(600)
    expect(sender.hold(-600)).toBe(true)
    expect(sender.hold(900)).toBe(true)
    expect(sender.hold(200)).toBe(false)
    expect(closed.map(e => e.code)).toEqual(['CONCORD_ERR_LIMIT_SLOW_READER'])
  })

  it('chunks a large native frame, one chunk in flight at a time, a PING after each window, the next window after PONG', () => {
    const ping = encodeFrame({ kind: FRAME_KINDS.PING, document: '' })
    const { socket, sender, closed } = setup({ chunkBytes: 10, chunkWindowBytes: 20, ping })
    const frame = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'd', seq: 1, update: bytes(45, 7) })
    sender.send(frame, 'd')
    expect(socket.sent).toHaveLength(1)
    expect(sender.pendingBytes).toBe(frame.length - 10)
    // a small frame slips in between chunks
    sender.send(encodeFrame({ kind: FRAME_KINDS.PONG, document: '' }))
    expect(socket.sent).toHaveLength(2)
    socket.flush()
    expect(socket.sent).toHaveLength(3)
    socket.flush()
    // a window (20 bytes) is out: PING, and nothing more until PONG
    expect(socket.sent).toHaveLength(4)
    expect(decodeFrame(socket.sent[3]!.data).kind).toBe(FRAME_KINDS.PING)
    socket.flush()
    expect(socket.sent).toHaveLength(4)
    sender.pong()
    for (let i = 0; i < 10 && socket.inFlight > 0; i++) {
      socket.flush()
      if (socket.inFlight === 0 && decodeFrame(socket.sent.at(-1)!.data).kind === FRAME_KINDS.PING) sender.pong()
    }
    const chunks = socket.sent.filter(f => decodeFrame(f.data).kind === FRAME_KINDS.CHUNK)
    expect(chunks.reduce((n, f) => n + (decodeFrame(f.data) as { data: Uint8Array }).data.length, 0)).toBe(frame.length)
    expect(sender.pendingBytes).toBe(0)
    expect(closed).toEqual([])
  })

  it('drain waiters are called once each, in the order they asked; a later congestion gets its own', () => {
    const { socket, sender } = setup()
    const called: string[] = []
    socket.bufferedAmount = 500
    sender.whenDrained(() => called.push('a'))
    sender.whenDrained(() => called.push('b'))
    vi.advanceTimersByTime(100)
    expect(called).toEqual([])
    socket.bufferedAmount = 0
    vi.advanceTimersByTime(20)
    expect(called).toEqual(['a', 'b'])
    expect(vi.getTimerCount()).toBe(0)
    // congested again: only the new waiter is called, once
    socket.bufferedAmount = 500
    sender.whenDrained(() => called.push('c'))
    vi.advanceTimersByTime(100)
    socket.bufferedAmount = 0
    vi.advanceTimersByTime(100)
    expect(called).toEqual(['a', 'b', 'c'])
    // stopped while congested: nothing is called, and no timer is left behind
    socket.bufferedAmount = 500
    sender.whenDrained(() => called.push('d'))
    sender.stop()
    socket.bufferedAmount = 0
    vi.advanceTimersByTime(100)
    expect(called).toEqual(['a', 'b', 'c'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('large messages sent together go out chunk by chunk, interleaved, and arrive whole; one sent after they all left goes out too', () => {
    const { socket, sender, closed } = setup({ chunkBytes: 10, maxBufferedBytes: 10_000 })
    const a = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'd', seq: 1, update: bytes(45, 7) })
    const b = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'd', seq: 2, update: bytes(35, 8) })
    const assembler = new ChunkAssembler({ maxMessageBytes: 1_000 })
    const whole: Uint8Array[] = []
    const messageIds: number[] = []
    let read = 0
    const deliver = (): void => {
      for (let i = 0; i < 100 && socket.inFlight > 0; i++) socket.flush()
      for (; read < socket.sent.length; read++) {
        const decoded = decodeFrame(socket.sent[read]!.data)
        if (decoded.kind !== FRAME_KINDS.CHUNK) continue
        const frame = decoded as FrameOf<typeof FRAME_KINDS.CHUNK>
        messageIds.push(frame.messageId)
        const done = assembler.push(frame)
        if (done !== null) whole.push(done)
      }
    }
    sender.send(a, 'd')
    sender.send(b, 'd')
    expect(sender.pendingBytes).toBe(a.length + b.length - 10)
    deliver()
    expect(whole.map(m => [...m])).toEqual(expect.arrayContaining([[...a], [...b]]))
    expect(whole).toHaveLength(2)
    // round-robin: the second message did not wait for the whole of the first
    const [first, second] = [messageIds[0]!, messageIds.find(id => id !== messageIds[0])!]
    expect(messageIds.indexOf(second)).toBeLessThan(messageIds.lastIndexOf(first) - 1)
    expect(sender.pendingBytes).toBe(0)
    const c = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'd', seq: 3, update: bytes(25, 9) })
    sender.send(c, 'd')
    deliver()
    expect(whole.map(m => [...m]).at(-1)).toEqual([...c])
    expect(sender.pendingBytes).toBe(0)
    expect(closed).toEqual([])
  })

  it('a peer that does not answer the PING within the stall time is a slow reader, unless its reading was paused meanwhile', () => {
    const ping = encodeFrame({ kind: FRAME_KINDS.PING, document: '' })
    let pausedAt = 0
    const { socket, sender, closed } = setup({ chunkBytes: 10, chunkWindowBytes: 10, ping }, () => pausedAt)
    sender.send(encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'd', seq: 1, update: bytes(40) }), 'd')
    socket.flush()
    expect(decodeFrame(socket.sent.at(-1)!.data).kind).toBe(FRAME_KINDS.PING)
    pausedAt = Date.now() + 100
    vi.advanceTimersByTime(OPTIONS.slowReaderStallMs)
    expect(closed).toEqual([])
    vi.advanceTimersByTime(OPTIONS.slowReaderStallMs)
    expect(closed.map(e => e.code)).toEqual(['CONCORD_ERR_LIMIT_SLOW_READER'])
  })

  it('while corked, judges congestion by what was buffered when the cork began: what was sent since waits for the uncork, not the peer', () => {
    const { socket, sender } = setup()
    sender.cork()
    // a large send inside the cork sits in the socket's buffer until the uncork
    socket.bufferedAmount = 500
    expect(sender.congested).toBe(false)
    sender.cork()
    sender.uncork()
    expect(sender.congested).toBe(false)
    sender.uncork()
    // uncorked, the bytes the kernel did not take are the peer's to read
    expect(sender.congested).toBe(true)
    // corked while congested: still congested
    sender.cork()
    expect(sender.congested).toBe(true)
    sender.uncork()
    expect(socket.corked).toBe(0)
  })

  it('corks the socket around a batch of sends', () => {
    const { socket, sender } = setup()
    sender.corked(() => {
      expect(socket.corked).toBe(1)
      sender.send(bytes(1))
      sender.send(bytes(1))
    })
    expect(socket.corked).toBe(0)
    expect(socket.sent).toHaveLength(2)
  })

  it('closes with the error\'s close code, and cuts off a slow reader after the grace time', () => {
    const { socket, sender } = setup()
    sender.closeSocket(new ConcordError('CONCORD_ERR_LIMIT_SLOW_READER'))
    expect(socket.closedWith?.reason).toBe('CONCORD_ERR_LIMIT_SLOW_READER')
    expect(socket.closedWith?.code).toBe(new ConcordError('CONCORD_ERR_LIMIT_SLOW_READER').closeCode)
    vi.advanceTimersByTime(SLOW_READER_GRACE_MS - 1)
    expect(socket.terminated).toBe(false)
    vi.advanceTimersByTime(1)
    expect(socket.terminated).toBe(true)

    const other = setup()
    other.sender.closeSocket()
    expect(other.socket.closedWith).toEqual({ code: 1000, reason: undefined })
    other.sender.send(bytes(1))
    vi.advanceTimersByTime(SLOW_READER_GRACE_MS * 2)
    expect(other.socket.terminated).toBe(false)
    expect(other.socket.sent).toEqual([])
  })
})
