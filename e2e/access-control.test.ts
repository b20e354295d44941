import { describe, it, expect, afterEach } from 'vitest'
import { createServer as createHttpServer, type Server } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { FRAME_KINDS } from '@concord/protocol'
import { mintToken, type ServerOptions } from '@concord/server'
import type { ConcordClient } from '@concord/client'
import { connectClient, RawNativeSocket, startServer, waitFor, type RunningServer } from './helpers.js'

const SECRET = 'e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const OTHER_SECRET = 'another-secret-0123456789-abcdefghijklmnopqrstu'

const servers: RunningServer[] = []
const clients: ConcordClient[] = []
const raws: RawNativeSocket[] = []
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const r of raws.splice(0)) r.close()
  for (const s of servers.splice(0)) await s.close()
  for (const fn of cleanups.splice(0)) await fn()
})

async function start(options: ServerOptions = {}): Promise<RunningServer> {
  const s = await startServer({ auth: { secret: SECRET }, ...options })
  servers.push(s)
  return s
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** Write access to everything of tenant acme, for user `user`. */
async function writer(user = 'ada', extra: Partial<Parameters<typeof mintToken>[0]> = {}): Promise<string> {
  return (await mintToken({ secret: SECRET, tenant: 'acme', userId: user, docs: { 'acme/*': 'write' }, ...extra })).token
}

function edit(text: string): Uint8Array {
  const d = new Y.Doc()
  d.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(d)
}

async function adminRequest(server: RunningServer, method: string, path: string, body: unknown, bearer: string | null): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(bearer !== null ? { authorization: `Bearer ${bearer}` } : {}) },
    body: method === 'GET' ? undefined : JSON.stringify(body),
  })
  return { status: res.status, json: await res.json() as Record<string, unknown> }
}

async function adminToken(tenant = 'acme'): Promise<string> {
  return (await mintToken({ secret: SECRET, tenant, userId: 'root', admin: true })).token
}

