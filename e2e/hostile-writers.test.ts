import { describe, it, expect, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { Awareness, encodeAwarenessUpdate, applyAwarenessUpdate } from 'y-protocols/awareness'
import { decodeYMessage, encodeYMessage, FRAME_KINDS, type Frame } from '@concord/protocol'
import { mintToken, type ServerOptions } from '@concord/server'
import { createMemoryStorage } from '@concord/server/storage/memory'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import type { ConcordClient } from '@concord/client'
import { connectClient, RawNativeSocket, startServer, waitFor, type RunningServer } from './helpers.js'

/**
 * Defects of the hostile-clients issue, each tried as an attacker with an ordinary token would:
 * taking over another user's Yjs client id, poisoning Yjs's pending state with references to
 * another user's future clocks, a token revoked while its OPEN is loading, and forged or giant presence.
 */

const SECRET = 'hostile-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const DOC = 'acme/notes'

const servers: RunningServer[] = []
const clients: ConcordClient[] = []
const raws: RawNativeSocket[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const r of raws.splice(0)) r.close()
  for (const s of servers.splice(0)) await s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function start(options: ServerOptions = {}): Promise<RunningServer> {
  const s = await startServer({ auth: { secret: SECRET }, ...options })
  servers.push(s)
  return s
}

async function token(user: string, role: 'read' | 'write' = 'write', extra: Partial<Parameters<typeof mintToken>[0]> = {}): Promise<string> {
  return (await mintToken({ secret: SECRET, tenant: 'acme', userId: user, docs: { 'acme/*': role }, ...extra })).token
}

/** A raw native socket with `document` open (initial sync done). */
async function openRaw(url: string, user: string, role: 'read' | 'write' = 'write', document = DOC): Promise<RawNativeSocket> {
  const raw = await RawNativeSocket.connect(url)
  raws.push(raw)
  raw.sendFrame({ kind: FRAME_KINDS.OPEN, document, token: await token(user, role), stateVector: new Uint8Array() })
  await raw.next(FRAME_KINDS.OPENED, document)
  await raw.next(FRAME_KINDS.SYNC_STEP2, document)
  return raw
}

function errorFor(raw: RawNativeSocket, seq: number): Promise<Extract<Frame, { kind: typeof FRAME_KINDS.ERROR }>> {
  return waitFor(() => raw.frames.find(f => f.kind === FRAME_KINDS.ERROR && f.seq === seq) as Extract<Frame, { kind: typeof FRAME_KINDS.ERROR }> | undefined,
    { message: `an ERROR for seq ${seq}` })
}

function acked(raw: RawNativeSocket, seq: number): Promise<boolean> {
  return waitFor(() => raw.frames.some(f => f.kind === FRAME_KINDS.ACK && f.ranges.some(r => r.from <= seq && seq <= r.to)), { message: `ACK of seq ${seq}` })
}

/** The document as every reader sees it: the server's live copy, through the admin-free path of a fresh client. */
async function textOfFreshReader(url: string, user = 'auditor'): Promise<string> {
  const c = connectClient(url, { getToken: () => token(user, 'read') })
  clients.push(c)
  const h = c.open(DOC)
  await h.whenSynced()
  return h.doc.getText('t').toString()
}

describe('a Yjs client id belongs to the user who first wrote under it', () => {
  it('a writer who sends items under the victim\'s client id and next clocks is refused; the victim\'s re-sent offline edit is stored and attributed to the victim', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'concord-hostile-'))
    dirs.push(dir)
    let server = await start({ storage: createSqliteStorage({ dataDir: dir }) })
    const victim = connectClient(server.url, { getToken: () => token('victim') })
    clients.push(victim)
    const v = victim.open(DOC)
    await v.whenSynced()
    v.doc.getText('t').insert(0, 'hello ')
    await v.whenSaved()

    // the attacker reads the victim's client id and state off the wire and writes under the victim's next clocks
    const attacker = await openRaw(server.url, 'mallory')
    const forged = new Y.Doc()
    Y.applyUpdate(forged, Y.encodeStateAsUpdate(v.doc))
    forged.clientID = v.doc.clientID
    const before = Y.encodeStateVector(forged)
    forged.getText('t').insert(6, 'EVIL')
    attacker.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 1, update: Y.encodeStateAsUpdate(forged, before) })
    expect((await errorFor(attacker, 1)).code).toBe('CONCORD_ERR_UPDATE_FOREIGN_CLIENT')
    expect(attacker.frames.some(f => f.kind === FRAME_KINDS.ACK)).toBe(false)

    // the victim's next words (the very clocks the attacker tried to take) are stored
    v.doc.getText('t').insert(6, 'world')
    await v.whenSaved()
    expect(await textOfFreshReader(server.url)).toBe('hello world')
    const attribution = server.server.registry.peek(DOC)!.ownerOf(v.doc.clientID)
    expect(attribution).toBe('victim')

    // after a restart the binding still holds (it is stored with the document)
    victim.close()
    await server.close()
    servers.splice(servers.indexOf(server), 1)
    server = await start({ storage: createSqliteStorage({ dataDir: dir }) })
    const again = await openRaw(server.url, 'mallory')
    const later = new Y.Doc()
    Y.applyUpdate(later, Y.encodeStateAsUpdate(v.doc))
    later.clientID = v.doc.clientID
    const sv = Y.encodeStateVector(later)
    later.getText('t').insert(0, 'EVIL ')
    again.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 7, update: Y.encodeStateAsUpdate(later, sv) })
    expect((await errorFor(again, 7)).code).toBe('CONCORD_ERR_UPDATE_FOREIGN_CLIENT')
    expect(await textOfFreshReader(server.url)).toBe('hello world')
  })

  it('repeating another user\'s items that the server already has is harmless and acked (nothing new)', async () => {
    const server = await start()
    const victim = await openRaw(server.url, 'victim')
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'mine')
    const update = Y.encodeStateAsUpdate(doc)
    victim.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 1, update })
    await acked(victim, 1)
    const other = await openRaw(server.url, 'bob')
    other.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 1, update })
    await acked(other, 1)
    expect(other.frames.some(f => f.kind === FRAME_KINDS.ERROR)).toBe(false)
  })

  it('an honest collision (a replica copied with its client id to another user): the second writer gets a clear error, the SDK takes a new client id, and its later edits are saved', async () => {
    const server = await start()
    const a = connectClient(server.url, { getToken: () => token('ada') })
    clients.push(a)
    const ha = a.open(DOC)
    await ha.whenSynced()
    ha.doc.getText('t').insert(0, 'ada first')
    await ha.whenSaved()
    // bob's replica is a copy of ada's, client id and all (an app that serialised a Y.Doc with its id)
    const copy = new Y.Doc()
    Y.applyUpdate(copy, Y.encodeStateAsUpdate(ha.doc))
    copy.clientID = ha.doc.clientID
    const b = connectClient(server.url, { getToken: () => token('bob') })
    clients.push(b)
    const hb = b.open(DOC, { doc: copy })
    const errors: { code: string; seq: number }[] = []
    hb.on('error', e => errors.push(e))
    await hb.whenSynced()
    copy.getMap('m').set('bob', 'under ada\'s id')
    await hb.whenSaved()
    expect(errors.map(e => e.code)).toEqual(['CONCORD_ERR_UPDATE_FOREIGN_CLIENT'])
    expect(errors[0]!.seq).toBeGreaterThan(0)
    expect(copy.clientID).not.toBe(ha.doc.clientID)
    // presence moves to the new id with it, and ada sees it there
    expect(hb.awareness.clientID).toBe(copy.clientID)
    hb.presence.set({ cursor: 3 })
    await waitFor(() => (ha.awareness.getStates().get(copy.clientID) as { cursor?: number } | undefined)?.cursor === 3, { message: 'bob\'s presence under the new id' })
    // later edits go under the new id and are saved and seen by ada; the refused one is not
    copy.getMap('later').set('bob', 'after the collision')
    await hb.whenSaved()
    await waitFor(() => ha.doc.getMap('later').get('bob') === 'after the collision', { message: 'ada sees bob\'s later edit' })
    expect(ha.doc.getMap('m').get('bob')).toBeUndefined()
    expect(ha.doc.getText('t').toString()).toBe('ada first')
  })
})

