import type { IncomingMessage, ServerResponse } from 'node:http'
import * as Y from 'yjs'
import { ConcordError, documentNameProblem } from '@concord/protocol'
import { inTenant } from '../auth/patterns.js'
import { readBody, readJsonObject } from './body.js'
import { describeDocument, documentToJson, documentToProseMirror, documentToText } from '../content/document-export.js'
import type { AdminDeps } from './http-deps.js'
import type { AdminCaller } from './admin-auth.js'
import { requireMethod, sendBytes, sendJson, sendText } from './responder.js'

function notFound(what: string): ConcordError {
  return new ConcordError('CONCORD_ERR_HTTP_NOT_FOUND', what)
}

/** A document named in a path segment (URL-encoded: `acme%2Fplan`), checked against the caller's tenant. */
function documentName(segment: string, caller: AdminCaller): string {
  let name: string
  try {
    name = decodeURIComponent(segment)
  } catch {
    throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'the document name is not valid URL encoding')
  }
  const problem = documentNameProblem(name)
  if (problem !== null) throw new ConcordError('CONCORD_ERR_DOC_INVALID_NAME', problem)
  if (caller.tenant !== null && !inTenant(caller.tenant, name)) throw new ConcordError('CONCORD_ERR_AUTH_FORBIDDEN', `an admin token acts on its own tenant's documents only (${caller.tenant}/...)`)
  return name
}


/** A Y.Doc of the document's current state, for the read formats. */
async function docOf(deps: AdminDeps, name: string): Promise<Y.Doc> {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, await deps.operations.readState(name))
  return doc
}

/**
 * The admin API's document, session and stats routes (docs/api.md). Returns false when
 * `path` is not one of them. Throws ConcordError for the caller to answer.
 */
export async function routeDocuments(req: IncomingMessage, res: ServerResponse, url: URL, deps: AdminDeps, caller: AdminCaller): Promise<boolean> {
  const path = url.pathname
  const ops = deps.operations
  if (path === '/admin/stats') {
    requireMethod(req, res, 'GET')
    // this node's samples and busiest rooms (a tenant admin's only), every node's figures, the regions
    sendJson(res, 200, await deps.views.stats(caller.tenant))
    return true
  }
  if (path === '/admin/documents') {
    requireMethod(req, res, 'GET')
    const prefix = url.searchParams.get('prefix') ?? ''
    const documents = (await ops.listDocuments(caller.tenant)).filter(d => d.name.startsWith(prefix))
    sendJson(res, 200, { documents })
    return true
  }
  if (path === '/admin/sessions') {
    requireMethod(req, res, 'GET')
    const document = url.searchParams.get('document') ?? undefined
    if (document !== undefined) documentName(encodeURIComponent(document), caller)
    // every node's, asked over the node directory (this node's alone without one)
    sendJson(res, 200, await deps.views.sessions({ ...(document !== undefined ? { document } : {}), tenant: caller.tenant }))
    return true
  }
  if (path === '/admin/kick') {
    requireMethod(req, res, 'POST')
    const body = await readJsonObject(req)
    const user = typeof body.user === 'string' && body.user !== '' ? body.user : null
    if (user === null) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'user is required')
    const tenant = caller.tenant ?? (typeof body.tenant === 'string' ? body.tenant : null)
    const here = ops.kick({ user, tenant })
    deps.logger.info({ user, tenant }, 'kick requested')
    sendJson(res, 200, { kicked: here, otherNodesTold: deps.backplane !== null })
    return true
  }
  const session = /^\/admin\/sessions\/([^/]+)$/.exec(path)
  if (session !== null) {
    requireMethod(req, res, 'DELETE')
    const id = decodeURIComponent(session[1]!)
    // a session on another node is found through the node directory, in the caller's tenant only
    const known = ops.sessions({ tenant: caller.tenant }).some(s => s.id === id) ||
      (caller.tenant !== null && deps.backplane !== null && (await deps.views.sessions({ tenant: caller.tenant, id })).sessions.length > 0)
    // without a directory a session on another node is not known here: the kick is forwarded to every node
    if (!known && deps.backplane === null) throw notFound(`no session ${id}`)
    if (caller.tenant !== null && !known) throw notFound(`no session ${id} in the nodes that answered (a tenant admin can also kick by user: POST /admin/kick)`)
    // bound to the caller's tenant on every node, as the listing above is
    const here = ops.kick({ session: id, tenant: caller.tenant })
    sendJson(res, 200, { kicked: here, otherNodesTold: deps.backplane !== null })
    return true
  }
  const m = /^\/admin\/documents\/([^/]+)(?:\/(update|json|text|prosemirror))?$/.exec(path)
  if (m === null) return false
  const name = documentName(m[1]!, caller)
  const view = m[2]
  if (view === undefined) {
    requireMethod(req, res, 'GET', 'DELETE')
    if (req.method === 'DELETE') {
      await ops.deleteDocument(name)
      deps.logger.info({ document: name, byTenant: caller.tenant }, 'document deleted through the admin API')
      sendJson(res, 200, { deleted: name })
      return true
    }
    const info = await ops.describe(name)
    if (info === null) throw notFound(`no document ${name}`)
    const doc = await docOf(deps, name)
    try {
      sendJson(res, 200, { ...info, roots: describeDocument(doc), sessions: ops.sessions({ document: name, tenant: caller.tenant }) })
    } finally {
      doc.destroy()
    }
    return true
  }
  if (view === 'update') {
    requireMethod(req, res, 'GET', 'POST')
    if (req.method === 'POST') {
      const type = req.headers['content-type'] ?? ''
      if (!type.startsWith('application/octet-stream')) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'send the Yjs update (v1) as Content-Type: application/octet-stream')
      const update = await readBody(req, deps.maxMessageBytes)
      if (update.length === 0) throw new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'the body is empty')
      const result = await ops.applyUpdate(name, update, caller.userId ?? 'admin')
      sendJson(res, 200, { applied: true, changed: result.changed })
      return true
    }
    sendBytes(res, await ops.readState(name))
    return true
  }
  requireMethod(req, res, 'GET')
  const field = url.searchParams.get('field') ?? undefined
  const doc = await docOf(deps, name)
  try {
    if (view === 'json') {
      sendJson(res, 200, documentToJson(doc))
    } else if (view === 'text') {
      const text = documentToText(doc, field)
      if (text === null) throw notFound(`document ${name} has no text${field !== undefined ? ` named ${field}` : ''} (its roots: ${describeDocument(doc).map(r => `${r.name}: ${r.shape}`).join(', ') || 'none'})`)
      sendText(res, text)
    } else {
      const pm = documentToProseMirror(doc, field)
      if (pm === null) throw notFound(`document ${name} has no rich text (XML fragment)${field !== undefined ? ` named ${field}` : ''}`)
      sendJson(res, 200, pm)
    }
  } finally {
    doc.destroy()
  }
  return true
}

