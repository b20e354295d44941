import * as Y from 'yjs'
import { ConcordError, encodeStateVectorOf, type UpdateInspection } from '@concord/protocol'
import type { Admission } from './admission.js'
import type { DurableLog } from './durable-log.js'
import { ServerOrigin, type UpdateOrigin } from './origins.js'
import { errorMessage } from './presence.js'

/** The origin of updates another node applied (and stored): no admission, no append, no ack. */
export const OTHER_NODE = Symbol('concord.other-node')

/**
 * Who an update came from, which decides what the apply path does besides applying it: a
 * client's (a session, or null for a session-less caller) and the server's (`ServerOrigin`) are
 * admitted, appended and acked; another node's (`OTHER_NODE`) is only applied and forwarded.
 */
export type Origin = UpdateOrigin | null | typeof OTHER_NODE

/** An update to apply. */
export interface Incoming {
  origin: Origin
  /** The client's number for this update (0: no ack wanted). */
  seq: number
  update: Uint8Array
  /** performance.now() when it reached the document */
  at: number
}

/** What the apply path does around Yjs, by its document. */
export interface IntegrateHost {
  readonly name: string
  /** The document's Y.Doc (integrating a lazily loaded document first). */
  readonly ydoc: Y.Doc
  readonly admission: Admission
  readonly log: DurableLog
  /** Why the document takes no update now (failed, deleted, destroyed), or null. */
  unavailable(): ConcordError | null
  /** Tell the sender its update was refused (and mark it refused in the recording). */
  refuse(origin: UpdateOrigin | null, error: ConcordError, seq: number, closed: boolean): void
  /** A server extension's verdict on a local update that passed admission (null: go on). */
  beforeChange(origin: UpdateOrigin | null, update: Uint8Array): ConcordError | null
  /** A client's or the server's update changed the document. */
  applied(update: Uint8Array, origin: UpdateOrigin | null): void
  /** Another node's update changed the document. */
  appliedRemote(update: Uint8Array): void
  /** What this document integrated, for the sessions (all but `origin`) and the sync replies. */
  /** `at`: when the first of the updates it comes from arrived (performance.now()). */
  forward(update: Uint8Array, origin: UpdateOrigin | null, at: number): void
  /** Yjs threw mid-integration: the document is reloaded from its log. */
  reset(err: unknown): void
}

/**
 * The one apply path (ARCHITECTURE.md section 2): a single client update, a batch of queued
 * updates, the server's own update and another node's update all go through `apply`. A single
 * update is applied in its own Yjs transaction and forwarded as received when it integrates
 * fully; a batch is applied in one transaction and what goes out is the one update Yjs encodes
 * for it. What differs by origin (admission, append and ack) is decided per update.
 *
 * Not re-entrant: the document applies what is queued before anything else is applied.
 */
export class Integrator {
  readonly #host: IntegrateHost
  /** Whether the last transaction changed the document, and the state vector before it (from Yjs's afterTransaction). */
  #changed = false
  #beforeState: Map<number, number> | null = null
  // the state of one `apply` call (fields, not locals: `#step` is a method, so no closure per update)
  #resetBy: unknown = null
  #anyPendingChanged = false
  #fanOrigin: UpdateOrigin | null | undefined = undefined
  #forward: Uint8Array | null = null
  // Yjs's pending state before the update being applied
  #pendingStructs: unknown = null
  #pendingUpdate: Uint8Array | undefined = undefined
  #pendingDs: unknown = null

  constructor(ydoc: Y.Doc, host: IntegrateHost) {
    this.#host = host
    ydoc.on('afterTransaction', (tr: Y.Transaction) => {
      this.#beforeState = tr.beforeState
      if (tr.deleteSet.clients.size > 0 || !sameStateVector(tr.beforeState, tr.afterState)) this.#changed = true
    })
  }

