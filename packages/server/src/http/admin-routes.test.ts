import { describe, expect, it } from 'vitest'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConcordError } from '@concord/protocol'
import { handleAdmin } from './admin-routes.js'
import { handleHistory } from './history-routes.js'
import type { AdminDeps, HistoryDeps } from './http-deps.js'
import type { AdminOperations } from './admin-operations.js'
import type { DocumentVersions } from '../content/versions.js'
import { HttpRateLimiter } from './rate-limit.js'
import { AccessControl } from '../auth/access-control.js'
import { silentLogger } from '../ops/logger.js'

const ADMIN = 'admin-token-for-the-route-tests'

/** A request with a JSON body (or none), from 127.0.0.1. */
function request(method: string, url: string, opts: { token?: string; body?: unknown } = {}): IncomingMessage {
  const chunks = opts.body === undefined ? [] : [Buffer.from(JSON.stringify(opts.body))]
  return {
    method, url,
    headers: opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {},
    socket: { remoteAddress: '127.0.0.1' },
    async *[Symbol.asyncIterator]() { yield* chunks },
  } as unknown as IncomingMessage
}

/** What a route answered; `done` resolves once the answer ended (the admin routes answer asynchronously). */
class FakeResponse {
  status = 0
  headers: Record<string, string | number> = {}
  body = ''
  headersSent = false
  readonly done: Promise<void>
  #ended!: () => void
  constructor() {
    this.done = new Promise(resolve => { this.#ended = resolve })
  }
  setHeader(name: string, value: string | number): void {
    this.headers[name.toLowerCase()] = value
  }
  writeHead(status: number, headers: Record<string, string | number> = {}): this {
    this.status = status
    for (const [k, v] of Object.entries(headers)) this.headers[k.toLowerCase()] = v
    this.headersSent = true
    return this
  }
  end(chunk?: string | Buffer): void {
    this.body = chunk?.toString() ?? ''
    this.#ended()
  }
  destroy(): void {
    this.#ended()
  }
  json(): Record<string, unknown> {
    return JSON.parse(this.body) as Record<string, unknown>
  }
}

function adminDeps(operations: Partial<AdminOperations> = {}): AdminDeps {
  return {
    adminToken: ADMIN, tokens: null, access: AccessControl.inMemory(),
    logger: silentLogger(), backplane: null, signingSecret: null, devTokens: false, maxMessageBytes: 1024,
    operations: operations as AdminOperations,
    views: {
      stats: async () => ({ node: null, now: {} as never, intervalMs: 2000, history: [], busiest: [], nodes: [], totals: {} as never, regions: null, clusterError: null }),
      sessions: async () => ({ node: null, sessions: [], nodes: [], missingNodes: [], truncated: false, clusterError: null }),
    },
    limiter: new HttpRateLimiter({ requestsPerSecond: 100, requestsBurst: 100, expensiveRequestCost: 10, maxCallers: 10, trustProxyHops: 0 }),
  }
}

async function call(handle: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean, req: IncomingMessage): Promise<FakeResponse> {
  const res = new FakeResponse()
  expect(handle(req, res as unknown as ServerResponse, new URL(req.url!, 'http://localhost'))).toBe(true)
  await res.done
  return res
}

describe('admin routes (fake request and response)', () => {
  it('leaves other paths to other routes', () => {
    expect(handleAdmin(request('GET', '/healthz'), new FakeResponse() as unknown as ServerResponse, new URL('http://localhost/healthz'), adminDeps())).toBe(false)
  })

  it('refuses a caller without the admin token: 401 with WWW-Authenticate', async () => {
    const deps = adminDeps()
    const res = await call((q, r, u) => handleAdmin(q, r, u, deps), request('GET', '/admin/access', { token: 'wrong' }))
    expect(res.status).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Bearer')
    expect(res.json()).toMatchObject({ error: 'CONCORD_ERR_AUTH_DENIED' })
  })

  it('revokes a user and shows it in the access state', async () => {
    const deps = adminDeps()
    const revoke = await call((q, r, u) => handleAdmin(q, r, u, deps), request('POST', '/admin/revoke', { token: ADMIN, body: { user: 'mallory', tenant: 'acme' } }))
    expect(revoke.status).toBe(200)
    expect(revoke.json()).toEqual({ revoked: { user: 'mallory' } })
    const state = await call((q, r, u) => handleAdmin(q, r, u, deps), request('GET', '/admin/access', { token: ADMIN }))
    expect(state.status).toBe(200)
    expect(state.json().revokedUsers).toMatchObject([{ tenant: 'acme', userId: 'mallory' }])
  })

  it('answers another method with 405 and Allow', async () => {
    const deps = adminDeps()
    const res = await call((q, r, u) => handleAdmin(q, r, u, deps), request('POST', '/admin/access', { token: ADMIN }))
    expect(res.status).toBe(405)
    expect(res.headers.allow).toBe('GET')
    expect(res.json()).toEqual({ error: 'CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED', message: 'use GET' })
  })

  it('answers a body that is not JSON with 400, and an unknown route with 404', async () => {
    const deps = adminDeps()
    const bad = request('POST', '/admin/revoke', { token: ADMIN })
    ;(bad as unknown as { [Symbol.asyncIterator]: () => AsyncGenerator<Buffer> })[Symbol.asyncIterator] = async function* () { yield Buffer.from('{') }
    expect((await call((q, r, u) => handleAdmin(q, r, u, deps), bad)).json()).toEqual({ error: 'CONCORD_ERR_HTTP_BAD_REQUEST', message: 'the body is not JSON' })
    const none = await call((q, r, u) => handleAdmin(q, r, u, deps), request('GET', '/admin/nothing', { token: ADMIN }))
    expect(none.status).toBe(404)
  })

  it('answers a document that cannot be loaded with 503 (the table status), an unexpected failure with 500', async () => {
    const failing = adminDeps({ readState: async () => { throw new ConcordError('CONCORD_ERR_DOC_LOAD_FAILED', 'storage is down') } })
    const res = await call((q, r, u) => handleAdmin(q, r, u, failing), request('GET', '/admin/documents/acme%2Fplan/json', { token: ADMIN }))
    expect(res.status).toBe(503)
    expect(res.json()).toEqual({ error: 'CONCORD_ERR_DOC_LOAD_FAILED', message: 'storage is down' })
    const broken = adminDeps({ readState: async () => { throw new Error('a bug') } })
    const internal = await call((q, r, u) => handleAdmin(q, r, u, broken), request('GET', '/admin/documents/acme%2Fplan/json', { token: ADMIN }))
    expect(internal.status).toBe(500)
    expect(internal.json()).toEqual({ error: 'CONCORD_ERR_SERVER_INTERNAL', message: 'the request failed; see the server log' })
  })
})

describe('history routes (fake request and response)', () => {
  function historyDeps(versions: Partial<DocumentVersions>): HistoryDeps {
    const { adminToken, tokens, access, logger, limiter } = adminDeps()
    return {
      adminToken, tokens, access, logger, limiter, maxMessageBytes: 1 << 20,
      authorizer: { grant: async () => ({ role: 'read', userId: 'reader', tenant: 'acme' }) as never },
      versions: versions as DocumentVersions,
    }
  }

  it('answers a document that cannot be loaded with 503, as the admin routes do', async () => {
    const deps = historyDeps({ list: async () => { throw new ConcordError('CONCORD_ERR_DOC_LOAD_FAILED', 'storage is down') } })
    const res = await call((q, r, u) => handleHistory(q, r, u, deps), request('GET', '/v1/documents/acme%2Fplan/versions', { token: 'a user token' }))
    expect(res.status).toBe(503)
    expect(res.json()).toEqual({ error: 'CONCORD_ERR_DOC_LOAD_FAILED', message: 'storage is down' })
  })

  it('lets a reader list versions and refuses a reader creating one with 403', async () => {
    const deps = historyDeps({ list: async () => [] })
    const list = await call((q, r, u) => handleHistory(q, r, u, deps), request('GET', '/v1/documents/acme%2Fplan/versions', { token: 't' }))
    expect(list.status).toBe(200)
    expect(list.json()).toEqual({ versions: [] })
    const create = await call((q, r, u) => handleHistory(q, r, u, deps), request('POST', '/v1/documents/acme%2Fplan/versions', { token: 't', body: { name: 'v1' } }))
    expect(create.status).toBe(403)
    expect(create.json()).toMatchObject({ error: 'CONCORD_ERR_AUTH_FORBIDDEN' })
    const wrong = await call((q, r, u) => handleHistory(q, r, u, deps), request('PUT', '/v1/documents/acme%2Fplan/versions', { token: 't' }))
    expect(wrong.status).toBe(405)
    expect(wrong.headers.allow).toBe('GET, POST')
  })
})