describe('tokens: every refusal is coded and changes nothing', async () => {
  const rsa = await generateKeyPair('RS256')
  const now = Math.floor(Date.now() / 1000)
  const cases: { name: string; token: () => Promise<string>; document: string; code: string }[] = [
    { name: 'no token', token: async () => '', document: 'acme/plan', code: 'CONCORD_ERR_AUTH_DENIED' },
    { name: 'garbage', token: async () => 'not.a.jwt', document: 'acme/plan', code: 'CONCORD_ERR_AUTH_DENIED' },
    { name: 'bad signature', token: async () => (await mintToken({ secret: OTHER_SECRET, tenant: 'acme', userId: 'eve', docs: { 'acme/*': 'write' } })).token, document: 'acme/plan', code: 'CONCORD_ERR_AUTH_DENIED' },
    {
      name: 'algorithm none',
      token: async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'eve', tenant: 'acme', docs: { 'acme/*': 'write' }, exp: now + 600 })}.`,
      document: 'acme/plan', code: 'CONCORD_ERR_AUTH_DENIED',
    },
    {
      name: 'RS256 token at an HS256 server (algorithm confusion)',
      token: async () => new SignJWT({ tenant: 'acme', docs: { 'acme/*': 'write' } }).setProtectedHeader({ alg: 'RS256' }).setSubject('eve').setExpirationTime('10m').sign(rsa.privateKey),
      document: 'acme/plan', code: 'CONCORD_ERR_AUTH_DENIED',
    },
    { name: 'expired', token: () => writer('ada', { expiresInSec: -60 }), document: 'acme/plan', code: 'CONCORD_ERR_AUTH_EXPIRED' },
    { name: 'not yet valid', token: () => writer('ada', { extra: { nbf: now + 3600 } }), document: 'acme/plan', code: 'CONCORD_ERR_AUTH_DENIED' },
    { name: 'no tenant', token: async () => new SignJWT({ docs: { 'acme/*': 'write' } }).setProtectedHeader({ alg: 'HS256' }).setSubject('eve').setExpirationTime('10m').sign(new TextEncoder().encode(SECRET)), document: 'acme/plan', code: 'CONCORD_ERR_AUTH_DENIED' },
    { name: 'wrong tenant', token: async () => (await mintToken({ secret: SECRET, tenant: 'globex', userId: 'eve', docs: { 'globex/*': 'write' } })).token, document: 'acme/plan', code: 'CONCORD_ERR_AUTH_FORBIDDEN' },
    { name: 'pattern reaching outside its tenant', token: async () => (await mintToken({ secret: SECRET, tenant: 'globex', userId: 'eve', docs: { '*': 'write', 'acme/*': 'write' } })).token, document: 'acme/plan', code: 'CONCORD_ERR_AUTH_FORBIDDEN' },
    { name: 'wrong document', token: async () => (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'eve', docs: { 'acme/public/*': 'write' } })).token, document: 'acme/plan', code: 'CONCORD_ERR_AUTH_FORBIDDEN' },
    { name: 'share link for another document', token: async () => (await mintToken({ secret: SECRET, tenant: 'acme', share: { doc: 'acme/other', role: 'write' } })).token, document: 'acme/plan', code: 'CONCORD_ERR_AUTH_FORBIDDEN' },
  ]

  it.each(cases)('native, $name: $code', async ({ token, document, code }) => {
    const server = await start()
    const raw = await RawNativeSocket.connect(server.url)
    raws.push(raw)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document, token: await token(), stateVector: new Uint8Array() })
    // frames sent right behind the OPEN are dropped with it
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document, seq: 1, update: edit('intruder') })
    expect(await raw.next(FRAME_KINDS.ERROR, document)).toMatchObject({ code, closed: true })
    expect(raw.frames.some(f => f.kind === FRAME_KINDS.OPENED)).toBe(false)
    // nothing was loaded or stored, and the socket still serves a valid token
    expect(server.server.registry.peek(document)).toBeNull()
    expect((await server.server.storage.load(document)).updates).toEqual([])
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/ok', token: await writer(), stateVector: new Uint8Array() })
    expect(await raw.next(FRAME_KINDS.OPENED, 'acme/ok')).toMatchObject({ role: 'write' })
    expect(raw.closeCode).toBeNull()
  })

  it.each(cases.filter(c => ['no token', 'bad signature', 'expired', 'wrong tenant'].includes(c.name)))('y-websocket, $name: closed with the code\'s close code', async ({ token, document, code }) => {
    const server = await start()
    const ws = new WebSocket(`${server.url}/${document}?token=${encodeURIComponent(await token())}`)
    const closed = await new Promise<{ code: number; reason: string }>(resolve => ws.on('close', (c, r) => resolve({ code: c, reason: r.toString() })))
    expect(closed.reason).toBe(code)
    expect(closed.code).toBe(code === 'CONCORD_ERR_AUTH_FORBIDDEN' ? 4403 : 4401)
    expect((await server.server.storage.load(document)).updates).toEqual([])
  })

  it('a read-only session receives everything but every write it sends is refused and changes nothing anywhere', async () => {
    const server = await start()
    const reader = await RawNativeSocket.connect(server.url)
    const other = await RawNativeSocket.connect(server.url)
    raws.push(reader, other)
    const readToken = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'rita', docs: { 'acme/*': 'read' } })).token
    reader.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token: readToken, stateVector: new Uint8Array() })
    other.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token: await writer(), stateVector: new Uint8Array() })
    expect(await reader.next(FRAME_KINDS.OPENED, 'acme/plan')).toMatchObject({ role: 'read' })
    await other.next(FRAME_KINDS.OPENED, 'acme/plan')
    reader.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'acme/plan', seq: 3, update: edit('from the reader') })
    reader.sendFrame({ kind: FRAME_KINDS.SYNC_STEP2, document: 'acme/plan', update: edit('step 2 from the reader') })
    expect(await reader.next(FRAME_KINDS.ERROR, 'acme/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_FORBIDDEN', seq: 3, closed: false })
    await waitFor(() => reader.frames.filter(f => f.kind === FRAME_KINDS.ERROR).length === 2)
    // the writer's edit reaches the reader; the reader's reached nobody
    const mark = other.frames.length
    other.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'acme/plan', seq: 1, update: edit('from the writer') })
    await other.next(FRAME_KINDS.ACK, 'acme/plan')
    await waitFor(() => reader.frames.some(f => f.kind === FRAME_KINDS.UPDATE))
    expect(other.frames.slice(mark).filter(f => f.kind === FRAME_KINDS.UPDATE)).toEqual([])
    expect(server.server.registry.peek('acme/plan')!.ydoc.getText('t').toString()).toBe('from the writer')
    expect((await server.server.storage.load('acme/plan')).updates).toHaveLength(1)
  })

  it('public keys from a JWKS file and a JWKS URL: RS256 and ES256 verify; HS256 signed with the public key does not', async () => {
    const es = await generateKeyPair('ES256')
    const jwks = { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'r1', alg: 'RS256' }, { ...(await exportJWK(es.publicKey)), kid: 'e1', alg: 'ES256' }] }
    const dir = mkdtempSync(join(tmpdir(), 'concord-jwks-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks))
    const http: Server = createHttpServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(jwks)) })
    await new Promise<void>(r => http.listen(0, '127.0.0.1', () => r()))
    cleanups.push(() => new Promise(r => http.close(r)))
    const jwksUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}/jwks.json`
    const claims = { tenant: 'acme', docs: { 'acme/*': 'write' } }
    const rs = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'r1' }).setSubject('ada').setExpirationTime('10m').sign(rsa.privateKey)
    const ec = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'e1' }).setSubject('bob').setExpirationTime('10m').sign(es.privateKey)
    // the classic confusion: an HS256 token whose HMAC key is the server's public key
    const confused = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'r1' }).setSubject('eve').setExpirationTime('10m')
      .sign(new TextEncoder().encode(JSON.stringify(jwks.keys[0])))
    const hs = await writer()
    for (const source of [join(dir, 'jwks.json'), jwksUrl]) {
      const server = await start({ auth: { jwks: source } })
      const raw = await RawNativeSocket.connect(server.url)
      raws.push(raw)
      const open = (document: string, token: string): void => raw.sendFrame({ kind: FRAME_KINDS.OPEN, document, token, stateVector: new Uint8Array() })
      open('acme/rs', rs)
      open('acme/es', ec)
      open('acme/confused', confused)
      open('acme/hs', hs)
      expect(await raw.next(FRAME_KINDS.OPENED, 'acme/rs')).toMatchObject({ role: 'write' })
      expect(await raw.next(FRAME_KINDS.OPENED, 'acme/es')).toMatchObject({ role: 'write' })
      expect(await raw.next(FRAME_KINDS.ERROR, 'acme/confused')).toMatchObject({ code: 'CONCORD_ERR_AUTH_DENIED', closed: true })
      expect(await raw.next(FRAME_KINDS.ERROR, 'acme/hs')).toMatchObject({ code: 'CONCORD_ERR_AUTH_DENIED', closed: true })
    }
  })
})

