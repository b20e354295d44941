import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { ConcordError, ERROR_CODES, isErrorCode, type ErrorCode, type ErrorCodeInfo } from './errors.js'
import { CLOSE_CODES, classifyCloseCode } from './close-codes.js'

const ERRORS_MD = fileURLToPath(new URL('../../../docs/errors.md', import.meta.url))
const markdown = readFileSync(ERRORS_MD, 'utf8')
const lines = markdown.split('\n')

const codes = Object.keys(ERROR_CODES) as ErrorCode[]
const info = (code: ErrorCode): ErrorCodeInfo => ERROR_CODES[code]

function cells(line: string): string[] {
  return line.split('|').slice(1, -1).map(c => c.trim())
}

function optionalNumber(cell: string): number | undefined {
  if (cell === '—') return undefined
  if (!/^\d+$/.test(cell)) throw new Error(`expected a number or —, got ${JSON.stringify(cell)}`)
  return Number(cell)
}

/** Rows of the error table: each starts with "| `CONCORD_ERR_...` |". */
const errorRows = lines.filter(l => l.startsWith('| `CONCORD_ERR_')).map(line => {
  const c = cells(line)
  expect(c, line).toHaveLength(6)
  const code = /^`(CONCORD_ERR_[A-Z_]+)`$/.exec(c[0]!)?.[1]
  if (code === undefined) throw new Error(`bad code cell in ${line}`)
  if (c[2] !== 'yes' && c[2] !== 'no') throw new Error(`retryable must be yes or no in ${line}`)
  return {
    code, scope: c[1]!, retryable: c[2] === 'yes',
    closeCode: optionalNumber(c[3]!), httpStatus: optionalNumber(c[4]!), description: c[5]!,
  }
})

/** Rows of the close-code table: "| 4400 | `BAD_REQUEST` | permanent | ... |". */
const closeRows = lines.filter(l => /^\| \d{4} \| `[A-Z_]+` \|/.test(l)).map(line => {
  const c = cells(line)
  expect(c, line).toHaveLength(5)
  return { code: Number(c[0]), name: c[1]!.slice(1, -1), class: c[2]! }
})

describe('docs/errors.md lists exactly ERROR_CODES', () => {
  it('has a row for every code, exactly once', () => {
    expect(errorRows.length).toBeGreaterThan(0)
    for (const code of codes) expect(errorRows.filter(r => r.code === code), code).toHaveLength(1)
  })

  it('lists no code that ERROR_CODES lacks', () => {
    for (const row of errorRows) expect(isErrorCode(row.code), row.code).toBe(true)
    expect(errorRows).toHaveLength(codes.length)
  })

  it('gives every code the same scope, retryable flag, close code, HTTP status and description', () => {
    for (const row of errorRows) {
      if (!isErrorCode(row.code)) continue
      const i = info(row.code)
      expect({ ...row }, row.code).toEqual({
        code: row.code, scope: i.scope, retryable: i.retryable,
        closeCode: i.closeCode, httpStatus: i.httpStatus, description: i.description,
      })
    }
  })

  it('mentions no unknown CONCORD_ERR_ code anywhere on the page', () => {
    const mentioned = new Set(markdown.match(/CONCORD_ERR_[A-Z_]+[A-Z]/g))
    for (const code of mentioned) expect(isErrorCode(code), code).toBe(true)
  })
})

describe('docs/errors.md close-code table', () => {
  it('lists every CLOSE_CODES entry once, with its name and its classifyCloseCode class', () => {
    const entries = Object.entries(CLOSE_CODES)
    expect(closeRows).toHaveLength(entries.length)
    for (const [name, code] of entries) {
      const rows = closeRows.filter(r => r.code === code)
      expect(rows, `${code} ${name}`).toHaveLength(1)
      expect(rows[0]).toEqual({ code, name, class: classifyCloseCode(code) })
    }
  })
})

