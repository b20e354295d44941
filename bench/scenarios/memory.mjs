// Scenario "memory": server RSS per idle connection.
//
// One warm-up connection is opened and closed first (so lazily loaded code and
// one-time allocations are not charged to the connections), then the server's
// RSS (VmRSS) is read, N connections are opened to R rooms (connection j joins
// room j mod R), each completes the initial sync (and, by default, announces one
// awareness state), then everything idles for `settle` seconds and RSS is read
// again. No GC is forced: neither server exposes one.
import { randomBytes } from 'node:crypto'
import { WorkerHandle, terminateAll, sleep } from '../lib/workers.mjs'
import { startMeter, cpuRows } from '../lib/meter.mjs'
import { openFileLimit } from '../lib/server-proc.mjs'
import { createClient } from '../lib/clients.mjs'

const workerFile = new URL('./memory-worker.mjs', import.meta.url)
const FD_MARGIN = 256

export function roomsFor (opts) {
  return opts.memoryRooms || Math.max(1, Math.round(opts.connections / 10))
}

export function describe (opts, name = 'idle memory') {
  return `${name} (${opts.connections.toLocaleString('en-US')} connections, ${roomsFor(opts).toLocaleString('en-US')} rooms${opts.awareness ? ', 1 awareness state each' : ''})`
}

/** Throws a clear error when this process (and so the server it starts) may not open enough files. */
export function checkFdLimit (opts) {
  const { soft, hard } = openFileLimit()
  const need = opts.connections + FD_MARGIN
  if (Number.isFinite(soft) && soft < need) {
    // Node raises its soft RLIMIT_NOFILE to the hard limit at startup, so the
    // soft limit read here is normally the hard limit of the shell.
    const target = Math.max(need, 65536)
    const howTo = hard >= need
      ? `Raise it in the shell that runs the benchmark: \`ulimit -n ${Number.isFinite(hard) ? Math.min(target, hard) : target}\``
      : `The hard limit is too low, which only root can raise: \`ulimit -Hn ${target} && ulimit -n ${target}\` in a root shell, the container's nofile ulimit (docker run --ulimit nofile=${target}:${target}), or /etc/security/limits.conf`
    throw new Error(`open-file limit too low: ${opts.connections} connections need ${need} open files ` +
      `(the load generator and the server each hold one socket per connection, plus ${FD_MARGIN} spare), ` +
      `but this process may open only ${soft} (soft limit after Node's startup raise; hard limit ${hard}). ` +
      `${howTo}; or pass a smaller --connections.`)
  }
  return { soft, hard, need }
}

export async function run ({ server, baseUrl, protocol, opts, log }) {
  if (!server.rssKB) throw new Error('needs the server process (pass --server-pid with --url)')
  checkFdLimit(opts)
  const tag = randomBytes(3).toString('hex')
  const R = roomsFor(opts)
  const N = opts.connections

  // warm-up: one connection to a separate room, then close it
  const warm = createClient(`${baseUrl}/bench-mem-${tag}-warmup`, { protocol })
  await warm.connect({ timeoutMs: 15000 })
  await warm.close()
  await sleep(1000)
  const rssBefore = server.rssKB()

  const nWorkers = Math.max(1, Math.min(opts.workers, N))
  const shares = Array.from({ length: nWorkers }, () => [])
  const firsts = []
  for (let w = 0, j = 0; w < nWorkers; w++) {
    const count = Math.floor(N / nWorkers) + (w < N % nWorkers ? 1 : 0)
    firsts.push(j)
    for (let k = 0; k < count; k++, j++) shares[w].push(`bench-mem-${tag}-${j % R}`)
  }
  const handles = shares.map((rooms, w) => new WorkerHandle(workerFile, {
    baseUrl,
    protocol,
    localAddresses: opts.localAddresses ?? ['127.0.0.1'],
    rooms,
    awareness: opts.awareness,
    connectTimeoutMs: 60000,
    connectConcurrency: 50,
    firstIndex: firsts[w]
  }, `memory worker ${w}`))
  try {
    const stop = startMeter(server)
    const ready = await Promise.all(handles.map(h => h.next('ready', 120000 + N * 20)))
    const connected = ready.reduce((n, r) => n + r.connected, 0)
    const failed = ready.reduce((n, r) => n + r.failed, 0)
    const connectS = Math.max(...ready.map(r => r.connectMs)) / 1000
    log(`  memory: ${connected}/${N} connections synced in ${connectS.toFixed(1)} s${failed ? ` (${failed} failed, first: ${ready.find(r => r.firstError).firstError})` : ''}; settling ${opts.settle} s`)
    if (connected === 0) throw new Error(`no connection succeeded: ${ready.find(r => r.firstError)?.firstError}`)
    await sleep(opts.settle * 1000)
    const rssAfter = server.rssKB()
    const m = stop()
    const clientRssMiB = process.memoryUsage().rss / 2 ** 20
    for (const h of handles) h.post({ type: 'check' })
    const checked = await Promise.all(handles.map(h => h.next('checked', 30000)))
    const open = checked.reduce((n, c) => n + c.open, 0)
    for (const h of handles) h.post({ type: 'close' })
    await Promise.all(handles.map(h => h.next('closed', 60000))).catch(() => {})
    return {
      headline: (rssAfter - rssBefore) / Math.max(1, open),
      rows: [
        ['connections open after settle', `${open.toLocaleString('en-US')} / ${N.toLocaleString('en-US')}`, null],
        ['rooms', R, 0],
        ['connect + sync time (s)', connectS, 1],
        ['server RSS before (MiB)', rssBefore / 1024, 1],
        ['server RSS after (MiB)', rssAfter / 1024, 1],
        ['RSS per connection (KiB)', (rssAfter - rssBefore) / Math.max(1, open), 1],
        ['load-generator RSS (MiB)', clientRssMiB, 0],
        ...cpuRows(m)
      ]
    }
  } finally {
    await terminateAll(handles)
  }
}

/** A memory scenario; `paramsOf(opts)` overrides { connections, memoryRooms, localAddresses }. */
export function memoryScenario (paramsOf, name) {
  return {
    describe: (opts) => describe({ ...opts, ...paramsOf(opts) }, name),
    checkFdLimit: (opts) => checkFdLimit({ ...opts, ...paramsOf(opts) }),
    run: (ctx) => run({ ...ctx, opts: { ...ctx.opts, ...paramsOf(ctx.opts) } })
  }
}
