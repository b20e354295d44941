import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import * as encoding from 'lib0/encoding'
import { encodeHocuspocusKey, encodeYMessage } from '@concord/protocol'
import { mintToken } from '@concord/server'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'

// A stock @hocuspocus/provider (4.7, the provider TipTap's collaboration uses) against a Concord
// server, unchanged: the third transport. Node 20 has no global WebSocket: the provider takes `ws`.

const SECRET = 'e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz'

let running: RunningServer | null = null
const providers: HocuspocusProvider[] = []
const sockets: HocuspocusProviderWebsocket[] = []
const yProviders: WebsocketProvider[] = []
const clients: ConcordClient[] = []

afterEach(async () => {
  for (const p of providers.splice(0)) p.destroy()
  for (const s of sockets.splice(0)) s.destroy()
  for (const p of yProviders.splice(0)) p.destroy()
  for (const c of clients.splice(0)) c.close()
  await running?.close()
  running = null
})

function socket(url: string): HocuspocusProviderWebsocket {
  const s = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket as never })
  sockets.push(s)
  return s
}

function provider(options: { url?: string; websocketProvider?: HocuspocusProviderWebsocket; name: string; token?: string | (() => Promise<string>); sessionAwareness?: boolean }): HocuspocusProvider {
  const p = new HocuspocusProvider({
    ...(options.websocketProvider !== undefined ? { websocketProvider: options.websocketProvider } : { url: options.url!, WebSocketPolyfill: WebSocket as never }),
    name: options.name, token: options.token ?? '', document: new Y.Doc(), ...(options.sessionAwareness ? { sessionAwareness: true } : {}),
  } as ConstructorParameters<typeof HocuspocusProvider>[0])
  if (options.websocketProvider !== undefined) p.attach()
  providers.push(p)
  return p
}

const text = (p: HocuspocusProvider): string => p.document.getText('t').toString()

