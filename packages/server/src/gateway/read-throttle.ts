import { SocketRateLimiter, type RateLimits } from './rate-limiter.js'
import type { SocketLike } from './socket-like.js'

/** What the throttle needs of a socket: ws's `pause()` / `resume()`, which stop and restart reading its TCP socket. */
export type PausableSocket = Pick<SocketLike, 'pause' | 'resume'>

/**
 * After `pause()`, ws still emits the messages it has already parsed from the
 * last chunk it read from the TCP socket (at most 64 KiB; about 9,400 messages
 * of the smallest well-formed size), plus at most one message that chunk
 * completed. More than this many messages, or `maxMessageBytes` plus this many
 * bytes, held for one socket means the pause did not hold the sender back.
 */
export const MAX_HELD_MESSAGES = 16_384
export const MAX_HELD_EXTRA_BYTES = 1024 * 1024

/** A timer wakes at most this often: messages are then handled in batches of about rate × this. */
const MIN_WAIT_MS = 10

export interface ReadThrottleOptions extends RateLimits {
  /** The largest message the socket may send (held messages may total this plus `MAX_HELD_EXTRA_BYTES`). */
  maxMessageBytes: number
  /** Told each time the socket is paused. */
  onPause?: () => void
  /**
   * A message handled from the timer threw (a bug: the caller closes the socket). From
   * `receive` an error reaches the caller as usual.
   */
  onError?: (err: unknown) => void
}

/**
 * Flood control by backpressure (ARCHITECTURE.md §3: fast honest clients are
 * slowed, not cut). Each message a socket sends is charged to its
 * `SocketRateLimiter`. Within budget it is handled at once. Over budget it is
 * kept, in order, and the socket is paused: the kernel's receive buffer fills,
 * TCP flow control stops the sender, and a timer handles the kept messages as
 * the budget refills and then reads the socket again. Nothing is refused or
 * dropped. `onOverflow` is called (the caller closes the socket) only if more
 * arrives while paused than a pause lets through (see `MAX_HELD_MESSAGES`).
 */
export class ReadThrottle {
  readonly #socket: PausableSocket
  readonly #limiter: SocketRateLimiter
  readonly #handle: (data: Uint8Array) => void
  readonly #onOverflow: (reason: string) => void
  readonly #maxHeldBytes: number
  readonly #onPause: (() => void) | null
  readonly #onError: ((err: unknown) => void) | null
  /** Messages kept while over budget; `#head` is the next to handle. */
  #held: (Uint8Array | undefined)[] = []
  #head = 0
  #heldBytes = 0
  #timer: NodeJS.Timeout | null = null
  #paused = false
  /** When the socket was last paused by this throttle: now while paused, the moment it resumed after; 0: never. */
  #pausedUntil = 0
  #stopped = false
  /** Times this socket was paused (for tests and logs). */
  pauses = 0
  /** The most messages held at once. */
  maxHeld = 0

  constructor(socket: PausableSocket, options: ReadThrottleOptions, handle: (data: Uint8Array) => void, onOverflow: (reason: string) => void) {
    this.#socket = socket
    this.#limiter = new SocketRateLimiter(options)
    this.#maxHeldBytes = options.maxMessageBytes + MAX_HELD_EXTRA_BYTES
    this.#onPause = options.onPause ?? null
    this.#onError = options.onError ?? null
    this.#handle = handle
    this.#onOverflow = onOverflow
  }

  /** Bytes of messages received and kept until the budget allows them. */
  get heldBytes(): number {
    return this.#heldBytes
  }

  get paused(): boolean {
    return this.#paused
  }

  /** Now while paused; otherwise when the socket was last resumed (0: never paused). */
  get pausedAt(): number {
    return this.#paused ? Date.now() : this.#pausedUntil
  }

  /** One WebSocket message arrived: handled now if the budget allows it and nothing is waiting before it. */
  receive(data: Uint8Array): void {
    if (this.#stopped) return
    if (this.#head === this.#held.length && this.#limiter.take(data.length)) {
      this.#handle(data)
      return
    }
    this.#held.push(data)
    this.#heldBytes += data.length
    const count = this.#held.length - this.#head
    if (count > this.maxHeld) this.maxHeld = count
    if (count > MAX_HELD_MESSAGES || this.#heldBytes > this.#maxHeldBytes) {
      this.#overflow(`kept sending while its socket was paused: ${count} messages, ${this.#heldBytes} bytes held`)
      return
    }
    if (!this.#paused) {
      this.#paused = true
      this.pauses++
      this.#socket.pause()
      this.#onPause?.()
    }
    this.#schedule()
  }

  /**
   * Stop for good (the connection is closing): held messages are dropped, the timer cleared,
   * and a paused socket is read again, so that the peer's close frame is seen (what comes
   * before it is ignored by a closed connection). A caller that closes for abuse pauses the
   * socket again after this.
   */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#held = []
    this.#head = 0
    this.#heldBytes = 0
    if (this.#paused) {
      this.#paused = false
      this.#pausedUntil = Date.now()
      this.#socket.resume()
    }
  }

  #overflow(reason: string): void {
    this.stop()
    this.#onOverflow(reason)
  }

  #schedule(): void {
    if (this.#timer !== null || this.#stopped) return
    const first = this.#held[this.#head]!
    const wait = this.#limiter.waitMs(first.length)
    if (!Number.isFinite(wait)) {
      // cannot happen with validated options (the byte burst is at least maxMessageBytes)
      this.#overflow(`a message of ${first.length} bytes exceeds the byte burst`)
      return
    }
    this.#timer = setTimeout(() => this.#drain(), Math.max(MIN_WAIT_MS, wait))
    this.#timer.unref()
  }

  #drain(): void {
    this.#timer = null
    while (this.#head < this.#held.length) {
      if (this.#stopped) return
      const data = this.#held[this.#head]!
      if (!this.#limiter.take(data.length)) break
      this.#held[this.#head++] = undefined
      this.#heldBytes -= data.length
      try {
        this.#handle(data)
      } catch (err) {
        this.stop()
        if (this.#onError === null) throw err
        this.#onError(err)
        return
      }
    }
    if (this.#stopped) return
    if (this.#head < this.#held.length) {
      this.#schedule()
      return
    }
    this.#held = []
    this.#head = 0
    this.#paused = false
    this.#pausedUntil = Date.now()
    this.#socket.resume()
  }
}
