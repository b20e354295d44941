export { ConcordClient, createClient, type ClientOptions, type ClientStatus, type ClientEvents, type WebSocketLike, type WebSocketConstructor } from './client.js'
export { DocHandle, type DocStatus, type DocHandleEvents } from './doc-handle.js'
export { backoffDelay, type BackoffOptions } from './backoff.js'
export { createMemoryOfflineStore, encodeSnapshot, decodeSnapshot, type OfflineStore, type OfflineSnapshot } from './offline-store.js'
