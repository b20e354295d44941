export interface BackoffOptions {
  /** First retry delay cap. */
  minDelayMs?: number
  /** Largest delay. */
  maxDelayMs?: number
}

/** Exponential backoff with full jitter: a random delay in [0, min(max, min * 2^attempt)]. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const min = options.minDelayMs ?? 250
  const max = options.maxDelayMs ?? 10_000
  const cap = Math.min(max, min * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * cap)
}
