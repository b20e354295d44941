import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { storageContract } from './storage-contract.js'
import { createMemoryStorage } from './memory-storage.js'
import { createSqliteStorage } from './sqlite-storage.js'

storageContract('memory', { create: async () => createMemoryStorage() })
storageContract('memory with slow commits', { create: async () => createMemoryStorage({ commitDelayMs: 5 }) })

let dir = ''
storageContract('sqlite', {
  create: async () => {
    dir = mkdtempSync(join(tmpdir(), 'concord-sqlite-'))
    return createSqliteStorage({ dataDir: dir })
  },
  reopen: async () => createSqliteStorage({ dataDir: dir }),
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
})
