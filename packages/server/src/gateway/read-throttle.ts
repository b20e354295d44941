import { SocketRateLimiter, type RateLimits } from './rate-limiter.js'
import type { SocketLike } from './socket-like.js'
import { CLOCK_EPOCH, clockNow } from './clock.js'

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
}

/** What a throttle reads for (a connection): it is called instead of being given a closure per callback. */
export interface ThrottledReader {
  /** A message the budget allows now (in the order they arrived). */
  readAllowed(data: Uint8Array): void
  /** More arrived while paused than a pause lets through (see `MAX_HELD_MESSAGES`): the reader closes the socket. */
  readOverflow(reason: string): void
  /** Told each time the socket is paused. */
  readPaused?(): void
  /**
   * A message handled from the timer threw (a bug: the reader closes the socket). Absent: rethrown.
   * From `receive` an error reaches the caller as usual.
   */
  readFailed?(err: unknown): void
}

/**
 * Flood control by backpressure (ARCHITECTURE.md §3: fast honest clients are
 * slowed, not cut). Each message a socket sends is charged to its budget (it is
 * a `SocketRateLimiter`). Within budget it is handled at once. Over budget it is
 * kept, in order, and the socket is paused: the kernel's receive buffer fills,
 * TCP flow control stops the sender, and a timer handles the kept messages as
 * the budget refills and then reads the socket again. Nothing is refused or
 * dropped. `readOverflow` is called (the reader closes the socket) only if more
 * arrives while paused than a pause lets through (see `MAX_HELD_MESSAGES`).
 *
 * One lives as long as its socket, so it holds no closures and no copy of the limits
 * (`options` is the server's, shared), and its queue exists only while something is held.
 */
export class ReadThrottle extends SocketRateLimiter {
  readonly #socket: PausableSocket
  readonly #options: ReadThrottleOptions
  readonly #reader: ThrottledReader
  /** Messages kept while over budget; `#head` is the next to handle (null: none kept). */
  #held: (Uint8Array | undefined)[] | null = null
  #head = 0
  #heldBytes = 0
  #timer: NodeJS.Timeout | null = null
  #paused = false
  /** When the socket was last resumed after a pause by this throttle (`clockNow`, at least 1); 0: never. */
  #pausedUntil = 0
  #stopped = false
  /** Times this socket was paused (for tests and logs). */
  pauses = 0
  /** The most messages held at once. */
  maxHeld = 0

  constructor(socket: PausableSocket, options: ReadThrottleOptions, reader: ThrottledReader) {
    super(options)
    this.#socket = socket
    this.#options = options
    this.#reader = reader
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
    return this.#paused ? Date.now() : this.#pausedUntil === 0 ? 0 : CLOCK_EPOCH + this.#pausedUntil
  }

  /** One WebSocket message arrived: handled now if the budget allows it and nothing is waiting before it. */
  receive(data: Uint8Array): void {
    if (this.#stopped) return
    if (this.#held === null && this.take(data.length)) {
      this.#reader.readAllowed(data)
      return
    }
    const held = this.#held ??= []
    held.push(data)
    this.#heldBytes += data.length
    const count = held.length - this.#head
    if (count > this.maxHeld) this.maxHeld = count
    if (count > MAX_HELD_MESSAGES || this.#heldBytes > this.#options.maxMessageBytes + MAX_HELD_EXTRA_BYTES) {
      this.#overflow(`kept sending while its socket was paused: ${count} messages, ${this.#heldBytes} bytes held`)
      return
    }
    if (!this.#paused) {
      this.#paused = true
      this.pauses++
      this.#socket.pause()
      this.#reader.readPaused?.()
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
    this.#held = null
    this.#head = 0
    this.#heldBytes = 0
    if (this.#paused) {
      this.#paused = false
      this.#pausedUntil = Math.max(1, clockNow())
      this.#socket.resume()
    }
  }

  #overflow(reason: string): void {
    this.stop()
    this.#reader.readOverflow(reason)
  }

  #schedule(): void {
    if (this.#timer !== null || this.#stopped || this.#held === null) return
    const first = this.#held[this.#head]!
    const wait = this.waitMs(first.length)
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
    const held = this.#held
    if (held === null) return
    while (this.#head < held.length) {
      if (this.#stopped) return
      const data = held[this.#head]!
      if (!this.take(data.length)) break
      held[this.#head++] = undefined
      this.#heldBytes -= data.length
      try {
        this.#reader.readAllowed(data)
      } catch (err) {
        this.stop()
        if (this.#reader.readFailed === undefined) throw err
        this.#reader.readFailed(err)
        return
      }
    }
    if (this.#stopped) return
    if (this.#head < held.length) {
      this.#schedule()
      return
    }
    this.#held = null
    this.#head = 0
    this.#paused = false
    this.#pausedUntil = Math.max(1, clockNow())
    this.#socket.resume()
  }
}
