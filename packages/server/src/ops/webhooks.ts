import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import type { Logger } from 'pino'

/**
 * Webhook sender for the history feature: signed JSON POSTs, one delivery per endpoint per event,
 * retried with exponential backoff, `document.changed` debounced per document.
 *
 * Receivers verify `x-concord-signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
 * with `verifyWebhookSignature`. Deliveries are at-least-once and unordered: a receiver
 * deduplicates by `id` (the same on every retry) and orders by `createdAt`.
 */

export const WEBHOOK_EVENTS = ['document.changed', 'document.created', 'document.deleted', 'version.created'] as const
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number]

export interface WebhookEndpoint {
  /** http(s) URL; user:password in it is sent as basic auth, never logged. */
  url: string
  secret: string
  /** Events it wants; default all. */
  events?: WebhookEvent[]
}

export type WebhookAttemptResult = 'delivered' | 'retrying' | 'failed'

export interface WebhookAttemptInfo {
  event: WebhookEvent
  /** The endpoint URL without credentials, query or fragment. */
  endpoint: string
  result: WebhookAttemptResult
  /** 1-based. */
  attempt: number
  /** HTTP status, or null for a network error or a timeout. */
  status: number | null
  error?: string
}

export interface WebhooksOptions {
  endpoints: WebhookEndpoint[]
  logger: Logger
  /** document.changed is sent once per document after this much quiet (default 2000 ms), at most maxDebounceMs after the first change (default 30000) */
  debounceMs?: number
  maxDebounceMs?: number
  /** attempts per delivery (default 8), backoff base (default 500 ms, doubling, +-20% jitter, capped at maxBackoffMs default 60000) */
  maxAttempts?: number
  backoffMs?: number
  maxBackoffMs?: number
  /** per attempt (default 10000 ms) */
  timeoutMs?: number
  /** told of every attempt's outcome, for metrics: 'failed' means it gave up */
  onAttempt?: (info: WebhookAttemptInfo) => void
  /**
   * Deliveries one endpoint may have waiting to start (default 10000; besides the 4 in flight or
   * waiting to retry). When it is full, the oldest waiting one is dropped to make room: an
   * endpoint that is down while many documents change costs bounded memory.
   */
  maxQueuedEvents?: number
  /** told of each delivery dropped because its endpoint's queue was full, for metrics */
  onDropped?: (info: { event: WebhookEvent; endpoint: string }) => void
  /** injectable for tests */
  fetch?: typeof fetch
  now?: () => number
}

export interface Webhooks {
  /** Queue an event; returns at once and never throws. document.changed is debounced per `data.document`. */
  emit(event: WebhookEvent, data: Record<string, unknown> & { document: string }): void
  /** How many deliveries are queued, in flight or waiting to retry (debounced events not yet sent are not counted). */
  readonly pending: number
  /** Send debounced events now, wait up to `deadlineMs` (default 5000) for deliveries, then stop retrying (what is left is logged as dropped). */
  close(deadlineMs?: number): Promise<void>
}

/** Deliveries of one endpoint in progress at once (including those waiting to retry); others queue. */
const MAX_CONCURRENT_PER_ENDPOINT = 4
/** setTimeout fires at once for larger delays. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** Deliveries dropped from a full queue are logged at most once per this interval, per endpoint. */
const DROP_LOG_INTERVAL_MS = 10_000

interface EndpointState {
  readonly requestUrl: string
  /** For logs and metrics: no credentials, query or fragment. */
  readonly logUrl: string
  readonly secret: string
  readonly authorization: string | null
  readonly events: ReadonlySet<WebhookEvent>
  readonly queue: Delivery[]
  readonly active: Set<Delivery>
  /** Deliveries dropped from the full queue and not logged yet, the time of the last such log line, and the timer of the next. */
  droppedUnlogged: number
  lastDropLogAt: number
  dropLogTimer: NodeJS.Timeout | null
}

interface Delivery {
  readonly id: string
  readonly event: WebhookEvent
  readonly body: string
  readonly endpoint: EndpointState
  attempts: number
  retryTimer: NodeJS.Timeout | null
  controller: AbortController | null
  dropped: boolean
}

interface PendingChange {
  updates: number
  firstChangeAt: number
  lastChangeAt: number
  timer: NodeJS.Timeout | null
}

