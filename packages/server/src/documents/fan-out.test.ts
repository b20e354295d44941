import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import { FanOut, LARGE_UPDATE_BYTES, MAX_CHAINED_FLUSHES, MERGE_GROUP } from './fan-out.js'
import { BIG_ROOM_SESSIONS, BIG_ROOM_WINDOW_MS } from './room-tick.js'
import { FakeSession, seededRandom, until } from './testing.js'
import type { DocumentSession } from './document-session.js'

/** `n` updates of one writer (each one character). */
function updates(n: number, doc = new Y.Doc()): Uint8Array[] {
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => { out.push(u) })
  for (let i = 0; i < n; i++) doc.getText('t').insert(i, 'x')
  return out
}

function fanOut(sessions: DocumentSession[]): FanOut {
  return new FanOut('d', new Set(sessions), undefined, fn => fn())
}

function textOf(received: Uint8Array[]): string {
  const doc = new Y.Doc()
  for (const u of received) Y.applyUpdate(doc, u)
  return doc.getText('t').toString()
}

describe('FanOut grouping', () => {
  it('a few updates go out as they are, one write per session, and nobody gets their own back', () => {
    const writer = new FakeSession('w')
    const listener = new FakeSession('l')
    const fan = fanOut([writer, listener])
    const ups = updates(3)
    for (const u of ups) fan.enqueue(u, writer, performance.now())
    fan.flush()
    expect(listener.updates).toEqual(ups)
    expect(writer.updates).toEqual([])
  })

  it('a burst is merged into frames of at most MERGE_GROUP updates for those who wrote none of it; a writer gets the others\' as they are', () => {
    const seed = Math.floor(Math.random() * 2 ** 31)
    console.log(`fan-out grouping seed ${seed}`)
    const random = seededRandom(seed)
    const a = new FakeSession('a')
    const b = new FakeSession('b')
    const listener = new FakeSession('l')
    const fan = fanOut([a, b, listener])
    const fromA = updates(MERGE_GROUP + 10)
    const fromB = updates(5)
    // interleaved at random: the order within each writer is kept
    let i = 0
    let j = 0
    while (i < fromA.length || j < fromB.length) {
      if (j >= fromB.length || (i < fromA.length && random() < 0.9)) fan.enqueue(fromA[i++]!, a, performance.now())
      else fan.enqueue(fromB[j++]!, b, performance.now())
    }
    fan.flush()
    const total = fromA.length + fromB.length
    expect(listener.updates).toHaveLength(Math.ceil(total / MERGE_GROUP))
    expect(textOf(listener.updates)).toBe(textOf([...fromA, ...fromB]))
    // a wrote in every frame: it gets b's updates as they are; b gets a merged frame where it wrote nothing
    expect(a.updates).toEqual(fromB)
    expect(textOf(b.updates)).toBe(textOf(fromA))
    for (const u of fromB) expect(b.updates).not.toContain(u)
  })

  it('a large update goes out alone, as received', () => {
    const writer = new FakeSession('w')
    const listener = new FakeSession('l')
    const fan = fanOut([writer, listener])
    const small = updates(10)
    const big = new Y.Doc()
    let large: Uint8Array | null = null
    big.on('update', (u: Uint8Array) => { large = u })
    big.getText('t').insert(0, 'y'.repeat(LARGE_UPDATE_BYTES))
    for (const u of small) fan.enqueue(u, writer, performance.now())
    fan.enqueue(large!, writer, performance.now())
    fan.flush()
    expect(listener.updates).toHaveLength(2)
    expect(listener.updates[1]).toBe(large)
  })

  it('nothing is sent when nobody is there, and a cleared outbox sends nothing', () => {
    const listener = new FakeSession('l')
    const fan = fanOut([listener])
    fan.enqueue(updates(1)[0]!, null, performance.now())
    fan.clear()
    fan.flush()
    expect(listener.updates).toEqual([])
  })
})

