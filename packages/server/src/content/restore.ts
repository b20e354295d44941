import * as Y from 'yjs'
import { equalityDeep } from 'lib0/function'
import { describeDocument, typedRoot, type RootShape } from './document-export.js'
import { align, sequenceRuns, type Run } from './alignment.js'

/** Stands for an embed or an embedded type in a restored text: one position, no character. */
const EMBED_PLACEHOLDER = '\uFFFC'

/**
 * A Yjs update that, applied to a doc holding `current`, makes its visible content equal to
 * `target`'s, as a new change by a fresh random client (history is not rewritten, so concurrent
 * and offline edits merge with it). Null when nothing differs.
 *
 * Every root of either version is restored by its shape, and by identity wherever both versions
 * hold the same item, so that only what changed since `target` is touched:
 * - text: characters added since are deleted, characters deleted since are inserted again (with
 *   the target's formatting) where they were; unchanged characters keep their items, so text that
 *   an offline client anchored to them stays in place. Formatting of unchanged text is not
 *   restored. The root's own attributes (`setAttribute`) are restored like map keys.
 * - map: keys absent in the target are deleted; keys whose value differs are set to the target's
 *   value, where a nested shared type is a `clone()` of the target's (a new type); a nested type
 *   that is the same item in both versions is restored recursively instead.
 * - array: elements by identity as for text; re-inserted shared types are clones; an element that
 *   is the same nested type in both is restored recursively.
 * - xml: children by identity as for arrays (re-inserted nodes are clones of the target's), and
 *   recursively into each element present in both (attributes as map keys, children) and each
 *   text node (as text).
 * - a root that is empty or absent in the target is cleared; one absent in `current` is created.
 * A root whose shape differs between the two versions (not possible for versions of one document)
 * is left alone.
 */
export function restoreUpdate(current: Uint8Array, target: Uint8Array): Uint8Array | null {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, current)
  const goal = new Y.Doc()
  Y.applyUpdate(goal, target)
  const currentShapes = shapesByName(doc)
  const targetShapes = shapesByName(goal)
  const steps: (() => void)[] = []
  for (const name of new Set([...currentShapes.keys(), ...targetShapes.keys()])) {
    const from = currentShapes.get(name) ?? 'empty'
    const to = targetShapes.get(name) ?? 'empty'
    if (to === 'empty') {
      if (from !== 'empty') {
        const type = typedRoot(doc, name, from)
        steps.push(() => clearType(type))
      }
    } else if (from === 'empty' || from === to) {
      const type = typedRoot(doc, name, to)
      const goalType = typedRoot(goal, name, to)
      steps.push(() => restoreType(type, goalType))
    }
  }
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => { updates.push(update) })
  doc.transact(() => {
    for (const step of steps) step()
  })
  doc.destroy()
  goal.destroy()
  return updates.length === 0 ? null : updates.length === 1 ? updates[0] : Y.mergeUpdates(updates)
}

function shapesByName(doc: Y.Doc): Map<string, RootShape> {
  return new Map(describeDocument(doc).map(({ name, shape }) => [name, shape]))
}

type ListType = Y.AbstractType<any> & {
  toArray(): unknown[]
  insert(index: number, content: any[]): void
  delete(index: number, length: number): void
}

function restoreType(current: Y.AbstractType<any>, target: Y.AbstractType<any>): void {
  if (current.constructor !== target.constructor) return
  if (current instanceof Y.XmlElement) {
    restoreEntries(current, target, (k, v) => current.setAttribute(k, v as string), k => current.removeAttribute(k))
    restoreList(current as unknown as ListType, target as unknown as ListType)
  } else if (current instanceof Y.XmlFragment) {
    restoreList(current as unknown as ListType, target as unknown as ListType)
  } else if (current instanceof Y.Text) {
    // Y.XmlText included: its attributes and its text.
    restoreEntries(current, target, (k, v) => current.setAttribute(k, v), k => current.removeAttribute(k))
    restoreText(current, target as Y.Text)
  } else if (current instanceof Y.Array) {
    restoreList(current as unknown as ListType, target as unknown as ListType)
  } else if (current instanceof Y.Map) {
    restoreEntries(current, target, (k, v) => current.set(k, v), k => current.delete(k))
  }
}

function clearType(type: Y.AbstractType<any>): void {
  if (type instanceof Y.Map) {
    for (const key of Array.from(type.keys())) type.delete(key)
  } else if (type instanceof Y.Text || type instanceof Y.Array || type instanceof Y.XmlFragment) {
    if (type.length > 0) type.delete(0, type.length)
  }
}

function liveEntries(type: Y.AbstractType<any>): Map<string, Y.Item> {
  const entries = new Map<string, Y.Item>()
  type._map.forEach((item, key) => {
    if (!item.deleted) entries.set(key, item)
  })
  return entries
}

function entryValue(item: Y.Item): unknown {
  const content = item.content.getContent()
  return content[content.length - 1]
}

