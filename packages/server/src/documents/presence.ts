import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import type * as Y from 'yjs'
import { ConcordError } from '@concord/protocol'
import type { Logger } from 'pino'
import type { Backplane } from '../backplane/backplane.js'
import type { DocumentSession } from './document-session.js'
import type { ClientOwners } from './client-owners.js'
import type { DocumentMetrics, DocumentRecording } from './ports.js'
import { SharedMessage } from './shared-message.js'
import { decodeAwarenessEntries, encodeAwarenessEntries, stampUser, stampedUser, type AwarenessEntry } from './presence-filter.js'
import { DEFAULTS } from '../config/server-config.js'
import { BIG_ROOM_SESSIONS, type RoomTick } from './room-tick.js'

/** Default largest presence state of one client (JSON bytes). */
export const DEFAULT_MAX_PRESENCE_BYTES = DEFAULTS.maxPresenceBytes

/** Awareness client ids one session may show at once (an honest one shows one, a few after reconnects). */
const MAX_PRESENCE_CLIENTS = 8

/**
 * Presence messages per second one room may cost this node (flushes × sessions): the presence
 * period is the room's sessions over this, never longer than `presenceThrottleMs`. A room of 10 is
 * relayed at once (0.5 ms), one of 350 every 17.5 ms, as one message per session each time: the
 * cost stays bounded however many people move their cursors, and small rooms wait for nothing.
 */
export const PRESENCE_SENDS_PER_SECOND = 20_000

/** The transaction origin of presence from other nodes. */
const REMOTE = Symbol('concord.remote-presence')

export interface PresenceOptions {
  logger: Logger
  presenceThrottleMs: number
  /** Largest presence (awareness) state of one client, as JSON bytes (default 64 KiB). */
  maxPresenceBytes?: number
  backplane?: Backplane
  metrics?: DocumentMetrics
}

/** What presence reads of its document. */
export interface PresenceHost {
  readonly name: string
  readonly sessions: ReadonlySet<DocumentSession>
  /** Neither failed nor destroyed: a writer's presence may still claim client ids. */
  readonly open: boolean
  readonly recording: DocumentRecording | null
}

/**
 * A document's presence (awareness): who may change which awareness client id, the stamped user,
 * the limits, the relay to this node's sessions (throttled, coalesced per room) and to the other
 * nodes, and the presence those other nodes relay here.
 */
export class Presence {
  readonly awareness: Awareness
  readonly #host: PresenceHost
  readonly #owners: ClientOwners
  readonly #opts: PresenceOptions
  #dirty = new Set<number>()
  /** Changed presence of this node's own sessions: what the other nodes get. */
  #localDirty = new Set<number>()
  #timer: NodeJS.Timeout | null = null
  #lastFlush = 0
  readonly #owner = new Map<number, DocumentSession>()
  /**
   * The awareness client ids each session introduced, the other way round: one id (what an
   * honest session shows), or several. Here rather than a set on every session: most sessions
   * show one id, and an empty set costs a session about 150 bytes.
   */
  readonly #ids = new Map<DocumentSession, number | number[]>()
  /** Awareness client ids of other nodes' sessions (their states carry their stamped user). */
  readonly #remote = new Set<number>()
  /** The room's clock, shared with its edits: a big room's presence is relayed on its ticks. */
  readonly #tick: RoomTick | undefined
  #destroyed = false

