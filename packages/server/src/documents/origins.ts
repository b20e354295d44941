import type { ConcordError } from '@concord/protocol'

/**
 * Who sent an update this node applies: one of its sessions (`DocumentSession` is one), or the
 * server itself (`ServerOrigin`, the admin API). It is told when its update is durable (`ack`)
 * or refused (`documentError`). Updates from other nodes have no origin here: they were
 * checked, stored and acked by the node that received them.
 */
export interface UpdateOrigin {
  readonly id: string
  readonly userId: string | null
  ack(seq: number): void
  /** With several regions: the update `seq` (acked before) is durable in `regions` regions now. */
  replicated?(seq: number, regions: number): void
  documentError(error: ConcordError, seq: number, closed: boolean): void
}

/**
 * The server's own update (the admin API): checked and stored like a client's, sent to every
 * session, and settled once: `resolve` when it is durable (or changed nothing), with whether
 * it changed the document; `reject` with the refusal a client would get.
 */
export class ServerOrigin implements UpdateOrigin {
  readonly id = 'server'
  readonly userId: string | null
  readonly #resolve: (result: { changed: boolean }) => void
  readonly #reject: (error: ConcordError) => void
  /** Set by the apply path when the update changed the document. */
  changed = false

  constructor(userId: string | null, resolve: (result: { changed: boolean }) => void, reject: (error: ConcordError) => void) {
    this.userId = userId
    this.#resolve = resolve
    this.#reject = reject
  }

  ack(): void {
    this.#resolve({ changed: this.changed })
  }

  documentError(error: ConcordError): void {
    this.#reject(error)
  }
}
