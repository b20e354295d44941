import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext } from 'playwright-core'
import { ConfigError, createServer, mintToken, type ServerOptions } from '@concord/server'
import { startServer, type RunningServer } from './helpers.js'
import { spawnServer } from './server-process.js'
import { cleanupAfterEach } from './cleanup.js'
import { CHROMIUM, CHROMIUM_ARGS, requireChromium, within } from './chromium.js'

// A web app on another origin (a React app on http://localhost:5173, Concord on :1234) calls the
// history API with a bearer token: with `cors` (--cors-origin, CONCORD_CORS_ORIGINS) the browser
// lets it, for the listed origins only and for /v1/ only. Real servers, real HTTP; the last test
// runs the page in Chromium.

const SECRET = 'a-cors-test-secret-0123456789abcdefghij'
const ADMIN = 'cors-admin-token-0123456789'
const APP = 'http://localhost:5173'
const DOC = `/v1/documents/${encodeURIComponent('acme/plan')}`
const BIN = fileURLToPath(new URL('../packages/server/bin/concord.js', import.meta.url))

const servers: RunningServer[] = []
const { procs } = cleanupAfterEach()
afterEach(async () => {
  await Promise.all(servers.splice(0).map(s => s.close()))
})

async function server(options: ServerOptions = {}): Promise<string> {
  const s = await startServer({ auth: { secret: SECRET }, adminToken: ADMIN, ...options })
  servers.push(s)
  return `http://127.0.0.1:${s.port}`
}

async function userToken(role: 'read' | 'write' = 'write'): Promise<string> {
  return (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'ada', docs: { 'acme/*': role } })).token
}

/** The CORS headers of an answer (every access-control-* header, and Vary). */
function corsHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {}
  res.headers.forEach((value, name) => {
    if (name.startsWith('access-control-') || name === 'vary') out[name] = value
  })
  return out
}

/** A preflight as a browser sends it before a request with a bearer token. */
function preflight(url: string, origin: string, method = 'GET'): Promise<Response> {
  return fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization,content-type' } })
}

