import { describe, expect, it } from 'vitest'
import { ConcordError } from '@concord/protocol'
import { ClusterViews, MAX_SESSIONS_PER_NODE, sessionRows, type ClusterViewsDeps } from './cluster-views.js'
import type { NodeStatus, QueryAnswers } from '../backplane/node-directory.js'
import type { StatsSnapshot } from '../ops/stats-samples.js'
import type { SessionSummary } from './admin-operations.js'
import { silentLogger } from '../ops/logger.js'

// ClusterViews merges what the node directory returns; the directory itself (Redis) is tested on a
// real Redis in e2e/node-directory.test.ts, so here it is a table of answers.

const row = (id: string, document: string, userId = 'u'): SessionSummary => ({ id, document, userId, role: 'write', protocol: 'native', openedAt: 1 })

const snapshot = (): StatsSnapshot => ({
  now: { t: 1000, connections: 5, sessions: 4, documentsLoaded: 2, updatesPerSecond: 1, messagesInPerSecond: 2, ackP50Ms: null, ackP99Ms: null, rssBytes: 100, heapUsedBytes: 50, cpuPercent: 10, eventLoopDelayMs: 1 },
  intervalMs: 2000, history: [], busiest: [{ name: 'acme/a', sessions: 1, updatesPerSecond: 0, bytes: 1 }, { name: 'globex/b', sessions: 1, updatesPerSecond: 0, bytes: 1 }],
})

const status = (nodeId: string, extra: Partial<NodeStatus> = {}): NodeStatus => ({
  nodeId, region: 'eu', version: '0.1.0', startedAt: 0, httpUrl: null, connections: 1, sessions: 2, documentsLoaded: 3, rssBytes: 10, heapUsedBytes: 5,
  cpuPercent: null, eventLoopDelayMs: null, updatesPerSecond: 0.5, peers: [], at: 0, ...extra,
})

function views(here: SessionSummary[], directory: ClusterViewsDeps['directory'], regions: ClusterViewsDeps['regions'] = null): ClusterViews {
  return new ClusterViews({
    nodeId: 'self', directory, regions, version: '0.1.0', logger: silentLogger(), startedAt: () => 0, httpUrl: () => null,
    operations: { sessions: f => here.filter(s => (f.tenant === null || s.document.startsWith(`${f.tenant}/`)) && (f.document === undefined || s.document === f.document)) },
    stats: { snapshot: async () => snapshot() },
  })
}

function directory(answers: QueryAnswers | Error, nodes: NodeStatus[] = []): NonNullable<ClusterViewsDeps['directory']> {
  return {
    list: async () => nodes,
    ask: async () => { if (answers instanceof Error) throw answers; return answers },
    onQuery: () => undefined,
  }
}

