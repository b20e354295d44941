import { readlinkSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'

/**
 * Lowers the calling thread's scheduling priority by `increment` (its nice value goes up, at most
 * to 19). On Linux a nice value belongs to one thread, so this changes only the caller. Returns the
 * new nice value, or null where it cannot be done (another platform, no /proc, refused).
 *
 * Used by the SQLite worker: a commit it is woken for would otherwise preempt the event loop that
 * fans updates out (measured: 220–340 µs of the main thread per commit request at nice 0 on two
 * busy cores, 80–100 µs at 10; docs/benchmarks.md, "Fan-out tail").
 */
export function lowerThreadPriority(increment: number): number | null {
  if (!(increment > 0) || process.platform !== 'linux') return null
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (!Number.isInteger(tid) || tid <= 0) return null
    const nice = Math.min(19, getPriority(tid) + Math.floor(increment))
    setPriority(tid, nice)
    return nice
  } catch {
    return null
  }
}