describe('ERROR_CODES invariants', () => {
  it('names every code CONCORD_ERR_<AREA>_<WHAT>', () => {
    for (const code of codes) expect(code).toMatch(/^CONCORD_ERR_[A-Z0-9]+(?:_[A-Z0-9]+)+$/)
  })

  it('gives every connection-scoped code a close code, and every http-scoped code an HTTP status', () => {
    for (const code of codes) {
      const i = info(code)
      if (i.scope === 'connection') expect(i.closeCode, code).toBeTypeOf('number')
      if (i.scope === 'http') expect(i.httpStatus, code).toBeTypeOf('number')
    }
  })

  it('uses only close codes from CLOSE_CODES and HTTP statuses 400-599', () => {
    const known = new Set<number>(Object.values(CLOSE_CODES))
    for (const code of codes) {
      const { closeCode, httpStatus } = info(code)
      if (closeCode !== undefined) expect(known.has(closeCode), `${code}: ${closeCode}`).toBe(true)
      if (httpStatus !== undefined) expect(httpStatus, code).toSatisfy((s: number) => s >= 400 && s <= 599)
    }
  })

  it('never closes a retryable error with a permanent (44xx) close code', () => {
    for (const code of codes) {
      const { retryable, closeCode } = info(code)
      if (!retryable || closeCode === undefined) continue
      expect(closeCode >= 4400 && closeCode <= 4499, `${code}: ${closeCode}`).toBe(false)
      expect(classifyCloseCode(closeCode), code).toBe('transient')
    }
  })

  it('closes non-retryable errors with permanent codes, except MESSAGE_TOO_LARGE (1009)', () => {
    const transient = codes.filter(code => {
      const { retryable, closeCode } = info(code)
      return !retryable && closeCode !== undefined && classifyCloseCode(closeCode) !== 'permanent'
    })
    expect(transient).toEqual(['CONCORD_ERR_MESSAGE_TOO_LARGE'])
  })

  it('has the codes the protocol spec relies on, with their documented close codes', () => {
    expect(info('CONCORD_ERR_PROTOCOL_MALFORMED_FRAME')).toMatchObject({ scope: 'connection', closeCode: 4400 })
    expect(info('CONCORD_ERR_PROTOCOL_UNSUPPORTED_VERSION')).toMatchObject({ scope: 'connection', closeCode: 4406 })
    expect(info('CONCORD_ERR_PROTOCOL_UNKNOWN_KIND')).toMatchObject({ scope: 'document' })
    expect(info('CONCORD_ERR_AUTH_FORBIDDEN')).toMatchObject({ scope: 'document', retryable: false, closeCode: 4403, httpStatus: 403 })
    expect(info('CONCORD_ERR_STORAGE_WRITE_FAILED')).toMatchObject({ scope: 'document', retryable: true })
  })
})

describe('ConcordError', () => {
  it('carries the table entry of its code', () => {
    const cause = new Error('disk full')
    const err = new ConcordError('CONCORD_ERR_STORAGE_WRITE_FAILED', 'append failed', { cause, document: 'notes/1' })
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe('ConcordError')
    expect(err.code).toBe('CONCORD_ERR_STORAGE_WRITE_FAILED')
    expect(err.message).toBe('append failed')
    expect(err.retryable).toBe(true)
    expect(err.closeCode).toBe(4503)
    expect(err.httpStatus).toBe(503)
    expect(err.document).toBe('notes/1')
    expect(err.cause).toBe(cause)
  })

  it('defaults the message to the description, and has no cause or document unless given', () => {
    const err = new ConcordError('CONCORD_ERR_AUTH_DENIED')
    expect(err.message).toBe(ERROR_CODES.CONCORD_ERR_AUTH_DENIED.description)
    expect(err.closeCode).toBe(4401)
    expect(err.httpStatus).toBe(401)
    expect(err.retryable).toBe(false)
    expect('cause' in err).toBe(false)
    expect(err.document).toBeUndefined()
  })
})

describe('isErrorCode', () => {
  it('accepts the table keys only', () => {
    for (const code of codes) expect(isErrorCode(code)).toBe(true)
    for (const s of ['', 'CONCORD_ERR_NOPE', 'concord_err_auth_denied', 'toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      expect(isErrorCode(s), s).toBe(false)
    }
  })
})

describe('classifyCloseCode', () => {
  it.each([
    [1000, 'normal'],
    [1001, 'transient'],
    [1002, 'permanent'],
    [1003, 'permanent'],
    [1005, 'transient'],
    [1006, 'transient'],
    [1008, 'permanent'],
    [1009, 'transient'],
    [1011, 'transient'],
    [1013, 'transient'],
    [4000, 'transient'],
    [4399, 'transient'],
    [4400, 'permanent'],
    [4401, 'permanent'],
    [4403, 'permanent'],
    [4406, 'permanent'],
    [4499, 'permanent'],
    [4500, 'transient'],
    [4503, 'transient'],
    [4508, 'transient'],
    [4529, 'transient'],
    [4999, 'transient'],
  ] as const)('%i is %s', (code, expected) => {
    expect(classifyCloseCode(code)).toBe(expected)
  })
})
