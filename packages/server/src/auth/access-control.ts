import { mkdir, readFile, rename, writeFile, open as openFile } from 'node:fs/promises'
import { applyAccessOp, type AccessOp, type AccessState, type AccessStore, type ReplicatedAccessChange, type RoleOverride } from '../storage/access-store.js'
import type { AccessChange } from '../backplane/backplane.js'
import { dirname } from 'node:path'
import { isRole, matchesPattern, roleFor, ROLE_ORDER } from './patterns.js'

export type { AccessState, AccessStore, RoleOverride, AccessChange }

/** Who a session is, as far as revocation and role overrides are concerned. */
export interface SessionIdentity {
  tenant: string | null
  userId: string | null
  /** The token's `jti`, when it has one. */
  tokenId: string | null
  /** For a share link: its id (the link token's `jti`). */
  shareId: string | null
}

const OVERRIDE_ORDER: readonly RoleOverride[] = ['none', ...ROLE_ORDER]

/**
 * Revocations and role overrides: the part of access control that an
 * administrator changes at run time (tokens say the rest). Every change is
 * saved before it takes effect and then announced to listeners, which cut off
 * or downgrade the affected live sessions.
 */
export class AccessControl {
  readonly #store: AccessStore
  #state: AccessState
  readonly #revokedUsers = new Set<string>()
  /** Token id -> its revocations: `tenant` null for one that concerns every tenant. */
  readonly #revokedTokens = new Map<string, { until: number; tenant: string | null }[]>()
  readonly #listeners = new Set<(change: AccessChange, remote: boolean) => void>()
  #saving: Promise<void> = Promise.resolve()

  private constructor(store: AccessStore, state: AccessState) {
    this.#store = store
    this.#state = state
    this.#index()
  }

  /** Kept in memory only (lost on restart). */
  static inMemory(): AccessControl {
    return new AccessControl(createMemoryAccessStore(), { revokedUsers: [], revokedTokens: [], roles: [] })
  }

  /** Empty until `reload()` (for a shared store that cannot be read yet). */
  static unloaded(store: AccessStore): AccessControl {
    return new AccessControl(store, { revokedUsers: [], revokedTokens: [], roles: [] })
  }

