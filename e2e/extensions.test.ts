import { afterEach, describe, expect, it } from 'vitest'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createHmac } from 'node:crypto'
import * as Y from 'yjs'
import type { ConcordExtension } from '@concord/server'
import { createConnectionWebhooks, createContentValidator, createSearchIndexFeeder, type ConnectionEvent } from '@concord/server/extensions'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'

// Server extensions: the hook API and the three shipped extensions, built only on it, on a real
// server with SDK clients.

const servers: RunningServer[] = []
const clients: ConcordClient[] = []
const https: Server[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const s of servers.splice(0)) await s.close()
  for (const h of https.splice(0)) await new Promise(resolve => h.close(resolve))
})

async function server(options: Parameters<typeof startServer>[0]): Promise<RunningServer> {
  const s = await startServer(options)
  servers.push(s)
  return s
}

function client(url: string): ConcordClient {
  const c = connectClient(url)
  clients.push(c)
  return c
}

const serverText = (s: RunningServer, doc: string, root: string): string | undefined => s.server.registry.peek(doc)?.ydoc.getText(root).toString()

describe('the content validator', () => {
  it('refuses updates that break the schema, with a code, and keeps the document and session going', async () => {
    const s = await server({ extensions: [createContentValidator({ roots: { body: 'text', tasks: 'array' }, maxTextLength: 20 })] })
    const h = client(s.url).open('note')
    const errors: string[] = []
    h.on('error', e => errors.push(`${e.code} ${e.message}`))
    await h.whenSynced()
    h.doc.getText('body').insert(0, 'hello')
    h.doc.getArray('tasks').push(['write tests'])
    await h.whenSaved()
    expect(serverText(s, 'note', 'body')).toBe('hello')

    h.doc.getMap('evil').set('x', 1)
    await waitFor(() => errors.length === 1, { message: 'the unknown root refused' })
    expect(errors[0]).toMatch(/^CONCORD_ERR_HOOK_REFUSED content-validator: the root "evil" is not in the schema/)
    // (a Yjs client's later updates build on the refused one, so this writer's next edits would be
    // refused as out of order: the app reloads the document after such a refusal; a second writer here)
    const h2 = client(s.url).open('note')
    const errors2: string[] = []
    h2.on('error', e => errors2.push(`${e.code} ${e.message}`))
    await h2.whenSynced()
    h2.doc.getText('body').insert(5, ' and a text that is far too long')
    await waitFor(() => errors2.length === 1, { message: 'the long text refused' })
    expect(errors2[0]).toMatch(/^CONCORD_ERR_HOOK_REFUSED .*at most 20/)
    expect(serverText(s, 'note', 'body')).toBe('hello')
    expect(s.server.registry.peek('note')?.ydoc.share.has('evil')).toBe(false)

    // another client sees only what passed, edits, and the refused writer still receives
    const other = client(s.url).open('note')
    await other.whenSynced()
    expect(other.doc.getText('body').toString()).toBe('hello')
    expect(other.doc.getArray('tasks').toArray()).toEqual(['write tests'])
    other.doc.getArray('tasks').push(['ship'])
    await other.whenSaved()
    await waitFor(() => h.doc.getArray('tasks').length === 2)
  })
})

describe('the search-index feeder', () => {
  it('feeds the debounced text of changed documents, and what is pending when the server closes', async () => {
    const fed: { name: string; text: string }[] = []
    const s = await server({ extensions: [createSearchIndexFeeder({ feed: (name, text) => { fed.push({ name, text }) }, debounceMs: 100, maxWaitMs: 1_000 })] })
    const a = client(s.url).open('wiki/a')
    const b = client(s.url).open('wiki/b')
    await Promise.all([a.whenSynced(), b.whenSynced()])
    for (const ch of 'typing fast') a.doc.getText('t').insert(a.doc.getText('t').length, ch)
    b.doc.getXmlFragment('prosemirror').insert(0, [new Y.XmlText('rich text')])
    await waitFor(() => fed.some(f => f.name === 'wiki/a') && fed.some(f => f.name === 'wiki/b'), { message: 'both documents fed' })
    // debounced: the burst of keystrokes is one call with the whole text
    expect(fed.filter(f => f.name === 'wiki/a')).toEqual([{ name: 'wiki/a', text: 'typing fast' }])
    expect(fed.find(f => f.name === 'wiki/b')?.text).toBe('rich text')

    a.doc.getText('t').insert(0, 'last ')
    await a.whenSaved()
    await s.close()
    servers.splice(0)
    expect(fed.filter(f => f.name === 'wiki/a').at(-1)?.text).toBe('last typing fast')
  })
})

