import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { pino, type Logger } from 'pino'
import type { Backplane, BackplaneHandlers, ControlMessage } from './backplane.js'

export interface RedisBackplaneOptions {
  /** redis://host:port */
  url: string
  /** pino logger (default: silent). */
  logger?: Logger
  /**
   * Entries kept per document stream (at least; trimming is approximate; default 10,000). A node
   * that falls further behind than this (stalled, or its read connection slow) notices the gap
   * and reloads the document from storage.
   */
  maxLen?: number
  /** How long one XREAD waits for entries before it looks at the subscriptions again (default 100 ms). */
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

/** Placeholder handlers of the control stream's entry in the read list (its entries are handled by #control). */
const CONTROL_HANDLERS: BackplaneHandlers = { update: () => undefined, resync: () => undefined, presence: () => undefined }

interface Subscription {
  key: string
  lastId: string
  handlers: BackplaneHandlers
}

const KEY_PREFIX = 'concord:doc:'
/** One stream for what every node must hear (revocations, role changes). */
const CONTROL_KEY = 'concord:control'

/**
 * Document updates between nodes on Redis Streams: one stream per document
 * (`concord:doc:<name>`), entries `n` (the node that wrote it) and `u` (a Yjs
 * update; with `p`, the node's relay id, it was relayed before its append committed, else it was
 * published once durable), `d` (relay ids of the node's updates that are durable now, comma-separated),
 * `a` (an awareness update: the node's sessions'
 * presence changes, coalesced per room) or `r` (a resync marker). A node reads the streams of the documents
 * it holds from the position it took before loading them, so nothing between
 * the load and the subscription is missed.
 *
 * When Redis comes back after an outage, what was published meanwhile may be
 * lost (without persistence, the streams themselves are): every node then
 * flushes its documents' logs, announces a resync on each stream, and reloads
 * them from storage, which holds everything durable.
 */
/**
 * The backplane of a cluster: every node of one region on the same Redis (streams per document,
 * a control stream for revocations, kicks and deletions) and the same storage.
 */
export function createRedisBackplane(options: RedisBackplaneOptions): Backplane {
  return new RedisBackplane(options)
}

export class RedisBackplane implements Backplane {
  readonly nodeId = randomBytes(6).toString('hex')
  readonly #pub: Redis
  readonly #sub: Redis
  readonly #log: Logger
  readonly #maxLen: number
  readonly #blockMs: number
  readonly #subs = new Map<string, Subscription>()
  #closed = false
  #readyOnce = false
  /** The read connection's client id (for CLIENT UNBLOCK) and whether it waits in XREAD now. */
  #subClientId: number | null = null
  #blocked = false
  #loop: Promise<void> | null = null
  /** Called after Redis came back: flush a document's log before its resync marker is posted. */
  onReconnect: ((documents: string[]) => Promise<void>) | null = null
  onControl: ((message: ControlMessage) => void) | null = null
  onLag: ((seconds: number) => void) | null = null
  /** Where this node reads the control stream from: its end when the node started. */
  #controlId: string | null = null
  /** The last relay id this node gave out (ids are unique per node id, which is new per process). */
  #relaySeq = 0
  /** Confirmations to publish at the end of this event-loop turn, per document. */
  #confirms = new Map<string, string[]>()
  #confirmScheduled = false

  constructor(options: RedisBackplaneOptions) {
    this.#log = options.logger ?? pino({ level: 'silent' })
    this.#maxLen = options.maxLen ?? 10_000
    this.#blockMs = options.blockMs ?? 100
    const common = { lazyConnect: false, maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2_000) }
    this.#pub = new Redis(options.url, { ...common, connectionName: `concord-pub-${this.nodeId}` })
    this.#sub = new Redis(options.url, { ...common, connectionName: `concord-sub-${this.nodeId}` })
    for (const r of [this.#pub, this.#sub]) r.on('error', err => this.#log.debug({ err: err.message }, 'redis connection error'))
    this.#sub.on('ready', () => {
      this.#subClientId = null
      this.#sub.client('ID').then(id => { this.#subClientId = Number(id) }, () => undefined)
      if (this.#readyOnce) void this.#reconnected()
      this.#readyOnce = true
    })
    this.#loop = this.#start()
  }

