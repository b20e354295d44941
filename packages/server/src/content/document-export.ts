import * as Y from 'yjs'

/**
 * Read-only views of a stored document for the admin API.
 *
 * A server-side Y.Doc built from stored updates has untyped roots: `doc.share` holds plain
 * `Y.AbstractType` instances, because nobody called `getText`/`getMap`/... on the server. The shape
 * of each root is inferred from the content of its items; only then is the matching typed getter
 * called. Yjs converts an untyped root into the requested type in place (same items, new wrapper
 * object registered in `doc.share`), so later updates keep integrating into the typed root. Roots
 * already typed by someone else are read as the type they have, and roots whose shape cannot be
 * inferred ('empty') are never typed, so these functions can be called any number of times.
 */

/** What a root holds, inferred from its items. */
export type RootShape = 'text' | 'array' | 'map' | 'xml' | 'empty'

export interface RootInfo {
  readonly name: string
  readonly shape: RootShape
}

export interface ProseMirrorMark {
  type: string
  attrs?: Record<string, unknown>
}

/** A node of ProseMirror's JSON format (`Node.toJSON()` / `Node.fromJSON()`). */
export interface ProseMirrorNode {
  type: string
  attrs?: Record<string, unknown>
  content?: ProseMirrorNode[]
  text?: string
  marks?: ProseMirrorMark[]
}

/** Root names tried, in order, when several roots could hold the document's text (content-ops.ts chooses the same way). */
export const PREFERRED_FIELDS = ['default', 'prosemirror', 'content'] as const

/** Inline nodes that stand for a line break inside a paragraph (TipTap, prosemirror-schema-basic). */
export const LINE_BREAK_NODES = new Set(['hardBreak', 'hard_break'])

/** Block leaves without text: they produce no line of their own. */
export const TEXTLESS_BLOCK_NODES = new Set(['horizontalRule', 'horizontal_rule', 'image'])

/** y-prosemirror stores overlapping marks as `<mark>--<8-char hash>`; this recovers the mark name. */
const HASHED_MARK_NAME = /(.*)(--[a-zA-Z0-9+/=]{8})$/

/** The shape of every root, in `doc.share` order. Does not type any root. */
export function describeDocument(doc: Y.Doc): RootInfo[] {
  return Array.from(doc.share, ([name, type]) => ({ name, shape: shapeOf(type) }))
}

/**
 * Every root as JSON, by its shape: text → string, array → array, map → object,
 * xml → the fragment's XML string, empty → null. Nested shared types are converted with their
 * own `toJSON()`, so the result for a root equals what a client gets from `root.toJSON()`
 * (binary content stays a Uint8Array, as in Yjs).
 */
export function documentToJson(doc: Y.Doc): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const { name, shape } of describeDocument(doc)) {
    if (shape === 'empty') {
      out[name] = null
    } else if (shape === 'xml') {
      out[name] = typedRoot(doc, name, shape).toString()
    } else {
      out[name] = typedRoot(doc, name, shape).toJSON()
    }
  }
  return out
}

/**
 * Plain text of a text or xml root. For xml, each block (paragraph, heading, list item, ...)
 * is one line. Without `field`, the root is chosen among text and xml roots: the only one, else
 * 'default', 'prosemirror' or 'content'. Null when no such root is found.
 */
export function documentToText(doc: Y.Doc, field?: string): string | null {
  const root = selectRoot(doc, ['text', 'xml'], field)
  if (root === null) return null
  const type = typedRoot(doc, root.name, root.shape)
  if (type instanceof Y.XmlFragment) return xmlToLines(type).join('\n')
  return type instanceof Y.Text ? textOf(type) : null
}

/**
 * The ProseMirror JSON of an xml root (as y-prosemirror and TipTap store it), chosen as in
 * `documentToText` but among xml roots only. Null when no such root is found.
 */
export function documentToProseMirror(doc: Y.Doc, field?: string): ProseMirrorNode | null {
  const root = selectRoot(doc, ['xml'], field)
  if (root === null) return null
  const type = typedRoot(doc, root.name, root.shape)
  if (!(type instanceof Y.XmlFragment)) return null
  return { type: 'doc', content: childrenToProseMirror(type) }
}

