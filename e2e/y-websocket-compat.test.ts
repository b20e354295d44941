import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { startServer, waitFor, type RunningServer } from './helpers.js'

let running: RunningServer | null = null
const providers: WebsocketProvider[] = []

afterEach(async () => {
  for (const p of providers.splice(0)) p.destroy()
  await running?.close()
  running = null
})

function provider(url: string, room: string): WebsocketProvider {
  const doc = new Y.Doc()
  const p = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })
  providers.push(p)
  return p
}

describe('stock y-websocket providers', () => {
  it('connect, edit concurrently, converge, and see each other\'s awareness until one leaves', async () => {
    running = await startServer({ presenceThrottleMs: 20 })
    const a = provider(running.url, 'room/with space')
    const b = provider(running.url, 'room/with space')
    await waitFor(() => a.synced && b.synced, { message: 'both providers synced' })

    // concurrent edits: neither has seen the other's before both are made
    const ta = a.doc.getText('t')
    const tb = b.doc.getText('t')
    ta.insert(0, 'alpha ')
    tb.insert(0, 'beta ')
    a.doc.getMap('m').set('who', 'a')
    b.doc.getArray<number>('list').push([1, 2, 3])
    await waitFor(() => ta.toString() === tb.toString() && ta.length === 11, { message: 'texts converge' })
    expect(ta.toString()).toMatch(/^(alpha beta |beta alpha )$/)
    expect(b.doc.getMap('m').get('who')).toBe('a')
    expect(a.doc.getArray('list').toArray()).toEqual([1, 2, 3])

    // the server's own copy agrees
    const live = running.server.registry.peek('room/with space')
    expect(live?.ydoc.getText('t').toString()).toBe(ta.toString())

    // awareness both ways
    a.awareness.setLocalStateField('user', { name: 'Ada' })
    b.awareness.setLocalStateField('user', { name: 'Bob' })
    await waitFor(() => (b.awareness.getStates().get(a.awareness.clientID) as { user?: { name: string } } | undefined)?.user?.name === 'Ada',
      { message: 'b sees a\'s awareness' })
    await waitFor(() => (a.awareness.getStates().get(b.awareness.clientID) as { user?: { name: string } } | undefined)?.user?.name === 'Bob',
      { message: 'a sees b\'s awareness' })

    // a's socket dies without a goodbye: the server removes its presence for b
    const aId = a.awareness.clientID
    a.shouldConnect = false
    ;(a.ws as unknown as WebSocket).terminate()
    await waitFor(() => !b.awareness.getStates().has(aId), { message: 'a\'s awareness removed at b' })
    expect(running.server.registry.peek('room/with space')?.presence.awareness.getStates().has(aId)).toBe(false)
  })

  it('a late joiner receives the whole document and current presence', async () => {
    running = await startServer()
    const a = provider(running.url, 'late')
    await waitFor(() => a.synced)
    a.doc.getText('t').insert(0, 'x'.repeat(10_000))
    a.awareness.setLocalStateField('cursor', 42)
    await waitFor(() => running!.server.registry.peek('late')?.ydoc.getText('t').length === 10_000)
    await waitFor(() => running!.server.registry.peek('late')?.presence.awareness.getStates().has(a.awareness.clientID))
    const b = provider(running.url, 'late')
    await waitFor(() => b.synced && b.doc.getText('t').length === 10_000, { message: 'late joiner has the text' })
    await waitFor(() => b.awareness.getStates().has(a.awareness.clientID), { message: 'late joiner sees presence' })
  })
})
