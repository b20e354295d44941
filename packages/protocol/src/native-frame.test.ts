import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import * as encoding from 'lib0/encoding'
import {
  decodeFrame, encodeFrame, FRAME_KINDS, FrameDecodeError, inSeqRanges, isUnknownFrame, toSeqRanges,
  type Frame, type Role, type SeqRange, type UnknownFrame,
} from './native-frame.js'

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31)
console.log(`native-frame.test.ts: fast-check seed ${seed} (reproduce with SEED=${seed})`)

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b)

/** Frame bytes built by hand with lib0, to craft frames the encoder refuses to produce. */
function raw(write: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder()
  write(e)
  return encoding.toUint8Array(e)
}

function header(kind: number, document: string): (e: encoding.Encoder) => void {
  return e => {
    encoding.writeVarUint(e, kind)
    encoding.writeVarString(e, document)
  }
}

function decodeError(input: Uint8Array): FrameDecodeError {
  try {
    decodeFrame(input)
  } catch (err) {
    if (err instanceof FrameDecodeError) return err
    throw new Error(`expected FrameDecodeError, got ${String(err)}`, { cause: err })
  }
  throw new Error('expected FrameDecodeError, but the frame decoded')
}

const big = new Uint8Array(20_000).map((_, i) => (i * 31) & 0xff)

/** One or more samples of every kind, with edge values. */
const samples: Frame[] = [
  { kind: FRAME_KINDS.HELLO, document: '', minVersion: 1, maxVersion: 1, client: 'concord-js/0.1.0' },
  { kind: FRAME_KINDS.HELLO, document: '', minVersion: 0, maxVersion: Number.MAX_SAFE_INTEGER, client: '' },
  {
    kind: FRAME_KINDS.WELCOME, document: '', version: 1, server: 'concord ✓',
    maxMessageBytes: 64 * 1024 * 1024, chunkBytes: 256 * 1024, heartbeatIntervalMs: 30_000,
  },
  { kind: FRAME_KINDS.OPEN, document: 'notes/1', token: 'eyJhbGciOi.x.y', stateVector: bytes(1, 42, 2) },
  { kind: FRAME_KINDS.OPEN, document: '日本語 ドキュメント', token: '', stateVector: bytes() },
  { kind: FRAME_KINDS.OPENED, document: 'd', role: 'read' },
  { kind: FRAME_KINDS.OPENED, document: 'd', role: 'write' },
  { kind: FRAME_KINDS.OPENED, document: 'd', role: 'admin' },
  { kind: FRAME_KINDS.CLOSE, document: 'x'.repeat(512) },
  { kind: FRAME_KINDS.SYNC_STEP1, document: 'd', stateVector: bytes(0) },
  { kind: FRAME_KINDS.SYNC_STEP2, document: 'd', update: big },
  { kind: FRAME_KINDS.UPDATE, document: 'd', seq: 1, update: bytes(0, 0) },
  { kind: FRAME_KINDS.UPDATE, document: 'd', seq: 0, update: bytes() },
  { kind: FRAME_KINDS.UPDATE, document: 'd', seq: Number.MAX_SAFE_INTEGER, update: bytes(1, 2, 3) },
  { kind: FRAME_KINDS.ACK, document: 'd', ranges: [] },
  { kind: FRAME_KINDS.ACK, document: 'd', ranges: [{ from: 1, to: 1 }, { from: 3, to: 200 }, { from: 2 ** 40, to: 2 ** 40 + 5 }] },
  { kind: FRAME_KINDS.AWARENESS, document: 'd', update: bytes(1, 42, 1, 2, 0x7b, 0x7d) },
  { kind: FRAME_KINDS.QUERY_AWARENESS, document: 'd' },
  { kind: FRAME_KINDS.ERROR, document: 'd', code: 'CONCORD_ERR_AUTH_FORBIDDEN', message: 'read only', seq: 9, closed: false },
  { kind: FRAME_KINDS.ERROR, document: '', code: 'CONCORD_ERR_SERVER_INTERNAL', message: '', seq: 0, closed: true },
  { kind: FRAME_KINDS.CHUNK, document: 'd', messageId: 7, index: 0, total: 1, data: bytes(0xff) },
  { kind: FRAME_KINDS.CHUNK, document: '', messageId: 2 ** 31, index: 99, total: 100, data: bytes() },
  { kind: FRAME_KINDS.PING, document: '' },
  { kind: FRAME_KINDS.PONG, document: '' },
  { kind: FRAME_KINDS.AUTH, document: 'd', token: 'eyJ.fresh' },
  { kind: FRAME_KINDS.AUTH_STATE, document: 'd', role: 'read', expiresInMs: 2 ** 40 },
  { kind: FRAME_KINDS.AUTH_STATE, document: 'd', role: 'write', expiresInMs: 0 },
  { kind: FRAME_KINDS.REPLICATED, document: 'd', regions: 2, ranges: [{ from: 1, to: 3 }, { from: 2 ** 40, to: 2 ** 40 }] },
  { kind: FRAME_KINDS.STATELESS, document: 'd', payload: '{"follow":"ada"}' },
]

