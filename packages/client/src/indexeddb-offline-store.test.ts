import { describe, it, expect } from 'vitest'
import { createIndexedDbOfflineStore } from './indexeddb-offline-store.js'

// Real IndexedDB behaviour is tested in Chromium (e2e/browser-client.test.ts); these
// cover failures a browser will not produce on demand, with a scripted factory.

type Handler = ((ev?: unknown) => void) | null

/** A minimal IDBFactory whose transactions end as `outcome()` says, counting opens. */
function scriptedFactory(outcome: () => 'complete' | 'quota' | 'closed'): { factory: IDBFactory; opens: number } {
  const state = { opens: 0 }
  const db = {
    objectStoreNames: { contains: () => true },
    onversionchange: null as Handler,
    onclose: null as Handler,
    close() {},
    transaction() {
      const result = outcome()
      if (result === 'closed') throw new DOMException('The database connection is closing.', 'InvalidStateError')
      const tx = {
        error: null as DOMException | null,
        oncomplete: null as Handler,
        onabort: null as Handler,
        objectStore: () => ({
          put: () => ({ result: undefined, error: null }),
          get: () => ({ result: undefined, error: null }),
          delete: () => ({ result: undefined, error: null }),
        }),
        abort() {},
      }
      setTimeout(() => {
        if (result === 'complete') tx.oncomplete?.()
        else {
          tx.error = new DOMException('The quota has been exceeded.', 'QuotaExceededError')
          tx.onabort?.()
        }
      }, 0)
      return tx
    },
  }
  const factory = {
    open() {
      state.opens++
      const request = { result: db, error: null, onsuccess: null as Handler, onerror: null as Handler, onupgradeneeded: null as Handler }
      setTimeout(() => request.onsuccess?.(), 0)
      return request
    },
  }
  return {
    factory: factory as unknown as IDBFactory,
    get opens() { return state.opens },
  }
}

const snapshot = { state: new Uint8Array([0, 0]), pending: [], nextSeq: 1 }

describe('IndexedDB offline store failures', () => {
  it('refuses to start where there is no IndexedDB, saying what to use instead', () => {
    expect(() => createIndexedDbOfflineStore()).toThrow(/IndexedDB is not available here .*createFileOfflineStore/)
  })

  it('rejects a save the browser aborts (quota) with the document, the database and the cause', async () => {
    const { factory } = scriptedFactory(() => 'quota')
    const store = createIndexedDbOfflineStore({ dbName: 'app', indexedDB: factory })
    const err = await store.save('notes', snapshot).then(() => null, (e: Error) => e)
    expect(err?.message).toBe('IndexedDB offline store: saving "notes" in database "app" failed (QuotaExceededError: The quota has been exceeded.)')
    expect((err?.cause as DOMException).name).toBe('QuotaExceededError')
  })

  it('opens the database once, and again only after the browser closed the connection', async () => {
    let next: 'complete' | 'closed' = 'complete'
    const scripted = scriptedFactory(() => {
      const now = next
      next = 'complete'
      return now
    })
    const store = createIndexedDbOfflineStore({ indexedDB: scripted.factory })
    await store.save('a', snapshot)
    await store.save('b', snapshot)
    expect(await store.load('a')).toBeNull()
    expect(scripted.opens).toBe(1)
    next = 'closed'
    await store.save('a', snapshot)
    expect(scripted.opens).toBe(2)
  })
})
