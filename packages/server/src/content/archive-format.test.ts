import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ConcordError } from '@concord/protocol'
import { ArchiveDecoder, ArchiveEncoder, type ArchivedDocument, type ArchivedVersion, type ArchiveRecord } from './archive-format.js'

function textUpdate(text: string, client = 1): Uint8Array {
  const doc = new Y.Doc()
  doc.clientID = client
  doc.getText('default').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

const doc = (name: string, text: string): ArchivedDocument => ({ name, state: textUpdate(text), lastSeq: 7, updatedAt: 1_700_000_000_000, authors: [{ client: 1, userId: 'ann' }] })
const version = (document: string, id: string, text: string): ArchivedVersion => ({
  document, id, kind: 'named', name: `v ${id}`, createdAt: 1_700_000_000_001, createdBy: 'ann', authors: ['ann', 'bob'], seq: 5, snapshot: textUpdate(text),
})

/** A two-document archive, as lines (each with its newline). */
function sample(): string[] {
  const e = new ArchiveEncoder()
  return [
    e.header({ exportedAt: '2025-01-01T00:00:00.000Z', concord: '0.1.0', source: 'sqlite', documents: 2 }),
    e.document(doc('acme/a', 'alpha')),
    e.version(version('acme/a', 'v1', 'alp')),
    e.version(version('acme/a', 'v2', 'alph')),
    e.document({ ...doc('acme/b', ''), authors: [] }),
    e.end(),
  ]
}

function decodeAll(text: string): { records: ArchiveRecord[]; end: ReturnType<ArchiveDecoder['finish']> } {
  const d = new ArchiveDecoder()
  const parts = text.split('\n')
  const rest = parts.pop()!
  const records = parts.map(line => d.line(line))
  return { records, end: d.finish(rest) }
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConcordError) return err.code
    throw err
  }
  return undefined
}

describe('archive format', () => {
  it('decodes what it encodes: header, documents with their versions, and a trailer with counts and checksum', () => {
    const { records, end } = decodeAll(sample().join(''))
    expect(records.map(r => r.type)).toEqual(['header', 'document', 'version', 'version', 'document', 'end'])
    const first = records[1] as Extract<ArchiveRecord, { type: 'document' }>
    expect(first.document).toEqual(doc('acme/a', 'alpha'))
    expect((records[3] as Extract<ArchiveRecord, { type: 'version' }>).version).toEqual(version('acme/a', 'v2', 'alph'))
    expect(end.header).toEqual({ exportedAt: '2025-01-01T00:00:00.000Z', concord: '0.1.0', source: 'sqlite', documents: 2 })
    expect(end.trailer).toMatchObject({ documents: 2, versions: 2 })
    expect(end.trailer.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(JSON.parse(sample()[0]!)).toMatchObject({ format: 'concord-archive', version: 1 })
  })

  it('refuses an archive without its end record, or whose last line is cut, as truncated', () => {
    const lines = sample()
    expect(codeOf(() => decodeAll(lines.slice(0, -1).join('')))).toBe('CONCORD_ERR_ARCHIVE_TRUNCATED')
    expect(codeOf(() => decodeAll(lines.slice(0, 3).join('')))).toBe('CONCORD_ERR_ARCHIVE_TRUNCATED')
    const whole = lines.join('')
    for (const cut of [whole.length - 5, whole.length - lines.at(-1)!.length - 20]) {
      expect(codeOf(() => decodeAll(whole.slice(0, cut))), `cut at ${cut}`).toBe('CONCORD_ERR_ARCHIVE_TRUNCATED')
    }
  })

  it('refuses an unknown format version, and anything that is not an archive', () => {
    const lines = sample()
    const v2 = JSON.stringify({ ...JSON.parse(lines[0]!), version: 2 })
    expect(codeOf(() => decodeAll([`${v2}\n`, ...lines.slice(1)].join('')))).toBe('CONCORD_ERR_ARCHIVE_UNSUPPORTED_VERSION')
    expect(codeOf(() => decodeAll('PK\u0003\u0004 garbage\n'))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll('{"format":"something-else","version":1}\n'))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll(''))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
  })

  it('refuses a damaged archive: a changed byte (checksum), bad base64, bytes that are no Yjs update, a version out of place, a name twice, wrong counts', () => {
    const lines = sample()
    const edit = (i: number, change: (r: Record<string, unknown>) => void): string => {
      const copy = [...lines]
      const r = JSON.parse(copy[i]!) as Record<string, unknown>
      change(r)
      copy[i] = `${JSON.stringify(r)}\n`
      return copy.join('')
    }
    expect(codeOf(() => decodeAll(edit(1, r => { r.updatedAt = 1 })))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll(edit(1, r => { r.state = 'not base64!' })))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll(edit(2, r => { r.snapshot = Buffer.from([5, 200, 1, 2, 3]).toString('base64') })))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll(edit(2, r => { r.document = 'acme/b' })))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll(edit(4, r => { r.name = 'acme/a' })))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll(edit(5, r => { r.versions = 3 })))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll(edit(2, r => { r.kind = 'other' })))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    expect(codeOf(() => decodeAll([...lines, 'more\n'].join('')))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
    // a line left out in the middle: the counts and checksum no longer hold
    expect(codeOf(() => decodeAll([...lines.slice(0, 2), ...lines.slice(3)].join('')))).toBe('CONCORD_ERR_ARCHIVE_MALFORMED')
  })

  it('names the line of a problem', () => {
    const lines = sample()
    const d = new ArchiveDecoder()
    d.line(lines[0]!.trimEnd())
    expect(() => d.line('{"type":"document","name":"x","authors":[]}')).toThrow(/line 2: state is not base64/)
  })
})
