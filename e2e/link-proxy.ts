import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * The link between two regions, for tests: a TCP proxy of our own (loopback only) that adds a
 * fixed latency to every chunk in each direction (order kept, as TCP would) and can partition
 * the link: open connections are black-holed (nothing more is forwarded either way, nothing is
 * closed: the other side learns only from its own timeouts, as across a real partition) and new
 * ones are held unanswered, until `heal()` drops them so their owners reconnect.
 */
export class LinkProxy {
  readonly #server: Server
  readonly #targetPort: number
  readonly #latencyMs: number
  readonly #pairs = new Set<{ client: Socket; upstream: Socket | null }>()
  #partitioned = false
  port = 0

  constructor(options: { targetPort: number; latencyMs: number }) {
    this.#targetPort = options.targetPort
    this.#latencyMs = options.latencyMs
    this.#server = createServer(client => this.#accept(client))
  }

  async listen(): Promise<number> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', () => resolve()))
    this.port = (this.#server.address() as { port: number }).port
    return this.port
  }

  get partitioned(): boolean {
    return this.#partitioned
  }

  partition(): void {
    this.#partitioned = true
  }

  /** Ends the partition: the connections it held are dropped (their owners reconnect). */
  heal(): void {
    if (!this.#partitioned) return
    this.#partitioned = false
    for (const p of [...this.#pairs]) {
      p.client.destroy()
      p.upstream?.destroy()
    }
  }

  async close(): Promise<void> {
    this.#partitioned = false
    for (const p of this.#pairs) {
      p.client.destroy()
      p.upstream?.destroy()
    }
    await new Promise<void>(resolve => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    const pair: { client: Socket; upstream: Socket | null } = { client, upstream: null }
    this.#pairs.add(pair)
    client.on('error', () => undefined)
    client.on('close', () => { this.#pairs.delete(pair); pair.upstream?.destroy() })
    if (this.#partitioned) {
      // held: neither accepted by the target nor refused
      client.pause()
      return
    }
    const upstream = connect(this.#targetPort, '127.0.0.1')
    pair.upstream = upstream
    upstream.on('error', () => undefined)
    upstream.on('close', () => client.destroy())
    this.#pipe(client, upstream)
    this.#pipe(upstream, client)
  }

  #pipe(from: Socket, to: Socket): void {
    let due = 0
    from.on('data', (chunk: Buffer) => {
      if (this.#partitioned) return
      // each chunk leaves `latencyMs` after it arrived, never before the one ahead of it
      due = Math.max(Date.now() + this.#latencyMs, due)
      setTimeout(() => {
        if (!this.#partitioned && !to.destroyed) to.write(chunk)
      }, due - Date.now())
    })
  }
}