/** Map keys or attributes: deletes keys absent in the target, sets keys whose value differs. */
function restoreEntries(current: Y.AbstractType<any>, target: Y.AbstractType<any>, set: (key: string, value: unknown) => void, remove: (key: string) => void): void {
  const currentEntries = liveEntries(current)
  const targetEntries = liveEntries(target)
  for (const key of currentEntries.keys()) {
    if (!targetEntries.has(key)) remove(key)
  }
  for (const [key, targetItem] of targetEntries) {
    const value = entryValue(targetItem)
    const currentItem = currentEntries.get(key)
    if (currentItem === undefined) {
      set(key, cloneValue(value))
    } else if (Y.compareIDs(currentItem.id, targetItem.id)) {
      // The same entry: a plain value is unchanged; a shared type may have changed inside.
      const existing = entryValue(currentItem)
      if (existing instanceof Y.AbstractType && value instanceof Y.AbstractType) restoreType(existing, value)
    } else if (!sameValue(entryValue(currentItem), value)) {
      set(key, cloneValue(value))
    }
  }
}

/** Array elements or xml children, by identity; equal shared types are restored recursively. */
function restoreList(current: ListType, target: ListType): void {
  const currentValues = current.toArray()
  const targetValues = target.toArray()
  const ranges = align(sequenceRuns(target), targetValues.length, sequenceRuns(current))
  let pos = 0
  for (const range of ranges) {
    if (range.kind === 'equal') {
      for (let k = 0; k < range.len; k++) {
        const existing = currentValues[range.newer + k]
        const wanted = targetValues[range.older + k]
        if (existing instanceof Y.AbstractType && wanted instanceof Y.AbstractType) restoreType(existing, wanted)
      }
      pos += range.len
    } else if (range.kind === 'insert') {
      current.delete(pos, range.len)
    } else {
      current.insert(pos, targetValues.slice(range.older, range.older + range.len).map(cloneValue))
      pos += range.len
    }
  }
}

/** What a text's visible positions hold, to insert parts of it again. */
interface TextSource {
  runs: Run[]
  /** One character per position; embeds are EMBED_PLACEHOLDER. */
  text: string
  /** Embed payloads (objects, or shared types) by position. */
  embeds: Map<number, unknown>
  /** Formatting in effect from `index` on, in position order. */
  formats: { index: number; attributes: Record<string, unknown> }[]
}

function textSource(text: Y.Text): TextSource {
  const runs = sequenceRuns(text)
  const parts: string[] = []
  const embeds = new Map<number, unknown>()
  const formats: TextSource['formats'] = []
  let attributes: Record<string, unknown> = {}
  let length = 0
  for (let item = text._start; item !== null; item = item.right) {
    if (item.deleted) continue
    const content = item.content
    if (content instanceof Y.ContentFormat) {
      attributes = { ...attributes }
      if (content.value === null) delete attributes[content.key]
      else attributes[content.key] = content.value
      formats.push({ index: length, attributes })
    } else if (content instanceof Y.ContentString) {
      parts.push(content.str)
      length += content.str.length
    } else if (item.countable) {
      const payload = content instanceof Y.ContentEmbed ? content.embed : content instanceof Y.ContentType ? content.type : undefined
      for (let k = 0; k < item.length; k++) {
        if (payload !== undefined) embeds.set(length + k, payload)
        parts.push(EMBED_PLACEHOLDER)
      }
      length += item.length
    }
  }
  return { runs, text: parts.join(''), embeds, formats }
}

function restoreText(current: Y.Text, target: Y.Text): void {
  const source = textSource(target)
  const ranges = align(source.runs, source.text.length, sequenceRuns(current))
  let pos = 0
  for (const range of ranges) {
    if (range.kind === 'equal') pos += range.len
    else if (range.kind === 'insert') current.delete(pos, range.len)
    else pos = insertFromSource(current, pos, source, range.older, range.len)
  }
}

/** Inserts positions [start, start+len) of the source at `pos`, with their formatting; returns the next position. */
function insertFromSource(text: Y.Text, pos: number, source: TextSource, start: number, len: number): number {
  const end = start + len
  let k = start
  while (k < end) {
    const f = lastFormatAt(source.formats, k)
    const attributes = f < 0 ? {} : source.formats[f].attributes
    const boundary = f + 1 < source.formats.length ? Math.min(end, source.formats[f + 1].index) : end
    while (k < boundary) {
      const embed = source.embeds.get(k)
      if (embed !== undefined) {
        text.insertEmbed(pos, cloneValue(embed) as object, { ...attributes })
        pos++
        k++
        continue
      }
      let stop = k + 1
      if (source.embeds.size === 0) stop = boundary
      else while (stop < boundary && !source.embeds.has(stop)) stop++
      text.insert(pos, source.text.slice(k, stop), { ...attributes })
      pos += stop - k
      k = stop
    }
  }
  return pos
}

/** The last format entry at or before `index`, or -1. */
function lastFormatAt(formats: TextSource['formats'], index: number): number {
  let lo = 0
  let hi = formats.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (formats[mid].index <= index) lo = mid + 1
    else hi = mid
  }
  return lo - 1
}

/** A value to write into the restoring doc: shared types are cloned (new types), subdocs re-created by guid. */
function cloneValue(value: unknown): unknown {
  if (value instanceof Y.AbstractType) return value.clone()
  if (value instanceof Y.Doc) return new Y.Doc({ guid: value.guid, meta: value.meta, shouldLoad: value.shouldLoad })
  return value
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Y.AbstractType || b instanceof Y.AbstractType) {
    return a instanceof Y.AbstractType && b instanceof Y.AbstractType && a.constructor === b.constructor && equalityDeep(a.toJSON(), b.toJSON())
  }
  if (a instanceof Y.Doc || b instanceof Y.Doc) return a instanceof Y.Doc && b instanceof Y.Doc && a.guid === b.guid
  return equalityDeep(a, b)
}