export function createWebhooks(options: WebhooksOptions): Webhooks {
  const opts = validateOptions(options)
  const log = opts.logger.child({ component: 'webhooks' })
  const endpoints: EndpointState[] = opts.endpoints.map(toEndpointState)
  const changes = new Map<string, PendingChange>()
  let closing: Promise<void> | null = null
  let stopped = false
  let idleWaiter: (() => void) | null = null

  const pendingCount = (): number => endpoints.reduce((n, ep) => n + ep.queue.length + ep.active.size, 0)

  function enqueue(event: WebhookEvent, data: Record<string, unknown>): void {
    const targets = endpoints.filter(ep => ep.events.has(event))
    if (targets.length === 0) return
    const id = randomUUID()
    let body: string
    try {
      body = JSON.stringify({ id, type: event, createdAt: opts.now(), data })
    } catch (err) {
      log.warn({ event, eventId: id, error: errorText(err) }, 'webhook event dropped: data is not serialisable')
      return
    }
    for (const endpoint of targets) {
      endpoint.queue.push({ id, event, body, endpoint, attempts: 0, retryTimer: null, controller: null, dropped: false })
      pump(endpoint)
      if (endpoint.queue.length > opts.maxQueuedEvents) dropOldest(endpoint)
    }
  }

  /** The queue is over its bound: the oldest waiting delivery gives way (counted, and logged at most every 10 s). */
  function dropOldest(endpoint: EndpointState): void {
    const oldest = endpoint.queue.shift()!
    oldest.dropped = true
    endpoint.droppedUnlogged++
    if (opts.onDropped) {
      try {
        opts.onDropped({ event: oldest.event, endpoint: endpoint.logUrl })
      } catch (err) {
        log.warn({ error: errorText(err) }, 'webhook onDropped hook threw')
      }
    }
    if (endpoint.dropLogTimer !== null) return
    const wait = endpoint.lastDropLogAt + DROP_LOG_INTERVAL_MS - opts.now()
    if (wait <= 0) {
      logDrops(endpoint)
      return
    }
    endpoint.dropLogTimer = setTimeout(() => logDrops(endpoint), wait)
    endpoint.dropLogTimer.unref()
  }

  function logDrops(endpoint: EndpointState): void {
    if (endpoint.dropLogTimer !== null) clearTimeout(endpoint.dropLogTimer)
    endpoint.dropLogTimer = null
    if (endpoint.droppedUnlogged === 0) return
    log.warn({ endpoint: endpoint.logUrl, dropped: endpoint.droppedUnlogged, maxQueuedEvents: opts.maxQueuedEvents },
      'webhook queue full: oldest deliveries dropped (is the endpoint down?)')
    endpoint.droppedUnlogged = 0
    endpoint.lastDropLogAt = opts.now()
  }

  function pump(endpoint: EndpointState): void {
    while (!stopped && endpoint.active.size < MAX_CONCURRENT_PER_ENDPOINT && endpoint.queue.length > 0) {
      const delivery = endpoint.queue.shift()!
      endpoint.active.add(delivery)
      run(delivery)
    }
  }

  function finish(delivery: Delivery): void {
    delivery.endpoint.active.delete(delivery)
    pump(delivery.endpoint)
    if (idleWaiter && pendingCount() === 0) idleWaiter()
  }

  function report(delivery: Delivery, result: WebhookAttemptResult, status: number | null, error?: string): void {
    if (!opts.onAttempt) return
    const info: WebhookAttemptInfo = { event: delivery.event, endpoint: delivery.endpoint.logUrl, result, attempt: delivery.attempts, status }
    if (error !== undefined) info.error = error
    try {
      opts.onAttempt(info)
    } catch (err) {
      log.warn({ error: errorText(err) }, 'webhook onAttempt hook threw')
    }
  }

  /** An attempt that throws (only a broken injected `now` or `onAttempt` could) fails its delivery. */
  function run(delivery: Delivery): void {
    attempt(delivery).catch((err: unknown) => {
      log.error({ event: delivery.event, eventId: delivery.id, endpoint: delivery.endpoint.logUrl, error: errorText(err) }, 'webhook delivery failed')
      if (!delivery.dropped) finish(delivery)
    })
  }

  async function attempt(delivery: Delivery): Promise<void> {
    delivery.attempts++
    const { endpoint } = delivery
    const timestampSec = Math.floor(opts.now() / 1000)
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'concord-webhooks/1',
      'x-concord-event': delivery.event,
      'x-concord-delivery': delivery.id,
      'x-concord-signature': signWebhook(endpoint.secret, delivery.body, timestampSec),
    }
    if (endpoint.authorization) headers.authorization = endpoint.authorization
    const controller = new AbortController()
    delivery.controller = controller
    let timedOut = false
    const timeout = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, opts.timeoutMs)
    timeout.unref()
    let status: number | null = null
    let error: string | undefined
    try {
      // redirects are not followed: a 3xx is a failed attempt like any other non-2xx
      const res = await opts.fetch(endpoint.requestUrl, { method: 'POST', headers, body: delivery.body, redirect: 'manual', signal: controller.signal })
      status = res.status
      await res.body?.cancel().catch(() => undefined)
    } catch (err) {
      error = timedOut ? `timed out after ${opts.timeoutMs} ms` : controller.signal.aborted ? 'aborted: webhooks closed' : errorText(err)
    } finally {
      clearTimeout(timeout)
      delivery.controller = null
    }

    const ok = status !== null && status >= 200 && status < 300
    if (delivery.dropped) {
      // close() gave up on it while this attempt was in flight; it is already logged as dropped
      report(delivery, ok ? 'delivered' : 'failed', status, ok ? undefined : error ?? 'aborted: webhooks closed')
      return
    }
    const fields = { event: delivery.event, eventId: delivery.id, endpoint: endpoint.logUrl, attempt: delivery.attempts, status }
    if (ok) {
      report(delivery, 'delivered', status)
      log.debug(fields, 'webhook delivered')
      finish(delivery)
      return
    }
    const gone = status === 410
    if (gone || delivery.attempts >= opts.maxAttempts) {
      report(delivery, 'failed', status, error)
      const reason = gone ? 'endpoint answered 410 Gone' : `gave up after ${delivery.attempts} attempts`
      log.warn({ ...fields, error, reason }, 'webhook delivery failed')
      finish(delivery)
      return
    }
    report(delivery, 'retrying', status, error)
    const delayMs = retryDelayMs(delivery.attempts, opts.backoffMs, opts.maxBackoffMs)
    log.debug({ ...fields, error, retryInMs: Math.round(delayMs) }, 'webhook attempt failed, retrying')
    delivery.retryTimer = setTimeout(() => {
      delivery.retryTimer = null
      run(delivery)
    }, delayMs)
    delivery.retryTimer.unref()
  }

  function flushChange(document: string): void {
    const change = changes.get(document)
    if (!change) return
    changes.delete(document)
    if (change.timer) clearTimeout(change.timer)
    enqueue('document.changed', { document, updates: change.updates, firstChangeAt: change.firstChangeAt, lastChangeAt: change.lastChangeAt })
  }

  function recordChange(document: string, updates: number): void {
    const at = opts.now()
    let change = changes.get(document)
    if (!change) {
      change = { updates: 0, firstChangeAt: at, lastChangeAt: at, timer: null }
      changes.set(document, change)
    }
    if (change.timer) clearTimeout(change.timer)
    change.updates += updates
    change.lastChangeAt = at
    const delayMs = Math.max(0, Math.min(opts.debounceMs, change.firstChangeAt + opts.maxDebounceMs - at))
    change.timer = setTimeout(() => flushChange(document), delayMs)
    change.timer.unref()
  }

  /** At the deadline: nothing more is sent; queued, waiting and in-flight deliveries are dropped. */
  function stop(): void {
    stopped = true
    const dropped: { id: string; event: WebhookEvent; endpoint: string; attempts: number }[] = []
    for (const endpoint of endpoints) {
      logDrops(endpoint)
      for (const delivery of [...endpoint.queue, ...endpoint.active]) {
        delivery.dropped = true
        if (delivery.retryTimer) clearTimeout(delivery.retryTimer)
        delivery.retryTimer = null
        delivery.controller?.abort()
        dropped.push({ id: delivery.id, event: delivery.event, endpoint: endpoint.logUrl, attempts: delivery.attempts })
      }
      endpoint.queue.length = 0
      endpoint.active.clear()
    }
    if (dropped.length > 0) log.warn({ dropped: dropped.length, deliveries: dropped }, 'webhook deliveries dropped at close')
  }

  async function shutdown(deadlineMs: number): Promise<void> {
    for (const document of [...changes.keys()]) flushChange(document)
    if (pendingCount() > 0) {
      await new Promise<void>(resolve => {
        // ref'd on purpose: the caller awaits close(), so the process must live until it settles
        const deadline = setTimeout(done, deadlineMs)
        function done(): void {
          clearTimeout(deadline)
          idleWaiter = null
          resolve()
        }
        idleWaiter = done
      })
    }
    stop()
  }

  return {
    emit(event, data) {
      try {
        if (closing) {
          log.warn({ event }, 'webhook event dropped: webhooks are closed')
          return
        }
        if (!isWebhookEvent(event)) {
          log.warn({ event: String(event) }, 'webhook event dropped: unknown event')
          return
        }
        if (typeof data !== 'object' || data === null || typeof data.document !== 'string' || data.document === '') {
          log.warn({ event }, 'webhook event dropped: data.document must be a non-empty string')
          return
        }
        if (event === 'document.changed') {
          if (!endpoints.some(ep => ep.events.has(event))) return
          const updates = typeof data.updates === 'number' && Number.isFinite(data.updates) && data.updates >= 0 ? data.updates : 1
          recordChange(data.document, updates)
          return
        }
        // changes made before a delete are reported before it
        if (event === 'document.deleted') flushChange(data.document)
        enqueue(event, data)
      } catch (err) {
        log.error({ event: String(event), error: errorText(err) }, 'webhook emit failed')
      }
    },
    get pending() {
      return pendingCount()
    },
    close(deadlineMs = 5000) {
      if (!closing) {
        if (!isDelayMs(deadlineMs)) return Promise.reject(new TypeError(`close: deadlineMs must be a number of ms from 0 to ${MAX_TIMER_MS}`))
        closing = shutdown(deadlineMs)
      }
      return closing
    },
  }
}

