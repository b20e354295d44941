import { readFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, SignJWT, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { ConcordError, type Role } from '@concord/protocol'
import type { Authenticate, AuthResult, JwtConfig } from './auth-hooks.js'

export type { JwtConfig }
import { inTenant, isRole, roleFor, ROLE_ORDER } from './patterns.js'
import { ConfigError } from '../config/server-config.js'

/**
 * The claims Concord reads from a JWT (docs/security.md):
 * - `sub`: the user id; `tenant`: the namespace (document names start with `<tenant>/`);
 * - `docs`: document-name patterns to roles, e.g. `{"acme/*": "write", "acme/handbook": "read"}`;
 * - `share`: instead of `docs`, a share link for one document and one role;
 * - `admin`: true lets the token use the admin HTTP API for its tenant;
 * - `jti` (token id, for revocation; required for share links), `exp` (required unless
 *   `allowTokensWithoutExp`), `nbf`, `iat`.
 */
export interface ConcordClaims extends JWTPayload {
  tenant?: string
  docs?: Record<string, Role>
  share?: { doc: string; role: Role }
  admin?: boolean
}

/** A verified token. */
export interface VerifiedToken {
  claims: ConcordClaims
  userId: string | null
  tenant: string
  tokenId: string | null
  shareId: string | null
  expiresAt: number | null
}

export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken>
}

/** The algorithms each kind of key may use: a shared secret never verifies an RS/ES token, and vice versa. */
const SECRET_ALGORITHMS = ['HS256']
const PUBLIC_KEY_ALGORITHMS = ['RS256', 'ES256']

/** Build a verifier from `--auth-secret` or `--auth-jwks` (a file path, an http(s) URL, or a key set). */
export async function createTokenVerifier(config: JwtConfig): Promise<TokenVerifier> {
  let key: Uint8Array | JWTVerifyGetKey
  let algorithms: string[]
  if ('secret' in config) {
    if (config.secret.length < 32) throw new ConfigError('the HS256 secret must be at least 32 characters')
    key = new TextEncoder().encode(config.secret)
    algorithms = SECRET_ALGORITHMS
  } else {
    algorithms = PUBLIC_KEY_ALGORITHMS
    if (typeof config.jwks === 'string' && /^https?:\/\//.test(config.jwks)) {
      key = createRemoteJWKSet(new URL(config.jwks), { timeoutDuration: 5_000, cooldownDuration: 30_000 })
    } else {
      const set = typeof config.jwks === 'string' ? JSON.parse(await readFile(config.jwks, 'utf8')) as JSONWebKeySet : config.jwks
      if (!Array.isArray(set.keys) || set.keys.length === 0) throw new ConfigError('the JWKS has no keys')
      key = createLocalJWKSet(set)
    }
  }
  const options = {
    algorithms,
    clockTolerance: config.clockToleranceSec ?? 5,
    ...(config.issuer !== undefined ? { issuer: config.issuer } : {}),
    ...(config.audience !== undefined ? { audience: config.audience } : {}),
  }
  return {
    async verify(token) {
      if (token === '') throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'no token')
      let claims: ConcordClaims
      try {
        const result = typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)
        claims = result.payload as ConcordClaims
      } catch (err) {
        throw tokenError(err)
      }
      // a token without exp would never expire: a stolen one would work until someone revoked its id
      if (typeof claims.exp !== 'number' && config.allowTokensWithoutExp !== true) {
        throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'the token has no expiry (exp claim); this server requires one')
      }
      if (typeof claims.tenant !== 'string' || claims.tenant === '' || claims.tenant.includes('/')) {
        throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'the token names no valid tenant')
      }
      if (claims.share !== undefined && (typeof claims.jti !== 'string' || claims.jti === '')) {
        throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'a share link must have an id (jti)')
      }
      return {
        claims,
        userId: typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : null,
        tenant: claims.tenant,
        tokenId: typeof claims.jti === 'string' && claims.share === undefined ? claims.jti : null,
        shareId: claims.share !== undefined ? claims.jti! : null,
        expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : null,
      }
    },
  }
}

/** The role a verified token grants on `document`, or a coded refusal. */
export function roleFromToken(token: VerifiedToken, document: string): Role {
  if (!inTenant(token.tenant, document)) {
    throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', `the token is for tenant ${JSON.stringify(token.tenant)}; the document is outside it`)
  }
  const { share, docs } = token.claims
  if (share !== undefined) {
    if (share === null || typeof share !== 'object' || share.doc !== document || !isRole(share.role)) {
      throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'the share link is for another document')
    }
    return share.role
  }
  const rules = Object.entries(docs ?? {}).filter((e): e is [string, Role] => isRole(e[1]) && inTenantPattern(token.tenant, e[0]))
  const role = roleFor(rules, document, ROLE_ORDER)
  if (role === null) throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'the token grants no role on this document')
  return role
}

/** A pattern counts only inside its token's tenant (`acme/*`, never `*` or `other/*`). */
function inTenantPattern(tenant: string, pattern: string): boolean {
  return pattern.startsWith(`${tenant}/`)
}

/** The authenticate hook for JWTs: verify, then take the role for the document from the claims. */
export function jwtAuthenticate(verifier: TokenVerifier): Authenticate {
  return async ({ document, token }): Promise<AuthResult> => {
    const verified = await verifier.verify(token)
    return {
      userId: verified.userId,
      role: roleFromToken(verified, document),
      tenant: verified.tenant,
      tokenId: verified.tokenId,
      shareId: verified.shareId,
      expiresAt: verified.expiresAt,
    }
  }
}

function tokenError(err: unknown): ConcordError {
  const code = (err as { code?: string }).code
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return new ConcordError('CONCORD_ERR_AUTH_EXPIRED', 'the token has expired', { cause: err })
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return new ConcordError('CONCORD_ERR_AUTH_DENIED', `the token's ${(err as { claim?: string }).claim ?? ''} claim is not valid now`, { cause: err })
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new ConcordError('CONCORD_ERR_AUTH_DENIED', 'the token is signed with an algorithm this server does not accept', { cause: err })
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return new ConcordError('CONCORD_ERR_AUTH_DENIED', 'the token signature is not valid', { cause: err })
    default:
      return new ConcordError('CONCORD_ERR_AUTH_DENIED', 'the token is malformed or not accepted', { cause: err })
  }
}

export interface MintOptions {
  secret: string
  tenant: string
  userId?: string
  /** pattern -> role */
  docs?: Record<string, Role>
  share?: { doc: string; role: Role }
  admin?: boolean
  /** Lifetime in seconds (default one hour). */
  expiresInSec?: number
  /** Extra claims (tests use this for iat/nbf/exp edge cases). */
  extra?: Record<string, unknown>
}

/** Sign an HS256 token with Concord's claims (development and tests; production tokens come from your IdP). */
export async function mintToken(options: MintOptions): Promise<{ token: string; id: string; expiresAt: number }> {
  const id = randomUUID()
  const now = Math.floor(Date.now() / 1000)
  const exp = now + (options.expiresInSec ?? 3600)
  const claims: ConcordClaims = { tenant: options.tenant, ...options.extra }
  if (options.docs !== undefined) claims.docs = options.docs
  if (options.share !== undefined) claims.share = options.share
  if (options.admin === true) claims.admin = true
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt(now).setExpirationTime(exp).setJti(id)
  if (options.userId !== undefined) jwt = jwt.setSubject(options.userId)
  const token = await jwt.sign(new TextEncoder().encode(options.secret))
  return { token, id, expiresAt: exp * 1000 }
}
