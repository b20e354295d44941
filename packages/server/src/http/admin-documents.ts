import type { IncomingMessage, ServerResponse } from 'node:http'
import * as Y from 'yjs'
import { ConcordError, documentNameProblem } from '@concord/protocol'
import type { AdminOperations } from './admin-operations.js'
import type { StatsHistory } from '../ops/stats-samples.js'
import type { ResolvedServerOptions } from '../server-options.js'
import { inTenant } from '../auth/patterns.js'
import { readBody, readJsonObject } from './body.js'
import { describeDocument, documentToJson, documentToProseMirror, documentToText } from '../content/document-export.js'

/** Who called: the static admin token (every tenant) or an admin JWT (its tenant). */
export interface AdminCaller {
  tenant: string | null
  /** The admin's user id (a JWT's sub), recorded as the author of server-side updates. */
  userId: string | null
}

export interface AdminContext {
  operations: AdminOperations
  stats: StatsHistory
  options: ResolvedServerOptions
}

/** Binary values inside a document (Y.Array of bytes) become { base64 } in JSON. */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') } : value
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, replacer)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

function methods(req: IncomingMessage, ...allowed: string[]): void {
  if (!allowed.includes(req.method ?? '')) throw new ConcordError('CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED', `use ${allowed.join(' or ')}`)
}

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
async function docOf(ctx: AdminContext, name: string): Promise<Y.Doc> {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, await ctx.operations.readState(name))
  return doc
}

/**
 * The admin API's document, session and stats routes (docs/api.md). Returns false when
 * `path` is not one of them. Throws ConcordError for the caller to answer.
 */
export async function routeDocuments(req: IncomingMessage, res: ServerResponse, url: URL, ctx: AdminContext, caller: AdminCaller): Promise<boolean> {
  const path = url.pathname
  const ops = ctx.operations
  if (path === '/admin/stats') {
    methods(req, 'GET')
    const snapshot = await ctx.stats.snapshot()
    if (caller.tenant !== null) snapshot.busiest = snapshot.busiest.filter(r => inTenant(caller.tenant!, r.name))
    send(res, 200, { node: ctx.options.backplane?.nodeId ?? null, ...snapshot })
    return true
  }
  if (path === '/admin/documents') {
    methods(req, 'GET')
    const prefix = url.searchParams.get('prefix') ?? ''
    const documents = (await ops.listDocuments(caller.tenant)).filter(d => d.name.startsWith(prefix))
    send(res, 200, { documents })
    return true
  }
  if (path === '/admin/sessions') {
    methods(req, 'GET')
    const document = url.searchParams.get('document') ?? undefined
    if (document !== undefined) documentName(encodeURIComponent(document), caller)
    send(res, 200, { node: ctx.options.backplane?.nodeId ?? null, sessions: ops.sessions({ ...(document !== undefined ? { document } : {}), tenant: caller.tenant }) })
    return true
  }
  if (path === '/admin/kick') {
    methods(req, 'POST')
    const body = await readJsonObject(req)
    const user = typeof body.user === 'string' && body.user !== '' ? body.user : null
    if (user === null) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'user is required')
    const tenant = caller.tenant ?? (typeof body.tenant === 'string' ? body.tenant : null)
    const here = ops.kick({ user, tenant })
    ctx.options.logger.info({ user, tenant }, 'kick requested')
    send(res, 200, { kicked: here, otherNodesTold: ctx.options.backplane !== null })
    return true
  }
  const session = /^\/admin\/sessions\/([^/]+)$/.exec(path)
  if (session !== null) {
    methods(req, 'DELETE')
    const id = decodeURIComponent(session[1]!)
    const known = ops.sessions({ tenant: caller.tenant }).some(s => s.id === id)
    // a session on another node is not known here: the kick is forwarded to every node
    if (!known && ctx.options.backplane === null) throw notFound(`no session ${id}`)
    if (caller.tenant !== null && !known) throw notFound(`no session ${id} on this node (a tenant admin kicks sessions by user on other nodes: POST /admin/kick)`)
    // bound to the caller's tenant on every node, as the listing above is
    const here = ops.kick({ session: id, tenant: caller.tenant })
    send(res, 200, { kicked: here, otherNodesTold: ctx.options.backplane !== null })
    return true
  }
  const m = /^\/admin\/documents\/([^/]+)(?:\/(update|json|text|prosemirror))?$/.exec(path)
  if (m === null) return false
  const name = documentName(m[1]!, caller)
  const view = m[2]
  if (view === undefined) {
    methods(req, 'GET', 'DELETE')
    if (req.method === 'DELETE') {
      await ops.deleteDocument(name)
      ctx.options.logger.info({ document: name, byTenant: caller.tenant }, 'document deleted through the admin API')
      send(res, 200, { deleted: name })
      return true
    }
    const info = await ops.describe(name)
    if (info === null) throw notFound(`no document ${name}`)
    const doc = await docOf(ctx, name)
    try {
      send(res, 200, { ...info, roots: describeDocument(doc), sessions: ops.sessions({ document: name, tenant: caller.tenant }) })
    } finally {
      doc.destroy()
    }
    return true
  }
  if (view === 'update') {
    methods(req, 'GET', 'POST')
    if (req.method === 'POST') {
      const type = req.headers['content-type'] ?? ''
      if (!type.startsWith('application/octet-stream')) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'send the Yjs update (v1) as Content-Type: application/octet-stream')
      const update = await readBody(req, ctx.options.maxMessageBytes)
      if (update.length === 0) throw new ConcordError('CONCORD_ERR_UPDATE_MALFORMED', 'the body is empty')
      const result = await ops.applyUpdate(name, update, caller.userId ?? 'admin')
      send(res, 200, { applied: true, changed: result.changed })
      return true
    }
    const state = await ops.readState(name)
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': state.length, 'cache-control': 'no-store' })
    res.end(Buffer.from(state.buffer, state.byteOffset, state.byteLength))
    return true
  }
  methods(req, 'GET')
  const field = url.searchParams.get('field') ?? undefined
  const doc = await docOf(ctx, name)
  try {
    if (view === 'json') {
      send(res, 200, documentToJson(doc))
    } else if (view === 'text') {
      const text = documentToText(doc, field)
      if (text === null) throw notFound(`document ${name} has no text${field !== undefined ? ` named ${field}` : ''} (its roots: ${describeDocument(doc).map(r => `${r.name}: ${r.shape}`).join(', ') || 'none'})`)
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
      res.end(text)
    } else {
      const pm = documentToProseMirror(doc, field)
      if (pm === null) throw notFound(`document ${name} has no rich text (XML fragment)${field !== undefined ? ` named ${field}` : ''}`)
      send(res, 200, pm)
    }
  } finally {
    doc.destroy()
  }
  return true
}

