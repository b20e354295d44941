import { createHash } from 'node:crypto'
import { ConfigError } from '../config/server-config.js'

/**
 * Where a document lives when the documents are partitioned over several PostgreSQL servers:
 * rendezvous (highest-random-weight) hashing of the document's name over the partitions' ids.
 *
 *   home(doc) = the partition id p with the greatest SHA-256(utf8(p) ‖ 0x00 ‖ utf8(doc)),
 *               digests compared as unsigned big-endian numbers
 *
 * It depends only on the set of ids, not on their order, nor on the servers' URLs. Adding a
 * partition moves only the documents the new partition wins (about 1/n of them); the others keep
 * their home. Removing one moves only its own documents.
 */
export class Placement {
  readonly ids: readonly string[]
  /** Recent answers: a document's every append is routed, and a digest per partition costs a few microseconds. */
  readonly #cache = new Map<string, string>()

  constructor(ids: readonly string[]) {
    if (ids.length === 0) throw new ConfigError('a partitioned store needs at least one partition')
    for (const id of ids) checkPartitionId(id)
    if (new Set(ids).size !== ids.length) throw new ConfigError(`partition ids must be distinct: ${ids.join(', ')}`)
    this.ids = [...ids].sort()
  }

  /** The id of `document`'s partition. */
  home(document: string): string {
    const cached = this.#cache.get(document)
    if (cached !== undefined) return cached
    const id = homePartition(document, this.ids)
    if (this.#cache.size >= CACHE_ENTRIES) this.#cache.clear()
    this.#cache.set(document, id)
    return id
  }
}

const CACHE_ENTRIES = 10_000

/** The rendezvous choice itself (no cache). */
export function homePartition(document: string, ids: readonly string[]): string {
  let best: Buffer | null = null
  let bestId = ''
  for (const id of ids) {
    const weight = createHash('sha256').update(id, 'utf8').update(SEPARATOR).update(document, 'utf8').digest()
    const order = best === null ? 1 : Buffer.compare(weight, best)
    // equal digests cannot happen in practice; the smaller id wins then, so the answer never depends on order
    if (order > 0 || (order === 0 && id < bestId)) {
      best = weight
      bestId = id
    }
  }
  return bestId
}

const SEPARATOR = Buffer.from([0])

/** Letters, digits, `_` and `-`, starting with a letter or digit, at most 63 characters. */
const PARTITION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/

export function checkPartitionId(id: string): void {
  if (!PARTITION_ID.test(id)) throw new ConfigError(`invalid partition id ${JSON.stringify(id)}: letters, digits, _ and -, starting with a letter or digit, at most 63 characters`)
}
