#!/usr/bin/env node
// A bystander's PING→PONG on one document while a read-only session floods SYNC_STEP1 on
// another, multi-megabyte one (the attack of docs/security.md: every step 1 used to be answered
// with a full Y.encodeStateAsUpdate on the server's main thread). Not part of `npm test` or
// `npm run bench`; the figures are in docs/benchmarks.md.
//
//   node bench/step1-flood.mjs [--concord <path of bin/concord.js>] [--bytes 4000000]
//                              [--burst 40] [--sustained-seconds 5] [--sustained-rate 40]
//
// The server is a separate process (memory store, HS256 tokens, defaults otherwise) on a free
// port of 127.0.0.1. Phases, each with the bystander pinging one PING at a time, 5 ms apart:
//   quiet      3 s, nothing else happening
//   burst      the attacker sends --burst step 1 frames at once ("I hold nothing"), and reads
//              the replies; until it has received nothing for 1 s
//   sustained  the attacker sends a step 1 every 1000/--sustained-rate ms for --sustained-seconds,
//              alternating "I hold nothing" with a different partial state vector each time,
//              reading the replies as they come; until it has received nothing for 1 s
// Printed: per phase, the bystander's round trips (p50, p99, max), the replies the attacker
// received, and the server's CPU time.
import { parseArgs } from 'node:util'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import WebSocket from 'ws'
import * as Y from 'yjs'
import {
  FRAME_KINDS, NATIVE_SUBPROTOCOL, PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX, decodeFrame, encodeFrame,
} from '@concord/protocol'
import { createClient } from '@concord/client'
import { mintToken } from '@concord/server'
import { startServer, freePort, HOST, CLK_TCK, readCpuTicks, killAllChildren } from './lib/server-proc.mjs'

const benchDir = dirname(fileURLToPath(import.meta.url))
const { values: opts } = parseArgs({
  options: {
    concord: { type: 'string', default: join(benchDir, '..', 'packages', 'server', 'bin', 'concord.js') },
    bytes: { type: 'string', default: '4000000' },
    burst: { type: 'string', default: '40' },
    'sustained-seconds': { type: 'string', default: '5' },
    'sustained-rate': { type: 'string', default: '40' },
  },
})
const SECRET = 'step1-flood-bench-secret-0123456789abcdef'
const sleep = ms => new Promise(r => setTimeout(r, ms))
/** The state vector of an empty document (one byte: no clients) */
const NOTHING = Y.encodeStateVector(new Y.Doc())

/** About `bytes` encoded bytes in one transaction: paragraphs typed at changing places, some deleted, and a board (as e2e/large-document.test.ts). */
function buildLargeDocument (doc, bytes) {
  const body = doc.getText('body')
  let seed = 7
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
  doc.transact(() => {
    let written = 0
    for (let i = 0; written < bytes; i++) {
      let paragraph = `\n${i}: `
      while (paragraph.length < 2000) paragraph += Math.floor(random() * 1e9).toString(36) + ' '
      body.insert(Math.floor(random() * body.length), paragraph)
      written += paragraph.length
      if (i % 10 === 9) body.delete(Math.floor(random() * (body.length - 100)), 50)
    }
    const cards = doc.getArray('cards')
    for (let i = 0; i < 2000; i++) {
      const card = new Y.Map()
      card.set('title', `card ${i}`)
      card.set('column', i % 4)
      cards.push([card])
    }
  })
}

/** A raw native socket: answers PING, counts what arrives (whole SYNC_STEP2 frames, chunked or not), never decodes chunk payloads. */
async function rawSocket (url) {
  const ws = new WebSocket(url, [NATIVE_SUBPROTOCOL])
  const s = { ws, pongs: 0, step2: 0, bytes: 0, lastAt: performance.now(), errors: [], onPong: null, closed: null }
  ws.on('close', (code, reason) => { s.closed = `${code} ${reason}` })
  /** messageId → whether its first piece is a SYNC_STEP2 */
  const chunked = new Map()
  ws.on('message', data => {
    s.bytes += data.length
    s.lastAt = performance.now()
    const f = decodeFrame(new Uint8Array(data))
    if (f.kind === FRAME_KINDS.PING) ws.send(encodeFrame({ kind: FRAME_KINDS.PONG, document: '' }))
    else if (f.kind === FRAME_KINDS.PONG) { s.pongs++; s.onPong?.() }
    else if (f.kind === FRAME_KINDS.SYNC_STEP2) s.step2++
    else if (f.kind === FRAME_KINDS.ERROR) s.errors.push(f.code)
    else if (f.kind === FRAME_KINDS.CHUNK) {
      if (f.index === 0) chunked.set(f.messageId, f.data[0] === FRAME_KINDS.SYNC_STEP2)
      if (f.index === f.total - 1) {
        if (chunked.get(f.messageId)) s.step2++
        chunked.delete(f.messageId)
      }
    }
  })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send(encodeFrame({ kind: FRAME_KINDS.HELLO, document: '', minVersion: PROTOCOL_VERSION_MIN, maxVersion: PROTOCOL_VERSION_MAX, client: 'step1-flood' }))
  return s
}

/** The bystander pings one at a time until `stop()`; returns the round trips (ms). */
function pinger (s) {
  const rtts = []
  let running = true
  const done = (async () => {
    while (running) {
      const start = performance.now()
      await new Promise(resolve => {
        s.onPong = resolve
        s.ws.send(encodeFrame({ kind: FRAME_KINDS.PING, document: '' }))
      })
      rtts.push(performance.now() - start)
      await sleep(5)
    }
  })()
  return { rtts, stop: async () => { running = false; await done; return rtts } }
}

