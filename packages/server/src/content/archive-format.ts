import { createHash, type Hash } from 'node:crypto'
import { ConcordError, validateUpdate } from '@concord/protocol'

/**
 * The Concord archive (`concord export` / `concord import`), format version 1: UTF-8,
 * newline-delimited JSON, one record per line, written and read as a stream (a document's
 * versions are lines of their own, so no line holds more than one snapshot). Binary data (Yjs
 * updates) is base64. Grammar, in order:
 *
 *   archive  = header *(document *version) end
 *   header   = {"format":"concord-archive","version":1,"exportedAt":ISO-8601,"concord":semver,
 *               "source":store kind,"documents":n}
 *   document = {"type":"document","name":s,"state":base64 Yjs update (the whole document),
 *               "lastSeq":n,"updatedAt":ms,"authors":[[yjs client id,user id],...]}
 *   version  = {"type":"version","document":s,"id":s,"kind":"auto"|"named","name":s|null,
 *               "createdAt":ms,"createdBy":s|null,"authors":[user id,...],"seq":n,"snapshot":base64}
 *   end      = {"type":"end","documents":n,"versions":n,"dataBytes":n,"sha256":hex}
 *
 * A document's versions are the version lines that follow it (oldest first). `lastSeq` and a
 * version's `seq` are log positions in the store it came from (informational: the store an archive
 * is imported into numbers its log itself). The trailer's `sha256` is the SHA-256 of every byte
 * before the trailer line, and `dataBytes` the decoded bytes of all states and snapshots: an
 * archive without its trailer is truncated, one whose counts or checksum differ is damaged.
 * A reader refuses a `version` it does not know; newer minor additions are new fields, which a
 * reader ignores.
 */
export const ARCHIVE_FORMAT = 'concord-archive'
export const ARCHIVE_VERSION = 1

export interface ArchiveHeader {
  exportedAt: string
  /** The Concord version that wrote it. */
  concord: string
  /** The kind of store it was exported from (`sqlite`, `postgres`, ...). */
  source: string
  /** How many document records follow. */
  documents: number
}

export interface ArchivedDocument {
  name: string
  /** The whole document as one Yjs update. */
  state: Uint8Array
  lastSeq: number
  updatedAt: number
  /** Who writes with which Yjs client id (the authors table and the writers of the log tail). */
  authors: { client: number; userId: string }[]
}

export interface ArchivedVersion {
  document: string
  id: string
  kind: 'auto' | 'named'
  name: string | null
  createdAt: number
  createdBy: string | null
  authors: string[]
  seq: number
  snapshot: Uint8Array
}

export interface ArchiveTrailer {
  documents: number
  versions: number
  dataBytes: number
  sha256: string
}

export type ArchiveRecord =
  | { type: 'header'; header: ArchiveHeader }
  | { type: 'document'; document: ArchivedDocument }
  | { type: 'version'; version: ArchivedVersion }
  | { type: 'end'; trailer: ArchiveTrailer }

/** Writes an archive's lines (each ends with `\n`) and keeps the counts and checksum of its trailer. */
export class ArchiveEncoder {
  readonly #hash: Hash = createHash('sha256')
  #documents = 0
  #versions = 0
  #dataBytes = 0
  #expectedDocuments = -1
  #current: string | null = null
  #ended = false

