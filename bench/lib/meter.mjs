// CPU and wall-time accounting for one measured interval.
import { CLK_TCK } from './server-proc.mjs'
import { now } from './yclient.mjs'

/**
 * Starts measuring. The returned function stops and reports:
 *   wallS       wall time of the interval
 *   serverCpuS  utime+stime of the server process (all its threads), /proc/<pid>/stat
 *   clientCpuS  user+system CPU of this load-generator process (main thread and
 *               all worker threads), process.cpuUsage()
 */
export function startMeter (server) {
  const t0 = now()
  const c0 = process.cpuUsage()
  const s0 = server.cpuTicks()
  return () => {
    const c = process.cpuUsage(c0)
    return {
      wallS: (now() - t0) / 1000,
      serverCpuS: (server.cpuTicks() - s0) / CLK_TCK,
      clientCpuS: (c.user + c.system) / 1e6
    }
  }
}

/** Standard report rows for a meter result. */
export function cpuRows (m) {
  return [
    ['server CPU (s)', m.serverCpuS, 2],
    ['load-generator CPU (s)', m.clientCpuS, 2],
    ['measured wall time (s)', m.wallS, 2]
  ]
}
