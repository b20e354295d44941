import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'
import { mintToken } from '@concord/server'
import { connectClient, startServer, type RunningServer } from './helpers.js'

// docs/openapi.json is what users and their tools read: every route it lists must be served, with
// one of the statuses it documents, and docs/api.md must name every route.
interface Operation { responses: Record<string, unknown>; security?: unknown[]; requestBody?: { content: Record<string, unknown> } }
const spec = JSON.parse(readFileSync(new URL('../docs/openapi.json', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, Operation>> }
const apiMd = readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8')
const SECRET = 'an-api-docs-test-secret-0123456789abcdef'
const ADMIN = 'api-docs-admin-token-0123456789'

let srv: RunningServer
let http = ''
beforeAll(async () => {
  srv = await startServer({ auth: { secret: SECRET }, adminToken: ADMIN, devTokens: true })
  http = `http://127.0.0.1:${srv.port}`
  // a document with content, so the read routes have something to read
  const c = connectClient(srv.url, { getToken: async () => (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'u', docs: { 'acme/*': 'write' } })).token })
  const h = c.open('acme/doc')
  await h.whenSynced()
  h.doc.getText('default').insert(0, 'hello')
  await h.whenSaved()
  c.close()
})
afterAll(async () => { await srv?.close() })

function bodyFor(path: string, op: Operation): { body?: BodyInit; type?: string } {
  const content = op.requestBody?.content ?? {}
  if ('application/octet-stream' in content) {
    const d = new Y.Doc()
    d.getText('default').insert(0, 'x')
    return { body: new Blob([Uint8Array.from(Y.encodeStateAsUpdate(d))]), type: 'application/octet-stream' }
  }
  if ('application/json' in content) {
    const bodies: Record<string, unknown> = {
      '/admin/kick': { user: 'nobody', tenant: 'acme' },
      '/admin/revoke': { user: 'nobody', tenant: 'acme' },
      '/admin/reinstate': { user: 'nobody', tenant: 'acme' },
      '/admin/roles': { user: 'nobody', tenant: 'acme', document: 'acme/*', role: null },
      '/admin/share-links': { tenant: 'acme', document: 'acme/doc' },
      '/dev/token': { user: 'dev' },
    }
    return { body: JSON.stringify(bodies[path] ?? {}), type: 'application/json' }
  }
  return {}
}

describe('docs/openapi.json', () => {
  const operations = Object.entries(spec.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })))
  // deletion last: the read routes need the document
  operations.sort((a, b) => Number(a.method === 'delete') - Number(b.method === 'delete'))

  it('lists the routes docs/api.md describes', () => {
    expect(operations.length).toBeGreaterThanOrEqual(20)
    for (const { path } of operations) expect(apiMd, `docs/api.md mentions ${path}`).toContain(path.replace('{name}', '{name}').replace('{id}', '{id}'))
  })

  it('every documented route is served and answers with one of its documented statuses', async () => {
    for (const { path, method, op } of operations) {
      const url = http + path.replace('{name}', encodeURIComponent('acme/doc')).replace('{id}', 'no-such-session')
      const { body, type } = bodyFor(path, op)
      const secured = op.security === undefined || op.security.length > 0
      const res = await fetch(url, {
        method: method.toUpperCase(),
        headers: { ...(secured ? { authorization: `Bearer ${ADMIN}` } : {}), ...(type !== undefined ? { 'content-type': type } : {}) },
        ...(body !== undefined ? { body } : {}),
      })
      const text = await res.text()
      const documented = Object.keys(op.responses)
      expect(documented, `${method.toUpperCase()} ${path} answered ${res.status}: ${text.slice(0, 200)}`).toContain(String(res.status))
      // a route that does not exist answers 404 without a specific message, or "no such admin route"
      if (res.status === 404) expect(text, `${method.toUpperCase()} ${path}`).not.toMatch(/no such admin route|^\{"error":"CONCORD_ERR_HTTP_NOT_FOUND"\}$/)
      // the secured routes refuse a caller without a token
      if (secured && path !== '/metrics') {
        const anonymous = await fetch(url, { method: method.toUpperCase(), ...(type !== undefined ? { headers: { 'content-type': type } } : {}), ...(body !== undefined ? { body: bodyFor(path, op).body! } : {}) })
        expect(anonymous.status, `${method.toUpperCase()} ${path} without a token`).toBe(401)
        await anonymous.arrayBuffer()
      }
    }
  })
})
