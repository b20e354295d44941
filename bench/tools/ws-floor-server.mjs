// The server side of ws-floor.mjs: holds every connection it accepts and does
// nothing else. mode 'net': raw TCP sockets; mode 'ws': WebSocket over Node's
// http server with the ws library (what Concord, Hocuspocus and the reference
// server are built on).
import http from 'node:http'
import net from 'node:net'
import { WebSocketServer } from 'ws'

const mode = process.argv[2]
const keep = []
let server
if (mode === 'net') {
  server = net.createServer(s => { keep.push(s); s.on('data', () => {}) })
} else {
  server = http.createServer()
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false })
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, ws => { keep.push(ws); ws.on('message', () => {}) }))
}
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
process.on('message', (m) => {
  if (m !== 'rss') return
  if (global.gc) { global.gc(); global.gc() }
  const mu = process.memoryUsage()
  process.send({ rss: mu.rss, heap: mu.heapUsed })
})