describe('CORS on the HTTP API', () => {
  it('is off by default: no CORS headers on answers or preflights, whatever the origin', async () => {
    const base = await server()
    const token = await userToken()
    const get = await fetch(`${base}${DOC}/versions`, { headers: { origin: APP, authorization: `Bearer ${token}` } })
    expect(get.status).toBe(200)
    expect(corsHeaders(get)).toEqual({})
    const pre = await preflight(`${base}${DOC}/versions`, APP)
    // no preflight answer: the browser refuses to send the request
    expect(pre.status).toBeGreaterThanOrEqual(400)
    expect(corsHeaders(pre)).toEqual({})
  })

  it('lets a listed origin read GET and POST answers and passes its preflights with the route\'s methods', async () => {
    const base = await server({ cors: { origins: [APP, 'https://app.example.com'] } })
    const token = await userToken()
    const auth = { origin: APP, authorization: `Bearer ${token}` }

    const created = await fetch(`${base}${DOC}/versions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'first' }) })
    expect(created.status).toBe(201)
    expect(corsHeaders(created)).toEqual({
      'access-control-allow-origin': APP, 'access-control-expose-headers': 'retry-after, allow', vary: 'Origin',
    })
    const { version } = await created.json() as { version: { id: string } }

    const list = await fetch(`${base}${DOC}/versions`, { headers: auth })
    expect(list.status).toBe(200)
    expect(corsHeaders(list)).toMatchObject({ 'access-control-allow-origin': APP, vary: 'Origin' })
    expect((await list.json() as { versions: { id: string }[] }).versions.map(v => v.id)).toContain(version.id)

    const merged = await fetch(`${base}${DOC}/content`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ format: 'text', field: 'notes', text: 'from the app' }) })
    expect(merged.status, await merged.clone().text()).toBe(200)
    expect(corsHeaders(merged)).toMatchObject({ 'access-control-allow-origin': APP })

    // the other listed origin gets its own origin back, never the first one
    const other = await fetch(`${base}${DOC}/versions`, { headers: { ...auth, origin: 'https://app.example.com' } })
    expect(corsHeaders(other)).toMatchObject({ 'access-control-allow-origin': 'https://app.example.com' })

    // an error is readable too (the page can show why): no token, 401
    const anonymous = await fetch(`${base}${DOC}/versions`, { headers: { origin: APP } })
    expect(anonymous.status).toBe(401)
    expect(corsHeaders(anonymous)).toMatchObject({ 'access-control-allow-origin': APP })
    expect(await anonymous.json()).toMatchObject({ error: 'CONCORD_ERR_AUTH_DENIED' })

    // preflights: no token needed, 204, the methods each route takes, the headers the API reads
    const routes: [string, string, string][] = [
      ['/versions', 'POST', 'GET, POST'],
      [`/versions/${version.id}`, 'DELETE', 'GET, DELETE'],
      [`/versions/${version.id}/restore`, 'POST', 'POST'],
      ['/at', 'GET', 'GET'],
      ['/diff', 'GET', 'GET'],
      ['/attribution', 'GET', 'GET'],
      ['/content', 'POST', 'POST'],
    ]
    for (const [path, method, methods] of routes) {
      const pre = await preflight(`${base}${DOC}${path}`, APP, method)
      expect(pre.status, path).toBe(204)
      expect(await pre.text()).toBe('')
      expect(corsHeaders(pre), path).toEqual({
        'access-control-allow-origin': APP,
        'access-control-allow-methods': methods,
        'access-control-allow-headers': 'authorization, content-type',
        'access-control-max-age': '7200',
        vary: 'Origin',
      })
    }
    // never credentials: the API takes bearer tokens, not cookies
    expect(created.headers.get('access-control-allow-credentials')).toBeNull()
  })

  it('exposes Retry-After on a 429, so the page can wait as long as it says', async () => {
    const base = await server({ cors: { origins: [APP] }, httpRequestsPerSecond: 1, httpRequestsBurst: 10, httpExpensiveRequestCost: 10 })
    const headers = { origin: APP, authorization: `Bearer ${await userToken()}`, 'content-type': 'application/json' }
    const first = await fetch(`${base}${DOC}/versions`, { method: 'POST', headers, body: JSON.stringify({ name: 'a' }) })
    expect(first.status).toBe(201)
    const limited = await fetch(`${base}${DOC}/versions`, { method: 'POST', headers, body: JSON.stringify({ name: 'b' }) })
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(corsHeaders(limited)).toMatchObject({ 'access-control-allow-origin': APP, 'access-control-expose-headers': 'retry-after, allow' })
  })

  it('gives another origin no CORS headers, and refuses its preflight with 403 and a coded error, however much it looks like a listed one', async () => {
    const base = await server({ cors: { origins: [APP] } })
    const token = await userToken()
    const attackers = [
      'http://localhost:5173.evil.com', 'http://evil.com/?http://localhost:5173', 'http://evil.com', 'http://localhost:51730',
      'https://localhost:5173', 'http://sub.localhost:5173', 'http://localhost', 'null', 'HTTP://LOCALHOST:5173', `${APP}/`,
    ]
    for (const origin of attackers) {
      const get = await fetch(`${base}${DOC}/versions`, { headers: { origin, authorization: `Bearer ${token}` } })
      // the server answers (CORS is the browser's check), but without the headers that let a page read it
      expect(get.status, origin).toBe(200)
      expect(corsHeaders(get), origin).toEqual({ vary: 'Origin' })
      await get.arrayBuffer()
      const pre = await preflight(`${base}${DOC}/versions`, origin)
      expect(pre.status, origin).toBe(403)
      expect(corsHeaders(pre), origin).toEqual({ vary: 'Origin' })
      const body = await pre.json() as { error: string; message: string }
      expect(body.error).toBe('CONCORD_ERR_HTTP_ORIGIN_NOT_ALLOWED')
      expect(body.message).toContain('may not call')
    }
    // a request without Origin (curl, a server) is answered as always
    const plain = await fetch(`${base}${DOC}/versions`, { headers: { authorization: `Bearer ${token}` } })
    expect(plain.status).toBe(200)
    expect(corsHeaders(plain)).toEqual({ vary: 'Origin' })
  })

  it('covers /v1/ only: the admin API, /metrics, the dashboard and health answer a listed origin without CORS headers', async () => {
    const base = await server({ cors: { origins: [APP] } })
    for (const path of ['/admin/documents', '/admin/stats', '/metrics', '/dashboard', '/healthz', '/readyz', '/server-info']) {
      const res = await fetch(`${base}${path}`, { headers: { origin: APP, authorization: `Bearer ${ADMIN}` } })
      expect(res.status, path).toBe(200)
      expect(corsHeaders(res), path).toEqual({})
      await res.arrayBuffer()
      const pre = await preflight(`${base}${path}`, APP)
      expect(pre.status, path).not.toBe(204)
      expect(corsHeaders(pre), path).toEqual({})
      await pre.arrayBuffer()
    }
    // an unknown /v1/ route is not passed
    const unknown = await preflight(`${base}/v1/nothing-here`, APP)
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toEqual({ error: 'CONCORD_ERR_HTTP_NOT_FOUND' })
  })

  it('with origins \'*\' answers every origin with *, and still never allows credentials', async () => {
    const base = await server({ cors: { origins: '*', maxAgeSeconds: 600 } })
    const token = await userToken()
    for (const origin of [APP, 'https://anything.example']) {
      const get = await fetch(`${base}${DOC}/versions`, { headers: { origin, authorization: `Bearer ${token}` } })
      expect(get.status).toBe(200)
      expect(corsHeaders(get)).toEqual({ 'access-control-allow-origin': '*', 'access-control-expose-headers': 'retry-after, allow' })
      await get.arrayBuffer()
      const pre = await preflight(`${base}${DOC}/versions`, origin, 'POST')
      expect(pre.status).toBe(204)
      expect(corsHeaders(pre)).toEqual({
        'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600',
      })
    }
  })

  it('refuses at start-up an origin that is not one, naming it (createServer throws; concord serve exits 2)', () => {
    expect(() => createServer({ auth: 'none', cors: { origins: ['example.com'] } })).toThrow(ConfigError)
    expect(() => createServer({ auth: 'none', cors: { origins: ['example.com'] } })).toThrow(/"example.com" is not an origin/)
    expect(() => createServer({ auth: 'none', cors: { origins: ['http://localhost:5173/'] } })).toThrow(/use http:\/\/localhost:5173/)
    const bad = spawnSync(process.execPath, [BIN, 'serve', '--auth', 'none', '--store', 'memory', '--port', '0', '--cors-origin', 'example.com'], { encoding: 'utf8', timeout: 60_000 })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('invalid --cors-origin: "example.com" is not an origin')
    const badEnv = spawnSync(process.execPath, [BIN, 'serve', '--auth', 'none', '--store', 'memory', '--port', '0'], {
      encoding: 'utf8', timeout: 60_000, env: { ...process.env, CONCORD_CORS_ORIGINS: 'https://ok.example,localhost:5173' },
    })
    expect(badEnv.status).toBe(2)
    expect(badEnv.stderr).toContain('"localhost:5173" is not an origin')
  })

  it('concord serve takes the origins from --cors-origin (repeated or comma-separated) and from CONCORD_CORS_ORIGINS', async () => {
    const check = async (port: number, origin: string, expected: string | null): Promise<void> => {
      const res = await fetch(`http://127.0.0.1:${port}${DOC}/versions`, { headers: { origin } })
      expect(res.status).toBe(200)
      expect(res.headers.get('access-control-allow-origin'), origin).toBe(expected)
      await res.arrayBuffer()
    }
    const flag = await spawnServer(['--store', 'memory', '--port', '0', '--cors-origin', APP, '--cors-origin', 'https://a.example,https://b.example'])
    procs.push(flag)
    await check(flag.port, APP, APP)
    await check(flag.port, 'https://b.example', 'https://b.example')
    await check(flag.port, 'https://c.example', null)
    expect(flag.logs.join('\n')).toContain('CORS: pages on these origins may call the HTTP API under /v1/')

    const env = await spawnServer(['--store', 'memory', '--port', '0'], { CONCORD_CORS_ORIGINS: `https://a.example, ${APP}` })
    procs.push(env)
    await check(env.port, APP, APP)
    await check(env.port, 'https://a.example', 'https://a.example')
    await check(env.port, 'https://b.example', null)

    const off = await spawnServer(['--store', 'memory', '--port', '0'])
    procs.push(off)
    await check(off.port, APP, null)
  })
})

