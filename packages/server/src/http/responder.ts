import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConcordError, ERROR_CODES, type ErrorCode, type ErrorCodeInfo } from '@concord/protocol'

/**
 * How every HTTP route answers: JSON bodies, error bodies, method checks, pages. One place, so
 * the routes cannot disagree on headers or on the status of an error code.
 *
 * The status of an error comes only from the protocol's error table (`httpStatus` of
 * ERROR_CODES, docs/errors.md). A code the table gives no HTTP status refuses the request as it
 * stands: 400.
 */

/** Sent with every page and file (the dashboard, the served app): no sniffing, no referrer, no framing. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

/** Binary values (a version's bytes, a Y.Array of bytes) become { base64 } in JSON. */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') } : value
}

/** A JSON body (never cached). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, replacer)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

/** A body of bytes, as `application/octet-stream` unless told (never cached). */
export function sendBytes(res: ServerResponse, bytes: Uint8Array, type = 'application/octet-stream'): void {
  res.writeHead(200, { 'content-type': type, 'content-length': bytes.length, 'cache-control': 'no-store' })
  res.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
}

/** A text body (never cached). */
export function sendText(res: ServerResponse, text: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

/** An HTML page with its Content-Security-Policy and the security headers; HEAD gets the headers only. */
export function sendPage(req: IncomingMessage, res: ServerResponse, html: string, csp: string): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), 'cache-control': 'no-store',
    'content-security-policy': csp,
    ...SECURITY_HEADERS,
  })
  res.end(req.method === 'HEAD' ? undefined : html)
}

/** The HTTP status of an error code, from the protocol's error table (400 when it gives none). */
export function statusOf(code: ErrorCode): number {
  const info: ErrorCodeInfo = ERROR_CODES[code]
  return info.httpStatus ?? 400
}

/** An error answer: `{ error: code, message }` with the code's status. */
export function sendError(res: ServerResponse, err: ConcordError): void {
  sendJson(res, statusOf(err.code), { error: err.code, message: err.message })
}

/** An error answer without a message: `{ error: code }` with the code's status. */
export function sendCode(res: ServerResponse, code: ErrorCode, extra: Record<string, unknown> = {}): void {
  sendJson(res, statusOf(code), { ...extra, error: code })
}

/**
 * Whether the request uses one of `methods`. When it does not, the response gets the Allow
 * header; answering the 405 is the caller's (`requireMethod` throws it).
 */
export function methodAllowed(req: IncomingMessage, res: ServerResponse, methods: readonly string[]): boolean {
  if (methods.includes(req.method ?? '')) return true
  if (!res.headersSent) res.setHeader('allow', methods.join(', '))
  return false
}

/** Throws CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED (and sets Allow) unless the request uses one of `methods`. */
export function requireMethod(req: IncomingMessage, res: ServerResponse, ...methods: string[]): void {
  if (!methodAllowed(req, res, methods)) throw new ConcordError('CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED', `use ${methods.join(' or ')}`)
}

/**
 * Answer a request that failed: a ConcordError with its status; anything else becomes the error
 * `unexpected` makes of it (which logs it). Once an answer has started, the socket is destroyed
 * instead: the client sees a broken response, never a wrong one.
 */
export function answerFailure(res: ServerResponse, err: unknown, unexpected: (err: unknown) => ConcordError): void {
  const e = err instanceof ConcordError ? err : unexpected(err)
  if (res.headersSent) res.destroy()
  else sendError(res, e)
}
