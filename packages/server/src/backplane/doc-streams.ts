import type { ChainableCommander } from 'ioredis'
import type { RedisClient } from './redis-connection.js'
import type { RedisTarget } from './redis-url.js'

/**
 * The format of a region's Redis, shared by the backplane (its nodes) and the region replicator
 * (a peer region announcing what it shipped):
 *
 * - `concord:doc:<name>`, a stream per document: entries `n` (the node that wrote it) and one of
 *   `u` (a Yjs update, with `w` its writer, `p` the origin's relay id when it was relayed before its
 *   append committed, `t` its traceparent), `d` (relay ids now durable, comma-separated), `a` (an
 *   awareness update), `s` (a stateless message) or `r` (a resync marker);
 * - `concord:live:<name>`, a channel per document: every entry is also published there, as
 *   `<stream id>\n` followed by its fields, each `<byte length>:<bytes>`, in one script with the
 *   XADD, so the channel's order is the stream's. Nodes hear entries on the channel (a pushed message
 *   costs the reader no command) and read the stream to catch up (after subscribing, after a
 *   reconnection) and to look back (`position`);
 * - `concord:control`, one stream for what every node must hear (revocations, kicks, deletions).
 *
 * On a Redis Cluster (`redis+cluster://`, see `CLUSTER_LAYOUT`) the same entries go under names
 * whose hash tag puts a document's stream and channel in one slot, and the channel is a shard
 * channel (SPUBLISH): each document's traffic stays on the one master that serves its slot.
 */
export const DOC_STREAM_PREFIX = 'concord:doc:'
export const DOC_CHANNEL_PREFIX = 'concord:live:'
export const CONTROL_STREAM = 'concord:control'
/** Entries kept per document stream by default (at least; trimming is approximate). */
export const DEFAULT_STREAM_MAX_LEN = 10_000

/** Where a document's entries go on one kind of Redis. */
export interface StreamLayout {
  /** A Redis Cluster: shard channels (SSUBSCRIBE, SPUBLISH), and no command may span two slots. */
  readonly cluster: boolean
  /** The document's stream. */
  stream(document: string): string
  /** The document's channel (a shard channel on a cluster), in the stream's slot. */
  channel(document: string): string
  /** The control stream (revocations, kicks, deletions): one key. */
  readonly control: string
}

/** One Redis server: the names above (unchanged since 0.1, so nodes of older versions and peer regions still hear each other). */
export const SINGLE_LAYOUT: StreamLayout = Object.freeze({
  cluster: false,
  stream: (document: string) => DOC_STREAM_PREFIX + document,
  channel: (document: string) => DOC_CHANNEL_PREFIX + document,
  control: CONTROL_STREAM,
})

/**
 * A Redis Cluster: `concord:{doc:<name>}:stream` and the shard channel `concord:{doc:<name>}:live`.
 * Redis hashes only the hash tag, the text between the first `{` and the next `}`: `doc:<name>`,
 * never empty, and the same for both names whatever the document's name holds (a name with a `}`
 * is hashed up to it), so the announce script's stream and channel are always in one slot, and
 * documents spread over the slots by name. The control stream is one key, on one slot.
 */
export const CLUSTER_LAYOUT: StreamLayout = Object.freeze({
  cluster: true,
  stream: (document: string) => `concord:{doc:${document}}:stream`,
  channel: (document: string) => `concord:{doc:${document}}:live`,
  control: CONTROL_STREAM,
})

export function layoutOf(target: RedisTarget): StreamLayout {
  return target.kind === 'cluster' ? CLUSTER_LAYOUT : SINGLE_LAYOUT
}

/** XADD, then publish on the channel (ARGV[2]) with `publish` (PUBLISH, or SPUBLISH on a cluster: the same slot as the stream). */
const announceScript = (publish: 'PUBLISH' | 'SPUBLISH'): string => `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
local parts = { id, '\\n' }
for i = 3, #ARGV do
  parts[#parts + 1] = #ARGV[i] .. ':'
  parts[#parts + 1] = ARGV[i]
end
redis.call('${publish}', ARGV[2], table.concat(parts))
return id`

interface Announcer {
  concordAnnounce(key: string, maxLen: string, channel: string, ...fields: (string | Buffer)[]): Promise<string>
  concordAnnounceSharded(key: string, maxLen: string, channel: string, ...fields: (string | Buffer)[]): Promise<string>
}

