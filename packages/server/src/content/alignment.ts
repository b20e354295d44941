import type * as Y from 'yjs'

/**
 * Identity of content across two versions of one document: the runs of consecutive Yjs ids a
 * sequence holds (visible or as tombstones), and the alignment of two versions' runs into equal,
 * inserted and deleted ranges. Used by the diff (content-ops.ts) and by restore (restore.ts).
 */

export type DiffOpKind = 'equal' | 'insert' | 'delete'

/**
 * Consecutive ids (client, clock … clock+len-1) of one item. `index` is the position of the first
 * one among the visible units of its side; -1 marks a tombstone (deleted, still in the list).
 * `extent`: how many units after the run belong to the node it stands for (the line after the
 * '\n' of an xml textblock), so that when the node is deleted its whole text is deleted with it.
 */
export interface Run {
  client: number
  clock: number
  len: number
  index: number
  extent?: number
}

/** Every countable item of a sequence (text, array, xml children), as Yjs counts positions. */
export function sequenceRuns(type: Y.AbstractType<any>): Run[] {
  const runs: Run[] = []
  let index = 0
  for (let item = type._start; item !== null; item = item.right) {
    if (item.deleted) {
      runs.push({ client: item.id.client, clock: item.id.clock, len: item.length, index: -1 })
    } else if (item.countable) {
      runs.push({ client: item.id.client, clock: item.id.clock, len: item.length, index })
      index += item.length
    }
  }
  return runs
}

export interface Range {
  kind: DiffOpKind
  /** First unit in the older version (equal, delete), else -1. */
  older: number
  /** First unit in the newer version (equal, insert), else -1. */
  newer: number
  len: number
  /** Writer of inserted units, else -1. */
  client: number
}

/** The older version's visible runs of one client, sorted by clock. */
interface ClientRuns {
  clocks: number[]
  ends: number[]
  indexes: number[]
  extents: number[]
}

function indexByClient(runs: readonly Run[]): Map<number, ClientRuns> {
  const byClient = new Map<number, Run[]>()
  for (const run of runs) {
    if (run.index < 0) continue
    const list = byClient.get(run.client)
    if (list === undefined) byClient.set(run.client, [run])
    else list.push(run)
  }
  const out = new Map<number, ClientRuns>()
  for (const [client, list] of byClient) {
    list.sort((a, b) => a.clock - b.clock)
    out.set(client, {
      clocks: list.map(r => r.clock),
      ends: list.map(r => r.clock + r.len),
      indexes: list.map(r => r.index),
      extents: list.map(r => r.extent ?? 0),
    })
  }
  return out
}

/** The first k with clocks[k] + len > clock, i.e. the first run that ends after `clock`. */
function firstEndingAfter(runs: ClientRuns, clock: number): number {
  let lo = 0
  let hi = runs.ends.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (runs.ends[mid] <= clock) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * Walks the newer version's runs (tombstones included) and classifies every unit: visible in both
 * (equal), visible in the newer one only (insert), visible in the older one and a tombstone in the
 * newer one (delete). The older units are consumed in their order; one that the walk skipped over
 * (not in the newer list: not versions of one document) is reported as deleted before the next
 * older unit that is reported, or at the end, so the invariants on the texts hold for any input.
 */
export function align(olderRuns: readonly Run[], olderLength: number, newerRuns: readonly Run[]): Range[] {
  const index = indexByClient(olderRuns)
  const out: Range[] = []
  let cursor = 0

  const emit = (kind: DiffOpKind, older: number, newer: number, len: number, client: number): void => {
    const last = out[out.length - 1]
    if (last !== undefined && last.kind === kind && last.client === client &&
        (older < 0 || last.older + last.len === older) && (newer < 0 || last.newer + last.len === newer)) {
      last.len += len
    } else {
      out.push({ kind, older, newer, len, client })
    }
  }

  const consume = (kind: 'equal' | 'delete', older: number, newer: number, len: number, client: number): void => {
    if (older < cursor) {
      // Already reported (out of order): the older copy counted as deleted, so a visible newer one is new.
      const seen = Math.min(len, cursor - older)
      if (kind === 'equal') emit('insert', -1, newer, seen, client)
      older += seen
      newer += seen
      len -= seen
      if (len === 0) return
    }
    if (older > cursor) emit('delete', cursor, -1, older - cursor, -1)
    emit(kind, older, kind === 'equal' ? newer : -1, len, -1)
    cursor = older + len
  }

  for (const run of newerRuns) {
    const visible = run.index >= 0
    const runs = index.get(run.client)
    if (runs === undefined) {
      if (visible) emit('insert', -1, run.index, run.len, run.client)
      continue
    }
    const end = run.clock + run.len
    let clock = run.clock
    let k = firstEndingAfter(runs, clock)
    while (clock < end) {
      // Units [clock, next) are not visible in the older version.
      const next = k < runs.clocks.length ? Math.min(end, Math.max(clock, runs.clocks[k])) : end
      if (next > clock) {
        if (visible) emit('insert', -1, run.index + clock - run.clock, next - clock, run.client)
        clock = next
        continue
      }
      const stop = Math.min(end, runs.ends[k])
      const older = runs.indexes[k] + clock - runs.clocks[k]
      if (visible) consume('equal', older, run.index + clock - run.clock, stop - clock, run.client)
      else consume('delete', older, -1, stop - clock + (stop === runs.ends[k] ? runs.extents[k] : 0), -1)
      clock = stop
      k++
    }
  }
  if (cursor < olderLength) emit('delete', cursor, -1, olderLength - cursor, -1)
  return out
}
