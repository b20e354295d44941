import * as Y from 'yjs'
import type { Logger } from 'pino'
import type { StorageAdapter } from '../storage/storage-adapter.js'

/**
 * Who owns each Yjs client id of a document: the user who first wrote under it (from the
 * authors table, the log tail's writers, other nodes' updates, and a writer's presence). Only
 * its owner may add items under a client id (ARCHITECTURE.md section 3): another writer could
 * otherwise take the clocks its owner is about to use, and the owner's re-sent edit would be
 * skipped as known. Owners are written to the authors table once, batched per microtask.
 */
export class ClientOwners {
  readonly #owners = new Map<number, string>()
  /** Yjs client ids whose author this node has recorded, and those waiting to be. */
  readonly #known = new Set<number>()
  #pending: { client: number; userId: string }[] = []
  /** The authors being written (compaction waits for them: the log tail is their fallback). */
  #written: Promise<void> = Promise.resolve()
  readonly #document: string
  readonly #storage: StorageAdapter
  readonly #log: Logger

  constructor(document: string, storage: StorageAdapter, log: Logger) {
    this.#document = document
    this.#storage = storage
    this.#log = log
  }

  /** The user who owns a Yjs client id (undefined: nobody yet). */
  of(client: number): string | undefined {
    return this.#owners.get(client)
  }

  /** Record `userId` as the owner of `client` (the caller checked it has none). */
  claim(client: number, userId: string): void {
    this.#owners.set(client, userId)
  }

  /**
   * The owners stored in the authors table, then the writers of the log tail in order (an update
   * is durable with its writer at once; its authors row is written a moment later).
   */
  learn(authors: Map<number, string>, tail: readonly { update: Uint8Array; userId: string | null }[]): void {
    for (const [client, userId] of authors) {
      this.#owners.set(client, userId)
      this.#known.add(client)
    }
    for (const u of tail) if (u.userId !== null) this.learnWriter(u.update, u.userId)
  }

  /** The node that stored `update` checked its writer's ownership: learn the client ids it claimed. */
  learnWriter(update: Uint8Array, writer: string): void {
    claimClients(this.#owners, update, writer)
  }

  /** Write a client id's owner to the authors table (once; batched per microtask). */
  store(client: number, userId: string): void {
    if (this.#known.has(client)) return
    this.#known.add(client)
    if (this.#pending.push({ client, userId }) === 1) {
      queueMicrotask(() => {
        const list = this.#pending
        this.#pending = []
        const write = this.#storage.recordAuthors(this.#document, list).catch(err => this.#log.warn({ err, document: this.#document }, 'recording authors failed'))
        this.#written = this.#written.then(() => write)
      })
    }
  }

  /** Settles once the authors rows queued so far are written (or failed). */
  written(): Promise<void> {
    return this.#written
  }
}

/** The client ids `update` writes under that `owners` has no owner for yet go to `writer`. */
function claimClients(owners: Map<number, string>, update: Uint8Array, writer: string): void {
  let clients: Map<number, number>
  try {
    clients = Y.parseUpdateMeta(update).to
  } catch {
    return // applying it reports it
  }
  for (const client of clients.keys()) if (!owners.has(client)) owners.set(client, writer)
}

/**
 * The owners of a document's Yjs client ids as a load learns them (`ClientOwners.learn`): the
 * authors table, then the writers of the log tail in order (an update is durable with its writer
 * at once; its authors row is written a moment later, so the tail may know more than the table).
 */
export function ownersFromLog(authors: ReadonlyMap<number, string>, tail: readonly { update: Uint8Array; userId: string | null }[]): Map<number, string> {
  const owners = new Map(authors)
  for (const u of tail) if (u.userId !== null) claimClients(owners, u.update, u.userId)
  return owners
}
