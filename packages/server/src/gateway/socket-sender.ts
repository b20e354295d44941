import { chunkFrame, ConcordError, type ErrorCode } from '@concord/protocol'
import { SOCKET_OPEN, type SocketLike } from './socket-like.js'
import { clockNow } from './clock.js'
import type { WireFrame } from './wire-frame.js'

/** How long a socket closed as a slow reader gets to read its close frame before it is cut. */
export const SLOW_READER_GRACE_MS = 2_000

/**
 * Closing with these codes means the peer is not reading (or is abusing the server): it will
 * not read the close frame either, so its socket is cut off `SLOW_READER_GRACE_MS` later.
 */
const CUT_OFF_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CONCORD_ERR_LIMIT_SLOW_READER', 'CONCORD_ERR_LIMIT_RATE', 'CONCORD_ERR_LIMIT_CHUNKS_BEFORE_WRITE'])

/**
 * What a sender is configured with (values of the server's configuration, per transport). One
 * object serves every socket of a transport: a sender keeps a reference to it, not a copy.
 */
export interface SocketSenderOptions {
  /** Frames above this are chunked (0: never chunk, for y-websocket). */
  readonly chunkBytes: number
  readonly maxBufferedBytes: number
  readonly slowReaderStallMs: number
  readonly backpressureBytes: number
  /** Chunk bytes outstanding before a PING must be answered (0: no window). */
  readonly chunkWindowBytes?: number
  /** The PING frame that ends a window of chunks (used only with a `chunkWindowBytes` above 0). */
  readonly ping?: Uint8Array | null
  /** Told of every message sent (its first part, its whole length, and its second part if any), for metrics. */
  readonly onSend?: ((first: Uint8Array, length: number, second?: Uint8Array) => void) | undefined
}

/** The connection a sender writes for; told when its peer reads too slowly (the sender has stopped). */
export interface SlowReaderTarget {
  close(error: ConcordError): void
  /** When the server last stopped reading this socket for its rate limit (now while it does; 0: never). Absent: never. */
  readonly readPausedAt?: number
}

/**
 * Writes frames to one socket. Small frames go out at once; large native frames
 * are cut into chunks sent one at a time (the next when the previous left the
 * process), so small frames and cursors slip in between them.
 *
 * One lives as long as its socket: it keeps the transport's shared options, and its queues of
 * drain waiters and large messages exist only while they hold something.
 */
export class SocketSender {
  readonly #ws: SocketLike
  readonly #owner: SlowReaderTarget
  readonly #options: SocketSenderOptions
  #lastBuffered = 0
  #heldBytes = 0
  #unacked = 0
  #awaitingPong = false
  #pongTimer: NodeJS.Timeout | null = null
  #drainWaiters: (() => void)[] | null = null
  #drainTimer: NodeJS.Timeout | null = null
  #large: { chunks: Generator<Uint8Array>; remaining: number }[] | null = null
  /** Bytes of large frames accepted but not yet handed to the socket. */
  #largeBytes = 0
  #chunkInFlight = false
  /** When the socket last took a chunk (or the sender was created), by `clockNow`. */
  #lastProgressAt = clockNow()
  #nextMessageId = 1
  #stopped = false
  /** The handshake agreed on compression (fixed for the socket's life). */
  readonly #compressed: boolean
  /** Nested `cork` calls open, and what the socket had buffered when the outermost began. */
  #corks = 0
  #bufferedAtCork = 0

  constructor(ws: SocketLike, owner: SlowReaderTarget, options: SocketSenderOptions) {
    this.#ws = ws
    this.#owner = owner
    this.#options = options
    this.#compressed = ws.extensions !== undefined && ws.extensions !== ''
  }

  /** Bytes this socket costs the server until its peer reads them: queued, and held back (`hold`). */
  get pendingBytes(): number {
    return this.#ws.bufferedAmount + this.#largeBytes + this.#heldBytes
  }

  /**
   * Above the backpressure mark: callers hold presence and merge updates until `whenDrained`.
   * While the socket is corked, what was buffered when the cork began counts: what was sent since
   * waits for the uncork, not for the peer (a big room's tick corks each recipient around all it
   * sends it, and a large paste would otherwise hold back the rest of that tick).
   */
  get congested(): boolean {
    const buffered = this.#corks > 0 ? this.#bufferedAtCork : this.#ws.bufferedAmount
    return buffered + this.#largeBytes > this.#options.backpressureBytes
  }

  /**
   * A caller holds back `bytes` for this socket (or releases them, negative).
   * Held bytes count against `maxBufferedBytes`: beyond it the socket is closed
   * as a slow reader. Returns false when it was.
   */
  hold(bytes: number): boolean {
    this.#heldBytes = Math.max(0, this.#heldBytes + bytes)
    if (bytes > 0 && this.pendingBytes > this.#options.maxBufferedBytes) {
      this.#slow()
      return false
    }
    return true
  }

