import { useCallback, useEffect, useRef, useState } from 'react'
import type { DocHandle, VersionInfo } from '@concord/client'

export interface VersionsState {
  /** The document's versions, oldest first (`handle.versions()`); null before the first answer. */
  versions: VersionInfo[] | null
  /** A request for the list is under way. */
  loading: boolean
  /** The last request's failure (it carries the server's `code` and HTTP `status`), null after a success. */
  error: (Error & { code?: string; status?: number }) | null
  /** Ask the server for the list again. */
  refresh: () => Promise<void>
  /** Save the document as it is on the server now as a named version, then refresh the list. */
  create: (name: string) => Promise<VersionInfo>
  /** Bring the document back to a version (a new change everyone receives), then refresh the list. */
  restore: (id: string) => Promise<{ changed: boolean }>
  /** Delete a named version, then refresh the list. */
  remove: (id: string) => Promise<void>
}

/**
 * The document's history (docs/history.md) through the SDK's history calls: the list of versions,
 * fetched when the hook mounts or the handle changes and on `refresh()`, with loading and error
 * state, and the calls that change it. An answer that arrives after unmount, after a change of
 * handle, or after a newer request is dropped.
 */
export function useVersions(handle: DocHandle | null | undefined): VersionsState {
  const h = handle ?? null
  const [state, setState] = useState<{ handle: DocHandle | null; versions: VersionInfo[] | null; loading: boolean; error: VersionsState['error'] }>(
    { handle: h, versions: null, loading: h !== null, error: null })
  /** The newest request; older answers are dropped. */
  const latest = useRef(0)
  const mounted = useRef(false)

  const refresh = useCallback(async (): Promise<void> => {
    if (h === null) return
    const id = ++latest.current
    setState(s => ({ ...s, handle: h, loading: true }))
    try {
      const versions = await h.versions()
      if (mounted.current && latest.current === id) setState({ handle: h, versions, loading: false, error: null })
    } catch (err) {
      if (mounted.current && latest.current === id) setState(s => ({ ...s, handle: h, loading: false, error: err as VersionsState['error'] }))
    }
  }, [h])

  useEffect(() => {
    mounted.current = true
    if (h === null) {
      latest.current++
      setState({ handle: null, versions: null, loading: false, error: null })
    } else {
      void refresh()
    }
    return () => {
      mounted.current = false
      latest.current++
    }
  }, [h, refresh])

  const create = useCallback(async (name: string) => {
    const v = await requireHandle(h).createVersion(name)
    await refresh()
    return v
  }, [h, refresh])
  const restore = useCallback(async (id: string) => {
    const r = await requireHandle(h).restore(id)
    await refresh()
    return r
  }, [h, refresh])
  const remove = useCallback(async (id: string) => {
    await requireHandle(h).deleteVersion(id)
    await refresh()
  }, [h, refresh])

  // until the effect of a new handle has run, show nothing of the previous handle's list
  const current = state.handle === h
  return {
    versions: current ? state.versions : null,
    loading: current ? state.loading : h !== null,
    error: current ? state.error : null,
    refresh, create, restore, remove,
  }
}

function requireHandle(h: DocHandle | null): DocHandle {
  if (h === null) throw new Error('useVersions: no document handle')
  return h
}
