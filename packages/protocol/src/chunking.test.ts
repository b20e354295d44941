import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ChunkAssembler, chunkFrame, needsChunking } from './chunking.js'
import { ConcordError } from './errors.js'
import { decodeFrame, encodeFrame, encodeFrameParts, FRAME_KINDS, FRAME_PARTS_MIN_PAYLOAD, isUnknownFrame, type FrameOf } from './native-frame.js'
import { encodeYMessage, encodeYMessageParts } from './y-websocket-message.js'

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31)
console.log(`chunking.test.ts: fast-check seed ${seed} (reproduce with SEED=${seed})`)

type Chunk = FrameOf<typeof FRAME_KINDS.CHUNK>

function pattern(length: number, salt = 0): Uint8Array {
  return new Uint8Array(length).map((_, i) => (i * 7 + salt) & 0xff)
}

/** The CHUNK frames `chunkFrame` produces, decoded. */
function chunksOf(frameBytes: Uint8Array, document: string, messageId: number, chunkBytes: number): Chunk[] {
  return [...chunkFrame(frameBytes, document, messageId, chunkBytes)].map(bytes => {
    const f = decodeFrame(bytes)
    if (isUnknownFrame(f) || f.kind !== FRAME_KINDS.CHUNK) throw new Error(`chunkFrame produced kind ${f.kind}`)
    return f
  })
}

function chunk(messageId: number, index: number, total: number, data: Uint8Array = new Uint8Array([index])): Chunk {
  return { kind: FRAME_KINDS.CHUNK, document: 'd', messageId, index, total, data }
}

function concordError(fn: () => unknown): ConcordError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConcordError) return err
    throw new Error(`expected ConcordError, got ${String(err)}`, { cause: err })
  }
  throw new Error('expected ConcordError, nothing was thrown')
}

describe('needsChunking', () => {
  it('is true only above chunkBytes', () => {
    expect(needsChunking(pattern(99), 100)).toBe(false)
    expect(needsChunking(pattern(100), 100)).toBe(false)
    expect(needsChunking(pattern(101), 100)).toBe(true)
  })
})

describe('chunkFrame', () => {
  const CHUNK = 64

  it.each([1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 1, 10 * CHUNK + 3])(
    'cuts %i bytes into ceil(n / chunkBytes) ordered pieces that reassemble to the input',
    size => {
      const input = pattern(size)
      const chunks = chunksOf(input, 'doc', 5, CHUNK)
      const total = Math.ceil(size / CHUNK)
      expect(chunks).toHaveLength(total)
      chunks.forEach((c, i) => {
        expect(c).toMatchObject({ document: 'doc', messageId: 5, index: i, total })
        expect(c.data.length).toBe(i < total - 1 ? CHUNK : size - (total - 1) * CHUNK)
      })
      const assembler = new ChunkAssembler({ maxMessageBytes: 10_000 })
      const results = chunks.map(c => assembler.push(c))
      expect(results.slice(0, -1).every(r => r === null)).toBe(true)
      expect(results.at(-1)).toEqual(input)
      expect(assembler.bufferedBytes).toBe(0)
    },
  )

  it('round-trips a real frame: the reassembled bytes decode to the original frame', () => {
    const frame = { kind: FRAME_KINDS.SYNC_STEP2, document: 'big', update: pattern(5000, 3) } as const
    const assembler = new ChunkAssembler({ maxMessageBytes: 1 << 20 })
    let whole: Uint8Array | null = null
    for (const c of chunksOf(encodeFrame(frame), 'big', 1, 1000)) whole = assembler.push(c)
    expect(whole).not.toBeNull()
    expect(decodeFrame(whole!)).toEqual(frame)
  })

  it('is lazy and refuses a non-positive chunk size', () => {
    const gen = chunkFrame(pattern(10), 'd', 1, 0)
    expect(() => gen.next()).toThrow(RangeError)
    expect(() => chunkFrame(pattern(10), 'd', 1, -5).next()).toThrow(RangeError)
  })
})

