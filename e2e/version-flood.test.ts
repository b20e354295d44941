import { afterEach, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import * as Y from 'yjs'
import type { ConcordClient } from '@concord/client'
import { mintToken, type ServerOptions, type StorageAdapter } from '@concord/server'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'

// The attack of the security report: a user with a write token on a document of a few megabytes
// POSTs named versions as fast as they can. Before, twenty POSTs (270 bytes of requests) grew the
// database by 84 MB for a 4 MB document: each version was a whole copy, kept for ever, and nothing
// limited the rate. Sizes are measured on disk: the SQLite file and its write-ahead log.

const SECRET = 'a-version-flood-test-secret-0123456789abcdef'
const ADMIN = 'version-flood-admin-token-0123456789'
const DOC = 'acme/big'
const PATH = `/v1/documents/${encodeURIComponent(DOC)}`
/** About 4 MB of text that does not compress (SQLite stores it as it is anyway). */
const TEXT = randomBytes(3 * 1024 * 1024).toString('base64')

const servers: RunningServer[] = []
const clients: ConcordClient[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const s of servers.splice(0)) await s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const token = async (user: string, role: 'read' | 'write' = 'write'): Promise<string> =>
  (await mintToken({ secret: SECRET, tenant: 'acme', userId: user, docs: { 'acme/*': role } })).token

/** The database file and its write-ahead log, in bytes. */
function diskBytes(dir: string): number {
  return ['concord.db', 'concord.db-wal'].map(f => join(dir, f)).filter(f => existsSync(f)).reduce((n, f) => n + statSync(f).size, 0)
}

interface Setup {
  srv: RunningServer
  dir: string
  storage: StorageAdapter
  docBytes: number
  /** The database file before the server started (closed: no write-ahead log). */
  baseline: number
  /** Stop the server (SQLite folds its log into the file and removes it) and measure the file. */
  closedBytes(): Promise<number>
}

/** A SQLite store holding DOC (about 4 MB) in its log, and a server on it. */
async function serverWithBigDocument(options: ServerOptions = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-flood-'))
  dirs.push(dir)
  const seed = new Y.Doc()
  seed.getText('t').insert(0, TEXT)
  const update = Y.encodeStateAsUpdate(seed)
  const seeding = createSqliteStorage({ dataDir: dir })
  await seeding.append(DOC, { update, userId: 'owner' })
  await seeding.close()
  const baseline = diskBytes(dir)
  const storage = createSqliteStorage({ dataDir: dir })
  // no compaction during the test: the file grows by the versions only
  const srv = await startServer({ auth: { secret: SECRET }, adminToken: ADMIN, storage, compactEveryBytes: 256 * 1024 * 1024, ...options })
  servers.push(srv)
  return {
    srv, dir, storage, docBytes: update.length, baseline,
    async closedBytes() {
      for (const c of clients.splice(0)) c.close()
      servers.splice(servers.indexOf(srv), 1)
      await srv.close()
      return diskBytes(dir)
    },
  }
}

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`

interface Answer { status: number; retryAfter: string | null; body: Record<string, unknown> }

async function call(srv: RunningServer, path: string, bearer: string, method = 'GET', body?: unknown): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${srv.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> }
}

const post = async (srv: RunningServer, user: string, name: string): Promise<Answer> => call(srv, `${PATH}/versions`, await token(user), 'POST', { name })

describe('named versions cannot fill the disk', () => {
  it('twenty versions of an unchanged 4 MB document store its snapshot once: the database grows by about one copy, not twenty', async () => {
    const setup = await serverWithBigDocument()
    const { srv, dir, storage, docBytes, baseline } = setup
    const answers: Answer[] = []
    for (let i = 0; i < 20; i++) answers.push(await post(srv, 'mallory', `v${i}`))
    expect(answers.map(a => a.status)).toEqual(Array(20).fill(201))
    const running = diskBytes(dir) - baseline
    const stored = await storage.versionStorage(DOC)
    const closed = await setup.closedBytes() - baseline
    console.log(`20 versions of an unchanged ${mb(docBytes)} document: the file and its write-ahead log grew by ${mb(running)} while running, ` +
      `the file by ${mb(closed)} once closed; ${stored.versions} versions hold ${stored.snapshots} snapshot(s) of ${mb(stored.bytes)}`)
    expect(stored).toEqual({ versions: 20, snapshots: 1, bytes: expect.any(Number) })
    expect(stored.bytes).toBeGreaterThanOrEqual(docBytes)
    // one copy in the file, and one passing through the write-ahead log while running (twenty copies: 84 MB)
    expect(closed).toBeLessThan(1.5 * docBytes)
    expect(running).toBeLessThan(3 * docBytes)
  })

  it('an attacker who edits between versions is refused after the per-document cap, and deleting a named version makes room', async () => {
    const setup = await serverWithBigDocument({ maxNamedVersionsPerDocument: 5 })
    const { srv, dir, docBytes, baseline } = setup
    const client = connectClient(srv.url, { getToken: () => token('mallory') })
    clients.push(client)
    const h = client.open(DOC)
    await h.whenSynced()
    const answers: Answer[] = []
    for (let i = 0; i < 20; i++) {
      // a change each time, so no two versions are equal
      h.doc.getText('t').insert(0, `${i} `)
      await h.whenSaved()
      answers.push(await post(srv, 'mallory', `v${i}`))
    }
    expect(answers.slice(0, 5).map(a => a.status)).toEqual([201, 201, 201, 201, 201])
    for (const a of answers.slice(5)) {
      expect(a.status).toBe(409)
      expect(a.body.error).toBe('CONCORD_ERR_LIMIT_NAMED_VERSIONS')
      expect(a.body.message).toMatch(/DELETE \/v1\/documents\/\{name\}\/versions\/\{id\}/)
    }
    const running = diskBytes(dir) - baseline

    const listed = (await call(srv, `${PATH}/versions`, await token('mallory'))).body.versions as { id: string; kind: string; name: string }[]
    expect(listed.filter(v => v.kind === 'named').map(v => v.name)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4'])
    // a reader may not delete; a writer deletes a named version, and then there is room for one more
    const first = listed.find(v => v.name === 'v0')!
    const byReader = await call(srv, `${PATH}/versions/${first.id}`, await token('rita', 'read'), 'DELETE')
    expect([byReader.status, byReader.body.error]).toEqual([403, 'CONCORD_ERR_AUTH_FORBIDDEN'])
    const deleted = await call(srv, `${PATH}/versions/${first.id}`, await token('mallory'), 'DELETE')
    expect([deleted.status, deleted.body.deleted]).toEqual([200, first.id])
    expect((await call(srv, `${PATH}/versions/${first.id}`, await token('mallory'), 'DELETE')).status).toBe(404)
    expect((await post(srv, 'mallory', 'after making room')).status).toBe(201)
    expect((await post(srv, 'mallory', 'one too many')).body.error).toBe('CONCORD_ERR_LIMIT_NAMED_VERSIONS')
    const closed = await setup.closedBytes() - baseline
    console.log(`20 POSTs of ${mb(docBytes)} versions with an edit before each, cap 5: ${answers.filter(a => a.status === 201).length} created; ` +
      `the file and its write-ahead log grew by ${mb(running)} while running, the file by ${mb(closed)} once closed (after one deletion and one more version)`)
    // five copies (not twenty), and one passing through the write-ahead log while running
    expect(closed).toBeLessThan(6 * docBytes)
    expect(running).toBeLessThan(7.5 * docBytes)
  })

  it('a checkpoint is deleted by an admin only (writers leave it to retention)', async () => {
    const { srv, storage } = await serverWithBigDocument()
    await storage.saveVersion(DOC, { id: 'cp', kind: 'auto', name: null, createdAt: Date.now(), createdBy: null, authors: [], seq: 1, snapshot: new Uint8Array([0, 0]) })
    const byWriter = await call(srv, `${PATH}/versions/cp`, await token('mallory'), 'DELETE')
    expect([byWriter.status, byWriter.body.error]).toEqual([403, 'CONCORD_ERR_AUTH_FORBIDDEN'])
    const byAdmin = await call(srv, `${PATH}/versions/cp`, ADMIN, 'DELETE')
    expect([byAdmin.status, byAdmin.body.deleted]).toEqual([200, 'cp'])
    expect(await storage.listVersions(DOC)).toEqual([])
  })

  it('a user who POSTs faster than the rate limit gets 429 with Retry-After; other users and cheap health routes are not held back', async () => {
    // 1 request per second, bursts of 30; a version counts as 10: three at once, then one every 10 s
    const setup = await serverWithBigDocument({ httpRequestsPerSecond: 1, httpRequestsBurst: 30, httpExpensiveRequestCost: 10 })
    const { srv, docBytes, baseline } = setup
    const client = connectClient(srv.url, { getToken: () => token('mallory') })
    clients.push(client)
    const h = client.open(DOC)
    await h.whenSynced()
    const started = Date.now()
    const answers: Answer[] = []
    for (let i = 0; i < 20; i++) {
      h.doc.getText('t').insert(0, `${i} `)
      await h.whenSaved()
      answers.push(await post(srv, 'mallory', `v${i}`))
    }
    const seconds = (Date.now() - started) / 1000
    const created = answers.filter(a => a.status === 201).length
    const refused = answers.filter(a => a.status === 429)
    console.log(`20 POSTs in ${seconds.toFixed(1)} s at 1 request/s (burst 30, a version counts 10): ${created} created, ${refused.length} refused`)
    expect(created + refused.length).toBe(20)
    expect(answers.slice(0, 3).map(a => a.status)).toEqual([201, 201, 201])
    // beyond the burst, one version per 10 s of refill at most
    expect(created).toBeLessThanOrEqual(3 + Math.floor(seconds / 10))
    for (const a of refused) {
      expect(a.body.error).toBe('CONCORD_ERR_LIMIT_HTTP_RATE')
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1)
      expect(a.body.retryAfterSeconds).toBe(Number(a.retryAfter))
    }
    // another user has a bucket of their own; health has no limit
    expect((await post(srv, 'erin', 'mine')).status).toBe(201)
    for (let i = 0; i < 50; i++) expect((await fetch(`http://127.0.0.1:${srv.port}/healthz`)).status).toBe(200)
    const closed = await setup.closedBytes() - baseline
    console.log(`... and erin's one: the file grew by ${mb(closed)} (${mb(docBytes)} a version)`)
    expect(closed).toBeLessThan((created + 1.5) * docBytes)
  })

  it('the admin API is limited per caller too: the static admin token by its address', async () => {
    const { srv } = await serverWithBigDocument({ httpRequestsPerSecond: 1, httpRequestsBurst: 20, httpExpensiveRequestCost: 10 })
    const statuses: number[] = []
    // 2 document reads (10 each) empty the bucket
    for (let i = 0; i < 4; i++) statuses.push((await call(srv, `/admin/documents/${encodeURIComponent(DOC)}`, ADMIN)).status)
    expect(statuses.slice(0, 2)).toEqual([200, 200])
    expect(statuses.slice(2)).toContain(429)
    const refused = await call(srv, `/admin/documents/${encodeURIComponent(DOC)}`, ADMIN)
    expect([refused.status, refused.body.error]).toEqual([429, 'CONCORD_ERR_LIMIT_HTTP_RATE'])
    expect((await fetch(`http://127.0.0.1:${srv.port}/readyz`)).status).toBe(200)
    const metrics = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text()
    expect(metrics).toMatch(/concord_refused_total\{code="CONCORD_ERR_LIMIT_HTTP_RATE"\} [1-9]/)
  })

  it('honest use works as before: a few versions with edits in between, each readable, restorable and stored once', async () => {
    const { srv, storage } = await serverWithBigDocument()
    const client = connectClient(srv.url, { getToken: () => token('ann') })
    clients.push(client)
    const h = client.open(DOC)
    await h.whenSynced()
    const ids: string[] = []
    for (const word of ['draft', 'review', 'final']) {
      h.doc.getText('t').insert(0, `${word}: `)
      await h.whenSaved()
      const v = await h.createVersion(word)
      ids.push(v.id)
    }
    // saving again without a change adds a version but no bytes
    ids.push((await h.createVersion('final, again')).id)
    expect((await h.versions()).filter(v => v.kind === 'named').map(v => v.name)).toEqual(['draft', 'review', 'final', 'final, again'])
    expect(await storage.versionStorage(DOC)).toMatchObject({ versions: 4, snapshots: 3 })
    const review = await call(srv, `${PATH}/versions/${ids[1]}?format=text`, await token('ann'))
    expect(String(review.body.text).startsWith('review: draft: ')).toBe(true)
    expect((await h.restore(ids[0]!)).changed).toBe(true)
    await waitFor(() => h.doc.getText('t').toString().startsWith('draft: ') && h.doc.getText('t').length === TEXT.length + 'draft: '.length,
      { message: 'the restored text at the client' })
    const diff = await call(srv, `${PATH}/diff?from=${ids[0]}&to=${ids[2]}&field=t`, await token('ann'))
    expect(diff.status).toBe(200)
    // deleting the repeat leaves the bytes it shared with 'final'
    await h.deleteVersion(ids[3]!)
    expect((await h.versions()).filter(v => v.kind === 'named').map(v => v.name)).toEqual(['draft', 'review', 'final'])
    expect(await storage.versionStorage(DOC)).toMatchObject({ versions: 3, snapshots: 3 })
    const final = await call(srv, `${PATH}/versions/${ids[2]}?format=text`, await token('ann'))
    expect(String(final.body.text).startsWith('final: review: draft: ')).toBe(true)
  })
})
