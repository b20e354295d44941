#!/usr/bin/env node
// What an idle connection costs a Node process that does nothing but hold it:
// the floor under any server built on Node sockets and the ws library.
//
//   node bench/tools/ws-floor.mjs [net|ws] [connections=10000] [--gc]
//
// A child process accepts N connections from this one (127.0.0.1) and keeps
// them; its RSS and used heap are read before (after 50 warm-up connections)
// and after, and the difference is divided by N. --gc forces two garbage
// collections before each reading.
import { fork } from 'node:child_process'
import net from 'node:net'
import WebSocket from 'ws'

const args = process.argv.slice(2).filter(a => !a.startsWith('--'))
const mode = args[0] ?? 'ws'
const N = Number(args[1] ?? 10000)
if (!['net', 'ws'].includes(mode) || !Number.isInteger(N) || N < 1) {
  process.stderr.write('usage: node bench/tools/ws-floor.mjs [net|ws] [connections] [--gc]\n')
  process.exit(2)
}
const srv = fork(new URL('./ws-floor-server.mjs', import.meta.url), [mode], { execArgv: process.argv.includes('--gc') ? ['--expose-gc'] : [] })
const next = () => new Promise(resolve => srv.once('message', resolve))
const { port } = await next()
const reading = async () => { srv.send('rss'); return next() }
const conns = []
const open = () => new Promise((resolve, reject) => {
  if (mode === 'net') {
    const s = net.connect(port, '127.0.0.1', () => resolve(s))
    s.on('error', reject)
  } else {
    const w = new WebSocket(`ws://127.0.0.1:${port}/room-${conns.length % 1000}`, { perMessageDeflate: false })
    w.on('open', () => resolve(w))
    w.on('error', reject)
  }
})
try {
  for (let i = 0; i < 50; i++) conns.push(await open())
  await new Promise(resolve => setTimeout(resolve, 500))
  const a = await reading()
  for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => open().then(c => conns.push(c))))
  await new Promise(resolve => setTimeout(resolve, 3000))
  const b = await reading()
  const per = (k) => ((b[k] - a[k]) / N).toFixed(0)
  console.log(`${mode}${process.argv.includes('--gc') ? ' (gc forced)' : ''}: ${N} idle connections, per connection: RSS ${per('rss')} B, used heap ${per('heap')} B`)
} finally {
  srv.kill()
}
process.exit(0)
