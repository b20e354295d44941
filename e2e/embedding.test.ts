import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { execFile } from 'node:child_process'
import { createDatabase, startPostgres, type PostgresServer } from './services/postgres.js'
import { startRedis, type RedisServer } from './services/redis.js'

// docs/embedding.md is what a developer copies: each of its `js` examples is run as written, with
// Node, against the built packages (SQLite, then a real PostgreSQL and Redis for the cluster).
const DOC = readFileSync(new URL('../docs/embedding.md', import.meta.url), 'utf8')

function example(name: string): string {
  for (const m of DOC.matchAll(/```js\n([\s\S]*?)```/g)) {
    if (m[1]!.startsWith(`// example: ${name}\n`)) return m[1]!
  }
  throw new Error(`docs/embedding.md has no js block starting with "// example: ${name}"`)
}

/** Runs an example from a file inside the repository (so `@concord/*` resolve), and returns its output. */
function run(name: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = fileURLToPath(new URL(`./fixtures/.embedding-${name}-${process.pid}.mjs`, import.meta.url))
  writeFileSync(file, example(name))
  return new Promise(resolve => {
    execFile(process.execPath, [file], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      rmSync(file, { force: true })
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? null, stdout, stderr })
    })
  })
}

let postgres: PostgresServer
let redis: RedisServer
beforeAll(async () => {
  ;[postgres, redis] = await Promise.all([startPostgres(), startRedis()])
})
afterAll(async () => {
  await Promise.all([postgres?.stop(), redis?.stop()])
})

describe('docs/embedding.md runs as written', () => {
  it('one node on SQLite: a client in the same process saves a document', async () => {
    const r = await run('single-node', {})
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('saved: Hello from an embedded Concord')
  })

  it('a cluster of two nodes on PostgreSQL and Redis: what a client writes on node A reaches a client on node B', async () => {
    const database = await createDatabase(postgres, 'embedding')
    const r = await run('cluster', { DATABASE_URL: database, REDIS_URL: redis.url })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('node B sees: ["written on node A"]')
  })
})
