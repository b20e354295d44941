import type { Logger } from 'pino'
import { toConcordError } from '@concord/protocol'
import type { NodeDirectory, NodeFigures, NodeStatus, QueryAnswers } from '../backplane/node-directory.js'
import type { PeerStatus } from '../regions/region-replicator.js'
import type { StatsSnapshot } from '../ops/stats-samples.js'
import { inTenant } from '../auth/patterns.js'
import type { SessionSummary } from './admin-operations.js'

/** Sessions one node reports at most (its answer says `truncated` beyond). */
export const MAX_SESSIONS_PER_NODE = 10_000

/** The question a node asks the others for their sessions. */
export const SESSIONS_QUERY = 'sessions'

/** Which sessions: a tenant's (null: every tenant), of one document, or one session by id. */
export interface SessionFilter {
  tenant: string | null
  document?: string
  id?: string
}

export interface ClusterSession extends SessionSummary {
  /** The node that holds the session (null on a server without a node id). */
  node: string | null
}

export interface ClusterSessions {
  node: string | null
  sessions: ClusterSession[]
  /** The nodes whose sessions are listed, this one first (empty on a server without a node id). */
  nodes: string[]
  /** Live nodes of the directory that did not answer within the wait. */
  missingNodes: string[]
  /** Some node had more than MAX_SESSIONS_PER_NODE matching sessions and listed only those. */
  truncated: boolean
  /** Why only this node's sessions are listed (Redis unreachable), or null. */
  clusterError: string | null
}

/** One row of /admin/stats `nodes`. */
export interface NodeRow extends NodeStatus {
  /** This is the node that answered the request. */
  self: boolean
}

export interface RegionRow {
  peer: string
  /** Rows of this region waiting for the peer (the outbox is the region's: every node reads the same). */
  queued: number
  lagSeconds: number
  /** Whether the node that ships to the peer reached it last time (null: nobody has tried yet). */
  linkUp: boolean | null
  /** The node that holds the peer's lease and ships to it, when the directory knows. */
  shippingNode: string | null
}

export interface ClusterTotals {
  nodes: number
  connections: number
  sessions: number
  documentsLoaded: number
  rssBytes: number
  updatesPerSecond: number
}

export interface ClusterStats extends StatsSnapshot {
  node: string | null
  /** Every live node, from the directory (this one only without one), in id order. */
  nodes: NodeRow[]
  totals: ClusterTotals
  regions: { name: string; peers: RegionRow[] } | null
  clusterError: string | null
}

export interface ClusterViewsDeps {
  /** This node's id (the backplane's); null on a single node. */
  nodeId: string | null
  /** The region's live nodes (null: a single-node view). */
  directory: Pick<NodeDirectory, 'list' | 'ask' | 'onQuery'> | null
  operations: { sessions(filter: { document?: string; tenant: string | null }): SessionSummary[] }
  stats: { snapshot(): Promise<StatsSnapshot> }
  regions: { name: string; peers: () => PeerStatus[] } | null
  version: string
  /** When this node started listening (ms since the epoch). */
  startedAt: () => number
  /** Where it listens (http://host:port), once it does. */
  httpUrl: () => string | null
  logger: Logger
}

/**
 * The admin API's views of the whole region: sessions of every node (asked over the node
 * directory each time), figures of every node (from the directory's heartbeats) and the peer
 * regions' replication. Without a directory each view is this node's alone.
 */
export class ClusterViews {
  readonly #deps: ClusterViewsDeps

  constructor(deps: ClusterViewsDeps) {
    this.#deps = deps
    deps.directory?.onQuery(SESSIONS_QUERY, args => this.answerSessions(args))
  }

  /** This node's sessions for another node's question (bounded; `args` as another node sent them). */
  answerSessions(args: unknown): { sessions: SessionSummary[]; truncated: boolean } {
    const filter = parseFilter(args)
    const all = this.#local(filter)
    return { sessions: all.slice(0, MAX_SESSIONS_PER_NODE), truncated: all.length > MAX_SESSIONS_PER_NODE }
  }

