import * as Y from 'yjs'

/** A state vector as `{ client: clock }`. */
export type StateVectorObject = Record<string, number>

/** At most this many clients are named in a difference. */
const MAX_LISTED = 10

export interface StateComparison {
  matches: boolean
  expected: StateVectorObject
  actual: StateVectorObject
  difference?: string
}

/**
 * Compare two document states (as updates): equal when their snapshots are
 * (state vector and delete set, `Y.equalSnapshots`) and they hold the same
 * changes waiting for missing dependencies. Yjs identifies content by
 * (client, clock), so equal snapshots mean equal documents. A snapshot is taken
 * from the struct store and merges adjacent deleted structs, so it does not
 * depend on garbage collection or on how items were split.
 */
export function compareStates(expectedUpdate: Uint8Array, actualUpdate: Uint8Array): StateComparison {
  const expected = new Y.Doc({ gc: false })
  const actual = new Y.Doc({ gc: false })
  try {
    Y.applyUpdate(actual, actualUpdate)
    try {
      Y.applyUpdate(expected, expectedUpdate)
    } catch (err) {
      return {
        matches: false, expected: {}, actual: stateVectorObject(Y.decodeStateVector(Y.encodeStateVector(actual))),
        difference: `the end record's state could not be applied by Yjs: ${(err as Error).message}`,
      }
    }
    const a = Y.snapshot(expected)
    const b = Y.snapshot(actual)
    const result: StateComparison = { matches: true, expected: stateVectorObject(a.sv), actual: stateVectorObject(b.sv) }
    const problems: string[] = []
    if (!Y.equalSnapshots(a, b)) {
      const sv = describeStateVectors(a.sv, b.sv)
      if (sv !== null) problems.push(sv)
      const ds = describeDeleteSets(a.ds.clients, b.ds.clients)
      if (ds !== null) problems.push(ds)
    }
    const pending = describePending(expected, actual)
    if (pending !== null) problems.push(pending)
    if (problems.length > 0) {
      result.matches = false
      result.difference = problems.join('; ')
    }
    return result
  } finally {
    expected.destroy()
    actual.destroy()
  }
}

function describeStateVectors(expected: Map<number, number>, actual: Map<number, number>): string | null {
  const clients = [...new Set([...expected.keys(), ...actual.keys()])].sort((x, y) => x - y)
  const diffs: string[] = []
  for (const c of clients) {
    const e = expected.get(c) ?? 0
    const r = actual.get(c) ?? 0
    if (e !== r) diffs.push(`client ${c}: ${e} recorded, ${r} replayed`)
  }
  if (diffs.length === 0) return null
  return `state vectors differ (clock of each client: ${listed(diffs)})`
}

function describeDeleteSets(expected: Map<number, { clock: number; len: number }[]>, actual: Map<number, { clock: number; len: number }[]>): string | null {
  const clients = [...new Set([...expected.keys(), ...actual.keys()])].sort((x, y) => x - y)
  const diffs: string[] = []
  const same = (x: { clock: number; len: number }[], y: { clock: number; len: number }[]): boolean =>
    x.length === y.length && x.every((item, i) => item.clock === y[i]!.clock && item.len === y[i]!.len)
  const deleted = (items: { len: number }[]): number => items.reduce((n, i) => n + i.len, 0)
  for (const c of clients) {
    const e = expected.get(c) ?? []
    const r = actual.get(c) ?? []
    if (!same(e, r)) diffs.push(`client ${c}: ${deleted(e)} deleted in ${e.length} ranges recorded, ${deleted(r)} in ${r.length} replayed`)
  }
  if (diffs.length === 0) return null
  return `delete sets differ (${listed(diffs)})`
}

/** Changes Yjs holds back until their dependencies arrive are not in a snapshot: compared here. */
function describePending(expected: Y.Doc, actual: Y.Doc): string | null {
  const of = (doc: Y.Doc): string => {
    const structs = doc.store.pendingStructs
    const parts: string[] = []
    if (structs !== null) {
      const meta = Y.parseUpdateMeta(structs.update)
      parts.push(`structs ${[...meta.from].map(([c, from]) => `${c}:${from}..${meta.to.get(c)}`).sort().join(',')}`)
    }
    if (doc.store.pendingDs !== null) parts.push('deletions')
    return parts.join(' and ')
  }
  const e = of(expected)
  const r = of(actual)
  if (e === r) return null
  return `changes waiting for missing dependencies differ (recorded: ${e || 'none'}; replayed: ${r || 'none'})`
}

function listed(items: string[]): string {
  return items.length <= MAX_LISTED ? items.join(', ') : `${items.slice(0, MAX_LISTED).join(', ')} and ${items.length - MAX_LISTED} more`
}

export function stateVectorObject(sv: Map<number, number>): StateVectorObject {
  const out: StateVectorObject = {}
  for (const [client, clock] of [...sv].sort((x, y) => x[0] - y[0])) out[String(client)] = clock
  return out
}

export function stateVectorOf(update: Uint8Array): StateVectorObject {
  return stateVectorObject(Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update)))
}

