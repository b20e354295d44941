import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConcordError, documentNameProblem } from '@concord/protocol'
import { mintToken } from '../auth/jwt.js'
import { inTenant, isRole } from '../auth/patterns.js'
import type { RoleOverride } from '../auth/access-control.js'

import { readJsonObject } from './body.js'
import { routeDocuments } from './admin-documents.js'
import type { AdminDeps } from './http-deps.js'
import { authenticateAdmin, type AdminCaller } from './admin-auth.js'
import { answerFailure, requireMethod, sendError, sendJson } from './responder.js'

type Caller = AdminCaller

function str(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v === '') throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', `${key} must be a non-empty string`)
  return v
}

/** The tenant a request acts on: an admin JWT's own; the static token names it in the body. */
function tenantOf(caller: Caller, body: Record<string, unknown>): string {
  const asked = str(body, 'tenant')
  if (caller.tenant !== null) {
    if (asked !== undefined && asked !== caller.tenant) throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'an admin token acts on its own tenant only')
    return caller.tenant
  }
  if (asked === undefined) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'tenant is required with the static admin token')
  return asked
}

/**
 * The admin HTTP API (docs/security.md): revocations, reinstatement, role
 * overrides, share links. Returns false when the path is not one of its routes.
 */
export function handleAdmin(req: IncomingMessage, res: ServerResponse, url: URL, deps: AdminDeps): boolean {
  const path = url.pathname
  if (!path.startsWith('/admin/') && path !== '/dev/token') return false
  void (async () => {
    try {
      if (path === '/dev/token') {
        await devToken(req, res, deps)
        return
      }
      const caller = await authenticateAdmin(req, deps)
      if (caller === null) {
        res.setHeader('www-authenticate', 'Bearer')
        sendError(res, new ConcordError('CONCORD_ERR_AUTH_DENIED', 'the admin API needs Authorization: Bearer <admin token or JWT with admin: true>'))
        return
      }
      // per caller (the static token has no user: its address); the routes of one document build it
      if (!deps.limiter.admit(req, res, caller, path.startsWith('/admin/documents/'))) return
      if (await routeDocuments(req, res, url, deps, caller)) return
      await route(req, res, path, deps, caller)
    } catch (err) {
      answerFailure(res, err, unexpected => {
        deps.logger.error({ err: unexpected, path }, 'admin request failed')
        return new ConcordError('CONCORD_ERR_SERVER_INTERNAL', 'the request failed; see the server log')
      })
    }
  })()
  return true
}

async function route(req: IncomingMessage, res: ServerResponse, path: string, opts: AdminDeps, caller: Caller): Promise<void> {
  const access = opts.access
  switch (path) {
    case '/admin/access': {
      requireMethod(req, res, 'GET')
      const state = access.snapshot()
      if (caller.tenant !== null) {
        state.revokedUsers = state.revokedUsers.filter(u => u.tenant === caller.tenant)
        state.roles = state.roles.filter(r => r.tenant === caller.tenant)
        state.revokedTokens = state.revokedTokens.filter(t => t.tenant === caller.tenant)
      }
      sendJson(res, 200, state)
      return
    }
    case '/admin/revoke': {
      requireMethod(req, res, 'POST')
      const body = await readJsonObject(req)
      const user = str(body, 'user')
      const tokenId = str(body, 'token') ?? str(body, 'share')
      const until = body.until === undefined ? 0 : Number(body.until)
      if (!Number.isInteger(until) || until < 0) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'until must be a time in ms since the epoch')
      if ((user === undefined) === (tokenId === undefined)) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'give one of user, token or share')
      // a tenant admin's revocation binds to its tenant (another tenant's token may carry the same
      // id); the static token's binds to the tenant it names, or without one to every tenant
      const tenant = user !== undefined || caller.tenant !== null ? tenantOf(caller, body) : str(body, 'tenant') ?? null
      if (user !== undefined) await access.revokeUser(tenant!, user)
      else await access.revokeToken(tokenId!, until, tenant)
      opts.logger.info({ user, tokenId, tenant, byTenant: caller.tenant }, 'revoked')
      sendJson(res, 200, { revoked: user !== undefined ? { user } : { id: tokenId } })
      return
    }
    case '/admin/reinstate': {
      requireMethod(req, res, 'POST')
      const body = await readJsonObject(req)
      const user = str(body, 'user')
      if (user === undefined) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'user is required')
      const was = await access.reinstateUser(tenantOf(caller, body), user)
      opts.logger.info({ user, byTenant: caller.tenant, reinstated: was }, 'reinstated')
      sendJson(res, 200, { reinstated: was })
      return
    }
    case '/admin/roles': {
      requireMethod(req, res, 'PUT')
      const body = await readJsonObject(req)
      const tenant = tenantOf(caller, body)
      const user = str(body, 'user')
      const pattern = str(body, 'document')
      if (user === undefined || pattern === undefined) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'user and document (a name or pattern) are required')
      if (!pattern.startsWith(`${tenant}/`)) throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', `document must lie in tenant ${JSON.stringify(tenant)}`)
      const role = body.role
      if (role !== null && role !== 'none' && !isRole(role)) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'role must be read, write, admin, none, or null to remove the override')
      await access.setRole(tenant, user, pattern, role as RoleOverride | null)
      opts.logger.info({ tenant, user, pattern, role }, 'role changed')
      sendJson(res, 200, { user, document: pattern, role })
      return
    }
    case '/admin/share-links': {
      requireMethod(req, res, 'POST')
      const body = await readJsonObject(req)
      const tenant = tenantOf(caller, body)
      const document = str(body, 'document')
      const role = body.role ?? 'read'
      const expiresInSec = body.expiresInSec === undefined ? 7 * 86400 : Number(body.expiresInSec)
      if (document === undefined || documentNameProblem(document) !== null || !inTenant(tenant, document)) {
        throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', `document must be a valid name in tenant ${JSON.stringify(tenant)}`)
      }
      if (!isRole(role) || role === 'admin') throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'role must be read or write')
      if (!Number.isInteger(expiresInSec) || expiresInSec <= 0 || expiresInSec > 365 * 86400) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'expiresInSec must be 1 s to 365 days')
      if (opts.signingSecret === null) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'this server verifies tokens with public keys and cannot sign share links; issue them where your private key is')
      const minted = await mintToken({ secret: opts.signingSecret, tenant, share: { doc: document, role }, expiresInSec })
      opts.logger.info({ tenant, document, role, shareId: minted.id, expiresAt: minted.expiresAt }, 'share link created')
      sendJson(res, 201, minted)
      return
    }
    default:
      sendError(res, new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', 'no such admin route'))
  }
}

/** Development only (`--auth dev`): a token for anyone who asks. */
async function devToken(req: IncomingMessage, res: ServerResponse, opts: AdminDeps): Promise<void> {
  if (!opts.devTokens || opts.signingSecret === null) {
    sendError(res, new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', 'development tokens are available only with --auth dev'))
    return
  }
  requireMethod(req, res, 'POST')
  const body = await readJsonObject(req)
  const user = str(body, 'user') ?? 'guest'
  const tenant = str(body, 'tenant') ?? 'dev'
  const role = body.role ?? 'write'
  if (!isRole(role)) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'role must be read, write or admin')
  const minted = await mintToken({ secret: opts.signingSecret, tenant, userId: user, docs: { [`${tenant}/*`]: role }, expiresInSec: 12 * 3600 })
  sendJson(res, 201, { ...minted, tenant, user, role })
}
