import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { contentUpdate, parseContentInput } from './content-merge.js'
import { documentToProseMirror } from './document-export.js'

function stateOf(fn: (doc: Y.Doc) => void): Uint8Array {
  const doc = new Y.Doc()
  fn(doc)
  return Y.encodeStateAsUpdate(doc)
}

function after(state: Uint8Array, update: Uint8Array | null): Y.Doc {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, state)
  if (update !== null) Y.applyUpdate(doc, update)
  return doc
}

describe('merging content into a document', () => {
  it('appends or replaces text, merges or replaces JSON keys, and changes nothing when nothing differs', () => {
    const state = stateOf(d => { d.getText('text').insert(0, 'hello'); d.getMap('data').set('a', 1); d.getMap('data').set('b', 2) })
    expect(after(state, contentUpdate(state, { format: 'text', text: ' world' })).getText('text').toString()).toBe('hello world')
    expect(after(state, contentUpdate(state, { format: 'text', text: 'new', mode: 'replace' })).getText('text').toString()).toBe('new')
    expect(after(state, contentUpdate(state, { format: 'json', value: { b: 3, c: [1] } })).getMap('data').toJSON()).toEqual({ a: 1, b: 3, c: [1] })
    expect(after(state, contentUpdate(state, { format: 'json', value: { b: 2 }, mode: 'replace' })).getMap('data').toJSON()).toEqual({ b: 2 })
    expect(contentUpdate(state, { format: 'json', value: { a: 1 } })).toBeNull()
    expect(contentUpdate(state, { format: 'text', text: '' })).toBeNull()
  })

  it('writes ProseMirror JSON the way y-prosemirror stores it (it reads back the same)', () => {
    const pm = {
      type: 'doc',
      content: [
        { type: 'heading', attrs: { level: 1 }, content: [{ type: 'text', text: 'Title' }] },
        { type: 'paragraph', content: [{ type: 'text', text: 'plain ' }, { type: 'text', text: 'bold', marks: [{ type: 'bold' }] }, { type: 'text', text: ' link', marks: [{ type: 'link', attrs: { href: 'https://x' } }] }] },
      ],
    }
    const empty = stateOf(() => undefined)
    const doc = after(empty, contentUpdate(empty, { format: 'prosemirror', doc: pm }))
    expect(documentToProseMirror(doc)).toEqual(pm)
    const twice = after(Y.encodeStateAsUpdate(doc), contentUpdate(Y.encodeStateAsUpdate(doc), { format: 'prosemirror', doc: pm, mode: 'replace' }))
    expect(documentToProseMirror(twice)).toEqual(pm)
  })

  it('refuses bodies that are not content, with what is wrong', () => {
    for (const body of [{}, { format: 'text' }, { format: 'json', value: [1] }, { format: 'prosemirror', doc: { type: 'paragraph' } }, { format: 'text', text: 'x', mode: 'sideways' }, { format: 'text', text: 'x', field: '' }]) {
      expect(() => parseContentInput(body), JSON.stringify(body)).toThrow(expect.objectContaining({ code: 'CONCORD_ERR_HTTP_BAD_REQUEST' }))
    }
    // a root of another kind: a clear refusal, not a crash
    const state = stateOf(d => { d.getArray('text').push([1]) })
    expect(() => contentUpdate(state, { format: 'text', text: 'x' })).toThrow(/does not fit/)
  })
})