describe('revocation, role changes and expiry while a document is open', () => {
  it('a user revoked while typing is cut off on every transport, and nothing sent afterwards reaches anyone', async () => {
    const server = await start()
    const token = await writer('mallory')
    const typist = connectClient(server.url, { getToken: () => token })
    const observer = connectClient(server.url, { getToken: () => writer('olive') })
    clients.push(typist, observer)
    const t = typist.open('acme/plan')
    const o = observer.open('acme/plan')
    await Promise.all([t.whenSynced(), o.whenSynced()])
    // the same user on a bare socket and on a stock y-websocket connection
    const raw = await RawNativeSocket.connect(server.url)
    raws.push(raw)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token, stateVector: new Uint8Array() })
    await raw.next(FRAME_KINDS.OPENED, 'acme/plan')
    const yws = new WebSocket(`${server.url}/acme/plan?token=${token}`)
    const ywsClosed = new Promise<{ code: number; reason: string }>(resolve => yws.on('close', (c, r) => resolve({ code: c, reason: r.toString() })))
    await new Promise(r => yws.once('open', r))

    const errors: { code: string; at: number }[] = []
    t.on('error', e => errors.push({ code: e.code, at: Date.now() }))
    let typing = true
    let typed = 0
    const typingLoop = (async () => {
      while (typing && typed < 500) {
        t.doc.getText('t').insert(t.doc.getText('t').length, 'm')
        typed++
        // typing pace (a typist, not a flood): not synchronisation
        await new Promise(r => setTimeout(r, 10))
      }
    })()
    await waitFor(() => o.doc.getText('t').length >= 20, { message: 'the observer to see some typing' })

    const revokedAt = Date.now()
    const res = await adminRequest(server, 'POST', '/admin/revoke', { user: 'mallory' }, await adminToken())
    expect(res.status).toBe(200)
    await waitFor(() => errors.some(e => e.code === 'CONCORD_ERR_AUTH_REVOKED'), { message: 'the revocation to reach the typist' })
    // how soon is printed, not asserted (it depends on the machine); that it happened, and what it froze, is
    const cutOffMs = errors.find(e => e.code === 'CONCORD_ERR_AUTH_REVOKED')!.at - revokedAt
    expect(await raw.next(FRAME_KINDS.ERROR, 'acme/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_REVOKED', closed: true })
    expect(await ywsClosed).toEqual({ code: 4403, reason: 'CONCORD_ERR_AUTH_REVOKED' })
    expect(t.status).toBe('error')

    // what the server holds now is final for mallory: later edits, raw frames and re-opens change nothing.
    // A pause, kept on purpose: there is no event for "every update accepted before the cut has landed",
    // and `frozen` must be taken after them; the assertions below are on equality, never on time
    await new Promise(r => setTimeout(r, 100))
    const frozen = server.server.registry.peek('acme/plan')!.ydoc.getText('t').toString()
    let mark = raw.frames.length
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'acme/plan', seq: 9, update: edit('after revocation') })
    expect(await raw.next(FRAME_KINDS.ERROR, 'acme/plan', mark)).toMatchObject({ code: 'CONCORD_ERR_DOC_NOT_OPEN' })
    mark = raw.frames.length
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token, stateVector: new Uint8Array() })
    expect(await raw.next(FRAME_KINDS.ERROR, 'acme/plan', mark)).toMatchObject({ code: 'CONCORD_ERR_AUTH_REVOKED' })
    // kept on purpose: proves that nothing changes while mallory keeps typing for 300 ms more
    await new Promise(r => setTimeout(r, 300))
    typing = false
    await typingLoop
    expect(server.server.registry.peek('acme/plan')!.ydoc.getText('t').toString()).toBe(frozen)
    expect(o.doc.getText('t').toString()).toBe(frozen)
    expect(frozen).not.toContain('after revocation')
    // the local copy keeps what was typed; it is just not applied anywhere
    expect(t.doc.getText('t').length).toBeGreaterThan(frozen.length)
    console.log(`revocation: cut off ${cutOffMs} ms after the admin call; ${typed} keystrokes typed, ${frozen.length} reached the server`)

    // reinstated, mallory may come back
    expect((await adminRequest(server, 'POST', '/admin/reinstate', { user: 'mallory' }, await adminToken())).json).toEqual({ reinstated: true })
    const back = await RawNativeSocket.connect(server.url)
    raws.push(back)
    back.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token, stateVector: new Uint8Array() })
    await back.next(FRAME_KINDS.OPENED, 'acme/plan')
  })

  it('an administrator downgrades a writer to read (its writes are refused from then on), then removes access', async () => {
    const server = await start()
    const c = connectClient(server.url, { getToken: () => writer('wes') })
    const o = connectClient(server.url, { getToken: () => writer('olive') })
    clients.push(c, o)
    const h = c.open('acme/plan')
    const w = o.open('acme/plan')
    await Promise.all([h.whenSynced(), w.whenSynced()])
    h.doc.getText('t').insert(0, 'before ')
    await h.whenSaved()
    const roles: string[] = []
    h.on('role', r => roles.push(r))
    const errors: string[] = []
    h.on('error', e => errors.push(e.code))
    const put = await adminRequest(server, 'PUT', '/admin/roles', { user: 'wes', document: 'acme/*', role: 'read' }, await adminToken())
    expect(put.status).toBe(200)
    await waitFor(() => roles.includes('read'), { message: 'AUTH_STATE read' })
    expect(h.role).toBe('read')
    h.doc.getText('t').insert(0, 'after ')
    await waitFor(() => errors.includes('CONCORD_ERR_AUTH_FORBIDDEN'))
    expect(server.server.registry.peek('acme/plan')!.ydoc.getText('t').toString()).toBe('before ')
    expect(w.doc.getText('t').toString()).toBe('before ')
    // another document of the tenant: opened read-only from the start
    const other = c.open('acme/other')
    await other.whenSynced()
    expect(other.role).toBe('read')
    await adminRequest(server, 'PUT', '/admin/roles', { user: 'wes', document: 'acme/plan', role: 'none' }, await adminToken())
    await waitFor(() => errors.includes('CONCORD_ERR_AUTH_ROLE_CHANGED'), { message: 'AUTH_ROLE_CHANGED' })
    expect(h.status).toBe('error')
    expect(other.status).toBe('synced')
    // the override is per tenant: an admin of another tenant cannot touch it
    const foreign = await adminRequest(server, 'PUT', '/admin/roles', { user: 'wes', document: 'acme/plan', role: 'write' }, await adminToken('globex'))
    expect(foreign.status).toBe(403)
  })

  it('a token that expires mid-session is refreshed through getToken; without a fresh one the session is cut off', async () => {
    const server = await start()
    let minted = 0
    const c = connectClient(server.url, { getToken: async () => { minted++; return writer('ada', { expiresInSec: 2 }) } })
    clients.push(c)
    const h = c.open('acme/plan')
    await h.whenSynced()
    const errors: string[] = []
    h.on('error', e => errors.push(e.code))
    // through three lifetimes of the token, editing all along
    for (let i = 0; i < 30; i++) {
      h.doc.getText('t').insert(0, 'x')
      // kept on purpose: the 6 s of editing must outlast three 2 s token lifetimes
      await new Promise(r => setTimeout(r, 200))
    }
    await h.whenSaved()
    expect(errors).toEqual([])
    expect(h.status).toBe('synced')
    expect(minted).toBeGreaterThanOrEqual(3)
    expect(server.server.registry.peek('acme/plan')!.ydoc.getText('t').length).toBe(30)

    // a bare socket that never refreshes is told when its token runs out
    const raw = await RawNativeSocket.connect(server.url)
    raws.push(raw)
    const short = await mintToken({ secret: SECRET, tenant: 'acme', userId: 'ada', docs: { 'acme/*': 'write' }, expiresInSec: 3 })
    const sentAt = Date.now()
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token: short.token, stateVector: new Uint8Array() })
    const state = await raw.next(FRAME_KINDS.AUTH_STATE, 'acme/plan')
    const stateAt = Date.now()
    // the lifetime left is the token's, counted at some moment between the OPEN and its answer
    expect(state.expiresInMs).toBeGreaterThanOrEqual(short.expiresAt - stateAt)
    expect(state.expiresInMs).toBeLessThanOrEqual(short.expiresAt - sentAt)
    expect(await raw.next(FRAME_KINDS.ERROR, 'acme/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_EXPIRED', closed: true })
    // cut off once the token ran out, never before (how long after is printed, not asserted)
    const cutAt = Date.now()
    expect(cutAt).toBeGreaterThanOrEqual(short.expiresAt)
    console.log(`token expiry: the session was told ${cutAt - short.expiresAt} ms after its token ran out`)
    // and a refresh with a token for someone without access is refused without ending the session
    const raw2 = await RawNativeSocket.connect(server.url)
    raws.push(raw2)
    raw2.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token: await writer('ada', { expiresInSec: 60 }), stateVector: new Uint8Array() })
    await raw2.next(FRAME_KINDS.OPENED, 'acme/plan')
    raw2.sendFrame({ kind: FRAME_KINDS.AUTH, document: 'acme/plan', token: (await mintToken({ secret: SECRET, tenant: 'globex', userId: 'x', docs: { 'globex/*': 'write' } })).token })
    expect(await raw2.next(FRAME_KINDS.ERROR, 'acme/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_FORBIDDEN', closed: false })
  })

  it('share links: minted by the admin API for one document and role, revocable', async () => {
    const server = await start()
    const created = await adminRequest(server, 'POST', '/admin/share-links', { document: 'acme/plan', role: 'read', expiresInSec: 600 }, await adminToken())
    expect(created.status).toBe(201)
    const link = created.json as { token: string; id: string }
    const raw = await RawNativeSocket.connect(server.url)
    raws.push(raw)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token: link.token, stateVector: new Uint8Array() })
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/other', token: link.token, stateVector: new Uint8Array() })
    expect(await raw.next(FRAME_KINDS.OPENED, 'acme/plan')).toMatchObject({ role: 'read' })
    expect(await raw.next(FRAME_KINDS.ERROR, 'acme/other')).toMatchObject({ code: 'CONCORD_ERR_AUTH_FORBIDDEN' })
    expect((await adminRequest(server, 'POST', '/admin/revoke', { share: link.id }, await adminToken())).status).toBe(200)
    expect(await raw.next(FRAME_KINDS.ERROR, 'acme/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_REVOKED', closed: true })
  })

  it('the admin API refuses callers without an admin credential, and bad requests, with codes', async () => {
    const server = await start({ adminToken: 'static-admin-token-0123456789' })
    const body = { user: 'x' }
    expect((await adminRequest(server, 'POST', '/admin/revoke', body, null)).status).toBe(401)
    expect((await adminRequest(server, 'POST', '/admin/revoke', body, await writer())).status).toBe(401)
    expect((await adminRequest(server, 'POST', '/admin/revoke', body, 'static-admin-token-wrong-one')).status).toBe(401)
    // the static token acts on any tenant, which it must name
    expect((await adminRequest(server, 'POST', '/admin/revoke', body, 'static-admin-token-0123456789')).json).toMatchObject({ error: 'CONCORD_ERR_HTTP_BAD_REQUEST' })
    expect((await adminRequest(server, 'POST', '/admin/revoke', { ...body, tenant: 'globex' }, 'static-admin-token-0123456789')).status).toBe(200)
    expect((await adminRequest(server, 'POST', '/admin/revoke', { ...body, tenant: 'globex' }, await adminToken('acme'))).status).toBe(403)
    expect((await adminRequest(server, 'PUT', '/admin/roles', { user: 'x', document: 'acme/*', role: 'owner' }, await adminToken())).json).toMatchObject({ error: 'CONCORD_ERR_HTTP_BAD_REQUEST' })
    expect((await adminRequest(server, 'GET', '/admin/revoke', null, await adminToken())).status).toBe(405)
    const access = await adminRequest(server, 'GET', '/admin/access', null, await adminToken('globex'))
    expect(access.json.revokedUsers).toEqual([expect.objectContaining({ tenant: 'globex', userId: 'x' })])
    // development tokens exist only with devTokens
    expect((await fetch(`http://127.0.0.1:${server.port}/dev/token`, { method: 'POST', body: '{}' })).status).toBe(404)
  })
})

