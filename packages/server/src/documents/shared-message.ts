import { encodeFrameParts, encodeYMessageParts, FRAME_KINDS } from '@concord/protocol'

/** Keys whose derived values a message keeps (see `SharedMessage.derived`). */
const MAX_DERIVED = 4

/**
 * A payload sent to many sessions: encoded at most once per transport, however
 * many sessions receive it (fan-out encodes once).
 */
export class SharedMessage {
  readonly kind: 'update' | 'awareness'
  readonly document: string
  readonly payload: Uint8Array
  #native: readonly Uint8Array[] | undefined
  #yws: readonly Uint8Array[] | undefined
  /** What transports made of this message for their sockets (see `derived`): key, value, key, value. */
  #derived: unknown[] | undefined

  constructor(kind: 'update' | 'awareness', document: string, payload: Uint8Array) {
    this.kind = kind
    this.document = document
    this.payload = payload
  }

  /** The native frame, as parts (a large payload is not copied). */
  native(): readonly Uint8Array[] {
    if (this.#native === undefined) {
      this.#native = this.kind === 'update'
        ? encodeFrameParts({ kind: FRAME_KINDS.UPDATE, document: this.document, seq: 0, update: this.payload })
        : encodeFrameParts({ kind: FRAME_KINDS.AWARENESS, document: this.document, update: this.payload })
    }
    return this.#native
  }

  /**
   * What `make` derives from this message for a transport's sockets (a complete frame), made
   * once per `key` and kept while the message is sent. At most MAX_DERIVED keys are kept (one per
   * transport, or one per routing key a Hocuspocus provider uses): a further key's is made anew.
   */
  derived<T>(key: unknown, make: (message: SharedMessage) => T): T {
    const d = this.#derived ??= []
    for (let i = 0; i < d.length; i += 2) if (d[i] === key) return d[i + 1] as T
    const value = make(this)
    if (d.length < 2 * MAX_DERIVED) d.push(key, value)
    return value
  }

  /** The y-websocket message, as parts. */
  yWebsocket(): readonly Uint8Array[] {
    if (this.#yws === undefined) {
      this.#yws = encodeYMessageParts(this.kind === 'update'
        ? { type: 'update', update: this.payload }
        : { type: 'awareness', update: this.payload })
    }
    return this.#yws
  }
}
