import { TokenBucket } from '../auth/token-bucket.js'

export { TokenBucket }

export interface RateLimits {
  messagesPerSecond: number
  messagesBurst: number
  bytesPerSecond: number
  bytesBurst: number
}

/**
 * Per-socket budgets of messages and bytes. Every WebSocket message a socket
 * sends costs one message and its length in bytes (a CHUNK piece as much as
 * any other message), taken from both buckets or from neither. What happens to
 * a message over budget is the caller's business (`ReadThrottle` keeps it and
 * reads the socket more slowly).
 */
export class SocketRateLimiter {
  readonly #messages: TokenBucket
  readonly #bytes: TokenBucket

  constructor(limits: RateLimits) {
    this.#messages = new TokenBucket(limits.messagesPerSecond, limits.messagesBurst)
    this.#bytes = new TokenBucket(limits.bytesPerSecond, limits.bytesBurst)
  }

  /** Charge one message of `bytes` if both budgets allow it; otherwise charge nothing and return false. */
  take(bytes: number, now = Date.now()): boolean {
    if (!this.#messages.has(1, now) || !this.#bytes.has(bytes, now)) return false
    this.#messages.take(1, now)
    this.#bytes.take(bytes, now)
    return true
  }

  /** Milliseconds until a message of `bytes` fits both budgets. */
  waitMs(bytes: number, now = Date.now()): number {
    return Math.max(this.#messages.waitMs(1, now), this.#bytes.waitMs(bytes, now))
  }
}
