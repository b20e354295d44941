import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { SignJWT } from 'jose'
import { FRAME_KINDS } from '@concord/protocol'
import { mintToken } from '@concord/server'
import { RawNativeSocket, startServer, waitFor, type RunningServer } from './helpers.js'

// Tenant acme's administrator (a JWT with admin: true for acme) attacks tenant globex through the
// admin API with the ids it learned: a globex token's jti, a globex session's id, globex user ids.
// An admin JWT acts only within its own tenant; the static admin token acts on all.

const SECRET = 'tenant-isolation-secret-0123456789-abcdefghijk'
const STATIC_ADMIN = 'static-admin-token-0123456789'

const servers: RunningServer[] = []
const raws: RawNativeSocket[] = []
afterEach(async () => {
  for (const r of raws.splice(0)) r.close()
  for (const s of servers.splice(0)) await s.close()
})

async function start(): Promise<RunningServer> {
  const s = await startServer({ auth: { secret: SECRET }, adminToken: STATIC_ADMIN })
  servers.push(s)
  return s
}

/** A writer's token in `tenant` and its id (jti). */
async function writer(tenant: string, user: string): Promise<{ token: string; id: string }> {
  return mintToken({ secret: SECRET, tenant, userId: user, docs: { [`${tenant}/*`]: 'write' } })
}

async function tenantAdmin(tenant: string): Promise<string> {
  return (await mintToken({ secret: SECRET, tenant, userId: `${tenant}-admin`, admin: true })).token
}

async function admin(server: RunningServer, method: string, path: string, body: unknown, bearer: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method, headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: method === 'GET' || method === 'DELETE' ? undefined : JSON.stringify(body),
  })
  return { status: res.status, json: await res.json() as Record<string, unknown> }
}

function edit(text: string): Uint8Array {
  const d = new Y.Doc()
  d.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(d)
}

/** A native session on `document`, open. */
async function open(server: RunningServer, document: string, token: string): Promise<RawNativeSocket> {
  const raw = await RawNativeSocket.connect(server.url)
  raws.push(raw)
  raw.sendFrame({ kind: FRAME_KINDS.OPEN, document, token, stateVector: new Uint8Array() })
  await raw.next(FRAME_KINDS.OPENED, document)
  return raw
}

/** The session writes and the server saves it (ACK): it still works. No ERROR came before the ACK on this socket. */
async function stillWrites(raw: RawNativeSocket, document: string, seq: number): Promise<void> {
  raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document, seq, update: edit(`edit ${seq}`) })
  await waitFor(() => raw.frames.some(f => f.kind === FRAME_KINDS.ACK && f.document === document && f.ranges.some(r => r.from <= seq && seq <= r.to)),
    { message: `the ACK of update ${seq}` })
  expect(raw.frames.filter(f => f.kind === FRAME_KINDS.ERROR)).toEqual([])
}

/** Does `token` open `document` on a fresh socket? The code it is refused with, or 'opened'. */
async function tryOpen(server: RunningServer, document: string, token: string): Promise<string> {
  const raw = await RawNativeSocket.connect(server.url)
  raws.push(raw)
  raw.sendFrame({ kind: FRAME_KINDS.OPEN, document, token, stateVector: new Uint8Array() })
  const f = await waitFor(() => raw.frames.find(f => (f.kind === FRAME_KINDS.OPENED || f.kind === FRAME_KINDS.ERROR) && f.document === document), { message: 'the answer to OPEN' })
  return f.kind === FRAME_KINDS.ERROR ? f.code : 'opened'
}

