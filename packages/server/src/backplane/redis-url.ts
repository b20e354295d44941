import { ConfigError } from '../config/server-config.js'

// Reading Redis URLs loads no driver: the configuration is checked before anything connects.

/**
 * Where a region's Redis is, read from one URL:
 *
 * - `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS): one Redis server (or a proxy
 *   that looks like one), as before;
 * - `redis+cluster://[user:password@]host:port[,host:port…]` or `rediss+cluster://…`: a Redis
 *   Cluster (Redis 7.0 or later: sharded pub/sub). The hosts are seeds: any reachable one tells
 *   the client every node and which slots it serves. Like PostgreSQL's and MongoDB's multi-host
 *   URLs, one string carries the whole target, so every place that takes a Redis URL (`--redis`,
 *   `CONCORD_REDIS`, a peer region's Redis) takes a cluster too.
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; seeds: { host: string; port: number }[]; username?: string; password?: string; tls: boolean }

const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//i
const SINGLE_SCHEME = /^rediss?:\/\//i

/** Why `url` is no Redis URL Concord takes, or null. */
export function redisUrlProblem(url: string): string | null {
  try {
    parseRedisUrl(url)
    return null
  } catch (err) {
    return (err as Error).message
  }
}

/** Reads a Redis URL (see RedisTarget); throws a ConfigError naming what is wrong. */
export function parseRedisUrl(url: string): RedisTarget {
  const cluster = CLUSTER_SCHEME.exec(url)
  if (cluster === null) {
    if (!SINGLE_SCHEME.test(url)) throw new ConfigError(`invalid Redis URL ${JSON.stringify(redactRedisUrl(url))}: use redis://host:port, or redis+cluster://host:port,host:port,… for a Redis Cluster`)
    return { kind: 'single', url }
  }
  let rest = url.slice(cluster[0].length)
  const slash = rest.indexOf('/')
  if (slash >= 0) {
    // a cluster has one database: nothing may follow but '/' or '/0'
    const path = rest.slice(slash)
    if (path !== '/' && path !== '/0') throw new ConfigError(`invalid Redis Cluster URL: ${JSON.stringify(path)} after the hosts (a cluster has database 0 only, and takes no options in the URL)`)
    rest = rest.slice(0, slash)
  }
  const at = rest.lastIndexOf('@')
  let username: string | undefined
  let password: string | undefined
  if (at >= 0) {
    const auth = rest.slice(0, at)
    rest = rest.slice(at + 1)
    const colon = auth.indexOf(':')
    const user = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth)
    if (user !== '') username = user
    if (colon >= 0) password = decodeURIComponent(auth.slice(colon + 1))
  }
  const seeds: { host: string; port: number }[] = []
  for (const part of rest.split(',')) {
    const hostPort = part.trim()
    if (hostPort === '') continue
    const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(hostPort)
    const port = m?.[2] === undefined ? 6379 : Number(m[2])
    if (m === null || port < 1 || port > 65_535) throw new ConfigError(`invalid Redis Cluster URL: ${JSON.stringify(hostPort)} is not host:port`)
    seeds.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port })
  }
  if (seeds.length === 0) throw new ConfigError('invalid Redis Cluster URL: name at least one node (redis+cluster://host:port,host:port,…)')
  return { kind: 'cluster', seeds, ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}), tls: cluster[1]!.toLowerCase() === 'rediss' }
}

/** The URL with its password replaced by `***` (for logs). */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@')
}

/** The CRC16 (XMODEM) table of Redis Cluster's key hashing. */
const CRC16 = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i << 8
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff
    table[i] = c
  }
  return table
})()

/**
 * The cluster slot of a key or shard channel, as Redis computes it: CRC16 of the key modulo 16384,
 * or of its hash tag (what is between the first `{` and the first `}` after it, when not empty).
 */
export function keySlot(key: string | Buffer): number {
  let bytes = typeof key === 'string' ? Buffer.from(key) : key
  const open = bytes.indexOf(0x7b)
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) bytes = bytes.subarray(open + 1, close)
  }
  let crc = 0
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ b) & 0xff]!
  return crc & 0x3fff
}