describe('CORS in Chromium', () => {
  // a page on http://127.0.0.1:<A> (a static server) calls the history API of Concord servers on
  // other ports with a bearer token, as a React app on a dev server would
  let site: HttpServer | null = null
  let pageOrigin = ''
  let context: BrowserContext | null = null
  let profileDir = ''

  beforeAll(async () => {
    requireChromium('the CORS browser test')
    site = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>app</title><p>app</p>')
    })
    await new Promise<void>(resolve => site!.listen(0, '127.0.0.1', () => resolve()))
    pageOrigin = `http://127.0.0.1:${(site.address() as { port: number }).port}`
    profileDir = mkdtempSync(join(tmpdir(), 'concord-cors-profile-'))
    context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
  })

  afterAll(async () => {
    if (context !== null) await within(20_000, 'closing Chromium', context.close())
    if (site !== null) await new Promise(resolve => site!.close(resolve))
    if (profileDir !== '') rmSync(profileDir, { recursive: true, force: true })
  })

  /** In the page: create a version and list the versions, or the error fetch threw. */
  async function callFromPage(api: string, token: string): Promise<{ created?: number; names?: string[]; error?: string }> {
    const page = await context!.newPage()
    try {
      await page.goto(`${pageOrigin}/`)
      return await within(30_000, 'the page\'s fetches', page.evaluate(async ({ api, token }) => {
        try {
          const headers = { authorization: `Bearer ${token}` }
          const created = await fetch(`${api}/versions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'from the page' }) })
          const list = await fetch(`${api}/versions`, { headers })
          const { versions } = await list.json() as { versions: { name: string | null }[] }
          return { created: created.status, names: versions.map(v => v.name ?? '') }
        } catch (err) {
          return { error: `${(err as Error).name}: ${(err as Error).message}` }
        }
      }, { api, token }))
    } finally {
      await page.close()
    }
  }

  it('a page on another origin calls the API with a bearer token when its origin is allowed, and fetch fails when it is not', async () => {
    const token = await userToken()
    const allowed = await server({ cors: { origins: [pageOrigin] } })
    expect(await callFromPage(`${allowed}${DOC}`, token)).toEqual({ created: 201, names: ['from the page'] })

    const off = await server()
    expect(await callFromPage(`${off}${DOC}`, token)).toEqual({ error: 'TypeError: Failed to fetch' })

    const elsewhere = await server({ cors: { origins: [APP] } })
    expect(await callFromPage(`${elsewhere}${DOC}`, token)).toEqual({ error: 'TypeError: Failed to fetch' })
    // the refused preflights stopped the POSTs: neither server made a version
    for (const base of [off, elsewhere]) {
      const res = await fetch(`${base}${DOC}/versions`, { headers: { authorization: `Bearer ${ADMIN}` } })
      expect((await res.json() as { versions: unknown[] }).versions).toEqual([])
    }
  })
})
