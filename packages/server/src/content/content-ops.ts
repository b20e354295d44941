import * as Y from 'yjs'
import { equalityDeep } from 'lib0/function'
import { describeDocument, documentToText, typedRoot, type RootShape } from './document-export.js'

/**
 * Operations on stored versions of a document: who wrote what, what changed between two versions,
 * and how to bring a document back to an earlier version.
 *
 * A version is a full Yjs snapshot (`Y.encodeStateAsUpdate` of the server doc). The server doc
 * garbage-collects, so text deleted before a version is in it only as ContentDeleted items: their
 * ids (client, clock) and lengths survive, their characters do not. Everything here compares
 * content by that identity, never by string diffing: a character is the same character in two
 * versions when it has the same (client, clock). Because Yjs never reorders items, the newer
 * version's item list holds every item of the older one, visible or as a tombstone, in the same
 * relative order, which is what lets `diffVersions` place deletions exactly and `restoreUpdate`
 * touch only what really changed.
 *
 * All functions are pure: they decode the given updates into scratch docs and never see a live one.
 */

/** A maximal run of visible characters written by one author. */
export interface AttributedSpan {
  text: string
  /** The user id of the clients that wrote the run; null when no client of the run is known. */
  author: string | null
  /** The Yjs client ids that wrote the run, in order of first appearance. */
  clients: number[]
}

export type DiffOpKind = 'equal' | 'insert' | 'delete'

export interface DiffOp {
  op: DiffOpKind
  text: string
  /**
   * Inserts only: who wrote the text (null: client unknown). Equal text has no author here, and
   * nor has deleted text: Yjs does not record who deleted something.
   */
  author?: string | null
}

/** Root names tried, in order, when several roots could hold the text (as in document-export). */
const PREFERRED_FIELDS = ['default', 'prosemirror', 'content'] as const
/** These three sets mirror document-export's plain-text rendering of xml roots. */
const LINE_BREAK_NODES = new Set(['hardBreak', 'hard_break'])
const TEXTLESS_BLOCK_NODES = new Set(['horizontalRule', 'horizontal_rule', 'image'])
/** Stands for an embed or an embedded type in a restored text: one position, no character. */
const EMBED_PLACEHOLDER = '\uFFFC'

/** Plain text of a version's text root (chosen as in `documentToText`), or null when it has none. */
export function textAt(update: Uint8Array, field?: string): string | null {
  return documentToText(loadDoc(update), field)
}

/**
 * Who wrote each part of the current text of a version. The text root is chosen as in
 * `documentToText`, and null is returned exactly when `textAt` returns null; the span texts
 * concatenate to `textAt(update, field)`. For an xml root, the '\n' between two blocks is
 * attributed to whoever created the second block, and a hard break to whoever inserted it.
 */
export function attribution(update: Uint8Array, authors: ReadonlyMap<number, string>, field?: string): AttributedSpan[] | null {
  const doc = loadDoc(update)
  const root = selectTextRoot(doc, field)
  if (root === null) return null
  const units = textUnits(doc, root.name)
  const spans: AttributedSpan[] = []
  let last: AttributedSpan | undefined
  for (const run of units.runs) {
    if (run.index < 0) continue
    const author = authors.get(run.client) ?? null
    const text = units.text.slice(run.index, run.index + run.len)
    if (last !== undefined && last.author === author) {
      last.text += text
      if (!last.clients.includes(run.client)) last.clients.push(run.client)
    } else {
      last = { text, author, clients: [run.client] }
      spans.push(last)
    }
  }
  return spans
}

/**
 * The text changes from `older` to `newer`, two versions of one document. The root is chosen in
 * `newer` as in `documentToText` (in `older` if `newer` has none, e.g. because all of its text was
 * deleted) and read under the same name in both; null when neither version has one.
 *
 * Equal and deleted texts concatenate to the older text, equal and inserted texts to the newer
 * text. Adjacent ops of the same kind and author are merged. Deletions are placed where the
 * deleted characters were, using the tombstones the newer version keeps. Exception: in xml roots
 * a deleted node leaves one tombstone and no trace of its children, so the text of a deleted
 * paragraph is reported as deleted just before the next unchanged character.
 */
export function diffVersions(older: Uint8Array, newer: Uint8Array, authors: ReadonlyMap<number, string>, field?: string): DiffOp[] | null {
  const olderDoc = loadDoc(older)
  const newerDoc = loadDoc(newer)
  const root = selectTextRoot(newerDoc, field) ?? selectTextRoot(olderDoc, field)
  if (root === null) return null
  const from = textUnits(olderDoc, root.name)
  const to = textUnits(newerDoc, root.name)
  const ops: DiffOp[] = []
  for (const range of align(from.runs, from.text.length, to.runs)) {
    if (range.kind === 'insert') {
      const text = to.text.slice(range.newer, range.newer + range.len)
      const author = authors.get(range.client) ?? null
      const last = ops[ops.length - 1]
      if (last !== undefined && last.op === 'insert' && last.author === author) last.text += text
      else ops.push({ op: 'insert', text, author })
    } else {
      const text = from.text.slice(range.older, range.older + range.len)
      const last = ops[ops.length - 1]
      if (last !== undefined && last.op === range.kind) last.text += text
      else ops.push({ op: range.kind, text })
    }
  }
  return ops
}

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

// ---------------------------------------------------------------------------------------------
// Loading and root selection

function loadDoc(update: Uint8Array): Y.Doc {
  // Read-only: no need to garbage-collect again what the snapshot already holds.
  const doc = new Y.Doc({ gc: false })
  Y.applyUpdate(doc, update)
  return doc
}

