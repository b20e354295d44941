import { afterEach, describe, expect, it } from 'vitest'
import type { IncomingMessage } from 'node:http'
import {
  ConcordError, decodeFrame, decodeYMessage, encodeFrame, encodeYMessage, FRAME_KINDS, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
  type Frame, type YMessage,
} from '@concord/protocol'
import { AccessControl } from '../auth/access-control.js'
import { DEFAULTS } from '../config/server-config.js'
import type { ConnectionDeps } from './connection-deps.js'
import type { GatewayMetrics } from './gateway-deps.js'
import { NativeConnection } from './native-transport.js'
import { YWebsocketConnection } from './y-websocket-transport.js'
import { FakeSocket, FakeSource, recordingLog } from './testing.js'

const request = {} as IncomingMessage
const cleanups: (() => void)[] = []
afterEach(() => { for (const c of cleanups.splice(0)) c() })

function depsOf(source: FakeSource, grant: () => Promise<never> | Promise<ReturnType<typeof writer>> = async () => writer()): { deps: ConnectionDeps; log: ReturnType<typeof recordingLog>; refused: string[] } {
  const log = recordingLog()
  const refused: string[] = []
  const metrics = { message() {}, refused: (code: string) => refused.push(code), syncStep1Coalesced: { inc() {} } } as unknown as GatewayMetrics
  const deps: ConnectionDeps = {
    config: { ...DEFAULTS, maxQueuedMessagesBeforeOpen: 3 }, documents: source, metrics, logger: log,
    authorizer: { grant, access: AccessControl.inMemory() },
  }
  return { deps, log, refused }
}

function writer(): { tenant: null; userId: string; tokenId: null; shareId: null; role: 'write'; credentialRole: 'write'; expiresAt: null } {
  return { tenant: null, userId: 'ada', tokenId: null, shareId: null, role: 'write', credentialRole: 'write', expiresAt: null }
}

