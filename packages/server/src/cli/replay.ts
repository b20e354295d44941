import * as Y from 'yjs'
import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import { createServer, type ConcordServer } from '../server.js'
import { DEFAULTS } from '../config/server-config.js'
import { createMemoryStorage } from '../storage/memory-storage.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import { silentLogger } from '../ops/logger.js'
import { decodeBase64, readRecording, type Recording } from '../ops/recording/recording-file.js'
import { compareStates, stateVectorOf, type StateVectorObject } from './compare-states.js'
import { ReplaySocket, withTimeout } from './replay-socket.js'

export type { StateVectorObject } from './compare-states.js'

export interface ReplayOptions {
  /** `asap` (default): each update as soon as the previous one is acked; `realtime`: no record before its recorded time. */
  speed?: 'asap' | 'realtime'
  /** Longest wait for any one answer of the replay server (WELCOME, OPENED, an ACK). Default 10 s. */
  timeoutMs?: number
  logger?: Logger
}

export interface ReplayReport {
  document: string
  path: string
  /** Recorded sessions replayed (one socket each). */
  sessions: number
  /** Updates sent to the replay server (acked or refused by it). */
  updatesSent: number
  /** Updates the recording server refused (never applied there): not sent. */
  updatesSkippedRefused: number
  /** Updates the replay server refused although the recording server had accepted them. */
  updatesRefusedByReplay: number
  /** Awareness updates sent. */
  awareness: number
  durationMs: number
  /** The recording's last line was cut off (a crash mid-write) and was ignored. */
  truncated: boolean
  /** False when the recording has no end record (the server stopped or crashed before ending it). */
  compared: boolean
  /** Whether the replayed document equals the recorded end state; null when not compared. */
  matches: boolean | null
  /** The recorded end state's state vector; null without an end record. */
  expectedStateVector: StateVectorObject | null
  actualStateVector: StateVectorObject
  /** How the states differ, when they do. */
  difference?: string
  /** What went differently from the recording: refusals by the replay server, sessions it closed, odd records. */
  warnings: string[]
}

const DEFAULT_TIMEOUT_MS = 10_000
/** At most this many warnings of one kind are listed; the rest are counted. */
const MAX_LISTED = 10

/**
 * Re-run a recording against a fresh in-process server (memory storage, auth
 * none) over real WebSockets with the native protocol, then compare the
 * server's document with the recording's end state.
 *
 * Order: a seeding session sends the base state and waits for its ACK, and stays
 * open (so the document stays loaded). Each recorded session gets its own socket
 * at its `open` record. Updates go out in the recorded global order: the updates of
 * one session are pipelined on its socket, and before an update of another session
 * is sent every update in flight is acked (or refused), so the replay server
 * applies them in the order the recording server received them. Awareness goes
 * out in order on its session's socket without waiting. At a `close` record,
 * everything in flight is settled first, then the session sends CLOSE.
 */
export async function replayRecording(path: string, options: ReplayOptions = {}): Promise<ReplayReport> {
  const speed = options.speed ?? 'asap'
  if (speed !== 'asap' && speed !== 'realtime') throw new TypeError(`replay speed must be 'asap' or 'realtime', got ${String(speed)}`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`replay timeoutMs must be a positive number, got ${String(timeoutMs)}`)
  const log = options.logger ?? silentLogger()
  const recording = await readRecording(path)
  const started = performance.now()
  const document = recording.header.document
  const storage = createMemoryStorage()
  const server = createServer({
    storage,
    auth: 'none',
    // the replay server says little: its auth-none warning is expected here
    logger: options.logger === undefined ? silentLogger() : log.child({ component: 'replay-server' }, { level: log.isLevelEnabled('warn') ? 'error' : log.level }),
    serverName: 'concord-replay',
    // limits that protect a live server from its clients would only refuse what the
    // recording server accepted (its refusals are in the recording and skipped)
    maxMessageBytes: Math.max(DEFAULTS.maxMessageBytes, largestPayload(recording) + 4096),
    rateLimitMessagesPerSecond: 1e9,
    rateLimitMessagesBurst: 1e9,
    rateLimitBytesPerSecond: 1e12,
    rateLimitBytesBurst: 1e12,
    maxDocumentBytes: Number.MAX_SAFE_INTEGER,
  })
  try {
    const { url } = await server.listen(0, '127.0.0.1')
    log.debug({ path, document, url, records: recording.records.length }, 'replaying')
    const run = await runRecords(recording, url, speed, timeoutMs)
    const actual = await documentState(server, storage, document)
    const durationMs = Math.round(performance.now() - started)
    const report: ReplayReport = {
      document, path,
      sessions: run.sessions, updatesSent: run.updatesSent, updatesSkippedRefused: run.updatesSkippedRefused,
      updatesRefusedByReplay: run.updatesRefusedByReplay, awareness: run.awareness,
      durationMs, truncated: recording.truncated,
      compared: false, matches: null, expectedStateVector: null, actualStateVector: {},
      warnings: run.warnings,
    }
    if (recording.end === null) {
      report.actualStateVector = stateVectorOf(actual)
    } else {
      const comparison = compareStates(recording.end.update, actual)
      report.compared = true
      report.matches = comparison.matches
      report.expectedStateVector = comparison.expected
      report.actualStateVector = comparison.actual
      if (comparison.difference !== undefined) report.difference = comparison.difference
    }
    log.debug({ path, document, matches: report.matches, durationMs }, 'replay done')
    return report
  } finally {
    await server.close()
  }
}

