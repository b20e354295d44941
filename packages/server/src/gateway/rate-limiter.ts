import { TokenBucket } from '../auth/token-bucket.js'
import { sinceClockEpoch } from './clock.js'

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
 * any other message), taken from both budgets or from neither. What happens to
 * a message over budget is the caller's business (`ReadThrottle` keeps it and
 * reads the socket more slowly).
 *
 * Two token buckets (`TokenBucket`'s arithmetic), kept as three numbers on this object: one of
 * these lives as long as its socket, and the limits are the server's, shared by every socket
 * (two bucket objects and a copy of the limits cost an idle connection about 250 bytes).
 */
export class SocketRateLimiter<Limits extends RateLimits = RateLimits> {
  /** The server's limits (shared by every socket). */
  protected readonly limits: Limits
  #messages: number
  #bytes: number
  /** When both budgets were last refilled (`sinceClockEpoch`). */
  #at: number

  constructor(limits: Limits, now = Date.now()) {
    this.limits = limits
    this.#messages = limits.messagesBurst
    this.#bytes = limits.bytesBurst
    this.#at = sinceClockEpoch(now)
  }

  #refill(at: number): void {
    const now = sinceClockEpoch(at)
    const elapsed = now - this.#at
    if (elapsed > 0) {
      const l = this.limits
      this.#messages = Math.min(l.messagesBurst, this.#messages + (elapsed * l.messagesPerSecond) / 1000)
      this.#bytes = Math.min(l.bytesBurst, this.#bytes + (elapsed * l.bytesPerSecond) / 1000)
      this.#at = now
    }
  }

  /** Charge one message of `bytes` if both budgets allow it; otherwise charge nothing and return false. */
  take(bytes: number, now = Date.now()): boolean {
    this.#refill(now)
    if (this.#messages < 1 || this.#bytes < bytes) return false
    this.#messages -= 1
    this.#bytes -= bytes
    return true
  }

  /** Milliseconds until a message of `bytes` fits both budgets (Infinity: never, it is above the byte burst). */
  waitMs(bytes: number, now = Date.now()): number {
    this.#refill(now)
    const l = this.limits
    return Math.max(wait(this.#messages, 1, l.messagesBurst, l.messagesPerSecond), wait(this.#bytes, bytes, l.bytesBurst, l.bytesPerSecond))
  }
}

/** `TokenBucket.waitMs`: milliseconds until `n` of `tokens` are there at `rate` per second. */
function wait(tokens: number, n: number, burst: number, rate: number): number {
  if (tokens >= n) return 0
  if (n > burst) return Infinity
  return Math.ceil(((n - tokens) * 1000) / rate)
}
