import type { AppendItem } from './sqlite-log.js'

/** An append batch as the worker receives it: see `packAppendBatch`. */
export interface PackedAppendBatch {
  /** Document names and user ids, each once. */
  strings: string[]
  /** Per item: document (index into strings), user (index, -1 for none), at, update length. */
  meta: Float64Array
  /** Every update, one after the other. */
  data: Uint8Array
}

export function packAppendBatch(batch: AppendItem[]): PackedAppendBatch {
  const strings: string[] = []
  const index = new Map<string, number>()
  const intern = (s: string): number => {
    let i = index.get(s)
    if (i === undefined) {
      i = strings.length
      strings.push(s)
      index.set(s, i)
    }
    return i
  }
  const meta = new Float64Array(batch.length * 4)
  let total = 0
  for (const item of batch) total += item.record.update.byteLength
  const data = new Uint8Array(total)
  let offset = 0
  batch.forEach((item, i) => {
    const { update, userId, at } = item.record
    meta[i * 4] = intern(item.document)
    meta[i * 4 + 1] = userId == null ? -1 : intern(userId)
    meta[i * 4 + 2] = at ?? Date.now()
    meta[i * 4 + 3] = update.byteLength
    data.set(update, offset)
    offset += update.byteLength
  })
  return { strings, meta, data }
}

export function unpackAppendBatch({ strings, meta, data }: PackedAppendBatch): AppendItem[] {
  const batch: AppendItem[] = []
  let offset = 0
  for (let i = 0; i < meta.length; i += 4) {
    const length = meta[i + 3]!
    const user = meta[i + 1]!
    batch.push({
      document: strings[meta[i]!]!,
      record: { update: data.subarray(offset, offset + length), userId: user < 0 ? null : strings[user]!, at: meta[i + 2]! },
    })
    offset += length
  }
  return batch
}