interface RunResult {
  sessions: number
  updatesSent: number
  updatesSkippedRefused: number
  updatesRefusedByReplay: number
  awareness: number
  warnings: string[]
}

interface InFlight {
  session: string
  /** Line of the record in the file, for messages. */
  line: number
  done: Promise<string | null>
}

async function runRecords(recording: Recording, url: string, speed: 'asap' | 'realtime', timeoutMs: number): Promise<RunResult> {
  const document = recording.header.document
  const warnings = new Warnings()
  const sockets = new Map<string, ReplaySocket>()
  const seen = new Set<string>()
  let updatesSent = 0
  let updatesSkippedRefused = 0
  let updatesRefusedByReplay = 0
  let awareness = 0
  let inFlight: InFlight[] = []

  const settle = async (): Promise<void> => {
    const waiting = inFlight
    inFlight = []
    for (const f of waiting) {
      const code = await withTimeout(f.done, timeoutMs, `an ACK for the update of session ${f.session} (line ${f.line})`)
      if (code !== null) {
        updatesRefusedByReplay++
        warnings.add('refused', `the replay server refused an update of session ${f.session} (line ${f.line}) with ${code}`)
      }
    }
  }
  const socketOf = async (session: string): Promise<ReplaySocket> => {
    let socket = sockets.get(session)
    if (socket === undefined) {
      warnings.add('implicit', `session ${session} sent before its open record (it was open when recording began?): opened at its first message`)
      socket = await openSession(session)
    }
    return socket
  }
  const openSession = async (session: string): Promise<ReplaySocket> => {
    const socket = await ReplaySocket.open(url, document, timeoutMs, `session ${session}`)
    sockets.set(session, socket)
    seen.add(session)
    all.push(socket)
    return socket
  }

  // the seeding session: the base state, then it stays open so the document stays loaded
  const seed = await ReplaySocket.open(url, document, timeoutMs, 'the seeding session')
  const all: ReplaySocket[] = [seed]
  // line numbers in the file, for messages: header, base, then the session records
  const firstLine = recording.base !== null ? 3 : 2
  try {
    if (recording.base !== null && !isEmptyUpdate(recording.base)) {
      const code = await withTimeout(seed.sendUpdate(recording.base), timeoutMs, 'an ACK for the base state')
      if (code !== null) warnings.add('base', `the replay server refused the base state with ${code}`)
    } else if (recording.base === null) {
      warnings.add('base', 'the recording has no base record: replayed onto an empty document')
    }
    const t0 = performance.now()
    const records = recording.records
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!
      if (speed === 'realtime') await sleepUntil(t0 + record.t)
      switch (record.type) {
        case 'open':
          if (sockets.has(record.session)) warnings.add('reopen', `session ${record.session} opened twice without a close record`)
          else await openSession(record.session)
          break
        case 'update': {
          if (record.refused !== undefined) {
            updatesSkippedRefused++
            break
          }
          const socket = await socketOf(record.session)
          // the replay server must apply it after every update recorded before it
          if (inFlight.some(f => f.session !== record.session)) await settle()
          const data = decodeBase64(record.data)!
          inFlight.push({ session: record.session, line: firstLine + i, done: socket.sendUpdate(data) })
          updatesSent++
          break
        }
        case 'awareness': {
          const socket = await socketOf(record.session)
          if (socket.sendAwareness(decodeBase64(record.data)!)) awareness++
          break
        }
        case 'close': {
          const socket = sockets.get(record.session)
          if (socket === undefined) break
          await settle()
          sockets.delete(record.session)
          await socket.close(timeoutMs)
          break
        }
        case 'refused':
          break // folded into its update by readRecording
      }
    }
    await settle()
    for (const s of all) {
      if (s.ended !== null && s !== seed && s.endedByServer) warnings.add('ended', `the replay server ended ${s.label}: ${s.ended}`)
    }
    if (seed.ended !== null) warnings.add('ended', `the replay server ended the seeding session: ${seed.ended}`)
  } catch (err) {
    for (const s of all) s.terminate()
    throw err
  }
  return { sessions: seen.size, updatesSent, updatesSkippedRefused, updatesRefusedByReplay, awareness, warnings: warnings.list() }
}

