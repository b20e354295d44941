import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as authProtocol from 'y-protocols/auth'
import { decodeYMessage, encodeYMessage, Y_MESSAGE, Y_SYNC, YMessageDecodeError, type YMessage } from './y-websocket-message.js'

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31)
console.log(`y-websocket-message.test.ts: fast-check seed ${seed} (reproduce with SEED=${seed})`)

/** Build a message the way y-websocket does: message type, then the y-protocols writer. */
function yws(type: number, write: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, type)
  write(e)
  return encoding.toUint8Array(e)
}

function docWith(clientID: number, text: string): Y.Doc {
  const doc = new Y.Doc()
  doc.clientID = clientID
  doc.getText('t').insert(0, text)
  return doc
}

function decodeError(bytes: Uint8Array): YMessageDecodeError {
  try {
    decodeYMessage(bytes)
  } catch (err) {
    if (err instanceof YMessageDecodeError) return err
    throw new Error(`expected YMessageDecodeError, got ${String(err)}`, { cause: err })
  }
  throw new Error('expected YMessageDecodeError, but the message decoded')
}

describe('encodeYMessage / decodeYMessage', () => {
  const messages: YMessage[] = [
    { type: 'sync-step1', stateVector: new Uint8Array([0]) },
    { type: 'sync-step2', update: new Uint8Array([0, 0]) },
    { type: 'update', update: new Uint8Array(300).fill(7) },
    { type: 'awareness', update: new Uint8Array([1, 2, 3]) },
    { type: 'permission-denied', reason: 'CONCORD_ERR_AUTH_FORBIDDEN' },
    { type: 'permission-denied', reason: '' },
    { type: 'query-awareness' },
  ]

  it.each(messages.map(m => [m.type, m] as const))('%s round-trips', (_type, message) => {
    const encoded = encodeYMessage(message)
    expect(decodeYMessage(encoded)).toEqual(message)
    expect(encodeYMessage(decodeYMessage(encoded))).toEqual(encoded)
  })

  it('uses the y-protocols message numbers', () => {
    expect(Y_MESSAGE).toEqual({ SYNC: 0, AWARENESS: 1, AUTH: 2, QUERY_AWARENESS: 3 })
    expect(Y_SYNC).toEqual({ STEP1: 0, STEP2: 1, UPDATE: 2 })
    expect(syncProtocol.messageYjsSyncStep1).toBe(Y_SYNC.STEP1)
    expect(syncProtocol.messageYjsSyncStep2).toBe(Y_SYNC.STEP2)
    expect(syncProtocol.messageYjsUpdate).toBe(Y_SYNC.UPDATE)
    expect(authProtocol.messagePermissionDenied).toBe(0)
  })
})

