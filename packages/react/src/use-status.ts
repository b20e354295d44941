import { useCallback, useRef, useSyncExternalStore } from 'react'
import type { DocHandle, DocHandleEvents, DocStatus } from '@concord/client'

export interface DocumentStatus {
  /** `connecting`, `syncing`, `synced`, `closed` or `error` (`handle.status`). */
  status: DocStatus
  /** The server's state is in the document and ours was offered (`status === 'synced'`). */
  synced: boolean
  /** What the offline store kept is back in the document (at once without a store). */
  loaded: boolean
  /** Every local edit is durable on the server (`handle.saved`). */
  saved: boolean
  /** No working connection for a while (`handle.offline`). */
  offline: boolean
  /** With the client's `replicatedRegions`: every local edit is durable in that many regions; null without it. */
  replicated: boolean | null
  /** This session's role once the document is open (`read`, `write`, ...), null before. */
  role: DocHandle['role']
}

/** The events after which a field of DocumentStatus may differ. */
const EVENTS = ['status', 'synced', 'saved', 'unsaved', 'offline', 'online', 'replicated', 'ack', 'role', 'error'] as const satisfies readonly (keyof DocHandleEvents)[]

const NO_HANDLE: DocumentStatus = Object.freeze({ status: 'closed', synced: false, loaded: false, saved: true, offline: false, replicated: null, role: null })

/** Handles whose offline store content is loaded (whenLoaded resolved). */
const loadedHandles = new WeakSet<DocHandle>()

function read(h: DocHandle): DocumentStatus {
  return { status: h.status, synced: h.synced, loaded: loadedHandles.has(h), saved: h.saved, offline: h.offline, replicated: h.replicated, role: h.role }
}

function sameStatus(a: DocumentStatus, b: DocumentStatus): boolean {
  return a.status === b.status && a.synced === b.synced && a.loaded === b.loaded && a.saved === b.saved &&
    a.offline === b.offline && a.replicated === b.replicated && a.role === b.role
}

/**
 * The document's state as a user sees it: synced, saved (durable on the server), offline,
 * replicated. Re-renders when one of them changes; the object keeps its identity otherwise.
 *
 * ```ts
 * const { saved, offline } = useStatus(handle)
 * return <span>{offline ? 'offline' : saved ? 'saved' : 'saving…'}</span>
 * ```
 */
export function useStatus(handle: DocHandle | null | undefined): DocumentStatus {
  const h = handle ?? null
  const cache = useRef<{ handle: DocHandle | null; value: DocumentStatus }>({ handle: null, value: NO_HANDLE })
  const subscribe = useCallback((notify: () => void) => {
    if (h === null) return () => {}
    const offs = EVENTS.map(event => h.on(event, notify))
    let active = true
    if (!loadedHandles.has(h)) {
      h.whenLoaded().then(() => {
        loadedHandles.add(h)
        if (active) notify()
      }, () => {})
    }
    return () => {
      active = false
      for (const off of offs) off()
    }
  }, [h])
  const getSnapshot = (): DocumentStatus => {
    if (h === null) return NO_HANDLE
    const c = cache.current
    const next = read(h)
    if (c.handle !== h || !sameStatus(c.value, next)) {
      c.handle = h
      c.value = next
    }
    return c.value
  }
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot)
}
