import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { DocumentRegistry } from '../documents/document-registry.js'
import type { Gateway } from '../gateway/gateway.js'
import type { ResolvedServerOptions } from '../server-options.js'
import { authenticateAdmin, handleAdmin, sameSecret } from './admin-routes.js'
import { handleHistory } from './history-routes.js'
import { createStaticHandler } from './static-files.js'
import type { DocumentHistory } from '../content/versions.js'
import type { AdminContext } from './admin-documents.js'
import { DASHBOARD_CSP, dashboardHtml } from './dashboard/dashboard-page.js'
import type { HttpRateLimiter } from './rate-limit.js'

export interface HttpRouteDeps {
  storage: StorageAdapter
  registry: DocumentRegistry
  gateway: () => Gateway
  isDraining: () => boolean
  version: string
  logger: Logger
  options: ResolvedServerOptions
  admin: AdminContext
  history: DocumentHistory
  /** Per-caller rate limit of the history routes and the admin API (not health, readiness, metrics). */
  limiter: HttpRateLimiter
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

/**
 * Prometheus exposition. Open unless `metricsToken` is set; then it needs
 * `Authorization: Bearer <metrics token>` (the admin token works too).
 */
function metrics(req: IncomingMessage, res: ServerResponse, deps: HttpRouteDeps): void {
  const o = deps.options
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    json(res, 405, { error: 'CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED' })
    return
  }
  if (o.metricsToken !== null) {
    const presented = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? ''
    if (!sameSecret(presented, o.metricsToken) && (o.adminToken === null || !sameSecret(presented, o.adminToken))) {
      res.setHeader('www-authenticate', 'Bearer')
      json(res, 401, { error: 'CONCORD_ERR_AUTH_DENIED', message: 'metrics need Authorization: Bearer <metrics token>' })
      return
    }
  }
  o.metrics.text().then(text => {
    res.writeHead(200, { 'content-type': o.metrics.registry.contentType, 'cache-control': 'no-store' })
    res.end(text)
  }, err => {
    deps.logger.error({ err }, 'collecting metrics failed')
    json(res, 500, { error: 'CONCORD_ERR_SERVER_INTERNAL' })
  })
}

/** Plain HTTP endpoints: health, readiness, and a short description of the server. */
export function createHttpHandler(deps: HttpRouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const statics = deps.options.staticDir !== null ? createStaticHandler(deps.options.staticDir) : null
  const serveStatic = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    statics!(req, res, path).then(served => {
      if (!served) json(res, 404, { error: 'CONCORD_ERR_HTTP_NOT_FOUND' })
    }, err => {
      deps.logger.error({ err, path }, 'serving a file failed')
      if (!res.headersSent) json(res, 500, { error: 'CONCORD_ERR_SERVER_INTERNAL' })
    })
  }
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://localhost')
    } catch {
      json(res, 400, { error: 'CONCORD_ERR_HTTP_BAD_REQUEST' })
      return
    }
    if (handleAdmin(req, res, url, deps.admin, deps.limiter)) return
    if (handleHistory(req, res, url, { history: deps.history, options: deps.options, authenticateAdmin: r => authenticateAdmin(r, deps.options), limiter: deps.limiter })) return
    if (url.pathname === '/metrics') {
      metrics(req, res, deps)
      return
    }
    if (url.pathname === '/dashboard' && (req.method === 'GET' || req.method === 'HEAD')) {
      // the page holds no data: it asks for the admin token and reads /admin/stats and /metrics with it
      const html = dashboardHtml()
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), 'cache-control': 'no-store',
        'content-security-policy': DASHBOARD_CSP,
        'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY',
      })
      res.end(req.method === 'HEAD' ? undefined : html)
      return
    }
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
      case '/server-info':
        // with an app, / is its page; /server-info always describes the server
        if (url.pathname === '/' && statics !== null) {
          serveStatic(req, res, url.pathname)
          return
        }
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
        if (statics !== null) serveStatic(req, res, url.pathname)
        else json(res, 404, { error: 'CONCORD_ERR_HTTP_NOT_FOUND' })
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
