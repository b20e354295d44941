export { createServer, VERSION, type ConcordServer } from './server.js'
export {
  DEFAULTS, allowEveryone, type ServerOptions, type ResolvedServerOptions, type Authenticate, type AuthenticateContext, type AuthResult,
  type Authorize, type AuthorizeContext, type AuthConfig,
} from './options.js'
export { mintToken, createTokenVerifier, roleFromToken, type ConcordClaims, type JwtConfig, type MintOptions, type TokenVerifier, type VerifiedToken } from './auth/jwt.js'
export {
  AccessControl, createFileAccessStore, createMemoryAccessStore,
  type AccessStore, type AccessState, type AccessChange, type RoleOverride, type SessionIdentity,
} from './auth/access-control.js'
export { matchesPattern, roleFor } from './auth/patterns.js'
export { createLogger, silentLogger } from './logger.js'
export { createMemoryStorage, type MemoryStorageOptions } from './storage/memory-storage.js'
export type { StorageAdapter, StoredUpdate, LoadedDocument, AppendRecord, DocumentInfo, HistoryStore, StoredVersion, NewVersion, VersionStorage } from './storage/storage-adapter.js'
export { signWebhook, verifyWebhookSignature, type WebhookEndpoint, type WebhookEvent } from './webhooks.js'
export { ServerMetrics } from './metrics.js'
export { DocumentRegistry, type DocumentLease } from './document-registry.js'
export { LiveDocument } from './live-document.js'
export type { DocumentSession } from './document-session.js'
