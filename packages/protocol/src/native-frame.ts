import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/**
 * Native multiplexed protocol: every frame is one binary WebSocket message
 *
 *   frame = kind:varUint document:varString body
 *
 * `document` is the empty string for connection-level frames (HELLO, WELCOME,
 * PING, PONG, connection errors). Because the header is the same for every kind,
 * a receiver can always tell which document a frame of an unknown kind concerns
 * and answer with a document-scoped error instead of closing the socket.
 * The grammar of each body is in docs/protocol.md.
 */
export const FRAME_KINDS = {
  HELLO: 0,
  WELCOME: 1,
  OPEN: 2,
  OPENED: 3,
  CLOSE: 4,
  SYNC_STEP1: 5,
  SYNC_STEP2: 6,
  UPDATE: 7,
  ACK: 8,
  AWARENESS: 9,
  QUERY_AWARENESS: 10,
  ERROR: 11,
  CHUNK: 12,
  PING: 13,
  PONG: 14,
  AUTH: 15,
  AUTH_STATE: 16,
  REPLICATED: 17,
  STATELESS: 18,
} as const

export type FrameKind = (typeof FRAME_KINDS)[keyof typeof FRAME_KINDS]

/** Roles a session can hold on a document. */
export type Role = 'read' | 'write' | 'admin'

/** An inclusive range of client sequence numbers. */
export interface SeqRange {
  from: number
  to: number
}

export type Frame =
  | { kind: typeof FRAME_KINDS.HELLO; document: ''; minVersion: number; maxVersion: number; client: string }
  | {
    kind: typeof FRAME_KINDS.WELCOME; document: ''; version: number; server: string
    maxMessageBytes: number; chunkBytes: number; heartbeatIntervalMs: number
  }
  | { kind: typeof FRAME_KINDS.OPEN; document: string; token: string; stateVector: Uint8Array }
  | { kind: typeof FRAME_KINDS.OPENED; document: string; role: Role }
  | { kind: typeof FRAME_KINDS.CLOSE; document: string }
  | { kind: typeof FRAME_KINDS.SYNC_STEP1; document: string; stateVector: Uint8Array }
  | { kind: typeof FRAME_KINDS.SYNC_STEP2; document: string; update: Uint8Array }
  | { kind: typeof FRAME_KINDS.UPDATE; document: string; seq: number; update: Uint8Array }
  | { kind: typeof FRAME_KINDS.ACK; document: string; ranges: SeqRange[] }
  | { kind: typeof FRAME_KINDS.AWARENESS; document: string; update: Uint8Array }
  | { kind: typeof FRAME_KINDS.QUERY_AWARENESS; document: string }
  | { kind: typeof FRAME_KINDS.ERROR; document: string; code: string; message: string; seq: number; closed: boolean }
  | { kind: typeof FRAME_KINDS.CHUNK; document: string; messageId: number; index: number; total: number; data: Uint8Array }
  | { kind: typeof FRAME_KINDS.PING; document: '' }
  | { kind: typeof FRAME_KINDS.PONG; document: '' }
  /** Client to server: a fresh token for an open document (before the old one expires). */
  | { kind: typeof FRAME_KINDS.AUTH; document: string; token: string }
  /**
   * Server to client: the session's current role, and how long its token stays
   * valid (0: no expiry). Sent after OPENED when the token expires, after each
   * accepted AUTH, and when an administrator changes the role.
   */
  | { kind: typeof FRAME_KINDS.AUTH_STATE; document: string; role: Role; expiresInMs: number }
  /**
   * Server to client, with regions: the updates with these seqs (acked before) are now durable in
   * `regions` regions (this one included). Sent each time that count grows.
   */
  | { kind: typeof FRAME_KINDS.REPLICATED; document: string; ranges: SeqRange[]; regions: number }
  /** An application signal for the document's other sessions ("follow me", "reload"): not stored, not part of the document. */
  | { kind: typeof FRAME_KINDS.STATELESS; document: string; payload: string }

