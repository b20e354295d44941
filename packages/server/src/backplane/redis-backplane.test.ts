import { describe, expect, it } from 'vitest'
import { compareStreamIds, nextStreamId, previousStreamId } from './redis-backplane.js'

describe('stream ids around an entry (where a load subscribes from)', () => {
  it('previous and next are neighbours in stream order', () => {
    for (const id of ['5-3', '5-0', '1-0', '1700000000000-18446744073709551615']) {
      const before = previousStreamId(id)
      expect(compareStreamIds(before, id)).toBe(-1)
      expect(nextStreamId(before)).toBe(id)
      expect(compareStreamIds(nextStreamId(id), id)).toBe(1)
    }
    expect(previousStreamId('5-0')).toBe('4-18446744073709551615')
    expect(previousStreamId('0-0')).toBe('0-0')
  })
})