  /** Read the store again. */
  async reload(): Promise<void> {
    const run = this.#saving.then(async () => {
      const state = await this.#store.load()
      this.#state = validateState(state ?? { revokedUsers: [], revokedTokens: [], roles: [] })
      this.#index()
    })
    this.#saving = run.catch(() => undefined)
    await run
  }

  static async open(store: AccessStore = createMemoryAccessStore()): Promise<AccessControl> {
    const state = await store.load()
    return new AccessControl(store, validateState(state ?? { revokedUsers: [], revokedTokens: [], roles: [] }))
  }

  /** Why this identity is refused, or null. */
  revoked(id: SessionIdentity, now = Date.now()): 'user' | 'token' | 'share' | null {
    if (id.userId !== null && this.#revokedUsers.has(userKey(id.tenant ?? '', id.userId))) return 'user'
    for (const [which, tokenId] of [['share', id.shareId], ['token', id.tokenId]] as const) {
      if (tokenId === null) continue
      // a tenant admin's revocation reaches its own tenant's credentials only: token ids are
      // chosen by whoever mints them, so another tenant's tokens may carry the same id
      const hit = this.#revokedTokens.get(tokenId)?.some(r => (r.tenant === null || r.tenant === (id.tenant ?? null)) && (r.until === 0 || r.until > now))
      if (hit === true) return which
    }
    return null
  }

  /** The administrator's role for this user on `document`, or null when none is set. */
  roleOverride(id: SessionIdentity, document: string): RoleOverride | null {
    if (id.userId === null) return null
    const tenant = id.tenant ?? ''
    const rules = this.#state.roles
      .filter(r => r.tenant === tenant && r.userId === id.userId)
      .map(r => [r.pattern, r.role] as const)
    return roleFor(rules, document, OVERRIDE_ORDER)
  }

  async revokeUser(tenant: string, userId: string): Promise<void> {
    if (this.#revokedUsers.has(userKey(tenant, userId))) return
    await this.#apply({ op: 'revoke-user', tenant, userId, at: Date.now() }, { kind: 'revoked-user', tenant, userId })
  }

  /** Lift a user's revocation. Returns whether there was one. */
  async reinstateUser(tenant: string, userId: string): Promise<boolean> {
    if (!this.#revokedUsers.has(userKey(tenant, userId))) return false
    // announced as a change of that user's access, so the other nodes (and regions) read the
    // state again; their sessions of the user are checked and stay
    await this.#apply({ op: 'reinstate-user', tenant, userId }, { kind: 'revoked-user', tenant, userId })
    return true
  }

  /**
   * Refuse a token or share link by id until `until` (its expiry; 0: for good): only the
   * credentials of `tenant` with that id, or with `tenant` null every credential with it.
   * It replaces an earlier revocation of the id for the same tenant only.
   */
  async revokeToken(id: string, until = 0, tenant: string | null = null): Promise<void> {
    await this.#apply({ op: 'revoke-token', id, until, at: Date.now(), tenant }, { kind: 'revoked-token', id, tenant })
  }

  /** Set (or with `null` remove) the role of a user on the documents matching `pattern`. */
  async setRole(tenant: string, userId: string, pattern: string, role: RoleOverride | null): Promise<void> {
    await this.#apply({ op: 'set-role', tenant, userId, pattern, role }, { kind: 'role', tenant, userId, pattern })
  }

  /** Save `op`, make it current, then announce `change`. */
  async #apply(op: AccessOp, change: AccessChange): Promise<void> {
    await this.#change(s => applyAccessOp(s, op), { op, change })
    this.#emit(change)
  }

  /** Does this change concern a session with this identity on this document? */
  static affects(change: AccessChange, id: SessionIdentity, document: string): boolean {
    switch (change.kind) {
      case 'all':
        return true
      case 'revoked-user':
        return id.userId === change.userId && (id.tenant ?? '') === change.tenant
      case 'revoked-token':
        return (id.tokenId === change.id || id.shareId === change.id) && ((change.tenant ?? null) === null || change.tenant === (id.tenant ?? null))
      case 'role':
        return id.userId === change.userId && (id.tenant ?? '') === change.tenant && matchesPattern(change.pattern, document)
    }
  }

  /**
   * Another node changed the shared store: read it again, then tell the listeners
   * (with `remote` true, so the change is not announced again).
   */
  async applyRemote(change: AccessChange): Promise<void> {
    await this.reload()
    this.#emit(change, true)
  }

  /** `listener(change, remote)`: `remote` when the change was made on another node. */
  onChange(listener: (change: AccessChange, remote: boolean) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** A copy of the current state (revocations of expired tokens left out). */
  snapshot(): AccessState {
    const now = Date.now()
    return structuredClone({ ...this.#state, revokedTokens: this.#state.revokedTokens.filter(t => t.until === 0 || t.until > now) })
  }

  /** Apply `edit` to a copy, save it, then make it current (changes are saved one at a time). */
  async #change(edit: (state: AccessState) => void, replicate: ReplicatedAccessChange): Promise<void> {
    const run = this.#saving.then(async () => {
      let next: AccessState
      if (this.#store.update !== undefined) {
        next = validateState(await this.#store.update(edit, replicate))
      } else {
        next = this.snapshot()
        edit(next)
        await this.#store.save(next)
      }
      this.#state = next
      this.#index()
    })
    this.#saving = run.catch(() => undefined)
    await run
  }

  #index(): void {
    this.#revokedUsers.clear()
    for (const u of this.#state.revokedUsers) this.#revokedUsers.add(userKey(u.tenant, u.userId))
    this.#revokedTokens.clear()
    for (const t of this.#state.revokedTokens) {
      const list = this.#revokedTokens.get(t.id) ?? []
      list.push({ until: t.until, tenant: t.tenant ?? null })
      this.#revokedTokens.set(t.id, list)
    }
  }

  #emit(change: AccessChange, remote = false): void {
    for (const l of this.#listeners) l(change, remote)
  }
}

function userKey(tenant: string, userId: string): string {
  return `${tenant}\u0000${userId}`
}

function validateState(state: AccessState): AccessState {
  const ok = Array.isArray(state.revokedUsers) && Array.isArray(state.revokedTokens) && Array.isArray(state.roles) &&
    state.roles.every(r => r.role === 'none' || isRole(r.role))
  if (!ok) throw new Error('the access state is malformed')
  return state
}

export function createMemoryAccessStore(): AccessStore {
  let saved: string | null = null
  return {
    async load() { return saved === null ? null : JSON.parse(saved) as AccessState },
    async save(state) { saved = JSON.stringify(state) },
  }
}

/** One JSON file, replaced atomically (temporary file, fsync, rename). */
export function createFileAccessStore(file: string): AccessStore {
  return {
    async load() {
      try {
        return JSON.parse(await readFile(file, 'utf8')) as AccessState
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw new Error(`reading the access state ${file} failed: ${(err as Error).message}`, { cause: err })
      }
    },
    async save(state) {
      await mkdir(dirname(file), { recursive: true })
      const tmp = `${file}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify(state, null, 2))
      const handle = await openFile(tmp, 'r+')
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(tmp, file)
      // the rename itself must survive a power cut: sync the folder
      const dir = await openFile(dirname(file), 'r')
      try {
        await dir.sync()
      } finally {
        await dir.close()
      }
    },
  }
}
