// Memory worker: opens its share of the idle connections and holds them.
import { workerData } from 'node:worker_threads'
import { createClient, connectAll } from '../lib/clients.mjs'
import { workerInbox, send, runWorker } from '../lib/workers.mjs'

const { baseUrl, protocol, localAddresses, rooms, awareness, connectTimeoutMs, connectConcurrency, firstIndex } = workerData
const inbox = workerInbox()

async function main () {
  // rooms[k] is the room of this worker's k-th connection
  const clients = rooms.map((room, k) => createClient(`${baseUrl}/${room}`, {
    protocol,
    localAddress: localAddresses.length > 1 ? localAddresses[(firstIndex + k) % localAddresses.length] : undefined
  }))
  const t0 = performance.now()
  const errors = await connectAll(clients, {
    concurrency: connectConcurrency,
    timeoutMs: connectTimeoutMs,
    onConnected: awareness ? (c, k) => c.sendAwareness({ user: { name: `bench-${firstIndex + k}` } }) : undefined
  })
  send({ type: 'ready', connected: clients.length - errors.length, failed: errors.length, firstError: errors[0] ?? null, connectMs: performance.now() - t0 })
  await inbox.next('check')
  const open = clients.filter(c => c.ws && c.ws.readyState === 1).length
  send({ type: 'checked', open, otherMsgs: clients.reduce((n, c) => n + c.stats.otherMsgs, 0) })
  await inbox.next('close')
  await Promise.all(clients.map(c => c.close()))
  send({ type: 'closed' })
}

runWorker(main)
