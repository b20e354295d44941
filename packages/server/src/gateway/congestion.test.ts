import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import type { ConcordError } from '@concord/protocol'
import { CongestionHold } from './congestion.js'
import { SocketSender } from './socket-sender.js'
import { FakeSocket } from './testing.js'

/** `count` updates of one document, each inserting one character. */
function updates(count: number): { updates: Uint8Array[]; text: string } {
  const doc = new Y.Doc()
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => out.push(u))
  for (let i = 0; i < count; i++) doc.getText('t').insert(i, String.fromCharCode(97 + (i % 26)))
  return { updates: out, text: doc.getText('t').toString() }
}

function setup(maxBufferedBytes = 1_000_000): { socket: FakeSocket; sender: SocketSender; hold: CongestionHold; flushed: { update: Uint8Array | null; presence: boolean }[]; closed: ConcordError[] } {
  const socket = new FakeSocket()
  const closed: ConcordError[] = []
  const sender = new SocketSender(socket, { close: e => closed.push(e) }, { chunkBytes: 0, maxBufferedBytes, slowReaderStallMs: 10_000, backpressureBytes: 100 })
  const flushed: { update: Uint8Array | null; presence: boolean }[] = []
  const hold = new CongestionHold(sender, (update, presence) => flushed.push({ update, presence }))
  return { socket, sender, hold, flushed, closed }
}

describe('CongestionHold', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('holds nothing while the socket is not congested', () => {
    const { hold, flushed } = setup()
    expect(hold.holdUpdate(new Uint8Array([1]))).toBe(false)
    expect(hold.holdPresence()).toBe(false)
    vi.advanceTimersByTime(100)
    expect(flushed).toEqual([])
  })

  it('while congested, holds updates (merged) and presence, and sends them once the socket drained', () => {
    const { socket, sender, hold, flushed } = setup()
    const { updates: all, text } = updates(40)
    socket.bufferedAmount = 500
    for (const u of all) expect(hold.holdUpdate(u)).toBe(true)
    expect(hold.holdPresence()).toBe(true)
    expect(sender.pendingBytes).toBeGreaterThan(500)
    vi.advanceTimersByTime(100)
    expect(flushed).toEqual([])
    socket.bufferedAmount = 0
    vi.advanceTimersByTime(20)
    expect(flushed).toHaveLength(1)
    expect(flushed[0]!.presence).toBe(true)
    const copy = new Y.Doc()
    Y.applyUpdate(copy, flushed[0]!.update!)
    expect(copy.getText('t').toString()).toBe(text)
    // what was held no longer counts against the socket
    expect(sender.pendingBytes).toBe(0)
  })

  it('once something is held, later updates queue behind it even if the socket is no longer congested', () => {
    const { socket, hold, flushed } = setup()
    const { updates: all } = updates(2)
    socket.bufferedAmount = 500
    expect(hold.holdUpdate(all[0]!)).toBe(true)
    socket.bufferedAmount = 0
    expect(hold.holdUpdate(all[1]!)).toBe(true)
    vi.advanceTimersByTime(20)
    expect(flushed).toHaveLength(1)
    expect(flushed[0]!.presence).toBe(false)
    expect(hold.holdUpdate(all[1]!)).toBe(false)
  })

  it('holding more than the socket may cost closes it as a slow reader', () => {
    const { socket, hold, closed } = setup(1_000)
    socket.bufferedAmount = 500
    expect(hold.holdUpdate(new Uint8Array(400))).toBe(true)
    expect(closed).toEqual([])
    expect(hold.holdUpdate(new Uint8Array(400))).toBe(true)
    expect(closed.map(e => e.code)).toEqual(['CONCORD_ERR_LIMIT_SLOW_READER'])
  })
})