describe('no update from one user makes another user\'s update wait, fail or reset the document', () => {
  it('an update referring to the victim\'s future clocks is refused; the victim\'s next edits are acked, nobody is reset, and a fresh load equals the live state', async () => {
    const storage = createMemoryStorage()
    const server = await start({ storage })
    const victim = await openRaw(server.url, 'victim')
    const vdoc = new Y.Doc()
    vdoc.getText('t').insert(0, 'abc')
    victim.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 1, update: Y.encodeStateAsUpdate(vdoc) })
    await acked(victim, 1)

    // the attacker invents the victim's next five clocks and types after them, sending only its own item
    const attacker = await openRaw(server.url, 'mallory')
    const future = new Y.Doc()
    Y.applyUpdate(future, Y.encodeStateAsUpdate(vdoc))
    future.clientID = vdoc.clientID
    future.getText('t').insert(3, 'ZZZZZ')
    const adoc = new Y.Doc()
    Y.applyUpdate(adoc, Y.encodeStateAsUpdate(future))
    const futureState = Y.encodeStateVector(adoc)
    adoc.getText('t').insert(8, '!')
    attacker.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 1, update: Y.encodeStateAsUpdate(adoc, futureState) })
    const refusal = await errorFor(attacker, 1)
    expect(refusal.code).toBe('CONCORD_ERR_UPDATE_OUT_OF_ORDER')
    expect(refusal.closed).toBe(false)

    // the victim types its real next clocks: acked, never reset
    const sv = Y.encodeStateVector(vdoc)
    vdoc.getMap('m').set('k', 1)
    vdoc.getText('t').insert(3, 'def')
    victim.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 2, update: Y.encodeStateAsUpdate(vdoc, sv) })
    await acked(victim, 2)
    expect(victim.frames.filter(f => f.kind === FRAME_KINDS.ERROR)).toEqual([])
    const live = server.server.registry.peek(DOC)!
    expect(live.ydoc.getText('t').toString()).toBe('abcdef')
    expect(live.ydoc.store.pendingStructs).toBeNull()
    await live.whenFlushed()
    const loaded = await storage.load(DOC)
    const fresh = new Y.Doc()
    if (loaded.snapshot) Y.applyUpdate(fresh, loaded.snapshot)
    for (const u of loaded.updates) Y.applyUpdate(fresh, u.update)
    expect(fresh.getText('t').toString()).toBe(live.ydoc.getText('t').toString())
    expect(Y.encodeStateVector(fresh)).toEqual(Y.encodeStateVector(live.ydoc))
  })

  it('nothing waits in Yjs: a writer\'s own update sent before its predecessor is refused (retryable) and taken once re-sent in order', async () => {
    const server = await start()
    const writer = await openRaw(server.url, 'ada')
    const d = new Y.Doc()
    const updates: Uint8Array[] = []
    d.on('update', (u: Uint8Array) => updates.push(u))
    d.getText('t').insert(0, 'one ')
    d.getText('t').insert(4, 'two')
    writer.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 2, update: updates[1]! })
    const refusal = await errorFor(writer, 2)
    expect(refusal.code).toBe('CONCORD_ERR_UPDATE_OUT_OF_ORDER')
    expect(refusal.closed).toBe(false)
    writer.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 1, update: updates[0]! })
    writer.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 3, update: updates[1]! })
    await acked(writer, 1)
    await acked(writer, 3)
    const live = server.server.registry.peek(DOC)!
    expect(live.ydoc.getText('t').toString()).toBe('one two')
    expect(live.ydoc.store.pendingStructs).toBeNull()
  })
})