describe('FanOut in a big room', () => {
  it(`with ${BIG_ROOM_SESSIONS} sessions or more, what arrives within ${BIG_ROOM_WINDOW_MS} ms goes out as one merged frame to everyone who wrote none of it`, async () => {
    const sessions = Array.from({ length: BIG_ROOM_SESSIONS }, (_, i) => new FakeSession(`s${i}`))
    const fan = fanOut(sessions)
    const a = sessions[0]!
    const b = sessions[1]!
    const fromA = updates(2)
    const fromB = updates(1)
    fan.enqueue(fromA[0]!, a, performance.now())
    fan.enqueue(fromB[0]!, b, performance.now())
    fan.enqueue(fromA[1]!, a, performance.now())
    // nothing goes out at once: the window collects the room's updates
    expect(sessions[2]!.updates).toEqual([])
    await new Promise(resolve => setTimeout(resolve, BIG_ROOM_WINDOW_MS * 4))
    for (const s of sessions.slice(2)) {
      expect(s.updates).toHaveLength(1)
      expect(textOf(s.updates)).toBe(textOf([...fromA, ...fromB]))
    }
    // the writers get the others' updates as they are, never their own
    expect(a.updates).toEqual(fromB)
    expect(b.updates).toEqual(fromA)
  })

  it('below that size, what is applied together goes out together as soon as that code is done, before the event loop turns', async () => {
    const sessions = Array.from({ length: BIG_ROOM_SESSIONS - 1 }, (_, i) => new FakeSession(`s${i}`))
    const fan = fanOut(sessions)
    const ups = updates(2)
    for (const u of ups) fan.enqueue(u, sessions[0]!, performance.now())
    expect(sessions[1]!.updates).toEqual([])
    let turned = false
    setImmediate(() => { turned = true })
    await Promise.resolve()
    // sent before any I/O or check-phase callback of the event loop could run
    expect(turned).toBe(false)
    expect(sessions[1]!.updates).toEqual(ups)
  })

  it('observes each update\'s delivery latency, from its arrival until it is handed to the sockets', () => {
    const observed: Record<string, number[]> = { fanout: [], updateDelivery: [] }
    const histogram = (name: string) => ({ observe: (s: number) => { observed[name]!.push(s) } })
    const metrics = { fanout: histogram('fanout'), updateDelivery: histogram('updateDelivery') } as unknown as ConstructorParameters<typeof FanOut>[2]
    const listener = new FakeSession('l')
    const fan = new FanOut('d', new Set([new FakeSession('w'), listener]), metrics, fn => fn())
    const ups = updates(3)
    const now = performance.now()
    fan.enqueue(ups[0]!, null, now - 40)
    fan.enqueue(ups[1]!, null, now - 20)
    fan.enqueue(ups[2]!, null, now)
    fan.flush()
    expect(observed.fanout).toHaveLength(1)
    expect(observed.updateDelivery).toHaveLength(3)
    const [first, second, third] = observed.updateDelivery as [number, number, number]
    expect(first).toBeGreaterThanOrEqual(0.040)
    expect(second).toBeGreaterThanOrEqual(0.020)
    expect(second).toBeLessThan(first)
    expect(third).toBeLessThan(second)
  })
})

describe('FanOut under a chain of edits answering edits', () => {
  it(`lets the event loop turn after ${MAX_CHAINED_FLUSHES} flushes in a row by microtask (two bots answering each other)`, async () => {
    // a session that answers every update it gets with an update of its own, at once
    const ups = updates(MAX_CHAINED_FLUSHES * 4)
    let fan: FanOut | null = null
    let next = 0
    class Echo extends FakeSession {
      override sendUpdate(m: Parameters<FakeSession['sendUpdate']>[0]): void {
        super.sendUpdate(m)
        if (next < ups.length) fan!.enqueue(ups[next++]!, this, performance.now())
      }
    }
    const a = new Echo('a')
    const b = new Echo('b')
    fan = new FanOut('d', new Set([a, b]), undefined, fn => fn())
    let turns = 0
    let stop = false
    const tick = (): void => { turns++; if (!stop) setImmediate(tick) }
    setImmediate(tick)
    fan.enqueue(ups[next++]!, a, performance.now())
    await until(() => next === ups.length && a.updates.length + b.updates.length === ups.length, 'every answer delivered')
    stop = true
    // everything was delivered, in order, and the loop turned in between (timers and sockets ran)
    expect([...a.updates, ...b.updates].length).toBe(ups.length)
    expect(turns).toBeGreaterThanOrEqual(3)
  })
})

describe('FanOut on a busy event loop', () => {
  it(`sends at once until ${MAX_CHAINED_FLUSHES} documents have flushed in one turn; the rest go out batched when the loop turns`, async () => {
    const rooms = Array.from({ length: MAX_CHAINED_FLUSHES + 8 }, (_, i) => {
      const listener = new FakeSession(`l${i}`)
      return { listener, fan: fanOut([new FakeSession(`w${i}`), listener]), ups: updates(2) }
    })
    // a turn of the event loop starts: every room gets an update, each from a read of its own
    await new Promise(resolve => setImmediate(resolve))
    for (const r of rooms) {
      r.fan.enqueue(r.ups[0]!, null, performance.now())
      await Promise.resolve()
    }
    // the first MAX_CHAINED_FLUSHES rooms' listeners have theirs already; the others' wait for the check phase
    expect(rooms.filter(r => r.listener.updates.length === 1)).toHaveLength(MAX_CHAINED_FLUSHES)
    for (const r of rooms.slice(MAX_CHAINED_FLUSHES)) r.fan.enqueue(r.ups[1]!, null, performance.now())
    await new Promise(resolve => setImmediate(resolve))
    // ... where both of their updates went out together
    for (const r of rooms.slice(MAX_CHAINED_FLUSHES)) expect(r.listener.updates).toEqual(r.ups)
    // and on the next turn, sending at once again
    const extra = updates(1)
    rooms[0]!.fan.enqueue(extra[0]!, null, performance.now())
    await Promise.resolve()
    expect(rooms[0]!.listener.updates).toHaveLength(2)
  })
})