describe('encodeFrame / decodeFrame round trip', () => {
  it('the samples cover every frame kind', () => {
    expect(new Set(samples.map(s => s.kind))).toEqual(new Set(Object.values(FRAME_KINDS)))
  })

  it.each(samples.map(s => [s.kind, s] as const))('kind %i round-trips', (_kind, frame) => {
    const encoded = encodeFrame(frame)
    const decoded = decodeFrame(encoded)
    expect(isUnknownFrame(decoded)).toBe(false)
    expect(decoded).toEqual(frame)
    // encoding the decoded frame gives the very same bytes
    expect(encodeFrame(decoded as Frame)).toEqual(encoded)
  })

  it('starts every frame with kind and document', () => {
    expect([...encodeFrame({ kind: FRAME_KINDS.CLOSE, document: 'ab' })]).toEqual([4, 2, 0x61, 0x62])
    expect([...encodeFrame({ kind: FRAME_KINDS.PING, document: '' })]).toEqual([13, 0])
    expect([...encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'a', seq: 128, update: bytes(9) })])
      .toEqual([7, 1, 0x61, 0x80, 0x01, 1, 9])
  })

  it('encodes ACK ranges as from and span', () => {
    const encoded = encodeFrame({ kind: FRAME_KINDS.ACK, document: '', ranges: [{ from: 10, to: 12 }, { from: 20, to: 20 }] })
    expect([...encoded]).toEqual([8, 0, 2, 10, 2, 20, 0])
  })

  it('decodes byte fields as views into the input (no copy)', () => {
    const encoded = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'd', seq: 1, update: bytes(5, 6, 7) })
    const decoded = decodeFrame(encoded)
    if (isUnknownFrame(decoded) || decoded.kind !== FRAME_KINDS.UPDATE) throw new Error('not an UPDATE')
    expect(decoded.update.buffer).toBe(encoded.buffer)
    expect([...decoded.update]).toEqual([5, 6, 7])
  })

  const str = fc.string({ unit: 'grapheme', maxLength: 24 })
  const u8 = fc.uint8Array({ maxLength: 48 })
  const n = fc.maxSafeNat()
  const doc = str
  const arbitraryFrame: fc.Arbitrary<Frame> = fc.oneof(
    fc.record({ kind: fc.constant(FRAME_KINDS.HELLO), document: fc.constant('' as const), minVersion: n, maxVersion: n, client: str }),
    fc.record({
      kind: fc.constant(FRAME_KINDS.WELCOME), document: fc.constant('' as const), version: n, server: str,
      maxMessageBytes: n, chunkBytes: n, heartbeatIntervalMs: n,
    }),
    fc.record({ kind: fc.constant(FRAME_KINDS.OPEN), document: doc, token: str, stateVector: u8 }),
    fc.record({ kind: fc.constant(FRAME_KINDS.OPENED), document: doc, role: fc.constantFrom<Role>('read', 'write', 'admin') }),
    fc.record({ kind: fc.constant(FRAME_KINDS.CLOSE), document: doc }),
    fc.record({ kind: fc.constant(FRAME_KINDS.SYNC_STEP1), document: doc, stateVector: u8 }),
    fc.record({ kind: fc.constant(FRAME_KINDS.SYNC_STEP2), document: doc, update: u8 }),
    fc.record({ kind: fc.constant(FRAME_KINDS.UPDATE), document: doc, seq: n, update: u8 }),
    fc.record({
      kind: fc.constant(FRAME_KINDS.ACK), document: doc,
      ranges: fc.array(fc.tuple(fc.nat(), fc.nat()).map(([from, span]): SeqRange => ({ from, to: from + span })), { maxLength: 6 }),
    }),
    fc.record({ kind: fc.constant(FRAME_KINDS.AWARENESS), document: doc, update: u8 }),
    fc.record({ kind: fc.constant(FRAME_KINDS.QUERY_AWARENESS), document: doc }),
    fc.record({ kind: fc.constant(FRAME_KINDS.ERROR), document: doc, code: str, message: str, seq: n, closed: fc.boolean() }),
    fc.record({ kind: fc.constant(FRAME_KINDS.CHUNK), document: doc, messageId: n, index: n, total: n, data: u8 }),
    fc.record({ kind: fc.constant(FRAME_KINDS.PING), document: fc.constant('' as const) }),
    fc.record({ kind: fc.constant(FRAME_KINDS.PONG), document: fc.constant('' as const) }),
  )

  it('round-trips arbitrary frames (seeded property)', () => {
    fc.assert(fc.property(arbitraryFrame, frame => {
      const encoded = encodeFrame(frame)
      const decoded = decodeFrame(encoded)
      expect(decoded).toEqual(frame)
      expect(encodeFrame(decoded as Frame)).toEqual(encoded)
    }), { seed, verbose: true, numRuns: 500 })
  })
})

