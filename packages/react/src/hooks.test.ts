// The hooks in a real React DOM renderer (on happy-dom's document) against a real in-process
// server, in Node. e2e/react.test.ts runs a React app with them in Chromium.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Window } from 'happy-dom'
import { createElement as h, StrictMode, type ReactNode } from 'react'
import type { Root } from 'react-dom/client'
import * as Y from 'yjs'
import { createServer, type ConcordServer } from '@concord/server'
import { createClient, type ConcordClient, type DocHandle } from '@concord/client/node'
import { ConcordProvider, useArray, useClient, useDocument, useMap, usePresence, useShared, useStateless, useStatus, useText, useTyping, useVersions } from './index.js'
import { listenerCounts, trackHandleListeners } from './testing.js'

let createRoot: (typeof import('react-dom/client'))['createRoot']
let flushSync: (typeof import('react-dom'))['flushSync']
let win: Window
let server: ConcordServer
let url: string
const clients: ConcordClient[] = []
const roots: Root[] = []

beforeAll(async () => {
  // react-dom decides at import whether it has a DOM: the globals first, then the import
  win = new Window()
  // (Node 20 has no global navigator; a newer Node's is kept)
  Object.assign(globalThis, { window: win, document: win.document, ...(typeof navigator === 'undefined' ? { navigator: win.navigator } : {}) })
  ;({ createRoot } = await import('react-dom/client'))
  ;({ flushSync } = await import('react-dom'))
  trackHandleListeners()
  server = createServer({ auth: 'none' })
  url = (await server.listen(0, '127.0.0.1')).url
})

afterAll(async () => {
  await server?.close()
  await win.happyDOM.close()
})

afterEach(() => {
  for (const r of roots.splice(0)) r.unmount()
  for (const c of clients.splice(0)) c.close()
})

function client(): ConcordClient {
  const c = createClient({ url, reconnect: { minDelayMs: 20, maxDelayMs: 300 } })
  clients.push(c)
  return c
}

function render(node: ReactNode): { root: Root; container: HTMLElement } {
  const container = win.document.createElement('div') as unknown as HTMLElement
  const root = createRoot(container)
  roots.push(root)
  flushSync(() => root.render(node))
  return { root, container }
}

function unmount(root: Root): void {
  roots.splice(roots.indexOf(root), 1)
  root.unmount()
}

