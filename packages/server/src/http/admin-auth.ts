import type { IncomingMessage } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import type { AdminAuthDeps } from './http-deps.js'

/** Who called: the static admin token (every tenant) or an admin JWT (its tenant). */
export interface AdminCaller {
  tenant: string | null
  /** The admin's user id (a JWT's sub), recorded as the author of server-side updates. */
  userId: string | null
}

/** Whether two secrets are equal, compared in constant time (only a length difference shows). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** The admin token or an admin JWT (not revoked), or null. */
export async function authenticateAdmin(req: IncomingMessage, opts: AdminAuthDeps): Promise<AdminCaller | null> {
  const header = req.headers.authorization ?? ''
  const m = /^Bearer (.+)$/.exec(header)
  if (m === null) return null
  const presented = m[1]!
  if (opts.adminToken !== null && sameSecret(presented, opts.adminToken)) return { tenant: null, userId: null }
  if (opts.tokens === null) return null
  try {
    const verified = await (await opts.tokens).verify(presented)
    if (verified.claims.admin !== true) return null
    if (opts.access.revoked(verified) !== null) return null
    return { tenant: verified.tenant, userId: verified.userId }
  } catch {
    return null
  }
}
