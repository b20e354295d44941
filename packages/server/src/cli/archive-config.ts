// `concord export` and `concord import`: their arguments (and CONCORD_STORE / CONCORD_DATA, as
// `concord serve` reads them) to a config. Pure: the environment is passed in.
import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import type { ImportConflict } from '../content/store-archive.js'
import { parseStore, UsageError, type StoreConfig } from './serve-config.js'

/** A store a command can export from or import into (not `memory`: it lives only inside a server). */
export type ArchiveStore = StoreConfig & { store: 'sqlite' | 'postgres' }

export interface ExportConfig {
  target: ArchiveStore
  /** A file path, or `-` for standard output. */
  out: string
  gzip: boolean
}

export interface ImportConfig {
  target: ArchiveStore
  /** A file path (plain or gzip, told by its first bytes), or `-` for standard input. */
  in: string
  onExisting: ImportConflict
}

const STORE_OPTIONS = { store: { type: 'string' }, 'store-partition': { type: 'string', multiple: true }, data: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const

function archiveStore(store: string | undefined, data: string | undefined, env: NodeJS.ProcessEnv, partitions?: string[]): ArchiveStore {
  const parsed = parseStore(store, data, env, partitions)
  if (parsed.store === 'memory') throw new UsageError('the memory store lives inside a running server: export and import need --store sqlite (with --data <dir>) or a postgres:// URL')
  return parsed as ArchiveStore
}

export function parseExportConfig(argv: string[], env: NodeJS.ProcessEnv): ExportConfig {
  const { values } = parseArgs({ args: argv, options: { ...STORE_OPTIONS, out: { type: 'string', short: 'o' }, gzip: { type: 'boolean' } }, strict: true, allowPositionals: false })
  const out = values.out
  if (out === undefined || out === '') throw new UsageError('concord export needs --out <file> (or --out - for standard output)')
  return {
    target: archiveStore(values.store, values.data, env, values['store-partition']),
    out: out === '-' ? '-' : resolve(out),
    gzip: values.gzip === true || out.endsWith('.gz'),
  }
}

export function parseImportConfig(argv: string[], env: NodeJS.ProcessEnv): ImportConfig {
  const { values } = parseArgs({
    args: argv,
    options: { ...STORE_OPTIONS, in: { type: 'string', short: 'i' }, overwrite: { type: 'boolean' }, merge: { type: 'boolean' } },
    strict: true, allowPositionals: false,
  })
  const input = values.in
  if (input === undefined || input === '') throw new UsageError('concord import needs --in <file> (or --in - for standard input)')
  if (values.overwrite === true && values.merge === true) throw new UsageError('give --overwrite or --merge, not both')
  return {
    target: archiveStore(values.store, values.data, env, values['store-partition']),
    in: input === '-' ? '-' : resolve(input),
    onExisting: values.overwrite === true ? 'overwrite' : values.merge === true ? 'merge' : 'refuse',
  }
}