describe('decodeFrame on malformed input', () => {
  it('rejects every strict prefix of every sample frame', () => {
    for (const frame of samples) {
      const encoded = encodeFrame(frame)
      // every prefix of short frames; for the 20 kB frame, the interesting cuts
      const cuts = encoded.length < 1000
        ? Array.from({ length: encoded.length }, (_, i) => i)
        : [0, 1, 2, 3, 4, 5, encoded.length - 1, encoded.length >> 1]
      for (const cut of cuts) {
        expect(() => decodeFrame(encoded.subarray(0, cut)), `kind ${frame.kind} cut at ${cut}`).toThrow(FrameDecodeError)
      }
    }
  })

  it('rejects trailing bytes after every known kind, naming the document', () => {
    for (const frame of samples) {
      const encoded = encodeFrame(frame)
      const padded = new Uint8Array(encoded.length + 1)
      padded.set(encoded)
      const err = decodeError(padded)
      expect(err.document).toBe(frame.document)
      expect(err.message).toMatch(/1 trailing bytes/)
    }
  })

  it('reports a broken header without a document', () => {
    expect(decodeError(bytes()).document).toBeUndefined()
    expect(decodeError(bytes(7)).document).toBeUndefined()
    expect(decodeError(bytes(7, 3, 0x61)).document).toBeUndefined()
    // a kind varUint longer than 53 bits
    expect(decodeError(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0)).document).toBeUndefined()
    // invalid UTF-8 in the document name
    expect(decodeError(bytes(4, 2, 0xc3, 0x28)).document).toBeUndefined()
  })

  it('rejects a role that is not read, write or admin', () => {
    for (const role of ['owner', 'READ', '', 'write ']) {
      const err = decodeError(raw(e => {
        header(FRAME_KINDS.OPENED, 'd')(e)
        encoding.writeVarString(e, role)
      }))
      expect(err.document).toBe('d')
      expect(err.message).toMatch(/frame kind 3/)
    }
  })

  it('rejects HELLO, WELCOME, PING and PONG that name a document', () => {
    const hello = raw(e => {
      header(FRAME_KINDS.HELLO, 'doc')(e)
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint(e, 1)
      encoding.writeVarString(e, 'c')
    })
    expect(decodeError(hello).document).toBe('doc')
    const welcome = raw(e => {
      header(FRAME_KINDS.WELCOME, 'doc')(e)
      for (const v of [1]) encoding.writeVarUint(e, v)
      encoding.writeVarString(e, 's')
      for (const v of [10, 5, 1000]) encoding.writeVarUint(e, v)
    })
    expect(decodeError(welcome).document).toBe('doc')
    expect(decodeError(raw(header(FRAME_KINDS.PING, 'doc'))).document).toBe('doc')
    expect(decodeError(raw(header(FRAME_KINDS.PONG, 'doc'))).document).toBe('doc')
  })

  it('accepts only 0 and 1 as the closed flag of ERROR', () => {
    const error = (flag: number | null): Uint8Array => raw(e => {
      header(FRAME_KINDS.ERROR, 'd')(e)
      encoding.writeVarString(e, 'CONCORD_ERR_DOC_NOT_OPEN')
      encoding.writeVarString(e, '')
      encoding.writeVarUint(e, 3)
      if (flag !== null) encoding.writeUint8(e, flag)
    })
    expect(decodeFrame(error(0))).toMatchObject({ closed: false, seq: 3 })
    expect(decodeFrame(error(1))).toMatchObject({ closed: true, seq: 3 })
    for (const flag of [2, 0x80, 0xff]) expect(decodeError(error(flag)).message).toMatch(/frame kind 11/)
    // a missing flag is a truncated body, not "-1 trailing bytes"
    const missing = decodeError(error(null))
    expect(missing.document).toBe('d')
    expect(missing.message).toBe('malformed body for frame kind 11')
  })

  it('rejects numbers above 2^53 - 1 instead of rounding them', () => {
    // 8 bytes: 56 bits, all ones. lib0 alone would return the rounded 2^56.
    const unsafe = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
    expect(decodeError(bytes(...unsafe, 0)).document).toBeUndefined()
    const update = new Uint8Array([FRAME_KINDS.UPDATE, 1, 0x64, ...unsafe, 0])
    expect(decodeError(update).document).toBe('d')
    // 2^53 - 1 itself is fine
    const max = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'd', seq: Number.MAX_SAFE_INTEGER, update: bytes() })
    expect(decodeFrame(max)).toMatchObject({ seq: Number.MAX_SAFE_INTEGER })
    // an ACK range whose end (from + span) is not a safe integer
    const ack = raw(e => {
      header(FRAME_KINDS.ACK, 'd')(e)
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint(e, 2)
      encoding.writeVarUint(e, Number.MAX_SAFE_INTEGER)
    })
    expect(decodeError(ack).document).toBe('d')
  })

  it('rejects an ACK announcing more ranges than the frame can hold', () => {
    const ack = raw(e => {
      header(FRAME_KINDS.ACK, 'd')(e)
      encoding.writeVarUint(e, 2 ** 32)
    })
    expect(decodeError(ack).document).toBe('d')
  })

  it('never reads past the end of a view into a larger buffer', () => {
    // [frame claiming 6 more bytes than it has][bytes that belong to someone else]
    const backing = new Uint8Array([0x63, 0x08, 0x61, 0x62, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74])
    const view = backing.subarray(0, 4) // kind 99, document length 8, "ab"
    expect(decodeError(view).document).toBeUndefined()
    const update = encodeFrame({ kind: FRAME_KINDS.UPDATE, document: 'd', seq: 1, update: bytes(1, 2, 3, 4) })
    const pooled = new Uint8Array(update.length + 16)
    pooled.set(update)
    pooled.fill(0xee, update.length)
    pooled[update.length - 5] = 20 // the update now claims 20 bytes
    expect(decodeError(pooled.subarray(0, update.length)).document).toBe('d')
  })

  it('throws nothing but FrameDecodeError for random bytes (seeded property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), input => {
      let decoded: Frame | UnknownFrame
      try {
        decoded = decodeFrame(input)
      } catch (err) {
        expect(err).toBeInstanceOf(FrameDecodeError)
        return
      }
      // whatever decodes is stable under re-encoding (non-minimal varUints are normalised)
      if (!isUnknownFrame(decoded)) expect(decodeFrame(encodeFrame(decoded))).toEqual(decoded)
    }), { seed, verbose: true, numRuns: 2000 })
  })

  it('throws nothing but FrameDecodeError for mutated valid frames (seeded property)', () => {
    const small = samples.filter(s => encodeFrame(s).length < 1000).map(encodeFrame)
    fc.assert(fc.property(
      fc.constantFrom(...small), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 3 }),
      (valid, at, value, cutFromEnd) => {
        const mutated = valid.slice(0, Math.max(0, valid.length - cutFromEnd))
        if (mutated.length > 0) mutated[at % mutated.length] = value
        try {
          decodeFrame(mutated)
        } catch (err) {
          expect(err).toBeInstanceOf(FrameDecodeError)
        }
      },
    ), { seed, verbose: true, numRuns: 2000 })
  })
})

