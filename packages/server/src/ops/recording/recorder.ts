import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { finished } from 'node:stream/promises'
import type { Logger } from 'pino'
import type { Role } from '@concord/protocol'
import type { DocumentRecorder } from '../../documents/ports.js'
import { ConfigError } from '../../config/server-config.js'
import {
  encodeBase64, encodeRecord, RECORDING_FORMAT, RECORDING_VERSION,
  type RecordedProtocol, type RecordingReason, type RecordingRecord, type UpdateRecord,
} from './recording-file.js'

export const DEFAULT_MAX_RECORDING_BYTES = 64 * 1024 * 1024

export interface RecorderOptions {
  /** Directory of the recording files; created when missing. */
  dir: string
  /** Documents recorded every time they load. */
  documents?: readonly string[]
  /** Share (0..1) of the other documents recorded, drawn once per document load. Default 0. */
  sampleRate?: number
  /** A recording that reaches this size stops (with a warning) and gets no end record. Default 64 MiB. */
  maxBytesPerFile?: number
  logger: Logger
  /** Written into each header: the server's name and version (`concord 0.1.0`). */
  serverName: string
  /** Source of the sampling draws (tests inject one). Default `Math.random`. */
  random?: () => number
}

export interface RecordedSession {
  user: string | null
  role: Role
  protocol: RecordedProtocol
}

/**
 * The recording of one document load. No method throws or blocks on I/O: records
 * are encoded at once (so the caller may reuse its buffers) and written by a
 * stream soon after. On an I/O error or at the byte cap the recording stops with
 * a warning and every later call is ignored.
 */
export interface DocumentRecording {
  readonly path: string
  readonly document: string
  /** False once the recording has stopped (ended, byte cap, I/O error, recorder closed). */
  readonly active: boolean
  open(session: string, info: RecordedSession): void
  /** An inbound update as received; `refusedCode` when the server refused it (never applied). */
  update(session: string, data: Uint8Array, refusedCode?: string): void
  /** The session's last update was refused with `code` (for refusals known only after `update`). */
  refused(session: string, code: string): void
  awareness(session: string, data: Uint8Array): void
  close(session: string): void
  /** Write the end record with the document's final state and close the file. Never rejects. */
  end(finalUpdate: Uint8Array): Promise<void>
}

export interface Recorder extends DocumentRecorder {
  /**
   * Begin recording a document that just loaded, or null when it is not chosen. `baseUpdate`
   * may be a function, called only when the document is chosen (encoding a document costs).
   */
  start(document: string, baseUpdate: Uint8Array | (() => Uint8Array)): DocumentRecording | null
  /** Flush and close every open recording; those not ended get no end record. Later starts return null. */
  close(): Promise<void>
}

/** Options are checked here, so a bad configuration fails at start-up. */
export function createRecorder(options: RecorderOptions): Recorder {
  const { dir, logger, serverName } = options
  if (typeof dir !== 'string' || dir === '') throw new ConfigError('recorder option dir must be a directory path')
  const sampleRate = options.sampleRate ?? 0
  if (typeof sampleRate !== 'number' || !(sampleRate >= 0 && sampleRate <= 1)) {
    throw new ConfigError(`recorder option sampleRate must be a number from 0 to 1, got ${String(options.sampleRate)}`)
  }
  const maxBytes = options.maxBytesPerFile ?? DEFAULT_MAX_RECORDING_BYTES
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new ConfigError(`recorder option maxBytesPerFile must be a positive integer, got ${String(options.maxBytesPerFile)}`)
  }
  const documents = new Set(options.documents ?? [])
  const random = options.random ?? Math.random
  const open = new Set<FileRecording>()
  let dirReady: Promise<void> | null = null
  let closed = false

  const ensureDir = (): Promise<void> => {
    if (dirReady === null) {
      const made = mkdir(dir, { recursive: true }).then(() => undefined)
      // a failure is reported by the recording that needed the directory; the next one tries again
      made.catch(() => { if (dirReady === made) dirReady = null })
      dirReady = made
    }
    return dirReady
  }

  return {
    start(document, baseUpdate) {
      if (closed) return null
      let reason: RecordingReason
      if (documents.has(document)) reason = 'all'
      else if (sampleRate > 0 && random() < sampleRate) reason = 'sampled'
      else return null
      const startedAt = Date.now()
      const path = join(dir, `${fileStem(document)}-${startedAt}-${randomBytes(4).toString('hex')}.jsonl`)
      const recording = new FileRecording({
        path, document, maxBytes, logger, dirReady: ensureDir(), onDone: r => open.delete(r),
      })
      open.add(recording)
      recording.begin({ type: 'header', format: RECORDING_FORMAT, version: RECORDING_VERSION, document, startedAt, server: serverName, reason }, typeof baseUpdate === 'function' ? baseUpdate() : baseUpdate)
      logger.info({ document, path, reason }, 'recording document')
      return recording
    },
    async close() {
      closed = true
      await Promise.all([...open].map(r => r.stop()))
    },
  }
}

