import { afterEach } from 'vitest'
import { rmSync } from 'node:fs'
import type { ConcordClient } from '@concord/client'
import type { ServerProcess } from './server-process.js'

/**
 * What a test file starts and must end after each test: clients are closed, server processes
 * still running are killed (by PID), temporary directories are removed.
 */
export function cleanupAfterEach(): { procs: ServerProcess[]; clients: ConcordClient[]; dirs: string[] } {
  const procs: ServerProcess[] = []
  const clients: ConcordClient[] = []
  const dirs: string[] = []
  afterEach(() => {
    for (const c of clients.splice(0)) c.close()
    for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  return { procs, clients, dirs }
}
