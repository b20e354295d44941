import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { validateUpdate } from './update.js'

function richUpdate(): Uint8Array {
  const doc = new Y.Doc()
  doc.clientID = 42
  const text = doc.getText('t')
  text.insert(0, 'hello world')
  text.delete(2, 3)
  text.format(0, 2, { bold: true })
  doc.getMap('m').set('k', { a: [1, 2, 3], b: 'ü' })
  doc.getArray<number>('a').push([1, 2, 3])
  return Y.encodeStateAsUpdate(doc)
}

describe('validateUpdate', () => {
  it('accepts real Yjs updates', () => {
    const doc = new Y.Doc()
    const updates: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => updates.push(u))
    doc.getText('t').insert(0, 'abc')
    doc.getText('t').delete(0, 1)
    expect(updates).toHaveLength(2)
    for (const u of updates) expect(validateUpdate(u)).toBeNull()
    expect(validateUpdate(Y.mergeUpdates(updates))).toBeNull()
    expect(validateUpdate(richUpdate())).toBeNull()
    // the empty update: no structs, empty delete set
    expect(validateUpdate(new Uint8Array([0, 0]))).toBeNull()
    expect(validateUpdate(Y.encodeStateAsUpdate(new Y.Doc()))).toBeNull()
  })

  it('rejects every truncation of a real update, with a message', () => {
    const update = richUpdate()
    expect(update.length).toBeGreaterThan(40)
    for (let cut = 0; cut < update.length; cut++) {
      const problem = validateUpdate(update.subarray(0, cut))
      expect(problem, `cut at ${cut} of ${update.length}`).toBeTypeOf('string')
      expect(problem!.length).toBeGreaterThan(0)
    }
  })

  it('rejects bytes that are not an update', () => {
    expect(validateUpdate(new Uint8Array())).toBeTypeOf('string')
    expect(validateUpdate(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBeTypeOf('string')
    // arbitrary text is not an update
    expect(validateUpdate(new TextEncoder().encode('{"not":"yjs"}'))).toBeTypeOf('string')
  })

  it('does not apply anything', () => {
    const doc = new Y.Doc()
    const before = Y.encodeStateVector(doc)
    validateUpdate(richUpdate())
    expect(Y.encodeStateVector(doc)).toEqual(before)
  })
})

describe('validateUpdate structural check', () => {
  it('refuses an item whose origin is its own client at a later clock', () => {
    const poison = new Uint8Array(Buffer.from('01010200c402050106030f595a00', 'hex'))
    expect(validateUpdate(poison)).toMatch(/cannot precede/)
  })

  it('accepts real updates, including ones that refer to other clients and to earlier items of their own', () => {
    const a = new Y.Doc()
    const b = new Y.Doc()
    a.getText('t').insert(0, 'hello')
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    const updates: Uint8Array[] = []
    b.on('update', (u: Uint8Array) => updates.push(u))
    b.getText('t').insert(2, 'XY')
    b.getText('t').insert(3, 'z')
    b.getMap('m').set('k', new Y.Map())
    for (const u of updates) expect(validateUpdate(u)).toBeNull()
  })
})

describe('validateUpdate: what the fuzzer found', () => {
  it('refuses a delete range of length 0 (it decodes, but applying it throws mid-transaction)', () => {
    // a delete set for client 5: one range at clock 2 with length 0
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0) // no structs
    encoding.writeVarUint(e, 1) // one client in the delete set
    encoding.writeVarUint(e, 5)
    encoding.writeVarUint(e, 1) // one range
    encoding.writeVarUint(e, 2)
    encoding.writeVarUint(e, 0)
    const update = encoding.toUint8Array(e)
    expect(validateUpdate(update)).toMatch(/invalid range/)
    // and indeed Yjs throws while applying it, which would force the server to reload the document
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'abc')
    expect(() => Y.applyUpdate(doc, update)).toThrow()
  })

  it('refuses an item whose clock is beyond 2^53 (Yjs merging it into held-back updates looped for ever: fuzz seed 119696461)', () => {
    // the update that made the server spin: one item of client 576352807 at clock 18023841473815084
    const update = new Uint8Array(Buffer.from('AQGn5OmSAqzEo+TpkoIgo+TpkgIhAmZ1AA==', 'base64'))
    const decoded = Y.decodeUpdate(update)
    expect((decoded.structs[0] as Y.Item).id.clock).toBeGreaterThan(Number.MAX_SAFE_INTEGER)
    expect(validateUpdate(update)).toMatch(/beyond 2\^53/)
    // an origin that far is refused too
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 1) // one client
    encoding.writeVarUint(e, 1) // one struct
    encoding.writeVarUint(e, 7) // client 7
    encoding.writeVarUint(e, 0) // clock 0
    encoding.writeUint8(e, 0b10000100) // Item with origin, ContentString
    encoding.writeVarUint(e, 8) // origin client
    encoding.writeVarUint(e, 2 ** 54) // origin clock beyond 2^53
    encoding.writeVarString(e, 'x')
    encoding.writeVarUint(e, 0) // empty delete set
    const withOrigin = encoding.toUint8Array(e)
    expect(validateUpdate(withOrigin)).toMatch(/beyond 2\^53|invalid|Unexpected|error/i)
    // ordinary clocks pass
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'ok')
    expect(validateUpdate(Y.encodeStateAsUpdate(doc))).toBe(null)
  })
})
