import type { IncomingMessage, ServerResponse } from 'node:http'
import * as Y from 'yjs'
import { ConcordError, documentNameProblem, toConcordError, type Role } from '@concord/protocol'
import { inTenant } from '../auth/patterns.js'
import { documentToJson, documentToProseMirror, documentToText } from '../content/document-export.js'
import { readJsonObject } from './body.js'
import { parseContentInput } from '../content/content-merge.js'
import { authenticateAdmin } from './admin-auth.js'
import type { HistoryDeps } from './http-deps.js'
import { answerFailure, requireMethod, sendBytes, sendJson } from './responder.js'

/** Who may do what on one document: an admin (token or admin JWT of its tenant), or a user with a role. */
interface Access {
  role: Role
  userId: string | null
  tenant: string | null
}

const ROUTE = /^\/v1\/documents\/([^/]+)\/(versions|at|diff|attribution|content)(?:\/([^/]+))?(?:\/(restore))?$/

/**
 * The methods a history route takes (its Allow header, its CORS preflight answer), or null when
 * there is no such route. `restore` comes only after a version id.
 */
function methodsOf(what: string, id: string | undefined, restore: boolean): readonly string[] | null {
  if (what === 'versions') return restore ? ['POST'] : id === undefined ? ['GET', 'POST'] : ['GET', 'DELETE']
  if (id !== undefined || restore) return null
  return what === 'content' ? ['POST'] : ['GET']
}

/** The methods of the history route at `pathname`, or null when it is none. */
export function historyMethods(pathname: string): readonly string[] | null {
  const m = ROUTE.exec(pathname)
  return m === null ? null : methodsOf(m[2]!, m[3], m[4] !== undefined)
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
export function handleHistory(req: IncomingMessage, res: ServerResponse, url: URL, deps: HistoryDeps): boolean {
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
      answerFailure(res, err, unexpected => {
        deps.logger.error({ err: unexpected, path: url.pathname }, 'history request failed')
        return toConcordError(unexpected)
      })
    }
  })()
  return true
}

async function authorize(req: IncomingMessage, document: string, deps: HistoryDeps): Promise<Access> {
  const admin = await authenticateAdmin(req, deps)
  if (admin !== null) {
    if (admin.tenant !== null && !inTenant(admin.tenant, document)) throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'an admin token acts on its own tenant only')
    return { role: 'admin', userId: admin.userId, tenant: admin.tenant }
  }
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? ''
  const grant = await deps.authorizer.grant({ document, token, transport: 'http', request: req }, deps.logger)
  return { role: grant.role, userId: grant.userId, tenant: grant.tenant }
}

function need(access: Access, role: 'read' | 'write'): void {
  if (role === 'write' && access.role === 'read') throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', 'this needs write access to the document')
}

/** A document state in the format asked for (`format`: json (default), text, prosemirror, update). */
function content(res: ServerResponse, update: Uint8Array, url: URL, extra: Record<string, unknown>): void {
  const format = url.searchParams.get('format') ?? 'json'
  const field = url.searchParams.get('field') ?? undefined
  if (format === 'update') {
    sendBytes(res, update)
    return
  }
  const doc = new Y.Doc()
  try {
    Y.applyUpdate(doc, update)
    if (format === 'json') sendJson(res, 200, { ...extra, content: documentToJson(doc) })
    else if (format === 'text') {
      const text = documentToText(doc, field)
      if (text === null) throw new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', 'the document has no text there')
      sendJson(res, 200, { ...extra, text })
    } else if (format === 'prosemirror') {
      const pm = documentToProseMirror(doc, field)
      if (pm === null) throw new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', 'the document has no rich text there')
      sendJson(res, 200, { ...extra, prosemirror: pm })
    } else throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'format must be json, text, prosemirror or update')
  } finally {
    doc.destroy()
  }
}

async function route(req: IncomingMessage, res: ServerResponse, url: URL, name: string, what: string, id: string | undefined, restore: boolean,
  access: Access, deps: HistoryDeps): Promise<void> {
  const versions = deps.versions
  const field = url.searchParams.get('field') ?? undefined
  const methods = methodsOf(what, id, restore)
  if (methods === null) throw new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', 'no such route')
  requireMethod(req, res, ...methods)
  if (what === 'content') {
    // merge text, JSON or ProseMirror JSON into the document as one change by the caller
    need(access, 'write')
    const input = parseContentInput(await readJsonObject(req, deps.maxMessageBytes))
    const result = await versions.mergeContent(name, input, access.userId)
    deps.logger.info({ document: name, format: input.format, userId: access.userId, changed: result.changed }, 'content merged')
    sendJson(res, 200, result)
    return
  }
  if (what === 'versions' && id === undefined) {
    if (req.method === 'GET') {
      sendJson(res, 200, { versions: await versions.list(name) })
      return
    }
    need(access, 'write')
    const body = await readJsonObject(req, 16 * 1024)
    const label = body.name
    if (typeof label !== 'string' || label.trim() === '' || label.length > 200) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'name must be a non-empty string of at most 200 characters')
    const version = await versions.create(name, label.trim(), access.userId)
    deps.logger.info({ document: name, version: version.id, userId: access.userId }, 'version created')
    sendJson(res, 201, { version })
    return
  }
  if (what === 'versions' && restore) {
    need(access, 'write')
    const result = await versions.restore(name, id!, access.userId)
    deps.logger.info({ document: name, version: id, userId: access.userId, changed: result.changed }, 'version restored')
    sendJson(res, 200, { restored: result.version.id, changed: result.changed })
    return
  }
  if (what === 'versions' && req.method === 'DELETE') {
    // named versions: whoever may create them; checkpoints: admins only (else retention)
    need(access, 'write')
    const version = await versions.delete(name, id!, access.role === 'admin')
    deps.logger.info({ document: name, version: version.id, kind: version.kind, userId: access.userId }, 'version deleted')
    sendJson(res, 200, { deleted: version.id })
    return
  }
  if (what === 'versions') {
    const { version, snapshot } = await versions.version(name, id!)
    content(res, snapshot, url, { version })
    return
  }
  if (what === 'at') {
    const t = Number(url.searchParams.get('t'))
    if (!Number.isFinite(t) || t <= 0) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 't must be a time in ms since the epoch')
    const at = await versions.at(name, t)
    content(res, at.update, url, { version: at.version, exact: at.exact })
    return
  }
  if (what === 'diff') {
    const from = url.searchParams.get('from')
    const to = url.searchParams.get('to') ?? 'current'
    if (from === null) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'from (a version id) is required; to defaults to current')
    sendJson(res, 200, { from, to, ops: await versions.diff(name, from, to, field) })
    return
  }
  sendJson(res, 200, { spans: await versions.attribution(name, field) })
}