/** A frame whose kind this version does not know; only its header could be read. */
export interface UnknownFrame {
  kind: number
  document: string
  unknown: true
}

export type FrameOf<K extends FrameKind> = Extract<Frame, { kind: K }>

const ROLES: readonly Role[] = ['read', 'write', 'admin']

/** Payloads at least this large are not copied by `encodeFrameParts`. */
export const FRAME_PARTS_MIN_PAYLOAD = 64 * 1024

/**
 * Encode a native frame as parts whose concatenation is `encodeFrame(frame)`,
 * without copying a large update payload: `[header, payload]` for SYNC_STEP2,
 * UPDATE and AWARENESS frames with a payload of at least
 * FRAME_PARTS_MIN_PAYLOAD bytes (their payload is the last field), else
 * `[encodeFrame(frame)]`. Copying a 50 MB payload into an encoder blocks the
 * event loop for hundreds of milliseconds.
 */
export function encodeFrameParts(frame: Frame): Uint8Array[] {
  if ((frame.kind === FRAME_KINDS.SYNC_STEP2 || frame.kind === FRAME_KINDS.UPDATE || frame.kind === FRAME_KINDS.AWARENESS) &&
    frame.update.length >= FRAME_PARTS_MIN_PAYLOAD) {
    return [withPayloadLength(encodeFrame({ ...frame, update: new Uint8Array(0) }), frame.update.length), frame.update]
  }
  return [encodeFrame(frame)]
}

/** `encoded` ends with the zero length of an empty last field: replace it with `length`. */
export function withPayloadLength(encoded: Uint8Array, length: number): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeUint8Array(e, encoded.subarray(0, encoded.length - 1))
  encoding.writeVarUint(e, length)
  return encoding.toUint8Array(e)
}

/** Encode a native frame to the bytes of one binary WebSocket message. */
export function encodeFrame(frame: Frame): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, frame.kind)
  encoding.writeVarString(e, frame.document)
  switch (frame.kind) {
    case FRAME_KINDS.HELLO:
      encoding.writeVarUint(e, frame.minVersion)
      encoding.writeVarUint(e, frame.maxVersion)
      encoding.writeVarString(e, frame.client)
      break
    case FRAME_KINDS.WELCOME:
      encoding.writeVarUint(e, frame.version)
      encoding.writeVarString(e, frame.server)
      encoding.writeVarUint(e, frame.maxMessageBytes)
      encoding.writeVarUint(e, frame.chunkBytes)
      encoding.writeVarUint(e, frame.heartbeatIntervalMs)
      break
    case FRAME_KINDS.OPEN:
      encoding.writeVarString(e, frame.token)
      encoding.writeVarUint8Array(e, frame.stateVector)
      break
    case FRAME_KINDS.OPENED:
      encoding.writeVarString(e, frame.role)
      break
    case FRAME_KINDS.SYNC_STEP1:
      encoding.writeVarUint8Array(e, frame.stateVector)
      break
    case FRAME_KINDS.SYNC_STEP2:
    case FRAME_KINDS.AWARENESS:
      encoding.writeVarUint8Array(e, frame.update)
      break
    case FRAME_KINDS.UPDATE:
      encoding.writeVarUint(e, frame.seq)
      encoding.writeVarUint8Array(e, frame.update)
      break
    case FRAME_KINDS.ACK:
      writeRanges(e, frame.ranges)
      break
    case FRAME_KINDS.REPLICATED:
      encoding.writeVarUint(e, frame.regions)
      writeRanges(e, frame.ranges)
      break
    case FRAME_KINDS.ERROR:
      encoding.writeVarString(e, frame.code)
      encoding.writeVarString(e, frame.message)
      encoding.writeVarUint(e, frame.seq)
      encoding.writeUint8(e, frame.closed ? 1 : 0)
      break
    case FRAME_KINDS.CHUNK:
      encoding.writeVarUint(e, frame.messageId)
      encoding.writeVarUint(e, frame.index)
      encoding.writeVarUint(e, frame.total)
      encoding.writeVarUint8Array(e, frame.data)
      break
    case FRAME_KINDS.AUTH:
      encoding.writeVarString(e, frame.token)
      break
    case FRAME_KINDS.STATELESS:
      encoding.writeVarString(e, frame.payload)
      break
    case FRAME_KINDS.AUTH_STATE:
      encoding.writeVarString(e, frame.role)
      encoding.writeVarUint(e, frame.expiresInMs)
      break
    case FRAME_KINDS.CLOSE:
    case FRAME_KINDS.QUERY_AWARENESS:
    case FRAME_KINDS.PING:
    case FRAME_KINDS.PONG:
      break
  }
  return encoding.toUint8Array(e)
}

