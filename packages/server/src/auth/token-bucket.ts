/**
 * A token bucket, the budget of what one caller may do per second: the gateway's per-socket
 * message and byte limits and the HTTP API's per-caller limit are both made of these.
 */
/** `rate` tokens per second, holding at most `burst`. */
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
