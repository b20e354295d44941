import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { RedisTarget } from './redis-url.js'

/** A connection to a region's Redis: ioredis's `Redis`, or its `Cluster` (the same commands; a cluster sends each to the master of its key's slot). */
export type RedisClient = Redis | Cluster

/** What a connection is for; the rest of ioredis's options are chosen here for both kinds. */
export interface RedisClientOptions {
  /** CLIENT SETNAME (on every node of a cluster). */
  connectionName?: string
  lazyConnect?: boolean
  enableOfflineQueue?: boolean
  enableAutoPipelining?: boolean
  /** null: a command waits through reconnections (one server); a cluster retries a command through a failover (see below). */
  maxRetriesPerRequest?: number | null
  commandTimeout?: number
  connectTimeout?: number
  autoResubscribe?: boolean
  retryStrategy?: (times: number) => number | null
}

/**
 * How long a cluster client retries a command whose node went away or whose cluster is down
 * (`CLUSTERDOWN`) before failing it: 32 attempts 200 ms apart, about 6 s, which covers a replica
 * taking over a dead master (`cluster-node-timeout` plus an election) with the usual timeouts of
 * a few seconds. A publication that fails even so is made good by a resync (redis-backplane.ts).
 */
const CLUSTER_RETRY_DELAY_MS = 200
const CLUSTER_MAX_REDIRECTIONS = 32

/** Opens a connection to `target`: one `Redis`, or a `Cluster` routing each command to the master of its key's slot. */
export function createRedisClient(target: RedisTarget, options: RedisClientOptions = {}): RedisClient {
  if (target.kind === 'single') return new Redis(target.url, nodeOptions(options))
  const clusterOptions: ClusterOptions = {
    lazyConnect: options.lazyConnect ?? false,
    enableOfflineQueue: options.enableOfflineQueue ?? true,
    enableAutoPipelining: options.enableAutoPipelining ?? false,
    retryDelayOnFailover: CLUSTER_RETRY_DELAY_MS,
    retryDelayOnClusterDown: CLUSTER_RETRY_DELAY_MS,
    retryDelayOnTryAgain: CLUSTER_RETRY_DELAY_MS,
    maxRedirections: CLUSTER_MAX_REDIRECTIONS,
    ...(options.retryStrategy !== undefined ? { clusterRetryStrategy: options.retryStrategy } : {}),
    redisOptions: { ...authOptions(target), ...nodeOptions({ ...options, lazyConnect: undefined, enableOfflineQueue: undefined, enableAutoPipelining: undefined, retryStrategy: undefined }) },
  }
  return new Cluster(target.seeds, clusterOptions)
}

/** A plain connection to one node of a cluster (`host:port` as the cluster names it), with the cluster's credentials. */
export function createNodeConnection(target: Extract<RedisTarget, { kind: 'cluster' }>, host: string, port: number, options: RedisClientOptions = {}): Redis {
  return new Redis({ host, port, ...authOptions(target), ...nodeOptions(options) })
}

function authOptions(target: Extract<RedisTarget, { kind: 'cluster' }>): RedisOptions {
  return {
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
  }
}

function nodeOptions(options: RedisClientOptions): RedisOptions {
  const out: RedisOptions = {}
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}
