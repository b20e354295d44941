import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy to 127.0.0.1:`targetPort` that can stall the link: while paused, the bytes of every
 * connection (open or new) are held in both directions, in order, and delivered on `resume`, the
 * way a stalled network path behaves (nothing is lost, nothing arrives). Loopback only; the test
 * that owns it closes it.
 */
export class PausableProxy {
  readonly #server: Server
  readonly #targetPort: number
  readonly #sockets = new Set<Socket>()
  #paused = false
  #held: { to: Socket; chunk: Buffer }[] = []
  port = 0

  constructor(targetPort: number) {
    this.#targetPort = targetPort
    this.#server = createServer(client => this.#accept(client))
  }

  get paused(): boolean {
    return this.#paused
  }

  async listen(): Promise<number> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', () => resolve()))
    this.port = (this.#server.address() as { port: number }).port
    return this.port
  }

  pause(): void {
    this.#paused = true
  }

  resume(): void {
    this.#paused = false
    const held = this.#held
    this.#held = []
    for (const { to, chunk } of held) if (!to.destroyed) to.write(chunk)
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>(resolve => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    const upstream = connect(this.#targetPort, '127.0.0.1')
    this.#sockets.add(client)
    this.#sockets.add(upstream)
    client.on('close', () => { this.#sockets.delete(client); upstream.destroy() })
    upstream.on('close', () => { this.#sockets.delete(upstream); client.destroy() })
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('data', chunk => this.#forward(upstream, chunk))
    upstream.on('data', chunk => this.#forward(client, chunk))
  }

  #forward(to: Socket, chunk: Buffer): void {
    if (this.#paused || this.#held.length > 0) this.#held.push({ to, chunk })
    else to.write(chunk)
  }
}
