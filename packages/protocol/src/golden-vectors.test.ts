import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  decodeFrame, encodeFrame, FRAME_KINDS, FrameDecodeError, isUnknownFrame, type Frame,
} from './native-frame.js'
import { chunkFrame, ChunkAssembler } from './chunking.js'
import { decodeYMessage, encodeYMessage, type YMessage } from './y-websocket-message.js'

/**
 * The golden byte vectors live in docs/protocol.md (section 6), between
 * `<!-- golden:TAG -->` and `<!-- /golden:TAG -->` markers. This test reads them
 * from there, so the document and the code cannot drift apart.
 */
const PROTOCOL_MD = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url))
const markdown = readFileSync(PROTOCOL_MD, 'utf8')

/** Byte-array fields are written as lowercase hex strings in the JSON columns. */
const BYTE_FIELDS = new Set(['stateVector', 'update', 'data'])

function fromHex(hex: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) throw new Error(`not lowercase hex: ${JSON.stringify(hex)}`)
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('')
}

function codeSpan(cell: string): string {
  const m = /^`(.*)`$/.exec(cell)
  if (m === null) throw new Error(`expected a code span, got ${JSON.stringify(cell)}`)
  return m[1]!
}

/** Body rows of the table between the markers of `tag`, as trimmed cells. */
function goldenTable(tag: string, columns: number): string[][] {
  const start = markdown.indexOf(`<!-- golden:${tag} -->`)
  const end = markdown.indexOf(`<!-- /golden:${tag} -->`)
  if (start < 0 || end < start) throw new Error(`docs/protocol.md has no golden table "${tag}"`)
  const lines = markdown.slice(start, end).split('\n').filter(l => l.startsWith('|'))
  // the first line is the header, the second the |---| separator
  expect(lines[1]).toMatch(/^\|(?:-+\|)+$/)
  const rows = lines.slice(2).map(line => line.split('|').slice(1, -1).map(c => c.trim()))
  for (const r of rows) expect(r).toHaveLength(columns)
  expect(rows.length).toBeGreaterThan(0)
  return rows
}

function reviveBytes<T>(json: string): T {
  return JSON.parse(json, (key, value: unknown) => (BYTE_FIELDS.has(key) && typeof value === 'string' ? fromHex(value) : value)) as T
}

const nativeRows = goldenTable('native', 3).map(([name, json, hex]) => ({
  name: name!, frame: reviveBytes<Frame>(codeSpan(json!)), bytes: fromHex(codeSpan(hex!)),
}))

describe('golden vectors: native frames (docs/protocol.md 6.1)', () => {
  it('has at least one vector for every frame kind and unique names', () => {
    const kinds = new Set(nativeRows.map(r => r.frame.kind))
    for (const kind of Object.values(FRAME_KINDS)) expect(kinds, `no vector for kind ${kind}`).toContain(kind)
    expect(new Set(nativeRows.map(r => r.name)).size).toBe(nativeRows.length)
  })

  it.each(nativeRows.map(r => [r.name, r] as const))('%s: encoding the values gives the bytes', (_name, row) => {
    expect(toHex(encodeFrame(row.frame))).toBe(toHex(row.bytes))
  })

  it.each(nativeRows.map(r => [r.name, r] as const))('%s: decoding the bytes gives the values', (_name, row) => {
    expect(decodeFrame(row.bytes)).toEqual(row.frame)
  })

  it('spells out the multi-byte varUints of the worked examples', () => {
    const welcome = nativeRows.find(r => r.name === 'welcome')!
    expect(toHex(welcome.bytes)).toBe('01' + '00' + '01' + '07636f6e636f7264' + '80808020' + '808010' + 'b0ea01')
    const ack = nativeRows.find(r => r.name === 'ack')!
    expect(toHex(ack.bytes)).toBe('08' + '076e6f7465732f31' + '02' + '0102' + '0500')
  })
})

describe('golden vectors: chunking (docs/protocol.md 6.2)', () => {
  const chunkRows = goldenTable('chunking', 3).map(([name, json, hex]) => ({
    name: name!, frame: reviveBytes<Frame>(codeSpan(json!)), bytes: fromHex(codeSpan(hex!)),
  }))
  const inner = nativeRows.find(r => r.name === 'sync-step2')!.bytes

  it('chunkFrame(sync-step2, "notes/1", 3, 8) produces exactly the documented CHUNK frames', () => {
    expect([...chunkFrame(inner, 'notes/1', 3, 8)].map(toHex)).toEqual(chunkRows.map(r => toHex(r.bytes)))
  })

  it('the documented values encode to the documented bytes and back', () => {
    for (const r of chunkRows) {
      expect(toHex(encodeFrame(r.frame))).toBe(toHex(r.bytes))
      expect(decodeFrame(r.bytes)).toEqual(r.frame)
    }
  })

  it('reassembling the pieces gives the sync-step2 frame back', () => {
    const assembler = new ChunkAssembler({ maxMessageBytes: 1024 })
    const results = chunkRows.map(r => {
      const f = decodeFrame(r.bytes)
      if (isUnknownFrame(f) || f.kind !== FRAME_KINDS.CHUNK) throw new Error(`${r.name} is not a CHUNK`)
      return assembler.push(f)
    })
    expect(results.slice(0, -1)).toEqual([null, null])
    expect(toHex(results.at(-1)!)).toBe(toHex(inner))
  })
})

describe('golden vectors: unknown kind (docs/protocol.md 6.3)', () => {
  it.each(goldenTable('decode-only', 3))('%s decodes to its header only', (_name, json, hex) => {
    const frame = decodeFrame(fromHex(codeSpan(hex!)))
    expect(isUnknownFrame(frame)).toBe(true)
    expect(frame).toEqual(JSON.parse(codeSpan(json!)))
  })
})

describe('golden vectors: rejected frames (docs/protocol.md 6.4)', () => {
  it.each(goldenTable('rejected', 4))('%s is a FrameDecodeError', (_name, hex, documentCell) => {
    const bytes = fromHex(codeSpan(hex!))
    let thrown: unknown
    try {
      decodeFrame(bytes)
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(FrameDecodeError)
    const expected = documentCell === 'none' ? undefined : JSON.parse(codeSpan(documentCell!)) as string
    expect((thrown as FrameDecodeError).document).toBe(expected)
  })
})

describe('golden vectors: y-websocket messages (docs/protocol.md 6.5)', () => {
  const yRows = goldenTable('y-websocket', 3).map(([name, json, hex]) => ({
    name: name!, message: reviveBytes<YMessage>(codeSpan(json!)), bytes: fromHex(codeSpan(hex!)),
  }))

  it('has a vector for every message type', () => {
    expect(new Set(yRows.map(r => r.message.type))).toEqual(new Set([
      'sync-step1', 'sync-step2', 'update', 'awareness', 'permission-denied', 'query-awareness',
    ]))
  })

  it.each(yRows.map(r => [r.name, r] as const))('%s: encode gives the bytes, decode gives the values', (_name, row) => {
    expect(toHex(encodeYMessage(row.message))).toBe(toHex(row.bytes))
    expect(decodeYMessage(row.bytes)).toEqual(row.message)
  })
})