  constructor(ydoc: Y.Doc, host: PresenceHost, owners: ClientOwners, opts: PresenceOptions, tick?: RoomTick) {
    this.#host = host
    this.#owners = owners
    this.#opts = opts
    this.#tick = tick
    this.awareness = new Awareness(ydoc)
    this.awareness.setLocalState(null)
    this.awareness.on('update', this.#onUpdate)
  }

  /**
   * The room's presence as one update: every client seen, with its current
   * state, or as removed. What a congested session gets instead of the
   * updates it missed.
   */
  snapshot(): Uint8Array | null {
    const ids = [...this.awareness.meta.keys()]
    return ids.length > 0 ? encodeAwarenessUpdate(this.awareness, ids) : null
  }

  /** All current presence states, or null when there are none. */
  states(): Uint8Array | null {
    const ids = [...this.awareness.getStates().keys()]
    return ids.length > 0 ? encodeAwarenessUpdate(this.awareness, ids) : null
  }

  /**
   * Relay a presence update from `session` (throttled, coalesced per room). A session changes
   * only the awareness client ids it introduced (or its own user's: a reconnect), so entries for
   * other people's ids are dropped (the stock y-websocket provider echoes everyone's changes, so
   * this is silent); a state beyond `maxPresenceBytes` refuses the update; at most
   * MAX_PRESENCE_CLIENTS ids per session; and the relayed state carries the authenticated user
   * as `user.id` (see `stampUser`).
   */
  apply(session: DocumentSession, update: Uint8Array): void {
    const name = this.#host.name
    this.#host.recording?.awareness(session.id, update)
    let entries: AwarenessEntry[]
    try {
      entries = decodeAwarenessEntries(update)
    } catch (err) {
      session.documentError(new ConcordError('CONCORD_ERR_AWARENESS_MALFORMED', `awareness update rejected: ${errorMessage(err)}`, { document: name }), 0, false)
      return
    }
    const max = this.#opts.maxPresenceBytes ?? DEFAULT_MAX_PRESENCE_BYTES
    const kept: AwarenessEntry[] = []
    let introduced = 0
    for (const entry of entries) {
      // a JSON string's UTF-8 size is at most three bytes per UTF-16 unit
      if (entry.json.length > max || (entry.json.length * 3 > max && Buffer.byteLength(entry.json) > max)) {
        session.documentError(new ConcordError('CONCORD_ERR_LIMIT_PRESENCE',
          `a presence state of ${Buffer.byteLength(entry.json)} bytes is beyond the limit of ${max}; it was not relayed`, { document: name }), 0, false)
        return
      }
      // what the room already has at this clock or later changes nothing (the stock provider echoes
      // states back, sometimes of clients that just left): dropped before it can count as introduced
      const known = this.awareness.meta.get(entry.clientId)
      if (known !== undefined && (known.clock > entry.clock || (known.clock === entry.clock && (entry.json !== 'null' || !this.awareness.states.has(entry.clientId))))) continue
      if (!this.#mayChange(session, entry.clientId)) continue
      if (!this.#owner.has(entry.clientId) && entry.json !== 'null') introduced++
      let json = entry.json
      if (session.userId !== null) {
        const stamped = stampUser(json, session.userId)
        if (stamped === null) {
          session.documentError(new ConcordError('CONCORD_ERR_AWARENESS_MALFORMED', 'a presence state is not a JSON object', { document: name }), 0, false)
          return
        }
        json = stamped
      }
      kept.push({ clientId: entry.clientId, clock: entry.clock, json })
    }
    if (introduced > 0 && this.#countOf(session) + introduced > MAX_PRESENCE_CLIENTS) {
      session.documentError(new ConcordError('CONCORD_ERR_LIMIT_PRESENCE',
        `a session may show at most ${MAX_PRESENCE_CLIENTS} presence client ids; the update was not relayed`, { document: name }), 0, false)
      return
    }
    if (kept.length === 0) return
    try {
      applyAwarenessUpdate(this.awareness, kept.length === entries.length && session.userId === null ? update : encodeAwarenessEntries(kept), session)
      this.#opts.metrics?.presence('client')
    } catch (err) {
      session.documentError(new ConcordError('CONCORD_ERR_AWARENESS_MALFORMED', `awareness update rejected: ${errorMessage(err)}`, { document: name }), 0, false)
    }
  }

  /** Presence from the sessions of another node: relayed to this node's sessions, not published again. */
  applyRemote(update: Uint8Array): void {
    if (this.#destroyed) return
    try {
      applyAwarenessUpdate(this.awareness, update, REMOTE)
      this.#opts.metrics?.presence('backplane')
    } catch (err) {
      this.#opts.logger.warn({ err, document: this.#host.name }, 'presence from another node could not be applied')
    }
  }

  /** A session left: the presence it showed is removed. */
  removeSession(session: DocumentSession): void {
    if (!this.#ids.has(session)) return
    const ids = this.#idsOf(session).filter(id => this.#owner.get(id) === session)
    this.#ids.delete(session)
    if (ids.length > 0) removeAwarenessStates(this.awareness, ids, 'session-closed')
  }

  /** The awareness client ids `session` introduced (and still shows). */
  #idsOf(session: DocumentSession): number[] {
    const ids = this.#ids.get(session)
    return ids === undefined ? [] : typeof ids === 'number' ? [ids] : ids
  }

  /** How many awareness client ids `session` shows. */
  #countOf(session: DocumentSession): number {
    const ids = this.#ids.get(session)
    return ids === undefined ? 0 : typeof ids === 'number' ? 1 : ids.length
  }

  #addId(session: DocumentSession, id: number): void {
    const ids = this.#ids.get(session)
    if (ids === undefined) this.#ids.set(session, id)
    else if (typeof ids === 'number') this.#ids.set(session, [ids, id])
    else ids.push(id)
  }

  #removeId(session: DocumentSession, id: number): void {
    const ids = this.#ids.get(session)
    if (ids === undefined) return
    if (typeof ids === 'number') {
      if (ids === id) this.#ids.delete(session)
      return
    }
    const at = ids.indexOf(id)
    if (at >= 0) ids.splice(at, 1)
    if (ids.length === 0) this.#ids.delete(session)
    else if (ids.length === 1) this.#ids.set(session, ids[0]!)
  }

  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    if (this.#localDirty.size > 0) {
      // the last session left: the other nodes still have to hear that its presence is gone
      this.#opts.backplane?.publishPresence(this.#host.name, encodeAwarenessUpdate(this.awareness, [...this.#localDirty]))
      this.#localDirty.clear()
    }
    this.awareness.off('update', this.#onUpdate)
    this.awareness.destroy()
  }

  /** Whether `session` may set or clear the presence of awareness client id `id`. */
  #mayChange(session: DocumentSession, id: number): boolean {
    const owner = this.#owner.get(id)
    if (owner !== undefined) {
      if (owner === session) return true
      // the same user in another session (a reconnect whose old socket is not yet gone, another
      // tab echoing it): it may update the state, and the id stays with the session that showed it
      return owner.userId !== null && owner.userId === session.userId
    }
    // an id that belongs to a user of this document (its edits or its earlier presence): only theirs
    const docOwner = this.#owners.of(id)
    if (docOwner !== undefined && docOwner !== session.userId) return false
    if (this.#remote.has(id)) {
      // a session on another node: only its own user (reconnected here) may change it
      const current = this.awareness.getStates().get(id)
      return current !== undefined && session.userId !== null && stampedUser(current) === session.userId
    }
    return true
  }

