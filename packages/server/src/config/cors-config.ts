// Which browser origins may call the HTTP API (CORS): the option as users give it, the validated
// value the server runs with, and the check of one origin. Values only; http/cors.ts answers.

/** `cors` of `createServer` (`--cors-origin`, `CONCORD_CORS_ORIGINS`). */
export interface CorsOptions {
  /**
   * The origins whose pages may call the API, each exactly as a browser sends it in `Origin`:
   * scheme, host and port, no path (`https://app.example.com`, `http://localhost:5173`). Or `'*'`:
   * any origin (the answers then say `Access-Control-Allow-Origin: *`).
   */
  origins: readonly string[] | '*'
  /** How long a browser may keep a preflight's answer (default 7200: Chromium's cap; Firefox keeps up to 86400). */
  maxAgeSeconds?: number
}

/** What the server runs with: validated, frozen. */
export interface CorsConfig {
  readonly origins: readonly string[] | '*'
  readonly maxAgeSeconds: number
}

export const CORS_MAX_AGE_SECONDS_DEFAULT = 7_200

const SERIALIZED = /^([a-z][a-z0-9+.-]*):\/\/([^/?#\\@\s]+)$/i

/**
 * Why `text` is not an origin as a browser sends it in the `Origin` header, or null when it is one.
 * Matching is by exact string, so a list entry must be in that form: lower case, no default port,
 * no path or trailing slash, no user.
 */
export function originProblem(text: string): string | null {
  if (text === 'null') return 'the origin "null" (sandboxed frames, file: pages) cannot be allowed: any page can send it'
  let url: URL | null = null
  try {
    url = new URL(text)
  } catch { /* reported below */ }
  const m = SERIALIZED.exec(text)
  if (m === null || url === null) {
    const hint = url !== null && url.origin !== 'null' ? `: use ${url.origin}` : ' (e.g. http://localhost:5173)'
    return `${JSON.stringify(text)} is not an origin: give scheme://host[:port] with nothing after it, as a browser sends it${hint}`
  }
  const scheme = m[1]!.toLowerCase()
  // http and https have one serialization (lower case, punycode, no default port); another scheme
  // (capacitor://localhost, tauri://localhost) is compared as written
  const canonical = scheme === 'http' || scheme === 'https' ? url.origin : `${url.protocol}//${url.host}`
  if (canonical !== text) return `${JSON.stringify(text)} is not written as a browser sends it: use ${canonical}`
  return null
}

/** Validate and freeze the option; a problem is thrown as `fail(message)` (a ConfigError, a usage error). */
export function resolveCorsConfig(options: CorsOptions, fail: (message: string) => Error): CorsConfig {
  if (options === null || typeof options !== 'object') throw fail('option cors must be { origins: [...] | \'*\', maxAgeSeconds? }')
  const maxAgeSeconds = options.maxAgeSeconds ?? CORS_MAX_AGE_SECONDS_DEFAULT
  if (!Number.isInteger(maxAgeSeconds) || maxAgeSeconds < 0) throw fail(`option cors.maxAgeSeconds must be an integer of at least 0, got ${String(options.maxAgeSeconds)}`)
  if (options.origins === '*') return Object.freeze({ origins: '*', maxAgeSeconds })
  if (!Array.isArray(options.origins)) throw fail('option cors.origins must be a list of origins or \'*\'')
  if (options.origins.length === 0) throw fail('option cors.origins is empty: list the origins allowed, or leave cors out to send no CORS headers')
  for (const origin of options.origins as unknown[]) {
    if (typeof origin !== 'string') throw fail(`option cors.origins holds ${JSON.stringify(origin)}, not a string`)
    if (origin === '*') throw fail('option cors.origins: \'*\' allows every origin, give it alone (origins: \'*\'), not in a list')
    const problem = originProblem(origin)
    if (problem !== null) throw fail(`option cors.origins: ${problem}`)
  }
  return Object.freeze({ origins: Object.freeze([...new Set(options.origins)]), maxAgeSeconds })
}
