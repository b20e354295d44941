import { readFile } from 'node:fs/promises'
import type { Role } from '@concord/protocol'

/**
 * A recording of one document's inbound messages: JSON Lines, one record per line.
 *
 *   recording = header base? body* (end | truncated-line)?
 *   header    = {"type":"header","format":"concord-recording","version":1,"document","startedAt","server","reason"}
 *   base      = {"type":"base","t","update"}               the document's whole state when recording began
 *   body      = open | update | awareness | close | refused
 *   open      = {"type":"open","t","session","user","role","protocol"}
 *   update    = {"type":"update","t","session","data","refused"?}   an inbound Yjs update (v1) as received
 *   awareness = {"type":"awareness","t","session","data"}
 *   close     = {"type":"close","t","session"}
 *   refused   = {"type":"refused","t","session","code"}    the session's previous update was refused (written
 *                                                          when the refusal came after that update was on disk)
 *   end       = {"type":"end","t","update"}                encodeStateAsUpdate of the server's document at the end
 *
 * `t` is milliseconds since `startedAt`; byte fields are standard base64. A file
 * without an end record (the server stopped or crashed) can be replayed but not
 * compared. A last line cut off by a crash is tolerated (`truncated`).
 */
export const RECORDING_FORMAT = 'concord-recording'
export const RECORDING_VERSION = 1

export type RecordingReason = 'all' | 'sampled'
export type RecordedProtocol = 'native' | 'y-websocket'

export interface HeaderRecord {
  type: 'header'
  format: typeof RECORDING_FORMAT
  version: typeof RECORDING_VERSION
  document: string
  /** Milliseconds since the epoch. */
  startedAt: number
  /** The recording server's name and version. */
  server: string
  /** Recorded because the document was listed (`all`) or drawn by the sample rate. */
  reason: RecordingReason
}

export interface BaseRecord {
  type: 'base'
  t: number
  /** base64 Yjs update (v1): the whole document when recording began; may be an empty document. */
  update: string
}

export interface OpenRecord {
  type: 'open'
  t: number
  session: string
  user: string | null
  role: Role
  protocol: RecordedProtocol
}

export interface UpdateRecord {
  type: 'update'
  t: number
  session: string
  /** base64 Yjs update (v1), as received. */
  data: string
  /** The error code with which the recording server refused this update (it was never applied there). */
  refused?: string
}

export interface AwarenessRecord {
  type: 'awareness'
  t: number
  session: string
  /** base64 awareness update. */
  data: string
}

export interface CloseRecord {
  type: 'close'
  t: number
  session: string
}

export interface RefusedRecord {
  type: 'refused'
  t: number
  session: string
  code: string
}

export interface EndRecord {
  type: 'end'
  t: number
  /** base64 `Y.encodeStateAsUpdate` of the server's document when recording ended. */
  update: string
}

/** What a session did, between the base and the end record. */
export type SessionRecord = OpenRecord | UpdateRecord | AwarenessRecord | CloseRecord | RefusedRecord

export type RecordingRecord = HeaderRecord | BaseRecord | SessionRecord | EndRecord

export type RecordType = RecordingRecord['type']

export interface Recording {
  readonly path: string
  readonly header: HeaderRecord
  /** The document when recording began; null when the file ends before its base record. */
  readonly base: Uint8Array | null
  /**
   * Session records in file order. A `refused` record is folded into the
   * session's update before it (that update's `refused` is set); the record itself is kept.
   */
  readonly records: readonly SessionRecord[]
  /** The server's document at the end; null when the recording was never finished. */
  readonly end: { t: number; update: Uint8Array } | null
  /** The last line was cut off (a crash mid-write) and was ignored. */
  readonly truncated: boolean
  /** Number of records read. */
  readonly lineCount: number
}

/** A recording file that cannot be read; `line` is 1-based (0: the file as a whole). */
export class RecordingFormatError extends Error {
  readonly path: string
  readonly line: number
  constructor(path: string, line: number, message: string, options?: { cause?: unknown }) {
    super(line > 0 ? `${path}: line ${line}: ${message}` : `${path}: ${message}`, options)
    this.name = 'RecordingFormatError'
    this.path = path
    this.line = line
  }
}

/** One record as one line, newline included. */
export function encodeRecord(record: RecordingRecord): string {
  return `${JSON.stringify(record)}\n`
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/** Decode standard base64; null unless `text` is exactly the canonical encoding of some bytes. */
export function decodeBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0) return null
  const buf = Buffer.from(text, 'base64')
  // Node skips characters outside the alphabet and accepts base64url: a round trip catches both
  if (buf.toString('base64') !== text) return null
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
}

/**
 * Read and validate a recording. Throws `RecordingFormatError` naming the line
 * for malformed JSON, an unknown type, a missing or mistyped field, bad base64,
 * a record out of place, or a wrong format or version. A last line without its
 * newline that does not parse is taken as cut off by a crash (`truncated`).
 */
