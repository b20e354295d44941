import { createHmac } from 'node:crypto'
import type { AuthenticatedContext, ConcordExtension, SessionContext } from '../documents/extension-hooks.js'

export interface ConnectionWebhooksOptions {
  /** Where each event is POSTed as JSON. */
  url: string
  /** Signs each body: `x-concord-signature: sha256=<hex HMAC-SHA256 of the body>`. */
  secret?: string
  /** Deliveries in flight at once; beyond, events are dropped (and counted in `dropped`). Default 100. */
  maxInFlight?: number
  /** Per delivery (default 5 s). */
  timeoutMs?: number
  /** Told of a delivery that failed or was dropped. */
  onError?: (error: Error, event: ConnectionEvent) => void
}

export interface ConnectionEvent {
  event: 'connect' | 'disconnect'
  documentName: string
  sessionId: string
  userId: string | null
  transport: SessionContext['transport']
  role?: AuthenticatedContext['role']
  at: number
}

/**
 * POSTs `connect` (a session was authenticated) and `disconnect` (it ended) to a URL: one try each,
 * never on the edit path, never blocking a session; at most `maxInFlight` at once.
 */
export function createConnectionWebhooks(options: ConnectionWebhooksOptions): ConcordExtension & { readonly dropped: number; readonly delivered: number } {
  const maxInFlight = options.maxInFlight ?? 100
  const timeoutMs = options.timeoutMs ?? 5_000
  let inFlight = 0
  const state = { dropped: 0, delivered: 0 }
  const all = new Set<Promise<void>>()

  const post = (event: ConnectionEvent): void => {
    if (inFlight >= maxInFlight) {
      state.dropped++
      options.onError?.(new Error('too many webhook deliveries in flight; dropped'), event)
      return
    }
    inFlight++
    const body = JSON.stringify(event)
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (options.secret !== undefined) headers['x-concord-signature'] = `sha256=${createHmac('sha256', options.secret).update(body).digest('hex')}`
    const p = fetch(options.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) })
      .then(res => {
        if (!res.ok) throw new Error(`webhook answered ${res.status}`)
        state.delivered++
      })
      .catch(err => { options.onError?.(err as Error, event) })
      .finally(() => { inFlight--; all.delete(p) })
    all.add(p)
  }

  return {
    name: 'connection-webhooks',
    get dropped() { return state.dropped },
    get delivered() { return state.delivered },
    onAuthenticate(ctx: AuthenticatedContext) {
      post({ event: 'connect', documentName: ctx.documentName, sessionId: ctx.sessionId, userId: ctx.userId, transport: ctx.transport, role: ctx.role, at: Date.now() })
    },
    onDisconnect(ctx: SessionContext) {
      post({ event: 'disconnect', documentName: ctx.documentName, sessionId: ctx.sessionId, userId: ctx.userId, transport: ctx.transport, at: Date.now() })
    },
    async onDestroy() {
      await Promise.all(all)
    },
  }
}
