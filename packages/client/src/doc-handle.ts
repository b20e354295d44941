import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import { encodeFrame, FRAME_KINDS, type Frame, type Role, type SeqRange } from '@concord/protocol'
import { Emitter } from './emitter.js'

export type DocStatus = 'connecting' | 'syncing' | 'synced' | 'closed' | 'error'

export interface DocHandleEvents {
  /** Initial sync with the server is done (after every (re)open). */
  synced: []
  /** Every local update so far is durable on the server. */
  saved: []
  /** The server acked these client seqs as durable. */
  ack: [seqs: number[]]
  status: [status: DocStatus]
  /** A document-scoped error from the server. */
  error: [error: { code: string; message: string; seq: number; closed: boolean }]
}

/** What the handle needs from the client that owns the socket. */
export interface HandleTransport {
  send(bytes: Uint8Array, document: string): void
  readonly connected: boolean
  tokenFor(document: string): Promise<string>
  onHandleClosed(handle: DocHandle): void
}

const REMOTE = Symbol('concord-remote')

/**
 * One open document: its Y.Doc, its Awareness, and the set of local updates
 * not yet acked as durable (re-sent after every reconnect).
 */
export class DocHandle extends Emitter<DocHandleEvents> {
  readonly name: string
  readonly doc: Y.Doc
  readonly awareness: Awareness
  role: Role | null = null
  status: DocStatus = 'connecting'
  readonly #transport: HandleTransport
  readonly #pending = new Map<number, Uint8Array>()
  #nextSeq = 1
  #opened = false
  #openSent = false
  #closed = false

