import * as Y from 'yjs'
import { ConcordError } from '@concord/protocol'
import { describeDocument, type ProseMirrorNode, type RootShape } from './document-export.js'

/**
 * Content to merge into a document as one change (POST /v1/documents/{name}/content):
 * - `text`: into the text root `field` (default `text`): appended, or replacing its content;
 * - `json`: the keys of `value` (an object) set in the map root `field` (default `data`), or, with
 *   `replace`, the map's other keys removed;
 * - `prosemirror`: the content of a ProseMirror document (TipTap's `editor.getJSON()`) appended to,
 *   or replacing the content of, the XML root `field` (default `prosemirror`, y-prosemirror's name),
 *   marks as y-prosemirror stores them.
 */
export type ContentInput =
  | { format: 'text'; field?: string; mode?: 'append' | 'replace'; text: string }
  | { format: 'json'; field?: string; mode?: 'merge' | 'replace'; value: Record<string, unknown> }
  | { format: 'prosemirror'; field?: string; mode?: 'append' | 'replace'; doc: ProseMirrorNode }

/** Reads and checks a request body; throws CONCORD_ERR_HTTP_BAD_REQUEST with what is wrong. */
export function parseContentInput(body: Record<string, unknown>): ContentInput {
  const bad = (message: string): never => { throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', message) }
  const field = body.field === undefined ? undefined : typeof body.field === 'string' && body.field !== '' ? body.field : bad('field must be a non-empty string')
  const mode = body.mode
  switch (body.format) {
    case 'text':
      if (typeof body.text !== 'string') bad('text must be a string')
      if (mode !== undefined && mode !== 'append' && mode !== 'replace') bad('mode must be append or replace')
      return { format: 'text', ...(field !== undefined ? { field } : {}), ...(mode !== undefined ? { mode } : {}), text: body.text as string } as ContentInput
    case 'json':
      if (typeof body.value !== 'object' || body.value === null || Array.isArray(body.value)) bad('value must be a JSON object')
      if (mode !== undefined && mode !== 'merge' && mode !== 'replace') bad('mode must be merge or replace')
      return { format: 'json', ...(field !== undefined ? { field } : {}), ...(mode !== undefined ? { mode } : {}), value: body.value as Record<string, unknown> } as ContentInput
    case 'prosemirror': {
      const doc = body.doc as ProseMirrorNode | undefined
      if (typeof doc !== 'object' || doc === null || doc.type !== 'doc') bad('doc must be a ProseMirror document ({"type":"doc","content":[...]})')
      if (mode !== undefined && mode !== 'append' && mode !== 'replace') bad('mode must be append or replace')
      return { format: 'prosemirror', ...(field !== undefined ? { field } : {}), ...(mode !== undefined ? { mode } : {}), doc: doc! } as ContentInput
    }
    default:
      return bad('format must be text, json or prosemirror')
  }
}

/**
 * The change that merges `input` into the document whose state is `state`, as one Yjs update
 * made by a new client (null: nothing to change). Built on a copy, so clients' concurrent edits
 * merge with it as with any edit.
 */
export function contentUpdate(state: Uint8Array, input: ContentInput): Uint8Array | null {
  const doc = new Y.Doc()
  try {
    Y.applyUpdate(doc, state)
    const before = Y.encodeStateVector(doc)
    let changed = false
    doc.on('update', () => { changed = true })
    try {
      doc.transact(() => apply(doc, input))
    } catch (err) {
      throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', `the content does not fit the document: ${(err as Error).message}`)
    }
    return changed ? Y.encodeStateAsUpdate(doc, before) : null
  } finally {
    doc.destroy()
  }
}

const SHAPE: Record<ContentInput['format'], RootShape> = { text: 'text', json: 'map', prosemirror: 'xml' }
const DEFAULT_FIELD: Record<ContentInput['format'], string> = { text: 'text', json: 'data', prosemirror: 'prosemirror' }

function apply(doc: Y.Doc, input: ContentInput): void {
  const field = input.field ?? DEFAULT_FIELD[input.format]
  const existing = describeDocument(doc).find(r => r.name === field)
  if (existing !== undefined && existing.shape !== 'empty' && existing.shape !== SHAPE[input.format]) {
    throw new Error(`the root "${field}" holds ${existing.shape}, not ${SHAPE[input.format]}`)
  }
  if (input.format === 'text') {
    const text = doc.getText(input.field ?? 'text')
    if (input.mode === 'replace' && text.length > 0) text.delete(0, text.length)
    if (input.text !== '') text.insert(text.length, input.text)
  } else if (input.format === 'json') {
    const map = doc.getMap(input.field ?? 'data')
    if (input.mode === 'replace') for (const key of [...map.keys()]) if (!(key in input.value)) map.delete(key)
    for (const [key, value] of Object.entries(input.value)) {
      if (JSON.stringify(map.get(key)) !== JSON.stringify(value)) map.set(key, value)
    }
  } else {
    const fragment = doc.getXmlFragment(input.field ?? 'prosemirror')
    if (input.mode === 'replace' && fragment.length > 0) fragment.delete(0, fragment.length)
    const nodes = toYNodes(input.doc.content ?? [])
    if (nodes.length > 0) fragment.insert(fragment.length, nodes)
  }
}

/** ProseMirror JSON nodes as y-prosemirror stores them: elements by node type, runs of text as XmlText with marks as formats. */
function toYNodes(nodes: readonly ProseMirrorNode[]): (Y.XmlElement | Y.XmlText)[] {
  const out: (Y.XmlElement | Y.XmlText)[] = []
  let text: Y.XmlText | null = null
  for (const node of nodes) {
    if (typeof node !== 'object' || node === null || typeof node.type !== 'string') throw new Error('a node without a type')
    if (node.type === 'text') {
      if (typeof node.text !== 'string') throw new Error('a text node without text')
      if (text === null) {
        text = new Y.XmlText()
        out.push(text)
      }
      const formats: Record<string, unknown> = {}
      for (const mark of node.marks ?? []) formats[mark.type] = mark.attrs ?? {}
      const t = text
      // an XmlText not yet in a document takes its content when it is inserted: keep it as a delta
      ;(t as unknown as { _pending: (() => void)[] | null })._pending?.push(() => t.insert(t.length, node.text!, formats))
      continue
    }
    text = null
    const element = new Y.XmlElement(node.type)
    for (const [key, value] of Object.entries(node.attrs ?? {})) if (value !== null && value !== undefined) element.setAttribute(key, value as string)
    const children = toYNodes(node.content ?? [])
    if (children.length > 0) element.insert(0, children)
    out.push(element)
  }
  return out
}
