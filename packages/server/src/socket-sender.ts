import type { WebSocket } from 'ws'
import { chunkFrame, ConcordError } from '@concord/protocol'

/** How long a socket closed as a slow reader gets to read its close frame before it is cut. */
export const SLOW_READER_GRACE_MS = 2_000

export interface SocketSenderOptions {
  /** Frames above this are chunked (0: never chunk, for y-websocket). */
  chunkBytes: number
  maxBufferedBytes: number
  /** Called when the peer reads too slowly; the sender has stopped sending. */
  onSlowReader: (error: ConcordError) => void
}

/**
 * Writes frames to one socket. Small frames go out at once; large native frames
 * are cut into chunks sent one at a time (the next when the previous left the
 * process), so small frames and cursors slip in between them.
 */
export class SocketSender {
  readonly #ws: WebSocket
  readonly #opts: SocketSenderOptions
  readonly #large: Generator<Uint8Array>[] = []
  /** Bytes of large frames accepted but not yet handed to the socket. */
  #largeBytes = 0
  #chunkInFlight = false
  #nextMessageId = 1
  #stopped = false

  constructor(ws: WebSocket, opts: SocketSenderOptions) {
    this.#ws = ws
    this.#opts = opts
  }

  /** Bytes accepted but not yet written to the kernel. */
  get bufferedBytes(): number {
    return this.#ws.bufferedAmount
  }

  send(bytes: Uint8Array, document = ''): void {
    if (this.#stopped || this.#ws.readyState !== this.#ws.OPEN) return
    if (this.#ws.bufferedAmount + this.#largeBytes + bytes.length > this.#opts.maxBufferedBytes) {
      this.#slow()
      return
    }
    if (this.#opts.chunkBytes > 0 && bytes.length > this.#opts.chunkBytes) {
      this.#largeBytes += bytes.length
      this.#large.push(chunkFrame(bytes, document, this.#nextMessageId++, this.#opts.chunkBytes))
      this.#pump()
      return
    }
    this.#ws.send(bytes, { binary: true })
  }

  stop(): void {
    this.#stopped = true
    this.#large.length = 0
    this.#largeBytes = 0
  }

  #pump(): void {
    if (this.#chunkInFlight || this.#stopped) return
    while (this.#large.length > 0) {
      const gen = this.#large.shift()!
      const next = gen.next()
      if (next.done) continue
      // round-robin between large messages
      this.#large.push(gen)
      if (this.#ws.readyState !== this.#ws.OPEN) return
      // the frame's bytes leave the large queue as its chunks go out (a chunk carries a little header)
      this.#largeBytes = Math.max(0, this.#largeBytes - next.value.length)
      this.#chunkInFlight = true
      this.#ws.send(next.value, { binary: true }, () => {
        this.#chunkInFlight = false
        this.#pump()
      })
      return
    }
  }

  #slow(): void {
    if (this.#stopped) return
    this.stop()
    this.#opts.onSlowReader(new ConcordError('CONCORD_ERR_LIMIT_SLOW_READER',
      `more than ${this.#opts.maxBufferedBytes} bytes waiting to be sent`))
  }
}
