import { ConcordError, type Role } from '@concord/protocol'
import type { Authenticate, AuthenticateContext, Authorize } from './auth-hooks.js'
import { AccessControl, type AccessChange, type SessionIdentity } from './access-control.js'
import { isRole } from './patterns.js'

/** What a session was granted on one document. */
export interface SessionGrant extends SessionIdentity {
  role: Role
  /** The role the credential itself gives (before administrators' overrides). */
  credentialRole: Role
  expiresAt: number | null
}

export interface AuthorizerOptions {
  authenticate: Authenticate
  authorize?: Authorize | undefined
  access: AccessControl
  timeoutMs: number
}

/**
 * The permission check for opening a document (and for AUTH refreshes):
 * authenticate (JWT or the application's hook), refuse revoked users, tokens
 * and share links, apply administrators' role overrides, then let
 * `onAuthorize` have the last word; all within `timeoutMs`.
 */
export class Authorizer {
  readonly access: AccessControl
  readonly #opts: AuthorizerOptions
  /**
   * The last grant made. A grant is not changed once made (a session given another role gets a
   * new one), so one identical to it is shared instead: a session keeps its grant while it is
   * open, and sessions with the same credential (or without one) need not each keep a copy.
   */
  #last: SessionGrant | null = null

  constructor(options: AuthorizerOptions) {
    this.#opts = options
    this.access = options.access
  }

  async grant(context: AuthenticateContext, log: { error(obj: object, msg: string): void }): Promise<SessionGrant> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConcordError('CONCORD_ERR_AUTH_TIMEOUT', `authentication took longer than ${this.#opts.timeoutMs} ms`)), this.#opts.timeoutMs)
    })
    try {
      return this.#shared(await Promise.race([this.#grant(context), timeout]))
    } catch (err) {
      if (err instanceof ConcordError) throw err
      log.error({ err, document: context.document }, 'authentication hook failed')
      throw new ConcordError('CONCORD_ERR_AUTH_DENIED', 'authentication failed', { cause: err })
    } finally {
      clearTimeout(timer)
    }
  }

  /** `grant`, or the last grant when it is identical (frozen either way: grants are not changed once made). */
  #shared(grant: SessionGrant): SessionGrant {
    const last = this.#last
    if (last !== null && sameFields(last, grant)) return last
    this.#last = Object.freeze(grant)
    return grant
  }

  async #grant(context: AuthenticateContext): Promise<SessionGrant> {
    const result = await this.#opts.authenticate(context)
    if (result === null || typeof result !== 'object' || !isRole(result.role)) {
      throw new TypeError('onAuthenticate must return { userId, role } with role read, write or admin')
    }
    const grant: SessionGrant = {
      userId: result.userId ?? null,
      tenant: result.tenant ?? null,
      tokenId: result.tokenId ?? null,
      shareId: result.shareId ?? null,
      expiresAt: result.expiresAt ?? null,
      role: result.role,
      credentialRole: result.role,
    }
    if (grant.expiresAt !== null && grant.expiresAt <= Date.now()) {
      throw new ConcordError('CONCORD_ERR_AUTH_EXPIRED', 'the token has expired')
    }
    const revoked = this.access.revoked(grant)
    if (revoked !== null) throw new ConcordError('CONCORD_ERR_AUTH_REVOKED', `this ${revoked === 'share' ? 'share link' : revoked} has been revoked`)
    const override = this.access.roleOverride(grant, context.document)
    if (override === 'none') throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'an administrator removed this user\'s access to the document')
    if (override !== null) grant.role = override
    if (this.#opts.authorize !== undefined) {
      const role = await this.#opts.authorize({ document: context.document, auth: { ...grant }, transport: context.transport })
      if (role === null || role === undefined) throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'onAuthorize refused the session')
      if (!isRole(role)) throw new TypeError('onAuthorize must return read, write, admin or null')
      grant.role = role
    }
    // without an administrator's override, what the session was granted (onAuthorize included)
    // is what it returns to when an override is later set and removed
    if (override === null) grant.credentialRole = grant.role
    return grant
  }
}

