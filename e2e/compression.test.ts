import { describe, it, expect, afterEach } from 'vitest'
import { WebSocket } from 'ws'
import * as Y from 'yjs'
import { createServer } from '@concord/server'
import { encodeYMessage } from '@concord/protocol'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'

// permessage-deflate (`compressionThresholdBytes`, `--compression-threshold`): off by default;
// when on, a large initial sync travels compressed and every client still converges.
// Its cost and savings: bench/compression.mjs, docs/benchmarks.md "Compression".

let running: RunningServer | null = null
const clients: ConcordClient[] = []
const sockets: WebSocket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const s of sockets.splice(0)) s.terminate()
  await running?.close()
  running = null
})

/** A y-websocket client offering permessage-deflate: resolves with the bytes its TCP socket read until sync step 2, and what it agreed. */
async function syncBytes(url: string): Promise<{ socketBytes: number; messageBytes: number; extensions: string }> {
  const ws = new WebSocket(url, { perMessageDeflate: true })
  sockets.push(ws)
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  let messageBytes = 0
  const step2 = new Promise<void>(resolve => ws.on('message', (data: Buffer) => {
    messageBytes += data.length
    if (data[0] === 0 && data[1] === 1) resolve()
  }))
  ws.send(encodeYMessage({ type: 'sync-step1', stateVector: Y.encodeStateVector(new Y.Doc()) }))
  await step2
  return { socketBytes: (ws as unknown as { _socket: { bytesRead: number } })._socket.bytesRead, messageBytes, extensions: ws.extensions }
}

describe('compression', () => {
  it('is off by default: nothing is negotiated and a large sync travels as it is', async () => {
    running = await startServer()
    const writer = connectClient(running.url)
    clients.push(writer)
    const h = writer.open('big')
    h.doc.getText('t').insert(0, 'a sentence that repeats, as documents do. '.repeat(5_000))
    await h.whenSaved()
    const r = await syncBytes(`${running.url}/big`)
    expect(r.extensions).toBe('')
    expect(r.messageBytes).toBeGreaterThan(200_000)
    expect(r.socketBytes).toBeGreaterThanOrEqual(r.messageBytes)
  })

  it('with a threshold, a large initial sync arrives compressed, small messages as they are, and SDK clients converge', async () => {
    running = await startServer({ compressionThresholdBytes: 1024 })
    const writer = connectClient(running.url)
    clients.push(writer)
    const h = writer.open('big')
    h.doc.getText('t').insert(0, 'a sentence that repeats, as documents do. '.repeat(5_000))
    await h.whenSaved()
    const r = await syncBytes(`${running.url}/big`)
    expect(r.extensions).toContain('permessage-deflate')
    // what the socket read is a fraction of what the messages hold
    expect(r.socketBytes).toBeLessThan(r.messageBytes / 4)
    // an SDK client (ws offers compression) syncs the same document, and typing still flows both ways
    const reader = connectClient(running.url)
    clients.push(reader)
    const other = reader.open('big')
    await other.whenSynced()
    expect(other.doc.getText('t').toString()).toBe(h.doc.getText('t').toString())
    other.doc.getText('t').insert(0, 'x')
    h.doc.getText('t').insert(0, 'y')
    await waitFor(() => other.doc.getText('t').toString() === h.doc.getText('t').toString() && h.doc.getText('t').length === 210_002,
      { message: 'both to converge after typing' })
  })

  it('refuses a threshold that is not a whole number of bytes', () => {
    expect(() => createServer({ auth: 'none', compressionThresholdBytes: -1 })).toThrow(/compressionThresholdBytes must be an integer of at least 0/)
    expect(() => createServer({ auth: 'none', compressionThresholdBytes: 1.5 })).toThrow(/compressionThresholdBytes/)
  })
})
