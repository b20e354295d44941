import { describe, it, expect } from 'vitest'
import { parseServeConfig, token } from './cli.js'
import { createTokenVerifier, roleFromToken } from '../auth/jwt.js'

const SECRET = 'a-test-secret-that-is-long-enough-0123456789'
const open = { CONCORD_AUTH: 'none' }

describe('concord serve configuration', () => {
  it('uses the documented defaults', () => {
    const c = parseServeConfig([], open)
    expect(c).toMatchObject({ port: 1234, host: '0.0.0.0', store: 'sqlite', logLevel: 'info', sqliteSynchronous: 'FULL', commitWindowMs: 2, busyCommitWindowMs: undefined, auth: { mode: 'none' } })
    expect(c.data.endsWith('/data')).toBe(true)
  })

  it('reads environment variables, and flags win over them', () => {
    const env = { ...open, CONCORD_PORT: '5000', CONCORD_STORE: 'memory', CONCORD_LOG_LEVEL: 'debug', CONCORD_SQLITE_SYNCHRONOUS: 'normal', CONCORD_COMPACT_EVERY_UPDATES: '50' }
    expect(parseServeConfig([], env)).toMatchObject({ port: 5000, store: 'memory', logLevel: 'debug', sqliteSynchronous: 'NORMAL', compactEveryUpdates: 50 })
    expect(parseServeConfig(['--port', '6000', '--store', 'sqlite', '--data', '/tmp/x'], env)).toMatchObject({ port: 6000, store: 'sqlite', data: '/tmp/x' })
  })

  it('takes the group-commit windows under their names, the old --sqlite-* names, or the environment', () => {
    expect(parseServeConfig(['--commit-window-ms', '0', '--busy-commit-window-ms', '3'], open)).toMatchObject({ commitWindowMs: 0, busyCommitWindowMs: 3 })
    expect(parseServeConfig(['--sqlite-commit-window-ms', '1', '--sqlite-busy-commit-window-ms', '4'], open)).toMatchObject({ commitWindowMs: 1, busyCommitWindowMs: 4 })
    expect(parseServeConfig([], { ...open, CONCORD_BUSY_COMMIT_WINDOW_MS: '7' })).toMatchObject({ busyCommitWindowMs: 7 })
    expect(() => parseServeConfig(['--busy-commit-window-ms', '2000'], open)).toThrow(/invalid --busy-commit-window-ms/)
    expect(parseServeConfig(['--redis-stream-max-len', '500', '--store', 'postgres://db/c', '--redis', 'redis://r:6379'], open)).toMatchObject({ redisStreamMaxLen: 500 })
  })

  it('takes the shutdown bound from --shutdown-timeout-ms or the environment (the server defaults to 10 s)', () => {
    expect(parseServeConfig([], open)).toMatchObject({ shutdownTimeoutMs: undefined })
    expect(parseServeConfig(['--shutdown-timeout-ms', '2500'], open)).toMatchObject({ shutdownTimeoutMs: 2500 })
    expect(parseServeConfig([], { ...open, CONCORD_SHUTDOWN_TIMEOUT_MS: '30000' })).toMatchObject({ shutdownTimeoutMs: 30000 })
    expect(() => parseServeConfig(['--shutdown-timeout-ms', '0'], open)).toThrow(/--shutdown-timeout-ms/)
  })

  it('takes the region and its peers from --region and --peer-region (or the environment), and refuses what cannot work', () => {
    const cluster = ['--store', 'postgres://db-eu/c', '--redis', 'redis://r-eu:6379']
    expect(parseServeConfig(cluster, open)).toMatchObject({ regions: undefined })
    const config = parseServeConfig([...cluster, '--region', 'eu', '--peer-region', 'us=postgres://db-us/c,redis://r-us:6379', '--peer-region', 'ap=redis://r-ap,postgres://db-ap/c'], open)
    expect(config.regions).toEqual({ name: 'eu', peers: [
      { name: 'us', postgres: 'postgres://db-us/c', redis: 'redis://r-us:6379' },
      { name: 'ap', postgres: 'postgres://db-ap/c', redis: 'redis://r-ap' },
    ] })
    expect(parseServeConfig(cluster, { ...open, CONCORD_REGION: 'eu', CONCORD_PEER_REGIONS: 'us=postgres://db-us/c,redis://r-us; ap=postgres://db-ap/c,redis://r-ap' }).regions?.peers.map(p => p.name)).toEqual(['us', 'ap'])
    // a region is nodes on one PostgreSQL and one Redis
    expect(() => parseServeConfig(['--region', 'eu'], open)).toThrow(/--region needs --store postgres/)
    expect(() => parseServeConfig([...cluster, '--peer-region', 'us=postgres://a/b,redis://c'], open)).toThrow(/--peer-region needs --region/)
    expect(() => parseServeConfig([...cluster, '--region', 'eu', '--peer-region', 'us=postgres://a/b'], open)).toThrow(/give both/)
    expect(() => parseServeConfig([...cluster, '--region', 'eu', '--peer-region', 'us=http://a,redis://c'], open)).toThrow(/neither a postgres/)
    expect(() => parseServeConfig([...cluster, '--region', 'eu', '--peer-region', 'eu=postgres://a/b,redis://c'], open)).toThrow(/names this region itself/)
    expect(() => parseServeConfig([...cluster, '--region', 'eu', '--peer-region', 'us=postgres://a/b,redis://c', '--peer-region', 'us=postgres://d/e,redis://f'], open)).toThrow(/given twice/)
    expect(() => parseServeConfig([...cluster, '--region', 'e u'], open)).toThrow(/invalid region name/)
  })

  it('takes the CORS origins from --cors-origin (repeated or comma-separated) or CONCORD_CORS_ORIGINS, and refuses what is not an origin', () => {
    expect(parseServeConfig([], open)).toMatchObject({ corsOrigins: undefined })
    expect(parseServeConfig(['--cors-origin', 'http://localhost:5173', '--cors-origin', 'https://a.example,https://b.example'], open).corsOrigins)
      .toEqual(['http://localhost:5173', 'https://a.example', 'https://b.example'])
    expect(parseServeConfig([], { ...open, CONCORD_CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).corsOrigins).toEqual(['https://a.example', 'http://localhost:5173'])
    expect(parseServeConfig([], { ...open, CONCORD_CORS_ORIGINS: '*' }).corsOrigins).toBe('*')
    // an empty variable (a template's placeholder) is off; the flag wins over the variable
    expect(parseServeConfig([], { ...open, CONCORD_CORS_ORIGINS: ' ' }).corsOrigins).toBeUndefined()
    expect(parseServeConfig(['--cors-origin', 'https://flag.example'], { ...open, CONCORD_CORS_ORIGINS: 'https://env.example' }).corsOrigins).toEqual(['https://flag.example'])
    expect(() => parseServeConfig(['--cors-origin', 'example.com'], open)).toThrow(/invalid --cors-origin: "example.com" is not an origin/)
    expect(() => parseServeConfig(['--cors-origin', 'http://localhost:5173/'], open)).toThrow(/use http:\/\/localhost:5173/)
    expect(() => parseServeConfig(['--cors-origin', '*,https://a.example'], open)).toThrow(/give it alone/)
    expect(() => parseServeConfig(['--cors-origin', ''], open)).toThrow(/--cors-origin needs an origin/)
    expect(() => parseServeConfig([], { ...open, CONCORD_CORS_ORIGINS: 'localhost:5173' })).toThrow(/invalid --cors-origin/)
  })

  it('takes a postgres:// URL as the store', () => {
    const url = 'postgres://concord:secret@db.internal:5432/concord'
    expect(parseServeConfig(['--store', url], open)).toMatchObject({ store: 'postgres', storeUrl: url })
    expect(parseServeConfig([], { ...open, CONCORD_STORE: 'postgresql://db/concord' })).toMatchObject({ store: 'postgres', storeUrl: 'postgresql://db/concord' })
  })

  it('joins a cluster with --redis, which needs a shared postgres store', () => {
    const pgUrl = 'postgres://db/concord'
    expect(parseServeConfig(['--store', pgUrl, '--redis', 'redis://cache:6379'], open)).toMatchObject({ store: 'postgres', redis: 'redis://cache:6379' })
    expect(() => parseServeConfig(['--redis', 'redis://cache:6379'], open)).toThrow(/--redis needs --store postgres/)
    expect(() => parseServeConfig(['--store', pgUrl, '--redis', 'cache:6379'], open)).toThrow(/invalid --redis/)
  })

  it('refuses bad values with a clear message', () => {
    expect(() => parseServeConfig(['--port', 'abc'], open)).toThrow(/invalid port "abc"/)
    expect(() => parseServeConfig(['--store', 'redis'], open)).toThrow(/invalid store "redis"/)
    expect(() => parseServeConfig(['--sqlite-synchronous', 'off'], open)).toThrow(/use full or normal/)
    expect(() => parseServeConfig(['--sqlite-worker-nice', '20'], open)).toThrow(/0 to 19/)
    expect(() => parseServeConfig([], { ...open, CONCORD_SQLITE_WORKER_NICE: '-1' })).toThrow(/0 to 19/)
    expect(parseServeConfig(['--sqlite-worker-nice', '0'], open).sqliteWorkerNice).toBe(0)
    expect(parseServeConfig([], { ...open, CONCORD_SQLITE_WORKER_NICE: '5' }).sqliteWorkerNice).toBe(5)
    expect(parseServeConfig([], open).sqliteWorkerNice).toBeUndefined()
    expect(() => parseServeConfig(['--compact-every-updates', '0'], open)).toThrow(/positive integer/)
    expect(() => parseServeConfig(['--no-such-flag'], open)).toThrow()
  })

  it('refuses to start until an authentication mode is chosen, and takes exactly one', () => {
    expect(() => parseServeConfig([], {})).toThrow(/choose how sessions are authenticated/)
    expect(() => parseServeConfig(['--auth-secret', 'short'], {})).toThrow(/at least 32 characters/)
    expect(() => parseServeConfig(['--auth', 'maybe'], {})).toThrow(/invalid --auth "maybe"/)
    expect(() => parseServeConfig(['--auth', 'none', '--auth-secret', SECRET], {})).toThrow(/only one/)
    expect(parseServeConfig(['--auth-secret', SECRET], {}).auth).toEqual({ mode: 'secret', secret: SECRET })
    expect(parseServeConfig([], { CONCORD_AUTH_JWKS: '/etc/keys.json' }).auth).toEqual({ mode: 'jwks', jwks: '/etc/keys.json' })
    expect(parseServeConfig(['--auth', 'dev'], {}).auth).toEqual({ mode: 'dev' })
  })

  it('refuses tokens without exp unless --auth-allow-no-exp (or CONCORD_AUTH_ALLOW_NO_EXP=1) says otherwise', () => {
    expect(parseServeConfig(['--auth-secret', SECRET], {}).authAllowNoExp).toBe(false)
    expect(parseServeConfig(['--auth-secret', SECRET, '--auth-allow-no-exp'], {}).authAllowNoExp).toBe(true)
    expect(parseServeConfig([], { CONCORD_AUTH_SECRET: SECRET, CONCORD_AUTH_ALLOW_NO_EXP: '1' }).authAllowNoExp).toBe(true)
    expect(parseServeConfig([], { CONCORD_AUTH_SECRET: SECRET, CONCORD_AUTH_ALLOW_NO_EXP: '0' }).authAllowNoExp).toBe(false)
  })
})

describe('server options', () => {
  it('lets the largest message through the rate limit whatever maxMessageBytes is', async () => {
    const { resolveOptions } = await import('../server-options.js')
    const { createMemoryStorage } = await import('../storage/memory-storage.js')
    const { silentLogger } = await import('../ops/logger.js')
    const { AccessControl } = await import('../auth/access-control.js')
    const o = resolveOptions({ auth: 'none', maxMessageBytes: 300 * 1024 * 1024 }, { storage: createMemoryStorage, logger: silentLogger, access: () => AccessControl.inMemory() })
    expect(o.rateLimitBytesBurst).toBeGreaterThanOrEqual(300 * 1024 * 1024)
    expect(() => resolveOptions({}, { storage: createMemoryStorage, logger: silentLogger, access: () => AccessControl.inMemory() })).toThrow(/choose how sessions are authenticated/)
  })
})

describe('concord token', () => {
  it('mints a token that the server verifies, with the roles asked for', async () => {
    const before = Date.now()
    const minted = JSON.parse(await token(['--tenant', 'acme', '--user', 'ada', '--doc', 'acme/*=write', '--doc', 'acme/handbook=read', '--expires', '2h', '--json'], { CONCORD_AUTH_SECRET: SECRET })) as { token: string; expiresAt: number }
    const after = Date.now()
    const verified = await (await createTokenVerifier({ secret: SECRET })).verify(minted.token)
    expect(verified.userId).toBe('ada')
    expect(verified.tenant).toBe('acme')
    expect(roleFromToken(verified, 'acme/plan')).toBe('write')
    expect(roleFromToken(verified, 'acme/handbook')).toBe('read')
    expect(() => roleFromToken(verified, 'globex/plan')).toThrow(/tenant/)
    // two hours from when it was minted (a JWT's exp is in whole seconds), as the token itself says
    expect(minted.expiresAt).toBe(verified.expiresAt)
    expect(minted.expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 2 * 3600_000)
    expect(minted.expiresAt).toBeLessThanOrEqual(after + 2 * 3600_000)
  })

  it('mints share links for one document, and refuses bad arguments', async () => {
    const link = await token(['--tenant', 'acme', '--share', 'acme/plan', '--role', 'read', '--secret', SECRET], {})
    const verified = await (await createTokenVerifier({ secret: SECRET })).verify(link)
    expect(verified.shareId).not.toBeNull()
    expect(roleFromToken(verified, 'acme/plan')).toBe('read')
    expect(() => roleFromToken(verified, 'acme/other')).toThrow(/another document/)
    await expect(token(['--user', 'x', '--doc', 'a/*=write', '--secret', SECRET], {})).rejects.toThrow(/--tenant/)
    await expect(token(['--tenant', 'acme', '--doc', 'globex/*=write', '--secret', SECRET], {})).rejects.toThrow(/must start with "acme\/"/)
    await expect(token(['--tenant', 'acme', '--doc', 'acme/*=owner', '--secret', SECRET], {})).rejects.toThrow(/invalid --doc/)
    await expect(token(['--tenant', 'acme', '--doc', 'acme/*=read'], {})).rejects.toThrow(/--secret/)
  })
})