export async function readRecording(path: string): Promise<Recording> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new RecordingFormatError(path, 0, `cannot read the recording: ${(err as Error).message}`, { cause: err })
  }
  return parseRecording(text, path)
}

/** `readRecording` for text already in memory. */
export function parseRecording(text: string, path = '<recording>'): Recording {
  const lines = text.split('\n')
  // a complete file ends with a newline: the last piece is empty
  const last = lines.pop()!
  let truncated = false
  if (last !== '') {
    try {
      JSON.parse(last)
      lines.push(last) // whole, only its newline is missing
    } catch {
      truncated = true
    }
  }
  if (lines.length === 0) {
    throw new RecordingFormatError(path, truncated ? 1 : 0, truncated ? 'the file ends inside its header: nothing was recorded' : 'the file is empty: no header')
  }
  let header: HeaderRecord | null = null
  let base: Uint8Array | null = null
  let end: { t: number; update: Uint8Array } | null = null
  const records: SessionRecord[] = []
  /** Each session's latest update, for `refused` records. */
  const lastUpdate = new Map<string, UpdateRecord>()
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1
    const fail = (message: string): never => { throw new RecordingFormatError(path, n, message) }
    const record = parseLine(lines[i]!, fail)
    if (n === 1) {
      if (record.type !== 'header') fail(`expected the header record, got "${record.type}"`)
      header = record as HeaderRecord
      continue
    }
    if (end !== null) fail(`"${record.type}" record after the end record`)
    switch (record.type) {
      case 'header':
        fail('a second header record')
        break
      case 'base':
        if (n !== 2) fail('the base record must directly follow the header')
        base = decodeBase64(record.update)!
        break
      case 'end':
        end = { t: record.t, update: decodeBase64(record.update)! }
        break
      default:
        if (n === 2) fail(`expected the base record, got "${record.type}"`)
        if (record.type === 'update') {
          lastUpdate.set(record.session, record)
        } else if (record.type === 'refused') {
          const update = lastUpdate.get(record.session)
          if (update === undefined) fail(`refused record for session ${JSON.stringify(record.session)}, which sent no update before it`)
          else update.refused ??= record.code
        }
        records.push(record)
    }
  }
  return { path, header: header!, base, records, end, truncated, lineCount: lines.length }
}

type Fail = (message: string) => never

/** Fields every record of a type must have, with their checks. */
const FIELDS: Record<RecordType, Record<string, (v: unknown) => string | null>> = {
  header: {
    format: v => v === RECORDING_FORMAT ? null : `is ${JSON.stringify(v)}, expected "${RECORDING_FORMAT}": not a Concord recording`,
    version: v => v === RECORDING_VERSION ? null : `is ${JSON.stringify(v)}: unsupported version, this build reads version ${RECORDING_VERSION}`,
    document: nonEmptyString,
    startedAt: v => typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'must be a time in ms since the epoch',
    server: v => typeof v === 'string' ? null : 'must be a string',
    reason: v => v === 'all' || v === 'sampled' ? null : 'must be "all" or "sampled"',
  },
  base: { t: time, update: base64 },
  open: {
    t: time, session: nonEmptyString,
    user: v => v === null || typeof v === 'string' ? null : 'must be a string or null',
    role: v => v === 'read' || v === 'write' || v === 'admin' ? null : 'must be "read", "write" or "admin"',
    protocol: v => v === 'native' || v === 'y-websocket' ? null : 'must be "native" or "y-websocket"',
  },
  update: { t: time, session: nonEmptyString, data: base64 },
  awareness: { t: time, session: nonEmptyString, data: base64 },
  close: { t: time, session: nonEmptyString },
  refused: { t: time, session: nonEmptyString, code: nonEmptyString },
  end: { t: time, update: base64 },
}

function parseLine(line: string, fail: Fail): RecordingRecord {
  if (line.trim() === '') fail('empty line')
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (err) {
    fail(`malformed JSON: ${(err as Error).message}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('a record must be a JSON object')
  const record = value as Record<string, unknown>
  const type = record.type
  if (typeof type !== 'string') fail('missing field "type"')
  if (!Object.hasOwn(FIELDS, type as string)) fail(`unknown record type ${JSON.stringify(type)}`)
  for (const [field, check] of Object.entries(FIELDS[type as RecordType])) {
    if (!Object.hasOwn(record, field)) fail(`${type} record: missing field "${field}"`)
    const problem = check(record[field])
    if (problem !== null) fail(`${type} record: field "${field}" ${problem}`)
  }
  if (type === 'update' && record.refused !== undefined) {
    const problem = nonEmptyString(record.refused)
    if (problem !== null) fail(`update record: field "refused" ${problem}`)
  }
  return record as unknown as RecordingRecord
}

function nonEmptyString(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? null : 'must be a non-empty string'
}

function time(v: unknown): string | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'must be a number of ms, at least 0'
}

function base64(v: unknown): string | null {
  if (typeof v !== 'string') return 'must be a base64 string'
  return decodeBase64(v) === null ? 'is not valid base64' : null
}
