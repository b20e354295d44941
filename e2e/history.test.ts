import { afterEach, describe, expect, it } from 'vitest'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createNetServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import * as Y from 'yjs'
import type { ConcordClient } from '@concord/client'
import { createLogger, mintToken, verifyWebhookSignature } from '@concord/server'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import { connectClient, NO_RATE_LIMIT, startServer, waitFor, type RunningServer } from './helpers.js'
import { loadTrace } from './traces.js'

const SECRET = 'a-history-test-secret-0123456789abcdef'
const servers: RunningServer[] = []
const clients: ConcordClient[] = []
const dirs: string[] = []
const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const s of servers.splice(0)) await s.close()
  for (const f of closers.splice(0)) await f()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const token = async (user: string, role: 'read' | 'write' = 'write'): Promise<string> =>
  (await mintToken({ secret: SECRET, tenant: 'acme', userId: user, docs: { 'acme/*': role } })).token

async function api(srv: RunningServer, path: string, user: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${srv.port}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${await token(user)}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

/** A TCP pass-through on a fixed port that can be switched off and on: a client behind it goes offline and comes back. */
async function switchableProxy(targetPort: number): Promise<{ url: string; off(): Promise<void>; on(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  let server: Server | null = null
  let port = 0
  const on = async (): Promise<void> => {
    const s = createNetServer(client => {
      const upstream = netConnect(targetPort, '127.0.0.1')
      for (const x of [client, upstream]) {
        sockets.add(x)
        x.on('close', () => sockets.delete(x))
        x.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream)
      upstream.pipe(client)
    })
    await new Promise<void>(resolve => s.listen(port, '127.0.0.1', () => resolve()))
    port = (s.address() as AddressInfo).port
    server = s
  }
  const off = async (): Promise<void> => {
    const s = server
    server = null
    for (const x of sockets) x.destroy()
    if (s !== null) await new Promise<void>(resolve => s.close(() => resolve()))
  }
  await on()
  return { url: `ws://127.0.0.1:${port}`, on, off, close: off }
}

describe('history: versions, time travel, restore, attribution', () => {
  it('seph-blog1 streamed through the server with a named version every 10,000 transactions: each version\'s text equals a plain-string replay up to it', async () => {
    const trace = loadTrace('seph-blog1')
    const srv = await startServer({ ...NO_RATE_LIMIT, auth: { secret: SECRET }, logger: createLogger('warn') })
    servers.push(srv)
    const writer = connectClient(srv.url, { getToken: () => token('seph') })
    clients.push(writer)
    const h = writer.open('acme/blog')
    await h.whenSynced()
    const text = h.doc.getText('text')
    text.insert(0, trace.startContent)
    let plain = trace.startContent
    const expected: { id: string; text: string; at: number }[] = []
    const started = performance.now()
    for (let i = 0; i < trace.txns.length; i++) {
      const txn = trace.txns[i]!
      h.doc.transact(() => {
        for (const [pos, del, ins] of txn.patches) {
          if (del > 0) text.delete(pos, del)
          if (ins.length > 0) text.insert(pos, ins)
          plain = plain.slice(0, pos) + ins + plain.slice(pos + del)
        }
      })
      if ((i + 1) % 10_000 === 0) {
        await h.whenSaved()
        const created = await api(srv, '/v1/documents/acme%2Fblog/versions', 'seph', { method: 'POST', body: { name: `txn ${i + 1}` } })
        expect(created.status).toBe(201)
        expected.push({ id: (created.body.version as { id: string }).id, text: plain, at: Date.now() })
      }
    }
    expect(plain).toBe(trace.endContent)
    expect(expected.length).toBe(Math.floor(trace.txns.length / 10_000))
    const listed = await api(srv, '/v1/documents/acme%2Fblog/versions', 'seph')
    const versions = listed.body.versions as { id: string; name: string; kind: string; authors: string[]; bytes: number }[]
    expect(versions.filter(v => v.kind === 'named').map(v => v.id)).toEqual(expected.map(e => e.id))
    expect(versions[0]!.authors).toEqual(['seph'])
    for (const e of expected) {
      const r = await api(srv, `/v1/documents/acme%2Fblog/versions/${e.id}?format=text&field=text`, 'seph')
      expect(r.status).toBe(200)
      expect(r.body.text === e.text, `version ${String((r.body.version as { name: string }).name)}`).toBe(true)
    }
    // time travel: the document as it was just after the third version
    const third = expected[2]!
    const at = await api(srv, `/v1/documents/acme%2Fblog/at?t=${third.at}&format=text&field=text`, 'seph')
    expect(at.body.text === third.text).toBe(true)
    // the diff between two versions rebuilds both texts
    const diff = await api(srv, `/v1/documents/acme%2Fblog/diff?from=${expected[0]!.id}&to=${expected[1]!.id}&field=text`, 'seph')
    const ops = diff.body.ops as { op: string; text: string; author?: string | null }[]
    expect(ops.filter(o => o.op !== 'insert').map(o => o.text).join('') === expected[0]!.text).toBe(true)
    expect(ops.filter(o => o.op !== 'delete').map(o => o.text).join('') === expected[1]!.text).toBe(true)
    expect(ops.filter(o => o.op === 'insert').every(o => o.author === 'seph')).toBe(true)
    console.log(`seph-blog1: ${trace.txns.length} txns, ${expected.length} versions checked in ${Math.round(performance.now() - started)} ms`)
  }, 180_000)

  it('restore while two clients are connected and a third is offline: all three end with the restored text plus the offline client\'s later edits', async () => {
    const srv = await startServer({ auth: { secret: SECRET } })
    servers.push(srv)
    const proxy = await switchableProxy(srv.port)
    closers.push(() => proxy.close())
    const [a, b] = [connectClient(srv.url, { getToken: () => token('ann') }), connectClient(srv.url, { getToken: () => token('bob') })]
    const c = connectClient(proxy.url, { getToken: () => token('cy'), reconnect: { minDelayMs: 20, maxDelayMs: 100 } })
    clients.push(a, b, c)
    const [ha, hb, hc] = [a.open('acme/plan'), b.open('acme/plan'), c.open('acme/plan')]
    await Promise.all([ha.whenSynced(), hb.whenSynced(), hc.whenSynced()])
    ha.doc.getText('t').insert(0, 'Plan: ship v1 on Monday.')
    ha.doc.getMap('m').set('owner', 'ann')
    await ha.whenSaved()
    await waitFor(() => hc.doc.getText('t').toString() === 'Plan: ship v1 on Monday.', { message: 'c has the text' })
    const v = await ha.createVersion('before the rewrite')
    expect(v).toMatchObject({ kind: 'named', name: 'before the rewrite', createdBy: 'ann' })

    // c goes offline and edits; a and b rewrite the plan
    await proxy.off()
    await waitFor(() => !c.connected, { message: 'c offline' })
    hc.doc.getText('t').insert(hc.doc.getText('t').length, ' [cy: bring snacks]')
    ha.doc.getText('t').delete(0, ha.doc.getText('t').length)
    ha.doc.getText('t').insert(0, 'Plan: cancelled.')
    hb.doc.getMap('m').set('owner', 'bob')
    await Promise.all([ha.whenSaved(), hb.whenSaved()])
    await waitFor(() => hb.doc.getText('t').toString() === 'Plan: cancelled.', { message: 'b sees the rewrite' })

    // b restores the version: a and b receive it as an edit, nobody is disconnected
    const errors: string[] = []
    for (const h of [ha, hb]) h.on('error', e => errors.push(e.code))
    expect(await hb.restore(v.id)).toEqual({ changed: true })
    await waitFor(() => ha.doc.getText('t').toString() === 'Plan: ship v1 on Monday.' && hb.doc.getText('t').toString() === 'Plan: ship v1 on Monday.', { message: 'a and b restored' })
    expect(ha.doc.getMap('m').get('owner')).toBe('ann')
    expect(errors).toEqual([])
    expect(a.connected && b.connected).toBe(true)

    // c comes back: its offline edit merges into the restored text, everyone converges
    await proxy.on()
    // c appended at the end of the text that a and b then rewrote; the restore re-creates that text
    // at the same spot, so Yjs orders the two concurrent inserts there by client id: either order
    // holds both, whole
    const restored = 'Plan: ship v1 on Monday.'
    const offline = ' [cy: bring snacks]'
    await waitFor(() => {
      const texts = [ha, hb, hc].map(h => h.doc.getText('t').toString())
      return texts.every(t => t === texts[0]) && (texts[0] === restored + offline || texts[0] === offline + restored)
    }, { timeoutMs: 10_000, message: () => `converged: ${[ha, hb, hc].map(h => JSON.stringify(h.doc.getText('t').toString())).join(' / ')}` })
    expect([ha, hb, hc].map(h => h.doc.getMap('m').get('owner'))).toEqual(['ann', 'ann', 'ann'])
    // a read-only user may list versions but not restore
    const reader = await fetch(`http://127.0.0.1:${srv.port}/v1/documents/acme%2Fplan/versions/${v.id}/restore`, { method: 'POST', headers: { authorization: `Bearer ${await token('rita', 'read')}` } })
    expect(reader.status).toBe(403)
  })

  it('attribution names the right author for each span of a two-author document', async () => {
    const srv = await startServer({ auth: { secret: SECRET } })
    servers.push(srv)
    const ann = connectClient(srv.url, { getToken: () => token('ann') })
    const bob = connectClient(srv.url, { getToken: () => token('bob') })
    clients.push(ann, bob)
    const ha = ann.open('acme/essay')
    const hb = bob.open('acme/essay')
    await Promise.all([ha.whenSynced(), hb.whenSynced()])
    ha.doc.getText('t').insert(0, 'Roses are red. ')
    await ha.whenSaved()
    await waitFor(() => hb.doc.getText('t').length === 15, { message: 'bob has it' })
    hb.doc.getText('t').insert(15, 'Violets are blue. ')
    await hb.whenSaved()
    await waitFor(() => ha.doc.getText('t').length === 33, { message: 'ann has it' })
    ha.doc.getText('t').insert(33, 'Sugar is sweet.')
    hb.doc.getText('t').delete(0, 6) // bob deletes "Roses "
    await Promise.all([ha.whenSaved(), hb.whenSaved()])
    const r = await api(srv, '/v1/documents/acme%2Fessay/attribution?field=t', 'ann')
    expect(r.status).toBe(200)
    expect(r.body.spans).toEqual([
      { text: 'are red. ', author: 'ann', clients: [ha.doc.clientID] },
      { text: 'Violets are blue. ', author: 'bob', clients: [hb.doc.clientID] },
      { text: 'Sugar is sweet.', author: 'ann', clients: [ha.doc.clientID] },
    ])
  })
})

describe('history: checkpoints and retention', () => {
  it('the last editor leaving takes a checkpoint with its authors; a checkpoint is also taken after a period of changes; retention prunes old checkpoints and keeps named versions', async () => {
    const srv = await startServer({ auth: { secret: SECRET }, history: { checkpointEveryMs: 300, retentionMs: 1_500, minCheckpointIntervalMs: 0 } })
    servers.push(srv)
    const a = connectClient(srv.url, { getToken: () => token('ann') })
    const b = connectClient(srv.url, { getToken: () => token('bob') })
    clients.push(a, b)
    const ha = a.open('acme/notes')
    const hb = b.open('acme/notes')
    await Promise.all([ha.whenSynced(), hb.whenSynced()])
    ha.doc.getText('t').insert(0, 'one ')
    hb.doc.getText('t').insert(0, 'two ')
    await Promise.all([ha.whenSaved(), hb.whenSaved()])
    const named = await ha.createVersion('kept')
    // changes for longer than checkpointEveryMs: a checkpoint while both are still here
    ha.doc.getText('t').insert(0, 'x')
    await ha.whenSaved()
    // kept on purpose: the changes must span more than checkpointEveryMs (300 ms)
    await new Promise(r => setTimeout(r, 350))
    ha.doc.getText('t').insert(0, 'y')
    await ha.whenSaved()
    const autos = async (): Promise<{ id: string; authors: string[]; createdAt: number }[]> =>
      ((await api(srv, '/v1/documents/acme%2Fnotes/versions', 'ann')).body.versions as { id: string; kind: string; authors: string[]; createdAt: number }[]).filter(v => v.kind === 'auto')
    await waitFor(async () => (await autos()).length === 1, { message: 'a checkpoint after a period of changes' })
    // both leave after bob's edit: the last one out takes a checkpoint holding bob's change
    hb.doc.getText('t').insert(0, 'z')
    await hb.whenSaved()
    await waitFor(() => ha.doc.getText('t').toString() === hb.doc.getText('t').toString(), { message: 'in sync' })
    const expectedText = hb.doc.getText('t').toString()
    a.close()
    b.close()
    await waitFor(async () => (await autos()).length === 2, { message: 'a checkpoint when the last editor left' })
    const last = (await autos())[1]!
    expect(last.authors).toEqual(['bob'])
    const text = await api(srv, `/v1/documents/acme%2Fnotes/versions/${last.id}?format=text`, 'ann')
    expect(text.body.text).toBe(expectedText)
    expect(expectedText.startsWith('zyx')).toBe(true)
    // 1.5 s later, a new version prunes the old checkpoints, never the named one
    // (kept on purpose: the checkpoints must be older than retentionMs when the new version is made)
    await new Promise(r => setTimeout(r, 1_600))
    await api(srv, '/v1/documents/acme%2Fnotes/versions', 'ann', { method: 'POST', body: { name: 'later' } })
    const after = (await api(srv, '/v1/documents/acme%2Fnotes/versions', 'ann')).body.versions as { id: string; kind: string; name: string | null }[]
    expect(after.map(v => v.name)).toEqual(['kept', 'later'])
    expect(after[0]!.id).toBe(named.id)
  })
})

describe('history: webhooks', () => {
  it('a receiver gets each event once, signed, and gets it again after answering 500 the first time', async () => {
    const HOOK_SECRET = 'webhook-secret-0123456789abcdef'
    const received: { id: string; type: string; data: Record<string, unknown>; valid: boolean; status: number }[] = []
    let failedFirst = false
    const receiver = createHttpServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = []
      req.on('data', c => chunks.push(c as Buffer))
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        const body = JSON.parse(raw) as { id: string; type: string; data: Record<string, unknown> }
        const valid = verifyWebhookSignature(HOOK_SECRET, String(req.headers['x-concord-signature']), raw)
        // the first version.created is answered 500: it must come again
        const status = body.type === 'version.created' && !failedFirst ? 500 : 200
        if (status === 500) failedFirst = true
        received.push({ ...body, valid, status })
        res.writeHead(status)
        res.end()
      })
    })
    await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', () => resolve()))
    closers.push(() => new Promise<void>(resolve => receiver.close(() => resolve())))
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`
    const srv = await startServer({ auth: { secret: SECRET }, adminToken: 'history-admin-token-0123', webhooks: [{ url, secret: HOOK_SECRET }] })
    servers.push(srv)
    const c = connectClient(srv.url, { getToken: () => token('ann') })
    clients.push(c)
    const h = c.open('acme/hooked')
    await h.whenSynced()
    for (let i = 0; i < 5; i++) {
      h.doc.getText('t').insert(0, `${i}`)
      await h.whenSaved()
    }
    await h.createVersion('v1')
    const del = await fetch(`http://127.0.0.1:${srv.port}/admin/documents/acme%2Fhooked`, { method: 'DELETE', headers: { authorization: 'Bearer history-admin-token-0123' } })
    expect(del.status).toBe(200)
    await waitFor(() => ['document.created', 'document.changed', 'version.created', 'document.deleted'].every(t => received.some(r => r.type === t && r.status === 200)), {
      timeoutMs: 15_000, message: () => `all four events delivered (so far: ${received.map(r => `${r.type}:${r.status}`).join(', ')})`,
    })
    expect(received.every(r => r.valid)).toBe(true)
    expect(received.every(r => r.data.document === 'acme/hooked')).toBe(true)
    // each event once, except the version.created answered 500: twice, with the same delivery id
    const byType = (t: string): typeof received => received.filter(r => r.type === t)
    expect(byType('document.created')).toHaveLength(1)
    expect(byType('document.deleted')).toHaveLength(1)
    const versions = byType('version.created')
    expect(versions.map(r => r.status)).toEqual([500, 200])
    expect(versions[0]!.id).toBe(versions[1]!.id)
    // document.changed is debounced: five edits, one delivery counting them
    expect(byType('document.changed').reduce((n, r) => n + Number(r.data.updates), 0)).toBe(5)
    expect(new Set(received.filter(r => r.status === 200).map(r => r.id)).size).toBe(received.filter(r => r.status === 200).length)
  }, 30_000)
})