function shapeOf(type: Y.AbstractType<any>): RootShape {
  // Typed roots (someone called a getter, possibly these functions) are what their class says.
  // Order matters: XmlElement extends XmlFragment, XmlText extends Text, XmlHook extends Map.
  if (type instanceof Y.XmlFragment) return 'xml'
  if (type instanceof Y.Text) return 'text'
  if (type instanceof Y.Array) return 'array'
  if (type instanceof Y.Map) return 'map'
  return inferShape(type)
}

/**
 * Infers the shape of an untyped root from the content of its items, deleted ones included
 * (their content is kept unless garbage collection replaced it with ContentDeleted, which says
 * nothing). Sequence items win over map entries: a Y.XmlElement has both.
 */
function inferShape(type: Y.AbstractType<any>): RootShape {
  let text = false
  let array = false
  let xml = false
  for (let item = type._start; item !== null; item = item.right) {
    const content = item.content
    if (content instanceof Y.ContentString || content instanceof Y.ContentFormat || content instanceof Y.ContentEmbed) {
      text = true
    } else if (content instanceof Y.ContentType) {
      if (isXmlNode(content.type)) xml = true
      else array = true
    } else if (content instanceof Y.ContentAny || content instanceof Y.ContentBinary || content instanceof Y.ContentJSON || content instanceof Y.ContentDoc) {
      array = true
    }
  }
  // A Y.Text may embed shared types, so strings decide; an array may hold xml nodes among values.
  if (text) return 'text'
  if (array) return 'array'
  if (xml) return 'xml'
  return type._map.size > 0 ? 'map' : 'empty'
}

function isXmlNode(type: Y.AbstractType<any>): boolean {
  return type instanceof Y.XmlElement || type instanceof Y.XmlText || type instanceof Y.XmlHook
}

/** The root with the given shape, typing it in place if it is still untyped. Never creates a root. */
export function typedRoot(doc: Y.Doc, name: string, shape: Exclude<RootShape, 'empty'>): Y.AbstractType<any> {
  const existing = doc.share.get(name)
  if (existing !== undefined && existing.constructor !== Y.AbstractType) return existing
  switch (shape) {
    case 'text': return doc.getText(name)
    case 'array': return doc.getArray(name)
    case 'map': return doc.getMap(name)
    case 'xml': return doc.getXmlFragment(name)
  }
}

type ReadableShape = 'text' | 'xml'

function selectRoot(doc: Y.Doc, shapes: readonly ReadableShape[], field: string | undefined): { name: string; shape: ReadableShape } | null {
  const accepts = (info: RootInfo): info is { name: string; shape: ReadableShape } =>
    (shapes as readonly RootShape[]).includes(info.shape)
  if (field !== undefined) {
    const type = doc.share.get(field)
    if (type === undefined) return null
    const info = { name: field, shape: shapeOf(type) }
    return accepts(info) ? info : null
  }
  const candidates = describeDocument(doc).filter(accepts)
  if (candidates.length === 1) return candidates[0]
  for (const name of PREFERRED_FIELDS) {
    const found = candidates.find(c => c.name === name)
    if (found !== undefined) return found
  }
  return null
}

/** Delta ops of a text; `insert` is a string, or an object for embeds. */
interface DeltaOp {
  insert?: unknown
  attributes?: Record<string, unknown>
}

function deltaOf(text: Y.Text): DeltaOp[] {
  return text.toDelta() as DeltaOp[]
}

/** The characters of a text, without formatting (XmlText.toString() would add tags) or embeds. */
function textOf(text: Y.Text): string {
  let out = ''
  for (const op of deltaOf(text)) {
    if (typeof op.insert === 'string') out += op.insert
  }
  return out
}

type XmlChild = Y.XmlElement | Y.XmlText | Y.XmlHook

