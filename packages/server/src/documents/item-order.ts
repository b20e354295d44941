import * as Y from 'yjs'
import type { IdLike, InspectedItem } from '@concord/protocol'

/**
 * Every Yjs item names the two characters it was inserted between (its origin and right origin).
 * Yjs places an item deterministically, whatever order updates arrive in, only when those two are
 * in one parent and the right origin comes after the origin: a real Yjs document never makes any
 * other item. A crafted update can (an origin equal to its right origin, a right origin before the
 * origin or in another type), and then the document the server holds differs from the same state
 * loaded afresh: a newcomer sees another text than the editors (ARCHITECTURE.md section 3).
 *
 * `checkItemOrder` decides this before Yjs sees the update, from the document's current state, for
 * items placed next to characters the document has and for the patterns one local transaction
 * makes (an item right after, right before or inside another of the update's own items). Anything
 * else (a merged update whose items were placed next to others' characters it does not carry, a
 * walk past the budget) is decided by `trialItemOrder`: the update applied to a copy, and every
 * new item checked where Yjs put it. Honest clients almost never need the trial.
 */

/** How many items the checks may step over per update before they stop (a crafted right origin far away must not cost a walk of the whole document per item). */
export const ORDER_WALK_BUDGET = 1_000_000

export type OrderCheck = { ok: true } | { ok: false; problem: string } | { ok: 'trial' }

const OK: OrderCheck = { ok: true }
const TRIAL: OrderCheck = { ok: 'trial' }

function sameId(a: IdLike | null, b: IdLike | null): boolean {
  return a === null ? b === null : b !== null && a.client === b.client && a.clock === b.clock
}

function idText(id: IdLike): string {
  return `${id.client}:${id.clock}`
}

/** The item's origin for the part Yjs will integrate: when the document has its first clocks, what follows is placed right after them. */
function effectiveOrigin(x: InspectedItem, state: number): IdLike | null {
  return x.clock < state ? { client: x.client, clock: state - 1 } : x.origin
}

export function checkItemOrder(store: Y.Doc['store'], items: readonly InspectedItem[], budget = ORDER_WALK_BUDGET): OrderCheck {
  const states = new Map<number, number>()
  const stateOf = (client: number): number => {
    let s = states.get(client)
    if (s === undefined) states.set(client, s = Y.getState(store, client))
    return s
  }
  // the update's own items per client, in clock order (Yjs decodes them that way)
  const byClient = new Map<number, InspectedItem[]>()
  for (const it of items) {
    let list = byClient.get(it.client)
    if (list === undefined) byClient.set(it.client, list = [])
    list.push(it)
  }
  const find = (id: IdLike): InspectedItem | undefined => {
    const list = byClient.get(id.client)
    if (list === undefined) return undefined
    let lo = 0
    let hi = list.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const it = list[mid]!
      if (id.clock < it.clock) hi = mid - 1
      else if (id.clock >= it.clock + it.length) lo = mid + 1
      else return it
    }
    return undefined
  }
  let steps = 0
  for (const x of items) {
    const state = stateOf(x.client)
    if (x.clock + x.length <= state) continue // known already: Yjs skips it
    const o = effectiveOrigin(x, state)
    const r = x.rightOrigin
    if (x.clock < state) {
      // Yjs integrates the new part right after the document's last character of this client, but
      // in the parent it takes from the item's own origin (or right origin): they must agree
      const source = x.origin ?? x.rightOrigin
      if (source === null || source.clock >= stateOf(source.client)) return TRIAL
      const prev = Y.getItem(store, o as Y.ID)
      const from = Y.getItem(store, source as Y.ID)
      if (!(prev instanceof Y.Item) || !(from instanceof Y.Item)) return TRIAL
      if (prev.parent !== from.parent || prev.parentSub !== from.parentSub) {
        return { ok: false, problem: `item ${idText(x)} continues ${idText(o!)} in another parent than its origin's` }
      }
      if (r !== null && r.clock >= stateOf(r.client)) return TRIAL
    }
    // the first item of an empty type (no neighbours): nothing to check
    if (o === null && r === null) continue
    const oNew = o !== null && o.clock >= stateOf(o.client)
    const rNew = r !== null && r.clock >= stateOf(r.client)
    if (!oNew && !rNew) {
      const problem = checkBetween(store, x, o, r, Math.max(x.clock, state), budget - steps)
      if (typeof problem === 'number') {
        steps += problem
        continue
      }
      return problem
    }
    // one side open, the other one of the update's own items: always between its neighbours
    if (o === null || r === null) continue
    // next to the update's own new items: the patterns of one transaction, by the same client
    if ((oNew && o.client !== x.client) || (rNew && r.client !== x.client)) return TRIAL
    const y = oNew ? find(o) : undefined
    const z = rNew ? find(r) : undefined
    if ((oNew && y === undefined) || (rNew && z === undefined)) return TRIAL
    const ordered =
      // between two characters of one of its items
      (y !== undefined && o.clock < y.clock + y.length - 1 && r.client === o.client && r.clock === o.clock + 1) ||
      // right after one of its items, before what followed that item
      (y !== undefined && o.clock === y.clock + y.length - 1 && sameId(r, y.rightOrigin)) ||
      // right before one of its items, after what preceded that item
      (z !== undefined && r.clock === z.clock && sameId(o, z.origin))
    if (!ordered) return TRIAL
  }
  return OK
}

/**
 * What the sender of an item certainly had when it made it: its own earlier changes, and its
 * origin and right origin with everything of their clients before them (Yjs integrates a client's
 * changes in clock order). No character it had can lie between its origin and right origin: it
 * saw them next to each other, and characters keep their order.
 */
