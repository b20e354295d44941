import { randomBytes } from 'node:crypto'
import { pino, type Logger } from 'pino'
import { ConcordError } from '@concord/protocol'
import { ConfigError } from '../config/server-config.js'
import { compareStreamIds } from './doc-streams.js'
import { createRedisClient, type RedisClient } from './redis-connection.js'
import { parseRedisUrl } from './redis-url.js'

/** What a node says about itself in its heartbeat (the figures the dashboard shows per node). */
export interface NodeStatus {
  nodeId: string
  /** The node's region (`--region`), or null. */
  region: string | null
  /** The server's version. */
  version: string
  /** When the node started listening (ms since the epoch, its clock). */
  startedAt: number
  /** Where the node listens (http://host:port), when known. */
  httpUrl: string | null
  connections: number
  sessions: number
  documentsLoaded: number
  rssBytes: number
  heapUsedBytes: number
  /** Process CPU over the last sampling interval (100 = one core), or null before the first one. */
  cpuPercent: number | null
  /** Event-loop delay over the last sampling interval (p99, ms), or null before the first one. */
  eventLoopDelayMs: number | null
  updatesPerSecond: number
  /** This node's link to each peer region (does it ship to it, did its last attempt reach it). */
  peers: { peer: string; shipping: boolean; linkUp: boolean | null }[]
  /** When the node published this heartbeat (ms since the epoch, its clock). */
  at: number
}

/** What the node's `describe` gives each heartbeat: its status without the id and time the directory adds. */
export type NodeFigures = Omit<NodeStatus, 'nodeId' | 'at'>

/** The answers to one `ask`: by node id, and the live nodes that did not answer in time (or failed). */
export interface QueryAnswers {
  answers: Map<string, unknown>
  /** The other nodes the directory listed when the question went out. */
  asked: string[]
  missing: string[]
}

/**
 * The live nodes of a region (the nodes that share one Redis) and questions to all of them.
 * `RedisNodeDirectory` implements it; the composition root starts it once the node listens.
 */
export interface NodeDirectory {
  /** Starts heartbeats (every `heartbeatIntervalMs`) and answering questions, as node `self.nodeId`. */
  start(self: { nodeId: string; describe: () => NodeFigures | Promise<NodeFigures> }): void
  /** The nodes whose heartbeat is live, this one included once it published, in id order. */
  list(): Promise<NodeStatus[]>
  /** How this node answers questions of `kind` (the answer is sent as JSON). */
  onQuery(kind: string, answer: (args: unknown) => unknown): void
  /** Asks every other live node; resolves when all answered or after `timeoutMs` (default `queryTimeoutMs`). */
  ask(kind: string, args: unknown, options?: { timeoutMs?: number }): Promise<QueryAnswers>
  /** Stops, and removes this node's entry (the others stop listing it at once). */
  close(): Promise<void>
}

export interface NodeDirectoryOptions {
  /** redis://host:port, or redis+cluster://host:port,…: the region's Redis (the backplane's). */
  url: string
  logger?: Logger
  /** Default 2,000 ms. */
  heartbeatIntervalMs?: number
  /** How long a heartbeat keeps a node listed (default three heartbeats). */
  ttlMs?: number
  /** How long `ask` waits for the other nodes (default 1,000 ms). */
  queryTimeoutMs?: number
  /** Questions of this node in flight at once (default 32; more are refused). */
  maxPendingQueries?: number
  /** Nodes listed at most (default 1,000). */
  maxNodes?: number
  /** The largest answer sent, as JSON (default 16 MiB; a larger one is sent as an error). */
  maxAnswerBytes?: number
  /**
   * Prefix of every key (default `concord:`; on a Redis Cluster `concord:{nodes}:`, whose hash tag
   * puts every key of the directory in one slot, as its scripts and multi-key reads need: a
   * prefix given for a cluster must hold a hash tag too).
   */
  keyPrefix?: string
}

/** A node's directory on Redis. */
export function createNodeDirectory(options: NodeDirectoryOptions): NodeDirectory {
  return new RedisNodeDirectory(options)
}

/**
 * Heartbeat: replaces the node's hash, sets its TTL, and keeps the index (a sorted set of node ids by
 * expiry, in Redis's clock) free of expired ids. KEYS: hash, index, inbox. ARGV: ttl ms, node id, fields.
 */
