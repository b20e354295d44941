import { describe, expect, it } from 'vitest'
import { parseServeConfig } from '../cli/serve-config.js'
import { parsePeerRegion } from '../regions/region-config.js'
import { CLUSTER_LAYOUT, SINGLE_LAYOUT } from './doc-streams.js'
import { keySlot, parseRedisUrl, redactRedisUrl, redisUrlProblem } from './redis-url.js'

describe('Redis URLs: one server or a cluster', () => {
  it('redis:// and rediss:// are one server, passed on as they are', () => {
    expect(parseRedisUrl('redis://cache:6379')).toEqual({ kind: 'single', url: 'redis://cache:6379' })
    expect(parseRedisUrl('rediss://:secret@cache:6380/2')).toEqual({ kind: 'single', url: 'rediss://:secret@cache:6380/2' })
  })

  it('redis+cluster:// lists seed nodes, with credentials and TLS for every node', () => {
    expect(parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7001, r3.internal')).toEqual({
      kind: 'cluster', tls: false, seeds: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: 'r3.internal', port: 6379 }],
    })
    expect(parseRedisUrl('rediss+cluster://concord:p%40ss@[::1]:7000,h2:7001/')).toEqual({
      kind: 'cluster', tls: true, username: 'concord', password: 'p@ss', seeds: [{ host: '::1', port: 7000 }, { host: 'h2', port: 7001 }],
    })
    expect(parseRedisUrl('REDIS+CLUSTER://:pw@h:1').kind).toBe('cluster')
  })

  it('refuses what it cannot read, naming it', () => {
    expect(redisUrlProblem('cache:6379')).toMatch(/use redis:\/\/host:port, or redis\+cluster:\/\//)
    expect(redisUrlProblem('redis+cluster://')).toMatch(/at least one node/)
    expect(redisUrlProblem('redis+cluster://h1:99999')).toMatch(/not host:port/)
    expect(redisUrlProblem('redis+cluster://h1:7000/3')).toMatch(/database 0 only/)
    expect(redisUrlProblem('redis+cluster://h1:7000,h2:7001')).toBeNull()
  })

  it('hides passwords in logs', () => {
    expect(redactRedisUrl('redis://:secret@cache:6379')).toBe('redis://:***@cache:6379')
    expect(redactRedisUrl('rediss+cluster://user:secret@h1:7000,h2:7001')).toBe('rediss+cluster://user:***@h1:7000,h2:7001')
    expect(redactRedisUrl('redis+cluster://h1:7000,h2:7001')).toBe('redis+cluster://h1:7000,h2:7001')
  })

  it('--redis takes a cluster URL; a peer region\'s Redis may be one (a comma starts a new URL only before a scheme)', () => {
    const env = { CONCORD_AUTH: 'none' }
    const cluster = 'redis+cluster://r1:7000,r2:7000,r3:7000'
    expect(parseServeConfig(['--store', 'postgres://db/c', '--redis', cluster], env)).toMatchObject({ redis: cluster })
    expect(parseServeConfig(['--store', 'postgres://db/c'], { ...env, CONCORD_REDIS: cluster })).toMatchObject({ redis: cluster })
    expect(() => parseServeConfig(['--store', 'postgres://db/c', '--redis', 'redis+cluster://r1:x'], env)).toThrow(/invalid --redis: .*not host:port/)
    expect(parsePeerRegion(`us=postgres://db-us/c,${cluster}`)).toEqual({ name: 'us', postgres: 'postgres://db-us/c', redis: cluster })
    expect(parsePeerRegion(`us=${cluster},postgres://db-us/c`)).toEqual({ name: 'us', postgres: 'postgres://db-us/c', redis: cluster })
    expect(() => parsePeerRegion('us=postgres://db-us/c,redis+cluster://')).toThrow(/invalid --peer-region us: .*at least one node/)
  })
})

describe('cluster slots', () => {
  it('keySlot is Redis Cluster\'s (CRC16 XMODEM mod 16384, hash tags)', () => {
    // values from redis-cli CLUSTER KEYSLOT (e2e/redis-cluster.test.ts compares more against a live cluster)
    expect(keySlot('123456789')).toBe(12739)
    expect(keySlot('foo')).toBe(12182)
    expect(keySlot('bar')).toBe(5061)
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'))
    // an empty tag hashes the whole key
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'))
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'))
  })

  it('a document\'s stream and channel share a slot whatever its name holds', () => {
    for (const name of ['plan', 'acme/plan', 'a}b', '}', '{', '{x}', 'é日本', 'x'.repeat(512), 'a:b}:live']) {
      expect(keySlot(CLUSTER_LAYOUT.channel(name)), name).toBe(keySlot(CLUSTER_LAYOUT.stream(name)))
    }
    // documents spread: 200 names land on many slots
    expect(new Set(Array.from({ length: 200 }, (_, i) => keySlot(CLUSTER_LAYOUT.stream(`doc-${i}`)))).size).toBeGreaterThan(190)
    // one Redis keeps the names of 0.1
    expect(SINGLE_LAYOUT.stream('plan')).toBe('concord:doc:plan')
    expect(SINGLE_LAYOUT.channel('plan')).toBe('concord:live:plan')
  })
})
