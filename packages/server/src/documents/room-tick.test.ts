import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RoomTick, sendTogether } from './room-tick.js'
import { FakeSession } from './testing.js'

describe('RoomTick', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('runs the first request of a quiet room on the next timer, and later ones a period after the last tick', () => {
    const ticks: number[] = []
    const tick = new RoomTick(() => 10, () => { ticks.push(performance.now()) })
    tick.request()
    // never inside the caller: what the caller goes on to queue joins the same tick
    expect(ticks).toEqual([])
    tick.request()
    vi.advanceTimersByTime(0)
    expect(ticks).toHaveLength(1)
    const first = ticks[0]!
    // requests within the period wait for its end, and make one tick
    vi.advanceTimersByTime(3)
    tick.request()
    tick.request()
    expect(tick.pending).toBe(true)
    vi.advanceTimersByTime(6)
    expect(ticks).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(ticks.map(t => t - first)).toEqual([0, 10])
    // nothing requested: no tick
    vi.advanceTimersByTime(100)
    expect(ticks).toHaveLength(2)
    // after a quiet while, at once again
    tick.request()
    vi.advanceTimersByTime(0)
    expect(ticks.map(t => t - first)).toEqual([0, 10, 110])
  })

  it('reads the period at each request (the room grows), and does nothing once stopped', () => {
    let period = 5
    let ticks = 0
    const tick = new RoomTick(() => period, () => { ticks++ })
    tick.request()
    vi.advanceTimersByTime(0)
    period = 20
    tick.request()
    vi.advanceTimersByTime(19)
    expect(ticks).toBe(1)
    vi.advanceTimersByTime(1)
    expect(ticks).toBe(2)
    tick.request()
    tick.stop()
    tick.request()
    vi.advanceTimersByTime(1_000)
    expect(ticks).toBe(2)
    expect(tick.pending).toBe(false)
  })
})

class CorkedSession extends FakeSession {
  depth = 0
  cork(): void { this.depth++ }
  uncork(): void { this.depth-- }
}

describe('sendTogether', () => {
  it('corks every session around the sends, and uncorks each one, also one that left meanwhile or when a send throws', () => {
    const sessions = new Set([new CorkedSession('a'), new CorkedSession('b'), new FakeSession('no cork')])
    const [a, b] = [...sessions] as CorkedSession[]
    const seen: number[] = []
    sendTogether(sessions, () => {
      seen.push(a!.depth, b!.depth)
      sessions.delete(b!)
    })
    expect(seen).toEqual([1, 1])
    expect([a!.depth, b!.depth]).toEqual([0, 0])
    expect(() => { sendTogether(sessions, () => { throw new Error('a send failed') }) }).toThrow('a send failed')
    expect(a!.depth).toBe(0)
  })
})