/** Waits until the server has read everything `s` sent (a PING sent now is answered), then until nothing has arrived for `idleMs`. */
async function untilIdle (s, idleMs, maxMs) {
  const start = performance.now()
  const pongs = s.pongs
  s.ws.send(encodeFrame({ kind: FRAME_KINDS.PING, document: '' }))
  while (s.pongs === pongs) {
    if (performance.now() - start > maxMs) throw new Error(`no PONG after ${maxMs} ms`)
    if (s.closed !== null) throw new Error(`closed: ${s.closed}`)
    await sleep(10)
  }
  while (performance.now() - s.lastAt < idleMs) {
    if (performance.now() - start > maxMs) throw new Error(`still receiving after ${maxMs} ms`)
    await sleep(50)
  }
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}
const row = (phase, rtts, replies, cpuMs, wallMs) =>
  `| ${phase} | ${rtts.length} | ${pct(rtts, 0.5).toFixed(1)} | ${pct(rtts, 0.99).toFixed(1)} | ${Math.max(...rtts).toFixed(1)} | ${replies} | ${cpuMs.toFixed(0)} ms in ${(wallMs / 1000).toFixed(1)} s |`

async function main () {
  const port = await freePort()
  const data = mkdtempSync(join(tmpdir(), 'concord-step1-flood-'))
  const server = await startServer({
    argv: ['node', resolve(opts.concord), 'serve', '--port', String(port), '--host', HOST, '--store', 'memory', '--auth-secret', SECRET, '--log-level', 'warn'],
    port, logFile: join(data, 'server.log'),
  })
  const url = `ws://${HOST}:${port}`
  const cpu = () => readCpuTicks(server.pid) * 1000 / CLK_TCK
  try {
    // the writer creates the document and leaves
    const writeToken = (await mintToken({ secret: SECRET, tenant: 'bench', userId: 'writer', docs: { 'bench/*': 'write' } })).token
    const readToken = (await mintToken({ secret: SECRET, tenant: 'bench', userId: 'reader', docs: { 'bench/*': 'read' } })).token
    const writer = createClient({ url, WebSocket, token: writeToken })
    const handle = writer.open('bench/big')
    await handle.whenSynced()
    buildLargeDocument(handle.doc, Number(opts.bytes))
    const encoded = Y.encodeStateAsUpdate(handle.doc).length
    const clientId = handle.doc.clientID
    const clock = Y.getState(handle.doc.store, clientId)
    await handle.whenSaved()
    writer.close()

    const bystander = await rawSocket(url)
    const attacker = await rawSocket(url)
    await sleep(200)
    const lines = []
    const phase = async (name, run) => {
      const p = pinger(bystander)
      const cpu0 = cpu()
      const t0 = performance.now()
      const replies0 = attacker.step2
      await run()
      const rtts = await p.stop()
      lines.push(row(name, rtts, attacker.step2 - replies0, cpu() - cpu0, performance.now() - t0))
    }

    await phase('quiet', () => sleep(3000))
    // the read-only session opens the document (its initial sync is not counted in the burst)
    attacker.ws.send(encodeFrame({ kind: FRAME_KINDS.OPEN, document: 'bench/big', token: readToken, stateVector: new Uint8Array() }))
    while (attacker.step2 < 1) await sleep(10)
    await untilIdle(attacker, 500, 60_000)
    await phase(`burst of ${opts.burst}`, async () => {
      for (let i = 0; i < Number(opts.burst); i++) attacker.ws.send(encodeFrame({ kind: FRAME_KINDS.SYNC_STEP1, document: 'bench/big', stateVector: NOTHING }))
      await untilIdle(attacker, 1000, 300_000)
    })
    const seconds = Number(opts['sustained-seconds'])
    const rate = Number(opts['sustained-rate'])
    await phase(`sustained ${rate}/s for ${seconds} s`, async () => {
      const end = performance.now() + seconds * 1000
      for (let i = 0; performance.now() < end; i++) {
        const stateVector = i % 2 === 0 ? NOTHING : Y.encodeStateVector(new Map([[clientId, Math.floor(clock * (0.5 + (i % 97) / 200))]]))
        attacker.ws.send(encodeFrame({ kind: FRAME_KINDS.SYNC_STEP1, document: 'bench/big', stateVector }))
        await sleep(1000 / rate)
      }
      await untilIdle(attacker, 1000, 300_000)
    })
    console.log(`server: ${opts.concord}`)
    console.log(`document: ${encoded} bytes encoded; attacker errors: ${attacker.errors.length ? attacker.errors.join(', ') : 'none'}; attacker socket ${attacker.closed === null ? 'open' : `closed (${attacker.closed})`}`)
    console.log('| phase | pings | p50 ms | p99 ms | max ms | step 2 replies to the attacker | server CPU |')
    console.log('| --- | --- | --- | --- | --- | --- | --- |')
    for (const l of lines) console.log(l)
    bystander.ws.close()
    attacker.ws.close()
  } finally {
    await server.stop()
    rmSync(data, { recursive: true, force: true })
  }
}

process.on('SIGINT', () => { killAllChildren(); process.exit(130) })
main().then(() => process.exit(0), err => {
  console.error(err)
  killAllChildren()
  process.exit(1)
})
