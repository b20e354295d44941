import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { pino, type Logger } from 'pino'
import type { Backplane, BackplaneHandlers, ControlMessage } from './backplane.js'
import { SingleChannelSubscriber, type ChannelSubscriber } from './channel-subscriber.js'
import {
  announce, compareStreamIds, DEFAULT_STREAM_MAX_LEN, decodeAnnouncement, defineAnnounce, layoutOf,
  nextStreamId, parseEntry, previousStreamId, type StreamLayout,
} from './doc-streams.js'
import { createRedisClient, type RedisClient } from './redis-connection.js'
import { parseRedisUrl } from './redis-url.js'
import { ShardSubscribers } from './shard-subscribers.js'

export { compareStreamIds, nextStreamId, previousStreamId } from './doc-streams.js'

export interface RedisBackplaneOptions {
  /**
   * redis://host:port (one Redis), or redis+cluster://host:port,host:port,… (a Redis Cluster, 7.0
   * or later: its nodes as seeds; see redis-url.ts and docs/deployment.md, *Redis Cluster*).
   */
  url: string
  /** pino logger (default: silent). */
  logger?: Logger
  /**
   * Entries kept per document stream (at least; trimming is approximate; default 10,000). A node
   * that falls further behind than this (stalled, or its read connection slow) notices the gap
   * and reloads the document from storage.
   */
  maxLen?: number
  /** How long one XREAD of the control stream waits for entries (default 100 ms; also the retry pause while Redis is away). */
  blockMs?: number
}

/**
 * How far back a load looks for relayed updates whose durability is not confirmed yet (ms, and
 * at most this many entries): a load may not hold them, so the stream is read from just before
 * the oldest. Older ones were appended by every node that applied them (each appends what stays
 * unconfirmed for `relayConfirmTimeoutMs`, 1 s by default), unless storage stalls everywhere.
 */
const RELAY_LOOKBACK_MS = 30_000
const RELAY_LOOKBACK_ENTRIES = 1_000

/** Entries read per XRANGE while catching up. */
const CATCH_UP_PAGE = 1_000

interface Subscription {
  document: string
  key: string
  /** The document's channel (its name as `ChannelSubscriber` routes it). */
  channel: string
  /** The last entry handled: an entry is handled once, in stream order, whether heard or read. */
  lastId: string
  handlers: BackplaneHandlers
  /** Catching up from the stream: the channel's messages wait here until it is done. */
  pending: Buffer[] | null
  /** Counts #attach runs: only the latest one ends the catching up. */
  attaches: number
}

/**
 * Document updates between nodes on Redis (the format is in doc-streams.ts): every entry is
 * appended to the document's stream and published on its channel in one command. A node hears the
 * entries of the documents it holds on their channels (a pushed message costs no command; a node
 * that read the streams with a blocking XREAD sent one command per wake-up, which on this path was
 * the largest cost after the sockets' writes) and reads the stream only to catch up: from the
 * position it took before loading a document (so nothing between the load and the subscription is
 * missed) and after its connection came back.
 *
 * When Redis comes back after an outage, what was published meanwhile may be
 * lost (without persistence, the streams themselves are): every node then
 * flushes its documents' logs, announces a resync on each stream, and reloads
 * them from storage, which holds everything durable.
 *
 * On a Redis Cluster the same happens per master: a document's stream and channel share a slot
 * (doc-streams.ts, CLUSTER_LAYOUT), its entries are published with SPUBLISH and heard on a
 * connection to the master of that slot (shard-subscribers.ts), and when a master goes away (a
 * replica takes over, or it restarts) only its documents are caught up and resynced.
 */
/**
 * The backplane of a cluster: every node of one region on the same Redis (streams and channels per
 * document, a control stream for revocations, kicks and deletions) and the same storage.
 */
export function createRedisBackplane(options: RedisBackplaneOptions): Backplane {
  return new RedisBackplane(options)
}

