import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MAX_HELD_MESSAGES, ReadThrottle, type ReadThrottleOptions, type ThrottledReader } from './read-throttle.js'

/** A socket that records pause/resume (ws pauses its TCP socket; here nothing stops the test from delivering more). */
function fakeSocket(): { pause(): void; resume(): void; paused: boolean; pauses: number; resumes: number } {
  return {
    paused: false, pauses: 0, resumes: 0,
    pause() { this.paused = true; this.pauses++ },
    resume() { this.paused = false; this.resumes++ },
  }
}

const LIMITS: ReadThrottleOptions = { messagesPerSecond: 100, messagesBurst: 5, bytesPerSecond: 1e9, bytesBurst: 1e9, maxMessageBytes: 1024 }

function message(i: number, size = 4): Uint8Array {
  const m = new Uint8Array(size)
  new DataView(m.buffer).setUint32(0, i)
  return m
}

const idOf = (m: Uint8Array): number => new DataView(m.buffer, m.byteOffset).getUint32(0)

/** A reader of a throttle made of the test's callbacks. */
function reader(handle: (m: Uint8Array) => void, overflow: (reason: string) => void, failed?: (err: unknown) => void): ThrottledReader {
  return { readAllowed: handle, readOverflow: overflow, ...(failed !== undefined ? { readFailed: failed } : {}) }
}

