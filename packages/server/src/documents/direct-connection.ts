import * as Y from 'yjs'
import type { ConcordError } from '@concord/protocol'
import type { DocumentSession } from './document-session.js'
import type { SharedMessage } from './shared-message.js'
import type { LiveDocument } from './live-document.js'

/** Where a direct connection gets its document (the registry). */
export interface DirectDocumentSource {
  acquire(name: string): Promise<{ readonly doc: LiveDocument; release(): void }>
}

export interface DirectConnectionOptions {
  /** Whose edits these are (authorship, client-id ownership, history). Default: null (the server). */
  userId?: string | null
}

/** The origin of what the server sends to a direct connection's Y.Doc. */
const FROM_SERVER = Symbol('concord.direct.server')

/**
 * An in-process session on a document for bots and AI agents: a Y.Doc of its own, kept in sync
 * with the server's copy, whose changes go through the same checks, log, acks, fan-out and hooks
 * as a client's (as one more session of the document, protocol `server`). No socket, no token:
 * the embedding code decides who may use it.
 */
export class DirectConnection implements DocumentSession {
  readonly id: string
  readonly document: string
  readonly userId: string | null
  readonly role = 'write' as const
  readonly protocol = 'server' as const
  readonly openedAt = Date.now()
  /** The document, in sync with the server's: change it like any Y.Doc. */
  readonly doc = new Y.Doc()
  /** Refusals of this connection's updates (the update stays in `doc`; reopen to drop it). */
  readonly errors: ConcordError[] = []
  readonly #lease: { readonly doc: LiveDocument; release(): void }
  #seq = 0
  #acked = 0
  #waiters: { seq: number; resolve: () => void; reject: (e: ConcordError) => void }[] = []
  #closed = false

  private constructor(name: string, lease: { readonly doc: LiveDocument; release(): void }, options: DirectConnectionOptions, id: string) {
    this.id = id
    this.document = name
    this.userId = options.userId ?? null
    this.#lease = lease
    Y.applyUpdate(this.doc, Y.encodeStateAsUpdate(lease.doc.ydoc), FROM_SERVER)
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === FROM_SERVER || this.#closed) return
      this.#lease.doc.enqueueUpdate(this, ++this.#seq, update)
    })
    lease.doc.addSession(this)
  }

  static async open(source: DirectDocumentSource, name: string, options: DirectConnectionOptions, id: string): Promise<DirectConnection> {
    return new DirectConnection(name, await source.acquire(name), options, id)
  }

  /** Resolves once every change made so far is durable; rejects with the refusal of one of them. */
  whenSaved(): Promise<void> {
    const seq = this.#seq
    if (this.#acked >= seq) return Promise.resolve()
    return new Promise((resolve, reject) => this.#waiters.push({ seq, resolve, reject }))
  }

  /** Leave the document (what was sent before keeps its way to storage). */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#lease.doc.removeSession(this)
    this.#lease.release()
    for (const w of this.#waiters.splice(0)) w.resolve()
    this.doc.destroy()
  }

  sendUpdate(message: SharedMessage): void {
    if (!this.#closed && message.kind === 'update') Y.applyUpdate(this.doc, message.payload, FROM_SERVER)
  }

  sendUpdates(messages: readonly SharedMessage[]): void {
    for (const m of messages) this.sendUpdate(m)
  }

  sendAwareness(): void {}

  ack(seq: number): void {
    if (seq > this.#acked) this.#acked = seq
    const ready = this.#waiters.filter(w => w.seq <= this.#acked)
    this.#waiters = this.#waiters.filter(w => w.seq > this.#acked)
    for (const w of ready) w.resolve()
  }

  documentError(error: ConcordError, seq: number, closed: boolean): void {
    this.errors.push(error)
    if (seq > 0) {
      // a refused update is never acked: its waiters learn why
      const failed = this.#waiters.filter(w => w.seq >= seq)
      this.#waiters = this.#waiters.filter(w => w.seq < seq)
      for (const w of failed) w.reject(error)
    }
    if (closed) this.close()
  }

  accessChanged(): void {}
}
