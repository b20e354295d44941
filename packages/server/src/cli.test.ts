import { describe, it, expect } from 'vitest'
import { parseServeConfig } from './cli.js'

describe('concord serve configuration', () => {
  it('uses the documented defaults', () => {
    const c = parseServeConfig([], {})
    expect(c).toMatchObject({ port: 1234, host: '0.0.0.0', store: 'sqlite', logLevel: 'info', sqliteSynchronous: 'FULL', sqliteCommitWindowMs: 2 })
    expect(c.data.endsWith('/data')).toBe(true)
  })

  it('reads environment variables, and flags win over them', () => {
    const env = { CONCORD_PORT: '5000', CONCORD_STORE: 'memory', CONCORD_LOG_LEVEL: 'debug', CONCORD_SQLITE_SYNCHRONOUS: 'normal', CONCORD_COMPACT_EVERY_UPDATES: '50' }
    expect(parseServeConfig([], env)).toMatchObject({ port: 5000, store: 'memory', logLevel: 'debug', sqliteSynchronous: 'NORMAL', compactEveryUpdates: 50 })
    expect(parseServeConfig(['--port', '6000', '--store', 'sqlite', '--data', '/tmp/x'], env)).toMatchObject({ port: 6000, store: 'sqlite', data: '/tmp/x' })
  })

  it('refuses bad values with a clear message', () => {
    expect(() => parseServeConfig(['--port', 'abc'], {})).toThrow(/invalid port "abc"/)
    expect(() => parseServeConfig(['--store', 'redis'], {})).toThrow(/invalid store "redis"/)
    expect(() => parseServeConfig(['--sqlite-synchronous', 'off'], {})).toThrow(/use full or normal/)
    expect(() => parseServeConfig(['--compact-every-updates', '0'], {})).toThrow(/positive integer/)
    expect(() => parseServeConfig(['--no-such-flag'], {})).toThrow()
  })
})
