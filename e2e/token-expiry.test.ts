import { describe, it, expect, afterEach } from 'vitest'
import { randomUUID } from 'node:crypto'
import { WebSocket } from 'ws'
import { SignJWT, type JWTPayload } from 'jose'
import { pino } from 'pino'
import { FRAME_KINDS } from '@concord/protocol'
import { mintToken, type ServerOptions } from '@concord/server'
import { RawNativeSocket, startServer, waitFor, type RunningServer } from './helpers.js'

// A token without `exp` never expires: whoever gets hold of one (a backend that forgot the claim,
// a token copied from a log) could use it for ever. The server refuses such tokens, on every
// transport and on the HTTP API, unless it was told to accept them (and then says so in its log).

const SECRET = 'token-expiry-secret-0123456789-abcdefghijklmnop'

const servers: RunningServer[] = []
const raws: RawNativeSocket[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const r of raws.splice(0)) r.close()
  for (const s of sockets.splice(0)) s.terminate()
  for (const s of servers.splice(0)) await s.close()
})

async function start(options: ServerOptions = {}): Promise<RunningServer> {
  const s = await startServer({ auth: { secret: SECRET }, ...options })
  servers.push(s)
  return s
}

/** What the attacker holds: Concord's claims, signed with the right key, without `exp`. */
function tokenWithoutExp(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject('mallory').setIssuedAt().setJti(randomUUID())
    .sign(new TextEncoder().encode(SECRET))
}

const WRITER = { tenant: 'acme', docs: { 'acme/*': 'write' as const } }
const ADMIN = { tenant: 'acme', admin: true }

/** What each way in answers to `token` (and `adminToken` on the admin API). */
async function tryEverywhere(server: RunningServer, token: string, adminToken: string): Promise<{
  native: { kind: number; code?: string; message?: string }
  yWebsocket: { opened: boolean; closeCode?: number; reason?: string }
  history: { status: number; error?: string }
  admin: { status: number; error?: string }
}> {
  const raw = await RawNativeSocket.connect(server.url)
  raws.push(raw)
  raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'acme/plan', token, stateVector: new Uint8Array() })
  const answer = await waitFor(() => raw.frames.find(f => (f.kind === FRAME_KINDS.OPENED || f.kind === FRAME_KINDS.ERROR) && f.document === 'acme/plan'),
    { message: 'the answer to OPEN' })
  const native = answer.kind === FRAME_KINDS.ERROR ? { kind: answer.kind, code: answer.code, message: answer.message } : { kind: answer.kind }

  // y-websocket: a refused socket is told permission-denied and closed with a code; an accepted
  // one gets the server's sync step 1 (a sync message: first byte 0)
  const ws = new WebSocket(`${server.url}/acme/plan?token=${encodeURIComponent(token)}`)
  sockets.push(ws)
  let yWebsocket: { opened: boolean; closeCode?: number; reason?: string } | null = null
  ws.on('message', (data: Buffer) => { if (data[0] === 0) yWebsocket ??= { opened: true } })
  ws.once('close', (code, reason) => { yWebsocket ??= { opened: false, closeCode: code, reason: reason.toString() } })
  await waitFor(() => yWebsocket, { message: 'the y-websocket connection to be answered or closed' })

  const base = `http://127.0.0.1:${server.port}`
  const h = await fetch(`${base}/v1/documents/${encodeURIComponent('acme/plan')}/versions`, { headers: { authorization: `Bearer ${token}` } })
  const history = { status: h.status, error: ((await h.json()) as { error?: string }).error }
  const a = await fetch(`${base}/admin/access`, { headers: { authorization: `Bearer ${adminToken}` } })
  const admin = { status: a.status, error: ((await a.json()) as { error?: string }).error }
  return { native, yWebsocket: yWebsocket!, history, admin }
}

describe('tokens must expire', () => {
  it('a validly signed token without exp is refused on the native protocol, y-websocket, the history API and the admin API; nothing is stored', async () => {
    const server = await start()
    const seen = await tryEverywhere(server, await tokenWithoutExp(WRITER), await tokenWithoutExp(ADMIN))
    expect(seen.native).toEqual({ kind: FRAME_KINDS.ERROR, code: 'CONCORD_ERR_AUTH_DENIED', message: expect.stringMatching(/no expiry \(exp claim\)/) })
    expect(seen.yWebsocket).toEqual({ opened: false, closeCode: 4401, reason: 'CONCORD_ERR_AUTH_DENIED' })
    expect(seen.history).toEqual({ status: 401, error: 'CONCORD_ERR_AUTH_DENIED' })
    expect(seen.admin).toEqual({ status: 401, error: 'CONCORD_ERR_AUTH_DENIED' })
    expect(await server.server.storage.load('acme/plan')).toMatchObject({ snapshot: null, updates: [] })

    // the same claims with an expiry pass everywhere: it is the missing exp that was refused
    const withExp = await tryEverywhere(server, (await mintToken({ secret: SECRET, ...WRITER, userId: 'ada' })).token,
      (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'root', admin: true })).token)
    expect(withExp).toMatchObject({ native: { kind: FRAME_KINDS.OPENED }, yWebsocket: { opened: true }, history: { status: 200 }, admin: { status: 200 } })
  })

  it('allowTokensWithoutExp accepts them, and the server warns about it in its log at start', async () => {
    const lines: { level: number; msg: string }[] = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number; msg: string }) } })
    const server = await start({ auth: { secret: SECRET, allowTokensWithoutExp: true }, logger })
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringMatching(/tokens without an expiry \(exp\) are accepted/) }))
    const seen = await tryEverywhere(server, await tokenWithoutExp(WRITER), await tokenWithoutExp(ADMIN))
    expect(seen).toMatchObject({ native: { kind: FRAME_KINDS.OPENED }, yWebsocket: { opened: true }, history: { status: 200 }, admin: { status: 200 } })

    // without the option, no such warning
    const quiet: { msg: string }[] = []
    await start({ logger: pino({ level: 'info' }, { write: (line: string) => { quiet.push(JSON.parse(line) as { msg: string }) } }) })
    expect(quiet.map(l => l.msg).filter(m => /exp/.test(m))).toEqual([])
  })
})