const HEARTBEAT = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
return now`

/** The live node ids: expired ones removed from the index first. KEYS: index. ARGV: max nodes. */
const LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)`

interface Pending {
  waitingFor: Set<string>
  answers: Map<string, unknown>
  failed: Set<string>
  done: () => void
}

type StreamReply = [string, [string, string[]][]][] | null

/**
 * Keys (prefix `concord:`, on a cluster `concord:{nodes}:`): `node:<id>`, a hash per node with a TTL of a few heartbeats;
 * `nodes`, the index of live ids; `node-requests`, a stream of questions every node reads
 * (trimmed to about 1,000); `node-inbox:<id>`, a stream per node of the answers to its questions
 * (each answer deleted once read; trimmed to about 100; expiring with the node). Two connections: one for commands, one that
 * waits in XREAD on the questions and this node's inbox.
 */
export class RedisNodeDirectory implements NodeDirectory {
  readonly #cmd: RedisClient
  readonly #read: RedisClient
  readonly #log: Logger
  readonly #heartbeatMs: number
  readonly #ttlMs: number
  readonly #queryTimeoutMs: number
  readonly #maxPending: number
  readonly #maxNodes: number
  readonly #maxAnswerBytes: number
  readonly #prefix: string
  readonly #handlers = new Map<string, (args: unknown) => unknown>()
  readonly #pending = new Map<string, Pending>()
  #self: { nodeId: string; describe: () => NodeFigures | Promise<NodeFigures> } | null = null
  #timer: NodeJS.Timeout | null = null
  #loop: Promise<void> | null = null
  #closed = false
  #requestsFrom: string | null = null
  #inboxFrom = '0-0'
  /** A cluster node's connection ended: the streams may have gone back (a promoted replica lacks the last entries). */
  #lapsed = false
  #heartbeating: Promise<void> | null = null

  constructor(options: NodeDirectoryOptions) {
    this.#log = options.logger ?? pino({ level: 'silent' })
    this.#heartbeatMs = positive(options.heartbeatIntervalMs, 2_000, 'heartbeatIntervalMs')
    this.#ttlMs = positive(options.ttlMs, 3 * this.#heartbeatMs, 'ttlMs')
    this.#queryTimeoutMs = positive(options.queryTimeoutMs, 1_000, 'queryTimeoutMs')
    this.#maxPending = positive(options.maxPendingQueries, 32, 'maxPendingQueries')
    this.#maxNodes = positive(options.maxNodes, 1_000, 'maxNodes')
    this.#maxAnswerBytes = positive(options.maxAnswerBytes, 16 * 1024 * 1024, 'maxAnswerBytes')
    const target = parseRedisUrl(options.url)
    this.#prefix = options.keyPrefix ?? (target.kind === 'cluster' ? 'concord:{nodes}:' : 'concord:')
    if (target.kind === 'cluster' && !/^[^{]*\{[^}]+\}/.test(this.#prefix)) {
      throw new ConfigError(`keyPrefix ${JSON.stringify(this.#prefix)} needs a hash tag on a Redis Cluster (as in the default, concord:{nodes}:): the directory's keys must share one slot`)
    }
    const common = { lazyConnect: true, retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2_000) }
    // commands fail at once while Redis is away (an admin request answers with what this node
    // knows instead of waiting), and after a second when it does not answer
    this.#cmd = createRedisClient(target, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1_000 })
    this.#read = createRedisClient(target, { ...common, maxRetriesPerRequest: null })
    for (const r of [this.#cmd, this.#read]) r.on('error', (err: Error) => this.#log.debug({ err: err.message }, 'node directory: redis connection error'))
    this.#cmd.defineCommand('concordHeartbeat', { numberOfKeys: 3, lua: HEARTBEAT })
    this.#cmd.defineCommand('concordLiveNodes', { numberOfKeys: 1, lua: LIVE })
    // after a reconnect Redis may have restarted empty: read the questions from their end again,
    // the inbox from its start, and publish at once
    let readyOnce = false
    this.#read.on('ready', () => {
      if (readyOnce) {
        this.#requestsFrom = null
        this.#inboxFrom = '0-0'
      }
      readyOnce = true
    })
    // on a cluster, the directory's master may fail over (its replica may lack the last entries)
    // while the cluster client stays ready: a node connection that ended may have been it
    if (target.kind === 'cluster') this.#read.on('-node', () => { this.#lapsed = true })
    this.#cmd.on('ready', () => { if (this.#self !== null) void this.#heartbeat() })
  }

