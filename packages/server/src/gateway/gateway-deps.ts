import type { ExtensionHooks } from '../documents/extension-hooks.js'
import type { Logger } from 'pino'
import type { ServerConfig } from '../config/server-config.js'
import type { ServerMetrics } from '../ops/metrics.js'
import type { Authorizer } from '../auth/session-guard.js'
import type { DocumentSession } from '../documents/document-session.js'
import type { SyncReply } from '../documents/sync-replies.js'

/** The configuration values the gateway reads (a `ServerConfig` has them all). */
export type GatewayConfig = Pick<ServerConfig,
  | 'maxMessageBytes' | 'chunkBytes' | 'chunkWindowBytes' | 'heartbeatIntervalMs' | 'handshakeTimeoutMs' | 'serverName'
  | 'maxDocumentsPerConnection' | 'maxPendingDocuments' | 'maxQueuedMessagesBeforeOpen' | 'maxQueuedBytesBeforeOpen'
  | 'maxBufferedBytes' | 'slowReaderStallMs' | 'backpressureBytes'
  | 'rateLimitMessagesPerSecond' | 'rateLimitMessagesBurst' | 'rateLimitBytesPerSecond' | 'rateLimitBytesBurst'
  | 'maxConnectionsPerIp' | 'trustProxyHops' | 'maxStatelessBytes' | 'statelessPerSecond' | 'compressionThresholdBytes'>

/** The metrics the gateway counts. */
export type GatewayMetrics = Pick<ServerMetrics, 'message' | 'refused' | 'syncStep1Coalesced'>

/** Grants a session access to a document (`Authorizer`): the permission check, and the access state its guard watches. */
export type SessionAuthorizer = Pick<Authorizer, 'grant' | 'access'>

/**
 * What a transport session calls on its document (`LiveDocument`): every call the gateway
 * makes to a document is one of these, made from `TransportSession`.
 */
export interface SessionDocument {
  /** The document's name (a session keeps this string rather than its own copy of it). */
  readonly name: string
  readonly stats: {
    /** The document failed after it loaded (its sessions were told). */
    readonly failed: boolean
  }
  addSession(session: DocumentSession): void
  removeSession(session: DocumentSession): void
  enqueueUpdate(session: DocumentSession, seq: number, update: Uint8Array): void
  readonly sync: {
    /** `fn` runs once the document's Y.Doc holds its state (at once, or after a large document's load). */
    whenIntegrated(fn: () => void): void
    stateVector(): Uint8Array
    /** The reply to a peer's sync step 1: now, or (a large document) from the merge worker. */
    prepareReply(stateVector?: Uint8Array): SyncReply | Promise<SyncReply>
  }
  readonly presence: {
    /** Every client's presence, for a session that just joined or asked (null: nobody's). */
    states(): Uint8Array | null
    /** The room's latest presence, for a session whose presence was held while it was congested. */
    snapshot(): Uint8Array | null
    apply(session: DocumentSession, update: Uint8Array): void
  }
  readonly signals: {
    /** A stateless message from `session` for the document's other sessions, on every node. */
    send(session: DocumentSession, payload: string): void
  }
}

/** Where sessions get their documents (`DocumentRegistry`): a lease keeps one loaded until released. */
export interface DocumentSource {
  acquire(name: string): Promise<{ readonly doc: SessionDocument; release(): void }>
}

/** What the gateway needs: the composition root builds it from the resolved options. */
export interface GatewayDeps {
  readonly config: GatewayConfig
  readonly documents: DocumentSource
  readonly authorizer: SessionAuthorizer
  readonly metrics: GatewayMetrics
  readonly logger: Logger
  /** Server extensions' session hooks. */
  readonly hooks?: ExtensionHooks
}
