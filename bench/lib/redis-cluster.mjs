// A real Redis Cluster for tests and benchmarks: redis-server processes (--cluster-enabled yes)
// on free ports of 127.0.0.1 in a temporary directory, joined with `redis-cli --cluster create`,
// stopped by their pids. Shared by the e2e suite (e2e/services/redis.ts) and bench/redis-cluster.mjs.
// Types: redis-cluster.d.mts.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

const REDIS_SERVER = process.env.CONCORD_REDIS_SERVER ?? '/usr/bin/redis-server'
const REDIS_CLI = process.env.CONCORD_REDIS_CLI ?? '/usr/bin/redis-cli'

/** A port nothing listens on now (127.0.0.1). */
function freePort () {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Sends one command to a node with a short deadline; null when it does not answer. */
async function ask (port, ...args) {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1_000, commandTimeout: 2_000, retryStrategy: () => null })
  r.on('error', () => undefined)
  try {
    await r.connect()
    return await r.call(args[0], ...args.slice(1))
  } catch {
    return null
  } finally {
    r.disconnect()
  }
}

async function until (what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== null && v !== false) return v
    if (Date.now() > deadline) throw new Error(`redis cluster: timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/**
 * A Redis Cluster of `masters` masters (default 3) and `replicasPerMaster` replicas each (default 0),
 * every node a `redis-server --cluster-enabled yes` on a free port of 127.0.0.1 without persistence
 * (`--save '' --appendonly no`), in a temporary directory; `--cluster-node-timeout 2000`, so a
 * replica takes over a killed master within a few seconds. Created with `redis-cli --cluster
 * create`; resolves once the cluster is healthy. Only processes it started are ever killed, by pid.
 */
export async function startRedisCluster (options = {}) {
  const masters = options.masters ?? 3
  const replicas = options.replicasPerMaster ?? 0
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000
  for (const bin of [REDIS_SERVER, REDIS_CLI]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: install Debian's redis-server, which brings redis-cli (npm test does it as root: scripts/ensure-system-packages.mjs)`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'concord-redis-cluster-'))
  const states = []
  const startNode = async (state) => {
    const child = spawn(REDIS_SERVER, [
      '--port', String(state.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--dbfilename', `dump-${state.port}.rdb`, '--daemonize', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${state.port}.conf`, '--cluster-node-timeout', String(nodeTimeoutMs),
      // the cluster bus on a free port of its own (by default port + 10000, which may be taken, or past 65535)
      '--cluster-port', String(state.busPort),
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    for (const s of [child.stdout, child.stderr]) s.on('data', d => { output = (output + d).slice(-2000) })
    state.child = child
    await until(`redis-server on port ${state.port} to answer PING`, 10_000, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${state.port} exited (${child.exitCode}): ${output.trim().split('\n').slice(-2).join(' | ')}`)
      return (await ask(state.port, 'PING')) === 'PONG'
    })
  }
  const killNode = async (state) => {
    const c = state.child
    state.child = null
    if (c === null || c.exitCode !== null || c.signalCode !== null) return
    const exited = new Promise(resolve => c.once('exit', resolve))
    c.kill('SIGKILL')
    await exited
  }
  const stopAll = async () => {
    await Promise.all(states.map(killNode))
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    const total = masters * (1 + replicas)
    const taken = new Set()
    const port = async () => {
      let p
      // a port another node of this cluster took is not taken twice
      do p = await freePort()
      while (taken.has(p))
      taken.add(p)
      return p
    }
    for (let i = 0; i < total; i++) states.push({ port: await port(), busPort: await port(), id: '', child: null })
    // a port found free may be taken by another process before redis-server binds it: such a node
    // starts again on new ports (three times at most)
    await Promise.all(states.map(async state => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await startNode(state)
        } catch (err) {
          if (attempt >= 3 || !/Address already in use/.test(err.message)) throw err
          state.port = await port()
          state.busPort = await port()
        }
      }
    }))
    for (const s of states) s.id = String(await ask(s.port, 'CLUSTER', 'MYID'))
    const create = spawnSync(REDIS_CLI, ['--cluster', 'create', ...states.map(s => `127.0.0.1:${s.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8', timeout: 60_000 })
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed (${create.status ?? create.signal}): ${create.stderr || create.stdout}`)
  } catch (err) {
    await stopAll()
    throw err
  }

  const nodes = states.map(s => ({ port: s.port, id: s.id, pid: () => s.child?.pid ?? null }))
  const stateOf = (node) => {
    const s = states.find(x => x.port === node.port)
    if (s === undefined) throw new Error(`port ${node.port} is no node of this cluster`)
    return s
  }
  const running = () => states.filter(s => s.child !== null && s.child.exitCode === null && s.child.signalCode === null)
  /** CLUSTER SHARDS of a running node: per shard, its slot ranges and its nodes (id, port, role, health). */
  const shards = async () => {
    for (const s of running()) {
      const reply = await ask(s.port, 'CLUSTER', 'SHARDS')
      if (!Array.isArray(reply)) continue
      return reply.map((shard) => {
        const f = fields(shard)
        const ranges = f.slots
        const slots = []
        for (let i = 0; i + 1 < ranges.length; i += 2) slots.push([Number(ranges[i]), Number(ranges[i + 1])])
        return {
          slots,
          nodes: f.nodes.map(n => {
            const g = fields(n)
            return { id: String(g.id), port: Number(g.port), role: String(g.role), health: String(g.health), offset: Number(g['replication-offset']) }
          }),
        }
      })
    }
    return null
  }
  let version = ''
  try { version = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' }).stdout.trim().split(' ').slice(0, 3).join(' ') } catch {}

  const cluster = {
    url: `redis+cluster://${states.map(s => `127.0.0.1:${s.port}`).join(',')}`,
    nodes,
    version,
    async masters() {
      const list = await shards()
      if (list === null) throw new Error('redis cluster: no node answers CLUSTER SHARDS')
      const out = []
      for (const shard of list) {
        const master = shard.nodes.find(n => n.role === 'master' && n.health === 'online')
        if (master !== undefined && shard.slots.length > 0) out.push({ node: nodes.find(n => n.id === master.id), slots: shard.slots })
      }
      return out
    },
    async masterOf(slot) {
      const found = (await cluster.masters()).find(m => m.slots.some(([a, b]) => slot >= a && slot <= b))
      if (found === undefined) throw new Error(`redis cluster: no running master serves slot ${slot}`)
      return found.node
    },
    kill: node => killNode(stateOf(node)),
    restart: node => startNode(stateOf(node)),
    async waitHealthy({ timeoutMs = 30_000, replicas: withReplicas = false } = {}) {
      const what = `every node to say cluster_state:ok, every slot on a running master${withReplicas ? ', every master with a linked replica' : ''}`
      await until(what, timeoutMs, async () => {
        const live = running()
        for (const s of live) {
          const info = await ask(s.port, 'CLUSTER', 'INFO')
          if (typeof info !== 'string' || !info.includes('cluster_state:ok')) return false
        }
        const list = await shards()
        if (list === null) return false
        let covered = 0
        for (const shard of list) {
          if (shard.slots.length === 0) continue
          const master = shard.nodes.find(n => n.role === 'master' && n.health === 'online')
          if (master === undefined || !live.some(s => s.port === master.port)) return false
          for (const [a, b] of shard.slots) covered += b - a + 1
          if (withReplicas) {
            const replica = shard.nodes.find(n => n.role === 'replica' && n.health === 'online' && live.some(s => s.port === n.port))
            if (replica === undefined) return false
            // the replica's link to its master is up
            const role = await ask(replica.port, 'ROLE')
            if (!Array.isArray(role) || role[3] !== 'connected') return false
          }
        }
        return covered === 16_384
      })
    },
    connect(node) {
      const r = new Redis({ port: node.port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
      r.on('error', () => undefined)
      return r
    },
    stop: stopAll,
  }
  try {
    await cluster.waitHealthy({ timeoutMs: 60_000, replicas: replicas > 0 })
  } catch (err) {
    await stopAll()
    throw err
  }
  return cluster
}

/** A flat [name, value, name, value, …] reply as an object. */
function fields (flat) {
  const out = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]
  return out
}
