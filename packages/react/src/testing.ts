// Test helper (not built, not exported): counts the listeners attached to a document handle, its
// Y.Doc, its Awareness and named top-level types, so tests can check that hooks detach what they
// attach. Used by this package's unit tests and by the Chromium test's React app.
import { DocHandle } from '@concord/client'

/** Live listeners per handle and event, kept by the patched DocHandle.prototype.on/off. */
const live = new WeakMap<DocHandle, Map<string, Set<unknown>>>()
let patched = false

/**
 * Patch `DocHandle.prototype.on`/`off` (once) to keep count of the listeners attached to each
 * handle (its emitter keeps them private). Call before the handles to watch get listeners.
 */
export function trackHandleListeners(): void {
  if (patched) return
  patched = true
  const proto = DocHandle.prototype as unknown as {
    on(event: string, listener: unknown): () => void
    off(event: string, listener: unknown): void
  }
  const on = proto.on
  const off = proto.off
  proto.on = function (this: DocHandle, event: string, listener: unknown) {
    let events = live.get(this)
    if (events === undefined) live.set(this, events = new Map())
    let set = events.get(event)
    if (set === undefined) events.set(event, set = new Set())
    set.add(listener)
    // the emitter's own unsubscribe calls this.off, the patched one below
    return on.call(this, event, listener)
  }
  proto.off = function (this: DocHandle, event: string, listener: unknown) {
    live.get(this)?.get(event)?.delete(listener)
    off.call(this, event, listener)
  }
}

interface TypeInternals { _eH: { l: unknown[] }; _dEH: { l: unknown[] } }
interface ObservableInternals { _observers: Map<string, Set<unknown>> }

function observers(o: unknown): number {
  let n = 0
  for (const set of (o as ObservableInternals)._observers.values()) n += set.size
  return n
}

/**
 * Listeners on `handle` (its events, with trackHandleListeners), `handle.doc`, `handle.awareness`
 * and the top-level types named in `types` (observe and observeDeep).
 */
export function listenerCounts(handle: DocHandle, types: { text?: string[]; map?: string[]; array?: string[] } = {}): Record<string, number> {
  const counts: Record<string, number> = {}
  let events = 0
  for (const set of live.get(handle)?.values() ?? []) events += set.size
  counts.handle = events
  counts.doc = observers(handle.doc)
  counts.awareness = observers(handle.awareness)
  const add = (kind: string, name: string, type: unknown): void => {
    const t = type as TypeInternals
    counts[`${kind}:${name}`] = t._eH.l.length + t._dEH.l.length
  }
  for (const name of types.text ?? []) add('text', name, handle.doc.getText(name))
  for (const name of types.map ?? []) add('map', name, handle.doc.getMap(name))
  for (const name of types.array ?? []) add('array', name, handle.doc.getArray(name))
  return counts
}
