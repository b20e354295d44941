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
 * One lives as long as its socket, so it holds no closures and no copy of the limits (they are
 * the server's, shared), and what it keeps while over budget (the messages, their bytes, the
 * timer, whether it paused the socket) exists only while something is held.
 */
export class ReadThrottle extends SocketRateLimiter<ReadThrottleOptions> {
  readonly #socket: PausableSocket
  readonly #reader: ThrottledReader
  /** What is kept while the socket is over budget (null: nothing; most sockets never are). */
  #backlog: Backlog | null = null
  /** When the socket was last resumed after a pause by this throttle (`clockNow`, at least 1); 0: never. */
  #pausedUntil = 0
  #stopped = false

  constructor(socket: PausableSocket, options: ReadThrottleOptions, reader: ThrottledReader) {
    super(options)
    this.#socket = socket
    this.#reader = reader
  }

  /** Bytes of messages received and kept until the budget allows them. */
  get heldBytes(): number {
    return this.#backlog?.bytes ?? 0
  }

  get paused(): boolean {
    return this.#backlog?.paused ?? false
  }

  /** Now while paused; otherwise when the socket was last resumed (0: never paused). */
  get pausedAt(): number {
    return this.paused ? Date.now() : this.#pausedUntil === 0 ? 0 : CLOCK_EPOCH + this.#pausedUntil
  }

  /** One WebSocket message arrived: handled now if the budget allows it and nothing is waiting before it. */
  receive(data: Uint8Array): void {
    if (this.#stopped) return
    if (this.#backlog === null && this.take(data.length)) {
      this.#reader.readAllowed(data)
      return
    }
    const b = this.#backlog ??= { held: [], head: 0, bytes: 0, timer: null, paused: false }
    b.held.push(data)
    b.bytes += data.length
    const count = b.held.length - b.head
    if (count > MAX_HELD_MESSAGES || b.bytes > this.limits.maxMessageBytes + MAX_HELD_EXTRA_BYTES) {
      this.#overflow(`kept sending while its socket was paused: ${count} messages, ${b.bytes} bytes held`)
      return
    }
    if (!b.paused) {
      b.paused = true
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
    const b = this.#backlog
    if (b === null) return
    this.#backlog = null
    if (b.timer !== null) clearTimeout(b.timer)
    if (b.paused) this.#resume()
  }

  #resume(): void {
    this.#pausedUntil = Math.max(1, clockNow())
    this.#socket.resume()
  }

  #overflow(reason: string): void {
    this.stop()
    this.#reader.readOverflow(reason)
  }

  #schedule(): void {
    const b = this.#backlog
    if (b === null || b.timer !== null || this.#stopped) return
    const first = b.held[b.head]!
    const wait = this.waitMs(first.length)
    if (!Number.isFinite(wait)) {
      // cannot happen with validated options (the byte burst is at least maxMessageBytes)
      this.#overflow(`a message of ${first.length} bytes exceeds the byte burst`)
      return
    }
    b.timer = setTimeout(() => this.#drain(), Math.max(MIN_WAIT_MS, wait))
    b.timer.unref()
  }

  #drain(): void {
    const b = this.#backlog
    if (b === null) return
    b.timer = null
    const held = b.held
    while (b.head < held.length) {
      if (this.#stopped) return
      const data = held[b.head]!
      if (!this.take(data.length)) break
      held[b.head++] = undefined
      b.bytes -= data.length
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
    if (b.head < held.length) {
      this.#schedule()
      return
    }
    this.#backlog = null
    this.#resume()
  }
}

/** The messages a throttle keeps while its socket is over budget, in order; `head` is the next to handle. */
interface Backlog {
  held: (Uint8Array | undefined)[]
  head: number
  bytes: number
  timer: NodeJS.Timeout | null
  /** The socket was paused for them (it is from the first one on, unless that one overflowed). */
  paused: boolean
}