  async #start(): Promise<void> {
    while (!this.#closed && this.#controlId === null) {
      try {
        const last = await this.#pub.xrevrange(CONTROL_KEY, '+', '-', 'COUNT', 1)
        this.#controlId = last.length > 0 ? last[0]![0] : '0-0'
      } catch {
        await new Promise(resolve => setTimeout(resolve, this.#blockMs))
      }
    }
    await this.#read()
  }

  publishControl(message: ControlMessage): void {
    if (this.#closed) return
    this.#pub.xadd(CONTROL_KEY, 'MAXLEN', '~', String(this.#maxLen), '*', 'n', this.nodeId, 'c', JSON.stringify(message))
      .catch(err => this.#log.warn({ err: (err as Error).message }, 'backplane control publish failed'))
  }

  async position(document: string): Promise<string> {
    const key = KEY_PREFIX + document
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
    const sub: Subscription = { key: KEY_PREFIX + document, lastId: fromId, handlers }
    this.#subs.set(document, sub)
    // the read loop may be waiting in XREAD without this stream: wake it so the new
    // document's entries flow now rather than when the wait times out
    if (this.#blocked && this.#subClientId !== null) {
      this.#pub.client('UNBLOCK', this.#subClientId).catch(() => undefined)
    }
    return () => {
      if (this.#subs.get(document) === sub) this.#subs.delete(document)
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

  publishPresence(document: string, update: Uint8Array): void {
    this.#xadd(document, 'a', Buffer.from(update.buffer, update.byteOffset, update.byteLength))
  }

  /** `writer`: an update's writer ('w'), so other nodes learn who owns its Yjs client ids. */
  #xadd(document: string, field: 'u' | 'r' | 'a' | 'd', value: Buffer | string, writer: string | null = null, relay: string | null = null, trace: string | null = null): void {
    if (this.#closed) return
    const args: (string | Buffer)[] = ['n', this.nodeId, field, value]
    if (writer !== null) args.push('w', writer)
    if (relay !== null) args.push('p', relay)
    if (trace !== null) args.push('t', trace)
    this.#pub.xadd(KEY_PREFIX + document, 'MAXLEN', '~', String(this.#maxLen), '*', ...args)
      .catch(err => this.#log.warn({ err: (err as Error).message, document }, 'backplane publish failed'))
  }

  async ping(): Promise<void> {
    if (this.#pub.status !== 'ready') throw new Error(`redis is ${this.#pub.status}`)
    await this.#pub.ping()
  }

  async close(): Promise<void> {
    // the confirmations of this turn still go out (else the other nodes append those updates again)
    this.#flushConfirms()
    this.#closed = true
    this.#sub.disconnect()
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

  async #reconnected(): Promise<void> {
    const documents = [...this.#subs.keys()]
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

  async #read(): Promise<void> {
    while (!this.#closed) {
      const subs = [...this.#subs.values()]
      if (this.#controlId !== null) subs.push({ key: CONTROL_KEY, lastId: this.#controlId, handlers: CONTROL_HANDLERS })
      if (subs.length === 0 || this.#sub.status !== 'ready') {
        await new Promise(resolve => setTimeout(resolve, this.#blockMs))
        continue
      }
      let reply: [Buffer, [Buffer, Buffer[]][]][] | null
      // at most maxLen entries per stream and read: a full read is how a node that fell behind
      // notices it may have lost entries to trimming (#checkTrimmed)
      const count = Math.min(1000, this.#maxLen)
      try {
        this.#blocked = true
        reply = await this.#sub.xreadBuffer('COUNT', count, 'BLOCK', this.#blockMs, 'STREAMS', ...subs.map(s => s.key), ...subs.map(s => s.lastId))
      } catch (err) {
        if (this.#closed) return
        this.#log.debug({ err: (err as Error).message }, 'backplane read failed; retrying')
        await new Promise(resolve => setTimeout(resolve, this.#blockMs))
        continue
      } finally {
        this.#blocked = false
      }
      if (reply === null) continue
      for (const [keyBuf, entries] of reply) {
        const key = keyBuf.toString()
        if (key === CONTROL_KEY) {
          this.#control(entries)
          continue
        }
        const document = key.slice(KEY_PREFIX.length)
        const sub = this.#subs.get(document)
        if (sub === undefined || sub.key !== key) continue
        const readFrom = sub.lastId
        if (entries.length >= count) void this.#checkTrimmed(document, sub, readFrom)
        for (const [idBuf, fields] of entries) {
          sub.lastId = idBuf.toString()
          const { node, update, writer, presence, resync, relay, durable, trace } = parseEntry(fields)
          if (node === this.nodeId) continue
          // a stream id starts with the Redis server's clock at XADD (ms)
          if (this.onLag !== null) this.onLag(Math.max(0, Date.now() - Number.parseInt(sub.lastId, 10)) / 1000)
          try {
            if (update !== null) sub.handlers.update(new Uint8Array(update.buffer, update.byteOffset, update.byteLength), writer, relay === null ? null : `${node}:${relay}`, trace)
            else if (durable !== null) sub.handlers.durable?.(durable.map(seq => `${node}:${seq}`))
            else if (presence !== null) sub.handlers.presence(new Uint8Array(presence.buffer, presence.byteOffset, presence.byteLength))
            else if (resync) sub.handlers.resync()
          } catch (err) {
            this.#log.error({ err, document }, 'backplane: handling an entry failed')
          }
        }
      }
    }
  }

  /**
   * A read returned as many entries as it asked for: this node is behind on the stream, and
   * Redis may have trimmed entries it had not read yet (trimming removes the oldest entries,
   * and keeps at least maxLen, so a node that lost some always sees a full read). When the
   * stream's first entry is past where the node read from, the entry it read last is gone,
   * and likely some after it: the document is reloaded from storage, which holds every
   * published update (they are published once durable).
   */
  async #checkTrimmed(document: string, sub: Subscription, readFrom: string): Promise<void> {
    let gap: boolean
    let first: string | null = null
    try {
      const info = await this.#pub.call('XINFO', 'STREAM', sub.key) as unknown[]
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

interface ParsedEntry {
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
}

function parseEntry(fields: Buffer[]): ParsedEntry {
  const entry: ParsedEntry = { node: '', update: null, writer: null, presence: null, resync: false, relay: null, durable: null, trace: null }
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
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  const ms = BigInt(am) - BigInt(bm)
  if (ms !== 0n) return ms < 0n ? -1 : 1
  const seq = BigInt(as) - BigInt(bs)
  return seq === 0n ? 0 : seq < 0n ? -1 : 1
}

/** Waits for `promise` to settle, at most `ms` (whatever it settles to). */
async function settledWithin(promise: Promise<unknown> | null, ms: number): Promise<void> {
  if (promise === null) return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([promise.then(() => undefined, () => undefined), new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}