function shapesByName(doc: Y.Doc): Map<string, RootShape> {
  return new Map(describeDocument(doc).map(({ name, shape }) => [name, shape]))
}

/** The same choice as `documentToText`: `field`, else the only text/xml root, else a preferred name. */
function selectTextRoot(doc: Y.Doc, field: string | undefined): { name: string; shape: 'text' | 'xml' } | null {
  const candidates: { name: string; shape: 'text' | 'xml' }[] = []
  for (const { name, shape } of describeDocument(doc)) {
    if (shape === 'text' || shape === 'xml') candidates.push({ name, shape })
  }
  if (field !== undefined) return candidates.find(c => c.name === field) ?? null
  if (candidates.length === 1) return candidates[0]
  for (const name of PREFERRED_FIELDS) {
    const found = candidates.find(c => c.name === name)
    if (found !== undefined) return found
  }
  return null
}


// ---------------------------------------------------------------------------------------------
// Units: a sequence's visible positions, as runs of consecutive ids

/**
 * Consecutive ids (client, clock … clock+len-1) of one item. `index` is the position of the first
 * one among the visible units of its side; -1 marks a tombstone (deleted, still in the list).
 * `extent`: how many units after the run belong to the node it stands for (the line after the
 * '\n' of an xml textblock), so that when the node is deleted its whole text is deleted with it.
 */
interface Run {
  client: number
  clock: number
  len: number
  index: number
  extent?: number
}

interface TextUnits {
  runs: Run[]
  /** The visible units as characters: `text.length` is the number of visible units. */
  text: string
}

class UnitWriter {
  readonly runs: Run[] = []
  private readonly parts: string[] = []
  private length = 0

  get size(): number {
    return this.length
  }

  visible(id: Y.ID, text: string): Run {
    const run: Run = { client: id.client, clock: id.clock, len: text.length, index: this.length }
    this.runs.push(run)
    this.parts.push(text)
    this.length += text.length
    return run
  }

  tombstone(item: Y.Item): void {
    this.runs.push({ client: item.id.client, clock: item.id.clock, len: item.length, index: -1 })
  }

  done(): TextUnits {
    return { runs: this.runs, text: this.parts.join('') }
  }
}

/**
 * The plain text of a root as `documentToText` renders it, with the id of every character. Works
 * on untyped roots (it only follows the item list). An 'empty' root yields its tombstones.
 */
function textUnits(doc: Y.Doc, name: string): TextUnits {
  const writer = new UnitWriter()
  const type = doc.share.get(name)
  if (type !== undefined) {
    const shape = describeDocument(doc).find(r => r.name === name)?.shape
    if (shape === 'xml') xmlUnits(type, writer, { lines: 0 })
    else if (shape === 'text' || shape === 'empty') stringUnits(type, writer)
  }
  return writer.done()
}

/** Characters of a Y.Text (embeds and formats are not plain text). */
function stringUnits(type: Y.AbstractType<any>, writer: UnitWriter): void {
  for (let item = type._start; item !== null; item = item.right) {
    if (item.deleted) writer.tombstone(item)
    else if (item.content instanceof Y.ContentString) writer.visible(item.id, item.content.str)
  }
}

function visibleChildren(type: Y.AbstractType<any>): Y.AbstractType<any>[] {
  const children: Y.AbstractType<any>[] = []
  for (let item = type._start; item !== null; item = item.right) {
    if (!item.deleted && item.content instanceof Y.ContentType) children.push(item.content.type)
  }
  return children
}

function isTextblock(children: readonly Y.AbstractType<any>[]): boolean {
  return children.length === 0 || children.some(c => c instanceof Y.XmlText || (c instanceof Y.XmlElement && LINE_BREAK_NODES.has(c.nodeName)))
}

/**
 * An xml root's lines, as document-export's `xmlToLines`: one line per textblock, joined by '\n'.
 * The '\n' before a textblock gets the id of the textblock's element.
 */
function xmlUnits(node: Y.AbstractType<any>, writer: UnitWriter, state: { lines: number }): void {
  if (isTextblock(visibleChildren(node))) {
    const separator = state.lines > 0 && node._item !== null ? writer.visible(node._item.id, '\n') : null
    state.lines++
    inlineUnits(node, writer)
    if (separator !== null) separator.extent = writer.size - separator.index - 1
    return
  }
  for (let item = node._start; item !== null; item = item.right) {
    if (item.deleted) {
      writer.tombstone(item)
    } else if (item.content instanceof Y.ContentType) {
      const child = item.content.type
      if (child instanceof Y.XmlElement && !TEXTLESS_BLOCK_NODES.has(child.nodeName)) xmlUnits(child, writer, state)
    }
  }
}

function inlineUnits(node: Y.AbstractType<any>, writer: UnitWriter): void {
  for (let item = node._start; item !== null; item = item.right) {
    if (item.deleted) {
      writer.tombstone(item)
    } else if (item.content instanceof Y.ContentType) {
      const child = item.content.type
      if (child instanceof Y.XmlText) stringUnits(child, writer)
      else if (child instanceof Y.XmlElement) {
        if (LINE_BREAK_NODES.has(child.nodeName)) writer.visible(item.id, '\n')
        else inlineUnits(child, writer)
      }
    }
  }
}

/** Every countable item of a sequence (text, array, xml children), as Yjs counts positions. */
function sequenceRuns(type: Y.AbstractType<any>): Run[] {
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

// ---------------------------------------------------------------------------------------------
// Alignment of two versions by identity

interface Range {
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
function align(olderRuns: readonly Run[], olderLength: number, newerRuns: readonly Run[]): Range[] {
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

// ---------------------------------------------------------------------------------------------
// Restore

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