/** The `x-concord-signature` value: `t=<timestampSec>,v1=<hex HMAC-SHA256(secret, "<timestampSec>.<body>")>`. */
export function signWebhook(secret: string, body: string, timestampSec: number): string {
  if (typeof secret !== 'string' || secret === '') throw new TypeError('signWebhook: secret must be a non-empty string')
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) throw new TypeError('signWebhook: timestampSec must be a non-negative integer')
  return `t=${timestampSec},v1=${hmacHex(secret, timestampSec, body)}`
}

/**
 * Checks an `x-concord-signature` header against the raw request body (the exact bytes received,
 * as a string; not re-serialised JSON). True when one of its v1 values matches and `t` is within
 * `toleranceSec` (default 300) of `nowSec` (default: the clock). Never throws.
 */
export function verifyWebhookSignature(
  secret: string, header: string, body: string, options: { toleranceSec?: number; nowSec?: number } = {},
): boolean {
  if (typeof secret !== 'string' || secret === '' || typeof header !== 'string' || typeof body !== 'string') return false
  const toleranceSec = options.toleranceSec ?? 300
  const nowSec = options.nowSec ?? Math.floor(Date.now() / 1000)
  let timestampSec: number | null = null
  const signatures: Buffer[] = []
  for (const part of header.split(',')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    const key = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    if (key === 't') {
      if (timestampSec !== null || !/^\d{1,15}$/.test(value)) return false
      timestampSec = Number(value)
    } else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) {
      signatures.push(Buffer.from(value.toLowerCase(), 'hex'))
    }
  }
  if (timestampSec === null || signatures.length === 0) return false
  if (!(Math.abs(nowSec - timestampSec) <= toleranceSec)) return false
  const expected = Buffer.from(hmacHex(secret, timestampSec, body), 'hex')
  let ok = false
  // compare against every value so the time taken does not say which one matched
  for (const signature of signatures) ok = timingSafeEqual(signature, expected) || ok
  return ok
}

