import { createClient, createIndexedDbOfflineStore, type ConcordClient, type WebSocketConstructor, type WebSocketLike } from '@concord/client'
import type { DemoUser, TokenSource } from './session.js'

/**
 * The page's one Concord client: one socket for the document list and the open document.
 *
 * The browser knows when the device loses its network (`navigator.onLine`, the `offline` event)
 * long before a half-open TCP connection times out, so the client follows it: when the browser
 * goes offline the socket is dropped at once (the SDK reports `offline` 3 s later, as it would for
 * any outage), no connection is attempted while the browser says it is offline (each attempt would
 * fail and log an error), and when the network is back the client reconnects without waiting for
 * its backoff. Edits made meanwhile stay in the documents (and in IndexedDB) and are sent then.
 */
export function connect(user: DemoUser, tokens: TokenSource): ConcordClient {
  // served by `concord serve --demo` at the same origin; Vite's dev server forwards /ws to it
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${import.meta.env.DEV ? '/ws' : '/'}`
  const client = createClient({
    url,
    WebSocket: onlineAwareWebSocket(),
    getToken: () => tokens.get(),
    clientName: '@concord/demo',
    reconnect: { minDelayMs: 250, maxDelayMs: 5_000 },
    // only writers have edits to keep; one store per user, so two people in one browser do not mix theirs
    ...(user.role === 'write' ? { offlineStore: createIndexedDbOfflineStore({ dbName: `concord-demo:${user.name.toLowerCase()}` }) } : {}),
  })
  window.addEventListener('offline', () => client.reconnect())
  window.addEventListener('online', () => client.reconnect())
  return client
}

/** The browser's WebSocket, except that while the browser is offline a connection fails at once without dialling. */
function onlineAwareWebSocket(): WebSocketConstructor {
  const Native = WebSocket
  return class {
    constructor(url: string, protocols?: string | string[]) {
      if (navigator.onLine) return new Native(url, protocols) as unknown as WebSocketLike
      return new UnreachableSocket()
    }
  } as unknown as WebSocketConstructor
}

/** A socket that closes as a dropped connection (1006) right after it is created. */
class UnreachableSocket implements WebSocketLike {
  binaryType = 'arraybuffer'
  readyState = 0
  readonly protocol = ''
  readonly bufferedAmount = 0
  onopen: ((ev: unknown) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null

  constructor() {
    setTimeout(() => {
      if (this.readyState === 3) return
      this.readyState = 3
      this.onerror?.({ type: 'error' })
      this.onclose?.({ code: 1006, reason: '' })
    }, 0)
  }

  send(): void { /* never open */ }

  close(): void {
    this.readyState = 3
  }
}