describe('a stock Hocuspocus provider', () => {
  it('syncs with a y-websocket provider and an SDK client on the same document, and sees their awareness', async () => {
    running = await startServer({ presenceThrottleMs: 20 })
    const url = running.url
    const hp = provider({ url, name: 'notes/shared' })
    const yp = new WebsocketProvider(url, 'notes/shared', new Y.Doc(), { WebSocketPolyfill: WebSocket as never, disableBc: true })
    yProviders.push(yp)
    const sdk = connectClient(url)
    clients.push(sdk)
    const handle = sdk.open('notes/shared')
    await waitFor(() => hp.synced && yp.synced, { message: 'both providers synced' })
    expect(hp.isAuthenticated).toBe(true)
    expect(hp.authorizedScope).toBe('read-write')

    hp.document.getText('t').insert(0, 'hocus ')
    yp.doc.getText('t').insert(0, 'ywebsocket ')
    handle.doc.getText('t').insert(0, 'sdk ')
    await waitFor(() => text(hp).length === 21 && text(hp) === yp.doc.getText('t').toString() && text(hp) === handle.doc.getText('t').toString(),
      { message: 'all three converge' })
    expect(running.server.registry.peek('notes/shared')?.ydoc.getText('t').toString()).toBe(text(hp))

    // awareness both ways
    hp.setAwarenessField('user', { name: 'Hocus' })
    yp.awareness.setLocalStateField('user', { name: 'Ywes' })
    await waitFor(() => (yp.awareness.getStates().get(hp.document.clientID) as { user?: { name: string } } | undefined)?.user?.name === 'Hocus',
      { message: 'the y-websocket provider sees the Hocuspocus provider\'s awareness' })
    await waitFor(() => (hp.awareness!.getStates().get(yp.doc.clientID) as { user?: { name: string } } | undefined)?.user?.name === 'Ywes',
      { message: 'the Hocuspocus provider sees the y-websocket provider\'s awareness' })
  })

  it('counts its unsynced changes down only once they are durable', async () => {
    running = await startServer()
    const hp = provider({ url: running.url, name: 'saved' })
    await waitFor(() => hp.synced && !hp.hasUnsyncedChanges, { message: 'synced with nothing unsaved' })
    const counts: number[] = []
    hp.on('unsyncedChanges', ({ number }: { number: number }) => counts.push(number))
    for (let i = 0; i < 20; i++) hp.document.getText('t').insert(0, 'x')
    expect(hp.hasUnsyncedChanges).toBe(true)
    await waitFor(() => !hp.hasUnsyncedChanges, { message: 'every change saved' })
    expect(Math.max(...counts)).toBeGreaterThan(0)
    expect(counts.at(-1)).toBe(0)
    // durable: a fresh load from storage holds every change
    const loaded = await running.server.storage.load('saved')
    const check = new Y.Doc()
    for (const u of loaded.updates) Y.applyUpdate(check, u.update)
    if (loaded.snapshot) Y.applyUpdate(check, loaded.snapshot)
    expect(check.getText('t').toString()).toBe('x'.repeat(20))
  })

  it('multiplexes several providers on one socket, with session-aware routing keys too', async () => {
    running = await startServer()
    const ws = socket(running.url)
    const a = provider({ websocketProvider: ws, name: 'multi/a' })
    const b = provider({ websocketProvider: ws, name: 'multi/b' })
    const b2 = provider({ websocketProvider: ws, name: 'multi/b', sessionAwareness: true })
    await waitFor(() => a.synced && b.synced && b2.synced, { message: 'three providers synced on one socket' })
    const metrics = await (await fetch(`http://127.0.0.1:${running.port}/metrics`)).text()
    expect(metrics).toMatch(/concord_connections\{protocol="hocuspocus"\} 1\n/)
    a.document.getText('t').insert(0, 'in a')
    b.document.getText('t').insert(0, 'in b')
    await waitFor(() => text(b2) === 'in b', { message: 'the second provider of multi/b sees the first one\'s edit' })
    expect(text(a)).toBe('in a')
    await waitFor(() => !a.hasUnsyncedChanges && !b.hasUnsyncedChanges, { message: 'both saved' })
  })

  it('authenticates with Concord tokens: read-only scope, refused tokens, and a revoked user cut off', async () => {
    running = await startServer({ auth: { secret: SECRET } })
    const url = running.url
    const writerToken = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'ada', docs: { 'acme/*': 'write' } })).token
    const readerToken = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'rita', docs: { 'acme/*': 'read' } })).token
    const malloryToken = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'mallory', docs: { 'acme/*': 'write' } })).token

    const failures: string[] = []
    const bad = provider({ url, name: 'acme/plan', token: 'not-a-token' })
    bad.on('authenticationFailed', ({ reason }: { reason: string }) => failures.push(reason))
    const foreign = provider({ url, name: 'globex/plan', token: writerToken })
    foreign.on('authenticationFailed', ({ reason }: { reason: string }) => failures.push(reason))
    await waitFor(() => failures.length === 2, { message: 'two refusals' })
    // an invalid token, and a valid one for another tenant's document: both refused as for the other transports
    expect(failures.sort()).toEqual(['CONCORD_ERR_AUTH_DENIED', 'CONCORD_ERR_AUTH_FORBIDDEN'])
    expect(bad.synced || foreign.synced).toBe(false)

    const ada = provider({ url, name: 'acme/plan', token: writerToken })
    const rita = provider({ url, name: 'acme/plan', token: readerToken })
    const mallory = provider({ url, name: 'acme/plan', token: malloryToken })
    await waitFor(() => ada.synced && rita.synced && mallory.synced, { message: 'three synced' })
    expect(rita.authorizedScope).toBe('readonly')
    ada.document.getText('t').insert(0, 'plan')
    await waitFor(() => text(rita) === 'plan' && text(mallory) === 'plan')
    // a reader's edit is refused: it stays unsaved, and nobody else sees it
    rita.document.getText('t').insert(0, 'NO ')
    mallory.document.getText('t').insert(4, '!')
    await waitFor(() => text(ada) === 'plan!', { message: 'mallory\'s edit arrives' })
    expect(rita.hasUnsyncedChanges).toBe(true)

    // revoke mallory through the admin API: cut off, and nothing she sends afterwards reaches anyone
    const closed: string[] = []
    const denied: string[] = []
    mallory.on('close', ({ event }: { event: { reason: string } }) => closed.push(event.reason))
    mallory.on('authenticationFailed', ({ reason }: { reason: string }) => denied.push(reason))
    const admin = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'root', admin: true })).token
    const res = await fetch(`http://127.0.0.1:${running.port}/admin/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` }, body: JSON.stringify({ user: 'mallory' }),
    })
    expect(res.status).toBe(200)
    await waitFor(() => denied.includes('CONCORD_ERR_AUTH_REVOKED') && closed.includes('CONCORD_ERR_AUTH_REVOKED'), { message: 'mallory told she is revoked' })
    mallory.document.getText('t').insert(0, 'EVIL ')
    ada.document.getText('t').insert(0, 'new ')
    // (rita's refused edit stays in her own copy only)
    await waitFor(() => !ada.hasUnsyncedChanges && text(rita).replace('NO ', '') === 'new plan!',
      { message: () => `ada's later edit reaches rita (ada: ${JSON.stringify(text(ada))}, unsynced ${ada.unsyncedChanges}, rita: ${JSON.stringify(text(rita))})` })
    expect(text(ada)).toBe('new plan!')
    expect(text(rita)).not.toMatch(/EVIL/)
    expect(running.server.registry.peek('acme/plan')?.ydoc.getText('t').toString()).toBe('new plan!')
  })
})

