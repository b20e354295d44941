// The options of `createWebhooks`: their types and their validation (a bad option fails at
// start-up with a ConfigError, a TypeError with a code).
import type { Logger } from 'pino'
import { ConfigError } from '../config/server-config.js'

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


/** setTimeout fires at once for larger delays. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** Looked up per call, so the global in use at send time is the one used. */
const globalFetch: typeof fetch = (input, init) => globalThis.fetch(input, init)

export function isWebhookEvent(value: unknown): value is WebhookEvent {
  return (WEBHOOK_EVENTS as readonly unknown[]).includes(value)
}

export function isDelayMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_TIMER_MS
}

export interface ResolvedOptions {
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

export function validateOptions(options: WebhooksOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigError('createWebhooks: options must be an object')
  if (!Array.isArray(options.endpoints)) throw new ConfigError('createWebhooks: endpoints must be an array')
  const endpoints = options.endpoints.map((endpoint, i) => {
    const where = `createWebhooks: endpoints[${i}]`
    if (typeof endpoint !== 'object' || endpoint === null) throw new ConfigError(`${where} must be an object`)
    let url: URL
    try {
      url = new URL(endpoint.url)
    } catch {
      throw new ConfigError(`${where}.url is not a valid URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${where}.url must be http or https, got ${url.protocol}`)
    if (typeof endpoint.secret !== 'string' || endpoint.secret === '') throw new ConfigError(`${where}.secret must be a non-empty string`)
    let events: WebhookEvent[] = [...WEBHOOK_EVENTS]
    if (endpoint.events !== undefined) {
      if (!Array.isArray(endpoint.events) || endpoint.events.length === 0) {
        throw new ConfigError(`${where}.events must be a non-empty array (omit it for all events)`)
      }
      for (const event of endpoint.events) {
        if (!isWebhookEvent(event)) throw new ConfigError(`${where}.events: unknown event ${JSON.stringify(event)} (known: ${WEBHOOK_EVENTS.join(', ')})`)
      }
      events = [...new Set(endpoint.events)]
    }
    return Object.freeze({ url: endpoint.url, secret: endpoint.secret, events: Object.freeze(events) as WebhookEvent[] })
  })
  const logger = options.logger
  if (typeof logger !== 'object' || logger === null || typeof logger.child !== 'function') throw new ConfigError('createWebhooks: logger must be a pino logger')

  const delay = (name: string, value: number | undefined, fallback: number, min = 0): number => {
    const v = value ?? fallback
    if (!isDelayMs(v) || v < min) throw new ConfigError(`createWebhooks: ${name} must be a number of ms from ${min} to ${MAX_TIMER_MS}, got ${String(value)}`)
    return v
  }
  const debounceMs = delay('debounceMs', options.debounceMs, 2000)
  const maxDebounceMs = delay('maxDebounceMs', options.maxDebounceMs, Math.max(30_000, debounceMs), debounceMs)
  const backoffMs = delay('backoffMs', options.backoffMs, 500)
  const maxBackoffMs = delay('maxBackoffMs', options.maxBackoffMs, Math.max(60_000, backoffMs), backoffMs)
  const timeoutMs = delay('timeoutMs', options.timeoutMs, 10_000, 1)
  const maxAttempts = options.maxAttempts ?? 8
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) throw new ConfigError(`createWebhooks: maxAttempts must be an integer >= 1, got ${String(options.maxAttempts)}`)

  const maxQueuedEvents = options.maxQueuedEvents ?? 10_000
  if (!Number.isSafeInteger(maxQueuedEvents) || maxQueuedEvents < 1) throw new ConfigError(`createWebhooks: maxQueuedEvents must be an integer >= 1, got ${String(options.maxQueuedEvents)}`)

  for (const name of ['onAttempt', 'onDropped', 'fetch', 'now'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new ConfigError(`createWebhooks: ${name} must be a function`)
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
