// `concord export` and `concord import`: open the store, stream the archive through a file (gzip
// when asked or found), print a summary. The archive itself: content/archive-format.ts and
// content/store-archive.ts.
import { createReadStream, createWriteStream, existsSync } from 'node:fs'
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import { ConcordError } from '@concord/protocol'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import { checkArchive, exportStore, importStore, type ImportSummary } from '../content/store-archive.js'
import { VERSION } from '../server.js'
import type { ArchiveStore, ExportConfig, ImportConfig } from './archive-config.js'
import { UsageError } from './serve-config.js'

export interface CommandIo {
  stdin: NodeJS.ReadableStream
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
}

/** The store named by --store/--data. Export does not create an SQLite store that is not there. */
async function openStore(target: ArchiveStore, mustExist: boolean): Promise<StorageAdapter> {
  if (target.store === 'sqlite') {
    if (mustExist && !existsSync(join(target.data, 'concord.db'))) throw new UsageError(`there is no SQLite store in ${target.data} (no concord.db): give --data <dir> of the store`)
    const { createSqliteStorage } = await import('../storage/sqlite-storage.js')
    // WAL: this process reads (or writes) next to a server that may hold the store open; a busy
    // database is waited for (busy_timeout 5 s) rather than failed
    return createSqliteStorage({ dataDir: target.data, thread: 'main' })
  }
  if (target.storePartitions !== undefined) {
    const { createPartitionedPostgresStorage } = await import('../storage/partitioned-storage.js')
    const storage = await createPartitionedPostgresStorage({ partitions: target.storePartitions.map(p => ({ id: p.id, connectionString: p.url })), connectionTimeoutMs: 10_000 })
    // every partition, or the archive (or the import) would miss documents
    const missing = storage.partitions().filter(p => p.state !== 'open')
    if (missing.length > 0 || !storage.ready) {
      await storage.close().catch(() => undefined)
      throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', `partition(s) ${(missing.length > 0 ? missing : storage.partitions().filter(p => p.primary)).map(p => `"${p.id}"`).join(', ')} not reachable (${describeStore(target)})`)
    }
    return storage
  }
  const { createPostgresStorage } = await import('../storage/postgres-storage.js')
  const storage = await createPostgresStorage({ connectionString: target.storeUrl!, connectionTimeoutMs: 10_000 })
  if (!storage.ready) {
    await storage.close().catch(() => undefined)
    throw new ConcordError('CONCORD_ERR_STORAGE_UNAVAILABLE', `PostgreSQL at ${describeStore(target)} is not reachable`)
  }
  return storage
}

export function describeStore(target: ArchiveStore): string {
  if (target.store === 'sqlite') return `sqlite ${target.data}`
  if (target.storePartitions !== undefined) return `PostgreSQL partitions ${target.storePartitions.map(p => `${p.id}=${redacted(p.url)}`).join(',')}`
  return redacted(target.storeUrl!)
}

function redacted(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return 'postgres://…'
  }
}

/** `concord export`: every document of the store, with its versions and authors, to one archive. */
export async function runExport(config: ExportConfig, io: CommandIo): Promise<void> {
  const storage = await openStore(config.target, true)
  // a file is written beside its destination and renamed once complete: an interrupted export
  // never leaves a file under the archive's name
  const partial = config.out === '-' ? null : join(dirname(config.out), `.${basename(config.out)}.partial-${process.pid}`)
  const exported = exportStore(storage, { concordVersion: VERSION })
  try {
    const sink: Writable = partial === null ? stdoutSink(io.stdout) : createWriteStream(partial, { mode: 0o600 })
    const source = Readable.from(exported.lines)
    if (config.gzip) await pipeline(source, createGzip(), sink)
    else await pipeline(source, sink)
    if (partial !== null) await rename(partial, config.out)
  } catch (err) {
    if (partial !== null) await rm(partial, { force: true })
    throw err
  } finally {
    await storage.close()
  }
  const counts = exported.counts()
  const size = config.out === '-' ? '' : ` (${formatBytes((await stat(config.out)).size)})`
  io.stderr.write(`concord export: ${counts.documents} documents, ${counts.versions} versions, ${formatBytes(counts.dataBytes)} of Yjs data from ${describeStore(config.target)} to ${config.out === '-' ? 'standard output' : config.out}${size}\n`)
}

/** Standard output as a pipeline's end that is not closed with it. */
function stdoutSink(stdout: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (stdout.write(chunk)) callback()
      else stdout.once('drain', () => callback())
    },
  })
}

/** `concord import`: check the archive completely, then load it into the store. */
export async function runImport(config: ImportConfig, io: CommandIo): Promise<ImportSummary> {
  // standard input can be read once: it is kept in a temporary file for the two passes
  let spooled: string | null = null
  let file = config.in
  if (file === '-') {
    spooled = await mkdtemp(join(tmpdir(), 'concord-import-'))
    file = join(spooled, 'archive')
    await pipeline(io.stdin, createWriteStream(file, { mode: 0o600 }))
  } else if (!existsSync(file)) {
    throw new UsageError(`no archive at ${file}`)
  }
  try {
    const gzip = await isGzip(file)
    const source = (): AsyncIterable<Uint8Array> => archiveChunks(file, gzip)
    // the whole archive is checked before the store is even opened (an SQLite store is not created for a refused archive)
    const checked = await checkArchive(source)
    const storage = await openStore(config.target, false)
    let summary: ImportSummary
    try {
      summary = await importStore(storage, source, checked, { onExisting: config.onExisting })
    } finally {
      await storage.close()
    }
    const existing = summary.existing.length === 0 ? '' : `; ${summary.existing.length} existing documents ${config.onExisting === 'merge' ? 'merged into' : 'replaced'}`
    io.stdout.write(`concord import: ${summary.documents} documents, ${summary.versions} versions, ${summary.authors} authors, ${formatBytes(summary.dataBytes)} of Yjs data (exported ${summary.header.exportedAt} from ${summary.header.source} by Concord ${summary.header.concord}) into ${describeStore(config.target)}${existing}\n`)
    return summary
  } finally {
    if (spooled !== null) await rm(spooled, { recursive: true, force: true })
  }
}

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r')
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(2), 0, 2, 0)
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b
  } finally {
    await handle.close()
  }
}

/** The archive's bytes, decompressed; a damaged or cut gzip stream is the archive's error. */
async function* archiveChunks(file: string, gzip: boolean): AsyncGenerator<Uint8Array> {
  const stream = gzip ? createReadStream(file).pipe(createGunzip()) : createReadStream(file)
  try {
    for await (const chunk of stream) yield chunk as Buffer
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'Z_BUF_ERROR') throw new ConcordError('CONCORD_ERR_ARCHIVE_TRUNCATED', 'the compressed archive ends early (unexpected end of file)', { cause: err })
    if (code?.startsWith('Z_') === true) throw new ConcordError('CONCORD_ERR_ARCHIVE_MALFORMED', `the compressed archive is damaged (${(err as Error).message})`, { cause: err })
    throw err
  } finally {
    stream.destroy()
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}
