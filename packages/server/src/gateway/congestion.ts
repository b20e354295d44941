import * as Y from 'yjs'
import type { SocketSender } from './socket-sender.js'

/**
 * What a congested socket does not get right away (ARCHITECTURE.md, backpressure):
 * above the sender's backpressure mark, document updates for one session are
 * held and merged, and presence is held and later sent as the room's latest
 * state. When the socket has read below the mark, the merged update and the
 * presence go out. Once something is held, later updates queue behind it, so
 * order is kept.
 */
export class CongestionHold {
  readonly #sender: SocketSender
  readonly #flush: (update: Uint8Array | null, presence: boolean) => void
  #updates: Uint8Array[] = []
  #heldBytes = 0
  #presence = false
  #waiting = false

  constructor(sender: SocketSender, flush: (update: Uint8Array | null, presence: boolean) => void) {
    this.#sender = sender
    this.#flush = flush
  }

  /** True when the update was held (the caller must not send it). */
  holdUpdate(update: Uint8Array): boolean {
    if (this.#updates.length === 0 && !this.#sender.congested) return false
    this.#updates.push(update)
    let held = update.length
    // merged as it grows: a held backlog costs about what the changes themselves do
    if (this.#updates.length >= MERGE_EVERY) {
      const before = this.#updates.reduce((n, u) => n + u.length, 0)
      this.#updates = [Y.mergeUpdates(this.#updates)]
      held += this.#updates[0]!.length - before
    }
    this.#heldBytes += held
    // what is held counts against the socket's bound; past it the socket is closed as a slow reader
    if (!this.#sender.hold(held)) {
      this.#updates = []
      this.#heldBytes = 0
      return true
    }
    this.#wait()
    return true
  }

  /** True when presence was held (the room's latest presence is sent once drained). */
  holdPresence(): boolean {
    if (!this.#presence && !this.#sender.congested) return false
    this.#presence = true
    this.#wait()
    return true
  }

  #wait(): void {
    if (this.#waiting) return
    this.#waiting = true
    this.#sender.whenDrained(() => {
      this.#waiting = false
      const updates = this.#updates
      const presence = this.#presence
      this.#updates = []
      this.#presence = false
      this.#sender.hold(-this.#heldBytes)
      this.#heldBytes = 0
      const update = updates.length === 0 ? null : updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates)
      this.#flush(update, presence)
    })
  }
}

const MERGE_EVERY = 32
