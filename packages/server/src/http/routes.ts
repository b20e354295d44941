import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConcordError } from '@concord/protocol'
import { handleAdmin } from './admin-routes.js'
import { sameSecret } from './admin-auth.js'
import { handleHistory, historyMethods } from './history-routes.js'
import { CorsPolicy } from './cors.js'
import { createStaticHandler } from './static-files.js'
import { DASHBOARD_CSP, dashboardHtml } from './dashboard/dashboard-page.js'
import type { HttpDeps } from './http-deps.js'
import { methodAllowed, sendCode, sendError, sendJson, sendPage, sendText } from './responder.js'

/** The methods of every route that only reads (everything here but the admin and history APIs). */
const READ_METHODS = ['GET', 'HEAD'] as const

/**
 * Prometheus exposition. Open unless `metricsToken` is set; then it needs
 * `Authorization: Bearer <metrics token>` (the admin token works too).
 */
function metrics(req: IncomingMessage, res: ServerResponse, deps: HttpDeps): void {
  if (!methodAllowed(req, res, READ_METHODS)) {
    sendCode(res, 'CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED')
    return
  }
  if (deps.metricsToken !== null) {
    const presented = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? ''
    if (!sameSecret(presented, deps.metricsToken) && (deps.adminToken === null || !sameSecret(presented, deps.adminToken))) {
      res.setHeader('www-authenticate', 'Bearer')
      sendError(res, new ConcordError('CONCORD_ERR_AUTH_DENIED', 'metrics need Authorization: Bearer <metrics token>'))
      return
    }
  }
  deps.metrics.text().then(text => {
    sendText(res, text, deps.metrics.registry.contentType)
  }, err => {
    deps.logger.error({ err }, 'collecting metrics failed')
    sendCode(res, 'CONCORD_ERR_SERVER_INTERNAL')
  })
}

/**
 * The server's HTTP routes: the admin API, the history API, /metrics, the dashboard, health,
 * readiness, a short description of the server, and the served app (staticDir).
 */
export function createHttpHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const statics = deps.staticDir !== null ? createStaticHandler(deps.staticDir) : null
  // other origins may call the public API (/v1/) only: never the admin API, /metrics or the pages
  const cors = deps.cors !== null ? new CorsPolicy(deps.cors) : null
  const serveStatic = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    statics!(req, res, path).then(served => {
      if (!served) sendCode(res, 'CONCORD_ERR_HTTP_NOT_FOUND')
    }, err => {
      deps.logger.error({ err, path }, 'serving a file failed')
      if (!res.headersSent) sendCode(res, 'CONCORD_ERR_SERVER_INTERNAL')
    })
  }
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://localhost')
    } catch {
      sendCode(res, 'CONCORD_ERR_HTTP_BAD_REQUEST')
      return
    }
    if (handleAdmin(req, res, url, deps)) return
    if (cors !== null && url.pathname.startsWith('/v1/') && cors.handle(req, res, historyMethods(url.pathname))) return
    if (handleHistory(req, res, url, deps)) return
    if (url.pathname === '/metrics') {
      metrics(req, res, deps)
      return
    }
    if (!methodAllowed(req, res, READ_METHODS)) {
      sendCode(res, 'CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED')
      return
    }
    if (url.pathname === '/dashboard') {
      // the page holds no data: it asks for the admin token and reads /admin/stats and /metrics with it
      sendPage(req, res, dashboardHtml(), DASHBOARD_CSP)
      return
    }
    switch (url.pathname) {
      case '/healthz':
        sendJson(res, 200, { status: 'ok' })
        return
      case '/readyz':
        if (deps.isDraining()) {
          sendCode(res, 'CONCORD_ERR_SERVER_SHUTTING_DOWN', { status: 'draining' })
          return
        }
        {
          const backplane = deps.backplane
          Promise.all([
            deps.storage.ping().then(() => null, (err: Error) => ({ error: 'CONCORD_ERR_STORAGE_WRITE_FAILED', message: `storage: ${err.message}` })),
            backplane === null ? null : backplane.ping().then(() => null, (err: Error) => ({ error: 'CONCORD_ERR_BACKPLANE_UNAVAILABLE', message: `backplane: ${err.message}` })),
          ]).then(([storage, bp]) => {
            const problem = storage ?? bp
            // a peer region out of reach does not make this node unready: it keeps serving its users and queues for the peer
            const regions = deps.regions === null ? {} : { region: deps.regions.name, peers: deps.regions.peers() }
            const body = { storage: deps.storage.kind, ...(backplane !== null ? { backplane: 'redis', node: backplane.nodeId } : {}), ...regions }
            if (problem === null) sendJson(res, 200, { status: 'ready', ...body })
            else sendJson(res, 503, { status: 'unready', ...body, ...problem })
          }, () => sendJson(res, 503, { status: 'unready' }))
        }
        return
      case '/':
      case '/server-info':
        // with an app, / is its page; /server-info always describes the server
        if (url.pathname === '/' && statics !== null) {
          serveStatic(req, res, url.pathname)
          return
        }
        sendJson(res, 200, {
          name: 'concord',
          version: deps.version,
          storage: deps.storage.kind,
          documentsLoaded: deps.documentsLoaded(),
          ...deps.connectionStats(),
          protocols: { native: 'WebSocket subprotocol "concord"', yWebsocket: 'ws://host/<room name>' },
        })
        return
      default:
        if (statics !== null) serveStatic(req, res, url.pathname)
        else sendCode(res, 'CONCORD_ERR_HTTP_NOT_FOUND')
    }
  }
  return (req, res) => {
    try {
      handle(req, res)
    } catch (err) {
      deps.logger.error({ err }, 'HTTP handler failed')
      if (!res.headersSent) sendCode(res, 'CONCORD_ERR_SERVER_INTERNAL')
      else res.destroy()
    }
  }
}
