import { mkdir, readFile, rename, rm, writeFile, open } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeSnapshot, encodeSnapshot, type OfflineStore } from './offline-store.js'

/**
 * Node only: one file per document in `dir`, replaced atomically (write a
 * temporary file, fsync, rename), so a crash leaves either the old or the new
 * snapshot. Import it from `@concord/client/node`.
 */
export function createFileOfflineStore(dir: string): OfflineStore {
  const ready = mkdir(dir, { recursive: true })
  const fileOf = (document: string): string => join(dir, `${encodeURIComponent(document)}.concord`)
  return {
    async load(document) {
      await ready
      try {
        return decodeSnapshot(new Uint8Array(await readFile(fileOf(document))))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
    },
    async save(document, snapshot) {
      await ready
      const file = fileOf(document)
      const tmp = `${file}.${process.pid}.tmp`
      await writeFile(tmp, encodeSnapshot(snapshot))
      const handle = await open(tmp, 'r+')
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(tmp, file)
    },
    async remove(document) {
      await ready
      await rm(fileOf(document), { force: true })
    },
  }
}
