import { describe, it, expect, afterEach, vi } from 'vitest'
import { createHmac } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import {
  createWebhooks, retryDelayMs, signWebhook, verifyWebhookSignature,
  type WebhookAttemptInfo, type Webhooks, type WebhooksOptions,
} from './webhooks.js'

const SECRET = 'whsec-test-secret-1'
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

interface Received {
  headers: IncomingHttpHeaders
  url: string
  /** The raw body, as a receiver must verify it. */
  raw: string
  json: { id: string; type: string; createdAt: number; data: Record<string, unknown> }
}

/** What the receiver does with request number `n` (0-based): answer with a status, or hold it open. */
type Answer = (n: number, req: Received, res: ServerResponse) => number | 'hold'

interface Receiver {
  url: string
  received: Received[]
  /** Most requests open at the same time. */
  maxOpen: number
  close(): Promise<void>
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function startReceiver(answer: Answer = () => 200): Promise<Receiver> {
  const received: Received[] = []
  let open = 0
  const receiver: Receiver = { url: '', received, maxOpen: 0, close: async () => {} }
  const server = createServer((req, res) => {
    open++
    receiver.maxOpen = Math.max(receiver.maxOpen, open)
    res.on('close', () => { open-- })
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      const r: Received = { headers: req.headers, url: req.url ?? '', raw, json: JSON.parse(raw) as Received['json'] }
      received.push(r)
      const status = answer(received.length - 1, r, res)
      if (status !== 'hold') res.writeHead(status).end()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  receiver.url = `http://127.0.0.1:${port}/hooks`
  receiver.close = () => new Promise<void>(resolve => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
  cleanups.push(receiver.close)
  return receiver
}

function captureLogger(): { logger: WebhooksOptions['logger']; lines: Record<string, unknown>[]; text: () => string } {
  const lines: Record<string, unknown>[] = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  return { logger, lines, text: () => JSON.stringify(lines) }
}

function webhooks(options: Partial<WebhooksOptions> & Pick<WebhooksOptions, 'endpoints'>): Webhooks & { attempts: WebhookAttemptInfo[]; log: ReturnType<typeof captureLogger> } {
  const log = captureLogger()
  const attempts: WebhookAttemptInfo[] = []
  const hooks = createWebhooks({
    logger: log.logger, debounceMs: 20, backoffMs: 10, maxBackoffMs: 100, timeoutMs: 2000,
    onAttempt: info => attempts.push(info),
    ...options,
  })
  cleanups.push(() => hooks.close(0))
  return Object.assign(hooks, { attempts, log })
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

describe('webhook delivery', () => {
  it('delivers each event once, signed, with the documented headers and body', async () => {
    const rx = await startReceiver()
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }] })
    const before = Date.now()
    hooks.emit('document.created', { document: 'doc-a', title: 'Notes' })
    hooks.emit('version.created', { document: 'doc-a', version: 3 })
    hooks.emit('document.changed', { document: 'doc-a' })
    hooks.emit('document.deleted', { document: 'doc-b' })
    await until('4 deliveries', () => rx.received.length === 4 && hooks.pending === 0)
    await hooks.close()

    expect(rx.received.map(r => r.json.type).sort()).toEqual(['document.changed', 'document.created', 'document.deleted', 'version.created'])
    for (const r of rx.received) {
      expect(r.url).toBe('/hooks')
      expect(r.headers['content-type']).toBe('application/json')
      expect(r.headers['user-agent']).toBe('concord-webhooks/1')
      expect(r.headers['x-concord-event']).toBe(r.json.type)
      expect(r.headers['x-concord-delivery']).toBe(r.json.id)
      expect(r.json.id).toMatch(UUID_V4)
      expect(r.json.createdAt).toBeGreaterThanOrEqual(before)
      const signature = r.headers['x-concord-signature'] as string
      expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/)
      expect(verifyWebhookSignature(SECRET, signature, r.raw)).toBe(true)
    }
    expect(new Set(rx.received.map(r => r.json.id)).size).toBe(4)
    const byType = Object.fromEntries(rx.received.map(r => [r.json.type, r.json.data]))
    expect(byType['document.created']).toEqual({ document: 'doc-a', title: 'Notes' })
    expect(byType['version.created']).toEqual({ document: 'doc-a', version: 3 })
    expect(byType['document.deleted']).toEqual({ document: 'doc-b' })
    expect(byType['document.changed']).toMatchObject({ document: 'doc-a', updates: 1 })
    expect(hooks.attempts.map(a => a.result)).toEqual(['delivered', 'delivered', 'delivered', 'delivered'])
  })

  it('retries a 500 with the same delivery id, then delivers', async () => {
    const rx = await startReceiver(n => (n === 0 ? 500 : 200))
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }] })
    hooks.emit('document.created', { document: 'doc-a' })
    await until('delivered', () => hooks.attempts.some(a => a.result === 'delivered'))

    expect(rx.received).toHaveLength(2)
    expect(rx.received[1].json.id).toBe(rx.received[0].json.id)
    expect(rx.received[1].raw).toBe(rx.received[0].raw)
    expect(rx.received[1].headers['x-concord-delivery']).toBe(rx.received[0].json.id)
    for (const r of rx.received) expect(verifyWebhookSignature(SECRET, r.headers['x-concord-signature'] as string, r.raw)).toBe(true)
    expect(hooks.attempts).toEqual([
      { event: 'document.created', endpoint: rx.url, result: 'retrying', attempt: 1, status: 500 },
      { event: 'document.created', endpoint: rx.url, result: 'delivered', attempt: 2, status: 200 },
    ])
    expect(hooks.pending).toBe(0)
  })

  it('gives up after maxAttempts and logs a warning without credentials, query, secret or body', async () => {
    const rx = await startReceiver(() => 503)
    const url = rx.url.replace('http://', 'http://hook%20user:p%40ss@') + '?token=query-secret'
    const hooks = webhooks({ endpoints: [{ url, secret: SECRET }], maxAttempts: 3 })
    hooks.emit('document.created', { document: 'doc-a', marker: 'body-content-marker' })
    await until('failed', () => hooks.attempts.some(a => a.result === 'failed'))

    expect(rx.received).toHaveLength(3)
    expect(rx.received[0].url).toBe('/hooks?token=query-secret')
    expect(rx.received[0].headers.authorization).toBe(`Basic ${Buffer.from('hook user:p@ss').toString('base64')}`)
    expect(hooks.attempts.map(a => [a.result, a.attempt, a.status])).toEqual([['retrying', 1, 503], ['retrying', 2, 503], ['failed', 3, 503]])
    expect(hooks.attempts.every(a => a.endpoint === rx.url)).toBe(true)
    const warn = hooks.log.lines.find(l => l.level === 40 && l.msg === 'webhook delivery failed')
    expect(warn).toMatchObject({ endpoint: rx.url, status: 503, eventId: rx.received[0].json.id, event: 'document.created', attempt: 3 })
    for (const leak of [SECRET, 'body-content-marker', 'query-secret', 'p%40ss', 'p@ss']) expect(hooks.log.text()).not.toContain(leak)
    expect(hooks.pending).toBe(0)
  })

  it('stops at once on 410 Gone', async () => {
    const rx = await startReceiver(() => 410)
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }], maxAttempts: 5 })
    hooks.emit('document.deleted', { document: 'doc-a' })
    await until('failed', () => hooks.attempts.length > 0 && hooks.pending === 0)

    expect(rx.received).toHaveLength(1)
    expect(hooks.attempts).toEqual([{ event: 'document.deleted', endpoint: rx.url, result: 'failed', attempt: 1, status: 410 }])
    expect(hooks.log.lines.find(l => l.msg === 'webhook delivery failed')).toMatchObject({ status: 410, reason: 'endpoint answered 410 Gone' })
  })

  it('retries a network error and a timeout, with status null', async () => {
    const rx = await startReceiver(() => 'hold')
    const refused = await startReceiver()
    await refused.close()
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }, { url: refused.url, secret: SECRET }], maxAttempts: 2, timeoutMs: 100 })
    hooks.emit('document.created', { document: 'doc-a' })
    await until('both failed', () => hooks.attempts.filter(a => a.result === 'failed').length === 2)

    const timedOut = hooks.attempts.filter(a => a.endpoint === rx.url)
    expect(timedOut.map(a => [a.result, a.status, a.error])).toEqual([
      ['retrying', null, 'timed out after 100 ms'], ['failed', null, 'timed out after 100 ms'],
    ])
    expect(rx.received).toHaveLength(2)
    const unreachable = hooks.attempts.filter(a => a.endpoint === refused.url)
    expect(unreachable.map(a => [a.result, a.status])).toEqual([['retrying', null], ['failed', null]])
    expect(unreachable[0].error).toMatch(/ECONNREFUSED/)
  })

  it('sends only the events an endpoint asked for', async () => {
    const all = await startReceiver()
    const deletesOnly = await startReceiver()
    const hooks = webhooks({ endpoints: [{ url: all.url, secret: SECRET }, { url: deletesOnly.url, secret: 'other', events: ['document.deleted'] }] })
    hooks.emit('document.created', { document: 'doc-a' })
    hooks.emit('document.changed', { document: 'doc-a' })
    hooks.emit('document.deleted', { document: 'doc-a' })
    await until('deliveries', () => all.received.length === 3 && deletesOnly.received.length === 1)
    await hooks.close()

    expect(all.received.map(r => r.json.type)).toEqual(['document.created', 'document.changed', 'document.deleted'])
    expect(deletesOnly.received.map(r => r.json.type)).toEqual(['document.deleted'])
    // the same event has the same id at every endpoint, each signed with its own secret
    expect(deletesOnly.received[0].json.id).toBe(all.received[2].json.id)
    expect(verifyWebhookSignature('other', deletesOnly.received[0].headers['x-concord-signature'] as string, deletesOnly.received[0].raw)).toBe(true)
    expect(verifyWebhookSignature(SECRET, deletesOnly.received[0].headers['x-concord-signature'] as string, deletesOnly.received[0].raw)).toBe(false)
  })

  it('does not let a slow endpoint delay another, and runs at most 4 deliveries per endpoint at once', async () => {
    const held: ServerResponse[] = []
    const slow = await startReceiver((n, _r, res) => {
      if (n >= 4) return 200
      // the first 4 are held until the test lets them go: without the limit, all 6 would be open by then
      held.push(res)
      return 'hold'
    })
    const fast = await startReceiver()
    const hooks = webhooks({ endpoints: [{ url: slow.url, secret: SECRET }, { url: fast.url, secret: SECRET }] })
    for (let i = 0; i < 6; i++) hooks.emit('document.created', { document: `doc-${i}` })
    await until('fast endpoint has all 6 while the slow one holds 4', () => fast.received.length === 6 && held.length === 4)
    expect(slow.received.length).toBe(4)
    expect(slow.maxOpen).toBe(4)
    for (const r of held) r.writeHead(200).end()

    await until('slow endpoint has all 6', () => slow.received.length === 6 && hooks.pending === 0)
    expect(slow.maxOpen).toBe(4)
    expect(hooks.attempts.filter(a => a.result === 'delivered')).toHaveLength(12)
  })
})

