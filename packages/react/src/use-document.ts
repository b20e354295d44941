import { useEffect, useReducer } from 'react'
import type { DocHandle } from '@concord/client'
import { useDocumentCache } from './concord-provider.js'

/**
 * The document `name` of the provider's client, as a `DocHandle`. Every component asking for one
 * name gets the same handle; it is opened by the first and closed when the last one unmounts.
 * It never suspends: the handle is there at once, its content arrives as it syncs (see
 * `useStatus(handle).synced` and `.loaded`).
 */
export function useDocument(name: string): DocHandle {
  const documents = useDocumentCache()
  const rendered = documents.peek(name)
  const [, rerender] = useReducer((n: number) => n + 1, 0)
  useEffect(() => {
    const { handle, release } = documents.retain(name)
    // the handle rendered was closed before this commit (closed by the app, or unclaimed for long): show the new one
    if (handle !== rendered) rerender()
    return release
  }, [documents, name, rendered])
  return rendered
}
