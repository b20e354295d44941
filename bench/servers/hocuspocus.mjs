// A Hocuspocus server for the benchmark: @hocuspocus/server with no
// extensions, so documents live in memory only (nothing is loaded or stored),
// and otherwise the library's defaults (flushDelay 0, timeout 60 s, gc on).
//
//   HOST=127.0.0.1 PORT=5555 node bench/servers/hocuspocus.mjs
//
// With REDIS_URL=redis://host:port it joins other such processes through
// @hocuspocus/extension-redis (Hocuspocus's way of running several nodes: Redis
// pub/sub between them), for the cross-node scenario.
//
// This process is the server itself (no child), so the PID the runner measures
// is Hocuspocus's. It prints one line once it listens, and exits on SIGTERM or
// SIGINT after closing its connections (at most 2 s later).
// Clients speak the Hocuspocus framing: YClient with protocol 'hocuspocus'.
import { Server } from '@hocuspocus/server'
import { Redis } from '@hocuspocus/extension-redis'

const host = process.env.HOST || '127.0.0.1'
const port = Number.parseInt(process.env.PORT || '1234', 10)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`hocuspocus: bad PORT ${process.env.PORT}`)
  process.exit(2)
}

const extensions = []
if (process.env.REDIS_URL) {
  const url = new URL(process.env.REDIS_URL)
  extensions.push(new Redis({ host: url.hostname, port: Number(url.port || 6379) }))
}

const server = new Server({
  name: 'concord-bench',
  extensions,
  address: host,
  port,
  quiet: true,
  stopOnSignals: false
})

let stopping = false
async function stop (signal) {
  if (stopping) return
  stopping = true
  const force = setTimeout(() => process.exit(0), 2000)
  force.unref()
  try {
    await server.destroy()
  } catch (e) {
    console.error(`hocuspocus: error while stopping on ${signal}: ${e?.message ?? e}`)
  }
  process.exit(0)
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))

await server.listen()
console.log(`hocuspocus listening on ws://${host}:${server.address.port} (pid ${process.pid})`)
