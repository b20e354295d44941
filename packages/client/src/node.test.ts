import { afterEach, describe, expect, it, vi } from 'vitest'
import { createServer, type ConcordServer } from '@concord/server'
import * as main from './index.js'
import * as node from './node.js'

describe('the Node entry (@concord/client/node)', () => {
  let server: ConcordServer | null = null
  afterEach(async () => {
    vi.unstubAllGlobals()
    await server?.close()
    server = null
  })

  it('exports every name of the main entry, the same objects but createClient, and the file offline store', () => {
    const mainNames = Object.keys(main).sort()
    expect(Object.keys(node).filter(n => n !== 'createFileOfflineStore').sort()).toEqual(mainNames)
    for (const name of mainNames.filter(n => n !== 'createClient')) {
      expect((node as Record<string, unknown>)[name], name).toBe((main as Record<string, unknown>)[name])
    }
    expect(typeof node.createFileOfflineStore).toBe('function')
  })

  it('the main entry, where there is no global WebSocket, says to import from @concord/client/node', () => {
    vi.stubGlobal('WebSocket', undefined)
    expect(() => main.createClient({ url: 'ws://127.0.0.1:9' })).toThrow(/import \{ createClient \} from '@concord\/client\/node'/)
  })

  it('connects with nothing but a url, also where there is no global WebSocket (ws), and gets the durable-save ack', async () => {
    vi.stubGlobal('WebSocket', undefined)
    server = createServer({ auth: 'none' })
    const { url } = await server.listen(0, '127.0.0.1')
    const client = node.createClient({ url })
    try {
      const h = client.open('node-entry')
      await h.whenSynced()
      h.doc.getText('body').insert(0, 'from node')
      await h.whenSaved()
      expect(h.saved).toBe(true)
      expect(client.status).toBe('connected')
    } finally {
      client.close()
    }
  })
})