/** Teaches a connection the announce scripts (EVALSHA, loaded again by ioredis when Redis lost it). */
export function defineAnnounce(redis: RedisClient): void {
  redis.defineCommand('concordAnnounce', { numberOfKeys: 1, lua: announceScript('PUBLISH') })
  redis.defineCommand('concordAnnounceSharded', { numberOfKeys: 1, lua: announceScript('SPUBLISH') })
}

/**
 * Appends an entry to a document's stream and publishes it on the document's channel, in one
 * command. `redis` (or the pipeline's connection) must have had `defineAnnounce`.
 */
export function announce(redis: RedisClient | ChainableCommander, layout: StreamLayout, document: string, maxLen: number, fields: (string | Buffer)[]): Promise<string> | ChainableCommander {
  const announcer = redis as unknown as Announcer
  const key = layout.stream(document)
  const channel = layout.channel(document)
  return layout.cluster
    ? announcer.concordAnnounceSharded(key, String(maxLen), channel, ...fields)
    : announcer.concordAnnounce(key, String(maxLen), channel, ...fields)
}

/** A message of a document's channel: the entry's stream id and its fields (name, value, …), or null when malformed. */
export function decodeAnnouncement(message: Buffer): { id: string; fields: Buffer[] } | null {
  const nl = message.indexOf(10)
  if (nl <= 0) return null
  const id = message.toString('latin1', 0, nl)
  const fields: Buffer[] = []
  let i = nl + 1
  while (i < message.length) {
    let len = 0
    let digits = 0
    while (i < message.length && message[i] !== 58) {
      const c = message[i]! - 48
      if (c < 0 || c > 9 || ++digits > 10) return null
      len = len * 10 + c
      i++
    }
    if (digits === 0 || i >= message.length || i + 1 + len > message.length) return null
    i++
    fields.push(message.subarray(i, i + len))
    i += len
  }
  return fields.length % 2 === 0 ? { id, fields } : null
}

export interface ParsedEntry {
  node: string
  update: Buffer | null
  writer: string | null
  presence: Buffer | null
  resync: boolean
  /** The origin's relay id of an update relayed before it was durable. */
  relay: string | null
  /** Relay ids of the node's updates that are durable now. */
  durable: string[] | null
  /** The W3C traceparent of the edit on its origin ('t'). */
  trace: string | null
  /** A stateless message of a session on the writing node ('s'). */
  stateless: string | null
}

export function parseEntry(fields: Buffer[]): ParsedEntry {
  const entry: ParsedEntry = { node: '', update: null, writer: null, presence: null, resync: false, relay: null, durable: null, trace: null, stateless: null }
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString()
    const value = fields[i + 1]!
    if (name === 'n') entry.node = value.toString()
    else if (name === 'u') entry.update = value
    else if (name === 'r') entry.resync = true
    else if (name === 'a') entry.presence = value
    else if (name === 'w') entry.writer = value.toString()
    else if (name === 'p') entry.relay = value.toString()
    else if (name === 'd') entry.durable = value.toString().split(',')
    else if (name === 't') entry.trace = value.toString()
    else if (name === 's') entry.stateless = value.toString()
  }
  return entry
}

const MAX_STREAM_SEQ = 2n ** 64n - 1n

/** The stream id just before `id` (reading after it returns `id` first). */
export function previousStreamId(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-')
  if (BigInt(seq) > 0n) return `${ms}-${BigInt(seq) - 1n}`
  return BigInt(ms) > 0n ? `${BigInt(ms) - 1n}-${MAX_STREAM_SEQ}` : '0-0'
}

/** The stream id just after `id`. */
export function nextStreamId(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-')
  return BigInt(seq) < MAX_STREAM_SEQ ? `${ms}-${BigInt(seq) + 1n}` : `${BigInt(ms) + 1n}-0`
}

/** Orders two stream ids (`<ms>-<seq>`). */
export function compareStreamIds(a: string, b: string): number {
  const ad = a.indexOf('-')
  const bd = b.indexOf('-')
  const am = ad < 0 ? a : a.slice(0, ad)
  const bm = bd < 0 ? b : b.slice(0, bd)
  const as = ad < 0 ? '0' : a.slice(ad + 1)
  const bs = bd < 0 ? '0' : b.slice(bd + 1)
  // decimal strings without leading zeros: the longer is the larger, else compare as text
  const ms = am.length - bm.length || (am < bm ? -1 : am > bm ? 1 : 0)
  if (ms !== 0) return ms < 0 ? -1 : 1
  const seq = as.length - bs.length || (as < bs ? -1 : as > bs ? 1 : 0)
  return seq === 0 ? 0 : seq < 0 ? -1 : 1
}
