import type { SyncReply } from '../documents/sync-replies.js'
import type { SocketSender } from './socket-sender.js'
import type { ServerMetrics } from '../ops/metrics.js'

/** What a responder asks its document for (`LiveDocument.sync.prepareReply`). */
export interface SyncReplySource {
  prepareReply(stateVector?: Uint8Array): SyncReply | Promise<SyncReply>
}

export interface SyncResponderOptions {
  document: SyncReplySource
  /** The session's socket: a reply is outstanding while it is above the backpressure mark. */
  sender: Pick<SocketSender, 'congested' | 'whenDrained'>
  /** Send a reply to the peer (updates first, then step 2). */
  send: (reply: SyncReply) => void
  /** True once the session has ended: nothing more is sent. */
  closed: () => boolean
  metrics?: Pick<ServerMetrics, 'syncStep1Coalesced'>
  /** Nothing is outstanding any more (the owner may drop the responder; a new one starts afresh). */
  idle?: () => void
}

/**
 * One session's answers to its peer's sync step 1 (and the state vector of OPEN): at most one
 * reply outstanding per session and document. A reply is outstanding while it is prepared
 * (a large document's diff is computed in the merge worker), until the next event-loop turn,
 * and while the socket stays above its backpressure mark (a large reply sits in its send
 * buffer). Step 1 frames that arrive meanwhile are coalesced: once the outstanding reply is
 * done, one more reply answers the latest state vector received. A flood of step 1 frames
 * thus costs one reply per read of the socket at most, and no more than the peer reads;
 * an honest peer (which sends step 1 on connect and on a resync interval) is always answered
 * and never refused.
 */
export class SyncResponder {
  readonly #opts: SyncResponderOptions
  #busy = false
  /** The latest step 1 received while a reply was outstanding (a state vector of `undefined`: the peer holds nothing). */
  #wanted: { stateVector: Uint8Array | undefined; malformed: () => void } | null = null

  constructor(options: SyncResponderOptions) {
    this.#opts = options
  }

  /**
   * Answer a step 1, now or coalesced into the next reply. When its state vector cannot be
   * decoded (found when it is answered), `malformed` is called instead.
   */
  request(stateVector: Uint8Array | undefined, malformed: () => void): void {
    if (this.#opts.closed()) return
    if (this.#busy) {
      // a frame's bytes may be a view of a reused read buffer: keep a copy
      if (this.#wanted !== null) this.#opts.metrics?.syncStep1Coalesced.inc()
      this.#wanted = { stateVector: stateVector?.slice(), malformed }
      return
    }
    this.#answer(stateVector, malformed)
  }

  #answer(stateVector: Uint8Array | undefined, malformed: () => void): void {
    this.#busy = true
    let reply: SyncReply | Promise<SyncReply>
    try {
      reply = this.#opts.document.prepareReply(stateVector)
    } catch {
      // the state vector could not be decoded
      this.#busy = false
      malformed()
      this.#done()
      return
    }
    if (reply instanceof Promise) reply.then(r => this.#deliver(r), () => this.#done())
    else this.#deliver(reply)
  }

  #deliver(reply: SyncReply): void {
    if (this.#opts.closed()) return
    this.#opts.send(reply)
    // the next reply waits for a later turn (so that a read full of step 1 frames gets one more
    // reply, not one each), and for this one to leave the send buffer if it made the socket congested
    setImmediate(() => {
      if (this.#opts.closed()) return
      const sender = this.#opts.sender
      if (sender.congested) sender.whenDrained(() => this.#done())
      else this.#done()
    })
  }

  #done(): void {
    this.#busy = false
    const wanted = this.#wanted
    this.#wanted = null
    if (wanted !== null && !this.#opts.closed()) this.#answer(wanted.stateVector, wanted.malformed)
    else this.#opts.idle?.()
  }
}