describe('connection webhooks', () => {
  it('POSTs signed connect and disconnect events for each session', async () => {
    const received: { event: ConnectionEvent; signature: string; body: string }[] = []
    const hook = createHttpServer((req, res) => {
      let body = ''
      req.on('data', c => { body += c })
      req.on('end', () => {
        received.push({ event: JSON.parse(body) as ConnectionEvent, signature: String(req.headers['x-concord-signature']), body })
        res.end('ok')
      })
    })
    https.push(hook)
    await new Promise<void>(resolve => hook.listen(0, '127.0.0.1', resolve))
    const port = (hook.address() as { port: number }).port
    const webhooks = createConnectionWebhooks({ url: `http://127.0.0.1:${port}/hook`, secret: 'shh' })
    const s = await server({ extensions: [webhooks] })
    const c = client(s.url)
    const h = c.open('meeting')
    await h.whenSynced()
    await waitFor(() => received.length === 1)
    h.close()
    await waitFor(() => received.length === 2)
    expect(received.map(r => [r.event.event, r.event.documentName, r.event.transport])).toEqual([['connect', 'meeting', 'native'], ['disconnect', 'meeting', 'native']])
    expect(received[0]!.event.role).toBe('write')
    for (const r of received) expect(r.signature).toBe(`sha256=${createHmac('sha256', 'shh').update(r.body).digest('hex')}`)
    // a delivery counts once its response is back, which comes after the endpoint has read the body
    await waitFor(() => webhooks.delivered >= 2, { message: 'both deliveries counted' })
    expect(webhooks.delivered).toBe(2)
  })
})

describe('a hook that throws', () => {
  it('harms only its document or session, and is counted', async () => {
    const throwing: ConcordExtension = {
      name: 'broken',
      onConnect: ctx => { if (ctx.documentName.startsWith('blocked/')) throw new Error('no entry') },
      onAuthenticate: async ctx => { if (ctx.documentName === 'slow') await new Promise(resolve => setTimeout(resolve, 5_000)) },
      onLoadDocument: ctx => { if (ctx.documentName === 'unloadable') throw new Error('migration failed') },
      beforeChange: ctx => { if (ctx.documentName === 'cursed') throw new Error('cursed') },
      onChange: () => { throw new Error('observer bug') },
      onStoreDocument: async () => { throw new Error('async observer bug') },
      onDisconnect: () => { throw new Error('disconnect bug') },
    }
    const s = await server({ extensions: [throwing], hookTimeoutMs: 300 })
    const c = client(s.url)
    const errors = new Map<string, string[]>()
    const open = (name: string) => {
      const h = c.open(name)
      h.on('error', e => { errors.set(name, [...(errors.get(name) ?? []), e.code]) })
      return h
    }
    const fine = open('fine')
    open('blocked/x')
    open('slow')
    const unloadable = open('unloadable')
    const cursed = open('cursed')
    await Promise.all([fine.whenSynced(), cursed.whenSynced()])
    await waitFor(() => errors.get('blocked/x') !== undefined && errors.get('slow') !== undefined && errors.get('unloadable') !== undefined,
      { message: () => `refusals (${JSON.stringify([...errors])})` })
    expect(errors.get('blocked/x')?.[0]).toBe('CONCORD_ERR_HOOK_REFUSED')
    expect(errors.get('slow')?.[0]).toBe('CONCORD_ERR_HOOK_TIMEOUT')
    expect(errors.get('unloadable')?.[0]).toBe('CONCORD_ERR_DOC_LOAD_FAILED')
    cursed.doc.getText('t').insert(0, 'nope')
    await waitFor(() => errors.get('cursed') !== undefined)
    expect(errors.get('cursed')).toEqual(['CONCORD_ERR_HOOK_REFUSED'])
    // the throwing observers harm nothing: edits are applied, saved and fanned out
    fine.doc.getText('t').insert(0, 'works')
    await fine.whenSaved()
    const other = client(s.url).open('fine')
    await other.whenSynced()
    expect(other.doc.getText('t').toString()).toBe('works')
    expect(unloadable.status).not.toBe('synced')
    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text()
    expect(metrics).toMatch(/concord_extension_hook_failures_total\{extension="broken",hook="onChange"\} [1-9]/)
    expect(metrics).toMatch(/concord_extension_hook_failures_total\{extension="broken",hook="onStoreDocument"\} [1-9]/)
  })
})
