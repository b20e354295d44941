import type { Log } from './connection-log.js'
import { ConcordError } from '@concord/protocol'
import type { Authenticate, AuthenticateContext, AuthResult } from './options.js'

const ROLES = new Set(['read', 'write', 'admin'])

/**
 * Run the authenticate hook with a deadline. A `ConcordError` it throws is
 * passed on; any other failure is logged and refused as CONCORD_ERR_AUTH_DENIED
 * (the message does not leak the hook's internals).
 */
export async function authenticateWithTimeout(
  authenticate: Authenticate,
  context: AuthenticateContext,
  timeoutMs: number,
  log: Pick<Log, 'error'>,
): Promise<AuthResult> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConcordError('CONCORD_ERR_AUTH_TIMEOUT', `authentication took longer than ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    const result = await Promise.race([Promise.resolve().then(() => authenticate(context)), timeout])
    if (result === null || typeof result !== 'object' || !ROLES.has(result.role)) {
      throw new TypeError('authenticate must return { userId, role } with role read, write or admin')
    }
    return result
  } catch (err) {
    if (err instanceof ConcordError) throw err
    log.error({ err, document: context.document }, 'authenticate hook failed')
    throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'authentication failed', { cause: err })
  } finally {
    clearTimeout(timer)
  }
}
