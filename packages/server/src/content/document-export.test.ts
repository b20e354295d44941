import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import {
  describeDocument, documentToJson, documentToProseMirror, documentToText,
  type ProseMirrorNode, type RootInfo,
} from './document-export.js'

/** A server-side doc as the admin API gets it: fresh, with the client's state applied, roots untyped. */
function serverCopy(client: Y.Doc, opts: { gc?: boolean } = {}): Y.Doc {
  const server = new Y.Doc(opts)
  Y.applyUpdate(server, Y.encodeStateAsUpdate(client))
  return server
}

/** Applies to `server` what `client` has and `server` lacks, as a later stored update would. */
function sync(client: Y.Doc, server: Y.Doc): void {
  Y.applyUpdate(server, Y.encodeStateAsUpdate(client, Y.encodeStateVector(server)))
}

function shapes(doc: Y.Doc): Record<string, RootInfo['shape']> {
  return Object.fromEntries(describeDocument(doc).map(r => [r.name, r.shape]))
}

function untypedRootNames(doc: Y.Doc): string[] {
  return Array.from(doc.share).filter(([, t]) => t.constructor === Y.AbstractType).map(([name]) => name)
}

/**
 * Writes ProseMirror JSON into a fragment the way y-prosemirror stores TipTap content: one
 * Y.XmlElement per node (attrs as XML attributes, null attrs left out), consecutive text nodes in
 * one Y.XmlText whose format attributes are the marks' attrs (`{ bold: {} }`, `{ link: {...} }`).
 */
function writeProseMirror(fragment: Y.XmlFragment, content: readonly ProseMirrorNode[]): void {
  fragment.insert(fragment.length, toYNodes(content))
}

function toYNodes(content: readonly ProseMirrorNode[]): (Y.XmlElement | Y.XmlText)[] {
  const out: (Y.XmlElement | Y.XmlText)[] = []
  let textRun: ProseMirrorNode[] = []
  const flushText = (): void => {
    if (textRun.length === 0) return
    const text = new Y.XmlText()
    text.applyDelta(textRun.map(n => ({
      insert: n.text,
      attributes: Object.fromEntries((n.marks ?? []).map(m => [m.type, m.attrs ?? {}])),
    })))
    out.push(text)
    textRun = []
  }
  for (const node of content) {
    if (node.type === 'text') {
      textRun.push(node)
      continue
    }
    flushText()
    const element = new Y.XmlElement(node.type)
    for (const [key, value] of Object.entries(node.attrs ?? {})) {
      if (value !== null) element.setAttribute(key, value as string)
    }
    if (node.content !== undefined) element.insert(0, toYNodes(node.content))
    out.push(element)
  }
  flushText()
  return out
}

const LINK = { href: 'https://example.com', target: '_blank', rel: 'noopener noreferrer nofollow', class: null }

/** A TipTap document using the StarterKit + Link nodes and marks. */
const TIPTAP_CONTENT: ProseMirrorNode[] = [
  { type: 'heading', attrs: { level: 1 }, content: [{ type: 'text', text: 'Release notes' }] },
  {
    type: 'paragraph',
    content: [
      { type: 'text', text: 'Hello ' },
      { type: 'text', text: 'bold', marks: [{ type: 'bold' }] },
      { type: 'text', text: ' and ' },
      { type: 'text', text: 'both', marks: [{ type: 'bold' }, { type: 'italic' }] },
      { type: 'text', text: ', see ' },
      { type: 'text', text: 'the site', marks: [{ type: 'link', attrs: LINK }] },
      { type: 'text', text: '.' },
    ],
  },
  {
    type: 'bulletList',
    content: [
      { type: 'listItem', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'first' }] }] },
      {
        type: 'listItem',
        content: [
          { type: 'paragraph', content: [{ type: 'text', text: 'second' }] },
          { type: 'bulletList', content: [{ type: 'listItem', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'nested' }] }] }] },
        ],
      },
    ],
  },
  { type: 'paragraph' },
  { type: 'horizontalRule' },
  { type: 'paragraph', content: [{ type: 'text', text: 'line one' }, { type: 'hardBreak' }, { type: 'text', text: 'line two' }] },
  { type: 'codeBlock', attrs: { language: 'ts' }, content: [{ type: 'text', text: 'const a = 1\nconst b = 2' }] },
]