/** A raw socket speaking the Hocuspocus format, for what a stock provider would never send. */
class RawHocuspocus {
  readonly ws: WebSocket
  readonly received: Uint8Array[] = []
  closed: { code: number; reason: string } | null = null
  constructor(url: string) {
    this.ws = new WebSocket(url)
    this.ws.on('message', (data: Buffer) => this.received.push(new Uint8Array(data)))
    this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() } })
  }
  opened(): Promise<void> {
    return new Promise((resolve, reject) => { this.ws.once('open', () => resolve()); this.ws.once('error', reject) })
  }
  send(bytes: Uint8Array): void {
    this.ws.send(bytes)
  }
  /** PermissionDenied reasons received for `key`. */
  denied(key: string): string[] {
    const prefix = Buffer.concat([encodeHocuspocusKey(key), Buffer.from([2, 1])])
    return this.received.filter(m => Buffer.from(m.subarray(0, prefix.length)).equals(prefix))
      .map(m => Buffer.from(m.subarray(prefix.length + 1)).toString())
  }
  syncStatuses(key: string): number[] {
    const prefix = Buffer.concat([encodeHocuspocusKey(key), Buffer.from([8])])
    return this.received.filter(m => m.length === prefix.length + 1 && Buffer.from(m.subarray(0, prefix.length)).equals(prefix)).map(m => m[prefix.length]!)
  }
}

const hpMessage = (key: string, ...parts: Uint8Array[]): Uint8Array => Buffer.concat([encodeHocuspocusKey(key), ...parts])
const tokenMessage = (key: string, token: string): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarString(e, key)
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 0)
  encoding.writeVarString(e, token)
  return encoding.toUint8Array(e)
}
const updateMessage = (key: string, update: Uint8Array): Uint8Array => hpMessage(key, encodeYMessage({ type: 'update', update }))
function edit(text: string, clientID?: number): Uint8Array {
  const d = new Y.Doc()
  if (clientID !== undefined) d.clientID = clientID
  d.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(d)
}

describe('an attacker on the Hocuspocus transport', () => {
  it('is refused, per document or per socket, with coded reasons, while an honest provider keeps editing', async () => {
    running = await startServer({ auth: { secret: SECRET }, maxQueuedMessagesBeforeOpen: 100 })
    const url = running.url
    const token = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'ada', docs: { 'acme/*': 'write' } })).token
    const readToken = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'mallory', docs: { 'acme/*': 'read' } })).token
    const honest = provider({ url, name: 'acme/honest', token })
    await waitFor(() => honest.synced)
    honest.document.getText('t').insert(0, 'mine ')
    await waitFor(() => !honest.hasUnsyncedChanges)

    // a flood before the token: the queue is bounded, the document refused, nothing written
    const flooder = new RawHocuspocus(url)
    await flooder.opened()
    for (let i = 0; i < 300; i++) flooder.send(updateMessage('acme/flood', edit(`x${i}`)))
    await waitFor(() => flooder.denied('acme/flood').length > 0, { message: 'the flood refused' })
    expect(flooder.denied('acme/flood')).toEqual(['CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE'])
    expect(running.server.registry.peek('acme/flood') ?? null).toBeNull()

    // a bad name, and a reader's writes (answered "not saved"), and another user's Yjs client id
    flooder.send(tokenMessage('acme/bell\u0007', token))
    await waitFor(() => flooder.denied('acme/bell\u0007').length > 0)
    expect(flooder.denied('acme/bell\u0007')).toEqual(['CONCORD_ERR_DOC_INVALID_NAME'])
    flooder.send(tokenMessage('acme/honest', readToken))
    flooder.send(updateMessage('acme/honest', edit('EVIL')))
    await waitFor(() => flooder.syncStatuses('acme/honest').length === 1)
    expect(flooder.syncStatuses('acme/honest')).toEqual([0])
    const writer = new RawHocuspocus(url)
    await writer.opened()
    writer.send(tokenMessage('acme/honest', (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'eve', docs: { 'acme/*': 'write' } })).token))
    writer.send(updateMessage('acme/honest', edit('IMPERSONATED', honest.document.clientID)))
    await waitFor(() => writer.syncStatuses('acme/honest').length === 1, { message: 'the impersonating update answered' })
    expect(writer.syncStatuses('acme/honest')).toEqual([0])

    // too many documents opening at once: the socket is closed with its code
    const opener = new RawHocuspocus(url)
    await opener.opened()
    for (let i = 0; i < 150; i++) opener.send(hpMessage(`acme/pending-${i}`, new Uint8Array([3])))
    await waitFor(() => opener.closed !== null, { message: 'the opener closed' })
    expect(opener.closed!.reason).toBe('CONCORD_ERR_LIMIT_PENDING_DOCUMENTS')

    // bytes that are no message: closed
    const garbage = new RawHocuspocus(url)
    await garbage.opened()
    garbage.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
    await waitFor(() => garbage.closed !== null)
    expect(garbage.closed!.reason).toBe('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME')

    // the honest provider was never disturbed
    honest.document.getText('t').insert(0, 'still here')
    await waitFor(() => !honest.hasUnsyncedChanges)
    expect(running.server.registry.peek('acme/honest')?.ydoc.getText('t').toString()).toBe('still heremine ')
    for (const r of [flooder, writer]) r.ws.close()
  })
})