describe('document.changed debounce', () => {
  it('merges 50 changes within the window into one delivery', async () => {
    const rx = await startReceiver()
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }], debounceMs: 150 })
    for (let i = 0; i < 50; i++) hooks.emit('document.changed', { document: 'doc-a' })
    for (let i = 0; i < 3; i++) hooks.emit('document.changed', { document: 'doc-b', updates: 5 })
    await until('2 deliveries', () => rx.received.length === 2 && hooks.pending === 0)
    await hooks.close()

    expect(rx.received).toHaveLength(2)
    const byDoc = Object.fromEntries(rx.received.map(r => [r.json.data.document, r.json.data]))
    expect(byDoc['doc-a']).toEqual({ document: 'doc-a', updates: 50, firstChangeAt: expect.any(Number), lastChangeAt: expect.any(Number) })
    expect(byDoc['doc-a'].lastChangeAt as number).toBeGreaterThanOrEqual(byDoc['doc-a'].firstChangeAt as number)
    expect(byDoc['doc-b'].updates).toBe(15)
  })

  it('sends a never-quiet stream at least every maxDebounceMs', async () => {
    // in virtual time: the bound is the module's promise, and on a busy machine a real timer (the
    // test's or the module's) may fire late
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    try {
      const sent: { updates: number; firstChangeAt: number; lastChangeAt: number; sentAt: number }[] = []
      const hooks = webhooks({
        endpoints: [{ url: 'http://receiver.invalid/hooks', secret: SECRET }], debounceMs: 100, maxDebounceMs: 200,
        fetch: async (_url, init) => {
          sent.push({ ...(JSON.parse(String(init!.body)) as { data: { updates: number; firstChangeAt: number; lastChangeAt: number } }).data, sentAt: Date.now() })
          return new Response(null, { status: 204 })
        },
      })
      let emitted = 0
      const start = Date.now()
      // a change every 20 ms for a second never leaves 100 ms of quiet
      while (Date.now() - start < 1000) {
        hooks.emit('document.changed', { document: 'doc-a' })
        emitted++
        await vi.advanceTimersByTimeAsync(20)
      }
      const duringStream = sent.length
      await hooks.close()

      // five windows of 200 ms in the second: four closed during the stream, the last one by close()
      expect(duringStream).toBeGreaterThanOrEqual(4)
      expect(sent.reduce((n, s) => n + s.updates, 0)).toBe(emitted)
      for (const s of sent) {
        expect(s.lastChangeAt).toBeGreaterThanOrEqual(s.firstChangeAt)
        expect(s.sentAt - s.firstChangeAt).toBeLessThanOrEqual(200)
      }
      // one window after another, none overlapping
      for (let k = 1; k < sent.length; k++) expect(sent[k]!.firstChangeAt).toBeGreaterThan(sent[k - 1]!.lastChangeAt)
    } finally {
      vi.useRealTimers()
    }
  })

  it('close() sends the debounced event and waits for its delivery', async () => {
    const rx = await startReceiver((_n, _r, res) => {
      setTimeout(() => res.writeHead(204).end(), 50)
      return 'hold'
    })
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }], debounceMs: 60_000 })
    hooks.emit('document.changed', { document: 'doc-a' })
    hooks.emit('document.changed', { document: 'doc-a' })
    expect(hooks.pending).toBe(0)
    await hooks.close()

    expect(rx.received.map(r => r.json.data)).toMatchObject([{ document: 'doc-a', updates: 2 }])
    expect(hooks.attempts.map(a => [a.result, a.status])).toEqual([['delivered', 204]])
    expect(hooks.pending).toBe(0)
    hooks.emit('document.created', { document: 'doc-a' })
    expect(hooks.pending).toBe(0)
    expect(hooks.log.lines.some(l => l.msg === 'webhook event dropped: webhooks are closed')).toBe(true)
  })

  it('a delete sends the pending changes of that document first', async () => {
    const rx = await startReceiver()
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }], debounceMs: 60_000 })
    hooks.emit('document.changed', { document: 'doc-a' })
    hooks.emit('document.deleted', { document: 'doc-a' })
    await until('2 deliveries', () => rx.received.length === 2)
    expect(rx.received.map(r => r.json.type).sort()).toEqual(['document.changed', 'document.deleted'])
  })
})

