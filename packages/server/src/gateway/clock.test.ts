import { describe, expect, it } from 'vitest'
import { CLOCK_EPOCH, clockNow, sinceClockEpoch } from './clock.js'

describe('the gateway clock', () => {
  it('reads a time as the milliseconds since its epoch, the same number whatever its size', () => {
    expect(sinceClockEpoch(CLOCK_EPOCH + 1_234)).toBe(1_234)
    expect(sinceClockEpoch(CLOCK_EPOCH - 5)).toBe(-5)
    expect(sinceClockEpoch(CLOCK_EPOCH + 0.5)).toBe(0.5)
    // past 24 days (beyond 32 bits) it is still the right number
    expect(sinceClockEpoch(CLOCK_EPOCH + 30 * 86_400_000)).toBe(30 * 86_400_000)
    expect(sinceClockEpoch(CLOCK_EPOCH + 2 ** 31)).toBe(2 ** 31)
    const before = Date.now() - CLOCK_EPOCH
    const now = clockNow()
    expect(now).toBeGreaterThanOrEqual(before)
    expect(now).toBeLessThanOrEqual(Date.now() - CLOCK_EPOCH)
  })
})
