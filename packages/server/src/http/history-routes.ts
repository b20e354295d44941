import type { IncomingMessage, ServerResponse } from 'node:http'
import * as Y from 'yjs'
import { ConcordError, ERROR_CODES, documentNameProblem, toConcordError, type Role } from '@concord/protocol'
import type { ResolvedServerOptions } from '../server-options.js'
import type { DocumentHistory } from '../content/versions.js'
import { inTenant } from '../auth/patterns.js'
import { documentToJson, documentToProseMirror, documentToText } from '../content/document-export.js'
import { readJsonObject } from './body.js'
import type { HttpRateLimiter } from './rate-limit.js'

/** Who may do what on one document: an admin (token or admin JWT of its tenant), or a user with a role. */
interface Access {
  role: Role
  userId: string | null
  tenant: string | null
}

export interface HistoryRouteDeps {
  history: DocumentHistory
  options: ResolvedServerOptions
  /** The admin token or an admin JWT, or null. */
  authenticateAdmin(req: IncomingMessage): Promise<{ tenant: string | null; userId: string | null } | null>
  /** Per-caller rate limit, charged once the caller is known. */
  limiter: HttpRateLimiter
}

const ROUTE = /^\/v1\/documents\/([^/]+)\/(versions|at|diff|attribution)(?:\/([^/]+))?(?:\/(restore))?$/

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v: unknown) => (v instanceof Uint8Array ? { base64: Buffer.from(v).toString('base64') } : v))
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

function statusOf(code: string): number {
  switch (code) {
    case 'CONCORD_ERR_AUTH_DENIED': case 'CONCORD_ERR_AUTH_EXPIRED': return 401
    case 'CONCORD_ERR_AUTH_FORBIDDEN': case 'CONCORD_ERR_AUTH_REVOKED': return 403
    case 'CONCORD_ERR_HTTP_NOT_FOUND': return 404
    case 'CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED': return 405
    default: return (ERROR_CODES[code as keyof typeof ERROR_CODES] as { httpStatus?: number } | undefined)?.httpStatus ?? 400
  }
}

/**
 * Whether a request builds or stores a whole document (it then costs more of the caller's rate
 * limit): creating a version, restore, diff, time travel, attribution, and reading a version
 * other than as its stored bytes (`format=update`). Listing and deleting versions are cheap.
 */
function expensive(req: IncomingMessage, url: URL, what: string, id: string | undefined, restore: boolean): boolean {
  if (restore) return true
  if (what === 'versions' && id === undefined) return req.method === 'POST'
  if (what === 'versions') return req.method === 'GET' && url.searchParams.get('format') !== 'update'
  return true
}

/**
 * The history API (docs/history.md): versions, content at a version or a moment, diffs,
 * attribution and restore, for users (their token's role on the document) and admins.
 * Returns false when the path is not one of its routes.
 */
export function handleHistory(req: IncomingMessage, res: ServerResponse, url: URL, deps: HistoryRouteDeps): boolean {
  const m = ROUTE.exec(url.pathname)
  if (m === null) return false
  void (async () => {
    try {
      let name: string
      try {
        name = decodeURIComponent(m[1]!)
      } catch {
        throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'the document name is not valid URL encoding')
      }
      const problem = documentNameProblem(name)
      if (problem !== null) throw new ConcordError('CONCORD_ERR_DOC_INVALID_NAME', problem)
      const access = await authorize(req, name, deps)
      if (!deps.limiter.admit(req, res, access, expensive(req, url, m[2]!, m[3], m[4] !== undefined))) return
      await route(req, res, url, name, m[2]!, m[3] === undefined ? undefined : decodeURIComponent(m[3]), m[4] !== undefined, access, deps)
    } catch (err) {
      const e = toConcordError(err)
      if (e.code === 'CONCORD_ERR_SERVER_INTERNAL') deps.options.logger.error({ err, path: url.pathname }, 'history request failed')
      if (res.headersSent) res.destroy()
      else send(res, e.code === 'CONCORD_ERR_SERVER_INTERNAL' ? 500 : statusOf(e.code), { error: e.code, message: e.message })
    }
  })()
  return true
}