/**
 * Wait before the attempt after `attemptsMade` failures: `backoffMs * 2^(attemptsMade - 1)` capped at
 * `maxBackoffMs`, times a random factor in [0.8, 1.2), and never more than `maxBackoffMs`.
 */
export function retryDelayMs(attemptsMade: number, backoffMs: number, maxBackoffMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxBackoffMs, backoffMs * 2 ** Math.max(0, attemptsMade - 1))
  return Math.min(maxBackoffMs, base * (0.8 + 0.4 * random()))
}

/** Looked up per call, so the global in use at send time is the one used. */
const globalFetch: typeof fetch = (input, init) => globalThis.fetch(input, init)

function hmacHex(secret: string, timestampSec: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex')
}

function isWebhookEvent(value: unknown): value is WebhookEvent {
  return (WEBHOOK_EVENTS as readonly unknown[]).includes(value)
}

function isDelayMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_TIMER_MS
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  // fetch reports network failures as "fetch failed" with the reason in `cause`
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : ''
  return detail ? `${err.message}: ${detail}` : err.message
}

function toEndpointState(endpoint: Readonly<Required<WebhookEndpoint>>): EndpointState {
  const url = new URL(endpoint.url)
  const authorization = url.username || url.password
    ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
    : null
  url.username = ''
  url.password = ''
  url.hash = ''
  const requestUrl = url.href
  return {
    requestUrl,
    logUrl: `${url.origin}${url.pathname}`,
    secret: endpoint.secret,
    authorization,
    events: new Set(endpoint.events),
    queue: [],
    active: new Set(),
    droppedUnlogged: 0,
    lastDropLogAt: -Infinity,
    dropLogTimer: null,
  }
}