describe('compatibility with y-protocols (as y-websocket uses it)', () => {
  it('sync step 1: reads y-protocols bytes and produces identical bytes', () => {
    const doc = docWith(7, 'hello')
    const theirs = yws(Y_MESSAGE.SYNC, e => syncProtocol.writeSyncStep1(e, doc))
    const ours = decodeYMessage(theirs)
    expect(ours).toEqual({ type: 'sync-step1', stateVector: Y.encodeStateVector(doc) })
    expect(encodeYMessage(ours)).toEqual(theirs)
  })

  it('sync step 2: reads y-protocols bytes and produces identical bytes', () => {
    const doc = docWith(7, 'hello')
    const remote = docWith(8, 'x')
    const sv = Y.encodeStateVector(remote)
    const theirs = yws(Y_MESSAGE.SYNC, e => syncProtocol.writeSyncStep2(e, doc, sv))
    const ours = decodeYMessage(theirs)
    expect(ours).toEqual({ type: 'sync-step2', update: Y.encodeStateAsUpdate(doc, sv) })
    expect(encodeYMessage(ours)).toEqual(theirs)
  })

  it('update: reads y-protocols bytes and produces identical bytes', () => {
    const doc = docWith(7, 'hello')
    const updates: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => updates.push(u))
    doc.getText('t').insert(5, ' world')
    expect(updates).toHaveLength(1)
    const theirs = yws(Y_MESSAGE.SYNC, e => syncProtocol.writeUpdate(e, updates[0]!))
    const ours = decodeYMessage(theirs)
    expect(ours).toEqual({ type: 'update', update: updates[0] })
    expect(encodeYMessage(ours)).toEqual(theirs)
  })

  it('awareness: reads y-protocols bytes and produces identical bytes', () => {
    const doc = docWith(7, '')
    const awareness = new awarenessProtocol.Awareness(doc)
    awareness.setLocalState({ user: { name: 'Ann', color: '#f00' }, cursor: null })
    const payload = awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])
    const theirs = yws(Y_MESSAGE.AWARENESS, e => encoding.writeVarUint8Array(e, payload))
    const ours = decodeYMessage(theirs)
    expect(ours).toEqual({ type: 'awareness', update: payload })
    expect(encodeYMessage(ours)).toEqual(theirs)
    awareness.destroy()
  })

  it('permission denied: reads y-protocols bytes and produces identical bytes', () => {
    const theirs = yws(Y_MESSAGE.AUTH, e => authProtocol.writePermissionDenied(e, 'CONCORD_ERR_AUTH_FORBIDDEN'))
    const ours = decodeYMessage(theirs)
    expect(ours).toEqual({ type: 'permission-denied', reason: 'CONCORD_ERR_AUTH_FORBIDDEN' })
    expect(encodeYMessage(ours)).toEqual(theirs)
  })

  it('query awareness: reads y-protocols bytes and produces identical bytes', () => {
    const theirs = yws(Y_MESSAGE.QUERY_AWARENESS, () => {})
    expect(decodeYMessage(theirs)).toEqual({ type: 'query-awareness' })
    expect(encodeYMessage({ type: 'query-awareness' })).toEqual(theirs)
  })

  it('y-protocols reads what we encode: a server built on our codec syncs a y-websocket-style client', () => {
    const server = docWith(1, 'server text')
    const client = docWith(2, 'client text ')

    // the server greets with sync step 1; the client (y-protocols) answers with step 2
    const greeting = encodeYMessage({ type: 'sync-step1', stateVector: Y.encodeStateVector(server) })
    const d = decoding.createDecoder(greeting)
    expect(decoding.readVarUint(d)).toBe(Y_MESSAGE.SYNC)
    const reply = encoding.createEncoder()
    encoding.writeVarUint(reply, Y_MESSAGE.SYNC)
    expect(syncProtocol.readSyncMessage(d, reply, client, 'test')).toBe(Y_SYNC.STEP1)
    const step2 = decodeYMessage(encoding.toUint8Array(reply))
    if (step2.type !== 'sync-step2') throw new Error(`expected sync-step2, got ${step2.type}`)
    Y.applyUpdate(server, step2.update)

    // the client sends its step 1; the server answers with our step 2, which y-protocols applies
    const clientStep1 = decodeYMessage(yws(Y_MESSAGE.SYNC, e => syncProtocol.writeSyncStep1(e, client)))
    if (clientStep1.type !== 'sync-step1') throw new Error(`expected sync-step1, got ${clientStep1.type}`)
    const answer = encodeYMessage({ type: 'sync-step2', update: Y.encodeStateAsUpdate(server, clientStep1.stateVector) })
    const d2 = decoding.createDecoder(answer)
    decoding.readVarUint(d2)
    syncProtocol.readSyncMessage(d2, encoding.createEncoder(), client, 'test')

    expect(client.getText('t').toString()).toBe(server.getText('t').toString())
    expect(server.getText('t').toString()).toHaveLength('server text'.length + 'client text '.length)

    // a relayed update is applied by y-protocols
    const updates: Uint8Array[] = []
    server.on('update', (u: Uint8Array) => updates.push(u))
    server.getText('t').insert(0, '>')
    const d3 = decoding.createDecoder(encodeYMessage({ type: 'update', update: updates[0]! }))
    decoding.readVarUint(d3)
    syncProtocol.readSyncMessage(d3, encoding.createEncoder(), client, 'test')
    expect(client.getText('t').toString()).toBe(server.getText('t').toString())
    expect(client.getText('t').toString().startsWith('>')).toBe(true)
  })

  it('y-protocols applies our awareness message', () => {
    const sender = new awarenessProtocol.Awareness(docWith(5, ''))
    sender.setLocalState({ user: 'ann' })
    const receiver = new awarenessProtocol.Awareness(docWith(6, ''))
    const bytes = encodeYMessage({ type: 'awareness', update: awarenessProtocol.encodeAwarenessUpdate(sender, [5]) })
    const d = decoding.createDecoder(bytes)
    expect(decoding.readVarUint(d)).toBe(Y_MESSAGE.AWARENESS)
    awarenessProtocol.applyAwarenessUpdate(receiver, decoding.readVarUint8Array(d), 'test')
    expect(receiver.getStates().get(5)).toEqual({ user: 'ann' })
    sender.destroy()
    receiver.destroy()
  })
})

describe('decodeYMessage on bad input', () => {
  it('reports an empty message as malformed, without a type', () => {
    const err = decodeError(new Uint8Array())
    expect(err.unknownType).toBeUndefined()
  })

  it('reports an unknown message type', () => {
    expect(decodeError(new Uint8Array([4])).unknownType).toBe(4)
    expect(decodeError(new Uint8Array([0x80, 0x01])).unknownType).toBe(128)
  })

  it('reports an unknown sync or auth sub-type as an unknown kind of that message type', () => {
    const sync = decodeError(new Uint8Array([0, 3, 0]))
    expect(sync.unknownType).toBe(0)
    expect(sync.message).toMatch(/sync message type 3/)
    const auth = decodeError(new Uint8Array([2, 1, 0]))
    expect(auth.unknownType).toBe(2)
    expect(auth.message).toMatch(/auth message type 1/)
  })

  it('reports truncated messages as malformed', () => {
    for (const hex of ['00', '0000', '000005012a', '01', '0103aabb', '0200', '02000561']) {
      const err = decodeError(Uint8Array.from(Buffer.from(hex, 'hex')))
      expect(err.unknownType, hex).toBeUndefined()
    }
  })

  it('never reads past the end of a view into a larger buffer', () => {
    // awareness message claiming 8 bytes with 2 present, followed by foreign bytes
    const backing = new Uint8Array([1, 8, 0xaa, 0xbb, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74])
    expect(decodeError(backing.subarray(0, 4)).unknownType).toBeUndefined()
  })

  it('ignores bytes after a complete message, like y-protocols', () => {
    expect(decodeYMessage(new Uint8Array([3, 9, 9]))).toEqual({ type: 'query-awareness' })
    expect(decodeYMessage(new Uint8Array([0, 0, 1, 0, 0xff]))).toEqual({ type: 'sync-step1', stateVector: new Uint8Array([0]) })
  })

  it('throws nothing but YMessageDecodeError for random bytes (seeded property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 32 }), input => {
      let m: YMessage
      try {
        m = decodeYMessage(input)
      } catch (err) {
        expect(err).toBeInstanceOf(YMessageDecodeError)
        return
      }
      // whatever decodes re-encodes to the same message
      expect(decodeYMessage(encodeYMessage(m))).toEqual(m)
    }), { seed, verbose: true, numRuns: 2000 })
  })
})
