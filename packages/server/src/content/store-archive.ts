import { ConcordError } from '@concord/protocol'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import { foldState } from '../storage/fold.js'
import { ownersFromLog } from '../documents/client-owners.js'
import { ArchiveDecoder, ArchiveEncoder, type ArchivedDocument, type ArchivedVersion, type ArchiveHeader, type ArchiveTrailer } from './archive-format.js'

/**
 * `concord export` and `concord import` over the `StorageAdapter` interface, so they work for
 * every store (the archive's format is in archive-format.ts).
 *
 * Export reads one document at a time: its state (`load`: one snapshot and its tail, read
 * consistently by each store), then its authors and versions. So each document is exported as it
 * was at one moment, and a server may keep running on the store; documents changed while the
 * export runs are exported as they were when it reached them (it is not one snapshot of the whole
 * store).
 */
export interface ExportCounts {
  documents: number
  versions: number
  /** Decoded bytes of the states and version snapshots. */
  dataBytes: number
}

export interface StoreExport {
  /** The archive, line by line (pull-based: nothing is read before a line is asked for). */
  lines: AsyncGenerator<string>
  /** What has been exported so far. */
  counts(): ExportCounts
}

export function exportStore(storage: StorageAdapter, options: { concordVersion: string; now?: () => number }): StoreExport {
  const encoder = new ArchiveEncoder()
  async function* lines(): AsyncGenerator<string> {
    const listed = await storage.list()
    yield encoder.header({ exportedAt: new Date((options.now ?? Date.now)()).toISOString(), concord: options.concordVersion, source: storage.kind, documents: listed.length })
    for (const info of listed) {
      const loaded = await storage.load(info.name)
      const state = foldState(loaded.snapshot, loaded.updates.map(u => u.update))
      // read after the state: every client id the state writes under has its owner by then
      const owners = ownersFromLog(await storage.loadAuthors(info.name), loaded.updates)
      yield encoder.document({
        name: info.name, state, lastSeq: info.lastSeq, updatedAt: info.updatedAt,
        authors: [...owners].sort((a, b) => a[0] - b[0]).map(([client, userId]) => ({ client, userId })),
      })
      for (const v of await storage.listVersions(info.name)) {
        // one snapshot in memory at a time; a version pruned since the listing is left out
        const found = await storage.loadVersion(info.name, v.id)
        if (found === null) continue
        const { bytes: _bytes, ...meta } = found.version
        yield encoder.version({ document: info.name, ...meta, snapshot: found.snapshot })
      }
    }
    yield encoder.end()
  }
  return { lines: lines(), counts: () => encoder.counts }
}

/** What to do with a document of the archive that has content or versions in the target store. */
export type ImportConflict = 'refuse' | 'overwrite' | 'merge'

export interface ImportOptions {
  /** Default `refuse`: nothing is written when any such document exists. */
  onExisting?: ImportConflict
  /** Documents written concurrently (their appends share group commits). Default 8. */
  concurrency?: number
}

export interface ImportSummary {
  header: ArchiveHeader
  trailer: ArchiveTrailer
  documents: number
  versions: number
  /** Client id → user pairs recorded. */
  authors: number
  dataBytes: number
  /** Documents that had content or versions in the target before (replaced or merged into). */
  existing: string[]
}

/** Reads an archive from the start: raw chunks (UTF-8), as a file or a decompressing stream gives them. */
export type ArchiveSource = () => AsyncIterable<Uint8Array | string>

/**
 * Load an archive `checkArchive` found sound into `storage`. Nothing is written when (by default)
 * one of its documents already has content or versions in the target. The archive is read again
 * (`open` is called once more) rather than held in memory.
 *
 * A document is written as one update holding its whole state, folded into the store's snapshot
 * (`compact`), then its versions and authors. With `overwrite` an existing document is deleted
 * first; with `merge` the archive's state is appended to its log (Yjs merges it: nothing either
 * side wrote is lost), versions whose id it has already are kept as they are, and its authors
 * keep the client ids they own. Log positions are the target's own: a version that covered the
 * whole exported document covers the imported state; an older one covers an unknown position
 * (`seq` 0), so time travel between versions answers with the version before, marked inexact.
 */
/** An archive read through once and found sound: its header, trailer and document names. */
export interface CheckedArchive {
  header: ArchiveHeader
  trailer: ArchiveTrailer
  names: string[]
}

/** Read the whole archive and check it (grammar, Yjs updates, counts, checksum); throws the archive's `ConcordError`. */
export async function checkArchive(open: ArchiveSource): Promise<CheckedArchive> {
  const names: string[] = []
  const decoder = new ArchiveDecoder()
  const rest = await eachLine(open(), line => {
    const record = decoder.line(line)
    if (record.type === 'document') names.push(record.document.name)
  })
  return { ...decoder.finish(rest), names }
}