async function waitFor<T>(check: () => T, message: string | (() => string), timeoutMs = 10_000): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = check()
    if (v !== false && v !== null && v !== undefined) return v as Exclude<T, false | null | undefined>
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof message === 'function' ? message() : message}`)
    await new Promise(r => setTimeout(r, 10))
  }
}

const TYPES = { text: ['t', 'other'], map: ['m'], array: ['a'] }

describe('@concord/react hooks', () => {
  it('useText, useMap and useArray show the values, follow remote and deep changes, and re-render only for their own types', async () => {
    const bob = client().open('values')
    const seen: { text: string; map: Record<string, unknown>; array: unknown[]; renders: number } = { text: '', map: {}, array: [], renders: 0 }
    const mapsSeen = new Set<unknown>()
    function Values(): ReactNode {
      const doc = useDocument('values')
      seen.text = useText(doc, 't')
      seen.map = useMap(doc, 'm')
      seen.array = useArray(doc, 'a')
      mapsSeen.add(seen.map)
      seen.renders++
      return h('p', null, seen.text)
    }
    const { container } = render(h(ConcordProvider, { client: client() }, h(Values)))
    bob.doc.transact(() => {
      bob.doc.getText('t').insert(0, 'hello')
      const nested = new Y.Map<number>()
      bob.doc.getMap('m').set('nested', nested)
      nested.set('x', 1)
      bob.doc.getArray('a').push(['one'])
    })
    await waitFor(() => container.textContent === 'hello' && seen.array.length === 1 && (seen.map.nested as { x?: number })?.x === 1, () => `the values (${JSON.stringify(seen)})`)
    expect(seen).toMatchObject({ text: 'hello', map: { nested: { x: 1 } }, array: ['one'] })

    // a change deep inside the map: a new map value
    ;(bob.doc.getMap('m').get('nested') as Y.Map<number>).set('x', 2)
    await waitFor(() => (seen.map.nested as { x?: number }).x === 2, 'the nested change')

    // a change of another type re-renders nothing here, and the map keeps its identity
    const renders = seen.renders
    const maps = mapsSeen.size
    const alice = clients[1].documents[0]
    bob.doc.getText('other').insert(0, 'elsewhere')
    await waitFor(() => alice.doc.getText('other').toString() === 'elsewhere', 'the other text to arrive')
    await new Promise(r => setTimeout(r, 50)) // a render it might have caused would have happened by now (not a timing assertion)
    expect(seen.renders).toBe(renders)
    expect(mapsSeen.size).toBe(maps)
  })

  it('useShared: a computed value, stable while unchanged (no render loop with an inline selector)', async () => {
    const bob = client().open('shared')
    let renders = 0
    let value: { count: number } | undefined
    function Count(): ReactNode {
      const doc = useDocument('shared')
      value = useShared(doc, d => ({ count: d.getArray('todos').length }), (a, b) => a.count === b.count)
      renders++
      return h('span', null, String(value?.count))
    }
    const { container } = render(h(ConcordProvider, { client: client() }, h(Count)))
    bob.doc.getArray('todos').push([1, 2, 3])
    await waitFor(() => container.textContent === '3', () => `count 3 (shows ${container.textContent})`)
    const first = value
    const after = renders
    await new Promise(r => setTimeout(r, 50))
    expect(renders).toBe(after) // no loop
    bob.doc.getArray('todos').delete(0, 1)
    await waitFor(() => container.textContent === '2', 'count 2')
    expect(value).not.toBe(first)
  })

  it('useStatus goes unsaved → saved around a local edit, and reports synced and loaded', async () => {
    const history: string[] = []
    let doc: DocHandle | null = null
    function Status(): ReactNode {
      doc = useDocument('status')
      const s = useStatus(doc)
      const line = `${s.status} saved=${s.saved} synced=${s.synced} loaded=${s.loaded} offline=${s.offline} replicated=${s.replicated}`
      if (history[history.length - 1] !== line) history.push(line)
      return h('span', null, s.saved ? 'saved' : 'saving')
    }
    const { container } = render(h(ConcordProvider, { client: client() }, h(Status)))
    await waitFor(() => history.at(-1)?.startsWith('synced saved=true synced=true loaded=true'), () => `synced (${history.join(' | ')})`)
    doc!.doc.getText('t').insert(0, 'x')
    const before = history.length
    // what was rendered since the edit: saving, then saved
    await waitFor(() => history.length >= before + 2 && container.textContent === 'saved', () => `saving, then saved (${history.join(' | ')})`)
    expect(history.slice(-2)).toEqual([
      'synced saved=false synced=true loaded=true offline=false replicated=null',
      'synced saved=true synced=true loaded=true offline=false replicated=null',
    ])
  })

  it('usePresence and useTyping show the others and set one\'s own', async () => {
    const bob = client().open('presence')
    let others: { clientId: number; state: Record<string, unknown> }[] = []
    let typers = 0
    let setMine: ((s: Record<string, unknown>) => void) | null = null
    let typing: (() => void) | null = null
    function People(): ReactNode {
      const doc = useDocument('presence')
      ;[others, setMine] = usePresence(doc)
      const [typingPeers, markTyping] = useTyping(doc)
      typers = typingPeers.length
      typing = markTyping
      return h('ul', null, others.map(p => h('li', { key: p.clientId }, (p.state.user as { name: string }).name)))
    }
    const { container } = render(h(ConcordProvider, { client: client() }, h(People)))
    await bob.whenSynced()
    bob.presence.set({ user: { name: 'Bob' } })
    await waitFor(() => container.textContent === 'Bob', () => `Bob shown (${container.textContent})`)
    setMine!({ user: { name: 'Ann' } })
    await waitFor(() => bob.presence.others().some(p => (p.state.user as { name?: string } | undefined)?.name === 'Ann'), 'Bob to see Ann')
    typing!()
    await waitFor(() => bob.presence.typingPeers().length === 1, 'Bob to see Ann typing')
    bob.presence.typing()
    await waitFor(() => typers === 1, 'Ann to see Bob typing')
    expect(others).toHaveLength(1)
  })

  it('useVersions lists versions, with loading state, after one made through the SDK and one through the hook', async () => {
    const bob = client().open('versions')
    let state: ReturnType<typeof useVersions> | null = null
    function Versions(): ReactNode {
      state = useVersions(useDocument('versions'))
      return h('ol', null, (state.versions ?? []).filter(v => v.kind === 'named').map(v => h('li', { key: v.id }, v.name)))
    }
    const { container } = render(h(ConcordProvider, { client: client() }, h(Versions)))
    expect(state!.loading).toBe(true)
    await waitFor(() => state!.loading === false && state!.versions !== null, 'the first list')
    expect(state!.error).toBeNull()
    await bob.whenSynced()
    bob.doc.getText('t').insert(0, 'draft')
    await bob.whenSaved()
    await bob.createVersion('from the SDK')
    await state!.refresh()
    await waitFor(() => container.textContent === 'from the SDK', () => `the SDK's version (${container.textContent})`)
    await state!.create('from the hook')
    await waitFor(() => container.textContent === 'from the SDKfrom the hook', () => `both versions (${container.textContent})`)
  })

  it('useStateless receives the others\' messages and sends to them', async () => {
    const bob = client().open('signals')
    const got: string[] = []
    const bobGot: string[] = []
    bob.on('stateless', p => bobGot.push(p))
    let send: ((p: string) => boolean) | null = null
    let doc: DocHandle | null = null
    function Signals(): ReactNode {
      doc = useDocument('signals')
      send = useStateless(doc, p => got.push(p))
      return null
    }
    render(h(ConcordProvider, { client: client() }, h(Signals)))
    await bob.whenSynced()
    await doc!.whenSynced()
    expect(send!('from the hook')).toBe(true)
    await waitFor(() => bobGot.includes('from the hook'), 'Bob to get the message')
    bob.sendStateless('from Bob')
    await waitFor(() => got.includes('from Bob'), 'the hook to get Bob\'s message')
  })

  it('every hook detaches its listeners on unmount and on a change of handle; the last user closes the document', async () => {
    const alice = client()
    // the application holds 'leaks' open itself, so its listeners can be counted after every user is gone
    const held = alice.open('leaks')
    const baseline = listenerCounts(held, TYPES)
    function All({ name }: { name: string }): ReactNode {
      const doc = useDocument(name)
      useText(doc, 't')
      useText(doc, 'other')
      useMap(doc, 'm')
      useArray(doc, 'a')
      useShared(doc, d => d.getText('t').length)
      usePresence(doc)
      useTyping(doc)
      useStatus(doc)
      useVersions(doc)
      useStateless(doc, () => {})
      return h('span', null, doc.name)
    }
    const { root, container } = render(h(ConcordProvider, { client: alice }, h(All, { name: 'leaks' })))
    await waitFor(() => container.textContent === 'leaks', 'rendered')
    const mounted = await waitFor(() => {
      const c = listenerCounts(held, TYPES)
      return c.handle > baseline.handle && c['text:t'] > baseline['text:t'] ? c : null
    }, 'the hooks to subscribe')
    expect(mounted.awareness).toBeGreaterThan(baseline.awareness)
    expect(mounted.doc).toBeGreaterThan(baseline.doc)
    expect(mounted['map:m']).toBeGreaterThan(baseline['map:m'])
    expect(mounted['array:a']).toBeGreaterThan(baseline['array:a'])

    // a change of handle: everything on the first one is detached
    flushSync(() => root.render(h(ConcordProvider, { client: alice }, h(All, { name: 'leaks-2' }))))
    await waitFor(() => container.textContent === 'leaks-2', 'the second document rendered')
    await waitFor(() => JSON.stringify(listenerCounts(held, TYPES)) === JSON.stringify(baseline), () => `the first handle's listeners back to ${JSON.stringify(baseline)} (${JSON.stringify(listenerCounts(held, TYPES))})`)
    const second = alice.documents.find(d => d.name === 'leaks-2')!
    expect(second.isClosed).toBe(false)

    unmount(root)
    await waitFor(() => second.isClosed, 'the last user to close the document it opened')
    expect(alice.documents.map(d => d.name)).toEqual(['leaks'])
    expect(held.isClosed).toBe(false) // opened by the application: never closed by the hooks
    expect(listenerCounts(held, TYPES)).toEqual(baseline)
  })

  it('useDocument shares one handle among its users and keeps it through StrictMode\'s remount', async () => {
    const alice = client()
    const handles = new Set<DocHandle>()
    function User(): ReactNode {
      const doc = useDocument('shared-handle')
      handles.add(doc)
      return null
    }
    function Probe(): ReactNode {
      expect(useClient()).toBe(alice)
      return null
    }
    const { root } = render(h(StrictMode, null, h(ConcordProvider, { client: alice }, h(User), h(User), h(Probe))))
    await new Promise(r => setTimeout(r, 20)) // past the macrotask a release would close in
    expect(handles.size).toBe(1)
    const [handle] = handles
    expect(handle.isClosed).toBe(false)
    expect(alice.documents).toEqual([handle])
    unmount(root)
    await waitFor(() => handle.isClosed, 'the handle to close after the last user')
  })

  it('a hook outside a provider says what is missing', () => {
    function Orphan(): ReactNode {
      useDocument('x')
      return null
    }
    const errors: unknown[] = []
    const container = win.document.createElement('div') as unknown as HTMLElement
    const root = createRoot(container, { onUncaughtError: e => errors.push(e) })
    flushSync(() => root.render(h(Orphan)))
    root.unmount()
    expect(String(errors[0])).toMatch(/useDocument needs a <ConcordProvider> above it/)
  })
})
