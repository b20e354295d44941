import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

/** One client's entry in a y-protocols awareness update. */
export interface AwarenessEntry {
  clientId: number
  clock: number
  /** The state as JSON text (`null` for a removal). */
  json: string
}

/**
 * Decode an awareness update (y-protocols: a count, then client id, clock and JSON
 * state per client) into its entries, without parsing the JSON. Throws when the
 * bytes are not such an update.
 */
export function decodeAwarenessEntries(update: Uint8Array): AwarenessEntry[] {
  const d = decoding.createDecoder(update)
  const n = decoding.readVarUint(d)
  // each entry takes at least 3 bytes: a count beyond that is a lie, not a reason to allocate
  if (n > update.length) throw new RangeError(`awareness update claims ${n} entries in ${update.length} bytes`)
  const out: AwarenessEntry[] = []
  for (let i = 0; i < n; i++) {
    const clientId = decoding.readVarUint(d)
    const clock = decoding.readVarUint(d)
    const json = decoding.readVarString(d)
    out.push({ clientId, clock, json })
  }
  if (decoding.hasContent(d)) throw new RangeError('trailing bytes after the awareness entries')
  return out
}

export function encodeAwarenessEntries(entries: readonly AwarenessEntry[]): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, entries.length)
  for (const entry of entries) {
    encoding.writeVarUint(e, entry.clientId)
    encoding.writeVarUint(e, entry.clock)
    encoding.writeVarString(e, entry.json)
  }
  return encoding.toUint8Array(e)
}

/**
 * The state as the room sees it: `user.id` is the authenticated user's id, whatever the
 * client wrote there, so nobody can show a cursor under another user's id. Returns the
 * JSON text to relay, or null when the state is not valid JSON.
 */
export function stampUser(json: string, userId: string): string | null {
  let state: unknown
  try {
    state = JSON.parse(json)
  } catch {
    return null
  }
  if (state === null) return json
  if (typeof state !== 'object' || Array.isArray(state)) return null
  const s = state as Record<string, unknown>
  const user = typeof s.user === 'object' && s.user !== null && !Array.isArray(s.user) ? s.user as Record<string, unknown> : {}
  s.user = { ...user, id: userId }
  return JSON.stringify(s)
}

/** The authenticated user id stamped into a relayed state (see `stampUser`), if any. */
export function stampedUser(state: unknown): string | null {
  if (typeof state !== 'object' || state === null) return null
  const user = (state as { user?: unknown }).user
  if (typeof user !== 'object' || user === null) return null
  const id = (user as { id?: unknown }).id
  return typeof id === 'string' ? id : null
}
