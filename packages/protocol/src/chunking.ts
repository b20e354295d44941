import { ConcordError } from './errors.js'
import { encodeFrame, FRAME_KINDS, withPayloadLength, type FrameOf } from './native-frame.js'

/**
 * Large native frames travel as CHUNK frames. The sender encodes the whole
 * frame, cuts the bytes into pieces of at most `chunkBytes`, and sends them in
 * order as CHUNK frames with one `messageId`. Chunks of different messages and
 * ordinary small frames may be interleaved between them, which is what keeps a
 * 50 MB initial sync from blocking cursors and small edits.
 * The receiver reassembles the bytes and decodes them as one frame.
 */
export function needsChunking(frameBytes: Uint8Array, chunkBytes: number): boolean {
  return frameBytes.length > chunkBytes
}

/**
 * Lazily cut an encoded frame into CHUNK frames. The frame may be given as
 * parts (from `encodeFrameParts`): the chunks cut their concatenation, copying
 * no more than one chunk at a time.
 */
export function* chunkFrame(frame: Uint8Array | readonly Uint8Array[], document: string, messageId: number, chunkBytes: number): Generator<Uint8Array> {
  if (chunkBytes <= 0) throw new RangeError('chunkBytes must be positive')
  const parts = frame instanceof Uint8Array ? [frame] : frame
  const length = parts.reduce((n, p) => n + p.length, 0)
  const total = Math.ceil(length / chunkBytes)
  let part = 0
  let offset = 0
  for (let index = 0; index < total; index++) {
    const size = Math.min(chunkBytes, length - index * chunkBytes)
    let data: Uint8Array
    while (parts[part]!.length === offset) { part++; offset = 0 }
    if (parts[part]!.length - offset >= size) {
      data = parts[part]!.subarray(offset, offset + size)
      offset += size
    } else {
      // this chunk spans parts
      data = new Uint8Array(size)
      let filled = 0
      while (filled < size) {
        while (parts[part]!.length === offset) { part++; offset = 0 }
        const take = Math.min(size - filled, parts[part]!.length - offset)
        data.set(parts[part]!.subarray(offset, offset + take), filled)
        filled += take
        offset += take
      }
    }
    yield encodeChunk(document, messageId, index, total, data)
  }
}

export interface ChunkAssemblerOptions {
  /** Largest reassembled message accepted. */
  maxMessageBytes: number
  /** How many chunked messages may be in flight at once on one connection. */
  maxInFlight?: number
  /** Bytes held for all incomplete messages together (default: maxMessageBytes). */
  maxBufferedBytes?: number
  /**
   * Smallest piece accepted except the last of a message (default 1). A
   * receiver that sets it bounds the number of pieces it holds, so tiny pieces
   * cannot cost more memory than their bytes count for.
   */
  minPieceBytes?: number
}

interface Partial {
  total: number
  next: number
  bytes: number
  parts: Uint8Array[]
}

/** Reassembles CHUNK frames of one connection. Throws `ConcordError` on abuse. */
export class ChunkAssembler {
  readonly #maxMessageBytes: number
  readonly #maxInFlight: number
  readonly #maxBufferedBytes: number
  readonly #minPieceBytes: number
  readonly #partials = new Map<number, Partial>()
  #buffered = 0

  constructor(options: ChunkAssemblerOptions) {
    this.#maxMessageBytes = options.maxMessageBytes
    this.#maxInFlight = options.maxInFlight ?? 16
    this.#maxBufferedBytes = options.maxBufferedBytes ?? options.maxMessageBytes
    this.#minPieceBytes = options.minPieceBytes ?? 1
  }

  /** Bytes currently held for incomplete messages. */
  get bufferedBytes(): number {
    return this.#buffered
  }

  /** Add one chunk; returns the complete frame bytes when this was the last chunk. */
  push(chunk: FrameOf<typeof FRAME_KINDS.CHUNK>): Uint8Array | null {
    const { messageId, index, total, data } = chunk
    // every piece carries at least one byte, so a message has at most maxMessageBytes pieces;
    // empty pieces would cost memory without counting against any limit
    if (data.length === 0 || total > this.#maxMessageBytes) {
      this.#drop(messageId)
      throw new ConcordError('CONCORD_ERR_PROTOCOL_BAD_CHUNK', `chunk ${index}/${total} of message ${messageId} is empty or the total is impossible`)
    }
    let p = this.#partials.get(messageId)
    if (p === undefined) {
      if (index !== 0) throw new ConcordError('CONCORD_ERR_PROTOCOL_BAD_CHUNK', `chunk ${index} of unknown message ${messageId}`)
      if (total < 1) throw new ConcordError('CONCORD_ERR_PROTOCOL_BAD_CHUNK', 'chunk total must be at least 1')
      if (this.#partials.size >= this.#maxInFlight) {
        throw new ConcordError('CONCORD_ERR_PROTOCOL_BAD_CHUNK', `more than ${this.#maxInFlight} chunked messages in flight`)
      }
      p = { total, next: 0, bytes: 0, parts: [] }
      this.#partials.set(messageId, p)
    }
    if (index !== p.next || total !== p.total) {
      this.#drop(messageId)
      throw new ConcordError('CONCORD_ERR_PROTOCOL_BAD_CHUNK', `chunk ${index}/${total} of message ${messageId} out of order`)
    }
    if (index < total - 1 && data.length < this.#minPieceBytes) {
      this.#drop(messageId)
      throw new ConcordError('CONCORD_ERR_PROTOCOL_BAD_CHUNK', `chunk ${index}/${total} of message ${messageId} is shorter than ${this.#minPieceBytes} bytes`)
    }
    p.bytes += data.length
    this.#buffered += data.length
    if (p.bytes > this.#maxMessageBytes) {
      this.#drop(messageId)
      throw new ConcordError('CONCORD_ERR_MESSAGE_TOO_LARGE', `chunked message ${messageId} exceeds ${this.#maxMessageBytes} bytes`)
    }
    if (this.#buffered > this.#maxBufferedBytes) {
      this.#drop(messageId)
      throw new ConcordError('CONCORD_ERR_MESSAGE_TOO_LARGE', `incomplete chunked messages exceed ${this.#maxBufferedBytes} bytes together`)
    }
    // copy: `data` is a view into a WebSocket buffer that may be reused
    p.parts.push(data.slice())
    p.next++
    if (p.next < p.total) return null
    this.#drop(messageId)
    if (p.parts.length === 1) return p.parts[0]!
    const out = new Uint8Array(p.bytes)
    let off = 0
    for (const part of p.parts) {
      out.set(part, off)
      off += part.length
    }
    return out
  }

  clear(): void {
    this.#partials.clear()
    this.#buffered = 0
  }

  #drop(messageId: number): void {
    const p = this.#partials.get(messageId)
    if (p === undefined) return
    this.#buffered -= p.bytes
    this.#partials.delete(messageId)
  }
}

/** A CHUNK frame, copying `data` once (`encodeFrame` would copy it twice). */
function encodeChunk(document: string, messageId: number, index: number, total: number, data: Uint8Array): Uint8Array {
  if (data.length < 4096) return encodeFrame({ kind: FRAME_KINDS.CHUNK, document, messageId, index, total, data })
  const header = withPayloadLength(encodeFrame({ kind: FRAME_KINDS.CHUNK, document, messageId, index, total, data: new Uint8Array(0) }), data.length)
  const out = new Uint8Array(header.length + data.length)
  out.set(header, 0)
  out.set(data, header.length)
  return out
}