describe('a tenant admin cannot reach another tenant through ids', () => {
  it('acme\'s admin revokes a globex token by its jti: the globex session keeps working and the token still opens documents; acme\'s own revocations still work', async () => {
    const server = await start()
    const bob = await writer('globex', 'bob')
    const bobSession = await open(server, 'globex/plan', bob.token)
    const ada = await writer('acme', 'ada')
    const adaSession = await open(server, 'acme/plan', ada.token)
    const acmeAdmin = await tenantAdmin('acme')

    // the attack: acme's admin knows bob's token id (from a log, a support ticket...)
    const attack = await admin(server, 'POST', '/admin/revoke', { token: bob.id }, acmeAdmin)
    expect(attack.status).toBe(200)
    await stillWrites(bobSession, 'globex/plan', 1)
    expect(await tryOpen(server, 'globex/other', bob.token)).toBe('opened')
    // and acme's admin does not see globex's revocations, nor can it name globex
    expect((await admin(server, 'POST', '/admin/revoke', { token: bob.id, tenant: 'globex' }, acmeAdmin)).status).toBe(403)

    // acme's admin revoking acme's own token still cuts it off at once, and re-opening is refused
    expect((await admin(server, 'POST', '/admin/revoke', { token: ada.id }, acmeAdmin)).status).toBe(200)
    expect(await adaSession.next(FRAME_KINDS.ERROR, 'acme/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_REVOKED', closed: true })
    expect(await tryOpen(server, 'acme/plan', ada.token)).toBe('CONCORD_ERR_AUTH_REVOKED')
    await stillWrites(bobSession, 'globex/plan', 2)

    // the static admin token acts on every tenant: without a tenant, on any token with the id
    expect((await admin(server, 'POST', '/admin/revoke', { token: bob.id }, STATIC_ADMIN)).status).toBe(200)
    expect(await bobSession.next(FRAME_KINDS.ERROR, 'globex/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_REVOKED', closed: true })
  })

  it('two tenants\' tokens with the same jti: each admin\'s revocation cuts off its own tenant\'s only', async () => {
    const server = await start()
    const id = 'token-7'
    // each tenant's backend numbers its own tokens
    const withId = (tenant: string, user: string): Promise<string> =>
      new SignJWT({ tenant, docs: { [`${tenant}/*`]: 'write' } }).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setJti(id)
        .setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(SECRET))
    const bobToken = await withId('globex', 'bob')
    const adaToken = await withId('acme', 'ada')
    const bobSession = await open(server, 'globex/plan', bobToken)
    const adaSession = await open(server, 'acme/plan', adaToken)
    expect((await admin(server, 'POST', '/admin/revoke', { token: id }, await tenantAdmin('acme'))).status).toBe(200)
    expect(await adaSession.next(FRAME_KINDS.ERROR, 'acme/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_REVOKED' })
    await stillWrites(bobSession, 'globex/plan', 1)
    expect(await tryOpen(server, 'globex/plan', bobToken)).toBe('opened')
  })

  it('acme\'s admin cannot lift globex\'s revocation of a globex token by revoking the same id with an expiry in the past', async () => {
    const server = await start()
    const bob = await writer('globex', 'bob')
    expect((await admin(server, 'POST', '/admin/revoke', { token: bob.id }, await tenantAdmin('globex'))).status).toBe(200)
    expect(await tryOpen(server, 'globex/plan', bob.token)).toBe('CONCORD_ERR_AUTH_REVOKED')
    // the attack: a revocation of the same id that expired long ago, meant to replace globex's
    expect((await admin(server, 'POST', '/admin/revoke', { token: bob.id, until: 1 }, await tenantAdmin('acme'))).status).toBe(200)
    expect(await tryOpen(server, 'globex/plan', bob.token)).toBe('CONCORD_ERR_AUTH_REVOKED')
    // globex's admin sees its revocation; acme's admin sees only its own
    const globexView = await admin(server, 'GET', '/admin/access', null, await tenantAdmin('globex'))
    expect(globexView.json.revokedTokens).toEqual([expect.objectContaining({ id: bob.id, tenant: 'globex', until: 0 })])
    const acmeView = await admin(server, 'GET', '/admin/access', null, await tenantAdmin('acme'))
    expect((acmeView.json.revokedTokens as { tenant: string }[]).every(t => t.tenant === 'acme')).toBe(true)
  })

  it('role overrides, reinstatement and kicks by session id stay in the caller\'s tenant', async () => {
    const server = await start()
    // the same user id in both tenants
    const globexBob = await writer('globex', 'bob')
    const bobSession = await open(server, 'globex/plan', globexBob.token)
    const acmeAdmin = await tenantAdmin('acme')
    expect((await admin(server, 'PUT', '/admin/roles', { user: 'bob', document: 'globex/*', role: 'none' }, acmeAdmin)).status).toBe(403)
    expect((await admin(server, 'PUT', '/admin/roles', { tenant: 'globex', user: 'bob', document: 'globex/*', role: 'none' }, acmeAdmin)).status).toBe(403)
    // an override for acme's bob does not touch globex's bob
    expect((await admin(server, 'PUT', '/admin/roles', { user: 'bob', document: 'acme/*', role: 'none' }, acmeAdmin)).status).toBe(200)
    expect((await admin(server, 'POST', '/admin/revoke', { user: 'bob' }, acmeAdmin)).status).toBe(200)
    await stillWrites(bobSession, 'globex/plan', 1)
    // globex's revocation of its bob cannot be lifted by acme's admin
    expect((await admin(server, 'POST', '/admin/revoke', { user: 'bob' }, await tenantAdmin('globex'))).status).toBe(200)
    expect(await bobSession.next(FRAME_KINDS.ERROR, 'globex/plan')).toMatchObject({ code: 'CONCORD_ERR_AUTH_REVOKED' })
    expect((await admin(server, 'POST', '/admin/reinstate', { user: 'bob' }, acmeAdmin)).json).toEqual({ reinstated: true })
    expect(await tryOpen(server, 'globex/plan', globexBob.token)).toBe('CONCORD_ERR_AUTH_REVOKED')

    // a globex session's id, learned somehow, cannot be kicked by acme's admin
    const carol = await writer('globex', 'carol')
    const carolSession = await open(server, 'globex/plan', carol.token)
    const listed = await admin(server, 'GET', '/admin/sessions', null, STATIC_ADMIN)
    const carolId = (listed.json.sessions as { id: string; userId: string }[]).find(s => s.userId === 'carol')!.id
    expect((await admin(server, 'DELETE', `/admin/sessions/${encodeURIComponent(carolId)}`, null, acmeAdmin)).status).toBe(404)
    expect((await admin(server, 'GET', '/admin/sessions', null, acmeAdmin)).json.sessions).toEqual([])
    await stillWrites(carolSession, 'globex/plan', 1)
  })
})
