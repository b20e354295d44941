// The Node entry of @concord/client: everything the main entry exports, with a
// `createClient` that needs no WebSocket option (it brings `ws`, a dependency of
// this package), and the file offline store.
//
// It uses `ws` on every Node version, also where Node has a global WebSocket
// (22 and later): one implementation on every Node, the one `npm test` runs
// (the e2e tests and the SDK's own), with the `bufferedAmount` the upload pacing
// reads. Pass `options.WebSocket` to use another one.
//
// It re-exports the main entry's modules one by one rather than `./index.js`
// (a package never imports its own index); node.test.ts keeps the two
// lists equal.
import { WebSocket } from 'ws'
import { ConcordClient, type ClientOptions, type WebSocketConstructor } from './client.js'

export { ConcordClient, type ClientOptions, type ClientStatus, type ClientEvents, type WebSocketLike, type WebSocketConstructor } from './client.js'
export { DocHandle, type DocStatus, type DocHandleEvents, type TransferProgress, type VersionInfo } from './doc-handle.js'
export { backoffDelay, type BackoffOptions } from './backoff.js'
export { createMemoryOfflineStore, encodeSnapshot, decodeSnapshot, type OfflineStore, type OfflineSnapshot } from './offline-store.js'
export { Presence, type Peer, type PresenceOptions } from './presence.js'
export { createIndexedDbOfflineStore, type IndexedDbOfflineStore, type IndexedDbOfflineStoreOptions } from './indexeddb-offline-store.js'
export { createFileOfflineStore } from './file-offline-store.js'

/** `ws`'s WebSocket, typed as the subset the client uses (so no `ws` type reaches our declarations). */
const NodeWebSocket = WebSocket as unknown as WebSocketConstructor

/**
 * `createClient` for Node: the same client, with `ws` as its WebSocket unless
 * `options.WebSocket` gives another. Keep documents across restarts with
 * `offlineStore: createFileOfflineStore(dir)`.
 */
export function createClient(options: ClientOptions): ConcordClient {
  return new ConcordClient({ ...options, WebSocket: options.WebSocket ?? NodeWebSocket })
}