describe('every new item sits where a real Yjs document could have put it', () => {
  it('offline writers\' merged updates are checked on a copy; past the document\'s share of such checks one is refused (retryable), and the SDK re-sends it until it is stored', async () => {
    // about 20 KB of text; 4,000 bytes a second (a 16,000-byte burst): the first check overdraws it
    const server = await start({ maxUpdateCheckBytesPerSecond: 4_000 })
    const alice = connectClient(server.url, { getToken: () => token('alice') })
    clients.push(alice)
    const a = alice.open(DOC)
    await a.whenSynced()
    a.doc.getText('t').insert(0, 'x'.repeat(20_000))
    await a.whenSaved()
    // carol and bob each type offline at the spot where alice types too; once they have her edit,
    // each types between their own text and hers, so their merged update places an item next to a
    // character it does not carry
    const base = Y.encodeStateAsUpdate(a.doc)
    const offline = (clientID: number, at: number, words: string): Y.Doc => {
      const d = new Y.Doc()
      d.clientID = clientID
      Y.applyUpdate(d, base)
      d.getText('t').insert(at, words)
      return d
    }
    const c = offline(3, 100, 'cc')
    const b = offline(4, 200, 'bb')
    const alices: Uint8Array[] = []
    a.doc.on('update', (u: Uint8Array) => alices.push(u))
    a.doc.getText('t').insert(200, 'AA')
    a.doc.getText('t').insert(100, 'AA')
    await a.whenSaved()
    for (const d of [c, b]) {
      for (const u of alices) Y.applyUpdate(d, u)
      const t = d.getText('t')
      t.insert(t.toString().indexOf(d === c ? 'ccAA' : 'bbAA') + 2, d === c ? 'C' : 'B')
    }
    const carol = connectClient(server.url, { getToken: () => token('carol') })
    const bob = connectClient(server.url, { getToken: () => token('bob') })
    clients.push(carol, bob)
    const ch = carol.open(DOC, { doc: c })
    await ch.whenSynced()
    await ch.whenSaved()
    const errors: string[] = []
    const bh = bob.open(DOC, { doc: b })
    bh.on('error', e => errors.push(e.code))
    await bh.whenSynced()
    await waitFor(() => bh.pendingCount === 0 && bh.saved, { timeoutMs: 20_000, message: () => `bob's edit saved (errors so far: ${errors.join(', ')})` })
    expect(errors.length).toBeGreaterThan(0)
    expect(new Set(errors)).toEqual(new Set(['CONCORD_ERR_LIMIT_UPDATE_CHECKS']))
    // everyone, and a newcomer loading the document afresh, reads the same text with all four edits
    const fresh = await textOfFreshReader(server.url)
    await waitFor(() => [a.doc, c, b].every(d => d.getText('t').toString() === fresh), { message: 'every copy equal to a fresh load' })
    expect(fresh).toContain('ccCAA')
    expect(fresh).toContain('bbBAA')
    expect(fresh.length).toBe(20_000 + 4 * 2 + 2)
  })
})

