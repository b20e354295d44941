import { describe, expect, it } from 'vitest'
import { homePartition, Placement } from './partition-placement.js'

const names = Array.from({ length: 6_000 }, (_, i) => `acme/doc-${i}`)

function spread(ids: string[]): Map<string, number> {
  const placement = new Placement(ids)
  const counts = new Map(ids.map(id => [id, 0]))
  for (const n of names) counts.set(placement.home(n), counts.get(placement.home(n))! + 1)
  return counts
}

describe('partition placement (rendezvous hashing)', () => {
  it('places a document by its name and the set of ids only: not their order', () => {
    const a = new Placement(['p1', 'p2', 'p3'])
    const b = new Placement(['p3', 'p1', 'p2'])
    for (const n of names.slice(0, 500)) expect(a.home(n)).toBe(b.home(n))
    // the documented formula, checked on fixed values so that a change of it cannot go unnoticed
    expect(['acme/a', 'acme/b', 'acme/c', 'x', ''].map(n => homePartition(n, ['p1', 'p2', 'p3']))).toEqual(['p1', 'p2', 'p3', 'p2', 'p3'])
  })

  it('spreads documents evenly over the partitions', () => {
    for (const [id, count] of spread(['p1', 'p2', 'p3'])) {
      // 2,000 expected each; a binomial's standard deviation is about 37
      expect(count, id).toBeGreaterThan(1_800)
      expect(count, id).toBeLessThan(2_200)
    }
  })

  it('adding a partition moves only the documents the new one takes, about 1/n of them', () => {
    const before = new Placement(['p1', 'p2', 'p3'])
    const after = new Placement(['p1', 'p2', 'p3', 'p4'])
    const moved = names.filter(n => before.home(n) !== after.home(n))
    expect(moved.every(n => after.home(n) === 'p4')).toBe(true)
    expect(moved.length / names.length).toBeGreaterThan(0.2)
    expect(moved.length / names.length).toBeLessThan(0.3)
  })

  it('refuses ids that are empty, repeated or not plain', () => {
    expect(() => new Placement([])).toThrow(/at least one partition/)
    expect(() => new Placement(['a', 'a'])).toThrow(/distinct/)
    expect(() => new Placement(['a b'])).toThrow(/invalid partition id/)
    expect(() => new Placement(['-a'])).toThrow(/invalid partition id/)
  })
})