export async function importStore(storage: StorageAdapter, open: ArchiveSource, checked: CheckedArchive, options: ImportOptions = {}): Promise<ImportSummary> {
  const onExisting = options.onExisting ?? 'refuse'
  const listed = new Set((await storage.list()).map(d => d.name))
  const existing: string[] = []
  for (const name of checked.names) {
    if (listed.has(name) || (await storage.listVersions(name)).length > 0) existing.push(name)
  }
  if (existing.length > 0 && onExisting === 'refuse') {
    const shown = existing.slice(0, 5).map(n => JSON.stringify(n)).join(', ') + (existing.length > 5 ? ` and ${existing.length - 5} more` : '')
    throw new ConcordError('CONCORD_ERR_IMPORT_DOCUMENT_EXISTS',
      `${existing.length} document(s) of the archive already exist in the target store (${shown}); nothing was written: use --overwrite or --merge`)
  }
  const isExisting = new Set(existing)

  // pass 2: write, a few documents at a time
  const summary: Tally = { documents: 0, versions: 0, authors: 0, dataBytes: 0 }
  const concurrency = Math.max(1, options.concurrency ?? 8)
  const inFlight: Promise<void>[] = []
  let current: DocumentImport | null = null
  let failure: unknown = null
  const settle = (job: Promise<void>): Promise<void> => job.catch(err => { failure ??= err })
  const decoder = new ArchiveDecoder()
  const rest = await eachLine(open(), async line => {
    if (failure !== null) throw failure
    const record = decoder.line(line)
    if (record.type === 'document') {
      if (current !== null) inFlight.push(settle(current.done()))
      while (inFlight.length >= concurrency) await inFlight.shift()
      current = new DocumentImport(storage, record.document, isExisting.has(record.document.name) && onExisting !== 'refuse' ? onExisting : 'fresh', summary)
    } else if (record.type === 'version') {
      current!.addVersion(record.version)
    }
  })
  decoder.finish(rest)
  if (current !== null) inFlight.push(settle((current as DocumentImport).done()))
  await Promise.all(inFlight)
  if (failure !== null) throw failure
  await storage.flush()
  return { header: checked.header, trailer: checked.trailer, ...summary, existing }
}

type Tally = { documents: number; versions: number; authors: number; dataBytes: number }

/** One document being written: its state first, then its versions in order. */
class DocumentImport {
  #chain: Promise<unknown>
  readonly #storage: StorageAdapter
  readonly #document: ArchivedDocument
  readonly #summary: Tally
  /** The target's seq of the imported state (0 when merged or empty). */
  #stateSeq = 0
  #known = new Set<string>()
  readonly #mode: 'fresh' | 'overwrite' | 'merge'

  constructor(storage: StorageAdapter, document: ArchivedDocument, mode: 'fresh' | 'overwrite' | 'merge', summary: Tally) {
    this.#storage = storage
    this.#document = document
    this.#summary = summary
    this.#mode = mode
    this.#chain = this.#writeState()
  }

  addVersion(v: ArchivedVersion): void {
    this.#chain = this.#chain.then(() => this.#writeVersion(v))
  }

  async done(): Promise<void> {
    await this.#chain
    this.#summary.documents++
  }

  async #writeState(): Promise<void> {
    const { name, state, authors, updatedAt } = this.#document
    if (this.#mode === 'overwrite') await this.#storage.delete(name)
    if (this.#mode === 'merge') this.#known = new Set((await this.#storage.listVersions(name)).map(v => v.id))
    if (!isEmptyUpdate(state)) {
      const seq = await this.#storage.append(name, { update: state, userId: null, at: updatedAt })
      // a fresh document: the state becomes its snapshot, as the exported store had it
      if (this.#mode !== 'merge') {
        await this.#storage.compact(name, state, seq)
        this.#stateSeq = seq
      }
    }
    if (authors.length > 0) await this.#storage.recordAuthors(name, authors)
    this.#summary.authors += authors.length
    this.#summary.dataBytes += state.byteLength
  }

  async #writeVersion(v: ArchivedVersion): Promise<void> {
    if (this.#known.has(v.id)) return
    const { document: _document, ...version } = v
    const seq = this.#stateSeq > 0 && v.seq >= this.#document.lastSeq ? this.#stateSeq : 0
    await this.#storage.saveVersion(this.#document.name, { ...version, seq })
    this.#summary.versions++
    this.#summary.dataBytes += v.snapshot.byteLength
  }
}

const FIRST_LINE_MAX_CHARS = 1 << 20

/** The update of an empty Yjs document (no structs, no deletes). */
function isEmptyUpdate(update: Uint8Array): boolean {
  return update.byteLength === 2 && update[0] === 0 && update[1] === 0
}

/**
 * Calls `onLine` for every complete line (without its `\n`, awaiting it) and resolves with what
 * followed the last newline (a cut-off last line, or '').
 */
async function eachLine(chunks: AsyncIterable<Uint8Array | string>, onLine: (line: string) => unknown): Promise<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let buffered = ''
  let lines = 0
  const text = (chunk: Uint8Array | string, stream: boolean): string => {
    try {
      return typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream })
    } catch {
      throw new ConcordError('CONCORD_ERR_ARCHIVE_MALFORMED', 'the archive is not UTF-8 text')
    }
  }
  for await (const chunk of chunks) {
    buffered += text(chunk, true)
    let start = 0
    let nl: number
    while ((nl = buffered.indexOf('\n', start)) >= 0) {
      await onLine(buffered.slice(start, nl))
      lines++
      start = nl + 1
    }
    buffered = buffered.slice(start)
    // a header line is short: a large file without one is not an archive (do not read it all into one string)
    if (lines === 0 && buffered.length > FIRST_LINE_MAX_CHARS) throw new ConcordError('CONCORD_ERR_ARCHIVE_MALFORMED', 'not a Concord archive (no header line)')
  }
  return buffered + text(new Uint8Array(0), false)
}