describe('close', () => {
  it('stops at the deadline and logs what is left as dropped', async () => {
    const rx = await startReceiver(() => 'hold')
    // a request timeout longer than the test's: a close() that waited for it would time the test out
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }], timeoutMs: 600_000 })
    hooks.emit('document.created', { document: 'doc-a' })
    hooks.emit('document.created', { document: 'doc-b' })
    await until('requests arrive', () => rx.received.length === 2)
    // the receiver never answers: close() returns only because its deadline passed
    await hooks.close(100)

    expect(hooks.pending).toBe(0)
    const dropped = hooks.log.lines.find(l => l.msg === 'webhook deliveries dropped at close')
    expect(dropped).toMatchObject({ level: 40, dropped: 2 })
    await until('aborted attempts reported', () => hooks.attempts.length === 2)
    expect(hooks.attempts.every(a => a.result === 'failed' && a.error === 'aborted: webhooks closed')).toBe(true)
    expect(rx.received).toHaveLength(2)
  })
})

describe('options and emit', () => {
  const logger = pino({ level: 'silent' })
  const ok = { url: 'https://example.com/hook', secret: 's' }

  it('refuses bad options with a TypeError', () => {
    const bad: Partial<WebhooksOptions>[] = [
      { endpoints: [{ ...ok, url: 'ftp://example.com/hook' }] },
      { endpoints: [{ ...ok, url: 'not a url' }] },
      { endpoints: [{ ...ok, secret: '' }] },
      { endpoints: [{ ...ok, events: ['document.renamed' as never] }] },
      { endpoints: [{ ...ok, events: [] }] },
      { endpoints: [ok], debounceMs: -1 },
      { endpoints: [ok], debounceMs: Number.NaN },
      { endpoints: [ok], debounceMs: 5000, maxDebounceMs: 1000 },
      { endpoints: [ok], maxAttempts: 0 },
      { endpoints: [ok], maxAttempts: 1.5 },
      { endpoints: [ok], backoffMs: Infinity },
      { endpoints: [ok], timeoutMs: 0 },
      { endpoints: [ok], timeoutMs: 2 ** 31 },
    ]
    for (const options of bad) expect(() => createWebhooks({ logger, endpoints: [], ...options }), JSON.stringify(options)).toThrow(TypeError)
    expect(() => createWebhooks({ logger, endpoints: [ok, { ...ok, url: 'http://127.0.0.1:1/x', events: ['version.created'] }] })).not.toThrow()
  })

  it('emit never throws and drops what it cannot send, with a warning', async () => {
    const rx = await startReceiver()
    const hooks = webhooks({ endpoints: [{ url: rx.url, secret: SECRET }] })
    const circular: Record<string, unknown> & { document: string } = { document: 'doc-a' }
    circular.self = circular
    expect(() => hooks.emit('document.renamed' as never, { document: 'doc-a' })).not.toThrow()
    expect(() => hooks.emit('document.created', {} as never)).not.toThrow()
    expect(() => hooks.emit('document.created', null as never)).not.toThrow()
    expect(() => hooks.emit('document.created', circular)).not.toThrow()
    expect(() => hooks.emit('document.created', { document: 'doc-a', n: 10n })).not.toThrow()
    expect(hooks.pending).toBe(0)
    expect(hooks.log.lines.filter(l => l.level === 40)).toHaveLength(5)
    await hooks.close()
    expect(rx.received).toHaveLength(0)
  })
})