const TIPTAP_TEXT = [
  'Release notes',
  'Hello bold and both, see the site.',
  'first',
  'second',
  'nested',
  '',
  'line one\nline two',
  'const a = 1\nconst b = 2',
].join('\n')

function tiptapClient(field = 'default'): Y.Doc {
  const client = new Y.Doc()
  writeProseMirror(client.getXmlFragment(field), TIPTAP_CONTENT)
  return client
}

describe('describeDocument', () => {
  it('infers the shape of untyped roots from their items, without typing them', () => {
    const client = new Y.Doc()
    client.getText('notes').insert(0, 'hello')
    client.getArray('tags').push(['a', 'b'])
    client.getMap('meta').set('title', 'T')
    writeProseMirror(client.getXmlFragment('default'), TIPTAP_CONTENT)
    const server = serverCopy(client)
    expect(untypedRootNames(server).sort()).toEqual(['default', 'meta', 'notes', 'tags'])

    expect(shapes(server)).toEqual({ notes: 'text', tags: 'array', meta: 'map', default: 'xml' })
    expect(untypedRootNames(server).sort()).toEqual(['default', 'meta', 'notes', 'tags'])
  })

  it('sees a text that only holds embeds or formatting as text, and an array of any content kind as array', () => {
    const client = new Y.Doc()
    client.getText('embed').insertEmbed(0, { image: 'a.png' })
    client.getArray('binary').push([new Uint8Array([1, 2])])
    client.getArray('nested').push([new Y.Map()])
    client.getArray('subdocs').push([new Y.Doc()])
    expect(shapes(serverCopy(client))).toEqual({ embed: 'text', binary: 'array', nested: 'array', subdocs: 'array' })
  })

  it('still sees a fully deleted text as text when the deleted content was kept (gc disabled on both sides)', () => {
    const client = new Y.Doc({ gc: false })
    const text = client.getText('notes')
    text.insert(0, 'gone soon')
    text.delete(0, text.length)
    const server = serverCopy(client, { gc: false })
    expect(shapes(server)).toEqual({ notes: 'text' })
    expect(documentToJson(server)).toEqual({ notes: '' })
    expect(documentToText(server)).toBe('')
  })

  it('reports a fully deleted text as empty once garbage collection dropped its content, and a cleared map as map', () => {
    // The server's documents collect garbage (LiveDocument uses gc: true): deleted items keep only
    // their length (ContentDeleted), so nothing tells what the root was.
    const client = new Y.Doc()
    const text = client.getText('notes')
    text.insert(0, 'gone soon')
    const server = serverCopy(client)
    text.delete(0, text.length)
    const map = client.getMap('meta')
    map.set('k', 1)
    map.delete('k')
    sync(client, server)

    expect(shapes(server)).toEqual({ notes: 'empty', meta: 'map' })
    expect(documentToJson(server)).toEqual({ notes: null, meta: {} })
    expect(documentToText(server)).toBeNull()
    expect(untypedRootNames(server)).toEqual(['notes'])
  })

  it('reads roots that were already typed on the server as their type', () => {
    const client = new Y.Doc()
    client.getText('notes').insert(0, 'hi')
    const server = serverCopy(client)
    server.getText('notes')
    server.getMap('fresh')
    expect(describeDocument(server)).toEqual([{ name: 'notes', shape: 'text' }, { name: 'fresh', shape: 'map' }])
    expect(documentToJson(server)).toEqual({ notes: 'hi', fresh: {} })
  })

  it('reads roots typed as Y.XmlElement or Y.XmlText without calling a getter of another constructor', () => {
    const client = new Y.Doc()
    client.getXmlElement('element').insert(0, [new Y.XmlElement('paragraph')])
    client.getXmlElement('element').setAttribute('lang', 'en')
    client.get('rich', Y.XmlText).insert(0, 'rich', { bold: true })
    const server = serverCopy(client)
    server.getXmlElement('element')
    server.get('rich', Y.XmlText)
    expect(shapes(server)).toEqual({ element: 'xml', rich: 'text' })
    expect(documentToText(server, 'rich')).toBe('rich')
    expect(documentToProseMirror(server, 'element')).toEqual({ type: 'doc', content: [{ type: 'paragraph' }] })
  })
})