function knowsOf(x: InspectedItem, ownEnd: number, o: IdLike | null, r: IdLike | null): (client: number, clock: number) => boolean {
  return (client, clock) =>
    (client === x.client && clock < ownEnd) || (o !== null && client === o.client && clock <= o.clock) || (r !== null && client === r.client && clock <= r.clock)
}

/**
 * For an item whose neighbours the document has: they are in one parent, the right one after the
 * origin, and nothing between them is something the sender had (it saw them next to each other:
 * what lies between can only be what others did at the same time). Returns the steps taken, or the
 * problem (a refusal, or a trial past the budget).
 */
function checkBetween(store: Y.Doc['store'], x: InspectedItem, o: IdLike | null, r: IdLike | null, ownEnd: number, budget: number): number | OrderCheck {
  const so = o === null ? null : Y.getItem(store, o as Y.ID)
  const sr = r === null ? null : Y.getItem(store, r as Y.ID)
  // next to collected content, Yjs collects the item too (in every order)
  if ((so !== null && !(so instanceof Y.Item)) || (sr !== null && !(sr instanceof Y.Item))) return 0
  const left = so as Y.Item | null
  const right = sr as Y.Item | null
  const between = `item ${idText(x)} was inserted between ${o === null ? 'the start' : idText(o)} and ${r === null ? 'the end' : idText(r)}`
  if (left !== null && right !== null && (left.parent !== right.parent || left.parentSub !== right.parentSub)) {
    return { ok: false, problem: `${between}, which are in different parents` }
  }
  const knows = knowsOf(x, ownEnd, o, r)
  const had = (client: number, clock: number): OrderCheck => ({ ok: false, problem: `${between}, but ${client}:${clock}, which its sender had, lies between them` })
  if (left !== null && left === right) {
    if (r!.clock <= o!.clock) return { ok: false, problem: `${between}, but ${idText(r!)} does not come after ${idText(o!)}` }
    return r!.clock === o!.clock + 1 ? 0 : had(o!.client, o!.clock + 1)
  }
  // the rest of the origin's item, and the start of the right origin's item, lie between them too
  if (left !== null && o!.clock < left.id.clock + left.length - 1 && knows(left.id.client, o!.clock + 1)) return had(left.id.client, o!.clock + 1)
  if (right !== null && r!.clock > right.id.clock && knows(right.id.client, right.id.clock)) return had(right.id.client, right.id.clock)
  let steps = 0
  if (left !== null) {
    for (let next = left.right; next !== right; next = next.right) {
      if (next === null) return { ok: false, problem: `${between}, but ${idText(r!)} does not come after ${idText(o!)}` }
      if (++steps > budget) return TRIAL
      if (knows(next.id.client, next.id.clock)) return had(next.id.client, next.id.clock)
    }
  } else {
    for (let prev = right!.left; prev !== null; prev = prev.left) {
      if (++steps > budget) return TRIAL
      if (knows(prev.id.client, prev.id.clock)) return had(prev.id.client, prev.id.clock)
    }
  }
  return steps
}

/**
 * The order check by trial: the update applied to a copy of the document (the document itself is
 * untouched), then every new item looked up where Yjs put it, which must be after its origin and
 * before its right origin, in their parent. Null when the update is in order.
 */
export function trialItemOrder(doc: Y.Doc, update: Uint8Array, items: readonly InspectedItem[], budget = ORDER_WALK_BUDGET): string | null {
  const store = doc.store
  const starts = new Map<number, number>()
  for (const x of items) if (!starts.has(x.client)) starts.set(x.client, Y.getState(store, x.client))
  const copy = new Y.Doc({ gc: doc.gc })
  try {
    Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
    Y.applyUpdate(copy, update)
  } catch (err) {
    return `the update could not be integrated: ${err instanceof Error ? err.message : String(err)}`
  }
  let steps = 0
  for (const x of items) {
    const state = starts.get(x.client)!
    if (x.clock + x.length <= state) continue
    const at = { client: x.client, clock: Math.max(x.clock, state) }
    const sx = Y.getItem(copy.store, at as Y.ID)
    if (!(sx instanceof Y.Item)) continue
    const o = effectiveOrigin(x, state)
    const r = x.rightOrigin
    if (o !== null || r !== null) {
      const between = checkBetween(copy.store, x, o, r, Math.max(x.clock, state), budget - steps)
      if (typeof between !== 'number') return between.ok === false ? between.problem : 'the update is too costly to check'
      steps += between
    }
    if (o !== null) {
      const so = Y.getItem(copy.store, o as Y.ID)
      if (so instanceof Y.Item && so !== sx) {
        if (so.parent !== sx.parent || so.parentSub !== sx.parentSub) return `item ${idText(x)} is not in the parent of its origin ${idText(o)}`
        let prev = sx.left
        while (prev !== null && prev !== so) {
          if (++steps > budget) return 'the update is too costly to check'
          prev = prev.left
        }
        if (prev === null) return `item ${idText(x)} does not come after its origin ${idText(o)}`
      }
    }
    if (r !== null) {
      const sr = Y.getItem(copy.store, r as Y.ID)
      if (sr === sx) return `item ${idText(x)} does not come before its right origin ${idText(r)}`
      if (sr instanceof Y.Item) {
        if (sr.parent !== sx.parent || sr.parentSub !== sx.parentSub) return `item ${idText(x)} is not in the parent of its right origin ${idText(r)}`
        let next = sx.right
        while (next !== null && next !== sr) {
          if (++steps > budget) return 'the update is too costly to check'
          next = next.right
        }
        if (next === null) return `item ${idText(x)} does not come before its right origin ${idText(r)}`
      }
    }
  }
  return null
}
