export { createServer, VERSION, type ConcordServer } from './server.js'
export { type ServerOptions, type ResolvedServerOptions, type ServerServices } from './server-options.js'
export { DEFAULTS, ConfigError, type ServerConfig } from './config/server-config.js'
export type { CorsOptions, CorsConfig } from './config/cors-config.js'
export {
  allowEveryone, type Authenticate, type AuthenticateContext, type AuthResult, type Authorize, type AuthorizeContext, type AuthConfig,
} from './auth/auth-hooks.js'
export { mintToken, createTokenVerifier, roleFromToken, type ConcordClaims, type JwtConfig, type MintOptions, type TokenVerifier, type VerifiedToken } from './auth/jwt.js'
export {
  AccessControl, createFileAccessStore, createMemoryAccessStore,
  type AccessStore, type AccessState, type AccessChange, type RoleOverride, type SessionIdentity,
} from './auth/access-control.js'
export { matchesPattern, roleFor } from './auth/patterns.js'
export { createLogger, silentLogger } from './ops/logger.js'
export { createMemoryStorage, type MemoryStorageOptions } from './storage/memory-storage.js'
export type { StorageAdapter, StoredUpdate, LoadedDocument, AppendRecord, DocumentInfo, HistoryStore, StoredVersion, NewVersion, VersionStorage } from './storage/storage-adapter.js'
export { signWebhook, verifyWebhookSignature, type WebhookEndpoint, type WebhookEvent } from './ops/webhooks.js'
export { ServerMetrics } from './ops/metrics.js'
export type { Backplane, BackplaneHandlers, ControlMessage } from './backplane/backplane.js'
export type { NodeDirectory, NodeStatus, NodeFigures, QueryAnswers } from './backplane/node-directory.js'
// the Redis backplane itself is `createRedisBackplane` from '@concord/server/backplane/redis' (it loads ioredis),
// the node directory `createNodeDirectory` from '@concord/server/backplane/node-directory'

// Internals exported by 0.1. They still work, but they are not the API: a library user configures
// `createServer` and talks to documents over the protocols or the HTTP API (docs/embedding.md).
import { DocumentRegistry as DocumentRegistryClass, type DocumentHandle as DocumentHandleType } from './documents/document-registry.js'
import { LiveDocument as LiveDocumentClass } from './documents/live-document.js'
import type { DocumentSession as DocumentSessionType } from './documents/document-session.js'
/** @deprecated internal: the server's registry of loaded documents (reach it as `server.registry` if you must). */
export const DocumentRegistry = DocumentRegistryClass
/** @deprecated internal. */
export type DocumentRegistry = DocumentRegistryClass
/** @deprecated internal: what `registry.acquire` returns (a reference that keeps a document loaded). */
export type DocumentHandle = DocumentHandleType
/** @deprecated internal: the 0.1 name of `DocumentHandle`. */
export type DocumentLease = DocumentHandleType
/** @deprecated internal: one loaded document. */
export const LiveDocument = LiveDocumentClass
/** @deprecated internal. */
export type LiveDocument = LiveDocumentClass
/** @deprecated internal: what a document knows of a client session. */
export type DocumentSession = DocumentSessionType
export {
  type ConcordExtension, type ConnectContext, type SessionContext, type AuthenticatedContext, type LoadContext, type BeforeChangeContext,
  type ChangeContext, type StoreContext,
} from './documents/extension-hooks.js'
export { DirectConnection, type DirectConnectionOptions } from './documents/direct-connection.js'
