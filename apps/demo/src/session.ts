/** Who is signed in to the demo (kept per browser tab in sessionStorage), and their tokens. */

export type DemoRole = 'write' | 'read'

export interface DemoUser {
  name: string
  role: DemoRole
  color: string
}

/** The demo's documents live in this tenant (`POST /dev/token` grants `<tenant>/*`). */
export const TENANT = 'dev'

const STORAGE_KEY = 'concord-demo-user'

/**
 * Colours for people, each dark enough for white text on it (carets' name labels, avatars), and
 * distinct from each other. TipTap's caret extension accepts `#rrggbb` only.
 */
const PALETTE = [
  '#d93f0b', '#b45309', '#4d7c0f', '#047857', '#0e7490', '#0369a1',
  '#4338ca', '#7c3aed', '#a21caf', '#be185d', '#be123c', '#57534e',
] as const

/** The same name always gets the same colour (FNV-1a of the lower-cased name, then a final mix). */
export function colorFor(name: string): string {
  let hash = 0x811c9dc5
  for (const ch of name.trim().toLowerCase()) {
    hash ^= ch.codePointAt(0)!
    hash = Math.imul(hash, 0x01000193)
  }
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return PALETTE[(hash >>> 0) % PALETTE.length]!
}

/** One or two letters for an avatar. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean)
  if (words.length === 0) return '?'
  const first = [...words[0]!][0] ?? '?'
  const second = words.length > 1 ? [...words[words.length - 1]!][0] ?? '' : ''
  return (first + second).toUpperCase()
}

export function loadUser(): DemoUser | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY)
    if (raw === null) return null
    const parsed = JSON.parse(raw) as Partial<DemoUser>
    if (typeof parsed.name !== 'string' || parsed.name.trim() === '') return null
    const role: DemoRole = parsed.role === 'read' ? 'read' : 'write'
    return { name: parsed.name, role, color: colorFor(parsed.name) }
  } catch {
    return null
  }
}

export function saveUser(user: DemoUser): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ name: user.name, role: user.role }))
}

export function forgetUser(): void {
  sessionStorage.removeItem(STORAGE_KEY)
}

export interface MintedToken {
  token: string
  expiresAt: number
}

/** Asks the server for a development token (only a server started with `--demo` answers). */
export async function mintToken(user: Pick<DemoUser, 'name' | 'role'>): Promise<MintedToken> {
  let res: Response
  try {
    res = await fetch('/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: user.name, tenant: TENANT, role: user.role }),
    })
  } catch {
    throw new Error('The server cannot be reached.')
  }
  if (res.status === 404) throw new Error('This server does not offer demo sign-in. Start it with `concord serve --demo`.')
  if (!res.ok) {
    const body = await res.json().catch(() => null) as { message?: string } | null
    throw new Error(body?.message ?? `Sign-in failed (HTTP ${res.status}).`)
  }
  const body = await res.json() as { token: string; expiresAt: number }
  return { token: body.token, expiresAt: body.expiresAt }
}

/** Hands out the current token and mints a new one shortly before it expires. */
export class TokenSource {
  readonly #user: DemoUser
  #current: MintedToken | null
  #minting: Promise<MintedToken> | null = null

  constructor(user: DemoUser, first: MintedToken | null = null) {
    this.#user = user
    this.#current = first
  }

  async get(): Promise<string> {
    const current = this.#current
    // renew five minutes before expiry (tokens live 12 h)
    if (current !== null && current.expiresAt - Date.now() > 5 * 60_000) return current.token
    this.#minting ??= mintToken(this.#user).then(t => {
      this.#current = t
      return t
    }).finally(() => {
      this.#minting = null
    })
    return (await this.#minting).token
  }
}