describe('documentToJson', () => {
  it('returns each root as the client sees it in toJSON(), nested shared types included', () => {
    const client = new Y.Doc()
    const text = client.getText('notes')
    text.insert(0, 'Hello world')
    text.format(0, 5, { bold: true })
    text.delete(5, 6)
    text.insert(5, ', Concord')

    const items = client.getArray<unknown>('items')
    const nestedMap = new Y.Map<unknown>()
    const nestedArray = new Y.Array<unknown>()
    const nestedText = new Y.Text('inner')
    items.push([1, 'two', { three: [3] }, null, true, nestedMap, nestedArray, nestedText])
    nestedMap.set('deep', new Y.Array())
    ;(nestedMap.get('deep') as Y.Array<number>).push([1, 2])
    nestedArray.push([new Y.Map([['k', 'v']])])
    items.delete(1, 1)

    const meta = client.getMap<unknown>('meta')
    meta.set('title', 'Plan')
    meta.set('owner', { id: 7, name: 'Ada' })
    meta.set('tags', Y.Array.from(['x', 'y']))
    meta.set('body', new Y.Text('map text'))
    meta.set('removed', 1)
    meta.delete('removed')

    writeProseMirror(client.getXmlFragment('default'), TIPTAP_CONTENT)

    const json = documentToJson(serverCopy(client))
    expect(json).toEqual({
      notes: text.toJSON(),
      items: items.toJSON(),
      meta: meta.toJSON(),
      default: client.getXmlFragment('default').toString(),
    })
    expect(json.notes).toBe('Hello, Concord')
    expect(json.items).toEqual([1, { three: [3] }, null, true, { deep: [1, 2] }, [{ k: 'v' }], 'inner'])
    expect(json.meta).toEqual({ title: 'Plan', owner: { id: 7, name: 'Ada' }, tags: ['x', 'y'], body: 'map text' })
    expect(json.default).toMatch(/^<heading level="1">Release notes<\/heading><paragraph>Hello <bold>bold<\/bold>/)
  })

  it('keeps binary content as bytes', () => {
    const client = new Y.Doc()
    client.getArray('files').push([new Uint8Array([1, 2, 3])])
    client.getMap('blobs').set('a', new Uint8Array([4]))
    expect(documentToJson(serverCopy(client))).toEqual({ files: [new Uint8Array([1, 2, 3])], blobs: { a: new Uint8Array([4]) } })
  })

  it('returns an empty object for a document without roots', () => {
    const server = serverCopy(new Y.Doc())
    expect(describeDocument(server)).toEqual([])
    expect(documentToJson(server)).toEqual({})
    expect(documentToText(server)).toBeNull()
    expect(documentToProseMirror(server)).toBeNull()
    expect(server.share.size).toBe(0)
  })

  it('can be called again, and typed roots keep integrating later updates', () => {
    const client = new Y.Doc()
    const text = client.getText('notes')
    const list = client.getArray<string>('list')
    const map = client.getMap<number>('counts')
    const fragment = client.getXmlFragment('default')
    text.insert(0, 'v1')
    list.push(['a'])
    map.set('a', 1)
    writeProseMirror(fragment, [{ type: 'paragraph', content: [{ type: 'text', text: 'first' }] }])
    const server = serverCopy(client)

    expect(documentToJson(server)).toEqual({ notes: 'v1', list: ['a'], counts: { a: 1 }, default: '<paragraph>first</paragraph>' })
    expect(documentToText(server, 'default')).toBe('first')
    expect(untypedRootNames(server)).toEqual([])
    expect(server.share.get('notes')).toBeInstanceOf(Y.Text)
    expect(server.share.get('default')).toBeInstanceOf(Y.XmlFragment)

    text.insert(2, ' then v2')
    list.push(['b'])
    map.set('b', 2)
    writeProseMirror(fragment, [{ type: 'paragraph', content: [{ type: 'text', text: 'second', marks: [{ type: 'bold' }] }] }])
    ;(fragment.get(0) as Y.XmlElement).insert(0, [new Y.XmlText('before ')])
    sync(client, server)

    expect(documentToJson(server)).toEqual({
      notes: text.toJSON(), list: list.toJSON(), counts: map.toJSON(), default: fragment.toString(),
    })
    expect(documentToJson(server).notes).toBe('v1 then v2')
    expect(documentToText(server, 'default')).toBe('before first\nsecond')
    expect(documentToProseMirror(server)).toEqual({
      type: 'doc',
      content: [
        { type: 'paragraph', content: [{ type: 'text', text: 'before first' }] },
        { type: 'paragraph', content: [{ type: 'text', text: 'second', marks: [{ type: 'bold' }] }] },
      ],
    })

    // The typed server doc still exchanges state both ways with clients.
    server.getText('notes').insert(0, '> ')
    sync(server, client)
    expect(text.toString()).toBe('> v1 then v2')
    const other = serverCopy(server)
    expect(documentToJson(other)).toEqual(documentToJson(server))
  })

  it('types roots in place with the getter of their shape (a getter of another shape then throws, as in Yjs)', () => {
    const client = new Y.Doc()
    client.getArray('list').push([1])
    const server = serverCopy(client)
    documentToJson(server)
    expect(() => server.getArray('list')).not.toThrow()
    expect(() => server.getText('list')).toThrow(/different constructor/)
  })
})