describe('ReadThrottle: a socket over its rate is read more slowly, nothing is refused', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('handles the burst at once, keeps the rest in order while the socket is paused, and resumes once they are handled', () => {
    const socket = fakeSocket()
    const handled: number[] = []
    const overflows: string[] = []
    const throttle = new ReadThrottle(socket, LIMITS, reader(m => handled.push(idOf(m)), r => overflows.push(r)))
    for (let i = 0; i < 30; i++) throttle.receive(message(i))
    expect(handled).toEqual([0, 1, 2, 3, 4])
    expect(socket).toMatchObject({ paused: true, pauses: 1, resumes: 0 })
    expect(throttle.heldBytes).toBe(25 * 4)
    expect(throttle.pausedAt).toBe(Date.now())
    // 100 messages a second: the other 25 within a quarter of a second, in batches
    vi.advanceTimersByTime(100)
    expect(handled.length).toBeGreaterThan(5)
    expect(handled.length).toBeLessThan(30)
    expect(socket.paused).toBe(true)
    vi.advanceTimersByTime(200)
    expect(handled).toEqual(Array.from({ length: 30 }, (_, i) => i))
    expect(socket).toMatchObject({ paused: false, pauses: 1, resumes: 1 })
    expect(throttle.heldBytes).toBe(0)
    expect(overflows).toEqual([])
    // after the pause: a message within budget is handled at once again
    vi.advanceTimersByTime(1_000)
    throttle.receive(message(30))
    expect(handled.at(-1)).toBe(30)
  })

  it('a second flood after the first was handled is kept in order again: paused and resumed once more', () => {
    const socket = fakeSocket()
    const handled: number[] = []
    const throttle = new ReadThrottle(socket, LIMITS, reader(m => handled.push(idOf(m)), () => undefined))
    for (let i = 0; i < 12; i++) throttle.receive(message(i))
    vi.advanceTimersByTime(1_000)
    expect(handled).toEqual(Array.from({ length: 12 }, (_, i) => i))
    expect(socket).toMatchObject({ paused: false, pauses: 1, resumes: 1 })
    for (let i = 12; i < 30; i++) throttle.receive(message(i))
    expect(handled).toHaveLength(17)
    expect(socket).toMatchObject({ paused: true, pauses: 2, resumes: 1 })
    expect(throttle.heldBytes).toBe(13 * 4)
    vi.advanceTimersByTime(1_000)
    expect(handled).toEqual(Array.from({ length: 30 }, (_, i) => i))
    expect(socket).toMatchObject({ paused: false, pauses: 2, resumes: 2 })
    expect(throttle.heldBytes).toBe(0)
  })

  it('a message arriving while others wait queues behind them, even when the budget would allow it', () => {
    const socket = fakeSocket()
    const handled: number[] = []
    const throttle = new ReadThrottle(socket, LIMITS, reader(m => handled.push(idOf(m)), () => undefined))
    for (let i = 0; i < 6; i++) throttle.receive(message(i))
    expect(handled).toEqual([0, 1, 2, 3, 4])
    vi.advanceTimersByTime(5)
    // a token is back, but message 5 is still waiting: 6 must not overtake it
    throttle.receive(message(6))
    expect(handled).toEqual([0, 1, 2, 3, 4])
    vi.advanceTimersByTime(100)
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6])
  })

  it('limits bytes as well: a large message waits until the byte budget holds it', () => {
    const socket = fakeSocket()
    const handled: number[] = []
    const throttle = new ReadThrottle(socket, { messagesPerSecond: 1e6, messagesBurst: 1e6, bytesPerSecond: 1_000, bytesBurst: 1_000, maxMessageBytes: 1_000 },
      reader(m => handled.push(idOf(m)), () => undefined))
    throttle.receive(message(0, 600))
    throttle.receive(message(1, 600))
    expect(handled).toEqual([0])
    expect(socket.paused).toBe(true)
    vi.advanceTimersByTime(150)
    expect(handled).toEqual([0])
    vi.advanceTimersByTime(100)
    expect(handled).toEqual([0, 1])
    expect(socket.paused).toBe(false)
  })

  it('a sender that keeps delivering while paused (more than a paused socket lets through) is reported once, and what it sent is dropped', () => {
    const socket = fakeSocket()
    const handled: number[] = []
    const overflows: string[] = []
    const throttle = new ReadThrottle(socket, LIMITS, reader(m => handled.push(idOf(m)), r => overflows.push(r)))
    for (let i = 0; i < 5 + MAX_HELD_MESSAGES + 100; i++) throttle.receive(message(i))
    expect(overflows).toHaveLength(1)
    expect(overflows[0]).toMatch(/kept sending while its socket was paused/)
    expect(throttle.heldBytes).toBe(0)
    // (the caller that closes for abuse pauses the socket again)
    vi.advanceTimersByTime(10_000)
    expect(handled).toEqual([0, 1, 2, 3, 4])
  })

  it('bounds the bytes held as well as the count', () => {
    const socket = fakeSocket()
    const overflows: string[] = []
    const throttle = new ReadThrottle(socket, { ...LIMITS, messagesBurst: 1 }, reader(() => undefined, r => overflows.push(r)))
    // maxMessageBytes 1 KiB: at most 1 KiB + 1 MiB held
    for (let i = 0; i < 2_000 && overflows.length === 0; i++) throttle.receive(message(i, 1024))
    expect(overflows).toHaveLength(1)
  })

  it('stop() drops what is held, handles nothing more, and reads the socket again (to see the close frame)', () => {
    const socket = fakeSocket()
    const handled: number[] = []
    const throttle = new ReadThrottle(socket, LIMITS, reader(m => handled.push(idOf(m)), () => undefined))
    for (let i = 0; i < 10; i++) throttle.receive(message(i))
    throttle.stop()
    expect(socket).toMatchObject({ paused: false, resumes: 1 })
    vi.advanceTimersByTime(1_000)
    expect(handled).toEqual([0, 1, 2, 3, 4])
    throttle.receive(message(99))
    expect(handled).toEqual([0, 1, 2, 3, 4])
    expect(throttle.heldBytes).toBe(0)
  })

  it('a handler that closes the connection (stop) midway ends the batch', () => {
    const socket = fakeSocket()
    const handled: number[] = []
    let throttle: ReadThrottle | null = null
    throttle = new ReadThrottle(socket, LIMITS, reader(m => {
      handled.push(idOf(m))
      if (idOf(m) === 7) throttle!.stop()
    }, () => undefined))
    for (let i = 0; i < 20; i++) throttle.receive(message(i))
    vi.advanceTimersByTime(1_000)
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(throttle.heldBytes).toBe(0)
  })
})

describe('ReadThrottle: errors', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('a handler that throws from the timer is reported to readFailed (no uncaught exception), and the throttle stops', () => {
    const socket = fakeSocket()
    const errors: unknown[] = []
    const handled: number[] = []
    const throttle = new ReadThrottle(socket, LIMITS, reader(m => {
      handled.push(idOf(m))
      if (idOf(m) === 6) throw new Error('boom')
    }, () => undefined, err => errors.push(err)))
    for (let i = 0; i < 10; i++) throttle.receive(message(i))
    vi.advanceTimersByTime(1_000)
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6])
    expect(errors).toHaveLength(1)
    expect(throttle.heldBytes).toBe(0)
  })
})
