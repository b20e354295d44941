import * as Y from 'yjs'
import { describeDocument, documentToText, LINE_BREAK_NODES, PREFERRED_FIELDS, TEXTLESS_BLOCK_NODES } from './document-export.js'
import { align, type DiffOpKind, type Run } from './alignment.js'

export type { DiffOpKind } from './alignment.js'

/**
 * Operations on stored versions of a document: who wrote what and what changed between two
 * versions (bringing a document back to an earlier version is restore.ts, on the same principle).
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


export interface DiffOp {
  op: DiffOpKind
  text: string
  /**
   * Inserts only: who wrote the text (null: client unknown). Equal text has no author here, and
   * nor has deleted text: Yjs does not record who deleted something.
   */
  author?: string | null
}



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


// ---------------------------------------------------------------------------------------------
// Loading and root selection

function loadDoc(update: Uint8Array): Y.Doc {
  // Read-only: no need to garbage-collect again what the snapshot already holds.
  const doc = new Y.Doc({ gc: false })
  Y.applyUpdate(doc, update)
  return doc
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
