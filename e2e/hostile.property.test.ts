import { describe, it, expect } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from 'y-protocols/awareness'
import { FRAME_KINDS } from '@concord/protocol'
import { mintToken } from '@concord/server'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import type { ConcordClient, DocHandle } from '@concord/client'
import { connectClient, RawNativeSocket, startServer, waitFor, seededRandom } from './helpers.js'
import { faultyWebSocket } from './faulty-websocket.js'

/**
 * ARCHITECTURE.md section 3, "any token holder may be an attacker", as a seeded property: honest
 * writers (each its own user) edit, reconnect and lose sockets while one write-capable attacker
 * forges their client ids, refers to their future clocks, deletes what does not exist yet, repeats
 * and reorders updates and sends giant presence. Whatever it does: every update acked to an honest
 * writer is in the stored state and in every honest replica, the honest replicas and the server
 * converge, nobody honest is refused or reset, and a fresh load equals the live state.
 */

const SECRET = 'hostile-property-secret-0123456789-abcdefghijklmnop'
const DOC = 'acme/prop'
const HONEST = 3

type Action =
  | { op: 'insert'; client: number; pos: number; text: string }
  | { op: 'delete'; client: number; pos: number; len: number }
  | { op: 'map'; client: number; key: string; value: number }
  | { op: 'reconnect'; client: number }
  | { op: 'cut'; client: number }
  | { op: 'sleep'; ms: number }
  | { op: 'forge'; victim: number; pos: number; text: string }
  | { op: 'future'; victim: number; ahead: number }
  | { op: 'deleteUnknown'; victim: number; ahead: number }
  | { op: 'duplicate'; pick: number }
  | { op: 'reorder'; text: string }
  | { op: 'attackerEdit'; pos: number; len: number; text: string }
  | { op: 'giantPresence'; kib: number }
  | { op: 'forgePresence'; victim: number }

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('insert' as const), client: fc.nat(HONEST - 1), pos: fc.nat(200), text: fc.string({ minLength: 1, maxLength: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), client: fc.nat(HONEST - 1), pos: fc.nat(200), len: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('map' as const), client: fc.nat(HONEST - 1), key: fc.constantFrom('a', 'b'), value: fc.integer() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reconnect' as const), client: fc.nat(HONEST - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cut' as const), client: fc.nat(HONEST - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('sleep' as const), ms: fc.integer({ min: 0, max: 20 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('forge' as const), victim: fc.nat(HONEST - 1), pos: fc.nat(200), text: fc.string({ minLength: 1, maxLength: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('future' as const), victim: fc.nat(HONEST - 1), ahead: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deleteUnknown' as const), victim: fc.nat(HONEST - 1), ahead: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('duplicate' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reorder' as const), text: fc.string({ minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('attackerEdit' as const), pos: fc.nat(200), len: fc.nat(3), text: fc.string({ maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('giantPresence' as const), kib: fc.integer({ min: 65, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('forgePresence' as const), victim: fc.nat(HONEST - 1) }) },
)

function contentOf(doc: Y.Doc): string {
  const map = doc.getMap('m').toJSON()
  return JSON.stringify({ text: doc.getText('t').toString(), map: Object.fromEntries(Object.entries(map).sort(([a], [b]) => a.localeCompare(b))) })
}

async function token(user: string): Promise<string> {
  return (await mintToken({ secret: SECRET, tenant: 'acme', userId: user, docs: { 'acme/*': 'write' } })).token
}

describe('hostile writer (property)', () => {
  it('no attacker with a write token loses, forges or stalls an honest writer\'s acked edits; a fresh load equals the live state', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31)
    console.log(`hostile property seed=${seed} (re-run with SEED=${seed})`)
    await fc.assert(fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 50 }), fc.nat(), async (actions, faultSeed) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'concord-hostile-prop-'))
      const running = await startServer({ auth: { secret: SECRET }, storage: createSqliteStorage({ dataDir }), compactEveryUpdates: 9 })
      const WS = faultyWebSocket({ maxDelayMs: 6, duplicate: 0.2, random: seededRandom(faultSeed) })
      const clients: ConcordClient[] = []
      const handles: DocHandle[] = []
      const honestErrors: string[] = []
      let attacker: RawNativeSocket | null = null
      try {
        for (let i = 0; i < HONEST; i++) {
          const c = connectClient(running.url, { WebSocket: WS, reconnect: { minDelayMs: 5, maxDelayMs: 40 }, getToken: () => token(`honest-${i}`) })
          clients.push(c)
          handles.push(c.open(DOC))
          handles[i]!.on('error', e => honestErrors.push(`${i}: ${e.code} ${e.message}`))
          handles[i]!.presence.set({ user: { name: `honest ${i}` }, cursor: i })
        }
        await Promise.all(handles.map(h => h.whenSynced()))
        attacker = await RawNativeSocket.connect(running.url)
        attacker.sendFrame({ kind: FRAME_KINDS.OPEN, document: DOC, token: await token('mallory'), stateVector: new Uint8Array() })
        await attacker.next(FRAME_KINDS.SYNC_STEP2, DOC)
        // the attacker's view of the document: everything the server sent it
        const view = (): Y.Doc => {
          const d = new Y.Doc()
          for (const f of attacker!.frames) {
            if (f.kind === FRAME_KINDS.SYNC_STEP2 || f.kind === FRAME_KINDS.UPDATE) Y.applyUpdate(d, f.update)
          }
          return d
        }
        const own = new Y.Doc()
        // client ids the attacker has seen on the wire (in updates and presence): its victims
        const wireIds = (): number[] => {
          const ids = new Set<number>()
          for (const f of attacker!.frames) {
            if (f.kind === FRAME_KINDS.SYNC_STEP2 || f.kind === FRAME_KINDS.UPDATE) for (const c of Y.parseUpdateMeta(f.update).to.keys()) ids.add(c)
            if (f.kind === FRAME_KINDS.AWARENESS) {
              const aw = new Awareness(new Y.Doc())
              applyAwarenessUpdate(aw, f.update, 'wire')
              for (const c of aw.meta.keys()) ids.add(c)
              aw.destroy()
            }
          }
          ids.delete(own.clientID)
          return [...ids].sort((x, y) => x - y)
        }
        const victimId = (n: number): number | null => {
          const ids = wireIds()
          return ids.length === 0 ? null : ids[n % ids.length]!
        }
        let seq = 1
        const send = (update: Uint8Array): void => { attacker!.sendFrame({ kind: FRAME_KINDS.UPDATE, document: DOC, seq: seq++, update }) }
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
            case 'forge': {
              // items under the victim's client id at the clocks it will use next
              const id = victimId(a.victim)
              if (id === null) break
              const d = view()
              d.clientID = id
              const sv = Y.encodeStateVector(d)
              const t = d.getText('t')
              t.insert(Math.min(a.pos, t.length), a.text)
              send(Y.encodeStateAsUpdate(d, sv))
              break
            }
            case 'future': {
              // an item of the attacker's own that refers to the victim's future clocks
              const id = victimId(a.victim)
              if (id === null) break
              const d = view()
              const victim = new Y.Doc()
              Y.applyUpdate(victim, Y.encodeStateAsUpdate(d))
              victim.clientID = id
              victim.getText('t').insert(victim.getText('t').length, 'Z'.repeat(a.ahead))
              Y.applyUpdate(own, Y.encodeStateAsUpdate(victim))
              const sv = Y.encodeStateVector(own)
              own.getText('t').insert(own.getText('t').length, '!')
              send(Y.encodeStateAsUpdate(own, sv))
              break
            }
            case 'deleteUnknown': {
              // a delete set reaching past the victim's state (no items)
              const id = victimId(a.victim)
              if (id === null) break
              const d = view()
              d.clientID = id
              d.getText('t').insert(0, 'x'.repeat(a.ahead))
              const sv = Y.encodeStateVector(d)
              d.getText('t').delete(0, a.ahead)
              send(Y.encodeStateAsUpdate(d, sv))
              break
            }
            case 'duplicate': {
              const seen = attacker.frames.filter(f => f.kind === FRAME_KINDS.UPDATE || f.kind === FRAME_KINDS.SYNC_STEP2) as { update: Uint8Array }[]
              if (seen.length > 0) send(seen[a.pick % seen.length]!.update)
              break
            }
            case 'reorder': {
              Y.applyUpdate(own, Y.encodeStateAsUpdate(view()))
              const updates: Uint8Array[] = []
              const grab = (u: Uint8Array): void => { updates.push(u) }
              own.on('update', grab)
              own.getText('t').insert(0, a.text)
              own.getText('t').insert(0, a.text)
              own.off('update', grab)
              for (const u of updates.reverse()) send(u)
              break
            }
            case 'attackerEdit': {
              Y.applyUpdate(own, Y.encodeStateAsUpdate(view()))
              const before = Y.encodeStateVector(own)
              const t = own.getText('t')
              const pos = Math.min(a.pos, t.length)
              const len = Math.min(a.len, t.length - pos)
              if (len > 0) t.delete(pos, len)
              if (a.text.length > 0) t.insert(pos, a.text)
              send(Y.encodeStateAsUpdate(own, before))
              break
            }
            case 'giantPresence': {
              const d = new Y.Doc()
              const aw = new Awareness(d)
              aw.setLocalState({ junk: 'x'.repeat(a.kib * 1024) })
              attacker.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: encodeAwarenessUpdate(aw, [d.clientID]) })
              aw.destroy()
              break
            }
            case 'forgePresence': {
              const id = victimId(a.victim)
              if (id === null) break
              const d = new Y.Doc()
              d.clientID = id
              const aw = new Awareness(d)
              for (let i = 0; i < 50; i++) aw.setLocalState({ forged: i })
              aw.setLocalState(null)
              attacker.sendFrame({ kind: FRAME_KINDS.AWARENESS, document: DOC, update: encodeAwarenessUpdate(aw, [id]) })
              aw.destroy()
              break
            }
          }
        }
        // every update the attacker sent is answered (acked or refused) before the replicas are compared
        const answered = (n: number): boolean => attacker!.frames.some(f => (f.kind === FRAME_KINDS.ACK && f.ranges.some(r => r.from <= n && n <= r.to)) ||
          (f.kind === FRAME_KINDS.ERROR && f.seq === n))
        await waitFor(() => { for (let n = 1; n < seq; n++) if (!answered(n)) return false; return true }, { timeoutMs: 20_000, message: 'the attacker\'s updates answered' })
        // (the attacker's accepted edits reach the honest replicas too: equal to the server's copy)
        await waitFor(() => handles.every(h => h.synced && h.pendingCount === 0) &&
          new Set([...handles.map(h => contentOf(h.doc)), contentOf(running.server.registry.peek(DOC)!.ydoc)]).size === 1,
          { timeoutMs: 20_000, message: () => `honest clients synced, saved and equal (${handles.map(h => `${h.status}/${h.pendingCount}`).join(' ')}; errors ${honestErrors.slice(0, 5).join(' | ')})` })
        // nothing honest was refused or reset
        expect(honestErrors.filter(e => /UPDATE_|DOC_RESET|LIMIT/.test(e))).toEqual([])
        const live = running.server.registry.peek(DOC)!
        const refusals = attacker.frames.filter(f => f.kind === FRAME_KINDS.ERROR).map(f => `${(f as { seq: number }).seq}:${(f as { code: string }).code}`)
        expect(contentOf(live.ydoc), `the server equals the honest replicas (attacker's refusals: ${refusals.join(' ')})`).toBe(contentOf(handles[0]!.doc))
        const liveState = Y.decodeStateVector(Y.encodeStateVector(live.ydoc))
        const expected = contentOf(handles[0]!.doc)
        const honestWrote = handles.map(h => [h.doc.clientID, Y.getState(h.doc.store, h.doc.clientID)] as const)
        await live.whenFlushed()
        attacker.close()
        for (const c of clients) c.close()
        await running.close()
        const store = createSqliteStorage({ dataDir })
        const loaded = await store.load(DOC)
        await store.close()
        const fresh = new Y.Doc()
        if (loaded.snapshot) Y.applyUpdate(fresh, loaded.snapshot)
        for (const u of loaded.updates) Y.applyUpdate(fresh, u.update)
        // a fresh load equals the live state
        expect(contentOf(fresh)).toBe(expected)
        expect(Y.decodeStateVector(Y.encodeStateVector(fresh))).toEqual(liveState)
        // every honest writer's acked items are stored (nothing is pending, so everything was acked)
        const stored = Y.decodeStateVector(Y.encodeStateVector(fresh))
        for (const [client, wrote] of honestWrote) expect(stored.get(client) ?? 0).toBeGreaterThanOrEqual(wrote)
      } finally {
        attacker?.close()
        for (const c of clients) c.close()
        await running.close()
        rmSync(dataDir, { recursive: true, force: true })
      }
    }), { seed, numRuns: Number(process.env.NUM_RUNS ?? 15), verbose: true, endOnFailure: process.env.END_ON_FAILURE === '1' })
  }, 300_000)
})