describe('signatures', () => {
  const body = '{"id":"x","type":"document.created","createdAt":1,"data":{"document":"d"}}'
  const t = 1_700_000_000

  it('signs "<t>.<body>" with HMAC-SHA256', () => {
    const hex = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex')
    expect(signWebhook(SECRET, body, t)).toBe(`t=${t},v1=${hex}`)
    expect(verifyWebhookSignature(SECRET, signWebhook(SECRET, body, t), body, { nowSec: t })).toBe(true)
  })

  it('rejects a wrong secret, a tampered body, and a timestamp outside the tolerance', () => {
    const header = signWebhook(SECRET, body, t)
    expect(verifyWebhookSignature('wrong-secret', header, body, { nowSec: t })).toBe(false)
    expect(verifyWebhookSignature(SECRET, header, body.replace('"d"', '"e"'), { nowSec: t })).toBe(false)
    expect(verifyWebhookSignature(SECRET, header, body, { nowSec: t + 301 })).toBe(false)
    expect(verifyWebhookSignature(SECRET, header, body, { nowSec: t - 301 })).toBe(false)
    expect(verifyWebhookSignature(SECRET, header, body, { nowSec: t + 300 })).toBe(true)
    expect(verifyWebhookSignature(SECRET, header, body, { nowSec: t + 60, toleranceSec: 30 })).toBe(false)
    // with the real clock, a signature from an hour ago is too old
    expect(verifyWebhookSignature(SECRET, signWebhook(SECRET, body, Math.floor(Date.now() / 1000) - 3600), body)).toBe(false)
    expect(verifyWebhookSignature(SECRET, signWebhook(SECRET, body, Math.floor(Date.now() / 1000)), body)).toBe(true)
  })

  it('accepts any of several v1 values (key rotation) and rejects malformed headers', () => {
    const oldSig = signWebhook('old-secret', body, t).split(',')[1]
    const newSig = signWebhook(SECRET, body, t).split(',')[1]
    expect(verifyWebhookSignature(SECRET, `t=${t},${oldSig},${newSig}`, body, { nowSec: t })).toBe(true)
    expect(verifyWebhookSignature('old-secret', `t=${t}, ${oldSig}, ${newSig}`, body, { nowSec: t })).toBe(true)
    for (const header of ['', `t=${t}`, newSig, `t=abc,${newSig}`, `t=${t},t=${t},${newSig}`, `t=${t},v1=zz`, `t=${t},v0=${newSig.slice(3)}`]) {
      expect(verifyWebhookSignature(SECRET, header, body, { nowSec: t }), header).toBe(false)
    }
    expect(verifyWebhookSignature('', signWebhook(SECRET, body, t), body, { nowSec: t })).toBe(false)
  })
})

describe('retryDelayMs', () => {
  it('doubles from the base with +-20% jitter and never exceeds the cap', () => {
    expect(retryDelayMs(1, 500, 60_000, () => 0.5)).toBe(500)
    expect(retryDelayMs(2, 500, 60_000, () => 0.5)).toBe(1000)
    expect(retryDelayMs(4, 500, 60_000, () => 0.5)).toBe(4000)
    expect(retryDelayMs(3, 500, 60_000, () => 0)).toBe(1600)
    expect(retryDelayMs(3, 500, 60_000, () => 0.9999999)).toBeCloseTo(2400, 2)
    expect(retryDelayMs(20, 500, 60_000, () => 0)).toBe(48_000)
    expect(retryDelayMs(20, 500, 60_000, () => 0.9999999)).toBe(60_000)
  })
})
