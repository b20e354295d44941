import { SOCKET_CLOSED, SOCKET_OPEN, type SocketLike } from './socket-like.js'

/**
 * A socket for unit tests (used by the gateway's tests only): records what is sent, how it was
 * closed, and pause/resume of reading. Sends "leave the process" when the test calls `flush()`
 * (their callbacks run then); `bufferedAmount` is whatever the test sets.
 */
export class FakeSocket implements SocketLike {
  readyState = SOCKET_OPEN
  bufferedAmount = 0
  /** Every frame sent, in order (`fin` false: more fragments of the same message follow). */
  readonly sent: { data: Uint8Array; fin: boolean }[] = []
  closedWith: { code: number | undefined; reason: string | undefined } | null = null
  terminated = false
  paused = false
  pauses = 0
  resumes = 0
  pings = 0
  corked = 0
  readonly _socket = {
    cork: (): void => { this.corked++ },
    uncork: (): void => { this.corked-- },
  }
  readonly _receiver = { _maxPayload: 0 as unknown }
  #callbacks: ((err?: Error) => void)[] = []
  #onClose: (() => void)[] = []

  send(data: Uint8Array, options: { binary: boolean; fin?: boolean }, callback?: (err?: Error) => void): void {
    this.sent.push({ data, fin: options.fin ?? true })
    if (callback !== undefined) this.#callbacks.push(callback)
  }

  /** The frames sent so far have left the process: their callbacks run. */
  flush(): void {
    const callbacks = this.#callbacks
    this.#callbacks = []
    for (const cb of callbacks) cb()
  }

  /** Frames sent whose callbacks have not run yet. */
  get inFlight(): number {
    return this.#callbacks.length
  }

  close(code?: number, reason?: string): void {
    if (this.closedWith === null) this.closedWith = { code, reason }
    if (this.readyState === SOCKET_OPEN) this.readyState = 2
  }

  terminate(): void {
    this.terminated = true
    this.readyState = SOCKET_CLOSED
    for (const fn of this.#onClose.splice(0)) fn()
  }

  pause(): void {
    this.paused = true
    this.pauses++
  }

  resume(): void {
    this.paused = false
    this.resumes++
  }

  ping(): void {
    this.pings++
  }

  once(_event: 'close', listener: () => void): this {
    this.#onClose.push(listener)
    return this
  }
}