/** What a session does when its permission changes while the document is open. */
export interface GuardedSession {
  /** End the document for this session with a coded reason. */
  revoke(error: ConcordError): void
  /** Continue with another role (tell the client). */
  changeRole(role: Role, expiresAt: number | null): void
}

/**
 * Keeps one open session's permission current: cuts it off when its token
 * expires unrefreshed, when it is revoked, or when an administrator removes
 * its access; changes its role when an administrator changes it.
 */
export class SessionGuard {
  grant: SessionGrant
  readonly #document: string
  readonly #access: AccessControl
  readonly #session: GuardedSession
  #timer: NodeJS.Timeout | null = null
  #stopped = false

  constructor(grant: SessionGrant, document: string, access: AccessControl, session: GuardedSession) {
    this.grant = grant
    this.#document = document
    this.#access = access
    this.#session = session
    this.#arm()
  }

  get role(): Role {
    return this.grant.role
  }

  /** A refreshed credential (AUTH) replaces the old one. */
  replace(grant: SessionGrant): void {
    if (this.#stopped) return
    this.grant = grant
    this.#arm()
    this.#session.changeRole(grant.role, grant.expiresAt)
  }

  /**
   * Check the grant against the revocations and role overrides of now, as the session starts:
   * an administrator may have acted while the document was loading (before the session could
   * hear of it). Returns the error that ends the session, or null (the role may have changed).
   */
  recheck(): ConcordError | null {
    if (this.grant.expiresAt !== null && this.grant.expiresAt <= Date.now()) {
      this.stop()
      return new ConcordError('CONCORD_ERR_AUTH_EXPIRED', 'the token has expired')
    }
    const revoked = this.#access.revoked(this.grant)
    if (revoked !== null) {
      this.stop()
      return new ConcordError('CONCORD_ERR_AUTH_REVOKED', `this ${revoked === 'share' ? 'share link' : revoked} has been revoked`)
    }
    const override = this.#access.roleOverride(this.grant, this.#document)
    if (override === 'none') {
      this.stop()
      return new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'an administrator removed this user\'s access to the document')
    }
    // only ever lower: the grant already holds what onAuthorize decided on top of the overrides
    // of its time, and an override that stands is not a reason to give back what it took away
    const role = override ?? this.grant.credentialRole
    if (ROLE_RANK[role] < ROLE_RANK[this.grant.role]) this.grant = { ...this.grant, role }
    return null
  }

  accessChanged(change: AccessChange): void {
    if (this.#stopped || !AccessControl.affects(change, this.grant, this.#document)) return
    const revoked = this.#access.revoked(this.grant)
    if (revoked !== null) {
      this.stop()
      this.#session.revoke(new ConcordError('CONCORD_ERR_AUTH_REVOKED', `this ${revoked === 'share' ? 'share link' : revoked} has been revoked`))
      return
    }
    const override = this.#access.roleOverride(this.grant, this.#document)
    if (override === 'none') {
      this.stop()
      this.#session.revoke(new ConcordError('CONCORD_ERR_AUTH_ROLE_CHANGED', 'an administrator removed this user\'s access to the document'))
      return
    }
    const role = override ?? this.grant.credentialRole
    if (role === this.grant.role) return
    this.grant = { ...this.grant, role }
    this.#session.changeRole(role, this.grant.expiresAt)
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #arm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const at = this.grant.expiresAt
    if (at === null) return
    // setTimeout holds at most 2^31-1 ms; re-arm for longer lifetimes
    const wait = Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1)
    this.#timer = setTimeout(() => {
      this.#timer = null
      if (this.#stopped) return
      if (Date.now() < at) {
        this.#arm()
        return
      }
      this.stop()
      this.#session.revoke(new ConcordError('CONCORD_ERR_AUTH_EXPIRED', 'the token expired and was not refreshed'))
    }, wait)
    this.#timer.unref()
  }
}

const ROLE_RANK: Record<Role, number> = { read: 0, write: 1, admin: 2 }

/** The same fields with the same values (a grant's are all primitives). */
function sameFields(a: SessionGrant, b: SessionGrant): boolean {
  const keys = Object.keys(b) as (keyof SessionGrant)[]
  if (Object.keys(a).length !== keys.length) return false
  for (const k of keys) if (a[k] !== b[k]) return false
  return true
}
