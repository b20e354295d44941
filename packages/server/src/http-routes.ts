import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { StorageAdapter } from './storage/storage-adapter.js'
import type { DocumentRegistry } from './document-registry.js'
import type { Gateway } from './gateway.js'
import type { ResolvedServerOptions } from './options.js'
import { handleAdmin } from './admin-routes.js'

export interface HttpRouteDeps {
  storage: StorageAdapter
  registry: DocumentRegistry
  gateway: () => Gateway
  isDraining: () => boolean
  version: string
  logger: Logger
  options: ResolvedServerOptions
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

/** Plain HTTP endpoints: health, readiness, and a short description of the server. */
export function createHttpHandler(deps: HttpRouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://localhost')
    } catch {
      json(res, 400, { error: 'CONCORD_ERR_HTTP_BAD_REQUEST' })
      return
    }
    if (handleAdmin(req, res, url.pathname, deps.options)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: 'CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED' })
      return
    }
    switch (url.pathname) {
      case '/healthz':
        json(res, 200, { status: 'ok' })
        return
      case '/readyz':
        if (deps.isDraining()) {
          json(res, 503, { status: 'draining', error: 'CONCORD_ERR_SERVER_SHUTTING_DOWN' })
          return
        }
        {
          const backplane = deps.options.backplane
          Promise.all([
            deps.storage.ping().then(() => null, (err: Error) => ({ error: 'CONCORD_ERR_STORAGE_WRITE_FAILED', message: `storage: ${err.message}` })),
            backplane === null ? null : backplane.ping().then(() => null, (err: Error) => ({ error: 'CONCORD_ERR_BACKPLANE_UNAVAILABLE', message: `backplane: ${err.message}` })),
          ]).then(([storage, bp]) => {
            const problem = storage ?? bp
            const body = { storage: deps.storage.kind, ...(backplane !== null ? { backplane: 'redis', node: backplane.nodeId } : {}) }
            if (problem === null) json(res, 200, { status: 'ready', ...body })
            else json(res, 503, { status: 'unready', ...body, ...problem })
          }, () => json(res, 503, { status: 'unready' }))
        }
        return
      case '/':
        json(res, 200, {
          name: 'concord',
          version: deps.version,
          storage: deps.storage.kind,
          documentsLoaded: deps.registry.size,
          ...deps.gateway().stats(),
          protocols: { native: 'WebSocket subprotocol "concord"', yWebsocket: 'ws://host/<room name>' },
        })
        return
      default:
        json(res, 404, { error: 'CONCORD_ERR_HTTP_NOT_FOUND' })
    }
  }
  return (req, res) => {
    try {
      handle(req, res)
    } catch (err) {
      deps.logger.error({ err }, 'HTTP handler failed')
      if (!res.headersSent) json(res, 500, { error: 'CONCORD_ERR_SERVER_INTERNAL' })
      else res.destroy()
    }
  }
}
