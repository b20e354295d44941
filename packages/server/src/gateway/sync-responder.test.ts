import { describe, it, expect } from 'vitest'
import { SyncResponder, type SyncReplySource } from './sync-responder.js'
import type { SyncReply } from '../documents/sync-replies.js'
import type { SocketSender } from './socket-sender.js'
import { ServerMetrics } from '../ops/metrics.js'

/** A socket that is congested until `drain()` is called. */
class FakeSender {
  congested = false
  #waiters: (() => void)[] = []
  whenDrained(fn: () => void): void { this.#waiters.push(fn) }
  drain(): void {
    this.congested = false
    for (const w of this.#waiters.splice(0)) w()
  }
}

/** A document that answers with the state vector it was asked for (as step 2), now or when `resolve` is called. */
class FakeDocument implements SyncReplySource {
  asked: (Uint8Array | undefined)[] = []
  later = false
  #resolvers: (() => void)[] = []
  prepareReply(stateVector?: Uint8Array): SyncReply | Promise<SyncReply> {
    if (stateVector !== undefined && stateVector[0] === 0xff) throw new Error('cannot decode')
    this.asked.push(stateVector)
    const reply = { updates: [], step2: stateVector ?? new Uint8Array() }
    if (!this.later) return reply
    return new Promise(resolve => this.#resolvers.push(() => resolve(reply)))
  }
  resolve(): void {
    for (const r of this.#resolvers.splice(0)) r()
  }
}

function setup(): { doc: FakeDocument; sender: FakeSender; sent: number[][]; responder: SyncResponder; metrics: ServerMetrics; close: () => void; idle: () => number } {
  const doc = new FakeDocument()
  const sender = new FakeSender()
  const sent: number[][] = []
  const metrics = new ServerMetrics({ processMetrics: false })
  let closed = false
  let idle = 0
  const responder = new SyncResponder({
    document: doc, sender: sender as unknown as SocketSender, metrics,
    send: reply => sent.push([...reply.step2]), closed: () => closed, idle: () => { idle++ },
  })
  return { doc, sender, sent, responder, metrics, close: () => { closed = true }, idle: () => idle }
}

const turn = (): Promise<void> => new Promise(r => setImmediate(r))
const sv = (n: number): Uint8Array => new Uint8Array([1, n, n])
const never = (): void => { throw new Error('not malformed') }

async function coalesced(metrics: ServerMetrics): Promise<number> {
  return (await metrics.syncStep1Coalesced.get()).values[0]?.value ?? 0
}

describe('SyncResponder', () => {
  it('says when nothing is outstanding any more: once a reply and the one coalesced after it are done', async () => {
    const { sent, responder, sender, idle } = setup()
    responder.request(sv(1), never)
    responder.request(sv(2), never)
    expect(idle()).toBe(0)
    await turn()
    // the coalesced reply went out; it is outstanding until a later turn, and while the socket is congested
    expect(sent).toEqual([[1, 1, 1], [1, 2, 2]])
    sender.congested = true
    await turn()
    expect(idle()).toBe(0)
    sender.drain()
    expect(idle()).toBe(1)
  })

  it('answers the first step 1 at once and a burst in the same turn once more, with the latest state vector', async () => {
    const { sent, responder, metrics } = setup()
    for (let i = 1; i <= 40; i++) responder.request(sv(i), never)
    expect(sent).toEqual([[1, 1, 1]])
    await turn()
    expect(sent).toEqual([[1, 1, 1], [1, 40, 40]])
    await turn()
    expect(sent).toHaveLength(2)
    expect(await coalesced(metrics)).toBe(38)
    // later, a step 1 is answered at once again
    responder.request(sv(7), never)
    expect(sent.at(-1)).toEqual([1, 7, 7])
  })

  it('waits while the reply keeps the socket above its backpressure mark', async () => {
    const { sender, sent, responder } = setup()
    sender.congested = true
    responder.request(undefined, never)
    responder.request(sv(2), never)
    responder.request(sv(3), never)
    await turn()
    await turn()
    expect(sent).toHaveLength(1)
    sender.drain()
    expect(sent).toEqual([[], [1, 3, 3]])
  })

  it('waits while a reply is prepared off the main thread', async () => {
    const { doc, sent, responder } = setup()
    doc.later = true
    responder.request(sv(1), never)
    responder.request(sv(2), never)
    responder.request(sv(3), never)
    expect(doc.asked).toHaveLength(1)
    await turn()
    expect(sent).toEqual([])
    doc.resolve()
    await turn()
    expect(sent).toEqual([[1, 1, 1]])
    await turn()
    expect(doc.asked).toHaveLength(2)
    doc.resolve()
    await turn()
    expect(sent).toEqual([[1, 1, 1], [1, 3, 3]])
  })

  it('reports a state vector that cannot be decoded, and answers the next one', async () => {
    const { sent, responder } = setup()
    let malformed = 0
    responder.request(new Uint8Array([0xff]), () => { malformed++ })
    expect(malformed).toBe(1)
    responder.request(sv(4), never)
    expect(sent).toEqual([[1, 4, 4]])
  })

  it('sends nothing once the session has ended', async () => {
    const { doc, sent, responder, close } = setup()
    doc.later = true
    responder.request(sv(1), never)
    close()
    doc.resolve()
    await turn()
    responder.request(sv(2), never)
    expect(sent).toEqual([])
  })
})
