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

  /** Take `n` tokens if there are enough; otherwise take none and return false. */
  take(n: number, now = Date.now()): boolean {
    const elapsed = now - this.#at
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#rate) / 1000)
      this.#at = now
    }
    if (this.#tokens < n) return false
    this.#tokens -= n
    return true
  }
}

export interface RateLimits {
  messagesPerSecond: number
  messagesBurst: number
  bytesPerSecond: number
  bytesBurst: number
  /** A socket refused without a break (gaps under a second) for this long is closed. */
  closeAfterMs: number
}

export type RateVerdict = 'ok' | 'refuse' | 'close'

/**
 * Per-socket limits on messages and bytes. A message over either limit is
 * refused (the caller reports it with a coded error); a socket that keeps
 * going over for `closeAfterMs` is to be closed. Refusal reports are
 * themselves limited to a few per second, with a count of the rest.
 */
export class SocketRateLimiter {
  readonly #messages: TokenBucket
  readonly #bytes: TokenBucket
  readonly #closeAfterMs: number
  #floodStart = 0
  #lastRefusal = 0
  #lastReport = 0
  /** Refusals not reported individually since the last report. */
  unreported = 0
  /** All refusals on this socket. */
  refused = 0

  constructor(limits: RateLimits) {
    this.#messages = new TokenBucket(limits.messagesPerSecond, limits.messagesBurst)
    this.#bytes = new TokenBucket(limits.bytesPerSecond, limits.bytesBurst)
    this.#closeAfterMs = limits.closeAfterMs
  }

  check(bytes: number, now = Date.now()): RateVerdict {
    // a message is taken from both buckets or from neither
    if (this.#messages.take(1, now)) {
      if (this.#bytes.take(bytes, now)) {
        if (now - this.#lastRefusal > 1_000) this.#floodStart = 0
        return 'ok'
      }
    }
    this.refused++
    if (this.#floodStart === 0 || now - this.#lastRefusal > 1_000) this.#floodStart = now
    this.#lastRefusal = now
    return now - this.#floodStart >= this.#closeAfterMs ? 'close' : 'refuse'
  }

  /** Whether a refusal should be reported now (at most 10 per second); otherwise it is counted. */
  shouldReport(now = Date.now()): boolean {
    if (now - this.#lastReport >= 100) {
      this.#lastReport = now
      return true
    }
    this.unreported++
    return false
  }
}
