import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { storageContract } from './storage-contract.js'
import { createMemoryStorage } from './memory-storage.js'
import { createSqliteStorage } from './sqlite-storage.js'

storageContract('memory', { create: async () => createMemoryStorage(), leases: true })
storageContract('memory with slow commits', { create: async () => createMemoryStorage({ commitDelayMs: 5 }) })

for (const thread of ['worker', 'main'] as const) {
  let dir = ''
  storageContract(`sqlite (${thread} thread)`, {
    create: async () => {
      dir = mkdtempSync(join(tmpdir(), 'concord-sqlite-'))
      return createSqliteStorage({ dataDir: dir, thread })
    },
    reopen: async () => createSqliteStorage({ dataDir: dir, thread }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  })
}
