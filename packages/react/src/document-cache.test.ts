import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ConcordClient, DocHandle } from '@concord/client'
import { DocumentCache } from './document-cache.js'

/** A client whose handles only know their name and whether they were closed. */
function fakeClient(): ConcordClient & { opened: string[] } {
  const handles = new Map<string, DocHandle>()
  const opened: string[] = []
  return {
    opened,
    get documents() { return [...handles.values()] },
    open(name: string) {
      const existing = handles.get(name)
      if (existing !== undefined) return existing
      opened.push(name)
      const h = { name, isClosed: false, close() { h.isClosed = true; handles.delete(name) } }
      handles.set(name, h as unknown as DocHandle)
      return h as unknown as DocHandle
    },
  } as unknown as ConcordClient & { opened: string[] }
}

const macrotask = (): Promise<void> => new Promise(resolve => setTimeout(resolve, 0))

afterEach(() => {
  vi.useRealTimers()
})

describe('DocumentCache', () => {
  it('opens a name once for all its users and closes it after the last one releases it', async () => {
    const client = fakeClient()
    const cache = new DocumentCache(client)
    const a = cache.retain('notes')
    const b = cache.retain('notes')
    expect(a.handle).toBe(b.handle)
    expect(client.opened).toEqual(['notes'])
    expect(cache.users('notes')).toBe(2)
    a.release()
    a.release() // a second release of one claim counts once
    await macrotask()
    expect(a.handle.isClosed).toBe(false)
    expect(cache.users('notes')).toBe(1)
    b.release()
    expect(a.handle.isClosed).toBe(false) // closing waits for the next macrotask
    await macrotask()
    expect(a.handle.isClosed).toBe(true)
    expect(cache.users('notes')).toBe(0)
  })

  it('keeps the handle when it is released and claimed again in one commit (StrictMode, a remount)', async () => {
    const client = fakeClient()
    const cache = new DocumentCache(client)
    const first = cache.retain('notes')
    first.release()
    const second = cache.retain('notes')
    await macrotask()
    expect(second.handle).toBe(first.handle)
    expect(first.handle.isClosed).toBe(false)
    expect(client.opened).toEqual(['notes'])
    second.release()
    await macrotask()
    expect(first.handle.isClosed).toBe(true)
  })

  it('closes a handle that was rendered with but never claimed, after a while', () => {
    vi.useFakeTimers()
    const client = fakeClient()
    const cache = new DocumentCache(client)
    const h = cache.peek('draft')
    vi.advanceTimersByTime(9_000)
    expect(h.isClosed).toBe(false)
    vi.advanceTimersByTime(2_000)
    expect(h.isClosed).toBe(true)
  })

  it('a claim after the render keeps a peeked handle open', () => {
    vi.useFakeTimers()
    const cache = new DocumentCache(fakeClient())
    const h = cache.peek('notes')
    const claim = cache.retain('notes')
    vi.advanceTimersByTime(60_000)
    expect(h.isClosed).toBe(false)
    claim.release()
    vi.advanceTimersByTime(0)
    expect(h.isClosed).toBe(true)
  })

  it('never closes a document the application had opened itself', async () => {
    const client = fakeClient()
    const own = client.open('mine')
    const cache = new DocumentCache(client)
    const claim = cache.retain('mine')
    expect(claim.handle).toBe(own)
    claim.release()
    await macrotask()
    expect(own.isClosed).toBe(false)
  })

  it('opens a fresh handle when the cached one was closed behind its back', () => {
    const client = fakeClient()
    const cache = new DocumentCache(client)
    const first = cache.retain('notes')
    first.handle.close()
    const second = cache.retain('notes')
    expect(second.handle).not.toBe(first.handle)
    expect(second.handle.isClosed).toBe(false)
    expect(client.opened).toEqual(['notes', 'notes'])
  })
})
