import { afterEach, describe, expect, it } from 'vitest'
import { createContentValidator } from '@concord/server/extensions'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'

// server.openDirect: an in-process session for bots and AI agents, with the same checks, log,
// acks and fan-out as a client's.

const servers: RunningServer[] = []
const clients: ConcordClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const s of servers.splice(0)) await s.close()
})

describe('a direct connection', () => {
  it('edits as its user: clients see it, it sees them, it is durable and attributed', async () => {
    const s = await startServer({})
    servers.push(s)
    const c = connectClient(s.url)
    clients.push(c)
    const h = c.open('agenda')
    await h.whenSynced()
    h.doc.getText('t').insert(0, 'from a person. ')
    await h.whenSaved()

    const bot = await s.server.openDirect('agenda', { userId: 'summary-bot' })
    expect(bot.doc.getText('t').toString()).toBe('from a person. ')
    bot.doc.getText('t').insert(bot.doc.getText('t').length, 'From the bot.')
    await bot.whenSaved()
    await waitFor(() => h.doc.getText('t').toString() === 'from a person. From the bot.', { message: 'the client sees the bot\'s edit' })
    h.doc.getText('t').insert(0, '>> ')
    await waitFor(() => bot.doc.getText('t').toString().startsWith('>> '), { message: 'the bot sees the client\'s edit' })

    // durable, with the bot as its author
    const stored = await s.server.storage.load('agenda')
    expect(stored.updates.some(u => u.userId === 'summary-bot')).toBe(true)
    bot.close()
    await expect(s.server.openDirect('bad\u0007name')).rejects.toThrow(/control characters/)
  })

  it('gets the refusal a client would get, and the document goes on', async () => {
    const s = await startServer({ extensions: [createContentValidator({ roots: { t: 'text' } })] })
    servers.push(s)
    const bot = await s.server.openDirect('strict', { userId: 'bot' })
    bot.doc.getText('t').insert(0, 'fine')
    await bot.whenSaved()
    bot.doc.getMap('other').set('x', 1)
    await expect(bot.whenSaved()).rejects.toMatchObject({ code: 'CONCORD_ERR_HOOK_REFUSED' })
    expect(s.server.registry.peek('strict')?.ydoc.share.has('other')).toBe(false)
    bot.close()
  })
})

describe('POST /v1/documents/{name}/content', () => {
  it('merges text, JSON and ProseMirror JSON into a live document as the caller\'s change, with coded refusals', async () => {
    const { mintToken } = await import('@concord/server')
    const SECRET = 'e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
    const s = await startServer({ auth: { secret: SECRET } })
    servers.push(s)
    const writer = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'importer', docs: { 'acme/*': 'write' } })).token
    const reader = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'rita', docs: { 'acme/*': 'read' } })).token
    const c = connectClient(s.url, { token: writer })
    clients.push(c)
    const h = c.open('acme/page')
    await h.whenSynced()
    const post = (body: unknown, token = writer) => fetch(`http://127.0.0.1:${s.port}/v1/documents/${encodeURIComponent('acme/page')}/content`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body),
    })

    let res = await post({ format: 'text', text: 'imported text' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ changed: true })
    res = await post({ format: 'json', value: { status: 'draft', owners: ['ada'] } })
    expect(res.status).toBe(200)
    res = await post({ format: 'prosemirror', doc: { type: 'doc', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'rich', marks: [{ type: 'bold' }] }] }] } })
    expect(res.status).toBe(200)
    await waitFor(() => h.doc.getText('text').toString() === 'imported text' && h.doc.getMap('data').get('status') === 'draft' &&
      h.doc.getXmlFragment('prosemirror').length === 1, { message: 'the client sees all three' })
    // the same content again changes nothing
    expect(await (await post({ format: 'json', value: { status: 'draft' } })).json()).toEqual({ changed: false })
    // credited to the caller
    const stored = await s.server.storage.load('acme/page')
    expect(stored.updates.every(u => u.userId === 'importer')).toBe(true)

    const refused = await post({ format: 'text', text: 'x' }, reader)
    expect(refused.status).toBe(403)
    expect((await refused.json() as { error: string }).error).toBe('CONCORD_ERR_AUTH_FORBIDDEN')
    const bad = await post({ format: 'json', value: 'not an object' })
    expect(bad.status).toBe(400)
    const wrongKind = await post({ format: 'json', field: 'text', value: { a: 1 } })
    expect(wrongKind.status).toBe(400)
    expect(JSON.stringify(await wrongKind.json())).toMatch(/holds text, not map/)
  })
})
