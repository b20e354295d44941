import * as Y from 'yjs'

type IdLike = { client: number; clock: number }

function isId(value: unknown): value is IdLike {
  return typeof value === 'object' && value !== null && 'client' in value && 'clock' in value
}

/**
 * Check that `update` is a well-formed Yjs (v1) update without applying it.
 * Returns an error message, or `null` when the update decodes completely and
 * is structurally sound.
 *
 * Decoding fully before applying means a truncated delete set can never be
 * half-applied to a server document. The structural check refuses items that
 * refer to their own client at or after their own clock (as origin, right
 * origin or parent): such references cannot come from a real Yjs document and
 * make Yjs throw during integration.
 */
export function validateUpdate(update: Uint8Array): string | null {
  let structs: unknown[]
  try {
    structs = Y.decodeUpdate(update).structs
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  }
  for (const s of structs) {
    if (!(s instanceof Y.Item)) continue
    const { client, clock } = s.id
    for (const ref of [s.origin, s.rightOrigin, s.parent]) {
      if (isId(ref) && ref.client === client && ref.clock >= clock) {
        return `item ${client}:${clock} refers to ${ref.client}:${ref.clock}, which cannot precede it`
      }
    }
  }
  return null
}
