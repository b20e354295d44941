import { useCallback, useRef, useSyncExternalStore } from 'react'
import type * as Y from 'yjs'
import type { DocHandle } from '@concord/client'
import { jsonEqual } from './json-equal.js'

/** Attach a change listener to a document; returns the detach function. */
type Observe = (doc: Y.Doc, onChange: () => void) => () => void

interface Cache<T> {
  handle: DocHandle | null
  read: ((doc: Y.Doc) => T) | null
  /** A change was seen (or the subscription is new) since `value` was read. */
  stale: boolean
  value: T | undefined
}

/**
 * A value read from a handle's document, re-read only after a change `observe` reports (and once
 * per new subscription, for changes between render and subscribe), and kept as the same object
 * while `isEqual` says it did not change: stable snapshots for useSyncExternalStore, so no
 * tearing and no render loop.
 */
function useDocValue<T>(handle: DocHandle | null | undefined, observe: Observe, read: (doc: Y.Doc) => T, isEqual: (a: T, b: T) => boolean): T | undefined {
  const cache = useRef<Cache<T>>({ handle: null, read: null, stale: true, value: undefined })
  const h = handle ?? null
  const subscribe = useCallback((notify: () => void) => {
    if (h === null) return () => {}
    cache.current.stale = true
    return observe(h.doc, () => {
      cache.current.stale = true
      notify()
    })
  }, [h, observe])
  const getSnapshot = (): T | undefined => {
    const c = cache.current
    if (h === null) return undefined
    if (c.handle === h && c.read === read && !c.stale) return c.value
    const next = read(h.doc)
    const same = c.handle === h && c.value !== undefined && isEqual(c.value, next)
    c.handle = h
    c.read = read
    c.stale = false
    if (!same) c.value = next
    return c.value
  }
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot)
}

const observeUpdates: Observe = (doc, onChange) => {
  doc.on('update', onChange)
  return () => doc.off('update', onChange)
}

/**
 * Any value computed from the document, re-computed after each change of it (local or remote).
 * `select` should be cheap or stable (an inline function is re-run on every render); the value
 * keeps its identity while `isEqual` (default `Object.is`) finds it unchanged.
 *
 * ```ts
 * const count = useShared(handle, doc => doc.getArray('todos').length)
 * ```
 */
export function useShared<T>(handle: DocHandle | null | undefined, select: (doc: Y.Doc) => T, isEqual: (a: T, b: T) => boolean = Object.is): T | undefined {
  return useDocValue(handle, observeUpdates, select, isEqual)
}

type TypeGetter<Type extends Y.AbstractType<any>> = (doc: Y.Doc, name: string) => Type

/** One named top-level type's value, re-read after a change anywhere inside it (observeDeep). */
function useTypeValue<Type extends Y.AbstractType<any>, T>(
  handle: DocHandle | null | undefined, name: string, get: TypeGetter<Type>, toValue: (type: Type) => T, isEqual: (a: T, b: T) => boolean,
): T | undefined {
  const observe = useCallback<Observe>((doc, onChange) => {
    const type = get(doc, name)
    type.observeDeep(onChange)
    return () => type.unobserveDeep(onChange)
  }, [name, get])
  const read = useCallback((doc: Y.Doc) => toValue(get(doc, name)), [name, get, toValue])
  return useDocValue(handle, observe, read, isEqual)
}

const getText: TypeGetter<Y.Text> = (doc, name) => doc.getText(name)
const getMap: TypeGetter<Y.Map<unknown>> = (doc, name) => doc.getMap(name)
const getArray: TypeGetter<Y.Array<unknown>> = (doc, name) => doc.getArray(name)
const textValue = (t: Y.Text): string => t.toString()
const toJson = (t: Y.AbstractType<any>): any => t.toJSON()

/** The text of `doc.getText(name)` as a string ('' until the handle is given). */
export function useText(handle: DocHandle | null | undefined, name: string): string {
  return useTypeValue(handle, name, getText, textValue, Object.is) ?? ''
}

/**
 * `doc.getMap(name).toJSON()`: nested Y types become plain objects and arrays. A change anywhere
 * inside (a nested map, an array in it) gives a new object; an unchanged map keeps its identity.
 */
export function useMap<T = unknown>(handle: DocHandle | null | undefined, name: string): Record<string, T> {
  return useTypeValue<Y.Map<unknown>, Record<string, T>>(handle, name, getMap, toJson, jsonEqual) ?? EMPTY_OBJECT
}

/** `doc.getArray(name).toJSON()`, like `useMap`. */
export function useArray<T = unknown>(handle: DocHandle | null | undefined, name: string): T[] {
  return useTypeValue<Y.Array<unknown>, T[]>(handle, name, getArray, toJson, jsonEqual) ?? EMPTY_ARRAY
}

const EMPTY_OBJECT: Record<string, never> = Object.freeze({}) as Record<string, never>
const EMPTY_ARRAY: never[] = Object.freeze([]) as unknown as never[]
