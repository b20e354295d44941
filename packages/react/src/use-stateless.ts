import { useCallback, useEffect, useRef } from 'react'
import type { DocHandle } from '@concord/client'

/**
 * Stateless messages of the document (`handle.sendStateless`, the `stateless` event): `onMessage`
 * (the latest one passed; it need not be stable) receives what the document's other sessions send,
 * and the returned function sends (false, nothing sent, while the document is not open on a
 * connected socket: a signal is not queued).
 *
 * ```ts
 * const send = useStateless(handle, payload => follow(JSON.parse(payload)))
 * send(JSON.stringify({ follow: me }))
 * ```
 */
export function useStateless(handle: DocHandle | null | undefined, onMessage?: (payload: string) => void): (payload: string) => boolean {
  const h = handle ?? null
  const listener = useRef(onMessage)
  useEffect(() => {
    listener.current = onMessage
  })
  useEffect(() => {
    if (h === null) return
    return h.on('stateless', payload => listener.current?.(payload))
  }, [h])
  return useCallback((payload: string) => (h === null ? false : h.sendStateless(payload)), [h])
}
