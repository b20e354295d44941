// The link between two regions, for the regions benchmark and e2e/regions.test.ts: a TCP proxy of
// our own (loopback only) that adds a fixed latency to every chunk in each direction (order kept,
// as TCP would) and can partition the link: open connections are black-holed (nothing more is
// forwarded either way and nothing is closed: the other side learns only from its own timeouts, as
// across a real partition) and new ones are held unanswered, until `heal()` drops them so their
// owners reconnect. Types: link-proxy.d.mts.
import { createServer, connect } from 'node:net'

export class LinkProxy {
  #server
  #targetPort
  #latencyMs
  #pairs = new Set()
  #partitioned = false
  port = 0

  constructor ({ targetPort, latencyMs }) {
    this.#targetPort = targetPort
    this.#latencyMs = latencyMs
    this.#server = createServer(client => this.#accept(client))
  }

  async listen () {
    await new Promise(resolve => this.#server.listen(0, '127.0.0.1', () => resolve()))
    this.port = this.#server.address().port
    return this.port
  }

  get partitioned () {
    return this.#partitioned
  }

  partition () {
    this.#partitioned = true
  }

  /** Ends the partition: the connections it held are dropped (their owners reconnect). */
  heal () {
    if (!this.#partitioned) return
    this.#partitioned = false
    for (const p of [...this.#pairs]) {
      p.client.destroy()
      p.upstream?.destroy()
    }
  }

  async close () {
    this.#partitioned = false
    for (const p of this.#pairs) {
      p.client.destroy()
      p.upstream?.destroy()
    }
    await new Promise(resolve => this.#server.close(() => resolve()))
  }

  #accept (client) {
    const pair = { client, upstream: null }
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

  #pipe (from, to) {
    let due = 0
    from.on('data', chunk => {
      if (this.#partitioned) return
      // each chunk leaves `latencyMs` after it arrived, never before the one ahead of it
      due = Math.max(Date.now() + this.#latencyMs, due)
      setTimeout(() => {
        if (!this.#partitioned && !to.destroyed) to.write(chunk)
      }, due - Date.now())
    })
  }
}
