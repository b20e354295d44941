import { describe, it, expect } from 'vitest'
import { createMemoryStorage, type StorageAdapter } from '@concord/server'
import { connectClient, startServer, waitFor, cleanupAfterEach } from './helpers.js'

const live = cleanupAfterEach()

describe('client recovery paths', () => {
  it('keeps an update whose append failed, re-opens, re-sends it, and is then saved', async () => {
    const inner = createMemoryStorage()
    let failures = 1
    const storage: StorageAdapter = {
      ...inner,
      kind: inner.kind,
      append: (doc, rec) => (failures-- > 0 ? Promise.reject(new Error('disk hiccup')) : inner.append(doc, rec)),
    }
    live.server = await startServer({ storage })
    const client = connectClient(live.server.url)
    live.clients.push(client)
    const h = client.open('hiccup')
    await h.whenSynced()
    const errors: string[] = []
    let pendingAtError = -1
    h.on('error', e => {
      errors.push(e.code)
      if (e.code === 'CONCORD_ERR_STORAGE_WRITE_FAILED') pendingAtError = h.pendingCount
    })
    h.doc.getText('t').insert(0, 'must not be lost')
    await waitFor(() => errors.includes('CONCORD_ERR_STORAGE_WRITE_FAILED'), { message: 'the storage failure was reported' })
    // the client still held the update when it learnt of the failure
    expect(pendingAtError).toBe(1)
    await h.whenSaved()
    expect(h.pendingCount).toBe(0)
    const stored = await inner.load('hiccup')
    const { applyUpdate, Doc } = await import('yjs')
    const check = new Doc()
    for (const u of stored.updates) applyUpdate(check, u.update)
    expect(check.getText('t').toString()).toBe('must not be lost')
  })

  it('retries when getToken fails, without an unhandled rejection', async () => {
    live.server = await startServer()
    let calls = 0
    const client = connectClient(live.server.url, {
      getToken: async () => {
        calls++
        if (calls === 1) throw new Error('token service down')
        return 'fine'
      },
    })
    live.clients.push(client)
    const h = client.open('tokens')
    const errors: string[] = []
    h.on('error', e => errors.push(e.code))
    await h.whenSynced()
    expect(errors).toEqual(['CONCORD_ERR_CLIENT_TOKEN'])
    expect(calls).toBe(2)
  })

  it('does not send an update larger than the server accepts; the socket and other documents keep working', async () => {
    live.server = await startServer({ maxMessageBytes: 64 * 1024, chunkBytes: 16 * 1024 })
    const client = connectClient(live.server.url)
    const observer = connectClient(live.server.url)
    live.clients.push(client, observer)
    const [big, small] = [client.open('big'), client.open('small')]
    const seen = observer.open('small')
    await Promise.all([big.whenSynced(), small.whenSynced(), seen.whenSynced()])
    const errors: string[] = []
    big.on('error', e => errors.push(e.code))
    big.doc.getText('t').insert(0, 'x'.repeat(100 * 1024))
    expect(errors).toEqual(['CONCORD_ERR_MESSAGE_TOO_LARGE'])
    expect(big.pendingCount).toBe(0)
    small.doc.getText('t').insert(0, 'small edit')
    await waitFor(() => seen.doc.getText('t').toString() === 'small edit')
    expect(client.status).toBe('connected')
  })
})
