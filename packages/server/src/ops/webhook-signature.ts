import { createHmac, timingSafeEqual } from 'node:crypto'

/** The `x-concord-signature` value: `t=<timestampSec>,v1=<hex HMAC-SHA256(secret, "<timestampSec>.<body>")>`. */
export function signWebhook(secret: string, body: string, timestampSec: number): string {
  if (typeof secret !== 'string' || secret === '') throw new TypeError('signWebhook: secret must be a non-empty string')
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) throw new TypeError('signWebhook: timestampSec must be a non-negative integer')
  return `t=${timestampSec},v1=${hmacHex(secret, timestampSec, body)}`
}

/**
 * Checks an `x-concord-signature` header against the raw request body (the exact bytes received,
 * as a string; not re-serialised JSON). True when one of its v1 values matches and `t` is within
 * `toleranceSec` (default 300) of `nowSec` (default: the clock). Never throws.
 */
export function verifyWebhookSignature(
  secret: string, header: string, body: string, options: { toleranceSec?: number; nowSec?: number } = {},
): boolean {
  if (typeof secret !== 'string' || secret === '' || typeof header !== 'string' || typeof body !== 'string') return false
  const toleranceSec = options.toleranceSec ?? 300
  const nowSec = options.nowSec ?? Math.floor(Date.now() / 1000)
  let timestampSec: number | null = null
  const signatures: Buffer[] = []
  for (const part of header.split(',')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    const key = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    if (key === 't') {
      if (timestampSec !== null || !/^\d{1,15}$/.test(value)) return false
      timestampSec = Number(value)
    } else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) {
      signatures.push(Buffer.from(value.toLowerCase(), 'hex'))
    }
  }
  if (timestampSec === null || signatures.length === 0) return false
  if (!(Math.abs(nowSec - timestampSec) <= toleranceSec)) return false
  const expected = Buffer.from(hmacHex(secret, timestampSec, body), 'hex')
  let ok = false
  // compare against every value so the time taken does not say which one matched
  for (const signature of signatures) ok = timingSafeEqual(signature, expected) || ok
  return ok
}

function hmacHex(secret: string, timestampSec: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex')
}
