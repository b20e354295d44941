import { WebSocket } from 'ws'
import {
  decodeFrame, encodeFrame, FRAME_KINDS, isUnknownFrame, NATIVE_SUBPROTOCOL, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
  type Frame,
} from '@concord/protocol'

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`replay: no ${what} from the replay server within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

interface Deferred<T> {
  promise: Promise<T>
  resolve(value: T): void
  reject(err: Error): void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  // awaited only through withTimeout, maybe never: a rejection nobody waits for is not an error
  promise.catch(() => undefined)
  return { promise, resolve, reject }
}

/**
 * One replayed session: a native socket with one document open. HELLO, WELCOME,
 * OPEN (no token: the replay server runs with auth none), OPENED; then UPDATE
 * frames numbered from 1, each answered by an ACK range or an ERROR with its seq.
 */
export class ReplaySocket {
  readonly label: string
  readonly #ws: WebSocket
  readonly #document: string
  readonly #connected = deferred<void>()
  readonly #welcome = deferred<void>()
  readonly #opened = deferred<void>()
  readonly #closed = deferred<void>()
  readonly #waiting = new Map<number, (code: string | null) => void>()
  #seq = 0
  #closing = false
  /** Why the session ended (an error code or the socket's close), or null while it is open. */
  ended: string | null = null
  /** The server ended it (not our CLOSE). */
  endedByServer = false

  private constructor(url: string, document: string, label: string) {
    this.label = label
    this.#document = document
    this.#ws = new WebSocket(url, [NATIVE_SUBPROTOCOL], { perMessageDeflate: false })
    this.#ws.binaryType = 'nodebuffer'
    this.#ws.on('open', () => this.#connected.resolve())
    this.#ws.on('error', err => {
      this.#connected.reject(err)
      this.#end(`socket error: ${err.message}`, true)
    })
    this.#ws.on('close', (code, reason) => {
      this.#end(reason.length > 0 ? reason.toString() : `socket closed with ${code}`, !this.#closing)
      this.#closed.resolve()
    })
    this.#ws.on('message', (data: Buffer) => this.#receive(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)))
  }

  static async open(url: string, document: string, timeoutMs: number, label: string): Promise<ReplaySocket> {
    const s = new ReplaySocket(url, document, label)
    try {
      await withTimeout(s.#connected.promise, timeoutMs, `connection for ${label}`)
      s.#send({ kind: FRAME_KINDS.HELLO, document: '', minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, client: 'concord-replay' })
      await withTimeout(s.#welcome.promise, timeoutMs, `WELCOME for ${label}`)
      s.#send({ kind: FRAME_KINDS.OPEN, document, token: '', stateVector: new Uint8Array(0) })
      await withTimeout(s.#opened.promise, timeoutMs, `OPENED for ${label}`)
    } catch (err) {
      s.terminate()
      throw err
    }
    return s
  }

  /** Resolves with null once acked, or with the error code the server refused it with. */
  sendUpdate(update: Uint8Array): Promise<string | null> {
    if (this.ended !== null) return Promise.resolve(this.ended)
    const seq = ++this.#seq
    const done = new Promise<string | null>(resolve => this.#waiting.set(seq, resolve))
    this.#send({ kind: FRAME_KINDS.UPDATE, document: this.#document, seq, update })
    return done
  }

  /** False when the session has ended (nothing sent). */
  sendAwareness(update: Uint8Array): boolean {
    if (this.ended !== null) return false
    this.#send({ kind: FRAME_KINDS.AWARENESS, document: this.#document, update })
    return true
  }

  /** CLOSE the document, then the socket. */
  async close(timeoutMs: number): Promise<void> {
    this.#closing = true
    if (this.#ws.readyState === WebSocket.OPEN) {
      if (this.ended === null) this.#send({ kind: FRAME_KINDS.CLOSE, document: this.#document })
      this.#ws.close(1000)
    } else if (this.#ws.readyState !== WebSocket.CLOSING) {
      this.terminate()
      return
    }
    await withTimeout(this.#closed.promise, timeoutMs, `close of ${this.label}`).catch(() => this.terminate())
  }

  terminate(): void {
    this.#closing = true
    this.#ws.terminate()
  }

  #send(frame: Frame): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(encodeFrame(frame))
  }

  #receive(bytes: Uint8Array): void {
    let frame
    try {
      frame = decodeFrame(bytes)
    } catch {
      this.#end('a malformed frame from the replay server', true)
      this.terminate()
      return
    }
    if (isUnknownFrame(frame)) return
    switch (frame.kind) {
      case FRAME_KINDS.WELCOME:
        this.#welcome.resolve()
        return
      case FRAME_KINDS.PING:
        // every native client answers (the server's flow control of chunks waits for it)
        this.#send({ kind: FRAME_KINDS.PONG, document: '' })
        return
      case FRAME_KINDS.OPENED:
        if (frame.document === this.#document) this.#opened.resolve()
        return
      case FRAME_KINDS.ACK:
        if (frame.document !== this.#document) return
        for (const r of frame.ranges) {
          for (let seq = Math.max(r.from, 1); seq <= Math.min(r.to, this.#seq); seq++) this.#answer(seq, null)
        }
        return
      case FRAME_KINDS.ERROR:
        if (frame.seq > 0) this.#answer(frame.seq, frame.code)
        if (frame.closed || frame.document === '') this.#end(frame.code, true)
        return
      default:
        // the document's content (sync, updates, awareness, chunks) is not needed here
    }
  }

  #answer(seq: number, code: string | null): void {
    const resolve = this.#waiting.get(seq)
    if (resolve === undefined) return
    this.#waiting.delete(seq)
    resolve(code)
  }

  #end(reason: string, byServer: boolean): void {
    if (this.ended !== null) return
    this.ended = reason
    this.endedByServer = byServer
    const error = new Error(`${this.label} ended: ${reason}`)
    this.#welcome.reject(error)
    this.#opened.reject(error)
    for (const resolve of this.#waiting.values()) resolve(reason)
    this.#waiting.clear()
  }
}