export class RedisBackplane implements Backplane {
  readonly nodeId = randomBytes(6).toString('hex')
  readonly #pub: RedisClient
  /** Subscribed to the channels of the documents this node holds (one connection, or one per cluster master). */
  readonly #channels: ChannelSubscriber
  /** Reads the control stream (a blocking XREAD; a subscribed connection runs no other command). */
  readonly #ctl: RedisClient
  readonly #layout: StreamLayout
  readonly #log: Logger
  readonly #maxLen: number
  readonly #blockMs: number
  readonly #subs = new Map<string, Subscription>()
  readonly #byChannel = new Map<string, Subscription>()
  #closed = false
  #loop: Promise<void> | null = null
  /** Called after Redis came back: flush a document's log before its resync marker is posted. */
  onReconnect: ((documents: string[]) => Promise<void>) | null = null
  onControl: ((message: ControlMessage) => void) | null = null
  onLag: ((seconds: number) => void) | null = null
  /** Where this node reads the control stream from: its end when the node started. */
  #controlId: string | null = null
  /** A read of the control stream failed, or a cluster node's connection ended, since the last read. */
  #controlLapsed = false
  /** The last relay id this node gave out (ids are unique per node id, which is new per process). */
  #relaySeq = 0
  /** Confirmations to publish at the end of this event-loop turn, per document. */
  #confirms = new Map<string, string[]>()
  #confirmScheduled = false
  /**
   * Documents an update or confirmation of which could not be published (a cluster client gives
   * a command up after about 6 s of failover): once Redis takes commands again, this node flushes
   * them and posts a resync marker, so the other nodes reload them from storage.
   */
  readonly #unpublished = new Set<string>()
  #unpublishedTimer: NodeJS.Timeout | null = null
  /** The wait before the next try: doubles while the markers fail too (up to 5 s), back to `blockMs` once one is posted. */
  #unpublishedDelayMs: number

