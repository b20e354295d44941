import type { Role } from '@concord/protocol'

/** A role, or `none`: no access at all. */
export type RoleOverride = Role | 'none'

export interface AccessState {
  /** Users cut off (every token of theirs is refused) until reinstated. */
  revokedUsers: { tenant: string; userId: string; at: number }[]
  /**
   * Token and share-link ids refused until `until` (ms since epoch; 0: for good). With a
   * `tenant` (a tenant admin's revocation), only that tenant's credentials with the id are
   * refused; without one (the static admin token's), every credential with the id.
   */
  revokedTokens: { id: string; until: number; at: number; tenant?: string | null }[]
  /** Per user and document pattern, a role that replaces what the token says. */
  roles: { tenant: string; userId: string; pattern: string; role: RoleOverride }[]
}

/** Where the access state is kept. */
export interface AccessStore {
  load(): Promise<AccessState | null>
  save(state: AccessState): Promise<void>
  /**
   * Apply `edit` to the stored state atomically (several nodes may change it at once) and
   * return the result. Stores shared by several nodes implement it; others are saved whole.
   */
  update?(edit: (state: AccessState) => void, replicate?: ReplicatedAccessChange): Promise<AccessState>
}

/** An administrator's change as an operation, so that other regions can apply it to their own state. */
export type AccessOp =
  | { op: 'revoke-user'; tenant: string; userId: string; at: number }
  | { op: 'reinstate-user'; tenant: string; userId: string }
  | { op: 'revoke-token'; id: string; until: number; at: number; tenant: string | null }
  | { op: 'set-role'; tenant: string; userId: string; pattern: string; role: RoleOverride | null }

/** What a store shared by regions queues for its peers with a change (the operation, and the change their nodes are told). */
export interface ReplicatedAccessChange {
  op: AccessOp
  change: unknown
}

/** Applies `op` to `state` in place (the same on every node and in every region). */
export function applyAccessOp(state: AccessState, op: AccessOp): void {
  switch (op.op) {
    case 'revoke-user':
      if (!state.revokedUsers.some(u => u.tenant === op.tenant && u.userId === op.userId)) state.revokedUsers.push({ tenant: op.tenant, userId: op.userId, at: op.at })
      break
    case 'reinstate-user':
      state.revokedUsers = state.revokedUsers.filter(u => !(u.tenant === op.tenant && u.userId === op.userId))
      break
    case 'revoke-token':
      state.revokedTokens = state.revokedTokens.filter(t => !(t.id === op.id && (t.tenant ?? null) === op.tenant))
      state.revokedTokens.push({ id: op.id, until: op.until, at: op.at, tenant: op.tenant })
      break
    case 'set-role':
      state.roles = state.roles.filter(r => !(r.tenant === op.tenant && r.userId === op.userId && r.pattern === op.pattern))
      if (op.role !== null) state.roles.push({ tenant: op.tenant, userId: op.userId, pattern: op.pattern, role: op.role })
      break
  }
}