/** The document name as a file name: characters outside [A-Za-z0-9._-] become '_' (the header keeps the name). */
export function fileStem(document: string): string {
  // at most 128 characters: a name may have 512 bytes, a file name 255
  return [...document].map(c => /^[A-Za-z0-9._-]$/.test(c) ? c : '_').join('').slice(0, 128)
}

interface Entry {
  record: RecordingRecord
  line: string
  bytes: number
}

/** Bytes of the base64 of `n` bytes. */
function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4
}

class FileRecording implements DocumentRecording {
  readonly path: string
  readonly document: string
  readonly #log: Logger
  readonly #maxBytes: number
  readonly #sink: FileSink
  readonly #onDone: (r: FileRecording) => void
  readonly #t0 = performance.now()
  #active = true
  #bytes = 0
  /**
   * Records not yet handed to the stream (until the next turn of the event loop):
   * a refusal the server decides right after the update (in a microtask) is marked
   * on the update itself.
   */
  #pending: Entry[] = []
  #flushScheduled = false
  readonly #sessionsWithUpdates = new Set<string>()
  #done: Promise<void> | null = null

  constructor(o: { path: string; document: string; maxBytes: number; logger: Logger; dirReady: Promise<void>; onDone: (r: FileRecording) => void }) {
    this.path = o.path
    this.document = o.document
    this.#maxBytes = o.maxBytes
    this.#log = o.logger
    this.#onDone = o.onDone
    this.#sink = new FileSink(o.path, o.dirReady, err => this.#ioFailed(err))
  }

  get active(): boolean {
    return this.#active
  }

  begin(header: RecordingRecord, baseUpdate: Uint8Array): void {
    this.#push(() => header, 0)
    this.#push(() => ({ type: 'base', t: this.#t(), update: encodeBase64(baseUpdate) }), base64Length(baseUpdate.length))
  }

  open(session: string, info: RecordedSession): void {
    this.#push(() => ({ type: 'open', t: this.#t(), session, user: info.user, role: info.role, protocol: info.protocol }), 0)
  }