describe('revocation while the document loads', () => {
  it('a token revoked while its OPEN waits for the document to load never opens it and cannot write', async () => {
    const inner = createMemoryStorage()
    let release!: () => void
    const gate = new Promise<void>(r => { release = r })
    let loads = 0
    const storage = { ...inner, kind: 'memory', load: async (name: string) => { loads++; await gate; return inner.load(name) } } as typeof inner
    const server = await start({ storage })
    const minted = await mintToken({ secret: SECRET, tenant: 'acme', userId: 'mallory', docs: { 'acme/*': 'write' } })
    const raw = await RawNativeSocket.connect(server.url)
    raws.push(raw)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: DOC, token: minted.token, stateVector: new Uint8Array() })
    const d = new Y.Doc()
    d.getText('t').insert(0, 'written by a revoked token')
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: 1, update: Y.encodeStateAsUpdate(d) })
    // y-websocket too
    const yws = new WebSocket(`${server.url}/${DOC}?token=${encodeURIComponent(minted.token)}`)
    const ywsClosed = new Promise<{ code: number; reason: string }>(r => yws.on('close', (code, reason) => r({ code, reason: reason.toString() })))
    await waitFor(() => loads >= 1, { message: 'the load to start' })
    await server.server.options.authorizer.access.revokeToken(minted.id, 0, 'acme')
    release()
    const error = await raw.next(FRAME_KINDS.ERROR, DOC)
    expect(error.code).toBe('CONCORD_ERR_AUTH_REVOKED')
    expect(error.closed).toBe(true)
    expect(raw.frames.some(f => f.kind === FRAME_KINDS.OPENED || f.kind === FRAME_KINDS.ACK)).toBe(false)
    expect((await ywsClosed).reason).toBe('CONCORD_ERR_AUTH_REVOKED')
    expect(await textOfFreshReader(server.url)).toBe('')
  })
})

