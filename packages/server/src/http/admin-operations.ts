import { ConcordError } from '@concord/protocol'
import type { Logger } from 'pino'
import type { DocumentRegistry } from '../documents/document-registry.js'
import type { DocumentSession } from '../documents/document-session.js'
import type { LiveDocument } from '../documents/live-document.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { Backplane, ControlMessage } from '../backplane/backplane.js'
import { inTenant } from '../auth/patterns.js'
import { currentState } from '../content/versions.js'

export interface DocumentSummary {
  name: string
  /** Stored bytes (snapshot plus log tail), or the in-memory size when loaded here. */
  bytes: number
  /** Log entries after the latest snapshot. */
  tailUpdates: number
  /** When the document last changed (ms since the epoch). */
  lastChangeAt: number
  /** Held in memory on this node. */
  loaded: boolean
  /** Sessions on this node. */
  sessions: number
  /** Updates applied on this node since it loaded the document. */
  updatesApplied: number
}

export interface SessionSummary {
  id: string
  document: string
  userId: string | null
  role: string
  protocol: string
  openedAt: number
}

/** Which sessions a kick ends: one by id, or every session of a user; in a tenant, or anywhere (tenant null). */
export type KickFilter = { session: string; tenant?: string | null } | { user: string; tenant: string | null }

/**
 * What the admin API does to documents and sessions, apart from HTTP: listing,
 * reading, server-side updates, deletion and kicks, and their counterparts from
 * other nodes (control messages on the backplane).
 */
export class AdminOperations {
  readonly #registry: DocumentRegistry
  readonly #storage: StorageAdapter
  readonly #backplane: Backplane | null
  readonly #log: Logger
  readonly #onDeleted: ((document: string) => void) | null

  constructor(deps: { registry: DocumentRegistry; storage: StorageAdapter; backplane: Backplane | null; logger: Logger; onDeleted?: (document: string) => void }) {
    this.#onDeleted = deps.onDeleted ?? null
    this.#registry = deps.registry
    this.#storage = deps.storage
    this.#backplane = deps.backplane
    this.#log = deps.logger
  }