/** Thrown by `decodeFrame` when bytes do not form a frame. */
export class FrameDecodeError extends Error {
  /** The document named in the header, when the header itself was readable. */
  readonly document: string | undefined
  constructor(message: string, document?: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FrameDecodeError'
    this.document = document
  }
}

/**
 * lib0's `readVarUint` checks the 2^53 limit only between bytes, so the last
 * byte of a long varUint can still yield an unsafe, rounded integer. Every
 * number in a frame must be exact (seq numbers are compared for acks).
 */
function readVarUint(d: decoding.Decoder): number {
  const n = decoding.readVarUint(d)
  if (!Number.isSafeInteger(n)) throw new Error('varUint exceeds 2^53 - 1')
  return n
}

/**
 * A one-byte boolean that must be 0 or 1. lib0's `readUint8` does not check the
 * end of the input (it yields `undefined`), so the bound is checked here.
 */
function readFlag(d: decoding.Decoder): boolean {
  if (d.pos >= d.arr.length) throw new Error('unexpected end of frame')
  const b = decoding.readUint8(d)
  if (b > 1) throw new Error(`flag byte must be 0 or 1, got ${b}`)
  return b === 1
}

function readRole(d: decoding.Decoder): Role {
  const role = decoding.readVarString(d)
  if (!(ROLES as readonly string[]).includes(role)) throw new Error(`unknown role ${JSON.stringify(role)}`)
  return role as Role
}

/**
 * Decode one native frame. Throws `FrameDecodeError` for malformed bytes
 * (with `document` set when the header was readable). Returns an `UnknownFrame`
 * for a well-formed header of a kind this version does not know.
 * Byte arrays in the result are views into `bytes` (no copy).
 */
export function decodeFrame(bytes: Uint8Array): Frame | UnknownFrame {
  const d = decoding.createDecoder(bytes)
  let kind: number
  let document: string
  try {
    kind = readVarUint(d)
    document = decoding.readVarString(d)
  } catch (cause) {
    throw new FrameDecodeError('malformed frame header', undefined, { cause })
  }
  // never trust a length prefix to stay inside `bytes`: it may be a view into a
  // larger (pooled) buffer, and lib0 before its bounds-checked `subarray` read past it
  if (d.pos > bytes.length) throw new FrameDecodeError('malformed frame header')
  let frame: Frame | UnknownFrame
  try {
    frame = decodeBody(d, kind, document)
  } catch (cause) {
    throw new FrameDecodeError(`malformed body for frame kind ${kind}`, document, { cause })
  }
  if (d.pos > bytes.length) throw new FrameDecodeError(`body of frame kind ${kind} runs past the end`, document)
  if (!('unknown' in frame) && d.pos !== bytes.length) {
    throw new FrameDecodeError(`${bytes.length - d.pos} trailing bytes after frame kind ${kind}`, document)
  }
  return frame
}

function connectionLevel(document: string, kind: number): '' {
  if (document !== '') throw new Error(`frame kind ${kind} must not name a document`)
  return ''
}