describe('history: loads stay bounded', () => {
  it('a document with 100,000 logged updates and 20 versions loads from one snapshot and a short tail', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'concord-history-'))
    dirs.push(dataDir)
    const srv = await startServer({ ...NO_RATE_LIMIT, storage: createSqliteStorage({ dataDir }), compactEveryUpdates: 1_000, logger: createLogger('warn') })
    servers.push(srv)
    const c = connectClient(srv.url)
    clients.push(c)
    const h = c.open('big')
    await h.whenSynced()
    const t = h.doc.getText('t')
    for (let i = 0; i < 100_000; i++) {
      t.insert(t.length, 'x')
      if (i % 5_000 === 4_999) {
        await h.whenSaved()
        const r = await fetch(`http://127.0.0.1:${srv.port}/v1/documents/big/versions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `at ${i + 1}` }) })
        expect(r.status).toBe(201)
      }
    }
    await h.whenSaved()
    c.close()
    clients.length = 0
    servers.length = 0
    await srv.close()
    // the stored rows: every update was logged once, then folded into snapshots
    const storage = createSqliteStorage({ dataDir, thread: 'main' })
    try {
      const versions = await storage.listVersions('big')
      expect(versions.filter(v => v.kind === 'named')).toHaveLength(20)
      const loaded = await storage.load('big')
      // rows a load reads: one snapshot and the tail after it
      const rowsRead = (loaded.snapshot !== null ? 1 : 0) + loaded.updates.length
      console.log(`100,000 updates, ${versions.length} versions: a load reads ${rowsRead} rows (snapshot at seq ${loaded.snapshotSeq}, tail ${loaded.updates.length})`)
      expect(loaded.snapshot).not.toBe(null)
      expect(loaded.updates.length).toBeLessThan(1_000)
      expect(loaded.snapshotSeq).toBeGreaterThan(99_000)
      const doc = new Y.Doc()
      Y.applyUpdate(doc, loaded.snapshot!)
      for (const u of loaded.updates) Y.applyUpdate(doc, u.update)
      expect(doc.getText('t').length).toBe(100_000)
    } finally {
      await storage.close()
    }
  }, 120_000)
})
