import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { DocHandle } from '@concord/client'
import { waitFor } from './helpers.js'
import { spawnServer, type ServerProcess } from './server-process.js'

/** `concord serve --store memory` in a child process, stopped by `cleanups`; PROF=1 writes a CPU profile to /tmp/prof. */
export async function memoryServerProcess(args: string[], cleanups: (() => unknown)[]): Promise<ServerProcess> {
  const p = await spawnServer(['--store', 'memory', '--port', '0', ...args], {}, process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [])
  cleanups.push(async () => {
    if (p.child.exitCode === null) {
      p.child.kill('SIGTERM')
      await p.exited
    }
  })
  return p
}

/** Client fixtures that run in processes of their own (as other users' machines would). */
export const FIXTURES = {
  paster: fileURLToPath(new URL('./fixtures/paster.mjs', import.meta.url)),
  typist: fileURLToPath(new URL('./fixtures/typist.mjs', import.meta.url)),
  watcher: fileURLToPath(new URL('./fixtures/watcher.mjs', import.meta.url)),
  flooder: fileURLToPath(new URL('./fixtures/flooder.mjs', import.meta.url)),
}

export interface ChildClient {
  pid: number
  send: (line: string) => void
  /** The first JSON line printed with this `type`. */
  next: (type: string, timeoutMs?: number) => Promise<Record<string, number>>
  /** Every JSON line printed so far, in order. */
  events: Record<string, unknown>[]
  /** The first JSON line printed (so far or from now on) for which `match` holds. */
  until: (match: (event: Record<string, unknown>) => boolean, what: string, timeoutMs?: number) => Promise<Record<string, unknown>>
  /** Sends `command` and returns the first line of `type` printed after it. */
  ask: (command: string, type: string, timeoutMs?: number) => Promise<Record<string, unknown>>
}

/** A client in a child process that prints JSON lines ({type, ...}) and takes commands on stdin; killed by `cleanups`. */
export function childClient(script: string, args: string[], cleanups: (() => unknown)[]): ChildClient {
  const child: ChildProcess = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  cleanups.push(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const events: Record<string, unknown>[] = []
  let buffered = ''
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString()
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buffered.slice(0, nl)))
      buffered = buffered.slice(nl + 1)
    }
  })
  return {
    pid: child.pid!,
    send: line => { child.stdin!.write(`${line}\n`) },
    next: (type, timeoutMs = 10_000) => waitFor(() => events.find(e => e.type === type) as Record<string, number> | undefined, { timeoutMs, message: `${type} from ${script}` }),
    events,
    until: (match, what, timeoutMs = 10_000) => waitFor(() => events.find(match), { timeoutMs, message: () => `${what} from ${script} (last line: ${JSON.stringify(events.at(-1))?.slice(0, 300)})` }),
    ask: (command, type, timeoutMs = 10_000) => {
      const from = events.length
      child.stdin!.write(`${command}\n`)
      return waitFor(() => events.slice(from).find(e => e.type === type), { timeoutMs, message: `${type} from ${script} after "${command}"` })
    },
  }
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!
}

/**
 * `typist` types one character every `everyMs` and moves its cursor; `watcher` records how long each
 * keystroke takes to arrive. Returns the latencies so far and a stop function.
 */
export function measureTyping(typist: DocHandle, watcher: DocHandle, everyMs = 20): { latencies: number[]; stop: () => Promise<void> } {
  const sent = new Map<number, number>()
  const latencies: number[] = []
  let seen = 0
  watcher.doc.getMap<number>('ticks').observe(() => {
    const n = watcher.doc.getMap<number>('ticks').get('n') ?? 0
    for (let k = seen + 1; k <= n; k++) latencies.push(Date.now() - sent.get(k)!)
    seen = Math.max(seen, n)
  })
  let running = true
  let i = 0
  const loop = (async () => {
    while (running) {
      i++
      sent.set(i, Date.now())
      typist.doc.transact(() => {
        typist.doc.getText('typed').insert(0, 'k')
        typist.doc.getMap('ticks').set('n', i)
      })
      typist.awareness.setLocalStateField('cursor', i)
      // typing pace (one keystroke every everyMs), not synchronisation
      await new Promise(r => setTimeout(r, everyMs))
    }
  })()
  return {
    latencies,
    stop: async () => {
      running = false
      await loop
      await waitFor(() => seen === i, { message: () => `all ${i} keystrokes to arrive (${seen})` })
    },
  }
}