  constructor(name: string, transport: HandleTransport, doc?: Y.Doc) {
    super()
    this.name = name
    this.#transport = transport
    this.doc = doc ?? new Y.Doc()
    this.awareness = new Awareness(this.doc)
    this.doc.on('update', this.#onLocalUpdate)
    this.awareness.on('update', this.#onLocalAwareness)
  }

  /** Local updates not yet durable on the server. */
  get pendingCount(): number {
    return this.#pending.size
  }

  get synced(): boolean {
    return this.status === 'synced'
  }

  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve()
    return new Promise(resolve => this.once('synced', () => resolve()))
  }

  /** Resolves when every local update made so far is durable. */
  whenSaved(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve()
    return new Promise(resolve => this.once('saved', () => resolve()))
  }

  /** Stop syncing this document; the others on the socket keep running. */
  close(): void {
    if (this.#closed) return
    if (this.#openSent && this.#transport.connected) {
      this.#transport.send(encodeFrame({ kind: FRAME_KINDS.CLOSE, document: this.name }), this.name)
    }
    this.#closed = true
    this.#opened = false
    this.#setStatus('closed')
    this.doc.off('update', this.#onLocalUpdate)
    this.awareness.off('update', this.#onLocalAwareness)
    this.awareness.destroy()
    this.#transport.onHandleClosed(this)
  }

  get isClosed(): boolean {
    return this.#closed
  }

  /** @internal the socket is up (after WELCOME): ask the server to open the document. */
  async _connect(): Promise<void> {
    if (this.#closed) return
    this.#setStatus('connecting')
    const token = await this.#transport.tokenFor(this.name)
    if (this.#closed || !this.#transport.connected) return
    this.#transport.send(encodeFrame({
      kind: FRAME_KINDS.OPEN, document: this.name, token, stateVector: Y.encodeStateVector(this.doc),
    }), this.name)
    this.#openSent = true
  }

  /** @internal the socket went away. */
  _disconnected(): void {
    this.#opened = false
    this.#openSent = false
    if (this.#closed || this.status === 'error') return
    this.#setStatus('connecting')
    // others' presence is unknown while offline (no ghost cursors)
    const others = [...this.awareness.getStates().keys()].filter(id => id !== this.doc.clientID)
    if (others.length > 0) removeAwarenessStates(this.awareness, others, REMOTE)
  }

  /** @internal a frame for this document. */
  _receive(frame: Frame): void {
    if (this.#closed) return
    switch (frame.kind) {
      case FRAME_KINDS.OPENED:
        // updates made from here on stay queued until SYNC_STEP1, so that the
        // server receives everything unacked in order (no gaps it must hold back)
        this.role = frame.role
        this.#setStatus('syncing')
        return
      case FRAME_KINDS.SYNC_STEP2:
        Y.applyUpdate(this.doc, frame.update, REMOTE)
        if (this.status === 'syncing') this.#setStatus('synced')
        this.emit('synced')
        return
      case FRAME_KINDS.SYNC_STEP1:
        this.#opened = true
        this.#resend(frame.stateVector)
        this.#sendLocalAwareness()
        return
      case FRAME_KINDS.UPDATE:
        Y.applyUpdate(this.doc, frame.update, REMOTE)
        return
      case FRAME_KINDS.AWARENESS:
        applyAwarenessUpdate(this.awareness, frame.update, REMOTE)
        return
      case FRAME_KINDS.ACK:
        this.#acked(frame.ranges)
        return
      case FRAME_KINDS.ERROR:
        if (frame.seq > 0 && this.#pending.delete(frame.seq) && this.#pending.size === 0) this.emit('saved')
        if (frame.closed) {
          this.#opened = false
          this.#openSent = false
          this.#setStatus('error')
        }
        this.emit('error', { code: frame.code, message: frame.message, seq: frame.seq, closed: frame.closed })
        return
      default:
        return
    }
  }

  /** @internal re-open after a document-scoped error that closed it (e.g. a retryable one). */
  _reopen(): void {
    if (this.#closed || this.#opened || this.#openSent) return
    this.status = 'connecting'
    void this._connect()
  }

  #resend(serverStateVector: Uint8Array): void {
    if (this.#pending.size > 0) {
      for (const [seq, update] of this.#pending) this.#sendUpdate(seq, update)
      return
    }
    // nothing pending, but the server may lack something we have (e.g. it lost unacked state)
    const diff = Y.encodeStateAsUpdate(this.doc, serverStateVector)
    if (!isEmptyUpdate(diff)) this.#track(diff)
  }

  #acked(ranges: SeqRange[]): void {
    const seqs: number[] = []
    for (const r of ranges) {
      // ranges name what the server saved; only seqs still pending count (an ack may repeat)
      if (r.to - r.from > this.#pending.size) {
        for (const seq of [...this.#pending.keys()]) if (seq >= r.from && seq <= r.to && this.#pending.delete(seq)) seqs.push(seq)
      } else {
        for (let seq = r.from; seq <= r.to; seq++) if (this.#pending.delete(seq)) seqs.push(seq)
      }
    }
    if (seqs.length > 0) this.emit('ack', seqs)
    if (seqs.length > 0 && this.#pending.size === 0) this.emit('saved')
  }

  #track(update: Uint8Array): void {
    const seq = this.#nextSeq++
    this.#pending.set(seq, update)
    if (this.#opened && this.#transport.connected) this.#sendUpdate(seq, update)
  }

  #sendUpdate(seq: number, update: Uint8Array): void {
    this.#transport.send(encodeFrame({ kind: FRAME_KINDS.UPDATE, document: this.name, seq, update }), this.name)
  }

  readonly #onLocalUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === REMOTE || this.#closed) return
    this.#track(update)
  }

  readonly #onLocalAwareness = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown): void => {
    if (origin === REMOTE || !this.#opened || !this.#transport.connected) return
    const changed = added.concat(updated, removed)
    this.#transport.send(encodeFrame({
      kind: FRAME_KINDS.AWARENESS, document: this.name, update: encodeAwarenessUpdate(this.awareness, changed),
    }), this.name)
  }

  #sendLocalAwareness(): void {
    if (this.awareness.getLocalState() === null) return
    this.#transport.send(encodeFrame({
      kind: FRAME_KINDS.AWARENESS, document: this.name, update: encodeAwarenessUpdate(this.awareness, [this.doc.clientID]),
    }), this.name)
  }

  #setStatus(status: DocStatus): void {
    if (this.status === status) return
    this.status = status
    this.emit('status', status)
  }
}

function isEmptyUpdate(update: Uint8Array): boolean {
  // an update with no structs and an empty delete set encodes as [0, 0]
  return update.length === 2 && update[0] === 0 && update[1] === 0
}