  constructor(options: RedisBackplaneOptions) {
    this.#log = options.logger ?? pino({ level: 'silent' })
    this.#maxLen = options.maxLen ?? DEFAULT_STREAM_MAX_LEN
    this.#blockMs = options.blockMs ?? 100
    this.#unpublishedDelayMs = this.#blockMs
    const target = parseRedisUrl(options.url)
    this.#layout = layoutOf(target)
    const common = { lazyConnect: false, maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2_000) }
    // auto-pipelining: the commands of one event-loop turn (a batch's relays, a commit's
    // confirmations over all its documents) leave in one write rather than one write each (per master on a cluster)
    this.#pub = createRedisClient(target, { ...common, enableAutoPipelining: true, connectionName: `concord-pub-${this.nodeId}` })
    defineAnnounce(this.#pub)
    this.#ctl = createRedisClient(target, { ...common, connectionName: `concord-ctl-${this.nodeId}` })
    for (const r of [this.#pub, this.#ctl]) r.on('error', (err: Error) => this.#log.debug({ err: err.message }, 'redis connection error'))
    // a cluster retries the control read through a failover of its master: a node that went away may have been it
    if (target.kind === 'cluster') this.#ctl.on('-node', () => { this.#controlLapsed = true })
    // channels are subscribed again by #attach, after which the stream is read: subscribing first,
    // then reading, is what makes sure nothing published in between is missed
    const events = {
      message: (channel: Buffer, message: Buffer) => this.#heard(channel, message),
      ready: (channels: string[], lapsed: boolean) => this.#channelsReady(channels, lapsed),
    }
    const subOptions = { ...common, autoResubscribe: false, connectionName: `concord-sub-${this.nodeId}` }
    if (target.kind === 'cluster') {
      this.#channels = new ShardSubscribers(this.#pub as Cluster, target, events, subOptions, this.#log)
    } else {
      const sub = createRedisClient(target, subOptions) as Redis
      sub.on('error', err => this.#log.debug({ err: err.message }, 'redis connection error'))
      this.#channels = new SingleChannelSubscriber(sub, events)
    }
    this.#loop = this.#start()
  }

  async #start(): Promise<void> {
    while (!this.#closed && this.#controlId === null) {
      try {
        const last = await this.#pub.xrevrange(this.#layout.control, '+', '-', 'COUNT', 1)
        this.#controlId = last.length > 0 ? last[0]![0] : '0-0'
      } catch {
        await new Promise(resolve => setTimeout(resolve, this.#blockMs))
      }
    }
    await this.#readControl()
  }

  publishControl(message: ControlMessage): void {
    if (this.#closed) return
    this.#pub.xadd(this.#layout.control, 'MAXLEN', '~', String(this.#maxLen), '*', 'n', this.nodeId, 'c', JSON.stringify(message))
      .catch(err => this.#log.warn({ err: (err as Error).message }, 'backplane control publish failed'))
  }

  async position(document: string): Promise<string> {
    const key = this.#layout.stream(document)
    const [last, recent] = await Promise.all([
      this.#pub.xrevrange(key, '+', '-', 'COUNT', 1),
      this.#pub.xrevrangeBuffer(key, '+', String(Date.now() - RELAY_LOOKBACK_MS), 'COUNT', RELAY_LOOKBACK_ENTRIES),
    ])
    const end = last.length > 0 ? last[0]![0] : '0-0'
    // newest first: a confirmation comes after what it confirms
    const confirmed = new Set<string>()
    let oldestUnconfirmed: string | null = null
    for (const [idBuf, fields] of recent) {
      const entry = parseEntry(fields)
      if (entry.node === this.nodeId) continue
      if (entry.durable !== null) for (const id of entry.durable) confirmed.add(`${entry.node}:${id}`)
      if (entry.relay !== null && entry.update !== null && !confirmed.has(`${entry.node}:${entry.relay}`)) oldestUnconfirmed = idBuf.toString()
    }
    return oldestUnconfirmed !== null ? previousStreamId(oldestUnconfirmed) : end
  }

  subscribe(document: string, fromId: string, handlers: BackplaneHandlers): () => void {
    const sub: Subscription = { document, key: this.#layout.stream(document), channel: this.#layout.channel(document), lastId: fromId, handlers, pending: [], attaches: 0 }
    this.#subs.set(document, sub)
    this.#byChannel.set(sub.channel, sub)
    this.#channels.add(sub.channel)
    if (this.#channels.isReady(sub.channel)) void this.#attach(sub)
    return () => {
      if (this.#subs.get(document) !== sub) return
      this.#subs.delete(document)
      this.#byChannel.delete(sub.channel)
      this.#channels.remove(sub.channel)
    }
  }

  /** The connection of these channels is ready: subscribe and catch up; after a lapse, resync their documents. */
  #channelsReady(channels: string[], lapsed: boolean): void {
    const documents: string[] = []
    for (const channel of channels) {
      const sub = this.#byChannel.get(channel)
      if (sub === undefined) continue
      documents.push(sub.document)
      void this.#attach(sub, lapsed)
    }
    // (one Redis: also with no document, for the access state, which may have changed meanwhile)
    if (lapsed) void this.#reconnected(documents)
  }

  /**
   * Subscribes to the document's channel, then reads its stream from the last entry handled:
   * what was published before the subscription took effect is in the stream, what comes after is
   * heard (kept in `pending` until the reading is done). Run again after the connection came back.
   */
  async #attach(sub: Subscription, lapsed = false): Promise<void> {
    const attach = ++sub.attaches
    sub.pending ??= []
    try {
      await this.#channels.subscribe(sub.channel)
      if (lapsed) {
        // the stream may have gone back: a promoted replica lacks the last entries its master took,
        // a restarted Redis lost them all. Entries after its end now are new to this node, even
        // with ids below the last one it handled (the new master's clock may be behind).
        const last = await this.#pub.xrevrange(sub.key, '+', '-', 'COUNT', 1)
        const end = last.length > 0 ? last[0]![0] : '0-0'
        if (compareStreamIds(end, sub.lastId) < 0) sub.lastId = end
      }
      let full = false
      const readFrom = sub.lastId
      for (;;) {
        if (this.#subs.get(sub.document) !== sub) return
        const start = sub.lastId === '0-0' ? '-' : nextStreamId(sub.lastId)
        const entries = await this.#pub.xrangeBuffer(sub.key, start, '+', 'COUNT', CATCH_UP_PAGE)
        for (const [idBuf, fields] of entries) this.#handle(sub, idBuf.toString(), fields)
        if (entries.length < CATCH_UP_PAGE) break
        full = true
      }
      // a full page: this node was far behind, and Redis may have trimmed entries it had not read
      if (full) void this.#checkTrimmed(sub, readFrom)
    } catch (err) {
      if (this.#closed) return
      this.#log.debug({ err: (err as Error).message, document: sub.document }, 'backplane: subscribing failed; retrying')
      setTimeout(() => {
        if (!this.#closed && this.#subs.get(sub.document) === sub && sub.attaches === attach) void this.#attach(sub, lapsed)
      }, this.#blockMs).unref()
      return
    }
    // a later run (the connection came back meanwhile) subscribed again and reads on: it ends this
    if (sub.attaches !== attach) return
    const pending = sub.pending
    sub.pending = null
    if (pending !== null) for (const message of pending) this.#heard(null, message, sub)
  }

  /** A message of a document's channel. */
  #heard(channel: Buffer | null, message: Buffer, known?: Subscription): void {
    const sub = known ?? this.#byChannel.get(channel!.toString())
    if (sub === undefined) return
    if (sub.pending !== null) {
      sub.pending.push(message)
      return
    }
    const decoded = decodeAnnouncement(message)
    if (decoded === null) {
      this.#log.warn({ document: sub.document, bytes: message.length }, 'backplane: a malformed message on the document channel was ignored')
      return
    }
    this.#handle(sub, decoded.id, decoded.fields)
  }

  /** An entry of a document's stream, heard or read: handled once, in stream order. */
  #handle(sub: Subscription, id: string, fields: Buffer[]): void {
    if (compareStreamIds(id, sub.lastId) <= 0) return
    sub.lastId = id
    const { node, update, writer, presence, resync, relay, durable, trace, stateless } = parseEntry(fields)
    if (node === this.nodeId) return
    // a stream id starts with the Redis server's clock at XADD (ms)
    if (this.onLag !== null) this.onLag(Math.max(0, Date.now() - Number.parseInt(id, 10)) / 1000)
    try {
      if (update !== null) sub.handlers.update(new Uint8Array(update.buffer, update.byteOffset, update.byteLength), writer, relay === null ? null : `${node}:${relay}`, trace)
      else if (durable !== null) sub.handlers.durable?.(durable.map(seq => `${node}:${seq}`))
      else if (presence !== null) sub.handlers.presence(new Uint8Array(presence.buffer, presence.byteOffset, presence.byteLength))
      else if (resync) sub.handlers.resync()
      else if (stateless !== null) sub.handlers.stateless?.(stateless)
    } catch (err) {
      this.#log.error({ err, document: sub.document }, 'backplane: handling an entry failed')
    }
  }

  publishUpdate(document: string, update: Uint8Array, writer: string | null = null, trace: string | null = null): void {
    this.#xadd(document, 'u', Buffer.from(update.buffer, update.byteOffset, update.byteLength), writer, null, trace)
  }

  relayUpdate(document: string, update: Uint8Array, writer: string | null = null, trace: string | null = null): string {
    const seq = String(++this.#relaySeq)
    this.#xadd(document, 'u', Buffer.from(update.buffer, update.byteOffset, update.byteLength), writer, seq, trace)
    return `${this.nodeId}:${seq}`
  }

  confirmDurable(document: string, relayId: string): void {
    if (this.#closed) return
    const seq = relayId.slice(relayId.lastIndexOf(':') + 1)
    const list = this.#confirms.get(document)
    if (list === undefined) this.#confirms.set(document, [seq])
    else list.push(seq)
    if (this.#confirmScheduled) return
    this.#confirmScheduled = true
    // one entry for everything one commit made durable (its appends resolve in the same turn)
    setImmediate(() => this.#flushConfirms())
  }

  #flushConfirms(): void {
    this.#confirmScheduled = false
    const all = this.#confirms
    this.#confirms = new Map()
    for (const [doc, seqs] of all) this.#xadd(doc, 'd', seqs.join(','))
  }

  publishStateless(document: string, payload: string): void {
    this.#xadd(document, 's', payload)
  }

  publishPresence(document: string, update: Uint8Array): void {
    this.#xadd(document, 'a', Buffer.from(update.buffer, update.byteOffset, update.byteLength))
  }

  /** `writer`: an update's writer ('w'), so other nodes learn who owns its Yjs client ids. */
  #xadd(document: string, field: 'u' | 'r' | 'a' | 'd' | 's', value: Buffer | string, writer: string | null = null, relay: string | null = null, trace: string | null = null): void {
    if (this.#closed) return
    const args: (string | Buffer)[] = ['n', this.nodeId, field, value]
    if (writer !== null) args.push('w', writer)
    if (relay !== null) args.push('p', relay)
    if (trace !== null) args.push('t', trace)
    ;(announce(this.#pub, this.#layout, document, this.#maxLen, args) as Promise<string>)
      .then(() => { if (field === 'r') this.#unpublishedDelayMs = this.#blockMs }, err => {
        this.#log.warn({ err: (err as Error).message, document }, 'backplane publish failed')
        // presence and stateless messages are ephemeral; an update or a confirmation the others lack is not
        if (field === 'u' || field === 'd' || field === 'r') this.#publishFailed(document)
      })
  }

  #publishFailed(document: string): void {
    if (this.#closed) return
    this.#unpublished.add(document)
    this.#unpublishedTimer ??= setTimeout(() => {
      this.#unpublishedTimer = null
      void this.#resyncOthers()
    }, this.#unpublishedDelayMs)
  }

  /** After publications failed: flush those documents, then post their resync markers (a marker that fails comes back here). */
  async #resyncOthers(): Promise<void> {
    const documents = [...this.#unpublished]
    this.#unpublished.clear()
    if (documents.length === 0 || this.#closed) return
    this.#log.warn({ documents: documents.length }, 'backplane: entries could not be published; the other nodes will reload these documents from storage')
    try {
      await this.onReconnect?.(documents)
    } catch (err) {
      this.#log.warn({ err }, 'backplane: flushing before the resync failed')
    }
    // (a Redis that keeps refusing, full or read-only, is not asked, nor storage flushed, ten times a second)
    this.#unpublishedDelayMs = Math.min(this.#unpublishedDelayMs * 2, 5_000)
    for (const d of documents) this.#xadd(d, 'r', '1')
  }

  async ping(): Promise<void> {
    if (this.#pub.status !== 'ready') throw new Error(`redis is ${this.#pub.status}`)
    await this.#pub.ping()
  }

  async close(): Promise<void> {
    // the confirmations of this turn still go out (else the other nodes append those updates again)
    this.#flushConfirms()
    this.#closed = true
    if (this.#unpublishedTimer !== null) clearTimeout(this.#unpublishedTimer)
    this.#channels.close()
    this.#ctl.disconnect()
    await settledWithin(this.#loop, 1_000)
    // QUIT waits for a reply: with Redis gone it would wait for the reconnect, for ever
    if (this.#pub.status === 'ready') await settledWithin(this.#pub.quit(), 1_000)
    this.#pub.disconnect()
  }

  #control(entries: [Buffer, Buffer[]][]): void {
    for (const [idBuf, fields] of entries) {
      this.#controlId = idBuf.toString()
      let node = ''
      let body = ''
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = fields[i]!.toString()
        if (name === 'n') node = fields[i + 1]!.toString()
        else if (name === 'c') body = fields[i + 1]!.toString()
      }
      if (node === this.nodeId || body === '') continue
      try {
        this.onControl?.(JSON.parse(body) as ControlMessage)
      } catch (err) {
        this.#log.error({ err }, 'backplane: handling a control message failed')
      }
    }
  }

  async #reconnected(documents: string[]): Promise<void> {
    this.#log.info({ documents: documents.length }, 'backplane: redis is back; resyncing documents from storage')
    try {
      await this.onReconnect?.(documents)
    } catch (err) {
      this.#log.warn({ err }, 'backplane: flushing before the resync failed')
    }
    for (const d of documents) {
      this.#xadd(d, 'r', '1')
      this.#subs.get(d)?.handlers.resync()
    }
  }

  /** Reads the control stream until the backplane closes. */
  async #readControl(): Promise<void> {
    while (!this.#closed) {
      if (this.#controlId === null || this.#ctl.status !== 'ready') {
        await new Promise(resolve => setTimeout(resolve, this.#blockMs))
        continue
      }
      try {
        if (this.#controlLapsed) {
          // control entries may have been lost (on a cluster, the control stream's master may fail
          // over on its own, and its replica lack the last entries): read the stream from its end
          // if it went back (see #attach), and the access state again
          const last = await this.#ctl.xrevrange(this.#layout.control, '+', '-', 'COUNT', 1)
          const end = last.length > 0 ? last[0]![0] : '0-0'
          if (compareStreamIds(end, this.#controlId) < 0) this.#controlId = end
          this.#controlLapsed = false
          this.onReconnect?.([]).catch(err => this.#log.warn({ err }, 'backplane: reading the access state again failed'))
        }
        const reply = await this.#ctl.xreadBuffer('COUNT', CATCH_UP_PAGE, 'BLOCK', this.#blockMs, 'STREAMS', this.#layout.control, this.#controlId)
        if (reply !== null) for (const [, entries] of reply) this.#control(entries)
      } catch (err) {
        if (this.#closed) return
        this.#controlLapsed = true
        this.#log.debug({ err: (err as Error).message }, 'backplane control read failed; retrying')
        await new Promise(resolve => setTimeout(resolve, this.#blockMs))
      }
    }
  }

  /**
   * A catch-up read a full page (or started from an empty stream): Redis may have trimmed entries
   * this node had not read yet (trimming removes the oldest entries and keeps at least maxLen, so a
   * node that lost some always reads a full page). When the stream's first entry is past where the
   * node read from, the entry it read last is gone, and likely some after it: the document is
   * reloaded from storage, which holds every durable update.
   */
  async #checkTrimmed(sub: Subscription, readFrom: string): Promise<void> {
    const document = sub.document
    let gap: boolean
    let first: string | null = null
    try {
      const info = await this.#pub.xinfo('STREAM', sub.key) as unknown[]
      const field = (name: string): unknown => {
        const at = info.findIndex(f => String(f) === name)
        return at >= 0 ? info[at + 1] : undefined
      }
      const firstEntry = field('first-entry')
      first = Array.isArray(firstEntry) ? String(firstEntry[0]) : null
      if (readFrom === '0-0') {
        // the stream was empty when this node loaded the document: anything trimmed since was unread
        const added = Number(field('entries-added'))
        gap = !(added <= Number(field('length')))
      } else {
        // (a node may subscribe from just before an entry, see `position`: that entry is no gap)
        gap = first !== null && compareStreamIds(first, nextStreamId(readFrom)) > 0
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, document }, 'backplane: could not check the stream for trimmed entries; resyncing to be safe')
      gap = true
    }
    if (!gap || this.#subs.get(document) !== sub) return
    this.#log.warn({ document, readFrom, firstRetained: first }, 'backplane: entries this node had not read were trimmed from the stream; reloading the document from storage')
    sub.handlers.resync()
  }
}

/** Waits for `promise` to settle, at most `ms` (whatever it settles to). */
async function settledWithin(promise: Promise<unknown> | null, ms: number): Promise<void> {
  if (promise === null) return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([promise.then(() => undefined, () => undefined), new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}
