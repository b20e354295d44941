import type { IncomingMessage } from 'node:http'
import type { JSONWebKeySet } from 'jose'
import type { Role } from '@concord/protocol'

/** What an authenticated session may do, and who it is. */
export interface AuthResult {
  userId: string | null
  role: Role
  /** The tenant (namespace) of the credential; revocations and role overrides are per tenant. */
  tenant?: string | null
  /** The credential's id (a JWT's `jti`), so that it can be revoked. */
  tokenId?: string | null
  /** For a share link: its id. */
  shareId?: string | null
  /** When the credential stops being valid (ms since epoch); the session is cut off then unless refreshed. */
  expiresAt?: number | null
}

export interface AuthenticateContext {
  document: string
  /** The token sent in OPEN or AUTH (native) or the `token` URL query parameter (y-websocket); '' when none. */
  token: string
  transport: 'native' | 'y-websocket' | 'hocuspocus' | 'http'
  request: IncomingMessage
}

/**
 * Decides who a session is and what it may do on a document. Throw a
 * `ConcordError` (`CONCORD_ERR_AUTH_DENIED`, `CONCORD_ERR_AUTH_FORBIDDEN`,
 * `CONCORD_ERR_AUTH_EXPIRED`) to refuse. It is given `authTimeoutMs` to answer.
 * The default checks JWTs (`auth`).
 */
export type Authenticate = (context: AuthenticateContext) => Promise<AuthResult> | AuthResult

export interface AuthorizeContext {
  document: string
  /** Who the session is (from `onAuthenticate` or the JWT), with the role after administrators' overrides. */
  auth: Readonly<AuthResult>
  transport: 'native' | 'y-websocket' | 'hocuspocus' | 'http'
}

/**
 * A last word on a session, for applications that keep permissions elsewhere:
 * return the role to grant (it may be lower or higher than `auth.role`), or
 * `null` to refuse with CONCORD_ERR_AUTH_FORBIDDEN. Runs after authentication
 * and revocation checks, within the same `authTimeoutMs`.
 */
export type Authorize = (context: AuthorizeContext) => Promise<Role | null> | Role | null

/**
 * How tokens are checked: `'none'` (everyone may write; said loudly in the
 * log), an HS256 shared `secret`, or RS256/ES256 public keys from `jwks` (a
 * file path, an http(s) URL, or a key set).
 */
/** What both kinds of key accept besides the key. */
interface JwtClaimRules {
  issuer?: string
  audience?: string
  clockToleranceSec?: number
  /**
   * Accept tokens without an `exp` claim (they never expire; only a revocation ends them).
   * Default false: such a token is refused with CONCORD_ERR_AUTH_DENIED. The server warns
   * in its log at start when this is on.
   */
  allowTokensWithoutExp?: boolean
}

export type JwtConfig =
  | ({ secret: string } & JwtClaimRules)
  | ({ jwks: string | JSONWebKeySet } & JwtClaimRules)

export type AuthConfig = 'none' | JwtConfig

/** Auth disabled: every session may write. */
export const allowEveryone: Authenticate = () => ({ userId: null, role: 'write' })
