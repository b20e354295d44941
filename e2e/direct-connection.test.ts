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