/**
 * One line per textblock, in document order. A node whose children include text (or a line
 * break) is a textblock, and so is an element without children (an empty paragraph is an empty
 * line); other elements are containers (lists, list items, blockquotes, tables) whose element
 * children are blocks.
 */
function xmlToLines(node: Y.XmlFragment, lines: string[] = []): string[] {
  const children = node.toArray()
  if (isTextblock(children)) {
    lines.push(inlineText(children))
    return lines
  }
  for (const child of children) {
    if (child instanceof Y.XmlElement && !TEXTLESS_BLOCK_NODES.has(child.nodeName)) xmlToLines(child, lines)
  }
  return lines
}

function isTextblock(children: readonly XmlChild[]): boolean {
  return children.length === 0 || children.some(c => c instanceof Y.XmlText || (c instanceof Y.XmlElement && LINE_BREAK_NODES.has(c.nodeName)))
}

function inlineText(children: readonly XmlChild[]): string {
  let out = ''
  for (const child of children) {
    if (child instanceof Y.XmlText) out += textOf(child)
    else if (child instanceof Y.XmlElement) out += LINE_BREAK_NODES.has(child.nodeName) ? '\n' : inlineText(child.toArray())
  }
  return out
}

function childrenToProseMirror(node: Y.XmlFragment): ProseMirrorNode[] {
  const out: ProseMirrorNode[] = []
  for (const child of node.toArray()) {
    if (child instanceof Y.XmlText) {
      for (const text of textToProseMirror(child)) appendText(out, text)
    } else if (child instanceof Y.XmlElement) {
      out.push(elementToProseMirror(child))
    }
    // Y.XmlHook has no ProseMirror counterpart (y-prosemirror never writes one): skipped.
  }
  return out
}

/**
 * Joins adjacent text nodes with the same marks, as ProseMirror's `Fragment.fromArray` does
 * (Yjs splits a run when equal-looking formats differ, e.g. `{ bold: {} }` and `{ bold: true }`).
 */
function appendText(out: ProseMirrorNode[], node: ProseMirrorNode): void {
  const last = out[out.length - 1]
  if (last !== undefined && last.type === 'text' && JSON.stringify(last.marks ?? []) === JSON.stringify(node.marks ?? [])) {
    last.text = (last.text ?? '') + (node.text ?? '')
  } else {
    out.push(node)
  }
}

function elementToProseMirror(element: Y.XmlElement): ProseMirrorNode {
  const node: ProseMirrorNode = { type: element.nodeName }
  const attrs: Record<string, unknown> = element.getAttributes()
  if (Object.keys(attrs).length > 0) node.attrs = attrs
  const content = childrenToProseMirror(element)
  if (content.length > 0) node.content = content
  return node
}

function textToProseMirror(text: Y.XmlText): ProseMirrorNode[] {
  const out: ProseMirrorNode[] = []
  for (const op of deltaOf(text)) {
    if (typeof op.insert !== 'string' || op.insert === '') continue
    const node: ProseMirrorNode = { type: 'text', text: op.insert }
    const marks = marksOf(op.attributes)
    if (marks.length > 0) node.marks = marks
    out.push(node)
  }
  return out
}

/**
 * y-prosemirror stores each mark as a format attribute whose value is the mark's attrs
 * (`{ bold: {} }`, `{ link: { href } }`); `true` is what other writers use for a plain mark, and
 * null or false means "not formatted". Like ProseMirror's own `Mark.toJSON()` (what TipTap's
 * `editor.getJSON()` returns), a mark without attributes gets no `attrs`; y-prosemirror's
 * `yXmlFragmentToProsemirrorJSON` would write `attrs: {}` there, which ProseMirror reads the same.
 */
function marksOf(attributes: Record<string, unknown> | undefined): ProseMirrorMark[] {
  if (attributes === undefined) return []
  const marks: ProseMirrorMark[] = []
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === false) continue
    const mark: ProseMirrorMark = { type: HASHED_MARK_NAME.exec(key)?.[1] ?? key }
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
      mark.attrs = value as Record<string, unknown>
    }
    marks.push(mark)
  }
  return marks
}
