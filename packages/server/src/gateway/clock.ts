/**
 * Times kept by every connection are milliseconds since this module loaded: a small integer,
 * which V8 keeps in an object's field as it is. A time since 1970 does not fit in one, and each
 * field holding one costs a connection a 16-byte number box. (After 24 days of uptime the times
 * no longer fit either, and new connections' fields are boxed as before.)
 */
export const CLOCK_EPOCH = Date.now()

/** Milliseconds since `CLOCK_EPOCH`. */
export function clockNow(): number {
  return sinceClockEpoch(Date.now())
}

/**
 * `at` (ms since 1970) as ms since `CLOCK_EPOCH`. The difference of two such times is a double to
 * V8 even when it is a whole number, and a field that once holds a double boxes it: `| 0` makes
 * it a small integer, when that is the same number.
 */
export function sinceClockEpoch(at: number): number {
  const ms = at - CLOCK_EPOCH
  const small = ms | 0
  return small === ms ? small : ms
}
