import type * as Y from 'yjs'
import type { BeforeChangeContext, ConcordExtension } from '../documents/extension-hooks.js'
import { rootKind, rootText, type RootKind } from './shared-types.js'

export interface ContentValidatorOptions {
  /** Which documents it guards (default: all). */
  documents?: (documentName: string) => boolean
  /** The root shared types a document may have, and of which kind; any other root is refused. */
  roots: Record<string, Exclude<RootKind, 'empty'>>
  /** At most this many characters in a text root (or the text of an XML root). */
  maxTextLength?: number
  /** A check of your own on the document as it would be: a problem to refuse with, or null. */
  validate?: (document: Y.Doc) => string | null
}

/**
 * Refuses updates that would break a schema: an unknown root shared type, a root of the wrong
 * kind, a text over its length, or what `validate` says. It checks a copy of the document with the
 * update applied (`preview`), so its cost grows with the document's size: measured in
 * docs/benchmarks.md ("Extension hooks on the edit path").
 */
export function createContentValidator(options: ContentValidatorOptions): ConcordExtension {
  const allowed = new Map(Object.entries(options.roots))
  return {
    name: 'content-validator',
    beforeChange(ctx: BeforeChangeContext) {
      if (options.documents !== undefined && !options.documents(ctx.documentName)) return
      const doc = ctx.preview()
      for (const [name, type] of doc.share) {
        const kind = rootKind(type)
        if (kind === 'empty') continue
        const expected = allowed.get(name)
        if (expected === undefined) throw new Error(`the root "${name}" is not in the schema`)
        if (expected !== kind) throw new Error(`the root "${name}" must be ${expected}, the update makes it ${kind}`)
        if (options.maxTextLength !== undefined && (kind === 'text' || kind === 'xml')) {
          const length = rootText(doc, name)?.length ?? 0
          if (length > options.maxTextLength) throw new Error(`the text "${name}" would have ${length} characters; at most ${options.maxTextLength}`)
        }
      }
      const problem = options.validate?.(doc) ?? null
      if (problem !== null) throw new Error(problem)
    },
  }
}