describe('ClusterViews', () => {
  it('lists this node\'s sessions first and every answer with its node; names the nodes that did not answer', async () => {
    const v = views([row('s1', 'acme/a')], directory({
      answers: new Map<string, unknown>([['n2', { sessions: [row('s2', 'acme/b')], truncated: false }], ['n1', { sessions: [row('s3', 'acme/c')], truncated: true }], ['bad', 'nonsense']]),
      asked: ['n1', 'n2', 'n3', 'bad'], missing: ['n3'],
    }))
    const out = await v.sessions({ tenant: null })
    expect(out.sessions.map(s => `${s.id}@${s.node}`)).toEqual(['s1@self', 's3@n1', 's2@n2'])
    expect(out.nodes).toEqual(['self', 'n1', 'n2'])
    expect(out.missingNodes).toEqual(['bad', 'n3'])
    expect(out.truncated).toBe(true)
    expect(out.clusterError).toBeNull()
  })

  it('drops another node\'s rows outside the caller\'s tenant, document or id, whatever that node sent', async () => {
    const foreign = { sessions: [row('a1', 'acme/a'), row('g1', 'globex/a'), row('a2', 'acme/b')], truncated: false }
    expect(sessionRows(foreign, { tenant: 'acme' })!.sessions.map(s => s.id)).toEqual(['a1', 'a2'])
    expect(sessionRows(foreign, { tenant: 'acme', document: 'acme/b' })!.sessions.map(s => s.id)).toEqual(['a2'])
    expect(sessionRows(foreign, { tenant: null, id: 'g1' })!.sessions.map(s => s.id)).toEqual(['g1'])
    expect(sessionRows({ sessions: 'x' }, { tenant: null })).toBeNull()
    const many = { sessions: Array.from({ length: MAX_SESSIONS_PER_NODE + 5 }, (_, i) => row(`s${i}`, 'acme/a')), truncated: false }
    expect(sessionRows(many, { tenant: null })).toMatchObject({ truncated: true, sessions: { length: MAX_SESSIONS_PER_NODE } })
  })

  it('answers another node\'s question with at most MAX_SESSIONS_PER_NODE sessions, and refuses one without a tenant', () => {
    const here = Array.from({ length: MAX_SESSIONS_PER_NODE + 1 }, (_, i) => row(`s${i}`, i % 2 === 0 ? 'acme/a' : 'globex/a'))
    const v = views(here, null)
    expect(v.answerSessions({ tenant: 'acme' })).toMatchObject({ truncated: false, sessions: { length: MAX_SESSIONS_PER_NODE / 2 + 1 } })
    expect(v.answerSessions({ tenant: null })).toMatchObject({ truncated: true, sessions: { length: MAX_SESSIONS_PER_NODE } })
    expect(v.answerSessions({ tenant: null, id: 's3' }).sessions.map(s => s.id)).toEqual(['s3'])
    expect(() => v.answerSessions({})).toThrow(/tenant/)
  })

  it('without Redis, answers with this node\'s sessions and says why', async () => {
    const v = views([row('s1', 'acme/a')], directory(new ConcordError('CONCORD_ERR_BACKPLANE_UNAVAILABLE', 'redis is down')))
    const out = await v.sessions({ tenant: null })
    expect(out.sessions.map(s => s.id)).toEqual(['s1'])
    expect(out.clusterError).toBe('CONCORD_ERR_BACKPLANE_UNAVAILABLE: redis is down')
    const single = await views([row('s1', 'acme/a')], null).sessions({ tenant: null })
    expect(single).toMatchObject({ node: 'self', nodes: ['self'], missingNodes: [], clusterError: null })
  })

  it('stats: a row per node (this one with its figures of now), totals over them, and each peer region\'s link from the node that ships to it', async () => {
    const v = views([], directory({ answers: new Map(), asked: [], missing: [] }, [
      status('n1', { peers: [{ peer: 'us', shipping: true, linkUp: false }] }),
      status('self', { connections: 99 }),
      status('n2', { httpUrl: 'http://10.0.0.2:1234' }),
    ]), { name: 'eu', peers: () => [{ peer: 'us', queued: 7, lagSeconds: 1.5, shipping: false, linkUp: null, lastShippedAt: null, lastError: null }] })
    const out = await v.stats('acme')
    expect(out.nodes.map(n => [n.nodeId, n.self, n.connections])).toEqual([['n1', false, 1], ['n2', false, 1], ['self', true, 5]])
    expect(out.totals).toEqual({ nodes: 3, connections: 7, sessions: 8, documentsLoaded: 8, rssBytes: 120, updatesPerSecond: 2 })
    expect(out.regions).toEqual({ name: 'eu', peers: [{ peer: 'us', queued: 7, lagSeconds: 1.5, linkUp: false, shippingNode: 'n1' }] })
    expect(out.busiest.map(r => r.name)).toEqual(['acme/a'])
    expect(out.node).toBe('self')
    // the nodes' addresses are for the operator (the static token), not a tenant's admin
    expect(out.nodes.map(n => n.httpUrl)).toEqual([null, null, null])
    expect((await v.stats(null)).nodes.map(n => n.httpUrl)).toEqual([null, 'http://10.0.0.2:1234', null])
  })
})
