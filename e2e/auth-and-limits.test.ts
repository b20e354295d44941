import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { ConcordError, FRAME_KINDS, decodeYMessage } from '@concord/protocol'
import type { Authenticate } from '@concord/server'
import { connectClient, RawNativeSocket, startServer, waitFor, cleanupAfterEach } from './helpers.js'

const live = cleanupAfterEach()

/** Test authenticator: token "writer" may write, "reader" may read, anything else is refused. */
const byToken: Authenticate = ({ token }) => {
  if (token === 'writer') return { userId: 'w', role: 'write' }
  if (token === 'reader') return { userId: 'r', role: 'read' }
  throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'unknown token')
}

describe('the per-document token and the refusal path', () => {
  it('native: a refused token gets CONCORD_ERR_AUTH_DENIED for that document only; a read session cannot write', async () => {
    live.server = await startServer({ onAuthenticate: byToken })
    const raw = await RawNativeSocket.connect(live.server.url)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'secret', token: 'wrong', stateVector: new Uint8Array() })
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'open-to-readers', token: 'reader', stateVector: new Uint8Array() })
    expect(await raw.next(FRAME_KINDS.ERROR, 'secret')).toMatchObject({ code: 'CONCORD_ERR_AUTH_DENIED', closed: true })
    expect(await raw.next(FRAME_KINDS.OPENED, 'open-to-readers')).toMatchObject({ role: 'read' })
    const d = new Y.Doc()
    d.getText('t').insert(0, 'sneaky')
    raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document: 'open-to-readers', seq: 4, update: Y.encodeStateAsUpdate(d) })
    expect(await raw.next(FRAME_KINDS.ERROR, 'open-to-readers')).toMatchObject({ code: 'CONCORD_ERR_AUTH_FORBIDDEN', seq: 4, closed: false })
    expect(live.server.server.registry.peek('open-to-readers')?.ydoc.getText('t').toString()).toBe('')
    expect(live.server.server.registry.peek('secret')).toBeNull()
    expect(raw.closeCode).toBeNull()
    raw.close()
  })

  it('client: the token comes from getToken for each document; the read-only handle still receives updates', async () => {
    live.server = await startServer({ onAuthenticate: byToken })
    const writer = connectClient(live.server.url, { getToken: () => 'writer' })
    const reader = connectClient(live.server.url, { token: 'reader' })
    live.clients.push(writer, reader)
    const w = writer.open('shared')
    const r = reader.open('shared')
    await Promise.all([w.whenSynced(), r.whenSynced()])
    expect([w.role, r.role]).toEqual(['write', 'read'])
    w.doc.getText('t').insert(0, 'from the writer')
    await waitFor(() => r.doc.getText('t').toString() === 'from the writer')
    const errors: { code: string; seq: number }[] = []
    r.on('error', e => errors.push(e))
    r.doc.getText('t').insert(0, 'reader edit ')
    await waitFor(() => errors.length > 0)
    expect(errors[0]).toMatchObject({ code: 'CONCORD_ERR_AUTH_FORBIDDEN' })
    expect(live.server.server.registry.peek('shared')?.ydoc.getText('t').toString()).toBe('from the writer')
    expect(w.doc.getText('t').toString()).toBe('from the writer')
    await r.whenSaved()
    // after a reconnect the read-only handle offers nothing again: no new errors
    reader.reconnect()
    await waitFor(() => r.status === 'synced' && reader.status === 'connected', { message: () => `reader synced again (${r.status}, ${reader.status})` })
    w.doc.getText('t').insert(0, '> ')
    // its refused edit stays in its own copy; the writer's edit arrives next to it
    await waitFor(() => r.doc.getText('t').toString().replace('reader edit ', '') === '> from the writer', { message: () => `the reader receives the new edit (${r.doc.getText('t').toString()})` })
    expect(errors).toHaveLength(1)
  })

  it('y-websocket: the token is the `token` query parameter; a refused one gets permission-denied and close 4401', async () => {
    live.server = await startServer({ onAuthenticate: byToken })
    const ws = new WebSocket(`${live.server.url}/secret?token=nope`)
    const messages: Uint8Array[] = []
    ws.on('message', (d: Buffer) => messages.push(new Uint8Array(d)))
    const closed = await new Promise<{ code: number; reason: string }>(resolve => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    expect(closed).toEqual({ code: 4401, reason: 'CONCORD_ERR_AUTH_DENIED' })
    expect(messages.map(m => decodeYMessage(m))).toEqual([{ type: 'permission-denied', reason: 'CONCORD_ERR_AUTH_DENIED' }])
    const ok = new WebSocket(`${live.server.url}/secret?token=writer`)
    const first = await new Promise<Uint8Array>(resolve => ok.once('message', (d: Buffer) => resolve(new Uint8Array(d))))
    expect(decodeYMessage(first).type).toBe('sync-step1')
    ok.close()
  })

  it('y-websocket: a read-only stock provider syncs and sees edits without a spurious permission-denied', async () => {
    live.server = await startServer({ onAuthenticate: byToken })
    const { WebsocketProvider } = await import('y-websocket')
    const Y = await import('yjs')
    const writerDoc = new Y.Doc()
    const readerDoc = new Y.Doc()
    const writer = new WebsocketProvider(live.server.url, 'ro-room', writerDoc, { WebSocketPolyfill: WebSocket as never, disableBc: true, params: { token: 'writer' } })
    try {
      writerDoc.getText('t').insert(0, 'abc def')
      writerDoc.getText('t').delete(0, 4) // a delete set for the reader's step 2 to carry
      await waitFor(() => writer.synced && live.server!.server.registry.peek('ro-room')?.ydoc.getText('t').toString() === 'def')
      const reader = new WebsocketProvider(live.server.url, 'ro-room', readerDoc, { WebSocketPolyfill: WebSocket as never, disableBc: true, params: { token: 'reader' } })
      const denied: string[] = []
      reader.on('connection-close', () => undefined)
      try {
        ;(reader as unknown as { messageHandlers: ((enc: unknown, dec: { arr: Uint8Array; pos: number }) => void)[] }).messageHandlers[2] = (_enc: unknown, dec: { arr: Uint8Array; pos: number }) => {
          denied.push(new TextDecoder().decode(dec.arr.subarray(dec.pos)))
        }
        await waitFor(() => reader.synced && readerDoc.getText('t').toString() === 'def', { message: 'reader synced' })
        writerDoc.getText('t').insert(0, 'new ')
        await waitFor(() => readerDoc.getText('t').toString() === 'new def', { message: 'reader sees the edit' })
        expect(denied).toEqual([])
        // a real write attempt from the reader is refused
        readerDoc.getText('t').insert(0, 'x')
        await waitFor(() => denied.length === 1, { message: 'permission denied for the write' })
        expect(denied[0]).toContain('CONCORD_ERR_AUTH_FORBIDDEN')
        expect(live.server.server.registry.peek('ro-room')?.ydoc.getText('t').toString()).toBe('new def')
      } finally {
        reader.destroy()
      }
    } finally {
      writer.destroy()
    }
  })

  it('an authenticate hook that does not answer in time is refused with CONCORD_ERR_AUTH_TIMEOUT, and frames queued meanwhile are bounded', async () => {
    live.server = await startServer({
      onAuthenticate: () => new Promise(() => undefined),
      authTimeoutMs: 300,
      maxQueuedMessagesBeforeOpen: 20,
    })
    const raw = await RawNativeSocket.connect(live.server.url)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'slow', token: 't', stateVector: new Uint8Array() })
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'flood', token: 't', stateVector: new Uint8Array() })
    for (let i = 0; i < 25; i++) raw.sendFrame({ kind: FRAME_KINDS.QUERY_AWARENESS, document: 'flood' })
    expect(await raw.next(FRAME_KINDS.ERROR, 'flood')).toMatchObject({ code: 'CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE', closed: true })
    expect(await raw.next(FRAME_KINDS.ERROR, 'slow')).toMatchObject({ code: 'CONCORD_ERR_AUTH_TIMEOUT', closed: true })
    expect(raw.closeCode).toBeNull()
    raw.close()
  })

  it('bytes queued for a refused OPEN no longer count against the socket', async () => {
    live.server = await startServer({ onAuthenticate: byToken, maxQueuedBytesBeforeOpen: 2_000 })
    const raw = await RawNativeSocket.connect(live.server.url)
    const presence = (document: string) => ({ kind: FRAME_KINDS.AWARENESS, document, update: new Uint8Array(500) } as const)
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'secret', token: 'wrong', stateVector: new Uint8Array() })
    for (let i = 0; i < 3; i++) raw.sendFrame(presence('secret'))
    expect(await raw.next(FRAME_KINDS.ERROR, 'secret')).toMatchObject({ code: 'CONCORD_ERR_AUTH_DENIED' })
    raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: 'fine', token: 'reader', stateVector: new Uint8Array() })
    for (let i = 0; i < 3; i++) raw.sendFrame({ kind: FRAME_KINDS.QUERY_AWARENESS, document: 'fine' })
    expect(await raw.next(FRAME_KINDS.OPENED, 'fine')).toMatchObject({ role: 'read' })
    expect(raw.frames.filter(f => f.kind === FRAME_KINDS.ERROR && f.code === 'CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE')).toEqual([])
    raw.close()
  })

  it('too many documents opening at once closes the socket with 4529; too many open documents is a document error', async () => {
    live.server = await startServer({ onAuthenticate: () => new Promise(() => undefined), authTimeoutMs: 2_000, maxPendingDocuments: 3 })
    const raw = await RawNativeSocket.connect(live.server.url)
    for (let i = 0; i < 4; i++) raw.sendFrame({ kind: FRAME_KINDS.OPEN, document: `p${i}`, token: '', stateVector: new Uint8Array() })
    expect(await raw.closed).toEqual({ code: 4529, reason: 'CONCORD_ERR_LIMIT_PENDING_DOCUMENTS' })
    await live.server.close()

    live.server = await startServer({ maxDocumentsPerConnection: 2 })
    const c = await RawNativeSocket.connect(live.server.url)
    for (const n of ['a', 'b', 'c']) c.sendFrame({ kind: FRAME_KINDS.OPEN, document: n, token: '', stateVector: new Uint8Array() })
    expect(await c.next(FRAME_KINDS.ERROR, 'c')).toMatchObject({ code: 'CONCORD_ERR_LIMIT_DOCUMENTS_PER_CONNECTION', closed: true })
    await c.next(FRAME_KINDS.SYNC_STEP2, 'b')
    c.close()
  })
})