describe('documentToText', () => {
  it('returns the characters of a text root without formatting', () => {
    const client = new Y.Doc()
    const text = client.getText('notes')
    text.insert(0, 'plain and bold', { italic: true })
    text.format(10, 4, { bold: true })
    text.insertEmbed(5, { image: 'x.png' })
    expect(documentToText(serverCopy(client))).toBe(text.toString())
    expect(text.toString()).toBe('plain and bold')
  })

  it('puts each block of an editor document on its own line', () => {
    expect(documentToText(serverCopy(tiptapClient()))).toBe(TIPTAP_TEXT)
  })

  it('reads blockquotes and tables block by block', () => {
    const client = new Y.Doc()
    writeProseMirror(client.getXmlFragment('prosemirror'), [
      { type: 'blockquote', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'quoted' }] }] },
      {
        type: 'table',
        content: [{
          type: 'tableRow',
          content: [
            { type: 'tableCell', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'a1' }] }] },
            { type: 'tableCell', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'b1' }] }] },
          ],
        }],
      },
    ])
    expect(documentToText(serverCopy(client))).toBe('quoted\na1\nb1')
  })

  it('chooses the only text-shaped root, whatever its name', () => {
    const client = new Y.Doc()
    client.getText('body').insert(0, 'the body')
    client.getMap('meta').set('title', 'not text')
    client.getArray('tags').push(['no'])
    expect(documentToText(serverCopy(client))).toBe('the body')
  })

  it('prefers default, then prosemirror, then content among several text-shaped roots', () => {
    const client = new Y.Doc()
    client.getText('title').insert(0, 'Title')
    client.getText('content').insert(0, 'from content')
    expect(documentToText(serverCopy(client))).toBe('from content')
    writeProseMirror(client.getXmlFragment('prosemirror'), [{ type: 'paragraph', content: [{ type: 'text', text: 'from prosemirror' }] }])
    expect(documentToText(serverCopy(client))).toBe('from prosemirror')
    client.getText('default').insert(0, 'from default')
    expect(documentToText(serverCopy(client))).toBe('from default')
  })

  it('returns null when several text-shaped roots have no preferred name', () => {
    const client = new Y.Doc()
    client.getText('left').insert(0, 'L')
    client.getText('right').insert(0, 'R')
    const server = serverCopy(client)
    expect(documentToText(server)).toBeNull()
    expect(documentToText(server, 'right')).toBe('R')
  })

  it('reads the given field, and returns null for a field that is missing or not text, without creating it', () => {
    const client = new Y.Doc()
    client.getText('title').insert(0, 'Title')
    writeProseMirror(client.getXmlFragment('default'), [{ type: 'paragraph', content: [{ type: 'text', text: 'Body' }] }])
    client.getMap('meta').set('k', 'v')
    const server = serverCopy(client)
    expect(documentToText(server, 'title')).toBe('Title')
    expect(documentToText(server, 'default')).toBe('Body')
    expect(documentToText(server, 'meta')).toBeNull()
    expect(documentToText(server, 'missing')).toBeNull()
    expect(server.share.has('missing')).toBe(false)
    expect(untypedRootNames(server)).toEqual(['meta'])
  })

  it('returns null when no root holds text', () => {
    const client = new Y.Doc()
    client.getMap('meta').set('k', 'v')
    client.getArray('list').push(['text in an array is not a text root'])
    expect(documentToText(serverCopy(client))).toBeNull()
  })
})