describe('presence is bounded, owned and carries the authenticated user', () => {
  function awarenessOf(clientID: number, state: Record<string, unknown> | null, clock = 1): Uint8Array {
    const doc = new Y.Doc()
    doc.clientID = clientID
    const a = new Awareness(doc)
    for (let i = 1; i < clock; i++) a.setLocalState({ i })
    a.setLocalState(state)
    const update = encodeAwarenessUpdate(a, [clientID])
    a.destroy()
    return update
  }

  function presenceSeenBy(raw: RawNativeSocket): Map<number, Record<string, unknown> | null> {
    const a = new Awareness(new Y.Doc())
    for (const f of raw.frames) if (f.kind === FRAME_KINDS.AWARENESS) applyAwarenessUpdate(a, f.update, 'server')
    const out = new Map<number, Record<string, unknown> | null>()
    for (const [id, meta] of a.meta) out.set(id, (a.getStates().get(id) as Record<string, unknown> | undefined) ?? (meta ? null : null))
    a.destroy()
    return out
  }

  it('a read-only session\'s 1 MB presence is refused and reaches nobody; the room\'s normal presence still flows', async () => {
    const server = await start()
    const watcher = await openRaw(server.url, 'watcher')
    const reader = await openRaw(server.url, 'mallory', 'read')
    reader.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: awarenessOf(111, { user: { name: 'x' }, junk: 'x'.repeat(1024 * 1024) }) })
    const refusal = await reader.next(FRAME_KINDS.ERROR, DOC)
    expect(refusal.code).toBe('CONCORD_ERR_LIMIT_PRESENCE')
    expect(refusal.closed).toBe(false)
    // an ordinary cursor of the same session still goes through, and the giant one never did
    reader.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: awarenessOf(111, { cursor: 5 }, 2) })
    await waitFor(() => presenceSeenBy(watcher).get(111)?.cursor === 5, { message: 'the small presence relayed' })
    const bytes = watcher.frames.filter(f => f.kind === FRAME_KINDS.AWARENESS).reduce((n, f) => n + (f as { update: Uint8Array }).update.length, 0)
    expect(bytes).toBeLessThan(64 * 1024)
  })

  it('nobody can set or clear another session\'s presence, and the relayed state names the authenticated user', async () => {
    const server = await start()
    const ada = await openRaw(server.url, 'ada')
    const watcher = await openRaw(server.url, 'watcher')
    const mallory = await openRaw(server.url, 'mallory')
    ada.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: awarenessOf(1001, { user: { name: 'Ada' }, cursor: 1 }) })
    await waitFor(() => presenceSeenBy(watcher).get(1001)?.cursor === 1, { message: 'ada\'s cursor' })
    // mallory overwrites ada's state with a higher clock, then clears it, then shows a cursor under ada's name and id
    mallory.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: awarenessOf(1001, { user: { name: 'Ada', id: 'ada' }, cursor: 99 }, 5) })
    mallory.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: awarenessOf(1001, null, 9) })
    mallory.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: awarenessOf(2002, { user: { name: 'Ada', id: 'ada' }, cursor: 7 }) })
    await waitFor(() => presenceSeenBy(watcher).get(2002)?.cursor === 7, { message: 'mallory\'s own cursor' })
    const seen = presenceSeenBy(watcher)
    expect(seen.get(1001)).toEqual({ user: { name: 'Ada', id: 'ada' }, cursor: 1 })
    expect((seen.get(2002)!.user as { id: string }).id).toBe('mallory')
  })

  it('a stock y-websocket client keeps its own presence and cannot change others\' (its provider echoes everyone\'s)', async () => {
    const server = await start()
    const ada = await openRaw(server.url, 'ada')
    ada.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: awarenessOf(1001, { cursor: 1 }) })
    const ws = new WebSocket(`${server.url}/${DOC}?token=${encodeURIComponent(await token('mallory'))}`)
    const got: Uint8Array[] = []
    ws.on('message', (data: Buffer) => { const m = decodeYMessage(new Uint8Array(data)); if (m.type === 'awareness') got.push(m.update) })
    await new Promise(r => ws.once('open', r))
    ws.send(encodeYMessage({ type: 'awareness', update: awarenessOf(1001, null, 3) }))
    ws.send(encodeYMessage({ type: 'awareness', update: awarenessOf(3003, { cursor: 3 }) }))
    await waitFor(() => presenceSeenBy(ada).get(3003)?.cursor === 3, { message: 'the y-websocket client\'s own cursor' })
    expect(presenceSeenBy(ada).get(1001)).toEqual({ cursor: 1, user: { id: 'ada' } })
    expect(ws.readyState).toBe(WebSocket.OPEN)
    ws.close()
  })
})
