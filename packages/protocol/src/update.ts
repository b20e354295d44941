import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'

export type IdLike = { client: number; clock: number }

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
 * make Yjs throw during integration; and delete ranges or items of length 0,
 * on which Yjs throws while applying.
 */
export function validateUpdate(update: Uint8Array): string | null {
  return inspectUpdate(update).problem
}

/** What `inspectUpdate` finds: a problem (as `validateUpdate`), the delete ranges, and where the update's own items end. */
export interface UpdateInspection {
  problem: string | null
  deletes: Map<number, { clock: number; len: number }[]>
  /** Per client, the clock just after the last item the update carries. */
  ends: Map<number, number>
  /** Per client, the clock of the first struct the update carries (its items integrate only if the document has every clock before it). */
  starts: Map<number, number>
  /**
   * Per client, the clock the document must have reached (exclusive) for the update's items to integrate:
   * what they refer to (origin, right origin, parent).
   */
  needs: Map<number, number>
  /** Per client, the end of the last gap (skip) inside the update: what follows a gap needs the document to hold it. */
  gaps: Map<number, number>
  /** The update's items in the order Yjs decodes them, with the neighbours they were inserted between (for the server's order check). */
  items: InspectedItem[]
}

/** An item an update carries: its id and length, and the ids of the characters it was inserted between (null: the start or end of its parent). */
export interface InspectedItem {
  client: number
  clock: number
  length: number
  origin: IdLike | null
  rightOrigin: IdLike | null
}

/** `validateUpdate`, also returning what the update deletes and inserts (one decode for all). */
export function inspectUpdate(update: Uint8Array): UpdateInspection {
  const none = new Map<number, { clock: number; len: number }[]>()
  const ends = new Map<number, number>()
  const starts = new Map<number, number>()
  const needs = new Map<number, number>()
  const gaps = new Map<number, number>()
  const items: InspectedItem[] = []
  const need = (client: number, end: number): void => { if (end > (needs.get(client) ?? 0)) needs.set(client, end) }
  let structs: unknown[]
  let ds: { clients: Map<number, { clock: number; len: number }[]> }
  try {
    const decoded = Y.decodeUpdate(update)
    structs = decoded.structs
    ds = decoded.ds as unknown as typeof ds
  } catch (err) {
    return { problem: err instanceof Error ? err.message : String(err), deletes: none, ends, starts, needs, gaps, items }
  }
  // a delete range of length 0 decodes, but Yjs throws ("Unexpected case") while
  // applying it, after the transaction has begun: the server would have to reload the document
  for (const [client, ranges] of ds.clients) {
    for (const r of ranges) {
      if (!(r.len > 0) || !Number.isSafeInteger(r.clock + r.len) || r.clock < 0) {
        return { problem: `delete set of client ${client} has an invalid range ${r.clock}+${r.len}`, deletes: none, ends, starts, needs, gaps, items }
      }
    }
  }
  for (const s of structs) {
    const len = (s as { length?: number }).length
    if (typeof len === 'number' && !(len > 0)) return { problem: 'an item of length 0', deletes: none, ends, starts, needs, gaps, items }
    const id = (s as { id?: IdLike }).id
    // clocks beyond 2^53 lose precision (clock + 1 === clock): Yjs then loops for ever merging them
    if (id !== undefined && (!Number.isSafeInteger(id.clock + (typeof len === 'number' ? len : 0)) || id.clock < 0 || !Number.isSafeInteger(id.client))) {
      return { problem: `struct ${id.client}:${id.clock} has a client or clock beyond 2^53`, deletes: none, ends, starts, needs, gaps, items }
    }
    if (s instanceof Y.Skip) {
      // a gap inside the update: what follows it needs the document to hold the skipped clocks
      gaps.set(s.id.client, Math.max(gaps.get(s.id.client) ?? 0, s.id.clock + s.length))
      continue
    }
    if (id !== undefined && typeof len === 'number') {
      ends.set(id.client, Math.max(ends.get(id.client) ?? 0, id.clock + len))
      if (id.clock < (starts.get(id.client) ?? Infinity)) starts.set(id.client, id.clock)
    }
    if (!(s instanceof Y.Item)) continue
    const { client, clock } = s.id
    for (const ref of [s.origin, s.rightOrigin, s.parent]) {
      if (isId(ref) && (!Number.isSafeInteger(ref.clock) || ref.clock < 0 || !Number.isSafeInteger(ref.client))) {
        return { problem: `item ${client}:${clock} refers to ${ref.client}:${ref.clock}, beyond 2^53`, deletes: none, ends, starts, needs, gaps, items }
      }
      if (isId(ref) && ref.client === client && ref.clock >= clock) {
        return { problem: `item ${client}:${clock} refers to ${ref.client}:${ref.clock}, which cannot precede it`, deletes: none, ends, starts, needs, gaps, items }
      }
      if (isId(ref)) need(ref.client, ref.clock + 1)
    }
    items.push({ client, clock, length: s.length, origin: s.origin, rightOrigin: s.rightOrigin })
  }
  return { problem: null, deletes: ds.clients, ends, starts, needs, gaps, items }
}

/** Encode a state vector held as a map of client id to clock (as Yjs's `encodeStateVector` would for a document in that state). */
export function encodeStateVectorOf(state: ReadonlyMap<number, number>): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, state.size)
  for (const [client, clock] of state) {
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
  }
  return encoding.toUint8Array(e)
}