describe('onAuthenticate and onAuthorize', () => {
  it('an application hook replaces JWT checking; onAuthorize has the last word; revocation still applies', async () => {
    const server = await start({
      onAuthenticate: ({ token }) => ({ userId: token, role: 'write', tenant: 'app' }),
      onAuthorize: ({ document, auth }) => (document.endsWith('/locked') ? null : document.endsWith('/view') ? 'read' : auth.role),
    })
    const raw = await RawNativeSocket.connect(server.url)
    raws.push(raw)
    for (const document of ['app/notes', 'app/locked', 'app/view']) raw.sendFrame({ kind: FRAME_KINDS.OPEN, document, token: 'u1', stateVector: new Uint8Array() })
    expect(await raw.next(FRAME_KINDS.OPENED, 'app/notes')).toMatchObject({ role: 'write' })
    expect(await raw.next(FRAME_KINDS.ERROR, 'app/locked')).toMatchObject({ code: 'CONCORD_ERR_AUTH_FORBIDDEN', closed: true })
    expect(await raw.next(FRAME_KINDS.OPENED, 'app/view')).toMatchObject({ role: 'read' })
    // an administrator's override comes and goes; the session returns to what onAuthorize granted
    const access = server.server.options.authorizer.access
    let mark = raw.frames.length
    await access.setRole('app', 'u1', 'app/view', 'write')
    expect(await raw.next(FRAME_KINDS.AUTH_STATE, 'app/view', mark)).toMatchObject({ role: 'write' })
    mark = raw.frames.length
    await access.setRole('app', 'u1', 'app/view', null)
    expect(await raw.next(FRAME_KINDS.AUTH_STATE, 'app/view', mark)).toMatchObject({ role: 'read' })
    await access.revokeUser('app', 'u1')
    expect(await raw.next(FRAME_KINDS.ERROR, 'app/notes')).toMatchObject({ code: 'CONCORD_ERR_AUTH_REVOKED' })
  })
})

