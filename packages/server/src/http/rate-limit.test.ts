import { describe, expect, it } from 'vitest'
import type { IncomingMessage } from 'node:http'
import { HttpRateLimiter } from './rate-limit.js'
import { DEFAULTS } from '../config/server-config.js'
import { resolveOptions } from '../server-options.js'
import { parseServeConfig } from '../cli/cli.js'
import { createMemoryStorage } from '../storage/memory-storage.js'
import { silentLogger } from '../ops/logger.js'
import { AccessControl } from '../auth/access-control.js'

const limits = { requestsPerSecond: 2, requestsBurst: 20, expensiveRequestCost: 10, maxCallers: 3, trustProxyHops: 0 }

describe('HttpRateLimiter', () => {
  it('lets a burst through, then refuses with the seconds the cost takes to come back, and refills at the rate', () => {
    const l = new HttpRateLimiter(limits)
    const t = 1_000_000
    expect(l.take('a', 10, t)).toEqual({ ok: true })
    expect(l.take('a', 10, t)).toEqual({ ok: true })
    // empty: an expensive request needs 10 tokens, 5 s at 2 per second
    expect(l.take('a', 10, t)).toEqual({ ok: false, retryAfterSeconds: 5 })
    expect(l.take('a', 1, t)).toEqual({ ok: false, retryAfterSeconds: 1 })
    // a refused request takes nothing: after 5 s the expensive one passes
    expect(l.take('a', 10, t + 5_000)).toEqual({ ok: true })
    // another caller has a bucket of its own
    expect(l.take('b', 10, t)).toEqual({ ok: true })
  })

  it('keeps at most maxCallers buckets, forgetting the least recently seen', () => {
    const l = new HttpRateLimiter(limits)
    const t = 1_000_000
    for (const key of ['a', 'b', 'c']) l.take(key, 20, t)
    expect(l.take('a', 1, t).ok).toBe(false) // a is now the most recently seen
    l.take('d', 1, t) // forgets b, the least recently seen
    expect(l.size).toBe(3)
    expect(l.take('a', 1, t).ok).toBe(false)
    expect(l.take('c', 1, t).ok).toBe(false)
    expect(l.take('b', 1, t).ok).toBe(true) // forgotten: a new, full bucket (and c is forgotten now)
    for (let i = 0; i < 10_000; i++) l.take(`caller ${i}`, 1, t)
    expect(l.size).toBe(3)
  })

  it('charges a user per tenant and user id, and a caller without a user id by its address', () => {
    const l = new HttpRateLimiter({ ...limits, trustProxyHops: 1 })
    const req = { socket: { remoteAddress: '10.0.0.1' }, headers: { 'x-forwarded-for': '203.0.113.9' } } as unknown as IncomingMessage
    expect(l.keyOf(req, { userId: 'ann', tenant: 'acme' })).not.toBe(l.keyOf(req, { userId: 'ann', tenant: 'globex' }))
    expect(l.keyOf(req, { userId: null })).toBe('address 203.0.113.9')
    expect(() => new HttpRateLimiter({ ...limits, requestsBurst: 5 })).toThrow(/at least the cost/)
  })
})

describe('HTTP rate limit and named-version options', () => {
  const fallbacks = { storage: () => createMemoryStorage(), logger: silentLogger, access: () => AccessControl.inMemory() }

  it('have defaults, are validated at start-up, and come from flags or the environment', () => {
    const o = resolveOptions({ auth: 'none' }, fallbacks)
    expect([o.httpRequestsPerSecond, o.httpRequestsBurst, o.httpExpensiveRequestCost, o.httpRateLimitMaxCallers, o.maxNamedVersionsPerDocument])
      .toEqual([50, 500, 10, 10_000, 100])
    expect(DEFAULTS.maxNamedVersionsPerDocument).toBe(100)
    expect(() => resolveOptions({ auth: 'none', maxNamedVersionsPerDocument: 0 }, fallbacks)).toThrow(/maxNamedVersionsPerDocument must be a positive integer/)
    expect(() => resolveOptions({ auth: 'none', httpRequestsBurst: 5 }, fallbacks)).toThrow(/httpRequestsBurst must be at least httpExpensiveRequestCost/)
    const open = { CONCORD_AUTH: 'none' }
    expect(parseServeConfig([], open)).toMatchObject({ httpRateLimit: undefined, maxNamedVersions: undefined })
    expect(parseServeConfig(['--http-rate-limit', '5', '--max-named-versions', '20'], open)).toMatchObject({ httpRateLimit: 5, maxNamedVersions: 20 })
    expect(parseServeConfig([], { ...open, CONCORD_HTTP_RATE_LIMIT: '7', CONCORD_MAX_NAMED_VERSIONS: '3' })).toMatchObject({ httpRateLimit: 7, maxNamedVersions: 3 })
    expect(() => parseServeConfig(['--max-named-versions', '0'], open)).toThrow(/invalid --max-named-versions/)
  })
})
