import { describe, expect, it } from 'vitest'
import { SocketRateLimiter, TokenBucket } from './rate-limiter.js'

describe('SocketRateLimiter', () => {
  it('takes a message from both budgets or from neither', () => {
    const limiter = new SocketRateLimiter({ messagesPerSecond: 1, messagesBurst: 2, bytesPerSecond: 1, bytesBurst: 100 })
    const now = Date.now()
    // too many bytes: refused, and the message token is not spent
    expect(limiter.take(150, now)).toBe(false)
    expect(limiter.take(50, now)).toBe(true)
    expect(limiter.take(50, now)).toBe(true)
    expect(limiter.take(0, now)).toBe(false)
    expect(limiter.waitMs(0, now)).toBe(1_000)
    expect(limiter.waitMs(10, now)).toBe(10_000)
  })

  it('TokenBucket refills at its rate up to its burst, and says when', () => {
    const t0 = 1_000_000
    const bucket = new TokenBucket(10, 5, t0)
    for (let i = 0; i < 5; i++) expect(bucket.take(1, t0)).toBe(true)
    expect(bucket.take(1, t0)).toBe(false)
    expect(bucket.waitMs(1, t0)).toBe(100)
    expect(bucket.waitMs(6, t0)).toBe(Infinity)
    expect(bucket.take(1, t0 + 100)).toBe(true)
    expect(bucket.take(5, t0 + 60_000)).toBe(true)
    expect(bucket.take(1, t0 + 60_000)).toBe(false)
  })

  it('a bucket that waited refills no higher than its burst, and time going backwards takes nothing back', () => {
    const t0 = 5_000
    const bucket = new TokenBucket(1_000, 3, t0)
    expect(bucket.take(3, t0)).toBe(true)
    expect(bucket.has(1, t0 - 1_000)).toBe(false)
    expect(bucket.take(3, t0 + 10_000)).toBe(true)
    expect(bucket.has(1, t0 + 10_000)).toBe(false)
  })
})
