import type { ConcordClient, DocHandle } from '@concord/client'

/**
 * A document that components render with but none has claimed yet (a render React threw away, or one
 * whose commit is still to come) stays open this long before it is closed. Only a guard against a
 * leak: a claimed document is closed as soon as its last user unmounts.
 */
const UNCLAIMED_CLOSE_MS = 10_000

interface Entry {
  readonly name: string
  readonly handle: DocHandle
  /** Mounted components using the document. */
  users: number
  /** Opened by this cache (closed by it); false when the application had it open already. */
  readonly owned: boolean
  timer: ReturnType<typeof setTimeout> | null
}

/**
 * The documents a `ConcordProvider`'s components use: each opened once per name and closed when
 * the last component using it unmounts (reference-counted). The close waits for the next macrotask,
 * so a component that unmounts and mounts again in one commit (React's StrictMode, a key change
 * that keeps the name) keeps its document and its sync state.
 */
export class DocumentCache {
  readonly client: ConcordClient
  readonly #entries = new Map<string, Entry>()

  constructor(client: ConcordClient) {
    this.client = client
  }

  /**
   * The handle for `name`, opened if needed. Safe to call while rendering: a handle nobody claims
   * with `retain` is closed after a while.
   */
  peek(name: string): DocHandle {
    const entry = this.#entry(name)
    if (entry.users === 0) this.#scheduleClose(entry, UNCLAIMED_CLOSE_MS)
    return entry.handle
  }

  /** Claim `name` for one user (a mounted component); `release` gives the claim back (once). */
  retain(name: string): { handle: DocHandle; release: () => void } {
    const entry = this.#entry(name)
    entry.users++
    this.#cancelClose(entry)
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      entry.users--
      if (entry.users === 0) this.#scheduleClose(entry, 0)
    }
    return { handle: entry.handle, release }
  }

  /** Mounted users of `name` (0 when it is not open here). */
  users(name: string): number {
    return this.#entries.get(name)?.users ?? 0
  }

  #entry(name: string): Entry {
    let entry = this.#entries.get(name)
    if (entry !== undefined && entry.handle.isClosed) {
      // closed behind our back (handle.close(), client.close()): open it afresh
      this.#cancelClose(entry)
      this.#entries.delete(name)
      entry = undefined
    }
    if (entry === undefined) {
      const owned = !this.client.documents.some(h => h.name === name)
      entry = { name, handle: this.client.open(name), users: 0, owned, timer: null }
      this.#entries.set(name, entry)
    }
    return entry
  }

  #scheduleClose(entry: Entry, ms: number): void {
    this.#cancelClose(entry)
    entry.timer = setTimeout(() => {
      entry.timer = null
      if (entry.users > 0) return
      if (this.#entries.get(entry.name) === entry) this.#entries.delete(entry.name)
      if (entry.owned) entry.handle.close()
    }, ms)
  }

  #cancelClose(entry: Entry): void {
    if (entry.timer === null) return
    clearTimeout(entry.timer)
    entry.timer = null
  }
}
