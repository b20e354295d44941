import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { decodeSnapshot, type OfflineSnapshot } from './offline-store.js'

/**
 * What a store shared by several writers (tabs) keeps for one document: one state that is the
 * union of every writer's, and each writer's unacked updates as its own section. A writer's save
 * replaces only its own section and merges its state into the shared one, so two tabs never
 * overwrite each other's offline edits.
 */
export interface SharedRecord {
  /** The union of every writer's document (a Yjs update). */
  state: Uint8Array
  /** Who wrote `state` last: a writer saving over its own state needs no merge (a document only grows). */
  lastWriter: string
  sections: WriterSection[]
}

export interface WriterSection {
  writer: string
  nextSeq: number
  /** When the writer last saved (ms since the epoch), for people reading the store. */
  savedAt: number
  pending: { seq: number; update: Uint8Array }[]
}

/** v1 was a single writer's `encodeSnapshot`; v2 is this record. */
const RECORD_VERSION = 2
/** The writer of a v1 record: nobody holds it, so the first load adopts its pending updates. */
export const LEGACY_WRITER = ''

export function encodeSharedRecord(record: SharedRecord): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, RECORD_VERSION)
  encoding.writeVarUint8Array(e, record.state)
  encoding.writeVarString(e, record.lastWriter)
  encoding.writeVarUint(e, record.sections.length)
  for (const s of record.sections) {
    encoding.writeVarString(e, s.writer)
    encoding.writeVarUint(e, s.nextSeq)
    encoding.writeVarUint(e, s.savedAt)
    encoding.writeVarUint(e, s.pending.length)
    for (const p of s.pending) {
      encoding.writeVarUint(e, p.seq)
      encoding.writeVarUint8Array(e, p.update)
    }
  }
  return encoding.toUint8Array(e)
}

/** Reads a v2 record, or a v1 snapshot as one section of the legacy writer. Throws on anything else. */
export function decodeSharedRecord(bytes: Uint8Array): SharedRecord {
  const d = decoding.createDecoder(bytes)
  const version = decoding.readVarUint(d)
  if (version === 1) {
    const old = decodeSnapshot(bytes)
    return { state: old.state, lastWriter: LEGACY_WRITER, sections: [{ writer: LEGACY_WRITER, nextSeq: old.nextSeq, savedAt: 0, pending: old.pending }] }
  }
  if (version !== RECORD_VERSION) throw new Error(`unknown offline record format ${version}`)
  const state = decoding.readVarUint8Array(d)
  const lastWriter = decoding.readVarString(d)
  const sections: WriterSection[] = []
  for (let n = decoding.readVarUint(d); n > 0; n--) {
    const writer = decoding.readVarString(d)
    const nextSeq = decoding.readVarUint(d)
    const savedAt = decoding.readVarUint(d)
    const pending: WriterSection['pending'] = []
    for (let k = decoding.readVarUint(d); k > 0; k--) pending.push({ seq: decoding.readVarUint(d), update: decoding.readVarUint8Array(d) })
    sections.push({ writer, nextSeq, savedAt, pending })
  }
  return { state, lastWriter, sections }
}

/**
 * What `writer` loads: the shared state, its own pending updates under their seqs, then those of
 * the writers `gone` says are gone, under new seqs after its own. `adopted` names those writers
 * (their sections go at the writer's next save).
 */
export function viewOf(record: SharedRecord, writer: string, gone: (other: string) => boolean): { snapshot: OfflineSnapshot; adopted: string[] } {
  const own = record.sections.find(s => s.writer === writer)
  const pending = own === undefined ? [] : [...own.pending]
  let nextSeq = Math.max(1, own?.nextSeq ?? 1, ...pending.map(p => p.seq + 1))
  const adopted: string[] = []
  for (const s of record.sections) {
    if (s.writer === writer || !gone(s.writer)) continue
    adopted.push(s.writer)
    for (const p of s.pending) pending.push({ seq: nextSeq++, update: p.update })
  }
  return { snapshot: { state: record.state, pending, nextSeq }, adopted }
}

/**
 * The record after `writer` saved `snapshot`: its section replaced, the sections in `drop`
 * (adopted by it, so its own pending holds their updates now) and every other section left empty
 * removed, and its state merged into the shared one.
 */
export function withSave(record: SharedRecord | null, writer: string, snapshot: OfflineSnapshot, drop: ReadonlySet<string>, now: number): SharedRecord {
  const sections = (record?.sections ?? []).filter(s => s.writer !== writer && !drop.has(s.writer) && s.pending.length > 0)
  sections.push({ writer, nextSeq: snapshot.nextSeq, savedAt: now, pending: snapshot.pending })
  let state = snapshot.state
  // another writer saved since our last save: its state may hold what ours lacks
  if (record !== null && record.lastWriter !== writer) {
    try {
      state = Y.mergeUpdates([record.state, snapshot.state])
    } catch {
      // the kept state is unreadable: ours replaces it (the other writers' pending sections stay)
    }
  }
  return { state, lastWriter: writer, sections }
}