describe('ChunkAssembler', () => {
  it('reassembles two interleaved chunked messages and lets small frames pass between them', () => {
    const a = pattern(250, 1)
    const b = pattern(170, 2)
    const ca = chunksOf(a, 'a', 1, 50) // 5 pieces
    const cb = chunksOf(b, 'b', 2, 50) // 4 pieces
    const assembler = new ChunkAssembler({ maxMessageBytes: 1000 })
    const done: Uint8Array[] = []
    for (let i = 0; i < 5; i++) {
      for (const c of [ca[i], cb[i]]) {
        if (c === undefined) continue
        const r = assembler.push(c)
        if (r !== null) done.push(r)
      }
    }
    expect(done).toEqual([b, a])
  })

  it('reassembles any interleaving that keeps each message in order (seeded property)', () => {
    fc.assert(fc.property(
      fc.array(fc.nat({ max: 600 }), { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 8, max: 97 }),
      fc.array(fc.nat(), { maxLength: 200 }),
      (sizes, chunkBytes, picks) => {
        const inputs = sizes.map((n, i) => pattern(n + 1, i))
        const queues = inputs.map((input, i) => chunksOf(input, `doc${i}`, i + 1, chunkBytes))
        const assembler = new ChunkAssembler({ maxMessageBytes: 1000, maxBufferedBytes: 5000 })
        const done = new Map<number, Uint8Array>()
        let p = 0
        while (queues.some(q => q.length > 0)) {
          const live = queues.filter(q => q.length > 0)
          const q = live[(picks[p++] ?? 0) % live.length]!
          const c = q.shift()!
          const r = assembler.push(c)
          if (r !== null) done.set(c.messageId, r)
        }
        expect(done.size).toBe(inputs.length)
        inputs.forEach((input, i) => expect(done.get(i + 1)).toEqual(input))
        expect(assembler.bufferedBytes).toBe(0)
      },
    ), { seed, verbose: true, numRuns: 200 })
  })

  it('limits the bytes held for all incomplete messages together', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100, maxBufferedBytes: 150 })
    const chunk = (messageId: number, index: number, bytes = 50) => ({
      kind: FRAME_KINDS.CHUNK, document: 'd', messageId, index, total: 2, data: pattern(bytes, messageId),
    } as const)
    expect(assembler.push(chunk(1, 0))).toBeNull()
    expect(assembler.push(chunk(2, 0))).toBeNull()
    expect(assembler.bufferedBytes).toBe(100)
    expect(() => assembler.push(chunk(3, 0, 51))).toThrow(expect.objectContaining({ code: 'CONCORD_ERR_MESSAGE_TOO_LARGE' }))
    // the offending message is dropped; the others are still held and complete
    expect(assembler.bufferedBytes).toBe(100)
    expect(assembler.push(chunk(1, 1))).toEqual(new Uint8Array([...pattern(50, 1), ...pattern(50, 1)]))
    expect(assembler.bufferedBytes).toBe(50)
  })

  it('refuses empty pieces, impossible totals, and (when asked) tiny pieces before the last', () => {
    const piece = (index: number, total: number, bytes: number) => ({
      kind: FRAME_KINDS.CHUNK, document: 'd', messageId: 9, index, total, data: pattern(bytes, 1),
    } as const)
    const a = new ChunkAssembler({ maxMessageBytes: 1000 })
    expect(() => a.push(piece(0, 5, 0))).toThrow(expect.objectContaining({ code: 'CONCORD_ERR_PROTOCOL_BAD_CHUNK' }))
    expect(() => a.push(piece(0, 1001, 1))).toThrow(expect.objectContaining({ code: 'CONCORD_ERR_PROTOCOL_BAD_CHUNK' }))
    const b = new ChunkAssembler({ maxMessageBytes: 10_000, minPieceBytes: 100 })
    expect(b.push(piece(0, 3, 100))).toBeNull()
    expect(() => b.push(piece(1, 3, 99))).toThrow(expect.objectContaining({ code: 'CONCORD_ERR_PROTOCOL_BAD_CHUNK' }))
    expect(b.bufferedBytes).toBe(0)
    // the last piece may be short
    expect(b.push(piece(0, 2, 100))).toBeNull()
    expect(b.push(piece(1, 2, 1))).toHaveLength(101)
  })

  it('returns a single-chunk message at once', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 10 })
    expect(assembler.push(chunk(1, 0, 1, new Uint8Array([1, 2, 3])))).toEqual(new Uint8Array([1, 2, 3]))
  })

  it('copies the chunk data (the WebSocket buffer may be reused)', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100 })
    const first = new Uint8Array([1, 2])
    assembler.push(chunk(1, 0, 2, first))
    first.fill(0)
    expect(assembler.push(chunk(1, 1, 2, new Uint8Array([3])))).toEqual(new Uint8Array([1, 2, 3]))
  })

  it('refuses a chunk out of order and forgets that message', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100 })
    assembler.push(chunk(1, 0, 3))
    const err = concordError(() => assembler.push(chunk(1, 2, 3)))
    expect(err.code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
    expect(err.closeCode).toBe(4400)
    expect(assembler.bufferedBytes).toBe(0)
    // the message is gone: its next piece is now a piece of an unknown message
    expect(concordError(() => assembler.push(chunk(1, 1, 3))).code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
  })

  it('refuses a repeated index', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100 })
    assembler.push(chunk(1, 0, 3))
    assembler.push(chunk(1, 1, 3))
    expect(concordError(() => assembler.push(chunk(1, 1, 3))).code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
  })

  it('refuses a first piece whose index is not 0', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100 })
    expect(concordError(() => assembler.push(chunk(9, 1, 2))).code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
  })

  it('refuses a total of 0', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100 })
    expect(concordError(() => assembler.push(chunk(1, 0, 0))).code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
  })

  it('refuses a total that changes between pieces', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100 })
    assembler.push(chunk(1, 0, 3))
    expect(concordError(() => assembler.push(chunk(1, 1, 4))).code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
    expect(assembler.bufferedBytes).toBe(0)
  })

  it('refuses more chunked messages in flight than maxInFlight', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100, maxInFlight: 2 })
    assembler.push(chunk(1, 0, 2))
    assembler.push(chunk(2, 0, 2))
    const err = concordError(() => assembler.push(chunk(3, 0, 2)))
    expect(err.code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
    expect(err.message).toMatch(/more than 2/)
    // the two in flight are unaffected, and finishing one makes room
    expect(assembler.push(chunk(1, 1, 2))).toEqual(new Uint8Array([0, 1]))
    expect(assembler.push(chunk(3, 0, 2))).toBeNull()
  })

  it('allows 16 messages in flight by default, not 17', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100 })
    for (let id = 1; id <= 16; id++) assembler.push(chunk(id, 0, 2))
    expect(concordError(() => assembler.push(chunk(17, 0, 2))).code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
  })

  it('refuses a message larger than maxMessageBytes, and accepts exactly maxMessageBytes', () => {
    const exact = new ChunkAssembler({ maxMessageBytes: 10 })
    exact.push(chunk(1, 0, 2, pattern(6)))
    expect(exact.push(chunk(1, 1, 2, pattern(4)))).toHaveLength(10)

    const over = new ChunkAssembler({ maxMessageBytes: 10 })
    over.push(chunk(1, 0, 2, pattern(6)))
    expect(over.bufferedBytes).toBe(6)
    const err = concordError(() => over.push(chunk(1, 1, 2, pattern(5))))
    expect(err.code).toBe('CONCORD_ERR_MESSAGE_TOO_LARGE')
    expect(err.closeCode).toBe(1009)
    expect(over.bufferedBytes).toBe(0)
    // a single oversized piece is refused too
    expect(concordError(() => over.push(chunk(2, 0, 1, pattern(11)))).code).toBe('CONCORD_ERR_MESSAGE_TOO_LARGE')
  })

  it('counts buffered bytes of incomplete messages and clears them', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 100 })
    assembler.push(chunk(1, 0, 3, pattern(5)))
    assembler.push(chunk(2, 0, 2, pattern(7)))
    expect(assembler.bufferedBytes).toBe(12)
    assembler.clear()
    expect(assembler.bufferedBytes).toBe(0)
    // after clear, message 1 is unknown
    expect(concordError(() => assembler.push(chunk(1, 1, 3))).code).toBe('CONCORD_ERR_PROTOCOL_BAD_CHUNK')
  })
})

