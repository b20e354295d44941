/** A token bucket: `rate` tokens per second, holding at most `burst`. */
export class TokenBucket {
  readonly #rate: number
  readonly #burst: number
  #tokens: number
  #at: number

  constructor(rate: number, burst: number, now = Date.now()) {
    this.#rate = rate
    this.#burst = burst
    this.#tokens = burst
    this.#at = now
  }

  #refill(now: number): void {
    const elapsed = now - this.#at
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#rate) / 1000)
      this.#at = now
    }
  }

  /** Whether `n` tokens are there now. */
  has(n: number, now = Date.now()): boolean {
    this.#refill(now)
    return this.#tokens >= n
  }

  /** Take `n` tokens if there are enough; otherwise take none and return false. */
  take(n: number, now = Date.now()): boolean {
    if (!this.has(n, now)) return false
    this.#tokens -= n
    return true
  }

  /** Milliseconds until `n` tokens are there (0: now; Infinity: never, `n` is above the burst). */
  waitMs(n: number, now = Date.now()): number {
    this.#refill(now)
    if (this.#tokens >= n) return 0
    if (n > this.#burst) return Infinity
    return Math.ceil(((n - this.#tokens) * 1000) / this.#rate)
  }
}

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
