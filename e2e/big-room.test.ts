import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ConcordClient, DocHandle } from '@concord/client'
import { connectClient, waitFor } from './helpers.js'
import { spawnServer, type ServerProcess } from './server-process.js'

// 350 editors in one document (the size the issue names), on a real server process with SQLite:
// everyone's edit reaches everyone and the server, and everyone ends up showing everyone else's
// last cursor. Latencies are printed, not asserted (a shared 2-core machine); bench scenario
// `bigroom` measures them against the peers (docs/benchmarks.md).

const EDITORS = 350
const DOC = 'big-room'

let server: ServerProcess | null = null
const clients: ConcordClient[] = []
const dirs: string[] = []

afterAll(async () => {
  for (const c of clients.splice(0)) c.close()
  if (server !== null) {
    server.child.kill('SIGTERM')
    await server.exited
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const pct = (sorted: number[], p: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]!

describe(`a room of ${EDITORS} editors`, () => {
  it('every edit reaches every editor and the store, and every editor shows everyone\'s last cursor', { timeout: 240_000 }, async () => {
    const data = mkdtempSync(join(tmpdir(), 'concord-big-room-'))
    dirs.push(data)
    server = await spawnServer(['--data', data, '--port', '0', '--max-connections-per-ip', '10000'])
    const started = performance.now()
    const handles: DocHandle[] = []
    for (let i = 0; i < EDITORS; i++) {
      const client = connectClient(server.url)
      clients.push(client)
      handles.push(client.open(DOC))
      // connect in batches, as a room fills up
      if (i % 50 === 49) await waitFor(() => handles.every(h => h.synced), { timeoutMs: 60_000, message: () => `${handles.filter(h => h.synced).length} of ${handles.length} editors synced` })
    }
    await waitFor(() => handles.every(h => h.synced), { timeoutMs: 60_000, message: () => `${handles.filter(h => h.synced).length} of ${EDITORS} editors synced` })
    console.log(`big room: ${EDITORS} editors connected and synced in ${((performance.now() - started) / 1000).toFixed(1)} s`)

    // when each editor first showed each entry (sampled at a few editors) and everyone's last cursor
    const sentAt = new Map<string, number>()
    const editLatencies: number[] = []
    for (const h of handles.slice(0, 5)) {
      const seen = new Set<string>()
      h.doc.getText('t').observe(() => {
        const now = performance.now()
        for (const entry of h.doc.getText('t').toString().split(';')) {
          if (entry === '' || seen.has(entry)) continue
          seen.add(entry)
          const at = sentAt.get(entry)
          if (at !== undefined) editLatencies.push(now - at)
        }
      })
    }
    const cursorSentAt: number[] = []
    const presenceLatencies: number[] = []
    const finalSeen = handles.map(() => new Set<number>())
    handles.forEach((h, i) => {
      h.awareness.on('change', () => {
        const now = performance.now()
        for (const [id, state] of h.awareness.getStates()) {
          const cursor = (state as { cursor?: { editor: number; step: number } }).cursor
          if (id === h.doc.clientID || cursor?.step !== 1 || finalSeen[i]!.has(cursor.editor)) continue
          finalSeen[i]!.add(cursor.editor)
          presenceLatencies.push(now - cursorSentAt[cursor.editor]!)
        }
      })
    })

    // everyone shows a cursor, types one entry, and moves the cursor
    const editStart = performance.now()
    handles.forEach((h, i) => {
      h.awareness.setLocalStateField('user', { name: `editor ${i}` })
      h.awareness.setLocalStateField('cursor', { editor: i, step: 0 })
    })
    handles.forEach((h, i) => {
      const entry = `e${i}`
      sentAt.set(entry, performance.now())
      h.doc.getText('t').insert(0, `${entry};`)
    })
    handles.forEach((h, i) => {
      cursorSentAt[i] = performance.now()
      h.awareness.setLocalStateField('cursor', { editor: i, step: 1 })
    })

    const entriesOf = (h: DocHandle): number => h.doc.getText('t').toString().split(';').filter(e => e !== '').length
    await waitFor(() => handles.every(h => entriesOf(h) === EDITORS), {
      timeoutMs: 120_000, message: () => `every editor to have all ${EDITORS} entries (${handles.filter(h => entriesOf(h) === EDITORS).length} have)`,
    })
    const convergedMs = performance.now() - editStart
    const text = handles[0]!.doc.getText('t').toString()
    for (const h of handles) expect(h.doc.getText('t').toString()).toBe(text)
    await waitFor(() => finalSeen.every(s => s.size === EDITORS - 1), {
      timeoutMs: 120_000, message: () => `every editor to show everyone's last cursor (${finalSeen.filter(s => s.size === EDITORS - 1).length} of ${EDITORS} do)`,
    })
    // and each sees the others' last state, not an earlier one
    for (const h of handles) {
      const steps = [...h.awareness.getStates()].filter(([id]) => id !== h.doc.clientID).map(([, s]) => (s as { cursor?: { step: number } }).cursor?.step)
      expect(steps.filter(s => s === 1)).toHaveLength(EDITORS - 1)
    }
    // durable: every editor's edit was acked, and a newcomer loads all of it from the server
    await waitFor(() => handles.every(h => h.saved), { timeoutMs: 60_000, message: () => `${handles.filter(h => !h.saved).length} editors still unsaved` })
    const late = connectClient(server.url)
    clients.push(late)
    const lateHandle = late.open(DOC)
    await lateHandle.whenSynced()
    expect(entriesOf(lateHandle)).toBe(EDITORS)

    editLatencies.sort((a, b) => a - b)
    presenceLatencies.sort((a, b) => a - b)
    console.log(`big room: all ${EDITORS} entries at all ${EDITORS} editors ${convergedMs.toFixed(0)} ms after the first was typed; ` +
      `edit latency at 5 editors p50 ${pct(editLatencies, 50).toFixed(1)} / p99 ${pct(editLatencies, 99).toFixed(1)} ms (${editLatencies.length} samples); ` +
      `last-cursor latency p50 ${pct(presenceLatencies, 50).toFixed(1)} / p95 ${pct(presenceLatencies, 95).toFixed(1)} ms (${presenceLatencies.length} samples); ` +
      'every editor typed and moved at the same moment, in one process with the other editors')
  })
})