  /**
   * Apply `items` in order: each is checked, appended and acked on its own (the log keeps one
   * row per client update). One item is applied in a transaction of its own; several share one.
   */
  apply(items: readonly Incoming[]): void {
    this.#resetBy = null
    this.#anyPendingChanged = false
    this.#fanOrigin = undefined
    this.#forward = null
    let out: Uint8Array[] | null = null
    if (items.length === 1) {
      this.#step(items[0]!, null)
    } else {
      const ydoc = this.#host.ydoc
      const updates: Uint8Array[] = out = []
      const onUpdate = (u: Uint8Array): void => { updates.push(u) }
      ydoc.on('update', onUpdate)
      try {
        ydoc.transact(tr => { for (const item of items) this.#step(item, tr) }, items[0]!.origin)
      } catch (err) {
        this.#resetBy ??= err
      } finally {
        ydoc.off('update', onUpdate)
      }
    }
    const resetBy = this.#resetBy
    this.#resetBy = null
    if (resetBy !== null) {
      this.#host.reset(resetBy)
      return
    }
    // content Yjs held back may have come from others, and the sender may lack it too
    const origin = this.#anyPendingChanged ? null : this.#fanOrigin ?? null
    this.#fanOrigin = undefined
    if (out === null) {
      const forward = this.#forward
      this.#forward = null
      if (forward !== null) this.#host.forward(forward, origin, items[0]!.at)
      return
    }
    const at = items[0]!.at
    for (const u of out) this.#host.forward(u, origin, at)
  }

  /** One update: `tr` is the batch's transaction, or null when the update is applied alone. */
  #step(item: Incoming, tr: Y.Transaction | null): void {
    const host = this.#host
    const { origin, seq, update, at } = item
    const local = origin !== OTHER_NODE
    let inspection: UpdateInspection | null = null
    if (local) {
      if (this.#resetBy !== null) {
        host.refuse(origin, new ConcordError('CONCORD_ERR_DOC_RESET', 'the document was reloaded from its log; open it again', { document: host.name }), seq, false)
        return
      }
      const unavailable = host.unavailable()
      if (unavailable !== null) {
        host.refuse(origin, unavailable, seq, true)
        return
      }
      const admitted = host.admission.admit(origin?.userId ?? null, update)
      if (admitted instanceof ConcordError) {
        host.refuse(origin, admitted, seq, false)
        return
      }
      inspection = admitted
      const verdict = host.beforeChange(origin, update)
      if (verdict !== null) {
        host.refuse(origin, verdict, seq, false)
        return
      }
    }
    const ydoc = host.ydoc
    const store = ydoc.store
    this.#pendingStructs = store.pendingStructs
    this.#pendingUpdate = store.pendingStructs?.update
    this.#pendingDs = store.pendingDs
    // in a batch, whether this update changed anything is read off the states of its clients
    let states: number[] | null = null
    let deleted: number[] | null = null
    if (tr !== null && inspection !== null) {
      states = []
      for (const client of inspection.ends.keys()) states.push(Y.getState(store, client))
      deleted = []
      for (const client of inspection.deletes.keys()) deleted.push(tr.deleteSet.clients.get(client)?.length ?? 0)
    }
    this.#changed = false
    try {
      Y.applyUpdate(ydoc, update, origin)
    } catch (err) {
      // A Yjs failure mid-integration: the in-memory state can no longer be trusted
      // to match the log, so the document is reloaded from the log.
      // The sender is told its update was refused, so a well-behaved client stops
      // re-sending it instead of resetting the room over and over.
      if (local) host.refuse(origin, new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', `update could not be integrated: ${errorMessage(err)}`, { document: host.name }), seq, false)
      this.#resetBy = err
      return
    }
    // (Yjs merges into an existing pendingStructs object in place, so its update is compared too)
    const pendingChanged = store.pendingStructs !== this.#pendingStructs || store.pendingStructs?.update !== this.#pendingUpdate || store.pendingDs !== this.#pendingDs
    let changed = pendingChanged
    if (tr === null) {
      changed ||= this.#changed
    } else if (inspection === null) {
      changed = true
    } else {
      let i = 0
      for (const client of inspection.ends.keys()) if (!changed && Y.getState(store, client) > states![i++]!) changed = true
      i = 0
      for (const client of inspection.deletes.keys()) if (!changed && (tr.deleteSet.clients.get(client)?.length ?? 0) > deleted![i++]!) changed = true
    }
    if (!changed) {
      // nothing new: ack once whatever carried this content before is durable
      if (local && seq > 0 && origin !== null) host.log.ackAfterBarrier(origin, seq, at)
      return
    }
    if (pendingChanged) this.#anyPendingChanged = true
    const sender = local ? origin : null
    this.#fanOrigin = this.#fanOrigin === undefined || this.#fanOrigin === sender ? sender : null
    if (local) {
      host.applied(update, origin)
      if (origin instanceof ServerOrigin) origin.changed = true
      host.log.append(update, origin, seq, at, inspection!.ends)
    } else {
      host.appliedRemote(update)
    }
    if (tr !== null) return
    // What others receive is what this document integrated. An update that fully
    // integrates (the common case) is forwarded as received. When Yjs held something
    // back (missing dependencies), before or after, the forwarded update is the
    // difference the transaction made: what is held back goes out only once it is
    // integrated, so no client ever holds content the server has not integrated (a
    // client that did could type next to it, and the server could never integrate that).
    // (Yjs leaves its pending state untouched when an update integrates fully, even while it
    // holds other things back: then the update goes out as received, with no encoding)
    this.#forward = !pendingChanged ? update
      : this.#changed && this.#beforeState !== null ? Y.encodeStateAsUpdate(ydoc, encodeStateVectorOf(this.#beforeState)) : null
  }
}

function sameStateVector(a: Map<number, number>, b: Map<number, number>): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) if (b.get(k) !== v) return false
  return true
}
