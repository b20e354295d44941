/**
 * WebSocket close codes used by Concord.
 *
 * Standard codes where they fit (RFC 6455 section 7.4.1), then two private bands:
 * - 44xx: permanent refusal. The client must not reconnect blindly (fix the token,
 *   the document name, the protocol version first).
 * - 45xx: transient. The client reconnects with backoff.
 *
 * The close reason is always the machine-readable error code (see `errors.ts`).
 */
export const CLOSE_CODES = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  BAD_REQUEST: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  UNSUPPORTED_VERSION: 4406,
  TOO_MANY_DOCUMENTS: 4409,
  TRANSIENT: 4500,
  STORAGE_UNAVAILABLE: 4503,
  HANDSHAKE_TIMEOUT: 4508,
  RATE_LIMITED: 4529,
} as const

export type CloseCode = (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES]

/** How a client should react to a close code. */
export type CloseCodeClass = 'normal' | 'permanent' | 'transient'

/**
 * Classify a close code the way a reconnecting client must:
 * 1000 is a deliberate close, 44xx (and 1002, 1003, 1008) are permanent,
 * everything else (1001, 1006, 1009, 1011, 1013, 45xx, unknown) is transient.
 */
export function classifyCloseCode(code: number): CloseCodeClass {
  if (code === CLOSE_CODES.NORMAL) return 'normal'
  if (code >= 4400 && code < 4500) return 'permanent'
  if (code === CLOSE_CODES.PROTOCOL_ERROR || code === CLOSE_CODES.UNSUPPORTED_DATA || code === CLOSE_CODES.POLICY_VIOLATION) {
    return 'permanent'
  }
  return 'transient'
}
