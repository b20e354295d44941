/* eslint-disable @typescript-eslint/no-explicit-any -- Y.AbstractType is generic over its event type */
import * as Y from 'yjs'

export type RootKind = 'text' | 'map' | 'array' | 'xml' | 'empty'

/**
 * What a root shared type of a document holds, read from its content: a document whose roots
 * were never asked for by name (a copy made from an update) does not know their classes.
 */
export function rootKind(type: Y.AbstractType<any>): RootKind {
  if (type instanceof Y.Text) return 'text'
  if (type instanceof Y.Map) return 'map'
  if (type instanceof Y.Array) return 'array'
  if (type instanceof Y.XmlFragment) return 'xml'
  if (type._map.size > 0) return 'map'
  for (let item = type._start; item !== null; item = item.right) {
    const content = item.content
    if (content instanceof Y.ContentString || content instanceof Y.ContentFormat || content instanceof Y.ContentEmbed) return 'text'
    if (content instanceof Y.ContentType) return content.type instanceof Y.XmlElement || content.type instanceof Y.XmlText ? 'xml' : 'array'
    if (content instanceof Y.ContentAny || content instanceof Y.ContentBinary || content instanceof Y.ContentJSON || content instanceof Y.ContentDoc) return 'array'
  }
  return 'empty'
}

/** The plain text of a root (text, or the text nodes of an XML fragment); null for other kinds. */
export function rootText(doc: Y.Doc, name: string): string | null {
  const type = doc.share.get(name)
  if (type === undefined) return null
  const kind = rootKind(type)
  if (kind === 'text') return (type instanceof Y.Text ? type : doc.getText(name)).toString()
  if (kind === 'xml') {
    const fragment = type instanceof Y.XmlFragment ? type : doc.getXmlFragment(name)
    const parts: string[] = []
    const walk = (node: Y.XmlElement | Y.XmlFragment | Y.XmlText): void => {
      if (node instanceof Y.XmlText) parts.push(node.toString().replace(/<[^>]*>/g, ''))
      else for (const child of node.toArray()) walk(child as Y.XmlElement | Y.XmlText)
    }
    walk(fragment)
    return parts.join(' ')
  }
  return null
}
