import type { Role } from '@concord/protocol'

/** Roles from least to most powerful. */
export const ROLE_ORDER: readonly Role[] = ['read', 'write', 'admin']

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLE_ORDER as readonly string[]).includes(value)
}

/**
 * Does a document-name pattern match `name`? `*` matches any run of
 * characters, `/` included (`acme/*` covers `acme/specs/q3`); every other
 * character matches itself.
 */
export function matchesPattern(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name
  const parts = pattern.split('*')
  const first = parts[0]!
  const last = parts[parts.length - 1]!
  if (!name.startsWith(first) || name.length < first.length + last.length || !name.endsWith(last)) return false
  let at = first.length
  const end = name.length - last.length
  for (let i = 1; i < parts.length - 1; i++) {
    const found = name.indexOf(parts[i]!, at)
    if (found < 0 || found + parts[i]!.length > end) return false
    at = found + parts[i]!.length
  }
  return true
}

/**
 * How specific a pattern is: an exact name beats any wildcard; among
 * wildcards, more literal characters win.
 */
function specificity(pattern: string): number {
  return pattern.includes('*') ? pattern.replaceAll('*', '').length : Number.MAX_SAFE_INTEGER
}

/**
 * The role `rules` (pattern -> role) give for `name`: the most specific
 * matching pattern decides (so `{"acme/*": "write", "acme/handbook": "read"}`
 * makes the handbook read-only); on a tie the lesser role wins. Null when no
 * pattern matches.
 */
export function roleFor<R extends string>(rules: Iterable<readonly [pattern: string, role: R]>, name: string, order: readonly R[]): R | null {
  let best: { rank: number; role: R } | null = null
  for (const [pattern, role] of rules) {
    if (!matchesPattern(pattern, name)) continue
    const rank = specificity(pattern)
    if (best === null || rank > best.rank || (rank === best.rank && order.indexOf(role) < order.indexOf(best.role))) best = { rank, role }
  }
  return best?.role ?? null
}

/** True when `name` lies in the namespace of `tenant` (`<tenant>/...`). */
export function inTenant(tenant: string, name: string): boolean {
  return name.startsWith(`${tenant}/`) && name.length > tenant.length + 1
}
