import { createServer, connect, type Server, type Socket } from 'node:net'

export interface FaultProxyOptions {
  /** Where to forward (127.0.0.1 only). */
  targetPort: number
  random: () => number
  /** Largest delay added to each chunk of bytes, per direction, keeping their order. */
  maxDelayMs: number
  /** Chance, per chunk, that the connection is cut (both sides destroyed) instead of forwarded. */
  cutChance: number
}

/**
 * A TCP proxy of our own for fault injection: it forwards bytes both ways with
 * random delays (order kept, as TCP would) and cuts connections at random.
 * Seeded through `random`, bounded by the test that owns it, loopback only.
 */
export class FaultProxy {
  readonly #server: Server
  readonly #opts: FaultProxyOptions
  readonly #sockets = new Set<Socket>()
  cuts = 0
  port = 0

  constructor(options: FaultProxyOptions) {
    this.#opts = options
    this.#server = createServer(client => this.#accept(client))
  }

  async listen(): Promise<number> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', () => resolve()))
    this.port = (this.#server.address() as { port: number }).port
    return this.port
  }

  /** Cut every open connection now. */
  cutAll(): void {
    for (const s of this.#sockets) s.destroy()
  }

  async close(): Promise<void> {
    this.cutAll()
    await new Promise<void>(resolve => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    const upstream = connect(this.#opts.targetPort, '127.0.0.1')
    this.#sockets.add(client)
    this.#sockets.add(upstream)
    const cut = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('close', () => { this.#sockets.delete(client); upstream.destroy() })
    upstream.on('close', () => { this.#sockets.delete(upstream); client.destroy() })
    client.on('error', cut)
    upstream.on('error', cut)
    this.#pipe(client, upstream, cut)
    this.#pipe(upstream, client, cut)
  }

  #pipe(from: Socket, to: Socket, cut: () => void): void {
    let chain = Promise.resolve()
    from.on('data', (chunk: Buffer) => {
      const { random, maxDelayMs, cutChance } = this.#opts
      if (random() < cutChance) {
        this.cuts++
        cut()
        return
      }
      const delay = Math.floor(random() * maxDelayMs)
      chain = chain.then(() => new Promise<void>(resolve => {
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk)
          resolve()
        }, delay)
      }))
    })
  }
}