interface ResolvedOptions {
  readonly endpoints: readonly Readonly<Required<WebhookEndpoint>>[]
  readonly logger: Logger
  readonly debounceMs: number
  readonly maxDebounceMs: number
  readonly maxAttempts: number
  readonly backoffMs: number
  readonly maxBackoffMs: number
  readonly timeoutMs: number
  readonly onAttempt: ((info: WebhookAttemptInfo) => void) | undefined
  readonly maxQueuedEvents: number
  readonly onDropped: ((info: { event: WebhookEvent; endpoint: string }) => void) | undefined
  readonly fetch: typeof fetch
  readonly now: () => number
}

function validateOptions(options: WebhooksOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('createWebhooks: options must be an object')
  if (!Array.isArray(options.endpoints)) throw new TypeError('createWebhooks: endpoints must be an array')
  const endpoints = options.endpoints.map((endpoint, i) => {
    const where = `createWebhooks: endpoints[${i}]`
    if (typeof endpoint !== 'object' || endpoint === null) throw new TypeError(`${where} must be an object`)
    let url: URL
    try {
      url = new URL(endpoint.url)
    } catch {
      throw new TypeError(`${where}.url is not a valid URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${where}.url must be http or https, got ${url.protocol}`)
    if (typeof endpoint.secret !== 'string' || endpoint.secret === '') throw new TypeError(`${where}.secret must be a non-empty string`)
    let events: WebhookEvent[] = [...WEBHOOK_EVENTS]
    if (endpoint.events !== undefined) {
      if (!Array.isArray(endpoint.events) || endpoint.events.length === 0) {
        throw new TypeError(`${where}.events must be a non-empty array (omit it for all events)`)
      }
      for (const event of endpoint.events) {
        if (!isWebhookEvent(event)) throw new TypeError(`${where}.events: unknown event ${JSON.stringify(event)} (known: ${WEBHOOK_EVENTS.join(', ')})`)
      }
      events = [...new Set(endpoint.events)]
    }
    return Object.freeze({ url: endpoint.url, secret: endpoint.secret, events: Object.freeze(events) as WebhookEvent[] })
  })
  const logger = options.logger
  if (typeof logger !== 'object' || logger === null || typeof logger.child !== 'function') throw new TypeError('createWebhooks: logger must be a pino logger')

  const delay = (name: string, value: number | undefined, fallback: number, min = 0): number => {
    const v = value ?? fallback
    if (!isDelayMs(v) || v < min) throw new TypeError(`createWebhooks: ${name} must be a number of ms from ${min} to ${MAX_TIMER_MS}, got ${String(value)}`)
    return v
  }
  const debounceMs = delay('debounceMs', options.debounceMs, 2000)
  const maxDebounceMs = delay('maxDebounceMs', options.maxDebounceMs, Math.max(30_000, debounceMs), debounceMs)
  const backoffMs = delay('backoffMs', options.backoffMs, 500)
  const maxBackoffMs = delay('maxBackoffMs', options.maxBackoffMs, Math.max(60_000, backoffMs), backoffMs)
  const timeoutMs = delay('timeoutMs', options.timeoutMs, 10_000, 1)
  const maxAttempts = options.maxAttempts ?? 8
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) throw new TypeError(`createWebhooks: maxAttempts must be an integer >= 1, got ${String(options.maxAttempts)}`)

  const maxQueuedEvents = options.maxQueuedEvents ?? 10_000
  if (!Number.isSafeInteger(maxQueuedEvents) || maxQueuedEvents < 1) throw new TypeError(`createWebhooks: maxQueuedEvents must be an integer >= 1, got ${String(options.maxQueuedEvents)}`)

  for (const name of ['onAttempt', 'onDropped', 'fetch', 'now'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new TypeError(`createWebhooks: ${name} must be a function`)
  }
  return Object.freeze({
    endpoints: Object.freeze(endpoints),
    logger,
    debounceMs,
    maxDebounceMs,
    maxAttempts,
    backoffMs,
    maxBackoffMs,
    timeoutMs,
    onAttempt: options.onAttempt,
    maxQueuedEvents,
    onDropped: options.onDropped,
    fetch: options.fetch ?? globalFetch,
    now: options.now ?? Date.now,
  })
}
