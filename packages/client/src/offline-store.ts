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
 */
export interface OfflineStore {
  load(document: string): Promise<OfflineSnapshot | null>
  save(document: string, snapshot: OfflineSnapshot): Promise<void>
  remove(document: string): Promise<void>
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
