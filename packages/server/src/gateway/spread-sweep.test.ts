import { describe, expect, it } from 'vitest'
import { SpreadSweep } from './spread-sweep.js'

/** Runs `sweep` for `ms` of a fake clock, one tick every tickMs; records each visit. */
function drive<T>(items: Set<T>, intervalMs: number, ms: number, during?: (now: number) => void) {
  let now = 1_000_000
  const visits: { item: T; at: number; since: number }[] = []
  const perTick: number[] = []
  const sweep = new SpreadSweep(items, intervalMs, (item, since) => visits.push({ item, at: now, since }), () => now)
  const end = now + ms
  for (; now < end; now += sweep.tickMs) {
    during?.(now)
    const before = visits.length
    sweep.tick()
    perTick.push(visits.length - before)
  }
  return { visits, perTick, sweep }
}

describe('SpreadSweep', () => {
  it('visits 20,000 items once per interval, a few dozen per tick instead of all at once', () => {
    const items = new Set(Array.from({ length: 20_000 }, (_, i) => i))
    const { visits, perTick, sweep } = drive(items, 30_000, 90_000)
    expect(sweep.tickMs).toBe(100)
    expect(Math.max(...perTick)).toBeLessThanOrEqual(Math.ceil(20_000 / 300) + 1)
    // three rounds: every item three times, each about one interval after the last
    const byItem = new Map<number, number[]>()
    for (const v of visits) {
      const at = byItem.get(v.item)
      if (at === undefined) byItem.set(v.item, [v.at])
      else at.push(v.at)
    }
    expect(byItem.size).toBe(20_000)
    for (const [, at] of byItem) {
      expect(at).toHaveLength(3)
      for (let k = 1; k < at.length; k++) expect(Math.abs(at[k]! - at[k - 1]! - 30_000)).toBeLessThanOrEqual(200)
    }
  })

  it('passes the previous round\'s start, which is before the item\'s previous visit', () => {
    const items = new Set(Array.from({ length: 500 }, (_, i) => i))
    const { visits } = drive(items, 1_000, 3_000)
    const last = new Map<number, number>()
    for (const v of visits) {
      const previous = last.get(v.item)
      if (previous === undefined) expect(v.since).toBe(0)
      else expect(v.since).toBeLessThanOrEqual(previous)
      last.set(v.item, v.at)
    }
  })

  it('does not visit a lone item every tick', () => {
    const { visits } = drive(new Set(['only']), 30_000, 95_000)
    expect(visits.map(v => v.at - visits[0]!.at)).toEqual([0, 30_000, 60_000, 90_000])
  })

  it('with a short interval, visits everything at each tick, as one sweep', () => {
    const items = new Set([1, 2, 3])
    const { visits, sweep } = drive(items, 100, 400)
    expect(sweep.tickMs).toBe(100)
    expect(visits).toHaveLength(12)
  })

  it('visits items added during a round, and not those deleted before their turn', () => {
    const items = new Set(Array.from({ length: 100 }, (_, i) => i))
    const { visits } = drive(items, 10_000, 10_000, now => {
      if (now === 1_000_000 + 2_000) {
        items.add(1000)
        items.delete(99)
      }
    })
    const seen = new Set(visits.map(v => v.item))
    expect(seen.has(1000)).toBe(true)
    expect(seen.has(99)).toBe(false)
    expect(seen.size).toBe(100)
  })
})