  readonly #onUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    const session = this.#host.sessions.has(origin as DocumentSession) ? origin as DocumentSession : null
    const local = origin !== REMOTE
    if (!local) {
      for (const id of added) {
        this.#remote.add(id)
        // the other node stamped its user (and claimed the id there): the same claim here
        const user = stampedUser(this.awareness.getStates().get(id))
        if (user !== null && this.#owners.of(id) === undefined) this.#owners.claim(id, user)
      }
    } else if (session !== null) {
      for (const id of added.concat(updated)) this.#remote.delete(id)
    }
    // however it was removed (a session left, another node said so, or it timed out)
    for (const id of removed) this.#remote.delete(id)
    for (const id of added.concat(updated)) {
      if (session !== null && !this.#owner.has(id)) {
        this.#owner.set(id, session)
        this.#addId(session, id)
        // Yjs uses one client id for a replica's presence and its edits: presence shows the id to
        // everyone before the first edit does, so a writer's presence claims it for its edits too
        // (nobody could otherwise take it first, having read it off the presence)
        if (session.userId !== null && session.role !== 'read' && this.#owners.of(id) === undefined && this.#host.open) {
          this.#owners.claim(id, session.userId)
          this.#owners.store(id, session.userId)
        }
      }
      this.#dirty.add(id)
      if (local) this.#localDirty.add(id)
    }
    for (const id of removed) {
      const owner = this.#owner.get(id)
      if (owner !== undefined) {
        this.#removeId(owner, id)
        this.#owner.delete(id)
      }
      this.#dirty.add(id)
      if (local) this.#localDirty.add(id)
    }
    this.#schedule()
  }

  /** How long the room waits between two presence relays (see PRESENCE_SENDS_PER_SECOND). */
  get periodMs(): number {
    return Math.min(this.#opts.presenceThrottleMs, (this.#host.sessions.size * 1000) / PRESENCE_SENDS_PER_SECOND)
  }

  #schedule(): void {
    if (this.#destroyed) return
    if (this.#tick !== undefined && this.#host.sessions.size >= BIG_ROOM_SESSIONS) {
      this.#tick.request()
      return
    }
    if (this.#timer !== null) return
    const wait = Math.max(0, this.#lastFlush + this.periodMs - performance.now())
    this.#timer = setTimeout(this.flush, wait)
  }

  /** Relay what changed since the last relay (on its timer, or on a big room's tick). */
  readonly flush = (): void => {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#lastFlush = performance.now()
    if (this.#dirty.size === 0 || this.#destroyed) return
    const ids = [...this.#dirty]
    this.#dirty.clear()
    if (this.#localDirty.size > 0) {
      // the other nodes get this node's sessions' changes, at most once per throttle period
      const mine = [...this.#localDirty]
      this.#localDirty.clear()
      this.#opts.backplane?.publishPresence(this.#host.name, encodeAwarenessUpdate(this.awareness, mine))
    }
    if (this.#host.sessions.size === 0) return
    const message = new SharedMessage('awareness', this.#host.name, encodeAwarenessUpdate(this.awareness, ids))
    for (const s of this.#host.sessions) s.sendAwareness(message)
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
