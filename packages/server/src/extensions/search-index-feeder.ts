import type * as Y from 'yjs'
import type { ChangeContext, ConcordExtension } from '../documents/extension-hooks.js'
import { rootText } from './shared-types.js'

export interface SearchIndexFeederOptions {
  /** Receives a changed document's text (called at most once per `debounceMs` per document, never concurrently for one). */
  feed: (documentName: string, text: string) => void | Promise<void>
  /** Quiet time after the last change before the text is fed (default 2 s). */
  debounceMs?: number
  /** A document that keeps changing is fed at least this often (default 10 s). */
  maxWaitMs?: number
  /** The text to index (default: every text and XML root's text, joined by blank lines). */
  extract?: (document: Y.Doc) => string
}

/**
 * Feeds a search index with the text of changed documents, debounced: one call per document after
 * it has been quiet for `debounceMs` (or every `maxWaitMs` while it keeps changing), whichever node
 * or region the change came from. Pending documents are fed when the server closes.
 */
export function createSearchIndexFeeder(options: SearchIndexFeederOptions): ConcordExtension {
  const debounceMs = options.debounceMs ?? 2_000
  const maxWaitMs = options.maxWaitMs ?? 10_000
  const extract = options.extract ?? defaultText
  const pending = new Map<string, { document: Y.Doc; timer: NodeJS.Timeout; firstAt: number }>()
  const running = new Map<string, Promise<void>>()

  const fire = (documentName: string): void => {
    const entry = pending.get(documentName)
    if (entry === undefined) return
    clearTimeout(entry.timer)
    pending.delete(documentName)
    const previous = running.get(documentName) ?? Promise.resolve()
    const next = previous.then(async () => { await options.feed(documentName, extract(entry.document)) })
      .catch(() => undefined)
      .finally(() => { if (running.get(documentName) === next) running.delete(documentName) })
    running.set(documentName, next)
  }

  return {
    name: 'search-index-feeder',
    onChange(ctx: ChangeContext) {
      const now = Date.now()
      const entry = pending.get(ctx.documentName)
      if (entry !== undefined) clearTimeout(entry.timer)
      const firstAt = entry?.firstAt ?? now
      const wait = Math.max(0, Math.min(debounceMs, firstAt + maxWaitMs - now))
      const timer = setTimeout(() => fire(ctx.documentName), wait)
      timer.unref()
      pending.set(ctx.documentName, { document: ctx.document, timer, firstAt })
    },
    async onDestroy() {
      for (const name of [...pending.keys()]) fire(name)
      await Promise.all(running.values())
    },
  }
}

function defaultText(document: Y.Doc): string {
  const parts: string[] = []
  for (const name of document.share.keys()) {
    const text = rootText(document, name)
    if (text !== null && text.length > 0) parts.push(text)
  }
  return parts.join('\n\n')
}
