import * as Y from 'yjs'
import { ConcordError, inspectUpdate, type UpdateInspection } from '@concord/protocol'
import { checkItemOrder, trialItemOrder } from './item-order.js'
import type { ClientOwners } from './client-owners.js'
import { DEFAULTS } from '../config/server-config.js'

export interface AdmissionOptions {
  /** Updates that would make the document larger than this (approximately) are refused. */
  maxDocumentBytes?: number
  /** Bytes of document copies a second for checking updates by trial (default 8 MiB; a burst of four seconds' worth). */
  maxUpdateCheckBytesPerSecond?: number
}

/** What admission reads of its document. */
export interface AdmissionHost {
  readonly name: string
  /** The document's Y.Doc (integrating a lazily loaded document first). */
  readonly ydoc: Y.Doc
  /** The encoded size of the document, approximately. */
  readonly approxBytes: number
}

/**
 * The checks a client's update must pass before Yjs sees it: the document's size, a well-formed
 * update, no deletes beyond the document's state, client-id ownership, no missing dependencies,
 * and every new item in order (checked on a copy within a per-document budget). Claims of new
 * client ids are recorded once the update is admitted, before Yjs sees it.
 */
export class Admission {
  readonly #host: AdmissionHost
  readonly #owners: ClientOwners
  readonly #opts: AdmissionOptions
  #trialTokens = Number.POSITIVE_INFINITY
  #trialAt = 0

  constructor(host: AdmissionHost, owners: ClientOwners, opts: AdmissionOptions) {
    this.#host = host
    this.#owners = owners
    this.#opts = opts
  }

  /** The update's inspection when it may be applied, or the refusal to send (never closing the document). */
  admit(userId: string | null, update: Uint8Array): UpdateInspection | ConcordError {
    const document = this.#host.name
    const max = this.#opts.maxDocumentBytes
    if (max !== undefined && this.#host.approxBytes + update.length > max) {
      return new ConcordError('CONCORD_ERR_LIMIT_DOCUMENT_SIZE', `the document would exceed ${max} bytes; the update was not applied`, { document })
    }
    const inspection = inspectUpdate(update)
    if (inspection.problem !== null) {
      return new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', `update rejected: ${inspection.problem}`, { document })
    }
    const ydoc = this.#host.ydoc
    // Deleting what the document does not have yet (clocks beyond its state) would be kept by Yjs
    // and applied whenever those clocks arrive: a writer could delete other people's future text
    // here, and only here. A client deletes only what it has, and sends its own inserts first.
    for (const [client, ranges] of inspection.deletes) {
      // what the update itself inserts may be deleted by it too (typed and erased offline)
      const state = Math.max(Y.getState(ydoc.store, client), inspection.ends.get(client) ?? 0)
      for (const r of ranges) {
        if (r.clock + r.len > state) {
          return new ConcordError('CONCORD_ERR_UPDATE_OUT_OF_ORDER',
            `the update deletes ${client}:${r.clock}+${r.len}, beyond what the document has of that client (${state}); send those changes first`, { document })
        }
      }
    }
    return this.#admitClients(ydoc, userId, inspection, update)
  }

  /**
   * Client-id ownership and missing dependencies (ARCHITECTURE.md section 3): new items only under
   * client ids the sender owns or claims now (items already known are duplicates and change
   * nothing), and nothing Yjs would hold back for missing changes (the poisoned-pending attack:
   * held-back items are integrated by someone else's later update). Claims of new client ids are
   * recorded here, before Yjs sees the update.
   */
  #admitClients(ydoc: Y.Doc, userId: string | null, inspection: UpdateInspection, update: Uint8Array): UpdateInspection | ConcordError {
    const document = this.#host.name
    const store = ydoc.store
    let claims: number[] | null = null
    for (const [client, end] of inspection.ends) {
      const state = Y.getState(store, client)
      if (end <= state) continue
      const owner = this.#owners.of(client)
      // an identified user may not extend a client id whose writer is unknown (anonymous, or
      // written before ownership was recorded): it could be anyone's
      if (owner !== undefined ? owner !== userId : userId !== null && state > 0) {
        return new ConcordError('CONCORD_ERR_UPDATE_FOREIGN_CLIENT',
          `the update adds items under Yjs client id ${client}, which ${owner !== undefined ? 'belongs to another user' : 'was written by an unknown user'} in this document; use a new client id`, { document })
      }
      if (owner === undefined && userId !== null) (claims ??= []).push(client)
    }
    // nothing is held back: an update Yjs would keep waiting for missing changes is refused
    // (the JS client re-sends everything unacked after a pause; a y-websocket client reconnects
    // and sends its whole diff). What Yjs holds waits outside every check, is re-applied with each
    // later update, goes out in every full encode (a joiner's copy would then carry it back under
    // someone else's client id), and could be integrated by another user's update.
    const missing = missingDependency(store, inspection)
    if (missing !== null) {
      return new ConcordError('CONCORD_ERR_UPDATE_OUT_OF_ORDER',
        `the update depends on changes the server does not have (Yjs client id ${missing.client} from clock ${missing.clock}); send those first`, { document })
    }
    // every new item between neighbours in order, or loaded afresh the document would differ
    const order = checkItemOrder(store, inspection.items)
    if (order.ok === 'trial' && !this.#mayTrial()) {
      return new ConcordError('CONCORD_ERR_LIMIT_UPDATE_CHECKS',
        'the update places items next to changes it does not carry, and this document has used its share of checks on a copy for now; send it again in a moment', { document })
    }
    const disorder = order.ok === true ? null : order.ok === false ? order.problem : trialItemOrder(ydoc, update, inspection.items)
    if (disorder !== null) return new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', `update rejected: ${disorder}`, { document })
    if (claims !== null) for (const client of claims) this.#owners.claim(client, userId!)
    return inspection
  }

  /**
   * A trial copies the document: a token bucket of copied bytes per second (a burst of four
   * seconds' worth) keeps a writer who forces trials from spending the node's CPU on them.
   */
  #mayTrial(): boolean {
    const rate = this.#opts.maxUpdateCheckBytesPerSecond ?? DEFAULTS.maxUpdateCheckBytesPerSecond
    const now = performance.now()
    this.#trialTokens = Math.min(4 * rate, this.#trialTokens + (now - this.#trialAt) / 1000 * rate)
    this.#trialAt = now
    if (this.#trialTokens <= 0) return false
    // a document larger than the burst waits the burst's time after each of its trials
    this.#trialTokens = Math.max(this.#trialTokens - this.#host.approxBytes, -4 * rate)
    return true
  }
}

/**
 * The first change an update needs that the document does not have (and the update does not
 * carry from the document's state on): where its items start, what they refer to, and the gaps
 * inside it. Null when Yjs can integrate all of it now.
 */
export function missingDependency(store: Y.Doc['store'], inspection: UpdateInspection): { client: number; clock: number } | null {
  for (const [client, start] of inspection.starts) {
    const state = Y.getState(store, client)
    if (start > state) return { client, clock: state }
  }
  for (const [client, end] of inspection.gaps) {
    const state = Y.getState(store, client)
    if (end > state) return { client, clock: state }
  }
  for (const [client, end] of inspection.needs) {
    const state = Y.getState(store, client)
    if (end <= state) continue
    const start = inspection.starts.get(client)
    const available = start !== undefined && start <= state ? Math.max(state, inspection.ends.get(client) ?? 0) : state
    if (end > available) return { client, clock: available }
  }
  return null
}
