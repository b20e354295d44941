/**
 * Times kept by every connection are milliseconds since this module loaded: a small integer,
 * which V8 keeps in an object's field as it is. A time since 1970 does not fit in one, and each
 * field holding one costs a connection a 16-byte number box. (After 24 days of uptime the times
 * no longer fit either, and new connections' fields are boxed as before.)
 */
export const CLOCK_EPOCH = Date.now()

/** Milliseconds since `CLOCK_EPOCH`. */
export function clockNow(): number {
  return Date.now() - CLOCK_EPOCH
}