  header(header: ArchiveHeader): string {
    if (this.#expectedDocuments !== -1) throw new Error('archive header written twice')
    this.#expectedDocuments = header.documents
    return this.#line({ format: ARCHIVE_FORMAT, version: ARCHIVE_VERSION, ...header })
  }

  document(d: ArchivedDocument): string {
    this.#expect('document')
    this.#documents++
    this.#current = d.name
    this.#dataBytes += d.state.byteLength
    return this.#line({
      type: 'document', name: d.name, state: base64(d.state), lastSeq: d.lastSeq, updatedAt: d.updatedAt,
      authors: d.authors.map(a => [a.client, a.userId]),
    })
  }

  version(v: ArchivedVersion): string {
    if (this.#current !== v.document || this.#ended) throw new Error(`version ${v.id} of ${v.document} does not follow its document record`)
    this.#versions++
    this.#dataBytes += v.snapshot.byteLength
    return this.#line({
      type: 'version', document: v.document, id: v.id, kind: v.kind, name: v.name, createdAt: v.createdAt, createdBy: v.createdBy,
      authors: v.authors, seq: v.seq, snapshot: base64(v.snapshot),
    })
  }

  /** The trailer line. */
  end(): string {
    this.#expect('end')
    if (this.#documents !== this.#expectedDocuments) throw new Error(`the header announced ${this.#expectedDocuments} documents, ${this.#documents} were written`)
    this.#ended = true
    const trailer: ArchiveTrailer = { documents: this.#documents, versions: this.#versions, dataBytes: this.#dataBytes, sha256: this.#hash.digest('hex') }
    return `${JSON.stringify({ type: 'end', ...trailer })}\n`
  }

  /** What has been written so far. */
  get counts(): { documents: number; versions: number; dataBytes: number } {
    return { documents: this.#documents, versions: this.#versions, dataBytes: this.#dataBytes }
  }

  #expect(what: string): void {
    if (this.#expectedDocuments === -1 || this.#ended) throw new Error(`archive ${what} record outside header and end`)
  }

  #line(record: object): string {
    const line = `${JSON.stringify(record)}\n`
    this.#hash.update(line, 'utf8')
    return line
  }
}

/**
 * Reads an archive line by line (each without its `\n`) and checks everything the grammar says:
 * fields and their types, base64 that decodes to a well-formed Yjs update, versions after their
 * document, unique names, and at the end the counts and checksum. Throws a `ConcordError`:
 * `CONCORD_ERR_ARCHIVE_MALFORMED`, `..._TRUNCATED` or `..._UNSUPPORTED_VERSION`.
 */
export class ArchiveDecoder {
  readonly #hash: Hash = createHash('sha256')
  readonly #names = new Set<string>()
  #lineNo = 0
  #header: ArchiveHeader | null = null
  #trailer: ArchiveTrailer | null = null
  #current: string | null = null
  #versions = 0
  #dataBytes = 0

  /** Decode the next line. */
  line(text: string): ArchiveRecord {
    this.#lineNo++
    if (this.#trailer !== null) {
      if (text.trim() === '') return { type: 'end', trailer: this.#trailer }
      throw this.#malformed('there is more after the end record')
    }
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      throw this.#malformed(this.#header === null ? 'not a Concord archive (the first line is not JSON)' : 'a line is not JSON')
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.#malformed('a line is not a JSON object')
    const r = value as Record<string, unknown>
    if (this.#header === null) return this.#readHeader(r, text)
    if (r.type === 'end') return this.#readEnd(r)
    this.#hash.update(`${text}\n`, 'utf8')
    if (r.type === 'document') return this.#readDocument(r)
    if (r.type === 'version') return this.#readVersion(r)
    throw this.#malformed(`unknown record type ${JSON.stringify(r.type)}`)
  }

  /**
   * The input ended; `rest` is what followed the last newline. Throws when the archive is
   * truncated (no end record, or a last line cut short).
   */
  finish(rest = ''): { header: ArchiveHeader; trailer: ArchiveTrailer } {
    if (rest.trim() !== '' && this.#trailer === null) throw truncated(`the archive ends in the middle of line ${this.#lineNo + 1}`)
    if (rest.trim() !== '') this.line(rest)
    if (this.#header === null) throw new ConcordError('CONCORD_ERR_ARCHIVE_MALFORMED', 'the archive is empty')
    if (this.#trailer === null) throw truncated(`the archive ends after ${this.#names.size} of ${this.#header.documents} documents, without its end record`)
    return { header: this.#header, trailer: this.#trailer }
  }

  #readHeader(r: Record<string, unknown>, text: string): ArchiveRecord {
    if (r.format !== ARCHIVE_FORMAT) throw this.#malformed(`not a Concord archive (format ${JSON.stringify(r.format)})`)
    if (r.version !== ARCHIVE_VERSION) {
      throw new ConcordError('CONCORD_ERR_ARCHIVE_UNSUPPORTED_VERSION', `archive format version ${JSON.stringify(r.version)}: this Concord reads version ${ARCHIVE_VERSION}`)
    }
    const header: ArchiveHeader = {
      exportedAt: this.#string(r, 'exportedAt'), concord: this.#string(r, 'concord'), source: this.#string(r, 'source'), documents: this.#count(r, 'documents'),
    }
    this.#hash.update(`${text}\n`, 'utf8')
    this.#header = header
    return { type: 'header', header }
  }

  #readDocument(r: Record<string, unknown>): ArchiveRecord {
    const name = this.#string(r, 'name')
    if (name === '') throw this.#malformed('a document has an empty name')
    if (this.#names.has(name)) throw this.#malformed(`document ${JSON.stringify(name)} appears twice`)
    if (!Array.isArray(r.authors)) throw this.#malformed('authors is not an array')
    const authors = r.authors.map(a => {
      if (!Array.isArray(a) || a.length !== 2 || !isCount(a[0]) || typeof a[1] !== 'string') throw this.#malformed('an author is not [client, userId]')
      return { client: a[0] as number, userId: a[1] as string }
    })
    const document: ArchivedDocument = {
      name, state: this.#update(r, 'state'), lastSeq: this.#count(r, 'lastSeq'), updatedAt: this.#count(r, 'updatedAt'), authors,
    }
    this.#names.add(name)
    if (this.#names.size > this.#header!.documents) throw this.#malformed(`more documents than the ${this.#header!.documents} the header announced`)
    this.#current = name
    return { type: 'document', document }
  }

  #readVersion(r: Record<string, unknown>): ArchiveRecord {
    const document = this.#string(r, 'document')
    if (document !== this.#current) throw this.#malformed(`a version of ${JSON.stringify(document)} does not follow its document`)
    if (r.kind !== 'auto' && r.kind !== 'named') throw this.#malformed(`version kind ${JSON.stringify(r.kind)}`)
    if (!Array.isArray(r.authors) || !r.authors.every(a => typeof a === 'string')) throw this.#malformed('version authors is not a list of user ids')
    const version: ArchivedVersion = {
      document, id: this.#string(r, 'id'), kind: r.kind, name: this.#nullableString(r, 'name'), createdAt: this.#count(r, 'createdAt'),
      createdBy: this.#nullableString(r, 'createdBy'), authors: r.authors as string[], seq: this.#count(r, 'seq'), snapshot: this.#update(r, 'snapshot'),
    }
    this.#versions++
    return { type: 'version', version }
  }

  #readEnd(r: Record<string, unknown>): ArchiveRecord {
    const trailer: ArchiveTrailer = { documents: this.#count(r, 'documents'), versions: this.#count(r, 'versions'), dataBytes: this.#count(r, 'dataBytes'), sha256: this.#string(r, 'sha256') }
    const documents = this.#names.size
    if (documents !== this.#header!.documents) throw this.#malformed(`the archive holds ${documents} of the ${this.#header!.documents} documents its header announced`)
    if (trailer.documents !== documents || trailer.versions !== this.#versions || trailer.dataBytes !== this.#dataBytes) {
      throw this.#malformed(`the end record counts ${trailer.documents} documents, ${trailer.versions} versions, ${trailer.dataBytes} bytes; the archive holds ${documents}, ${this.#versions}, ${this.#dataBytes}`)
    }
    const sha256 = this.#hash.digest('hex')
    if (trailer.sha256 !== sha256) throw this.#malformed('the checksum does not match: the archive was changed or damaged')
    this.#trailer = trailer
    return { type: 'end', trailer }
  }

  #update(r: Record<string, unknown>, key: string): Uint8Array {
    const text = r[key]
    if (typeof text !== 'string' || text.length % 4 !== 0 || !BASE64.test(text)) throw this.#malformed(`${key} is not base64`)
    const bytes = new Uint8Array(Buffer.from(text, 'base64'))
    const problem = validateUpdate(bytes)
    if (problem !== null) throw this.#malformed(`${key} is not a well-formed Yjs update (${problem})`)
    this.#dataBytes += bytes.byteLength
    return bytes
  }

  #string(r: Record<string, unknown>, key: string): string {
    const v = r[key]
    if (typeof v !== 'string') throw this.#malformed(`${key} is not a string`)
    return v
  }

  #nullableString(r: Record<string, unknown>, key: string): string | null {
    const v = r[key]
    if (v !== null && typeof v !== 'string') throw this.#malformed(`${key} is not a string or null`)
    return v
  }

  #count(r: Record<string, unknown>, key: string): number {
    const v = r[key]
    if (!isCount(v)) throw this.#malformed(`${key} is not a whole number`)
    return v
  }

  #malformed(why: string): ConcordError {
    return new ConcordError('CONCORD_ERR_ARCHIVE_MALFORMED', `line ${this.#lineNo}: ${why}`)
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function truncated(why: string): ConcordError {
  return new ConcordError('CONCORD_ERR_ARCHIVE_TRUNCATED', why)
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}
