// Starting, measuring and stopping a server child process.
//
// Every child is spawned directly (no shell), so the PID we hold is the
// server's own process: /proc/<pid>/stat and /proc/<pid>/status describe the
// server, and stopping it kills exactly that PID. Children still alive when
// this process exits are SIGKILLed by PID (see killAllChildren).
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync, openSync, closeSync, existsSync } from 'node:fs'
import net from 'node:net'
import { resolve as resolvePath } from 'node:path'

export const HOST = '127.0.0.1'

let clkTck = 100
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
} catch {}
export const CLK_TCK = clkTck

/** @type {Set<import('node:child_process').ChildProcess>} */
const live = new Set()

/** SIGKILLs every child that is still running (synchronous; safe in an 'exit' handler). */
export function killAllChildren () {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(child.pid, 'SIGKILL') } catch {}
    }
  }
  live.clear()
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Splits a command template on whitespace; '...' and "..." group words. */
export function splitCommand (str) {
  const out = []
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g
  let m
  while ((m = re.exec(str)) !== null) out.push(m[1] ?? m[2] ?? m[3])
  return out
}

/** Replaces {port} {host} {data} in every word. */
export function fillTemplate (words, vars) {
  return words.map(w => w.replace(/\{(\w+)\}/g, (all, k) => (k in vars ? String(vars[k]) : all)))
}

/** Resolves once something accepts TCP connections on host:port, polling until the deadline. */
export async function waitForPort (port, { host = HOST, deadline, isDead = () => null } = {}) {
  for (;;) {
    const dead = isDead()
    if (dead) throw new Error(dead)
    const ok = await new Promise(resolve => {
      const s = net.connect({ port, host })
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => { s.destroy(); resolve(false) })
      s.setTimeout(1000, () => { s.destroy(); resolve(false) })
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing accepted connections on ${host}:${port} before the deadline`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** utime + stime of a process in clock ticks (all threads), from /proc/<pid>/stat. */
export function readCpuTicks (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name, which is in parentheses and may contain spaces
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // rest[0] is field 3 (state); utime is field 14, stime field 15
  return Number(rest[11]) + Number(rest[12])
}

/** Resident set size in KiB, from /proc/<pid>/status VmRSS. */
export function readRssKB (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

/** Soft and hard limit on open files of this process (the server child inherits it). */
export function openFileLimit () {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    if (m) return { soft: m[1] === 'unlimited' ? Infinity : Number(m[1]), hard: m[2] === 'unlimited' ? Infinity : Number(m[2]) }
  } catch {}
  return { soft: NaN, hard: NaN }
}

function tail (file, maxBytes = 2000) {
  try {
    const s = readFileSync(file, 'utf8')
    return s.length > maxBytes ? '…' + s.slice(-maxBytes) : s
  } catch { return '' }
}

/**
 * Spawns `argv` (argv[0] === 'node' is replaced by this Node binary), with
 * stdout+stderr appended to `logFile`, and waits until the port accepts TCP
 * connections.
 * @returns {Promise<{pid:number, port:number, argv:string[], logFile:string,
 *   cpuTicks:()=>number, rssKB:()=>number, alive:()=>boolean, stop:()=>Promise<void>}>}
 */
export async function startServer ({ argv, env = {}, port, logFile, cwd, readyTimeoutMs = 20000 }) {
  const [cmd0, ...rest] = argv
  const cmd = cmd0 === 'node' ? process.execPath : cmd0
  // BENCH_SERVER_NODE_ARGS: extra Node flags for every Node server (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`)
  const extra = cmd0 === 'node' && process.env.BENCH_SERVER_NODE_ARGS ? process.env.BENCH_SERVER_NODE_ARGS.split(/\s+/).filter(Boolean) : []
  const args = [...extra, ...rest]
  if (cmd0 === 'node' && rest[0] && !rest[0].startsWith('-') && !existsSync(resolvePath(cwd ?? '.', rest[0]))) {
    throw new Error(`server script not found: ${rest[0]} (relative to ${cwd})`)
  }
  const fd = openSync(logFile, 'a')
  let child
  try {
    child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] })
  } finally {
    closeSync(fd)
  }
  live.add(child)
  let spawnError = null
  child.once('error', (e) => { spawnError = e })
  const exited = new Promise(resolve => child.once('exit', (code, signal) => { live.delete(child); resolve({ code, signal }) }))
  const alive = () => child.exitCode === null && child.signalCode === null && !spawnError

  const stop = async () => {
    if (!alive()) { live.delete(child); return }
    try { process.kill(child.pid, 'SIGTERM') } catch {}
    const t = await Promise.race([exited, new Promise(resolve => setTimeout(() => resolve(null), 5000))])
    if (t === null && alive()) {
      try { process.kill(child.pid, 'SIGKILL') } catch {}
      await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 2000))])
    }
    live.delete(child)
  }

  try {
    await waitForPort(port, {
      deadline: Date.now() + readyTimeoutMs,
      isDead: () => {
        if (spawnError) return `could not start ${cmd}: ${spawnError.message}`
        if (!alive()) return `server exited early (code ${child.exitCode}, signal ${child.signalCode})`
        return null
      }
    })
  } catch (e) {
    await stop()
    throw new Error(`${e.message}; see ${logFile}\ncommand: ${argv.join(' ')}\nlog tail:\n${tail(logFile, 1000)}`)
  }
  if (!alive()) throw new Error(`server exited right after opening its port; log: ${logFile}`)
  return {
    pid: child.pid,
    port,
    argv,
    logFile,
    cpuTicks: () => readCpuTicks(child.pid),
    rssKB: () => readRssKB(child.pid),
    alive,
    stop
  }
}
