import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'
import type { ConcordClient } from '@concord/client'
import { mintToken } from '@concord/server'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import { createPostgresStorage } from '@concord/server/storage/postgres'
import type { StorageAdapter } from '../packages/server/src/storage/storage-adapter.js'
import { foldState } from '../packages/server/src/storage/fold.js'
import { documentToText } from '../packages/server/src/content/document-export.js'
import { connectClient, waitFor } from './helpers.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { createDatabase, startPostgres, type PostgresServer } from './services/postgres.js'

// `concord export` and `concord import` as an operator runs them: the real CLI, a SQLite store a
// real server filled (and still holds open during the export), a real PostgreSQL.
const BIN = fileURLToPath(new URL('../packages/server/bin/concord.js', import.meta.url))
const SECRET = 'an-export-import-test-secret-0123456789'
const DOCS = ['acme/plan', 'acme/notes', 'acme/log']

let pgServer: PostgresServer
const dirs: string[] = []
beforeAll(async () => {
  pgServer = await startPostgres()
}, 120_000)
afterAll(() => {
  pgServer?.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'concord-export-'))
  dirs.push(d)
  return d
}

/** Run the CLI to completion (asynchronously: a server may be running in this process's children). */
function concord(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.on('exit', code => resolve({ code, stdout, stderr }))
  })
}

const token = async (user: string): Promise<string> => (await mintToken({ secret: SECRET, tenant: 'acme', userId: user, docs: { 'acme/*': 'write' } })).token

