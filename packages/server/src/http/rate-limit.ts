import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ErrorCode } from '@concord/protocol'
import { clientAddress } from '../auth/client-address.js'
import { sendJson, statusOf } from './responder.js'
import { TokenBucket } from '../auth/token-bucket.js'

export interface HttpRateLimitOptions {
  /** Tokens each caller gets back per second; a cheap request costs 1. */
  requestsPerSecond: number
  /** Tokens a caller may hold (the burst). At least `expensiveRequestCost`. */
  requestsBurst: number
  /** What a request that builds or stores a whole document costs. */
  expensiveRequestCost: number
  /** Callers whose buckets are kept; beyond it the least recently seen is forgotten. */
  maxCallers: number
  /** See ServerOptions.trustProxyHops: the client address of a caller without a user id. */
  trustProxyHops: number
  /** Called with the error code of every refusal (the refusal counter of /metrics). */
  onRefused?: (code: string) => void
}

/** Who a request is charged to: its user (per tenant), or its address when it has no user. */
export interface RateCaller {
  userId: string | null
  tenant?: string | null
}

/**
 * Per-caller token buckets for the HTTP API. A caller is an authenticated user (per tenant), or
 * the client address when there is no user id (no authentication, the static admin token, a share
 * link). A cheap request costs 1 token; one that builds or stores a whole document (creating a
 * version, restore, diff, ...) costs `expensiveRequestCost`.
 *
 * The map of buckets is bounded: it keeps the `maxCallers` most recently seen callers and forgets
 * the least recently seen. A forgotten bucket that had not refilled yet starts full again, which
 * only happens when more than `maxCallers` callers were active within one refill period
 * (`requestsBurst / requestsPerSecond` seconds).
 */
export class HttpRateLimiter {
  readonly #o: HttpRateLimitOptions
  /** In order of last use: the first entry is the least recently seen caller. */
  readonly #buckets = new Map<string, TokenBucket>()

  constructor(options: HttpRateLimitOptions) {
    if (options.requestsBurst < options.expensiveRequestCost) throw new TypeError('the HTTP request burst must be at least the cost of an expensive request')
    this.#o = options
  }

  /** Callers tracked now (at most `maxCallers`). */
  get size(): number {
    return this.#buckets.size
  }

  /**
   * Take `cost` tokens from `key`'s bucket. When there are not enough, nothing is taken and the
   * answer says how many whole seconds to wait: the time `cost` tokens take to come back from
   * an empty bucket, so a caller that waits that long (and sends nothing meanwhile) gets through.
   */
  take(key: string, cost: number, now = Date.now()): { ok: true } | { ok: false; retryAfterSeconds: number } {
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = new TokenBucket(this.#o.requestsPerSecond, this.#o.requestsBurst, now)
      while (this.#buckets.size >= this.#o.maxCallers) this.#buckets.delete(this.#buckets.keys().next().value!)
    } else {
      this.#buckets.delete(key)
    }
    this.#buckets.set(key, bucket)
    if (bucket.take(cost, now)) return { ok: true }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(cost / this.#o.requestsPerSecond)) }
  }

  /** The bucket key of a caller. */
  keyOf(req: IncomingMessage, caller: RateCaller): string {
    return caller.userId !== null
      ? `user ${JSON.stringify([caller.tenant ?? null, caller.userId])}`
      : `address ${clientAddress(req, this.#o.trustProxyHops)}`
  }

  /**
   * Charge a request to its caller. Over the limit, answer 429 with Retry-After and
   * CONCORD_ERR_LIMIT_HTTP_RATE, and return false: the request must not be served.
   */
  admit(req: IncomingMessage, res: ServerResponse, caller: RateCaller, expensive: boolean): boolean {
    const cost = expensive ? this.#o.expensiveRequestCost : 1
    const verdict = this.take(this.keyOf(req, caller), cost)
    if (verdict.ok) return true
    const code = 'CONCORD_ERR_LIMIT_HTTP_RATE' satisfies ErrorCode
    this.#o.onRefused?.(code)
    res.setHeader('retry-after', String(verdict.retryAfterSeconds))
    // a request body not read is discarded by node's HTTP server once the answer is sent
    sendJson(res, statusOf(code), {
      error: code,
      message: `too many requests: retry after ${verdict.retryAfterSeconds} s (each caller gets ${this.#o.requestsPerSecond} requests per second, ` +
        `bursts of ${this.#o.requestsBurst}; this request counts as ${cost})`,
      retryAfterSeconds: verdict.retryAfterSeconds,
    })
    return false
  }
}