function decodeBody(d: decoding.Decoder, kind: number, document: string): Frame | UnknownFrame {
  switch (kind) {
    case FRAME_KINDS.HELLO:
      return {
        kind, document: connectionLevel(document, kind),
        minVersion: readVarUint(d), maxVersion: readVarUint(d), client: decoding.readVarString(d),
      }
    case FRAME_KINDS.WELCOME:
      return {
        kind, document: connectionLevel(document, kind),
        version: readVarUint(d), server: decoding.readVarString(d),
        maxMessageBytes: readVarUint(d), chunkBytes: readVarUint(d), heartbeatIntervalMs: readVarUint(d),
      }
    case FRAME_KINDS.OPEN:
      return { kind, document, token: decoding.readVarString(d), stateVector: decoding.readVarUint8Array(d) }
    case FRAME_KINDS.OPENED:
      return { kind, document, role: readRole(d) }
    case FRAME_KINDS.CLOSE:
      return { kind, document }
    case FRAME_KINDS.SYNC_STEP1:
      return { kind, document, stateVector: decoding.readVarUint8Array(d) }
    case FRAME_KINDS.SYNC_STEP2:
      return { kind, document, update: decoding.readVarUint8Array(d) }
    case FRAME_KINDS.AWARENESS:
      return { kind, document, update: decoding.readVarUint8Array(d) }
    case FRAME_KINDS.UPDATE:
      return { kind, document, seq: readVarUint(d), update: decoding.readVarUint8Array(d) }
    case FRAME_KINDS.ACK:
      return { kind, document, ranges: readRanges(d) }
    case FRAME_KINDS.REPLICATED: {
      const regions = readVarUint(d)
      return { kind, document, regions, ranges: readRanges(d) }
    }
    case FRAME_KINDS.QUERY_AWARENESS:
      return { kind, document }
    case FRAME_KINDS.STATELESS:
      return { kind, document, payload: decoding.readVarString(d) }
    case FRAME_KINDS.ERROR:
      return {
        kind, document, code: decoding.readVarString(d), message: decoding.readVarString(d),
        seq: readVarUint(d), closed: readFlag(d),
      }
    case FRAME_KINDS.CHUNK:
      return {
        kind, document,
        messageId: readVarUint(d), index: readVarUint(d), total: readVarUint(d),
        data: decoding.readVarUint8Array(d),
      }
    case FRAME_KINDS.PING:
      return { kind, document: connectionLevel(document, kind) }
    case FRAME_KINDS.PONG:
      return { kind, document: connectionLevel(document, kind) }
    case FRAME_KINDS.AUTH:
      return { kind, document, token: decoding.readVarString(d) }
    case FRAME_KINDS.AUTH_STATE:
      return { kind, document, role: readRole(d), expiresInMs: readVarUint(d) }
    default:
      return { kind, document, unknown: true }
  }
}

function writeRanges(e: encoding.Encoder, ranges: readonly SeqRange[]): void {
  encoding.writeVarUint(e, ranges.length)
  for (const r of ranges) {
    encoding.writeVarUint(e, r.from)
    encoding.writeVarUint(e, r.to - r.from)
  }
}

function readRanges(d: decoding.Decoder): SeqRange[] {
  const n = readVarUint(d)
  if (n > d.arr.length) throw new Error('ack range count exceeds frame size')
  const ranges: SeqRange[] = []
  for (let i = 0; i < n; i++) {
    const from = readVarUint(d)
    const to = from + readVarUint(d)
    if (!Number.isSafeInteger(to)) throw new Error('ack range ends beyond 2^53 - 1')
    ranges.push({ from, to })
  }
  return ranges
}

export function isUnknownFrame(frame: Frame | UnknownFrame): frame is UnknownFrame {
  return 'unknown' in frame
}

/**
 * Collapse a list of sequence numbers into sorted, merged inclusive ranges.
 * `[5, 1, 2, 3, 7, 6]` becomes `[{from:1,to:3},{from:5,to:7}]`.
 */
export function toSeqRanges(seqs: Iterable<number>): SeqRange[] {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b)
  const out: SeqRange[] = []
  for (const s of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && s === last.to + 1) last.to = s
    else out.push({ from: s, to: s })
  }
  return out
}

/** True when `seq` lies in one of `ranges`. */
export function inSeqRanges(ranges: readonly SeqRange[], seq: number): boolean {
  for (const r of ranges) if (seq >= r.from && seq <= r.to) return true
  return false
}