async function authorize(req: IncomingMessage, document: string, deps: HistoryRouteDeps): Promise<Access> {
  const admin = await deps.authenticateAdmin(req)
  if (admin !== null) {
    if (admin.tenant !== null && !inTenant(admin.tenant, document)) throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'an admin token acts on its own tenant only')
    return { role: 'admin', userId: admin.userId, tenant: admin.tenant }
  }
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? ''
  const grant = await deps.options.authorizer.grant({ document, token, transport: 'http', request: req }, deps.options.logger)
  return { role: grant.role, userId: grant.userId, tenant: grant.tenant }
}

function need(access: Access, role: 'read' | 'write'): void {
  if (role === 'write' && access.role === 'read') throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'this needs write access to the document')
}

function methods(req: IncomingMessage, ...allowed: string[]): void {
  if (!allowed.includes(req.method ?? '')) throw new ConcordError('CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED', `use ${allowed.join(' or ')}`)
}


/** A document state in the format asked for (`format`: json (default), text, prosemirror, update). */
function content(res: ServerResponse, update: Uint8Array, url: URL, extra: Record<string, unknown>): void {
  const format = url.searchParams.get('format') ?? 'json'
  const field = url.searchParams.get('field') ?? undefined
  if (format === 'update') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': update.length, 'cache-control': 'no-store' })
    res.end(Buffer.from(update.buffer, update.byteOffset, update.byteLength))
    return
  }
  const doc = new Y.Doc()
  try {
    Y.applyUpdate(doc, update)
    if (format === 'json') send(res, 200, { ...extra, content: documentToJson(doc) })
    else if (format === 'text') {
      const text = documentToText(doc, field)
      if (text === null) throw new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', 'the document has no text there')
      send(res, 200, { ...extra, text })
    } else if (format === 'prosemirror') {
      const pm = documentToProseMirror(doc, field)
      if (pm === null) throw new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', 'the document has no rich text there')
      send(res, 200, { ...extra, prosemirror: pm })
    } else throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'format must be json, text, prosemirror or update')
  } finally {
    doc.destroy()
  }
}

async function route(req: IncomingMessage, res: ServerResponse, url: URL, name: string, what: string, id: string | undefined, restore: boolean,
  access: Access, deps: HistoryRouteDeps): Promise<void> {
  const history = deps.history
  const field = url.searchParams.get('field') ?? undefined
  if (what === 'versions' && id === undefined) {
    methods(req, 'GET', 'POST')
    if (req.method === 'GET') {
      send(res, 200, { versions: await history.list(name) })
      return
    }
    need(access, 'write')
    const body = await readJsonObject(req, 16 * 1024)
    const label = body.name
    if (typeof label !== 'string' || label.trim() === '' || label.length > 200) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'name must be a non-empty string of at most 200 characters')
    const version = await history.create(name, label.trim(), access.userId)
    deps.options.logger.info({ document: name, version: version.id, userId: access.userId }, 'version created')
    send(res, 201, { version })
    return
  }
  if (what === 'versions' && restore) {
    methods(req, 'POST')
    need(access, 'write')
    const result = await history.restore(name, id!, access.userId)
    deps.options.logger.info({ document: name, version: id, userId: access.userId, changed: result.changed }, 'version restored')
    send(res, 200, { restored: result.version.id, changed: result.changed })
    return
  }
  if (what === 'versions' && req.method === 'DELETE') {
    // named versions: whoever may create them; checkpoints: admins only (else retention)
    need(access, 'write')
    const version = await history.delete(name, id!, access.role === 'admin')
    deps.options.logger.info({ document: name, version: version.id, kind: version.kind, userId: access.userId }, 'version deleted')
    send(res, 200, { deleted: version.id })
    return
  }
  methods(req, ...(what === 'versions' ? ['GET', 'DELETE'] : ['GET']))
  if (what === 'versions') {
    const { version, snapshot } = await history.version(name, id!)
    content(res, snapshot, url, { version })
    return
  }
  if (id !== undefined) throw new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', 'no such route')
  if (what === 'at') {
    const t = Number(url.searchParams.get('t'))
    if (!Number.isFinite(t) || t <= 0) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 't must be a time in ms since the epoch')
    const at = await history.at(name, t)
    content(res, at.update, url, { version: at.version, exact: at.exact })
    return
  }
  if (what === 'diff') {
    const from = url.searchParams.get('from')
    const to = url.searchParams.get('to') ?? 'current'
    if (from === null) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'from (a version id) is required; to defaults to current')
    send(res, 200, { from, to, ops: await history.diff(name, from, to, field) })
    return
  }
  send(res, 200, { spans: await history.attribution(name, field) })
}