  /** Call `fn` once the socket is back under the backpressure mark (checked every 20 ms). */
  whenDrained(fn: () => void): void {
    ;(this.#drainWaiters ??= []).push(fn)
    if (this.#drainTimer !== null) return
    // the stall clock starts when congestion does
    this.#lastProgressAt = Math.max(this.#lastProgressAt, clockNow())
    this.#drainTimer = setInterval(() => {
      if (this.#stopped) {
        this.#clearDrain()
        return
      }
      if (this.congested) {
        // congested and not reading at all: a slow reader, even though holding keeps its buffer small
        const buffered = this.#ws.bufferedAmount
        if (buffered < this.#lastBuffered) this.#lastProgressAt = clockNow()
        this.#lastBuffered = buffered
        if (clockNow() - this.#lastProgressAt > this.#options.slowReaderStallMs) this.#slow()
        return
      }
      const waiters = this.#drainWaiters
      this.#clearDrain()
      if (waiters !== null) for (const w of waiters) w()
    }, 20)
    this.#drainTimer.unref()
  }

  #clearDrain(): void {
    if (this.#drainTimer !== null) clearInterval(this.#drainTimer)
    this.#drainTimer = null
    this.#drainWaiters = null
  }

  /**
   * A reader is too slow when what waits for it exceeds `maxBufferedBytes` and
   * it has read nothing for `slowReaderStallMs`, or when what waits
   * exceeds four times the limit. A single large message (a big document's
   * initial sync) is always accepted when nothing else is queued.
   */
  #tooSlow(adding: number): boolean {
    // one large message (the biggest queued, or this one) is exempt: a big document's
    // initial sync is not a sign of a slow reader
    let exempt = 0
    if (this.#large !== null) for (const l of this.#large) if (l.remaining > exempt) exempt = l.remaining
    const chunkBytes = this.#options.chunkBytes
    const large = chunkBytes > 0 && adding > chunkBytes
    if (large && adding > exempt) exempt = adding
    // the socket's own buffer shrinking is progress too
    const buffered = this.#ws.bufferedAmount
    if (buffered < this.#lastBuffered) this.#lastProgressAt = clockNow()
    this.#lastBuffered = buffered
    const total = buffered + this.#largeBytes + adding - exempt
    const max = this.#options.maxBufferedBytes
    if (total > max * 4) return true
    return total > max && clockNow() - this.#lastProgressAt > this.#options.slowReaderStallMs
  }

  /**
   * Send one message, given whole or as parts (see `encodeFrameParts`) whose
   * concatenation is the message: parts are never copied into one buffer.
   */
  send(message: Uint8Array | readonly Uint8Array[], document = ''): void {
    const length = message instanceof Uint8Array ? message.length : message.reduce((n, p) => n + p.length, 0)
    if (!(message instanceof Uint8Array ? this.#goesOut(message, length) : this.#goesOut(message[0]!, length, message[1]))) return
    const o = this.#options
    if (o.chunkBytes > 0 && length > o.chunkBytes) {
      this.#largeBytes += length
      ;(this.#large ??= []).push({ chunks: chunkFrame(message, document, this.#nextMessageId++, o.chunkBytes), remaining: length })
      this.#pump()
      return
    }
    if (message instanceof Uint8Array) {
      this.#ws.send(message, { binary: true })
      return
    }
    // permessage-deflate decides per message from its first fragment's size (a few header bytes
    // here): a compressed connection gets the message whole, so that it can be compressed
    if (this.#compressed) {
      this.#ws.send(Buffer.concat(message), { binary: true })
      return
    }
    // one WebSocket message in several fragments, sent back to back
    for (let i = 0; i < message.length; i++) this.#ws.send(message[i]!, { binary: true, fin: i === message.length - 1 })
  }

  /**
   * Send a message many sockets receive, framed once for all of them (see `wire-frame.ts`): its
   * frame is written to the net socket as it is when `ws` would write the same bytes at once
   * (no compression, nothing queued in its sender, no fragmented message under way); otherwise,
   * and when the message is large enough to be chunked, it goes as `send` would send it.
   */
  sendWire(wire: WireFrame, document = ''): void {
    const ws = this.#ws
    const socket = ws._socket
    const sender = ws._sender
    const payload = wire.payload
    const o = this.#options
    if (this.#compressed || socket === undefined || sender === undefined || sender === null || sender._state !== 0 || (sender._queue?.length ?? 1) > 0 ||
      sender._firstFragment !== true || (o.chunkBytes > 0 && payload.length > o.chunkBytes)) {
      this.send(payload, document)
      return
    }
    if (this.#goesOut(payload, payload.length)) socket.write(wire.frame)
  }

  /**
   * Whether a message of `length` bytes may be sent now (the sender is running, the socket open,
   * the peer not too slow: else it is closed as a slow reader); told to `onSend` when it may.
   */
  #goesOut(first: Uint8Array, length: number, second?: Uint8Array): boolean {
    if (this.#stopped || this.#ws.readyState !== SOCKET_OPEN) return false
    if (this.#tooSlow(length)) {
      this.#slow()
      return false
    }
    this.#options.onSend?.(first, length, second)
    return true
  }

  /**
   * Runs `fn`, whose sends reach the kernel together (one writev) instead of one
   * system call each: the socket is corked around it.
   */
  corked(fn: () => void): void {
    this.cork()
    try {
      fn()
    } finally {
      this.uncork()
    }
  }

  /** Sends from now until `uncork` reach the kernel together (one writev); the two nest. */
  cork(): void {
    if (this.#corks++ === 0) this.#bufferedAtCork = this.#ws.bufferedAmount
    this.#ws._socket?.cork()
  }

  uncork(): void {
    if (this.#corks > 0) this.#corks--
    this.#ws._socket?.uncork()
  }

  /**
   * Stop sending and close the socket: 1000 without an error, else the error's close code
   * with its code as the reason. A peer closed for not reading (or for abuse) will not complete
   * the close handshake either: its socket is cut off after `SLOW_READER_GRACE_MS`.
   */
  closeSocket(error?: ConcordError): void {
    this.stop()
    if (error === undefined) this.#ws.close(1000)
    else this.#ws.close(error.closeCode ?? 1011, error.code)
    if (error !== undefined && CUT_OFF_CODES.has(error.code)) {
      const ws = this.#ws
      setTimeout(() => ws.terminate(), SLOW_READER_GRACE_MS).unref()
    }
  }

  stop(): void {
    this.#stopped = true
    if (this.#pongTimer !== null) clearTimeout(this.#pongTimer)
    this.#pongTimer = null
    this.#clearDrain()
    this.#large = null
    this.#largeBytes = 0
  }

  /**
   * The peer answered the PING sent after a window of chunks: it has processed
   * them, so the next window may go.
   */
  pong(): void {
    if (!this.#awaitingPong) return
    this.#awaitingPong = false
    this.#unacked = 0
    this.#lastProgressAt = clockNow()
    if (this.#pongTimer !== null) clearTimeout(this.#pongTimer)
    this.#pongTimer = null
    this.#pump()
  }

  /**
   * A peer that does not answer the PING within the stall time is a slow reader, unless the
   * server itself stopped reading its socket meanwhile (rate limit): then the PONG may be
   * waiting, unread, behind what the peer sent before it.
   */
  #waitForPong(): void {
    const since = Date.now()
    this.#pongTimer = setTimeout(() => {
      this.#pongTimer = null
      if (!this.#awaitingPong) return
      if ((this.#owner.readPausedAt ?? 0) >= since) this.#waitForPong()
      else this.#slow()
    }, this.#options.slowReaderStallMs)
    this.#pongTimer.unref()
  }

  #pump(): void {
    const large = this.#large
    if (this.#chunkInFlight || this.#stopped || this.#awaitingPong || large === null) return
    const o = this.#options
    const windowBytes = o.chunkWindowBytes ?? 0
    if (windowBytes > 0 && o.ping != null && this.#unacked >= windowBytes && large.length > 0) {
      // Flow control: the kernel would take megabytes at once, and a small frame sent
      // now would wait behind all of them at the reader. At most a window of chunks
      // is outstanding: a PING follows it, and the next window waits for the PONG.
      this.#awaitingPong = true
      this.#ws.send(o.ping, { binary: true })
      this.#waitForPong()
      return
    }
    while (large.length > 0) {
      const entry = large.shift()!
      const next = entry.chunks.next()
      if (next.done) continue
      // round-robin between large messages
      large.push(entry)
      if (this.#ws.readyState !== SOCKET_OPEN) return
      // the message's bytes leave the queue as its chunks go out
      const sent = Math.min(o.chunkBytes, entry.remaining)
      entry.remaining -= sent
      this.#largeBytes = Math.max(0, this.#largeBytes - sent)
      this.#unacked += sent
      this.#chunkInFlight = true
      this.#ws.send(next.value, { binary: true }, () => {
        this.#chunkInFlight = false
        this.#lastProgressAt = clockNow()
        this.#pump()
      })
      return
    }
    // every large message went out: its queue goes too
    if (this.#large === large) this.#large = null
  }

  #slow(): void {
    if (this.#stopped) return
    this.stop()
    this.#owner.close(new ConcordError('CONCORD_ERR_LIMIT_SLOW_READER',
      `more than ${this.#options.maxBufferedBytes} bytes waiting to be sent and the reader is not keeping up`))
  }
}
