import type { Awareness } from 'y-protocols/awareness'

/** Another participant's presence state, as they set it. */
export interface Peer<State = Record<string, unknown>> {
  clientId: number
  state: State
}

export interface PresenceOptions {
  /** Local state changes are sent at most this often (default 50 ms); the last one always goes out. */
  throttleMs?: number
  /** `typing()` marks the user as typing for this long after the last call (default 2,000 ms). */
  typingTimeoutMs?: number
}

/**
 * Presence helpers over a y-protocols `Awareness`: set the local user, cursor
 * and selection (throttled), read the others, and a typing indicator that
 * clears itself. Peers that leave disappear (the server removes their state).
 */
export class Presence<State extends Record<string, unknown> = Record<string, unknown>> {
  readonly awareness: Awareness
  readonly #throttleMs: number
  readonly #typingTimeoutMs: number
  #queued: Partial<State> | null = null
  #timer: ReturnType<typeof setTimeout> | null = null
  #lastSent = 0
  #typingTimer: ReturnType<typeof setTimeout> | null = null

  constructor(awareness: Awareness, options: PresenceOptions = {}) {
    this.awareness = awareness
    this.#throttleMs = options.throttleMs ?? 50
    this.#typingTimeoutMs = options.typingTimeoutMs ?? 2_000
  }

  /** Merge `fields` into the local state; sent at most once per `throttleMs`. */
  set(fields: Partial<State>): void {
    this.#queued = { ...(this.#queued ?? {}), ...fields }
    if (this.#timer !== null) return
    const wait = Math.max(0, this.#lastSent + this.#throttleMs - Date.now())
    if (wait === 0) {
      this.#flush()
      return
    }
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#flush()
    }, wait)
  }

  /** The local state as last set (including changes not sent yet). */
  get local(): Partial<State> {
    return { ...((this.awareness.getLocalState() ?? {}) as Partial<State>), ...(this.#queued ?? {}) }
  }

  /** Everyone else present, in client-id order. */
  others(): Peer<State>[] {
    const out: Peer<State>[] = []
    for (const [clientId, state] of this.awareness.getStates()) {
      if (clientId !== this.awareness.clientID && state !== null && Object.keys(state).length > 0) out.push({ clientId, state: state as State })
    }
    return out.sort((a, b) => a.clientId - b.clientId)
  }

  /** Subscribe to changes of anyone's presence; returns the unsubscribe function. */
  onChange(listener: (others: Peer<State>[]) => void): () => void {
    const handler = (): void => listener(this.others())
    this.awareness.on('change', handler)
    return () => this.awareness.off('change', handler)
  }

  /** Mark the local user as typing; clears itself `typingTimeoutMs` after the last call. */
  typing(): void {
    if (this.#typingTimer !== null) clearTimeout(this.#typingTimer)
    else this.set({ typing: true } as unknown as Partial<State>)
    this.#typingTimer = setTimeout(() => {
      this.#typingTimer = null
      this.set({ typing: false } as unknown as Partial<State>)
    }, this.#typingTimeoutMs)
  }

  /** Peers currently typing. */
  typingPeers(): Peer<State>[] {
    return this.others().filter(p => (p.state as { typing?: unknown }).typing === true)
  }

  /** Stop timers (the handle calls this on close). */
  destroy(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#typingTimer !== null) clearTimeout(this.#typingTimer)
    this.#timer = null
    this.#typingTimer = null
  }

  #flush(): void {
    if (this.#queued === null) return
    const next = { ...(this.awareness.getLocalState() ?? {}), ...this.#queued }
    this.#queued = null
    this.#lastSent = Date.now()
    this.awareness.setLocalState(next)
  }
}
