import { afterEach, describe, expect, it, vi } from 'vitest'
import type { IncomingMessage } from 'node:http'
import { ConcordError, type Role } from '@concord/protocol'
import { AccessControl } from '../auth/access-control.js'
import type { SessionGrant } from '../auth/session-guard.js'
import { SharedMessage } from '../documents/shared-message.js'
import type { GatewayMetrics } from './gateway-deps.js'
import { SocketSender } from './socket-sender.js'
import { FakeSocket, FakeSource, recordingLog } from './testing.js'
import { noteClose, TransportSession, type SessionSocket, type TransportSessionDeps } from './transport-session.js'

function grantOf(role: Role, expiresAt: number | null = null): SessionGrant {
  return { tenant: null, userId: 'ada', tokenId: null, shareId: null, role, credentialRole: role, expiresAt }
}

/** The framing of a test transport: every send is recorded by name. */
class TestSession extends TransportSession<string> {
  readonly protocol = 'native'
  readonly out: string[] = []
  readonly handled: string[] = []
  readonly refusals: ConcordError[] = []
  readonly revocations: ConcordError[] = []

  protected refused(error: ConcordError): void { this.refusals.push(error); this.end() }
  protected handle(message: string): void {
    this.handled.push(message)
    if (message.startsWith('write')) this.write(1, new TextEncoder().encode(message))
    if (message === 'empty') this.write(0, new Uint8Array([0, 0]))
    if (message === 'empty-acked') this.write(7, new Uint8Array([0, 0]))
    if (message === 'delete-only') this.write(0, new Uint8Array([0, 1, 5, 1, 0, 1]))
    if (message === 'presence') this.applyPresence(new Uint8Array([1]))
    if (message === 'step1') this.requestSync(new Uint8Array([7]), () => this.out.push('malformed'))
  }
  protected sendShared(message: SharedMessage): void { this.#send(`shared:${message.kind}`) }
  protected sendUpdateBytes(update: Uint8Array): void { this.#send(`update:${update.length}`) }
  protected sendStep1(): void { this.#send('step1') }
  protected sendStep2(update: Uint8Array): void { this.#send(`step2:${[...update].join(',')}`) }
  protected sendPresence(): void { this.#send('presence') }
  /** Each role change: the role and expiry it gives, and the role and expiry the session reads meanwhile. */
  readonly roleChanges: string[] = []

  revoke(error: ConcordError): void { this.revocations.push(error); this.end() }
  changeRole(role: Role, expiresAt: number | null): void {
    this.roleChanges.push(`${role} ${expiresAt} (reads ${this.role} ${this.expiresAt})`)
  }
  /** What native AUTH does with a refreshed credential. */
  refresh(grant: SessionGrant): void { this.replaceGrant(grant) }
  ack(): void {}
  documentError(): void { this.end() }

  #send(what: string): void {
    this.out.push(what)
    this.sender.send(new Uint8Array(1))
  }

  /** What a transport does with a message (see NativeDocSession.receive). */
  receive(message: string): boolean {
    if (this.isOpen) {
      this.handle(message)
      return true
    }
    return this.queue(message, message.length)
  }

  /** What a transport does once `open` returned true. */
  start(): void {
    this.sendPresenceSnapshot()
    this.join()
    this.sendStep1WhenIntegrated()
  }
}

function setup(options: { grant?: () => Promise<SessionGrant>; maxQueuedMessages?: number; maxQueuedBytes?: number } = {}) {
  const socket = new FakeSocket()
  const log = recordingLog()
  const closes: ConcordError[] = []
  const sender = new SocketSender(socket, { close: e => closes.push(e) }, { chunkBytes: 0, maxBufferedBytes: 1e6, slowReaderStallMs: 10_000, backpressureBytes: 100 })
  const on: SessionSocket = { sender, log, queuedBytes: 0 }
  const source = new FakeSource()
  const refusedCodes: string[] = []
  const metrics = { message() {}, refused: (code: string) => refusedCodes.push(code), syncStep1Coalesced: { inc() {} } } as unknown as GatewayMetrics
  const deps: TransportSessionDeps = {
    documents: source, metrics,
    authorizer: { grant: options.grant ?? (async () => grantOf('write')), access: AccessControl.inMemory() },
    config: { maxQueuedMessagesBeforeOpen: options.maxQueuedMessages ?? 100, maxQueuedBytesBeforeOpen: options.maxQueuedBytes ?? 1_000, maxStatelessBytes: 1024, statelessPerSecond: 10 },
  }
  const session = new TestSession('c1/doc', 'doc', on, deps)
  return { socket, log, on, source, deps, session, refusedCodes, closes, metrics }
}

const request = {} as IncomingMessage

/** Let the grant's promise settle (the test's authorizer answers at once). */
async function untilAcquiring(source: FakeSource): Promise<void> {
  for (let i = 0; i < 100 && source.acquires === 0; i++) await Promise.resolve()
  expect(source.acquires).toBe(1)
}

/** Open `session` (its document loaded once asked for) and start it. */
async function openAndStart(session: { open: (token: string, req: IncomingMessage) => Promise<boolean>; start: () => void }, source: FakeSource): Promise<void> {
  const opening = session.open('token', request)
  await untilAcquiring(source)
  source.load()
  expect(await opening).toBe(true)
  session.start()
}

describe('TransportSession', () => {
  afterEach(() => { vi.useRealTimers() })

  it('queues what arrives before the document is open and handles it, in order, once joined', async () => {
    const { session, source, on } = setup()
    const opening = session.open('token', request)
    expect(session.receive('write-1')).toBe(true)
    expect(session.receive('presence')).toBe(true)
    expect(on.queuedBytes).toBe('write-1'.length + 'presence'.length)
    await untilAcquiring(source)
    source.load()
    expect(await opening).toBe(true)
    expect(session.handled).toEqual([])
    session.start()
    expect(session.handled).toEqual(['write-1', 'presence'])
    expect(on.queuedBytes).toBe(0)
    expect(source.doc.sessions.has(session)).toBe(true)
    expect(source.doc.writes).toHaveLength(1)
    expect(source.doc.presenceUpdates).toEqual([[1]])
    expect(session.out).toEqual(['step1'])
    expect(session.role).toBe('write')
    expect(session.userId).toBe('ada')
    // open: handled at once
    session.receive('write-2')
    expect(source.doc.writes).toHaveLength(2)
  })

  it('bounds the queue per session, and for all opening sessions of the socket together', () => {
    const { session, on, deps } = setup({ maxQueuedMessages: 2, maxQueuedBytes: 20 })
    expect(session.receive('a')).toBe(true)
    expect(session.receive('b')).toBe(true)
    expect(session.receive('c')).toBe(false)
    const other = new TestSession('c1/other', 'other', on, deps)
    // the socket already holds 3 bytes of the first session's
    expect(other.receive('x'.repeat(17))).toBe(true)
    expect(other.receive('y')).toBe(false)
    session.end()
    other.end()
    expect(on.queuedBytes).toBe(0)
  })

  it('a load failure is logged once with the storage\'s error and refused with CONCORD_ERR_DOC_LOAD_FAILED', async () => {
    const { session, source, log, on } = setup()
    session.receive('write-1')
    const opening = session.open('token', request)
    await untilAcquiring(source)
    const cause = new Error('disk on fire')
    source.fail(cause)
    expect(await opening).toBe(false)
    expect(log.entries.filter(e => e[0] === 'error')).toEqual([['error', { err: cause, document: 'doc' }, 'document load failed']])
    expect(session.refusals.map(e => [e.code, e.message])).toEqual([['CONCORD_ERR_DOC_LOAD_FAILED', 'could not load document: disk on fire']])
    expect(session.closed).toBe(true)
    expect(on.queuedBytes).toBe(0)
  })

  it('a refused grant is passed on with its code, and the document is never loaded', async () => {
    const { session, source } = setup({ grant: async () => { throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'no') } })
    expect(await session.open('token', request)).toBe(false)
    expect(session.refusals.map(e => e.code)).toEqual(['CONCORD_ERR_AUTH_DENIED'])
    expect(source.acquires).toBe(0)
  })

  it('a session that ended while its document loaded releases the lease at once', async () => {
    const { session, source } = setup()
    const opening = session.open('token', request)
    await untilAcquiring(source)
    session.end()
    source.load()
    expect(await opening).toBe(false)
    expect(source.releases).toBe(1)
    expect(session.refusals).toEqual([])
    expect(source.doc.sessions.size).toBe(0)
  })

  it('a grant that expired while the document loaded is revoked, and the lease released', async () => {
    const { session, source } = setup({ grant: async () => grantOf('write', Date.now() - 1) })
    const opening = session.open('token', request)
    await untilAcquiring(source)
    source.load()
    expect(await opening).toBe(false)
    expect(session.revocations.map(e => e.code)).toEqual(['CONCORD_ERR_AUTH_EXPIRED'])
    expect(source.releases).toBe(1)
  })

  it('ending leaves the document and releases the lease, once', async () => {
    const { session, source, log } = setup()
    await openAndStart(session, source)
    session.end()
    session.end()
    expect(source.doc.sessions.size).toBe(0)
    expect(source.releases).toBe(1)
    expect(log.entries.filter(e => e[2] === 'session closed')).toHaveLength(1)
    expect(session.closed).toBe(true)
  })

  it('answers a sync step 1 with the reply\'s updates first, then step 2', async () => {
    const { session, source } = setup()
    await openAndStart(session, source)
    session.receive('step1')
    expect(session.out).toEqual(['step1', 'update:1', 'step2:7'])
  })

  it('holds updates and presence while the socket is congested, and sends them merged once it drained', async () => {
    const { session, source, socket } = setup()
    await openAndStart(session, source)
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    source.doc.awareness = new Uint8Array([5])
    session.sendUpdate(new SharedMessage('update', 'doc', new Uint8Array([0, 0])))
    expect(session.out).toEqual(['step1', 'shared:update'])
    socket.bufferedAmount = 1_000
    session.sendUpdate(new SharedMessage('update', 'doc', new Uint8Array([0, 0])))
    session.sendAwareness(new SharedMessage('awareness', 'doc', new Uint8Array([1])))
    expect(session.out).toEqual(['step1', 'shared:update'])
    socket.bufferedAmount = 0
    vi.advanceTimersByTime(20)
    expect(session.out).toEqual(['step1', 'shared:update', 'update:2', 'presence'])
    // drained: sent at once again
    session.sendAwareness(new SharedMessage('awareness', 'doc', new Uint8Array([1])))
    expect(session.out.at(-1)).toBe('shared:awareness')
  })

  it('an administrator\'s role changes and revocation reach an open session without an expiry, each time, with the new role in force', async () => {
    const { session, source, deps } = setup()
    const access = deps.authorizer.access
    await openAndStart(session, source)
    await access.setRole('', 'ada', 'doc', 'read')
    session.accessChanged({ kind: 'role', tenant: '', userId: 'ada', pattern: 'doc' })
    expect(session.role).toBe('read')
    await access.setRole('', 'ada', 'doc', null)
    session.accessChanged({ kind: 'role', tenant: '', userId: 'ada', pattern: 'doc' })
    expect(session.role).toBe('write')
    expect(session.roleChanges).toEqual(['read null (reads read null)', 'write null (reads write null)'])
    // a change for someone else is not this session's
    await access.revokeUser('', 'bob')
    session.accessChanged({ kind: 'revoked-user', tenant: '', userId: 'bob' })
    expect(session.revocations).toEqual([])
    await access.revokeUser('', 'ada')
    session.accessChanged({ kind: 'revoked-user', tenant: '', userId: 'ada' })
    expect(session.revocations.map(e => e.code)).toEqual(['CONCORD_ERR_AUTH_REVOKED'])
    expect(session.closed).toBe(true)
    expect(source.releases).toBe(1)
    // ended: later changes are not its concern
    session.accessChanged({ kind: 'all' })
    expect(session.revocations).toHaveLength(1)
    expect(session.roleChanges).toHaveLength(2)
  })

  it('a credential refreshed with an expiry cuts the session off when it expires; refreshed again without one, it never does', async () => {
    const { session, source } = setup()
    await openAndStart(session, source)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const at = Date.now() + 1_000
    session.refresh(grantOf('read', at))
    expect(session.role).toBe('read')
    expect(session.roleChanges).toEqual([`read ${at} (reads read ${at})`])
    vi.advanceTimersByTime(999)
    expect(session.revocations).toEqual([])
    vi.advanceTimersByTime(1)
    expect(session.revocations.map(e => e.code)).toEqual(['CONCORD_ERR_AUTH_EXPIRED'])

    const other = setup()
    const opening2 = other.session.open('token', request)
    await untilAcquiring(other.source)
    other.source.load()
    expect(await opening2).toBe(true)
    other.session.start()
    other.session.refresh(grantOf('write', Date.now() + 1_000))
    other.session.refresh(grantOf('write'))
    expect(other.session.roleChanges.at(-1)).toBe('write null (reads write null)')
    vi.advanceTimersByTime(10_000)
    expect(other.session.revocations).toEqual([])
    expect(other.session.closed).toBe(false)
  })

  it('a session answers a sync step 1 again after its earlier reply went out', async () => {
    const { session, source } = setup()
    await openAndStart(session, source)
    session.receive('step1')
    await new Promise(r => setImmediate(r))
    session.receive('step1')
    await new Promise(r => setImmediate(r))
    session.receive('step1')
    expect(session.out).toEqual(['step1', 'update:1', 'step2:7', 'update:1', 'step2:7', 'update:1', 'step2:7'])
  })

  it('an update that holds nothing is not handed to the document unless an ack is wanted for it', async () => {
    const { session, source } = setup()
    await openAndStart(session, source)
    session.receive('empty')
    expect(source.doc.writes).toEqual([])
    session.receive('empty-acked')
    session.receive('delete-only')
    expect(source.doc.writes).toEqual([[0, 0], [0, 1, 5, 1, 0, 1]])
  })

  it('sends nothing once ended', () => {
    const { session } = setup()
    session.end()
    session.sendUpdate(new SharedMessage('update', 'doc', new Uint8Array([0, 0])))
    session.sendAwareness(new SharedMessage('awareness', 'doc', new Uint8Array([1])))
    expect(session.out).toEqual([])
  })
})

describe('noteClose', () => {
  it('counts the code and logs it with its reason; at debug when the server shuts down', () => {
    const log = recordingLog()
    const refused: string[] = []
    const metrics = { refused: (code: string) => refused.push(code) } as unknown as GatewayMetrics
    noteClose(new ConcordError('CONCORD_ERR_LIMIT_RATE', 'too fast'), log, metrics)
    noteClose(new ConcordError('CONCORD_ERR_SERVER_SHUTTING_DOWN', 'bye'), log, metrics)
    expect(refused).toEqual(['CONCORD_ERR_LIMIT_RATE', 'CONCORD_ERR_SERVER_SHUTTING_DOWN'])
    expect(log.entries).toEqual([
      ['info', { code: 'CONCORD_ERR_LIMIT_RATE', reason: 'too fast' }, 'closing connection'],
      ['debug', { code: 'CONCORD_ERR_SERVER_SHUTTING_DOWN', reason: 'bye' }, 'closing connection'],
    ])
  })
})
