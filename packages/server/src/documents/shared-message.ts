import { encodeFrameParts, encodeYMessageParts, FRAME_KINDS } from '@concord/protocol'

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