  start(self: { nodeId: string; describe: () => NodeFigures | Promise<NodeFigures> }): void {
    if (this.#self !== null || this.#closed) return
    this.#self = self
    this.#cmd.connect().catch(() => undefined)
    this.#read.connect().catch(() => undefined)
    this.#timer = setInterval(() => { void this.#heartbeat() }, this.#heartbeatMs)
    this.#timer.unref()
    this.#loop = this.#readLoop()
  }

  onQuery(kind: string, answer: (args: unknown) => unknown): void {
    this.#handlers.set(kind, answer)
  }

  async list(): Promise<NodeStatus[]> {
    const ids = await this.#command(() => (this.#cmd as RedisWithScripts).concordLiveNodes(this.#key('nodes'), this.#maxNodes))
    if (ids.length === 0) return []
    const pipeline = this.#cmd.pipeline()
    for (const id of ids) pipeline.hgetall(this.#key(`node:${id}`))
    const replies = await this.#command(() => pipeline.exec())
    const out: NodeStatus[] = []
    ids.forEach((id, i) => {
      const [err, hash] = replies?.[i] ?? [null, null]
      if (err !== null || hash === null || typeof hash !== 'object') return
      const status = parseStatus(id, hash as Record<string, string>)
      if (status !== null) out.push(status)
    })
    return out.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
  }

  async ask(kind: string, args: unknown, options: { timeoutMs?: number } = {}): Promise<QueryAnswers> {
    const self = this.#self
    if (self === null || this.#closed) throw new ConcordError('CONCORD_ERR_BACKPLANE_UNAVAILABLE', 'the node directory is not running')
    if (this.#pending.size >= this.#maxPending) {
      throw new ConcordError('CONCORD_ERR_BACKPLANE_UNAVAILABLE', `${this.#pending.size} questions to the other nodes are in flight already; try again`)
    }
    const others = (await this.list()).map(n => n.nodeId).filter(id => id !== self.nodeId)
    if (others.length === 0) return { answers: new Map(), asked: [], missing: [] }
    const id = randomBytes(8).toString('hex')
    let done!: () => void
    const finished = new Promise<void>(resolve => { done = resolve })
    const pending: Pending = { waitingFor: new Set(others), answers: new Map(), failed: new Set(), done }
    this.#pending.set(id, pending)
    const timer = setTimeout(done, options.timeoutMs ?? this.#queryTimeoutMs)
    try {
      await this.#command(() => this.#cmd.xadd(this.#key('node-requests'), 'MAXLEN', '~', '1000', '*', 'n', self.nodeId, 'q', id, 'k', kind, 'a', JSON.stringify(args ?? null)))
      await finished
    } finally {
      clearTimeout(timer)
      this.#pending.delete(id)
    }
    return { answers: pending.answers, asked: others, missing: others.filter(n => !pending.answers.has(n)) }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    for (const p of this.#pending.values()) p.done()
    this.#read.disconnect()
    await settledWithin(this.#loop, 1_000)
    await settledWithin(this.#heartbeating, 1_000)
    const self = this.#self
    if (self !== null && this.#cmd.status === 'ready') {
      // the other nodes stop listing this one now rather than when its heartbeat expires
      await settledWithin(this.#cmd.multi()
        .del(this.#key(`node:${self.nodeId}`), this.#key(`node-inbox:${self.nodeId}`))
        .zrem(this.#key('nodes'), self.nodeId)
        .exec(), 1_000)
    }
    // QUIT waits for a reply: with Redis gone it would wait for the reconnect
    if (this.#cmd.status === 'ready') await settledWithin(this.#cmd.quit(), 1_000)
    this.#cmd.disconnect()
  }

  #key(name: string): string {
    return this.#prefix + name
  }

  /** A Redis command, its failure as CONCORD_ERR_BACKPLANE_UNAVAILABLE (the driver's error as cause). */
  async #command<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      throw new ConcordError('CONCORD_ERR_BACKPLANE_UNAVAILABLE', `the node directory cannot reach Redis: ${(err as Error).message}`, { cause: err })
    }
  }

  #heartbeat(): Promise<void> {
    // one at a time: a slow Redis gets the next one after this one
    this.#heartbeating ??= this.#publish().finally(() => { this.#heartbeating = null })
    return this.#heartbeating
  }

  async #publish(): Promise<void> {
    const self = this.#self
    // a node is listed only once it reads the questions: every listed node can answer
    if (self === null || this.#closed || this.#cmd.status !== 'ready' || this.#requestsFrom === null) return
    let fields: string[]
    try {
      fields = statusFields({ ...await self.describe(), nodeId: self.nodeId, at: Date.now() })
    } catch (err) {
      this.#log.warn({ err }, 'node directory: describing this node failed; no heartbeat this time')
      return
    }
    try {
      await (this.#cmd as RedisWithScripts).concordHeartbeat(
        this.#key(`node:${self.nodeId}`), this.#key('nodes'), this.#key(`node-inbox:${self.nodeId}`), this.#ttlMs, self.nodeId, ...fields)
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'node directory: heartbeat failed; next one in a moment')
    }
  }

  async #readLoop(): Promise<void> {
    const self = this.#self!
    const requests = this.#key('node-requests')
    const inbox = this.#key(`node-inbox:${self.nodeId}`)
    while (!this.#closed) {
      if (this.#read.status !== 'ready') {
        await delay(100)
        continue
      }
      try {
        if (this.#requestsFrom === null) {
          const last = await this.#read.xrevrange(requests, '+', '-', 'COUNT', 1)
          this.#requestsFrom = last.length > 0 ? last[0]![0] : '0-0'
          void this.#heartbeat()
        }
        if (this.#lapsed) {
          // entries after a stream's end now are new, even with ids below where this node read (the new master's clock may be behind)
          this.#lapsed = false
          const [lastRequest, lastAnswer] = await Promise.all([requests, inbox].map(key => this.#read.xrevrange(key, '+', '-', 'COUNT', 1)))
          const end = (last: [string, string[]][] | undefined): string => last?.[0]?.[0] ?? '0-0'
          if (compareStreamIds(end(lastRequest), this.#requestsFrom) < 0) this.#requestsFrom = end(lastRequest)
          if (compareStreamIds(end(lastAnswer), this.#inboxFrom) < 0) this.#inboxFrom = end(lastAnswer)
        }
        const reply = await this.#read.xread('COUNT', 16, 'BLOCK', 1_000, 'STREAMS', requests, inbox, this.#requestsFrom, this.#inboxFrom) as StreamReply
        for (const [key, entries] of reply ?? []) {
          // answers are read once: removed at once, so the inbox holds only unread ones (they may be megabytes)
          if (key === inbox && entries.length > 0) this.#cmd.xdel(inbox, ...entries.map(([entryId]) => entryId)).catch(() => undefined)
          for (const [entryId, fields] of entries) {
            const f = fieldsOf(fields)
            if (key === inbox) {
              this.#inboxFrom = entryId
              this.#answered(f)
            } else {
              this.#requestsFrom = entryId
              if (f.n !== undefined && f.n !== self.nodeId) await this.#answer(self.nodeId, f)
            }
          }
        }
      } catch (err) {
        if (this.#closed) return
        this.#log.debug({ err: (err as Error).message }, 'node directory: reading questions failed; retrying')
        await delay(200)
      }
    }
  }

  /** Answers another node's question into its inbox. */
  async #answer(nodeId: string, f: Record<string, string>): Promise<void> {
    const { n: asker, q: id, k: kind } = f
    if (asker === undefined || id === undefined || kind === undefined) return
    let field: 'r' | 'e' = 'r'
    let body: string
    try {
      const handler = this.#handlers.get(kind)
      if (handler === undefined) throw new Error(`this node does not answer ${JSON.stringify(kind)}`)
      body = JSON.stringify(await handler(JSON.parse(f.a ?? 'null')) ?? null)
      if (body.length > this.#maxAnswerBytes) throw new Error(`the answer is ${body.length} bytes, over ${this.#maxAnswerBytes}`)
    } catch (err) {
      field = 'e'
      body = (err as Error).message
      this.#log.warn({ err, kind, asker }, 'node directory: answering another node failed')
    }
    const inbox = this.#key(`node-inbox:${asker}`)
    try {
      await this.#cmd.multi()
        .xadd(inbox, 'MAXLEN', '~', '100', '*', 'n', nodeId, 'q', id, field, body)
        .pexpire(inbox, this.#ttlMs)
        .exec()
    } catch (err) {
      this.#log.debug({ err: (err as Error).message, asker }, 'node directory: sending an answer failed')
    }
  }

  #answered(f: Record<string, string>): void {
    const pending = f.q === undefined ? undefined : this.#pending.get(f.q)
    const from = f.n
    if (pending === undefined || from === undefined || pending.answers.has(from) || pending.failed.has(from)) return
    if (f.e !== undefined) {
      pending.failed.add(from)
      this.#log.warn({ node: from, error: f.e }, 'node directory: another node could not answer')
    } else {
      try {
        pending.answers.set(from, JSON.parse(f.r ?? 'null'))
      } catch {
        pending.failed.add(from)
      }
    }
    pending.waitingFor.delete(from)
    if (pending.waitingFor.size === 0) pending.done()
  }
}

type RedisWithScripts = RedisClient & {
  concordHeartbeat(hash: string, index: string, inbox: string, ttlMs: number, nodeId: string, ...fields: string[]): Promise<number>
  concordLiveNodes(index: string, max: number): Promise<string[]>
}

const NUMBER_FIELDS = ['startedAt', 'connections', 'sessions', 'documentsLoaded', 'rssBytes', 'heapUsedBytes', 'updatesPerSecond', 'at'] as const
const NULLABLE_NUMBER_FIELDS = ['cpuPercent', 'eventLoopDelayMs'] as const

/** A status as hash fields (numbers as decimal strings, null as '', peers as JSON). */
export function statusFields(s: NodeStatus): string[] {
  const out: string[] = ['nodeId', s.nodeId, 'region', s.region ?? '', 'version', s.version, 'httpUrl', s.httpUrl ?? '', 'peers', JSON.stringify(s.peers)]
  for (const k of NUMBER_FIELDS) out.push(k, String(s[k]))
  for (const k of NULLABLE_NUMBER_FIELDS) out.push(k, s[k] === null ? '' : String(s[k]))
  return out
}

/** A node's hash back to a status (null when it is not one: another program's key, or emptied). */
export function parseStatus(nodeId: string, h: Record<string, string>): NodeStatus | null {
  if (h.nodeId !== nodeId || h.version === undefined) return null
  const num = (v: string | undefined): number => {
    const n = Number(v)
    return v !== undefined && v !== '' && Number.isFinite(n) ? n : 0
  }
  const nullable = (v: string | undefined): number | null => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v))
  let peers: NodeStatus['peers'] = []
  try {
    const parsed: unknown = JSON.parse(h.peers ?? '[]')
    if (Array.isArray(parsed)) {
      peers = parsed.filter((p): p is Record<string, unknown> => typeof p === 'object' && p !== null && typeof p.peer === 'string')
        .map(p => ({ peer: p.peer as string, shipping: p.shipping === true, linkUp: typeof p.linkUp === 'boolean' ? p.linkUp : null }))
    }
  } catch { /* not JSON: no peers */ }
  return {
    nodeId, region: h.region === '' || h.region === undefined ? null : h.region, version: h.version,
    startedAt: num(h.startedAt), httpUrl: h.httpUrl === '' || h.httpUrl === undefined ? null : h.httpUrl,
    connections: num(h.connections), sessions: num(h.sessions), documentsLoaded: num(h.documentsLoaded),
    rssBytes: num(h.rssBytes), heapUsedBytes: num(h.heapUsedBytes), cpuPercent: nullable(h.cpuPercent),
    eventLoopDelayMs: nullable(h.eventLoopDelayMs), updatesPerSecond: num(h.updatesPerSecond), peers, at: num(h.at),
  }
}

function fieldsOf(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!
  return out
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`${name} must be a positive number`)
  return value
}

function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Waits for `promise` to settle, at most `ms` (whatever it settles to). */
async function settledWithin(promise: Promise<unknown> | null, ms: number): Promise<void> {
  if (promise === null) return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([promise.then(() => undefined, () => undefined), new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}