  /** The sessions of every live node that answered within the wait (about a second at most). */
  async sessions(filter: SessionFilter): Promise<ClusterSessions> {
    const node = this.#deps.nodeId
    const here = this.answerSessions(filter)
    const own = here.sessions.map(s => ({ ...s, node }))
    const view: ClusterSessions = { node, sessions: own, nodes: node === null ? [] : [node], missingNodes: [], truncated: here.truncated, clusterError: null }
    const directory = this.#deps.directory
    if (directory === null) return view
    let asked: QueryAnswers
    try {
      asked = await directory.ask(SESSIONS_QUERY, filter)
    } catch (err) {
      view.clusterError = describeError(err)
      this.#deps.logger.warn({ err }, 'listing the other nodes\' sessions failed; answering with this node\'s')
      return view
    }
    for (const [from, answer] of [...asked.answers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const rows = sessionRows(answer, filter)
      if (rows === null) {
        view.missingNodes.push(from)
        continue
      }
      view.nodes.push(from)
      view.truncated ||= rows.truncated
      for (const s of rows.sessions) view.sessions.push({ ...s, node: from })
    }
    view.missingNodes.push(...asked.missing)
    view.missingNodes.sort()
    return view
  }

  /** /admin/stats: this node's samples, every node's figures and the totals, the peer regions. */
  async stats(tenant: string | null): Promise<ClusterStats> {
    const snapshot = await this.#deps.stats.snapshot()
    if (tenant !== null) snapshot.busiest = snapshot.busiest.filter(r => inTenant(tenant, r.name))
    const node = this.#deps.nodeId
    const selfStatus: NodeStatus = { ...this.#figures(snapshot), nodeId: node ?? 'standalone', at: snapshot.now.t }
    let listed: NodeStatus[] = []
    let clusterError: string | null = null
    if (this.#deps.directory !== null) {
      try {
        listed = await this.#deps.directory.list()
      } catch (err) {
        clusterError = describeError(err)
      }
    }
    // this node's figures are the ones of now, not of its last heartbeat
    const nodes: NodeRow[] = [...listed.filter(n => n.nodeId !== selfStatus.nodeId).map(n => ({ ...n, self: false })), { ...selfStatus, self: true }]
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
      // the nodes' internal addresses are the operator's: a tenant's admin sees the figures only
      .map(n => (tenant === null ? n : { ...n, httpUrl: null }))
    return { node, ...snapshot, nodes, totals: totalsOf(nodes), regions: this.#regions(nodes), clusterError }
  }

  /** What this node publishes in its heartbeat. */
  async describe(): Promise<NodeFigures> {
    return this.#figures(await this.#deps.stats.snapshot())
  }

  #figures(snapshot: StatsSnapshot): NodeFigures {
    const now = snapshot.now
    const regions = this.#deps.regions
    return {
      region: regions?.name ?? null, version: this.#deps.version, startedAt: this.#deps.startedAt(), httpUrl: this.#deps.httpUrl(),
      connections: now.connections, sessions: now.sessions, documentsLoaded: now.documentsLoaded, rssBytes: now.rssBytes, heapUsedBytes: now.heapUsedBytes,
      cpuPercent: now.cpuPercent, eventLoopDelayMs: now.eventLoopDelayMs, updatesPerSecond: now.updatesPerSecond,
      peers: regions?.peers().map(p => ({ peer: p.peer, shipping: p.shipping, linkUp: p.linkUp })) ?? [],
    }
  }

  #regions(nodes: NodeRow[]): ClusterStats['regions'] {
    const regions = this.#deps.regions
    if (regions === null) return null
    const peers = regions.peers().map((p): RegionRow => {
      // the link is the shipping node's: another node's heartbeat says whether it reached the peer
      const shipper = nodes.find(n => n.region === regions.name && n.peers.some(x => x.peer === p.peer && x.shipping))
      const link = shipper?.peers.find(x => x.peer === p.peer)
      return { peer: p.peer, queued: p.queued, lagSeconds: p.lagSeconds, linkUp: link !== undefined ? link.linkUp : p.linkUp, shippingNode: shipper?.nodeId ?? null }
    })
    return { name: regions.name, peers }
  }

  #local(filter: SessionFilter): SessionSummary[] {
    const all = this.#deps.operations.sessions({ tenant: filter.tenant, ...(filter.document !== undefined ? { document: filter.document } : {}) })
    return filter.id === undefined ? all : all.filter(s => s.id === filter.id)
  }
}

/** A question's filter as another node sent it; anything malformed asks for nothing. */
function parseFilter(args: unknown): SessionFilter {
  const a = (typeof args === 'object' && args !== null ? args : {}) as Record<string, unknown>
  if (a.tenant !== null && typeof a.tenant !== 'string') throw new TypeError('tenant must be a string or null')
  return {
    tenant: a.tenant,
    ...(typeof a.document === 'string' ? { document: a.document } : {}),
    ...(typeof a.id === 'string' ? { id: a.id } : {}),
  }
}

/**
 * Another node's answer, checked: rows of the expected shape, and (whatever that node did) only
 * those the filter allows, so a tenant admin never sees another tenant's session. Null: not an answer.
 */
export function sessionRows(answer: unknown, filter: SessionFilter): { sessions: SessionSummary[]; truncated: boolean } | null {
  if (typeof answer !== 'object' || answer === null) return null
  const a = answer as Record<string, unknown>
  if (!Array.isArray(a.sessions)) return null
  const sessions: SessionSummary[] = []
  for (const r of a.sessions.slice(0, MAX_SESSIONS_PER_NODE) as Record<string, unknown>[]) {
    if (typeof r !== 'object' || r === null || typeof r.id !== 'string' || typeof r.document !== 'string') continue
    if (filter.tenant !== null && !inTenant(filter.tenant, r.document)) continue
    if (filter.document !== undefined && r.document !== filter.document) continue
    if (filter.id !== undefined && r.id !== filter.id) continue
    sessions.push({
      id: r.id, document: r.document, userId: typeof r.userId === 'string' ? r.userId : null, role: String(r.role ?? ''),
      protocol: String(r.protocol ?? ''), openedAt: typeof r.openedAt === 'number' ? r.openedAt : 0,
    })
  }
  return { sessions, truncated: a.truncated === true || a.sessions.length > MAX_SESSIONS_PER_NODE }
}

export function totalsOf(nodes: NodeStatus[]): ClusterTotals {
  const sum = (get: (n: NodeStatus) => number): number => nodes.reduce((t, n) => t + get(n), 0)
  return {
    nodes: nodes.length, connections: sum(n => n.connections), sessions: sum(n => n.sessions), documentsLoaded: sum(n => n.documentsLoaded),
    rssBytes: sum(n => n.rssBytes), updatesPerSecond: sum(n => n.updatesPerSecond),
  }
}

function describeError(err: unknown): string {
  const e = toConcordError(err)
  return `${e.code}: ${e.message}`
}
