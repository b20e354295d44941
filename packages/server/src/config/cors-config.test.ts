import { describe, expect, it } from 'vitest'
import { originProblem, resolveCorsConfig } from './cors-config.js'
import { ConfigError, resolveConfig } from './server-config.js'

const fail = (message: string): Error => new ConfigError(message)

describe('CORS origins', () => {
  it('takes origins written as a browser sends them', () => {
    for (const o of ['http://localhost:5173', 'https://app.example.com', 'http://127.0.0.1:8080', 'http://[::1]:3000', 'https://xn--bcher-kva.example', 'capacitor://localhost', 'tauri://localhost']) {
      expect(originProblem(o), o).toBeNull()
    }
  })

  it('refuses what is not an origin, naming the form a browser sends when there is one', () => {
    expect(originProblem('example.com')).toMatch(/"example.com" is not an origin: give scheme:\/\/host\[:port\]/)
    expect(originProblem('localhost:5173')).toMatch(/is not an origin/)
    expect(originProblem('http://localhost:5173/')).toMatch(/use http:\/\/localhost:5173$/)
    expect(originProblem('https://app.example.com/path')).toMatch(/use https:\/\/app.example.com$/)
    expect(originProblem('http://evil.com/?http://localhost:5173')).toMatch(/use http:\/\/evil.com$/)
    expect(originProblem('HTTP://LocalHost:5173')).toMatch(/not written as a browser sends it: use http:\/\/localhost:5173$/)
    expect(originProblem('https://app.example.com:443')).toMatch(/use https:\/\/app.example.com$/)
    expect(originProblem('https://bücher.example')).toMatch(/use https:\/\/xn--bcher-kva.example$/)
    expect(originProblem('https://user@app.example.com')).toMatch(/is not an origin/)
    expect(originProblem('http://')).toMatch(/is not an origin/)
    expect(originProblem('null')).toMatch(/any page can send it/)
    expect(originProblem('')).toMatch(/is not an origin/)
  })

  it('resolves a list (duplicates once) or *, with the preflight max age', () => {
    expect(resolveCorsConfig({ origins: ['http://localhost:5173', 'http://localhost:5173'] }, fail)).toEqual({ origins: ['http://localhost:5173'], maxAgeSeconds: 7200 })
    expect(resolveCorsConfig({ origins: '*', maxAgeSeconds: 60 }, fail)).toEqual({ origins: '*', maxAgeSeconds: 60 })
    expect(Object.isFrozen(resolveCorsConfig({ origins: ['https://a.example'] }, fail).origins)).toBe(true)
  })

  it('refuses an empty list, * inside a list, a bad entry and a bad max age, through createServer\'s config (ConfigError)', () => {
    const config = (cors: unknown): unknown => resolveConfig({ authMode: 'none', cors: cors as never })
    expect(config(undefined)).toMatchObject({ cors: null })
    expect(config({ origins: ['https://a.example'] })).toMatchObject({ cors: { origins: ['https://a.example'], maxAgeSeconds: 7200 } })
    expect(() => config({ origins: [] })).toThrow(/cors.origins is empty/)
    expect(() => config({ origins: ['https://a.example', '*'] })).toThrow(/give it alone/)
    expect(() => config({ origins: ['example.com'] })).toThrow(ConfigError)
    expect(() => config({ origins: ['example.com'] })).toThrow(/option cors.origins: "example.com" is not an origin/)
    expect(() => config({ origins: 'https://a.example' })).toThrow(/list of origins or '\*'/)
    expect(() => config({ origins: [42] })).toThrow(/not a string/)
    expect(() => config({ origins: '*', maxAgeSeconds: -1 })).toThrow(/maxAgeSeconds/)
    expect(() => config({ origins: '*', maxAgeSeconds: 1.5 })).toThrow(/maxAgeSeconds/)
  })
})
