import { WebSocket } from 'ws'
import type { WebSocketConstructor, WebSocketLike } from '@concord/client'

export interface Faults {
  /** Largest random delay per message, each direction; order on one socket is kept (as TCP would). */
  maxDelayMs: number
  /** Probability that an UPDATE or ACK frame is delivered twice. */
  duplicate: number
  random: () => number
}

const UPDATE = 7
const ACK = 8

/**
 * A WebSocket for the client that delays and duplicates frames in both
 * directions, keeping their order. Frames queued when the connection drops are
 * lost, as on a real network.
 */
export function faultyWebSocket(faults: Faults): WebSocketConstructor & { sockets: FaultySocket[] } {
  const sockets: FaultySocket[] = []
  const ctor = function (url: string, protocols?: string | string[]) {
    const s = new FaultySocket(url, protocols, faults)
    sockets.push(s)
    return s
  } as unknown as WebSocketConstructor & { sockets: FaultySocket[] }
  ctor.sockets = sockets
  return ctor
}

export class FaultySocket implements WebSocketLike {
  readonly inner: WebSocket
  binaryType = 'arraybuffer'
  onopen: ((ev: unknown) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  #in: Promise<void> = Promise.resolve()
  #out: Promise<void> = Promise.resolve()
  readonly #faults: Faults

  constructor(url: string, protocols: string | string[] | undefined, faults: Faults) {
    this.#faults = faults
    this.inner = new WebSocket(url, protocols)
    this.inner.binaryType = 'arraybuffer'
    this.inner.onopen = ev => this.onopen?.(ev)
    this.inner.onerror = ev => this.onerror?.(ev)
    this.inner.onmessage = ev => {
      const data = ev.data as ArrayBuffer
      const copies = this.#copies(new Uint8Array(data)[0]!)
      for (let i = 0; i < copies; i++) this.#in = this.#in.then(() => this.#delay()).then(() => this.onmessage?.({ data }))
    }
    this.inner.onclose = ev => {
      this.#in = this.#in.then(() => this.onclose?.({ code: ev.code, reason: ev.reason }))
    }
  }

  get readyState(): number {
    return this.inner.readyState
  }

  get protocol(): string {
    return this.inner.protocol
  }

  send(data: Uint8Array): void {
    const bytes = data.slice()
    const copies = this.#copies(bytes[0]!)
    for (let i = 0; i < copies; i++) {
      this.#out = this.#out.then(() => this.#delay()).then(() => {
        if (this.inner.readyState === WebSocket.OPEN) this.inner.send(bytes)
      })
    }
  }

  close(code?: number, reason?: string): void {
    this.inner.close(code, reason)
  }

  /** Cut the connection abruptly (no close handshake). */
  cut(): void {
    this.inner.terminate()
  }

  #copies(kind: number): number {
    return (kind === UPDATE || kind === ACK) && this.#faults.random() < this.#faults.duplicate ? 2 : 1
  }

  #delay(): Promise<void> {
    const ms = Math.floor(this.#faults.random() * this.#faults.maxDelayMs)
    return ms === 0 ? Promise.resolve() : new Promise(r => setTimeout(r, ms))
  }
}