describe('frames given as parts', () => {
  it('encodeFrameParts concatenates to encodeFrame, and chunking the parts reassembles to the same frame', () => {
    fc.assert(fc.property(
      fc.constantFrom(FRAME_KINDS.SYNC_STEP2, FRAME_KINDS.UPDATE, FRAME_KINDS.AWARENESS),
      fc.oneof(fc.integer({ min: 0, max: 3_000 }), fc.integer({ min: FRAME_PARTS_MIN_PAYLOAD - 10, max: 150_000 })),
      fc.integer({ min: 1, max: 70_000 }),
      fc.nat({ max: 1000 }),
      (kind, payloadLength, maxChunkBytes, seq) => {
        // at most a few hundred chunks per case
        const chunkBytes = Math.max(maxChunkBytes, Math.ceil(payloadLength / 300))
        const update = pattern(payloadLength, seq)
        const frame = kind === FRAME_KINDS.UPDATE
          ? { kind, document: 'doc/π', seq, update }
          : { kind, document: 'doc/π', update }
        const whole = encodeFrame(frame)
        const parts = encodeFrameParts(frame)
        expect(sameBytes(concat(parts), whole)).toBe(true)
        // a large payload is passed through, not copied
        if (payloadLength >= FRAME_PARTS_MIN_PAYLOAD) expect(parts[1]).toBe(update)
        const assembler = new ChunkAssembler({ maxMessageBytes: 1 << 20 })
        let out: Uint8Array | null = null
        for (const bytes of chunkFrame(parts, 'doc/π', 3, chunkBytes)) {
          const f = decodeFrame(bytes) as Chunk
          expect(f.data.length).toBeLessThanOrEqual(chunkBytes)
          out = assembler.push(f)
        }
        expect(out !== null && sameBytes(out, whole)).toBe(true)
      },
    ), { seed, numRuns: 60 })
  })

  it('encodeYMessageParts concatenates to encodeYMessage', () => {
    for (const type of ['sync-step2', 'update'] as const) {
      for (const n of [0, 10, FRAME_PARTS_MIN_PAYLOAD, 300_000]) {
        const message = { type, update: pattern(n, 5) }
        expect(sameBytes(concat(encodeYMessageParts(message)), encodeYMessage(message))).toBe(true)
      }
    }
  })
})

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
}
