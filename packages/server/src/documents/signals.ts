import type { DocumentSession } from './document-session.js'

/** What the signals of one document need of it. */
export interface SignalsHost {
  readonly name: string
  readonly sessions: ReadonlySet<DocumentSession>
  /** The document is open (not failed, not destroyed). */
  readonly open: boolean
  /** Publishes to the document's sessions on the other nodes (absent: one node, or a backplane without it). */
  publish?(payload: string): void
}

/**
 * Stateless messages of one document ("follow me", "reload", "a comment was added"): forwarded to
 * the document's other sessions on this node and published for the other nodes, and kept nowhere.
 * Limits are the sending transport's (size, rate); a session whose transport has no such message
 * (y-websocket) is skipped.
 */
export class Signals {
  readonly #host: SignalsHost

  constructor(host: SignalsHost) {
    this.#host = host
  }

  /** From one of this node's sessions: to every other session here, and to the other nodes. */
  send(from: DocumentSession, payload: string): void {
    if (!this.#host.open) return
    for (const s of this.#host.sessions) if (s !== from) s.sendStateless?.(payload)
    this.#host.publish?.(payload)
  }

  /** From a session on another node: to every session here. */
  receiveRemote(payload: string): void {
    if (!this.#host.open) return
    for (const s of this.#host.sessions) s.sendStateless?.(payload)
  }
}
