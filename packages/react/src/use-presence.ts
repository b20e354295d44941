import { useCallback, useMemo, useRef, useSyncExternalStore } from 'react'
import type { DocHandle, Peer } from '@concord/client'

const NO_PEERS: never[] = Object.freeze([]) as unknown as never[]
const noop = (): void => {}

/** The same list when the same peers have the same state objects (awareness replaces a state on change). */
function samePeers(a: Peer<any>[], b: Peer<any>[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i].clientId !== b[i].clientId || a[i].state !== b[i].state) return false
  return true
}

/**
 * Everyone else's presence on the document, and a setter for one's own (merged into the local
 * state, throttled: `handle.presence.set`). Re-renders when anyone's presence changes.
 *
 * ```ts
 * const [others, setMine] = usePresence<{ user: { name: string }; cursor: number }>(handle)
 * ```
 */
export function usePresence<State extends Record<string, unknown> = Record<string, unknown>>(
  handle: DocHandle | null | undefined,
): [others: Peer<State>[], setMine: (fields: Partial<State>) => void] {
  const h = handle ?? null
  const cache = useRef<{ handle: DocHandle | null; stale: boolean; others: Peer<State>[] }>({ handle: null, stale: true, others: NO_PEERS })
  const subscribe = useCallback((notify: () => void) => {
    if (h === null) return noop
    cache.current.stale = true
    return h.presence.onChange(() => {
      cache.current.stale = true
      notify()
    })
  }, [h])
  const getSnapshot = (): Peer<State>[] => {
    const c = cache.current
    if (h === null) return NO_PEERS
    if (c.handle === h && !c.stale) return c.others
    const next = h.isClosed ? NO_PEERS : (h.presence.others() as Peer<State>[])
    if (c.handle !== h || !samePeers(c.others, next)) c.others = next.length === 0 ? NO_PEERS : next
    c.handle = h
    c.stale = false
    return c.others
  }
  const others = useSyncExternalStore(subscribe, getSnapshot, getSnapshot)
  const setMine = useCallback((fields: Partial<State>) => {
    if (h !== null && !h.isClosed) h.presence.set(fields as Record<string, unknown>)
  }, [h])
  return [others, setMine]
}

/**
 * The peers whose presence says they are typing, and the function that marks oneself as typing
 * (cleared 2 s after the last call: `handle.presence.typing`). Call it from an input's change handler.
 */
export function useTyping<State extends Record<string, unknown> = Record<string, unknown>>(
  handle: DocHandle | null | undefined,
): [typingPeers: Peer<State>[], typing: () => void] {
  const [others] = usePresence<State>(handle)
  const typingPeers = useMemo(() => {
    const list = others.filter(p => (p.state as { typing?: unknown }).typing === true)
    return list.length === 0 ? NO_PEERS : list
  }, [others])
  const h = handle ?? null
  const typing = useCallback(() => {
    if (h !== null && !h.isClosed) h.presence.typing()
  }, [h])
  return [typingPeers, typing]
}
