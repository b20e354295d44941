import { randomUUID } from 'node:crypto'
import { isDelayMs, isWebhookEvent, MAX_TIMER_MS, validateOptions, type Webhooks, type WebhooksOptions, type WebhookEndpoint, type WebhookEvent, type WebhookAttemptInfo, type WebhookAttemptResult } from './webhook-config.js'
import { signWebhook } from './webhook-signature.js'

export { WEBHOOK_EVENTS, type WebhookEvent, type WebhookEndpoint, type WebhookAttemptResult, type WebhookAttemptInfo, type WebhooksOptions, type Webhooks } from './webhook-config.js'
export { signWebhook, verifyWebhookSignature } from './webhook-signature.js'

/**
 * Webhook sender for the history feature: signed JSON POSTs, one delivery per endpoint per event,
 * retried with exponential backoff, `document.changed` debounced per document.
 *
 * Receivers verify `x-concord-signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
 * with `verifyWebhookSignature`. Deliveries are at-least-once and unordered: a receiver
 * deduplicates by `id` (the same on every retry) and orders by `createdAt`.
 */

/** Deliveries of one endpoint in progress at once (including those waiting to retry); others queue. */
const MAX_CONCURRENT_PER_ENDPOINT = 4
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

/**
 * Wait before the attempt after `attemptsMade` failures: `backoffMs * 2^(attemptsMade - 1)` capped at
 * `maxBackoffMs`, times a random factor in [0.8, 1.2), and never more than `maxBackoffMs`.
 */
export function retryDelayMs(attemptsMade: number, backoffMs: number, maxBackoffMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxBackoffMs, backoffMs * 2 ** Math.max(0, attemptsMade - 1))
  return Math.min(maxBackoffMs, base * (0.8 + 0.4 * random()))
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