/** The replay server's document, as one update. */
async function documentState(server: ConcordServer, storage: StorageAdapter, document: string): Promise<Uint8Array> {
  const live = server.registry.peek(document)
  if (live !== null) return Y.encodeStateAsUpdate(live.ydoc)
  // unloaded (its sessions were ended): what storage holds
  const loaded = await storage.load(document)
  const doc = new Y.Doc({ gc: false })
  try {
    doc.transact(() => {
      if (loaded.snapshot !== null) Y.applyUpdate(doc, loaded.snapshot)
      for (const u of loaded.updates) Y.applyUpdate(doc, u.update)
    })
    return Y.encodeStateAsUpdate(doc)
  } finally {
    doc.destroy()
  }
}

/** A few lines for the CLI. */
export function formatReplayReport(report: ReplayReport): string {
  const lines: string[] = []
  const skipped = report.updatesSkippedRefused > 0 ? `, ${report.updatesSkippedRefused} skipped (refused when recorded)` : ''
  const refused = report.updatesRefusedByReplay > 0 ? `, ${report.updatesRefusedByReplay} refused by the replay server` : ''
  lines.push(`Replayed ${JSON.stringify(report.document)} from ${report.path}: ${plural(report.sessions, 'session')}, ` +
    `${plural(report.updatesSent, 'update')} sent${skipped}${refused}, ${plural(report.awareness, 'awareness update')}, ${report.durationMs} ms`)
  if (!report.compared) {
    lines.push('Result: NOT COMPARED: the recording has no end record (the server stopped before ending it)')
  } else if (report.matches === true) {
    lines.push(`Result: MATCH: the replayed document equals the recorded end state (${plural(Object.keys(report.actualStateVector).length, 'client')})`)
  } else {
    lines.push(`Result: MISMATCH: ${report.difference ?? 'the states differ'}`)
  }
  if (report.truncated) lines.push('Note: the last line of the recording was cut off (a crash mid-write) and was ignored')
  for (const w of report.warnings) lines.push(`Warning: ${w}`)
  return lines.join('\n')
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** Warnings by kind, each kind listed up to MAX_LISTED times and then counted. */
class Warnings {
  readonly #byKind = new Map<string, { listed: string[]; more: number }>()

  add(kind: string, message: string): void {
    let k = this.#byKind.get(kind)
    if (k === undefined) {
      k = { listed: [], more: 0 }
      this.#byKind.set(kind, k)
    }
    if (k.listed.length < MAX_LISTED) k.listed.push(message)
    else k.more++
  }

  list(): string[] {
    const out: string[] = []
    for (const k of this.#byKind.values()) {
      out.push(...k.listed)
      if (k.more > 0) out.push(`(and ${k.more} more like the last)`)
    }
    return out
  }
}

/** The largest payload a frame of the recording carries, in bytes (from the base64 lengths). */
function largestPayload(recording: Recording): number {
  let max = recording.base?.length ?? 0
  for (const r of recording.records) {
    if (r.type === 'update' || r.type === 'awareness') max = Math.max(max, Math.ceil(r.data.length / 4) * 3)
  }
  return max
}

/** The encoding of an empty document: no structs, no deletions. */
function isEmptyUpdate(update: Uint8Array): boolean {
  return update.length === 0 || (update.length === 2 && update[0] === 0 && update[1] === 0)
}

function sleepUntil(at: number): Promise<void> {
  const ms = at - performance.now()
  return ms > 0 ? new Promise(resolve => setTimeout(resolve, ms)) : Promise.resolve()
}

