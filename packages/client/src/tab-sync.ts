import * as Y from 'yjs'

/** Origin of updates another tab sent over the BroadcastChannel (theirs to save and send). */
export const FROM_TAB = Symbol('concord-tab')

/** What tabs say to each other about one document. */
type TabMessage =
  /** A tab opened the document: everyone answers with what it lacks, and with their state vector. */
  | { t: 'hello'; from: string; sv: Uint8Array }
  /** The answer to a hello: what the newcomer lacks, and what the answering tab has. */
  | { t: 'welcome'; from: string; to: string; update: Uint8Array; sv: Uint8Array }
  /** A local edit (or, addressed `to` one tab, what that tab lacks). */
  | { t: 'update'; from: string; to?: string; update: Uint8Array }
  /** A tab closed the document: what it left unsent may be adopted. */
  | { t: 'bye'; from: string }

interface ChannelLike {
  postMessage(message: unknown): void
  close(): void
  onmessage: ((ev: { data: unknown }) => void) | null
}

/**
 * Tabs of one origin that have the same document open share its state over a BroadcastChannel:
 * an edit in one tab shows in the others at once, online or offline. Each tab still saves and
 * sends only its own edits (the server would refuse one user's items under another writer's
 * client id, and the offline store keeps each tab's pending updates apart).
 */
export class TabSync {
  readonly #id = Math.random().toString(36).slice(2) + Date.now().toString(36)
  readonly #doc: Y.Doc
  readonly #channel: ChannelLike
  readonly #onBye: () => void
  #closed = false

  constructor(channelName: string, doc: Y.Doc, onBye: () => void) {
    this.#doc = doc
    this.#onBye = onBye
    const BC = (globalThis as { BroadcastChannel?: new (name: string) => ChannelLike }).BroadcastChannel!
    this.#channel = new BC(channelName)
    this.#channel.onmessage = ev => this.#receive(ev.data)
    // a closing tab says bye, so that the others adopt what it leaves unsent
    ;(globalThis as { addEventListener?: (type: string, listener: () => void) => void }).addEventListener?.('pagehide', this.#pageHide)
  }

  readonly #pageHide = (): void => {
    this.#post({ t: 'bye', from: this.#id })
  }

  /** Where BroadcastChannel exists (browsers, and Node's workers). */
  static available(): boolean {
    return typeof (globalThis as { BroadcastChannel?: unknown }).BroadcastChannel === 'function'
  }

  /** Say hello once what the offline store kept is in the document (so answers carry only what we lack). */
  start(): void {
    this.#post({ t: 'hello', from: this.#id, sv: Y.encodeStateVector(this.#doc) })
  }

  /** A local edit of this tab. */
  broadcast(update: Uint8Array): void {
    this.#post({ t: 'update', from: this.#id, update })
  }

  close(): void {
    if (this.#closed) return
    this.#post({ t: 'bye', from: this.#id })
    this.#closed = true
    ;(globalThis as { removeEventListener?: (type: string, listener: () => void) => void }).removeEventListener?.('pagehide', this.#pageHide)
    this.#channel.onmessage = null
    this.#channel.close()
  }

  #post(message: TabMessage): void {
    if (this.#closed) return
    try {
      this.#channel.postMessage(message)
    } catch { /* the channel is closing (the page unloads) */ }
  }

  #receive(data: unknown): void {
    if (this.#closed || typeof data !== 'object' || data === null) return
    const m = data as Partial<TabMessage> & { to?: unknown }
    if (typeof m.from !== 'string' || m.from === this.#id) return
    if (m.to !== undefined && m.to !== this.#id) return
    switch (m.t) {
      case 'hello':
        if (!(m.sv instanceof Uint8Array)) return
        this.#post({ t: 'welcome', from: this.#id, to: m.from, update: this.#diff(m.sv), sv: Y.encodeStateVector(this.#doc) })
        return
      case 'welcome':
        if (!(m.update instanceof Uint8Array) || !(m.sv instanceof Uint8Array)) return
        this.#apply(m.update)
        this.#post({ t: 'update', from: this.#id, to: m.from, update: this.#diff(m.sv) })
        return
      case 'update':
        if (m.update instanceof Uint8Array) this.#apply(m.update)
        return
      case 'bye':
        this.#onBye()
        return
    }
  }

  #diff(stateVector: Uint8Array): Uint8Array {
    try {
      return Y.encodeStateAsUpdate(this.#doc, stateVector)
    } catch {
      return Y.encodeStateAsUpdate(this.#doc)
    }
  }

  #apply(update: Uint8Array): void {
    try {
      Y.applyUpdate(this.#doc, update, FROM_TAB)
    } catch { /* not a Yjs update: ignored (same-origin code sent it) */ }
  }
}
