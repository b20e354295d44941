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
  update?(edit: (state: AccessState) => void): Promise<AccessState>
}
