import { describe, it, expect } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import * as Y from 'yjs'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import type { ConcordClient, DocHandle } from '@concord/client'
import { connectClient, startServer, waitFor, seededRandom } from './helpers.js'
import { faultyWebSocket } from './faulty-websocket.js'

type Action =
  | { op: 'insert'; client: number; pos: number; text: string }
  | { op: 'delete'; client: number; pos: number; len: number }
  | { op: 'map'; client: number; key: string; value: number }
  | { op: 'reconnect'; client: number }
  | { op: 'cut'; client: number }
  | { op: 'sleep'; ms: number }

const CLIENTS = 4

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('insert' as const), client: fc.nat(CLIENTS - 1), pos: fc.nat(200), text: fc.string({ minLength: 1, maxLength: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), client: fc.nat(CLIENTS - 1), pos: fc.nat(200), len: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('map' as const), client: fc.nat(CLIENTS - 1), key: fc.constantFrom('a', 'b', 'c'), value: fc.integer() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reconnect' as const), client: fc.nat(CLIENTS - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cut' as const), client: fc.nat(CLIENTS - 1) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('sleep' as const), ms: fc.integer({ min: 0, max: 30 }) }) },
)


function contentOf(doc: Y.Doc): string {
  const map = doc.getMap('m').toJSON()
  // key order of a Y.Map's JSON follows insertion order on each replica; compare sorted
  return JSON.stringify({ text: doc.getText('t').toString(), map: Object.fromEntries(Object.entries(map).sort(([a], [b]) => a.localeCompare(b))) })
}

describe('convergence under faults (property)', () => {
  it('clients with random edits, delays, duplicates, disconnects and reconnects converge with each other, the server and the store', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31)
    console.log(`convergence property seed=${seed} (re-run with SEED=${seed})`)
    await fc.assert(fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 60 }), fc.nat(), async (actions, faultSeed) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'concord-prop-'))
      const running = await startServer({ storage: createSqliteStorage({ dataDir }), compactEveryUpdates: 7, ...(process.env.DEBUG_LOG ? { logger: (await import('@concord/server')).createLogger('debug') } : {}) })
      const WS = faultyWebSocket({ maxDelayMs: 8, duplicate: 0.2, random: seededRandom(faultSeed) })
      const clients: ConcordClient[] = []
      const handles: DocHandle[] = []
      const errors: string[] = []
      try {
        for (let i = 0; i < CLIENTS; i++) {
          const c = connectClient(running.url, { WebSocket: WS, reconnect: { minDelayMs: 5, maxDelayMs: 40 } })
          clients.push(c)
          c.on('error', e => errors.push(`client ${i}: ${e.code} ${e.message}`))
          handles.push(c.open('prop'))
          handles[i]!.on('error', e => errors.push(`doc ${i}: ${e.code} ${e.message}`))
        }
        for (const a of actions) {
          switch (a.op) {
            case 'insert': {
              const t = handles[a.client]!.doc.getText('t')
              t.insert(Math.min(a.pos, t.length), a.text)
              break
            }
            case 'delete': {
              const t = handles[a.client]!.doc.getText('t')
              const pos = Math.min(a.pos, t.length)
              const len = Math.min(a.len, t.length - pos)
              if (len > 0) t.delete(pos, len)
              break
            }
            case 'map':
              handles[a.client]!.doc.getMap('m').set(a.key, a.value)
              break
            case 'reconnect':
              clients[a.client]!.reconnect()
              break
            case 'cut': {
              const sockets = WS.sockets.filter(s => s.readyState === 1)
              sockets[a.client % Math.max(1, sockets.length)]?.cut()
              break
            }
            case 'sleep':
              // a pause drawn by the property (part of the random schedule), not synchronisation
              await new Promise(r => setTimeout(r, a.ms))
              break
          }
        }
        await waitFor(() => handles.every(h => h.synced && h.pendingCount === 0) &&
          new Set(handles.map(h => contentOf(h.doc))).size === 1, { timeoutMs: 20_000, message: () => `all clients synced, saved and equal (${handles.map(h => `${h.status}/${h.pendingCount}/${contentOf(h.doc).length}`).join(' ')}; client status ${clients.map(c => c.status).join(' ')}; sockets ${WS.sockets.map(s => s.readyState).join("")}; contents ${handles.map(h => contentOf(h.doc)).join(" , ")}; errors ${errors.slice(0, 5).join(' | ')})` })
        const expected = contentOf(handles[0]!.doc)
        const live = running.server.registry.peek('prop')
        expect(live).not.toBeNull()
        expect(contentOf(live!.ydoc)).toBe(expected)
        for (const c of clients) c.close()
        await running.close()
        // the store, read back the way a load does
        const store = createSqliteStorage({ dataDir })
        const loaded = await store.load('prop')
        await store.close()
        const fromStore = new Y.Doc()
        if (loaded.snapshot) Y.applyUpdate(fromStore, loaded.snapshot)
        for (const u of loaded.updates) Y.applyUpdate(fromStore, u.update)
        expect(contentOf(fromStore)).toBe(expected)
      } finally {
        for (const c of clients) c.close()
        await running.close()
        rmSync(dataDir, { recursive: true, force: true })
      }
    }), { seed, numRuns: Number(process.env.NUM_RUNS ?? 40), verbose: true, endOnFailure: process.env.END_ON_FAILURE === '1' })
  }, 240_000)
})
