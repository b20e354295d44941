
/**
 * What connects the nodes of a cluster: every node serves any document, and the
 * updates applied on one node reach the sessions of that document on the others.
 * `RedisBackplane` implements it on Redis Streams.
 */
export interface BackplaneHandlers {
  /** An update another node applied (and appended to storage, or will once durable), with its writer's user id when known. */
  update(update: Uint8Array, writer?: string | null): void
  /** What was published may have been lost: reload the document from storage. */
  resync(): void
  /** Presence changes of the sessions on another node (an awareness update). */
  presence(update: Uint8Array): void
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
  /** The current end of a document's stream: take it before loading, subscribe from it after. */
  position(document: string): Promise<string>
  /** Deliver the document's entries after `fromId`; returns the unsubscribe function. */
  subscribe(document: string, fromId: string, handlers: BackplaneHandlers): () => void
  /** `writer`: the user whose update it is (the other nodes learn which Yjs client ids that user owns). */
  publishUpdate(document: string, update: Uint8Array, writer?: string | null): void
  /** This node's sessions' presence changes (coalesced per room by the caller). */
  publishPresence(document: string, update: Uint8Array): void
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