/** Wait (a bounded number of microtask turns) until `done` holds. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !done(); i++) await new Promise(resolve => setImmediate(resolve))
  expect(done()).toBe(true)
}

const frames = (socket: FakeSocket): Frame[] => socket.sent.map(f => decodeFrame(f.data) as Frame)
const messages = (socket: FakeSocket): YMessage[] => socket.sent.map(f => decodeYMessage(f.data))

describe('NativeConnection (fake socket)', () => {
  function connect(source = new FakeSource()) {
    const socket = new FakeSocket()
    const { deps, log, refused } = depsOf(source)
    const conn = new NativeConnection(socket, request, deps, 'c1')
    cleanups.push(() => conn.close())
    conn.receive(encodeFrame({ kind: FRAME_KINDS.HELLO, document: '', minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, client: 'test' }))
    return { socket, conn, source, log, refused }
  }

  it('opens a document: WELCOME, then OPENED, the sync reply and the server\'s step 1; frames sent meanwhile are handled after', async () => {
    const { socket, conn, source } = connect()
    conn.receive(encodeFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: 't', stateVector: new Uint8Array() }))
    conn.receive(encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'doc', seq: 1, update: new Uint8Array([1, 2]) }))
    expect(conn.heldBytes).toBeGreaterThan(0)
    await until(() => source.acquires === 1)
    source.load()
    await until(() => source.doc.writes.length === 1)
    expect(frames(socket).map(f => f.kind)).toEqual([FRAME_KINDS.WELCOME, FRAME_KINDS.OPENED, FRAME_KINDS.UPDATE, FRAME_KINDS.SYNC_STEP2, FRAME_KINDS.SYNC_STEP1])
    expect(source.doc.writes).toEqual([[1, 2]])
    expect(conn.heldBytes).toBe(0)
    conn.receive(encodeFrame({ kind: FRAME_KINDS.CLOSE, document: 'doc' }))
    expect(source.releases).toBe(1)
  })

  it('a load failure is answered in-band for that document, logged once, and the socket stays open', async () => {
    const { socket, conn, source, log } = connect()
    conn.receive(encodeFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: 't', stateVector: new Uint8Array() }))
    await until(() => source.acquires === 1)
    source.fail(new Error('disk on fire'))
    await until(() => socket.sent.length === 2)
    const error = frames(socket)[1]!
    expect(error).toMatchObject({ kind: FRAME_KINDS.ERROR, document: 'doc', code: 'CONCORD_ERR_DOC_LOAD_FAILED', closed: true })
    expect(log.entries.filter(e => e[0] === 'error').map(e => e[2])).toEqual(['document load failed'])
    expect(log.entries.filter(e => e[2] === 'open refused')).toEqual([])
    expect(socket.closedWith).toBeNull()
    // the name is free again
    conn.receive(encodeFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: 't', stateVector: new Uint8Array() }))
    await until(() => source.acquires === 2)
  })

  it('too many frames before OPEN is accepted ends that document with CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE', async () => {
    const { socket, conn, source } = connect()
    conn.receive(encodeFrame({ kind: FRAME_KINDS.OPEN, document: 'doc', token: 't', stateVector: new Uint8Array() }))
    for (let seq = 1; seq <= 4; seq++) conn.receive(encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'doc', seq, update: new Uint8Array([1]) }))
    expect(frames(socket).at(-1)).toMatchObject({ kind: FRAME_KINDS.ERROR, code: 'CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE', closed: true })
    expect(conn.heldBytes).toBe(0)
    // the session ended while it was being granted: its document is never loaded
    await new Promise(resolve => setImmediate(resolve))
    expect(source.acquires).toBe(0)
  })

  it('a connection-level failure closes the socket with the error\'s close code and its code as the reason', () => {
    const { socket, conn } = connect()
    conn.close(new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME', 'bad'))
    expect(socket.closedWith).toEqual({ code: new ConcordError('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME').closeCode, reason: 'CONCORD_ERR_PROTOCOL_MALFORMED_FRAME' })
  })
})

describe('YWebsocketConnection (fake socket)', () => {
  it('joins its room: presence and sync reply first, then the server\'s step 1', async () => {
    const socket = new FakeSocket()
    const source = new FakeSource()
    source.doc.awareness = new Uint8Array([0])
    const { deps } = depsOf(source)
    const conn = new YWebsocketConnection(socket, request, deps, 'c1', 'doc', 't')
    cleanups.push(() => conn.close())
    conn.receive(encodeYMessage({ type: 'sync-step1', stateVector: new Uint8Array([0]) }))
    await until(() => source.acquires === 1)
    source.load()
    await until(() => socket.sent.length === 4)
    expect(messages(socket).map(m => m.type)).toEqual(['awareness', 'update', 'sync-step2', 'sync-step1'])
    conn.receive(encodeYMessage({ type: 'update', update: new Uint8Array([3]) }))
    expect(source.doc.writes).toEqual([[3]])
    conn.close()
    expect(socket.closedWith).toEqual({ code: 1000, reason: undefined })
    expect(source.releases).toBe(1)
  })

  it('a load failure closes the socket with CONCORD_ERR_DOC_LOAD_FAILED, logged once', async () => {
    const socket = new FakeSocket()
    const source = new FakeSource()
    const { deps, log, refused } = depsOf(source)
    new YWebsocketConnection(socket, request, deps, 'c1', 'doc', 't')
    await until(() => source.acquires === 1)
    source.fail(new Error('disk on fire'))
    await until(() => socket.closedWith !== null)
    expect(socket.closedWith!.reason).toBe('CONCORD_ERR_DOC_LOAD_FAILED')
    expect(log.entries.filter(e => e[0] === 'error').map(e => e[2])).toEqual(['document load failed'])
    expect(log.entries.filter(e => e[2] === 'closing connection').map(e => e[1])).toEqual([
      { code: 'CONCORD_ERR_DOC_LOAD_FAILED', reason: 'could not load document: disk on fire' },
    ])
    expect(refused).toEqual(['CONCORD_ERR_DOC_LOAD_FAILED'])
  })

  it('a denied token gets permission-denied, then the coded close', async () => {
    const socket = new FakeSocket()
    const source = new FakeSource()
    const { deps } = depsOf(source, async () => { throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'no') })
    new YWebsocketConnection(socket, request, deps, 'c1', 'doc', 't')
    await until(() => socket.closedWith !== null)
    expect(messages(socket)).toEqual([{ type: 'permission-denied', reason: 'CONCORD_ERR_AUTH_DENIED' }])
    expect(socket.closedWith!.reason).toBe('CONCORD_ERR_AUTH_DENIED')
    expect(source.acquires).toBe(0)
  })

  it('too many messages before the room is open closes with CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE', async () => {
    const socket = new FakeSocket()
    const source = new FakeSource()
    const { deps } = depsOf(source)
    const conn = new YWebsocketConnection(socket, request, deps, 'c1', 'doc', 't')
    for (let i = 0; i < 4; i++) conn.receive(encodeYMessage({ type: 'update', update: new Uint8Array([i]) }))
    expect(socket.closedWith?.reason).toBe('CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE')
    expect(conn.heldBytes).toBe(0)
    // the session ended while it was being granted: its document is never loaded
    await new Promise(resolve => setImmediate(resolve))
    expect(source.acquires).toBe(0)
  })
})
