import { describe, it, expect, afterEach } from 'vitest'
import { createServer as createHttpServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import * as Y from 'yjs'
import { createWebhooks, type WebhooksOptions } from './webhooks.js'
import { createServer, type ConcordServer } from '../server.js'

// An endpoint that is down (it takes requests and never answers) while someone creates document
// after document: what waits for it must stay bounded, the oldest giving way, counted and logged.

const SECRET = 'whsec-queue-test-secret'
const ADMIN_TOKEN = 'webhook-queue-admin-token-0123'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** A webhook receiver that holds every request open (the endpoint hangs) until `release()`. */
async function hangingEndpoint(): Promise<{ url: string; documents: string[]; held: () => number; release: () => void }> {
  const documents: string[] = []
  const held: ServerResponse[] = []
  let released = false
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      documents.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { document: string } }).data.document)
      if (released) res.writeHead(204).end()
      else held.push(res)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>(resolve => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    documents,
    held: () => held.length,
    release: () => {
      released = true
      for (const res of held.splice(0)) res.writeHead(204).end()
    },
  }
}

function captureLog(): { logger: WebhooksOptions['logger']; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } }) }
}

describe('the webhook queue of an endpoint that is down', () => {
  it('holds at most maxQueuedEvents: the oldest waiting deliveries are dropped, counted, and logged without a line per drop', async () => {
    const endpoint = await hangingEndpoint()
    const log = captureLog()
    let dropped = 0
    const hooks = createWebhooks({
      endpoints: [{ url: endpoint.url, secret: SECRET }], logger: log.logger, maxQueuedEvents: 100,
      onDropped: () => { dropped++ },
    })
    cleanups.push(() => hooks.close(0))
    for (let i = 0; i < 1_000; i++) hooks.emit('document.created', { document: `acme/doc-${i}` })
    await waitUntil('the endpoint to hold the 4 deliveries in flight', () => endpoint.held() === 4)

    // 4 in flight, 100 waiting: the other 896 were dropped, not kept
    expect(hooks.pending).toBe(104)
    expect(dropped).toBe(896)
    const lines = (): Record<string, unknown>[] => log.lines.filter(l => l.msg === 'webhook queue full: oldest deliveries dropped (is the endpoint down?)')
    // rate-limited: the first drop at once, the rest summed up later (at most one line per 10 s)
    expect(lines()).toHaveLength(1)

    // the endpoint comes back: the first 4 (in flight) and the newest 100 arrive, the oldest waiting were dropped
    endpoint.release()
    await waitUntil('the queue to drain', () => hooks.pending === 0 && endpoint.documents.length === 104)
    const expected = [0, 1, 2, 3, ...Array.from({ length: 100 }, (_, i) => 900 + i)].map(i => `acme/doc-${i}`)
    expect([...endpoint.documents].sort()).toEqual(expected.sort())

    // what was not logged yet is logged at close: every drop is accounted for in the log
    await hooks.close(0)
    expect(lines().reduce((n, l) => n + (l.dropped as number), 0)).toBe(896)
    expect(lines().length).toBeLessThanOrEqual(2)
  })

  it('a server counts the drops in concord_webhook_events_dropped_total while documents keep being created', async () => {
    const endpoint = await hangingEndpoint()
    const server: ConcordServer = createServer({
      auth: 'none', adminToken: ADMIN_TOKEN, maxQueuedWebhookEvents: 5,
      webhooks: [{ url: endpoint.url, secret: SECRET, events: ['document.created'] }],
    })
    cleanups.push(() => server.close())
    const { port } = await server.listen(0, '127.0.0.1')
    const base = `http://127.0.0.1:${port}`
    const dropped = async (): Promise<number> => {
      const text = await (await fetch(`${base}/metrics`)).text()
      const line = text.split('\n').find(l => l.startsWith('concord_webhook_events_dropped_total '))
      return line === undefined ? NaN : Number(line.split(' ')[1])
    }
    expect(await dropped()).toBe(0)

    // 20 new documents (each one's first durable update sends document.created)
    for (let i = 0; i < 20; i++) {
      const doc = new Y.Doc()
      doc.getText('t').insert(0, `document ${i}`)
      const res = await fetch(`${base}/admin/documents/${encodeURIComponent(`acme/new-${i}`)}/update`, {
        method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/octet-stream' }, body: Buffer.from(Y.encodeStateAsUpdate(doc)),
      })
      expect(res.status).toBe(200)
    }
    // 4 held by the endpoint, 5 waiting: 11 dropped
    await waitUntil('20 document.created events to be sent, held or dropped', async () => endpoint.held() === 4 && await dropped() === 11)
    endpoint.release()
  })
})
