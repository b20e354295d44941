import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** What the client keeps locally for one document. */
export interface OfflineSnapshot {
  /** The whole local document (Yjs update), so a restart shows everything. */
  state: Uint8Array
  /** Local updates the server has not acked as durable yet, by seq. */
  pending: { seq: number; update: Uint8Array }[]
  /** Next seq to use (seqs are never reused while unacked). */
  nextSeq: number
}

/**
 * Local persistence for offline-first editing. `save` replaces what is kept
 * for a document; the client calls it after local edits, received updates and
 * acks (coalesced, one save in flight per document).
 *
 * Several writers may share one store (tabs of one origin share IndexedDB): each open handle is
 * one writer, named by the `writer` id it passes to `load` and `save`. A store that keeps writers
 * apart (the IndexedDB store does) keeps each writer's pending updates as its own section, so that
 * no writer's save overwrites another's unsent edits, and hands the sections of writers that are
 * gone (their tab closed or crashed) to a live one through `load` and `adopt`. A single-writer
 * store (memory, file) ignores `writer`.
 */
export interface OfflineStore {
  /**
   * What is kept for `document`: the whole state, and as `pending` this writer's own unacked
   * updates plus those of writers that are gone (adopted: dropped from the store at this
   * writer's next save, which holds them from then on).
   */
  load(document: string, writer?: string): Promise<OfflineSnapshot | null>
  save(document: string, snapshot: OfflineSnapshot, writer?: string): Promise<void>
  remove(document: string): Promise<void>
  /**
   * Shared stores: the pending updates of writers that went away since `load` (or the last
   * `adopt`), now this writer's to send (dropped from their sections at its next save).
   */
  adopt?(document: string, writer: string): Promise<Uint8Array[]>
  /** Shared stores: this writer is done with `document` (its handle closed); others may adopt what it left. */
  release?(document: string, writer: string): void
}

/** Keeps snapshots in memory: survives reconnects, not restarts. The fallback store. */
export function createMemoryOfflineStore(): OfflineStore {
  const docs = new Map<string, Uint8Array>()
  return {
    async load(document) {
      const bytes = docs.get(document)
      return bytes === undefined ? null : decodeSnapshot(bytes)
    },
    async save(document, snapshot) {
      docs.set(document, encodeSnapshot(snapshot))
    },
    async remove(document) {
      docs.delete(document)
    },
  }
}

const FORMAT_VERSION = 1

/** Binary form of a snapshot: version, nextSeq, state, then (seq, update) pairs. */
export function encodeSnapshot(snapshot: OfflineSnapshot): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, FORMAT_VERSION)
  encoding.writeVarUint(e, snapshot.nextSeq)
  encoding.writeVarUint8Array(e, snapshot.state)
  encoding.writeVarUint(e, snapshot.pending.length)
  for (const p of snapshot.pending) {
    encoding.writeVarUint(e, p.seq)
    encoding.writeVarUint8Array(e, p.update)
  }
  return encoding.toUint8Array(e)
}

export function decodeSnapshot(bytes: Uint8Array): OfflineSnapshot {
  const d = decoding.createDecoder(bytes)
  const version = decoding.readVarUint(d)
  if (version !== FORMAT_VERSION) throw new Error(`unknown offline snapshot format ${version}`)
  const nextSeq = decoding.readVarUint(d)
  const state = decoding.readVarUint8Array(d)
  const n = decoding.readVarUint(d)
  const pending: OfflineSnapshot['pending'] = []
  for (let i = 0; i < n; i++) pending.push({ seq: decoding.readVarUint(d), update: decoding.readVarUint8Array(d) })
  return { state, pending, nextSeq }
}
