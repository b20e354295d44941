
/**
 * What connects the nodes of a cluster: every node serves any document, and the
 * updates applied on one node reach the sessions of that document on the others.
 * `RedisBackplane` implements it on Redis Streams.
 */
export interface BackplaneHandlers {
  /**
   * An update another node applied, with its writer's user id when known. `relayId` null: it was
   * durable when published; otherwise it was relayed before its append committed, and its origin
   * confirms it (`durable`) once it is.
   */
  update(update: Uint8Array, writer?: string | null, relayId?: string | null, trace?: string | null): void
  // `trace`: the W3C traceparent of the edit on the node (or region) it came from, so that one edit is one trace
  /** Relayed updates (by their `relayId`) are durable now. */
  durable?(relayIds: string[]): void
  /** What was published may have been lost: reload the document from storage. */
  resync(): void
  /** Presence changes of the sessions on another node (an awareness update). */
  presence(update: Uint8Array): void
  /** A stateless message from a session on another node. */
  stateless?(payload: string): void
}

export type ControlMessage =
  | { kind: 'access'; change: AccessChange }
  /** An administrator deleted the document: close its sessions, flush, delete what this node stored. */
  | { kind: 'document-deleted'; document: string }
  /** An administrator kicked a session (by id) or every session of a user (in a tenant, or all). */
  | { kind: 'kick'; session?: string; user?: string; tenant?: string | null }

export interface Backplane {
  /** This node's id (entries a node wrote are not delivered back to it). */
  readonly nodeId: string
  /**
   * Where to read a document's stream from: take it before loading, subscribe from it after. The
   * current end of the stream, or, when recent entries relay updates whose durability confirmation
   * is not in the stream yet (the load may not hold them), just before the oldest of those.
   */
  position(document: string): Promise<string>
  /** Deliver the document's entries after `fromId`; returns the unsubscribe function. */
  subscribe(document: string, fromId: string, handlers: BackplaneHandlers): () => void
  /** A durable update. `writer`: the user whose update it is (the other nodes learn which Yjs client ids that user owns). */
  publishUpdate(document: string, update: Uint8Array, writer?: string | null, trace?: string | null): void
  /**
   * Relay an update at once, before it is durable; returns its relay id, which `confirmDurable`
   * names once it is. Entries are published in call order. Optional (added after 0.1): without
   * it, an update is published with `publishUpdate` once durable.
   */
  relayUpdate?(document: string, update: Uint8Array, writer?: string | null, trace?: string | null): string
  /** An update this node relayed is durable now (confirmations are sent together, one entry per document and turn). */
  confirmDurable?(document: string, relayId: string): void
  /** This node's sessions' presence changes (coalesced per room by the caller). */
  publishPresence(document: string, update: Uint8Array): void
  /** A stateless message of one of this node's sessions, for the document's sessions on the other nodes (optional: added in 0.3). */
  publishStateless?(document: string, payload: string): void
  /** A message for every other node (revocations, role changes). */
  publishControl(message: ControlMessage): void
  /** Receives the other nodes' control messages. */
  onControl: ((message: ControlMessage) => void) | null
  /** Called when the backplane came back after an outage, before the resync markers go out. */
  onReconnect: ((documents: string[]) => Promise<void>) | null
  /** Told, for each entry from another node, how long ago it was published (seconds). */
  onLag: ((seconds: number) => void) | null
  /** For /readyz. */
  ping(): Promise<void>
  close(): Promise<void>
}

/** What changed, so that live sessions can be checked again. */
export type AccessChange =
  | { kind: 'revoked-user'; tenant: string; userId: string }
  /** `tenant`: the revocation concerns that tenant's credentials only (absent or null: all). */
  | { kind: 'revoked-token'; id: string; tenant?: string | null }
  | { kind: 'role'; tenant: string; userId: string; pattern: string }
  /** Anything may have changed (the state was read again after changes may have been missed). */
  | { kind: 'all' }