describe('documentToProseMirror', () => {
  it('returns the ProseMirror JSON of a TipTap document', () => {
    const server = serverCopy(tiptapClient())
    expect(documentToProseMirror(server)).toEqual({ type: 'doc', content: TIPTAP_CONTENT })
    expect(documentToProseMirror(server)).toEqual(documentToProseMirror(server, 'default'))
  })

  it('spells out the nodes and marks as y-prosemirror stores them', () => {
    const client = new Y.Doc()
    const fragment = client.getXmlFragment('default')
    const heading = new Y.XmlElement('heading')
    heading.setAttribute('level', 2 as unknown as string)
    heading.insert(0, [new Y.XmlText('Title')])
    const paragraph = new Y.XmlElement('paragraph')
    const text = new Y.XmlText()
    paragraph.insert(0, [text])
    const list = new Y.XmlElement('bulletList')
    const item = new Y.XmlElement('listItem')
    const itemParagraph = new Y.XmlElement('paragraph')
    itemParagraph.insert(0, [new Y.XmlText('item')])
    item.insert(0, [itemParagraph])
    list.insert(0, [item])
    fragment.insert(0, [heading, paragraph, list])
    text.insert(0, 'a', {})
    text.insert(1, 'b', { bold: {} })
    text.insert(2, 'c', { bold: true })
    text.insert(3, 'd', { link: { href: 'https://x.test' } })
    text.insert(4, 'e', { 'comment--abCD12+/': { id: 'c1' }, 'comment--ZZzz0000': { id: 'c2' } })

    expect(documentToProseMirror(serverCopy(client))).toEqual({
      type: 'doc',
      content: [
        { type: 'heading', attrs: { level: 2 }, content: [{ type: 'text', text: 'Title' }] },
        {
          type: 'paragraph',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'bc', marks: [{ type: 'bold' }] },
            { type: 'text', text: 'd', marks: [{ type: 'link', attrs: { href: 'https://x.test' } }] },
            { type: 'text', text: 'e', marks: [{ type: 'comment', attrs: { id: 'c1' } }, { type: 'comment', attrs: { id: 'c2' } }] },
          ],
        },
        { type: 'bulletList', content: [{ type: 'listItem', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'item' }] }] }] },
      ],
    } satisfies ProseMirrorNode)
  })

  it('returns an empty doc for an xml root whose nodes were all deleted but are still known', () => {
    const client = new Y.Doc({ gc: false })
    const fragment = client.getXmlFragment('default')
    writeProseMirror(fragment, TIPTAP_CONTENT)
    fragment.delete(0, fragment.length)
    const server = serverCopy(client, { gc: false })
    expect(shapes(server)).toEqual({ default: 'xml' })
    expect(documentToProseMirror(server)).toEqual({ type: 'doc', content: [] })
    expect(documentToText(server)).toBe('')
  })

  it('chooses among xml roots only, with the same preference order', () => {
    const client = new Y.Doc()
    client.getText('default').insert(0, 'a plain text named default')
    writeProseMirror(client.getXmlFragment('body'), [{ type: 'paragraph', content: [{ type: 'text', text: 'rich' }] }])
    const server = serverCopy(client)
    expect(documentToProseMirror(server)).toEqual({ type: 'doc', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'rich' }] }] })
    expect(documentToProseMirror(server, 'default')).toBeNull()
    expect(documentToText(server)).toBe('a plain text named default')

    const two = tiptapClient('content')
    writeProseMirror(two.getXmlFragment('prosemirror'), [{ type: 'paragraph', content: [{ type: 'text', text: 'pm' }] }])
    writeProseMirror(two.getXmlFragment('other'), [{ type: 'paragraph' }])
    expect(documentToProseMirror(serverCopy(two))).toEqual({ type: 'doc', content: [{ type: 'paragraph', content: [{ type: 'text', text: 'pm' }] }] })
    expect(documentToProseMirror(serverCopy(two), 'content')).toEqual({ type: 'doc', content: TIPTAP_CONTENT })
  })

  it('returns null when there is no xml root', () => {
    const client = new Y.Doc()
    client.getText('default').insert(0, 'text only')
    expect(documentToProseMirror(serverCopy(client))).toBeNull()
    expect(documentToProseMirror(serverCopy(client), 'missing')).toBeNull()
  })
})
