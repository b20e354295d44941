import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConcordError } from '@concord/protocol'
import type { CorsConfig } from '../config/cors-config.js'
import { sendCode, sendError } from './responder.js'

/** The request headers the API reads from a browser: the bearer token and the body's type. */
export const CORS_ALLOW_HEADERS = 'authorization, content-type'

/**
 * The response headers a page may read beyond the CORS-safelisted ones (content-type,
 * content-length, cache-control, ...): a 429's Retry-After and a 405's Allow.
 */
export const CORS_EXPOSE_HEADERS = 'retry-after, allow'

/**
 * Cross-origin access to the public HTTP API (the routes under /v1/). Origins are compared exactly
 * with the `Origin` header (a string that merely starts or ends with an allowed origin is another
 * origin). An allowed origin gets `Access-Control-Allow-Origin` echoed (or `*` when every origin
 * is allowed) and `Vary: Origin`; credentials are never allowed (the API takes bearer tokens, not
 * cookies). Another origin gets no CORS headers, so its page cannot read the answer, and its
 * preflight is refused with 403 CONCORD_ERR_HTTP_ORIGIN_NOT_ALLOWED.
 */
export class CorsPolicy {
  readonly #any: boolean
  readonly #origins: ReadonlySet<string>
  readonly #maxAge: string

  constructor(config: CorsConfig) {
    this.#any = config.origins === '*'
    this.#origins = new Set(config.origins === '*' ? [] : config.origins)
    this.#maxAge = String(config.maxAgeSeconds)
  }

  /** The `Access-Control-Allow-Origin` for a request's `Origin`, or null when it is not allowed. */
  allowOrigin(origin: string | undefined): string | null {
    if (origin === undefined) return null
    if (this.#any) return '*'
    return this.#origins.has(origin) ? origin : null
  }

  /**
   * Applies the policy to a request for one of its routes, whose methods are `methods` (null: no
   * such route). A preflight is answered here (true). Any other request gets its CORS headers set
   * on `res` and goes on to its route (false).
   */
  handle(req: IncomingMessage, res: ServerResponse, methods: readonly string[] | null): boolean {
    const origin = req.headers.origin
    const allowed = this.allowOrigin(origin)
    // with a list, the answer depends on Origin (a shared cache must not hand one origin's to another)
    if (!this.#any) res.setHeader('vary', 'Origin')
    const preflight = req.method === 'OPTIONS' && origin !== undefined && req.headers['access-control-request-method'] !== undefined
    if (preflight) {
      if (allowed === null) {
        sendError(res, new ConcordError('CONCORD_ERR_HTTP_ORIGIN_NOT_ALLOWED', `the origin ${origin} may not call this server's API (cors origins)`))
        return true
      }
      res.setHeader('access-control-allow-origin', allowed)
      if (methods === null) {
        sendCode(res, 'CONCORD_ERR_HTTP_NOT_FOUND')
        return true
      }
      res.writeHead(204, {
        'access-control-allow-methods': methods.join(', '),
        'access-control-allow-headers': CORS_ALLOW_HEADERS,
        'access-control-max-age': this.#maxAge,
      })
      res.end()
      return true
    }
    if (allowed !== null) {
      res.setHeader('access-control-allow-origin', allowed)
      res.setHeader('access-control-expose-headers', CORS_EXPOSE_HEADERS)
    }
    return false
  }
}