async function api(port: number, path: string, user = 'ann'): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${await token(user)}` } })
  expect(res.status, path).toBe(200)
  return res.json()
}

/** Everything a user could tell apart about a document in a store: its text, its versions with their contents, who owns which Yjs client id. */
async function picture(storage: StorageAdapter, name: string): Promise<unknown> {
  const loaded = await storage.load(name)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, foldState(loaded.snapshot, loaded.updates.map(u => u.update)))
  const versions = []
  for (const v of await storage.listVersions(name)) {
    const found = (await storage.loadVersion(name, v.id))!
    const vdoc = new Y.Doc()
    Y.applyUpdate(vdoc, found.snapshot)
    versions.push({
      id: v.id, kind: v.kind, name: v.name, createdAt: v.createdAt, createdBy: v.createdBy, authors: v.authors, bytes: v.bytes,
      text: documentToText(vdoc), snapshot: Buffer.from(found.snapshot).toString('base64'),
    })
  }
  return { text: documentToText(doc), json: doc.getText('default').toJSON(), versions, authors: [...await storage.loadAuthors(name)].sort((a, b) => a[0] - b[0]) }
}

async function pictures(storage: StorageAdapter): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {}
  for (const { name } of await storage.list()) out[name] = await picture(storage, name)
  return out
}

async function withStore<T>(open: () => StorageAdapter | Promise<StorageAdapter>, use: (s: StorageAdapter) => Promise<T>): Promise<T> {
  const s = await open()
  try {
    return await use(s)
  } finally {
    await s.close()
  }
}

describe('concord export and import', () => {
  it('SQLite (served) → archive → PostgreSQL → archive → a fresh SQLite: identical documents, versions and authors; bad archives are refused and change nothing', async () => {
    // 1. a real server on a SQLite store, small compactions so the log has snapshots and tails
    const sqliteDir = tempDir()
    // a checkpoint (automatic version) once a change is 300 ms old
    let srv: ServerProcess | null = await spawnServer(['--data', sqliteDir, '--auth-secret', SECRET, '--compact-every-updates', '5', '--checkpoint-every-minutes', '0.005', '--port', '0'])
    const clients: ConcordClient[] = []
    try {
      const ann = connectClient(srv.url, { getToken: () => token('ann') })
      const bob = connectClient(srv.url, { getToken: () => token('bob') })
      clients.push(ann, bob)
      for (const name of DOCS) {
        const a = ann.open(name)
        const b = bob.open(name)
        await Promise.all([a.whenSynced(), b.whenSynced()])
        for (let i = 0; i < 6; i++) {
          a.doc.getText('default').insert(a.doc.getText('default').length, `ann ${i} in ${name}. `)
          await a.whenSaved()
          await waitFor(() => b.doc.getText('default').toString() === a.doc.getText('default').toString(), { message: `bob sees ann's edit in ${name}` })
          b.doc.getText('default').insert(0, `bob ${i}. `)
          await b.whenSaved()
          await waitFor(() => b.doc.getText('default').toString() === a.doc.getText('default').toString(), { message: `ann sees bob's edit in ${name}` })
          if (i === 2) await a.createVersion(`draft of ${name}`)
        }
        // bob keeps editing until the server has taken a checkpoint of the document
        await waitFor(async () => {
          b.doc.getText('default').insert(0, '.')
          await b.whenSaved()
          return ((await api(srv!.port, `/v1/documents/${encodeURIComponent(name)}/versions`)) as { versions: { kind: string }[] }).versions.some(v => v.kind === 'auto')
        }, { timeoutMs: 20_000, intervalMs: 100, message: `a checkpoint of ${name}` })
        await b.createVersion('final')
      }
      ann.close()
      bob.close()
      const attributionBefore = await api(srv.port, '/v1/documents/acme%2Fplan/attribution')

      // 2. export while the server still runs on the store, and while a client writes to another document
      const writer = connectClient(srv.url, { getToken: () => token('carol') })
      clients.push(writer)
      const live = writer.open('acme/live')
      await live.whenSynced()
      let writing = true
      const writes = (async () => {
        for (let i = 0; writing; i++) {
          live.doc.getText('default').insert(live.doc.getText('default').length, `${i} `)
          await live.whenSaved()
        }
      })()
      await waitFor(() => live.doc.getText('default').length > 20, { message: 'carol to be writing' })
      const archive = join(tempDir(), 'backup.ndjson.gz')
      const exported = await concord(['export', '--data', sqliteDir, '--out', archive])
      writing = false
      await writes
      expect(exported.stderr).toMatch(/^concord export: 4 documents, \d+ versions/)
      expect(exported.code).toBe(0)
      const lines = gunzipSync(readFileSync(archive)).toString('utf8').trimEnd().split('\n')
      expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'concord-archive', version: 1, source: 'sqlite', documents: 4 })
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: 'end', documents: 4 })
      writer.close()
      srv.child.kill('SIGINT')
      expect((await srv.exited).code).toBe(0)
      srv = null

      const source = await withStore(() => createSqliteStorage({ dataDir: sqliteDir, thread: 'main' }), pictures)
      expect(Object.keys(source).sort()).toEqual(['acme/live', 'acme/log', 'acme/notes', 'acme/plan'])
      const plan = source['acme/plan'] as { versions: { kind: string; name: string | null }[]; authors: [number, string][]; text: string }
      const names = plan.versions.map(v => v.name ?? v.kind)
      expect(names[0]).toBe('draft of acme/plan')
      expect(names.at(-1)).toBe('final')
      expect(names).toContain('auto')
      expect(new Set(plan.authors.map(a => a[1]))).toEqual(new Set(['ann', 'bob']))
      expect(plan.text).toContain('ann 5 in acme/plan.')

      // 3. into PostgreSQL
      const pgUrl = await createDatabase(pgServer, 'export_import')
      const imported = await concord(['import', '--store', pgUrl, '--in', archive])
      expect(imported.stderr).toBe('')
      expect(imported.code).toBe(0)
      expect(imported.stdout).toMatch(/^concord import: 4 documents, \d+ versions, \d+ authors/)
      const inPostgres = await withStore(() => createPostgresStorage({ connectionString: pgUrl }), pictures)
      const { 'acme/live': liveInPg, ...restInPg } = inPostgres
      const { 'acme/live': liveInSource, ...restInSource } = source
      expect(restInPg).toEqual(restInSource)
      // the document written during the export: as it was at some moment (its text a prefix of the final one)
      expect((liveInSource as { text: string }).text.startsWith((liveInPg as { text: string }).text)).toBe(true)
      expect((liveInPg as { text: string }).text.length).toBeGreaterThan(20)

      // a server on the imported store tells users the same history
      srv = await spawnServer(['--store', pgUrl, '--auth-secret', SECRET, '--port', '0'])
      expect(await api(srv.port, '/v1/documents/acme%2Fplan/attribution')).toEqual(attributionBefore)
      const reader = connectClient(srv.url, { getToken: () => token('ann') })
      clients.push(reader)
      const opened = reader.open('acme/notes')
      await opened.whenSynced()
      expect(opened.doc.getText('default').toString()).toBe((source['acme/notes'] as { text: string }).text)
      reader.close()
      srv.child.kill('SIGINT')
      expect((await srv.exited).code).toBe(0)
      srv = null

      // 4. PostgreSQL → a fresh SQLite store, through standard output and a plain file
      const plain = join(tempDir(), 'from-postgres.ndjson')
      const fromPg = spawnSync(process.execPath, [BIN, 'export', '--store', pgUrl, '--out', '-'], { maxBuffer: 64 << 20 })
      expect(fromPg.status).toBe(0)
      writeFileSync(plain, fromPg.stdout)
      expect(JSON.parse(fromPg.stdout.toString().split('\n')[0]!)).toMatchObject({ source: 'postgres', documents: 4 })
      const freshDir = join(tempDir(), 'fresh')
      const back = await concord(['import', '--data', freshDir, '--in', plain])
      expect(back.code).toBe(0)
      const inFresh = await withStore(() => createSqliteStorage({ dataDir: freshDir, thread: 'main' }), pictures)
      expect(inFresh).toEqual(inPostgres)

      // 5. bad archives: refused with their code before anything is written
      const pgBefore = await withStore(() => createPostgresStorage({ connectionString: pgUrl }), async s => ({ list: await s.list(), pictures: await pictures(s) }))
      const text = readFileSync(plain, 'utf8')
      const header = JSON.parse(text.split('\n')[0]!) as Record<string, unknown>
      const bad = {
        truncated: text.slice(0, Math.floor(text.length * 0.8)),
        'truncated.gz': readFileSync(archive).subarray(0, Math.floor(readFileSync(archive).length / 2)),
        'newer-version': [JSON.stringify({ ...header, version: 2 }), ...text.split('\n').slice(1)].join('\n'),
        garbage: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)),
        'not-an-archive': '{"hello":"world"}\n',
        // a version renamed by hand: the checksum no longer matches
        tampered: text.replace('"name":"final"', '"name":"fina1"'),
      }
      const expected: Record<keyof typeof bad, string> = {
        truncated: 'CONCORD_ERR_ARCHIVE_TRUNCATED', 'truncated.gz': 'CONCORD_ERR_ARCHIVE_TRUNCATED', 'newer-version': 'CONCORD_ERR_ARCHIVE_UNSUPPORTED_VERSION',
        garbage: 'CONCORD_ERR_ARCHIVE_MALFORMED', 'not-an-archive': 'CONCORD_ERR_ARCHIVE_MALFORMED', tampered: 'CONCORD_ERR_ARCHIVE_MALFORMED',
      }
      expect(bad.tampered).not.toBe(text)
      for (const [name, content] of Object.entries(bad)) {
        const file = join(tempDir(), name)
        writeFileSync(file, content)
        const emptyDir = join(tempDir(), 'never-created')
        for (const target of [['--store', pgUrl, '--overwrite'], ['--data', emptyDir]]) {
          const r = await concord(['import', ...target, '--in', file])
          expect(r.code, `${name} into ${target[1]}: ${r.stderr}`).toBe(2)
          expect(r.stderr, name).toContain(expected[name as keyof typeof bad])
        }
        expect(existsSync(emptyDir), `${name}: no SQLite store is created for a refused archive`).toBe(false)
      }
      // the same archive again: its documents exist, so it is refused as a whole
      const again = await concord(['import', '--store', pgUrl, '--in', plain])
      expect(again.code).toBe(2)
      expect(again.stderr).toContain('CONCORD_ERR_IMPORT_DOCUMENT_EXISTS')
      const pgAfter = await withStore(() => createPostgresStorage({ connectionString: pgUrl }), async s => ({ list: await s.list(), pictures: await pictures(s) }))
      expect(pgAfter).toEqual(pgBefore)
    } finally {
      for (const c of clients) c.close()
      if (srv !== null && srv.child.exitCode === null) srv.child.kill('SIGKILL')
    }
  }, 180_000)
})