  /** Stored documents and those loaded here, in name order (a tenant's only, when given). */
  async listDocuments(tenant: string | null): Promise<DocumentSummary[]> {
    const byName = new Map<string, DocumentSummary>()
    for (const d of await this.#storage.list()) {
      byName.set(d.name, { name: d.name, bytes: d.bytes, tailUpdates: d.tailUpdates, lastChangeAt: d.updatedAt, loaded: false, sessions: 0, updatesApplied: 0 })
    }
    for (const [name, doc] of this.#loadedDocuments()) {
      const here = loadedSummary(name, doc)
      const stored = byName.get(name)
      byName.set(name, { ...here, bytes: Math.max(here.bytes, stored?.bytes ?? 0), lastChangeAt: Math.max(here.lastChangeAt, stored?.lastChangeAt ?? 0) })
    }
    return [...byName.values()].filter(d => tenant === null || inTenant(tenant, d.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  async describe(name: string): Promise<DocumentSummary | null> {
    const doc = this.#registry.peek(name)
    if (doc !== null) return loadedSummary(name, doc)
    const stored = await this.#storage.load(name)
    if (stored.snapshot === null && stored.updates.length === 0) return null
    const bytes = (stored.snapshot?.length ?? 0) + stored.updates.reduce((n, u) => n + u.update.length, 0)
    const last = stored.updates.length > 0 ? stored.updates[stored.updates.length - 1]!.at : 0
    return { name, bytes, tailUpdates: stored.updates.length, lastChangeAt: last, loaded: false, sessions: 0, updatesApplied: 0 }
  }

  /** The whole document as one Yjs update: from memory when loaded here, else from storage. */
  readState(name: string): Promise<Uint8Array> {
    return currentState(this.#registry, this.#storage, name)
  }


  /** Apply an update as the server: stored, sent to every session (and node); resolves once durable. */
  async applyUpdate(name: string, update: Uint8Array, userId: string | null): Promise<{ changed: boolean }> {
    const lease = await this.#registry.acquire(name)
    try {
      return await lease.doc.applyServerUpdate(update, userId)
    } finally {
      lease.release()
    }
  }

  /** Delete a document here and on every other node; its sessions are told. */
  async deleteDocument(name: string): Promise<void> {
    this.#backplane?.publishControl({ kind: 'document-deleted', document: name })
    await this.#registry.deleteDocument(name, deletedError(name))
    this.#onDeleted?.(name)
  }

  sessions(filter: { document?: string; tenant: string | null }): SessionSummary[] {
    const out: SessionSummary[] = []
    for (const [name, doc] of this.#loadedDocuments()) {
      if (filter.document !== undefined && name !== filter.document) continue
      if (filter.tenant !== null && !inTenant(filter.tenant, name)) continue
      for (const s of doc.sessions) out.push(summary(s, name))
    }
    return out
  }

  /**
   * End the sessions the filter names, here and (through the backplane) on every other node.
   * Returns how many were ended on this node.
   */
  kick(filter: KickFilter): number {
    this.#backplane?.publishControl({ kind: 'kick', ...filter })
    return this.#kickHere(filter)
  }

  #kickHere(filter: KickFilter): number {
    const ended: [DocumentSession, string][] = []
    for (const [name, doc] of this.#loadedDocuments()) {
      for (const s of doc.sessions) {
        const inScope = filter.tenant === undefined || filter.tenant === null || inTenant(filter.tenant, name)
        if (inScope && ('session' in filter ? s.id === filter.session : s.userId === filter.user)) ended.push([s, name])
      }
    }
    for (const [s, name] of ended) {
      s.documentError(new ConcordError('CONCORD_ERR_SESSION_KICKED', 'an administrator ended this session', { document: name }), 0, true)
    }
    if (ended.length > 0) this.#log.info({ sessions: ended.map(([s]) => s.id), users: [...new Set(ended.map(([s]) => s.userId))] }, 'sessions kicked')
    return ended.length
  }

  /** The documents held in memory on this node, by name. */
  *#loadedDocuments(): Generator<[string, LiveDocument]> {
    for (const name of this.#registry.names()) {
      const doc = this.#registry.peek(name)
      if (doc !== null) yield [name, doc]
    }
  }

  /** A control message from another node. Returns false when it is not one of these operations. */
  handleControl(message: ControlMessage): boolean {
    if (message.kind === 'kick') {
      const { session, user, tenant } = message
      if (session !== undefined) this.#kickHere({ session, tenant: tenant ?? null })
      else if (user !== undefined) this.#kickHere({ user, tenant: tenant ?? null })
      return true
    }
    if (message.kind === 'document-deleted') {
      // this node's appends to it are flushed, then what it stored is removed too
      this.#registry.deleteDocument(message.document, deletedError(message.document))
        .catch(err => this.#log.error({ err, document: message.document }, 'deleting a document another node deleted failed'))
      return true
    }
    return false
  }
}

function deletedError(document: string): ConcordError {
  return new ConcordError('CONCORD_ERR_DOC_DELETED', 'an administrator deleted this document', { document })
}

/** What this node knows of a document it holds (the only place the admin API reads a live document's figures). */
function loadedSummary(name: string, doc: LiveDocument): DocumentSummary {
  const { stats } = doc
  return { name, bytes: stats.approxBytes, tailUpdates: stats.tail.updates, lastChangeAt: stats.lastChangeAt, loaded: true, sessions: doc.sessions.size, updatesApplied: stats.updatesApplied }
}

function summary(s: DocumentSession, document: string): SessionSummary {
  return { id: s.id, document, userId: s.userId, role: s.role, protocol: s.protocol, openedAt: s.openedAt }
}
