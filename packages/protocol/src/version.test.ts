import { describe, expect, it } from 'vitest'
import { NATIVE_SUBPROTOCOL, negotiateVersion, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, PROTOCOL_VERSIONS } from './version.js'

describe('protocol versions', () => {
  it('speaks version 1, with MIN and MAX matching the list', () => {
    expect(PROTOCOL_VERSIONS).toEqual([1])
    expect(PROTOCOL_VERSION_MIN).toBe(Math.min(...PROTOCOL_VERSIONS))
    expect(PROTOCOL_VERSION_MAX).toBe(Math.max(...PROTOCOL_VERSIONS))
    expect([...PROTOCOL_VERSIONS]).toEqual([...PROTOCOL_VERSIONS].sort((a, b) => a - b))
  })

  it('marks native connections with the subprotocol "concord"', () => {
    expect(NATIVE_SUBPROTOCOL).toBe('concord')
  })
})

describe('negotiateVersion', () => {
  it('accepts an offer that contains version 1', () => {
    expect(negotiateVersion(1, 1)).toBe(1)
    expect(negotiateVersion(0, 1)).toBe(1)
    expect(negotiateVersion(1, 5)).toBe(1)
    expect(negotiateVersion(0, Number.MAX_SAFE_INTEGER)).toBe(1)
  })

  it('returns null when the ranges do not overlap', () => {
    expect(negotiateVersion(2, 5)).toBeNull()
    expect(negotiateVersion(0, 0)).toBeNull()
    // an empty (inverted) range overlaps nothing
    expect(negotiateVersion(1, 0)).toBeNull()
    expect(negotiateVersion(1, 1, [])).toBeNull()
  })

  it('picks the highest common version', () => {
    const supported = [1, 2, 3, 5]
    expect(negotiateVersion(1, 9, supported)).toBe(5)
    expect(negotiateVersion(1, 4, supported)).toBe(3)
    expect(negotiateVersion(2, 2, supported)).toBe(2)
    expect(negotiateVersion(4, 4, supported)).toBeNull()
    // the order of the supported list does not matter
    expect(negotiateVersion(1, 9, [5, 1, 3])).toBe(5)
  })
})
