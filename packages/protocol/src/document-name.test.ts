import { describe, expect, it } from 'vitest'
import { assertDocumentName, documentNameProblem, MAX_DOCUMENT_NAME_BYTES } from './document-name.js'
import { ConcordError } from './errors.js'

describe('documentNameProblem', () => {
  it('accepts ordinary names, including slashes, spaces and non-ASCII', () => {
    for (const name of ['a', 'notes/1', 'team space/plan 2025.md', 'café/日本', '🙂', 'x'.repeat(MAX_DOCUMENT_NAME_BYTES)]) {
      expect(documentNameProblem(name), name).toBeNull()
    }
  })

  it('rejects the empty name', () => {
    expect(documentNameProblem('')).toMatch(/empty/)
  })

  it('limits the name to 512 UTF-8 bytes, not characters', () => {
    expect(MAX_DOCUMENT_NAME_BYTES).toBe(512)
    expect(documentNameProblem('x'.repeat(513))).toMatch(/512 bytes/)
    // 171 three-byte characters = 513 bytes, 170 = 510 bytes
    expect(documentNameProblem('日'.repeat(171))).toMatch(/512 bytes/)
    expect(documentNameProblem('日'.repeat(170))).toBeNull()
  })

  it('rejects C0 and C1 control characters and DEL', () => {
    for (const c of ['\u0000', '\n', '\t', '\u001f', '\u007f', '\u0085', '\u009f']) {
      expect(documentNameProblem(`a${c}b`), JSON.stringify(c)).toMatch(/control/)
    }
    expect(documentNameProblem('a\u00a0b')).toBeNull()
  })
})

describe('assertDocumentName', () => {
  it('throws CONCORD_ERR_DOC_INVALID_NAME naming the document', () => {
    expect(() => assertDocumentName('ok')).not.toThrow()
    let thrown: unknown
    try {
      assertDocumentName('bad\nname')
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(ConcordError)
    expect(thrown).toMatchObject({ code: 'CONCORD_ERR_DOC_INVALID_NAME', document: 'bad\nname', httpStatus: 400 })
  })
})