  update(session: string, data: Uint8Array, refusedCode?: string): void {
    const entry = this.#push(() => {
      const record: UpdateRecord = { type: 'update', t: this.#t(), session, data: encodeBase64(data) }
      if (refusedCode !== undefined) record.refused = refusedCode
      return record
    }, base64Length(data.length))
    if (entry !== null) this.#sessionsWithUpdates.add(session)
  }

  refused(session: string, code: string): void {
    if (!this.#active) return
    for (let i = this.#pending.length - 1; i >= 0; i--) {
      const entry = this.#pending[i]!
      const record = entry.record
      if (record.type !== 'update' || record.session !== session) continue
      if (record.refused !== undefined) return
      record.refused = code
      const line = encodeRecord(record)
      const bytes = Buffer.byteLength(line)
      if (this.#bytes - entry.bytes + bytes > this.#maxBytes) {
        record.refused = undefined
        this.#reachedCap()
        return
      }
      this.#bytes += bytes - entry.bytes
      entry.line = line
      entry.bytes = bytes
      return
    }
    // that update is already on its way to the file: a refused record follows it
    if (this.#sessionsWithUpdates.has(session)) this.#push(() => ({ type: 'refused', t: this.#t(), session, code }), 0)
  }

  awareness(session: string, data: Uint8Array): void {
    this.#push(() => ({ type: 'awareness', t: this.#t(), session, data: encodeBase64(data) }), base64Length(data.length))
  }

  close(session: string): void {
    this.#push(() => ({ type: 'close', t: this.#t(), session }), 0)
  }

  end(finalUpdate: Uint8Array): Promise<void> {
    if (this.#active) {
      this.#push(() => ({ type: 'end', t: this.#t(), update: encodeBase64(finalUpdate) }), base64Length(finalUpdate.length))
      this.#active = false
    }
    return this.#finish()
  }

  /** Stop without an end record, keeping what was recorded (the recorder is closing). */
  stop(): Promise<void> {
    this.#active = false
    return this.#finish()
  }

  #t(): number {
    return Math.round(performance.now() - this.#t0)
  }

  /** Accept a record unless the recording has stopped or the record would cross the byte cap. */
  #push(make: () => RecordingRecord, minBytes: number): Entry | null {
    if (!this.#active) return null
    // checked before encoding, so a huge update past the cap costs no base64
    if (this.#bytes + minBytes > this.#maxBytes) {
      this.#reachedCap()
      return null
    }
    const record = make()
    const line = encodeRecord(record)
    const bytes = Buffer.byteLength(line)
    if (this.#bytes + bytes > this.#maxBytes) {
      this.#reachedCap()
      return null
    }
    this.#bytes += bytes
    const entry = { record, line, bytes }
    this.#pending.push(entry)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(() => {
        this.#flushScheduled = false
        this.#flush()
      })
    }
    return entry
  }

  #flush(): void {
    if (this.#pending.length === 0) return
    const chunk = this.#pending.length === 1 ? this.#pending[0]!.line : this.#pending.map(e => e.line).join('')
    this.#pending = []
    this.#sink.write(chunk)
  }

  #reachedCap(): void {
    if (!this.#active) return
    this.#active = false
    this.#log.warn({ document: this.document, path: this.path, maxBytesPerFile: this.#maxBytes },
      'recording stopped: the file reached maxBytesPerFile (what was recorded is kept, without an end record)')
    void this.#finish()
  }

  #ioFailed(err: unknown): void {
    this.#pending = []
    this.#active = false
    this.#log.warn({ err, document: this.document, path: this.path }, 'recording stopped: the file could not be written')
    void this.#finish()
  }

  #finish(): Promise<void> {
    this.#done ??= (async () => {
      this.#flush()
      await this.#sink.end()
      this.#onDone(this)
    })()
    return this.#done
  }
}

/**
 * Appends to a file through a write stream. What arrives before the file is open, or
 * while the stream is above its high-water mark, is held here and written as one chunk
 * on 'drain' (the recording's byte cap bounds it). Errors go to `onError`, once.
 */
class FileSink {
  readonly #onError: (err: unknown) => void
  readonly #opened: Promise<void>
  #stream: WriteStream | null = null
  #held: string[] = []
  #congested = false
  #failed = false
  #ended = false

  constructor(path: string, dirReady: Promise<void>, onError: (err: unknown) => void) {
    this.#onError = onError
    this.#opened = dirReady.then(() => {
      if (this.#failed) return
      // 'wx': never overwrite a recording
      const stream = createWriteStream(path, { flags: 'wx' })
      stream.on('error', err => this.#fail(err))
      stream.on('drain', () => {
        this.#congested = false
        this.#writeHeld()
      })
      this.#stream = stream
      this.#writeHeld()
    }, err => this.#fail(err))
  }

  write(chunk: string): void {
    if (this.#failed || this.#ended) return
    if (this.#stream === null || this.#congested) {
      this.#held.push(chunk)
      return
    }
    if (!this.#stream.write(chunk)) this.#congested = true
  }

  #writeHeld(): void {
    if (this.#held.length === 0 || this.#stream === null || this.#failed) return
    const chunk = this.#held.join('')
    this.#held = []
    if (!this.#stream.write(chunk)) this.#congested = true
  }

  /** Write what is held, close the file; resolves once it is closed (or has failed). */
  async end(): Promise<void> {
    this.#ended = true
    await this.#opened
    const stream = this.#stream
    if (stream === null || this.#failed) return
    if (this.#held.length > 0) {
      stream.write(this.#held.join(''))
      this.#held = []
    }
    stream.end()
    await finished(stream).catch(() => undefined) // an error was reported through 'error'
  }

  #fail(err: unknown): void {
    if (this.#failed) return
    this.#failed = true
    this.#held = []
    this.#stream?.destroy()
    this.#onError(err)
  }
}
