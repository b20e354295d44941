import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import type { ConcordClient, DocHandle } from '@concord/client'
import { connectClient, startServer, waitFor, cleanupAfterEach, seededRandom } from './helpers.js'
import { FaultProxy } from './fault-proxy.js'

const live = cleanupAfterEach()


describe('clients behind a faulty network', () => {
  it('5 clients edit 3 documents through a proxy that delays and cuts connections; all converge and no edit is missing', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31)
    console.log(`fault-proxy seed=${seed} (re-run with SEED=${seed})`)
    const random = seededRandom(seed)
    live.server = await startServer()
    const proxy = new FaultProxy({ targetPort: live.server.port, random, maxDelayMs: 15, cutChance: 0.004 })
    const proxyPort = await proxy.listen()
    const names = ['doc-a', 'doc-b', 'doc-c']
    const clients: ConcordClient[] = []
    const handles: DocHandle[][] = []
    let disconnects = 0
    try {
      for (let c = 0; c < 5; c++) {
        const client = connectClient(`ws://127.0.0.1:${proxyPort}`, { reconnect: { minDelayMs: 10, maxDelayMs: 200 } })
        client.on('status', s => { if (s === 'disconnected') disconnects++ })
        clients.push(client)
        live.clients.push(client)
        handles.push(names.map(n => client.open(n)))
      }
      // every client appends items tagged with its id to each document, in bounded rounds
      const expected = new Set<string>()
      const deadline = Date.now() + 8_000
      for (let round = 0; round < 60 && Date.now() < deadline; round++) {
        for (let c = 0; c < 5; c++) {
          const d = Math.floor(random() * 3)
          const item = `c${c}-r${round}`
          handles[c]![d]!.doc.getArray<string>('items').push([item])
          handles[c]![d]!.doc.getText('t').insert(0, `${c}`)
          expected.add(`${names[d]}:${item}`)
        }
        // seeded pacing between rounds, so cuts land between edits; not synchronisation
        await new Promise(r => setTimeout(r, 5 + Math.floor(random() * 20)))
        if (round % 20 === 19) proxy.cutAll()
      }
      const flat = handles.flat()
      await waitFor(() => flat.every(h => h.synced && h.pendingCount === 0), {
        timeoutMs: 30_000, message: () => `all handles synced and saved (${flat.map(h => `${h.status}/${h.pendingCount}`).join(' ')})`,
      })
      for (let d = 0; d < 3; d++) {
        const server = live.server.server.registry.peek(names[d]!)!
        const serverState = Y.encodeStateVector(server.ydoc)
        await waitFor(() => handles.every(hs => Buffer.from(Y.encodeStateVector(hs[d]!.doc)).equals(Buffer.from(serverState)) &&
          hs[d]!.doc.getText('t').toString() === server.ydoc.getText('t').toString()), { timeoutMs: 15_000, message: `${names[d]} converged` })
        const items = server.ydoc.getArray<string>('items').toArray()
        for (const hs of handles) expect(hs[d]!.doc.getArray<string>('items').toArray()).toEqual(items)
        const want = [...expected].filter(e => e.startsWith(`${names[d]}:`)).map(e => e.slice(names[d]!.length + 1)).sort()
        expect([...items].sort()).toEqual(want)
      }
      console.log(`fault-proxy: ${expected.size} edits, ${proxy.cuts} random cuts plus 3 cuts of every connection, ${disconnects} reconnects`)
      // the faults really happened: every client lost its socket at least at each cut of all connections
      expect(disconnects).toBeGreaterThanOrEqual(15)
    } finally {
      for (const c of clients) c.close()
      await proxy.close()
    }
  }, 90_000)
})