describe('unknown kinds', () => {
  it('decode to an UnknownFrame whose document is readable', () => {
    for (const kind of [19, 99, 127, 128, 2 ** 40]) {
      const frame = decodeFrame(raw(e => {
        header(kind, 'notes/ü')(e)
        encoding.writeVarString(e, 'a body this version cannot read')
        encoding.writeUint8(e, 0xff)
      }))
      expect(isUnknownFrame(frame)).toBe(true)
      expect(frame).toEqual({ kind, document: 'notes/ü', unknown: true })
    }
  })

  it('may have no body at all', () => {
    expect(decodeFrame(raw(header(20, '')))).toEqual({ kind: 20, document: '', unknown: true })
  })

  it('still need a readable header', () => {
    expect(decodeError(bytes(99)).document).toBeUndefined()
    expect(decodeError(bytes(99, 5, 0x61)).document).toBeUndefined()
  })

  it('are not confused with known kinds', () => {
    expect(isUnknownFrame(decodeFrame(encodeFrame({ kind: FRAME_KINDS.CLOSE, document: 'd' })))).toBe(false)
  })
})

describe('toSeqRanges / inSeqRanges', () => {
  it('collapses sequence numbers into sorted, merged inclusive ranges', () => {
    expect(toSeqRanges([5, 1, 2, 3, 7, 6])).toEqual([{ from: 1, to: 3 }, { from: 5, to: 7 }])
    expect(toSeqRanges([])).toEqual([])
    expect(toSeqRanges([4])).toEqual([{ from: 4, to: 4 }])
    expect(toSeqRanges([3, 3, 2, 2, 1])).toEqual([{ from: 1, to: 3 }])
    expect(toSeqRanges([10, 1, 100])).toEqual([{ from: 1, to: 1 }, { from: 10, to: 10 }, { from: 100, to: 100 }])
    // numeric, not lexicographic, order
    expect(toSeqRanges([9, 10, 11, 100, 2])).toEqual([{ from: 2, to: 2 }, { from: 9, to: 11 }, { from: 100, to: 100 }])
    expect(toSeqRanges(new Set([1, 2]))).toEqual([{ from: 1, to: 2 }])
  })

  it('tests membership including both ends', () => {
    const ranges = [{ from: 1, to: 3 }, { from: 5, to: 7 }]
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8].map(s => inSeqRanges(ranges, s)))
      .toEqual([false, true, true, true, false, true, true, true, false])
    expect(inSeqRanges([], 1)).toBe(false)
    // a receiver must accept ranges in any order
    expect(inSeqRanges([{ from: 50, to: 60 }, { from: 1, to: 2 }], 2)).toBe(true)
  })

  it('keeps exactly the given numbers, in disjoint non-adjacent ranges (seeded property)', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 80 }), seqs => {
      const ranges = toSeqRanges(seqs)
      const set = new Set(seqs)
      const all = Array.from({ length: 203 }, (_, s) => s)
      expect(all.filter(s => inSeqRanges(ranges, s))).toEqual(all.filter(s => set.has(s)))
      for (let i = 0; i < ranges.length; i++) {
        expect(ranges[i]!.to).toBeGreaterThanOrEqual(ranges[i]!.from)
        if (i > 0) expect(ranges[i]!.from).toBeGreaterThan(ranges[i - 1]!.to + 1)
      }
      // and the ranges survive an ACK frame
      const ack = decodeFrame(encodeFrame({ kind: FRAME_KINDS.ACK, document: 'd', ranges }))
      expect(ack).toEqual({ kind: FRAME_KINDS.ACK, document: 'd', ranges })
    }), { seed, verbose: true, numRuns: 300 })
  })
})
