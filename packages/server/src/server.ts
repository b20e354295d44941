import { documentNameProblem } from '@concord/protocol'
import { DirectConnection, type DirectConnectionOptions } from './documents/direct-connection.js'
import { ExtensionHooks } from './documents/extension-hooks.js'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ConcordError } from '@concord/protocol'
import type { Logger } from 'pino'
import { resolveOptions, type ResolvedServerOptions, type ServerOptions } from './server-options.js'
import { createMemoryStorage } from './storage/memory-storage.js'
import { DocumentRegistry } from './documents/document-registry.js'
import { Gateway } from './gateway/gateway.js'
import { createHttpHandler } from './http/routes.js'
import { silentLogger } from './ops/logger.js'
import type { StorageAdapter } from './storage/storage-adapter.js'
import type { Backplane } from './backplane/backplane.js'
import type { RegionsConfig } from './regions/region-config.js'
import type { ServerMetrics } from './ops/metrics.js'
import { AccessControl } from './auth/access-control.js'
import { AdminOperations } from './http/admin-operations.js'
import { StatsSamples } from './ops/stats-samples.js'
import type { MetricsSources } from './ops/metrics.js'
import { createRecorder } from './ops/recording/recorder.js'
import { documentTracer } from './ops/tracing.js'
import { createWebhooks } from './ops/webhooks.js'
import { DocumentVersions } from './content/versions.js'
import { createMergeWorker } from './documents/merge-worker.js'
import { HttpRateLimiter } from './http/rate-limit.js'
import { RegionReplication } from './regions/region-replicator.js'
import { ClusterViews } from './http/cluster-views.js'
import { ConfigError } from './config/server-config.js'
import type { RegionOutbox } from './storage/postgres-regions.js'

export const VERSION = '0.1.0'

export interface ConcordServer {
  readonly http: HttpServer
  readonly registry: DocumentRegistry
  readonly storage: StorageAdapter
  readonly options: ResolvedServerOptions
  readonly logger: Logger
  /** Start listening; resolves with the bound address (port 0 picks a free port). */
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string }>
  /**
   * An in-process session on a document for bots and AI agents: `conn.doc` is a Y.Doc in sync with
   * the server's; its changes are checked, stored, acked (`conn.whenSaved()`) and sent to everyone
   * as `userId`'s. No token is checked: the embedding code decides who may use it. `conn.close()` leaves.
   */
  openDirect(document: string, options?: DirectConnectionOptions): Promise<DirectConnection>
  /**
   * Graceful shutdown: stop accepting, flush storage, close sockets with 1001,
   * flush what arrived meanwhile, unload documents, close storage.
   */
  close(): Promise<void>
}

/** Composition root: wires storage, registry, gateway and HTTP routes. */
export function createServer(options: ServerOptions = {}): ConcordServer {
  const opts = resolveOptions(options, { storage: () => createMemoryStorage(), logger: silentLogger, access: () => AccessControl.inMemory() })
  const log = opts.logger
  const webhooks = options.webhooks !== undefined && options.webhooks.length > 0
    ? createWebhooks({
      endpoints: options.webhooks, logger: log, maxQueuedEvents: opts.maxQueuedWebhookEvents,
      onAttempt: a => opts.metrics.webhook(a.event, a.result), onDropped: () => opts.metrics.webhookDropped(),
    })
    : null
  const recorder = options.recording !== undefined
    ? createRecorder({ ...options.recording, logger: log, serverName: `${opts.serverName} ${VERSION}` })
    : undefined
  // large documents' sync replies are diffed and merged in a thread of their own (started on first use)
  const mergeWorker = createMergeWorker({ logger: log })
  const regions = options.regions !== undefined ? createRegionReplication(options.regions, opts.storage, opts.backplane, log, opts.metrics) : null
  const hooks = new ExtensionHooks(options.extensions ?? [], log, opts.hookTimeoutMs, (extension, hook) => opts.metrics.hookFailed(extension, hook))
  const registry = new DocumentRegistry({
    hooks,
    storage: opts.storage,
    logger: log,
    mergeWorker,
    presenceThrottleMs: opts.presenceThrottleMs,
    compactEveryUpdates: opts.compactEveryUpdates,
    compactEveryBytes: opts.compactEveryBytes,
    maxDocumentBytes: opts.maxDocumentBytes,
    maxPresenceBytes: opts.maxPresenceBytes,
    maxUpdateCheckBytesPerSecond: opts.maxUpdateCheckBytesPerSecond,
    metrics: opts.metrics,
    versions: {
      checkpointEveryMs: opts.checkpointEveryMs,
      retentionMs: opts.versionRetentionMs,
      minCheckpointIntervalMs: opts.minCheckpointIntervalMs,
    },
    ...(webhooks !== null ? { onEvent: (event, data) => webhooks.emit(event, data) } : {}),
    tracer: documentTracer,
    ...(recorder !== undefined ? { recorder } : {}),
    ...(opts.backplane !== null ? { backplane: opts.backplane } : {}),
    ...(regions !== null ? { replication: regions.tracker } : {}),
  })
  if (opts.backplane !== null) {
    // after a backplane outage: what this node applied meanwhile is made durable before the
    // other nodes are told to reload from storage
    opts.backplane.onReconnect = async documents => {
      await Promise.all(documents.map(d => registry.peek(d)?.whenFlushed()))
      // revocations made on other nodes meanwhile: read the shared state again and check every session
      await opts.authorizer.access.applyRemote({ kind: 'all' }).catch(err => log.error({ err }, 'reading the access state after the outage failed'))
    }
  }
  let draining = false
  let gateway: Gateway | null = null
  const operations = new AdminOperations({
    registry, storage: opts.storage, backplane: opts.backplane, logger: log,
    onDeleted: document => {
      webhooks?.emit('document.deleted', { document })
      // the other regions delete it too (a deletion they ship back is not queued again: it reaches their nodes as a control message)
      regions?.documentDeleted(document).catch(err => log.error({ err, document }, 'regions: queueing the deletion for the peer regions failed; delete the document there too'))
    },
  })
  const versions = new DocumentVersions({ registry, storage: opts.storage, maxNamedVersions: opts.maxNamedVersionsPerDocument })
  const limiter = new HttpRateLimiter({
    requestsPerSecond: opts.httpRequestsPerSecond, requestsBurst: opts.httpRequestsBurst, expensiveRequestCost: opts.httpExpensiveRequestCost,
    maxCallers: opts.httpRateLimitMaxCallers, trustProxyHops: opts.trustProxyHops, onRefused: code => opts.metrics.refused(code),
  })
  const sources: MetricsSources = {
    connections: () => gateway!.stats(),
    connectionCount: () => gateway!.connectionCount,
    sessions: () => registry.sessionCount(),
    documentsLoaded: () => registry.size,
  }
  const stats = new StatsSamples({ metrics: opts.metrics, sources, registry })
  const regionsView = regions === null ? null : { name: regions.region, peers: () => regions.status() }
  // the region's other nodes, for the admin API's views (library users without one get this node's)
  const directory = options.nodeDirectory ?? null
  if (directory !== null && opts.backplane === null) throw new ConfigError('nodeDirectory needs a backplane: it lists the nodes that share one')
  let listening: { at: number; url: string } | null = null
  const views = new ClusterViews({
    nodeId: opts.backplane?.nodeId ?? null, directory, operations, stats, regions: regionsView, version: VERSION, logger: log,
    startedAt: () => listening?.at ?? 0, httpUrl: () => listening?.url ?? null,
  })
  const http = createHttpServer(createHttpHandler({
    version: VERSION,
    logger: log,
    storage: opts.storage,
    backplane: opts.backplane,
    metrics: opts.metrics,
    isDraining: () => draining,
    documentsLoaded: () => registry.size,
    connectionStats: () => gateway!.stats(),
    staticDir: opts.staticDir,
    metricsToken: opts.metricsToken,
    cors: opts.cors,
    adminToken: opts.adminToken,
    tokens: opts.tokens,
    access: opts.authorizer.access,
    authorizer: opts.authorizer,
    signingSecret: opts.signingSecret,
    devTokens: opts.devTokens,
    maxMessageBytes: opts.maxMessageBytes,
    operations,
    views,
    versions,
    limiter,
    regions: regionsView,
  }))
  gateway = new Gateway(http, { config: opts, documents: registry, authorizer: opts.authorizer, metrics: opts.metrics, logger: opts.logger, hooks })
  opts.metrics.setSources(sources)
  if (opts.backplane !== null) opts.backplane.onLag = seconds => opts.metrics.backplaneLag.observe(seconds)
  // an administrator's change reaches every open session at once
  const access = opts.authorizer.access
  const unsubscribe = access.onChange((change, remote) => {
    registry.forEachSession(s => s.accessChanged(change))
    // a change made here reaches the sessions on every other node too
    if (!remote) opts.backplane?.publishControl({ kind: 'access', change })
  })
  if (opts.backplane !== null) {
    opts.backplane.onControl = message => {
      if (operations.handleControl(message)) return
      if (message.kind === 'access') {
        access.applyRemote(message.change).catch(err => log.error({ err }, 'reading the access state after another node changed it failed'))
      }
    }
  }
  if (opts.authMode === 'none') log.warn('authentication is OFF (auth: none): anyone who can reach this server may read and write every document')
  if (options.auth !== undefined && options.auth !== 'none' && options.auth.allowTokensWithoutExp === true) {
    log.warn('tokens without an expiry (exp) are accepted (allowTokensWithoutExp): such a token works until its id or user is revoked')
  }
  let closing: Promise<void> | null = null

  let directCount = 0
  return {
    http,
    registry,
    storage: opts.storage,
    options: opts,
    logger: log,
    async listen(port = 0, host = '127.0.0.1') {
      // a secret or key set that cannot be used fails here, not at the first session
      await opts.tokens
      return new Promise((resolve, reject) => {
        http.once('error', reject)
        http.listen(port, host, () => {
          http.off('error', reject)
          const addr = http.address() as AddressInfo
          const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
          log.info({ port: addr.port, host: addr.address, storage: opts.storage.kind }, 'listening')
          stats.start()
          regions?.start()
          listening = { at: Date.now(), url: `http://${shownHost}:${addr.port}` }
          directory?.start({ nodeId: opts.backplane!.nodeId, describe: () => views.describe() })
          resolve({ port: addr.port, host: addr.address, url: `ws://${shownHost}:${addr.port}` })
        })
      })
    },
    async openDirect(document, options = {}) {
      const problem = documentNameProblem(document)
      if (problem !== null) throw new ConcordError('CONCORD_ERR_DOC_INVALID_NAME', problem)
      return DirectConnection.open(registry, document, options, `direct-${++directCount}`)
    },
    close() {
      closing ??= (async () => {
        draining = true
        stats.stop()
        unsubscribe()
        // a batch in flight to a peer region gets the link's timeout at most; the outbox keeps the rest
        const regionsClosed = regions?.close().catch(err => log.error({ err }, 'closing the region replication failed'))
        // the other nodes stop listing this one (and asking it) at once; bounded by the directory
        const directoryClosed = directory?.close().catch(err => log.error({ err }, 'closing the node directory failed'))
        gateway!.drain()
        const httpClosed = new Promise<void>(resolve => http.close(() => resolve()))
        // The graceful drain waits for storage and the backplane; a node whose Redis or PostgreSQL
        // is gone would wait for ever (a rolling restart during an outage would hang), so it gets
        // `shutdownTimeoutMs`. What it gives up then was never acked: an ack means durable.
        const graceful = (async () => {
          // frames that arrived while their document was loading are applied once it has loaded
          await registry.settleLoads()
          await new Promise(resolve => setImmediate(resolve))
          await opts.storage.flush().catch(err => log.error({ err }, 'flush before shutdown failed'))
          await gateway!.closeAll(new ConcordError('CONCORD_ERR_SERVER_SHUTTING_DOWN'))
          // flushed, and a log tail a burst left long is compacted: the next start loads quickly
          await registry.settleAll()
          await opts.storage.flush().catch(err => log.error({ err }, 'final flush failed'))
          await regionsClosed
          return 'drained' as const
        })()
        graceful.catch(err => log.error({ err }, 'draining before shutdown failed'))
        const outcome = await within(graceful, opts.shutdownTimeoutMs)
        // appends not durable yet, per document, before the documents are destroyed
        const unsaved = outcome === 'drained' ? [] : registry.names().map(name => ({ name, updates: registry.peek(name)?.stats.appendsInFlight ?? 0 })).filter(d => d.updates > 0)
        registry.destroyAll()
        if (outcome === 'drained') {
          // storage and the backplane answered the drain: close each part in order, fully (a caller
          // may reopen the same SQLite file right after)
          await mergeWorker.close()
          await hooks.destroy()
          await recorder?.close()
          await webhooks?.close()
          http.closeAllConnections()
          await httpClosed
          await directoryClosed
          await opts.backplane?.close()
          await opts.storage.close()
        } else {
          log.warn({
            boundMs: opts.shutdownTimeoutMs, unsavedUpdates: unsaved.reduce((n, d) => n + d.updates, 0), documents: unsaved.slice(0, 100).map(d => d.name),
          }, 'shutdown bound reached: gave up the updates that are not durable yet (none of them was acked) and closing storage and the backplane as they are')
          // everything at once, and one short wait for all of it: the bound is what an operator was promised
          http.closeAllConnections()
          await within(Promise.all([
            gateway!.closeAll(new ConcordError('CONCORD_ERR_SERVER_SHUTTING_DOWN'), FORCED_STEP_MS / 2),
            mergeWorker.close(), recorder?.close(), webhooks?.close(0), httpClosed, opts.backplane?.close(), opts.storage.close(), regionsClosed, directoryClosed,
          ].map(p => p?.catch(() => undefined))), FORCED_STEP_MS)
        }
        log.info('stopped')
      })()
      return closing
    },
  }
}

/** Region replication needs the PostgreSQL store's outbox and a backplane (where the peers announce what they ship). */
function createRegionReplication(config: RegionsConfig, storage: StorageAdapter, backplane: Backplane | null, logger: Logger, metrics: ServerMetrics): RegionReplication {
  const store = storage as StorageAdapter & { regionOutbox?: () => RegionOutbox }
  if (typeof store.regionOutbox !== 'function' || store.lease === undefined || store.releaseLease === undefined) {
    throw new ConfigError('regions need the PostgreSQL store (created with replication: true)')
  }
  if (backplane === null) throw new ConfigError('regions need a backplane (Redis): the peer regions announce what they ship on it')
  const lease = store.lease.bind(store)
  const release = store.releaseLease.bind(store)
  return new RegionReplication({
    config, outbox: store.regionOutbox(), nodeId: backplane.nodeId, lease, releaseLease: release, logger, metrics: metrics.regions,
  })
}

/** After the shutdown bound: how long all the parts together may take to close. */
const FORCED_STEP_MS = 1_000

/** `promise`'s value, or 'timeout' after `ms` (a rejection counts as settled: its owner logs it). */
async function within<T>(promise: Promise<T> | undefined, ms: number): Promise<T | 'timeout' | undefined> {
  if (promise === undefined) return undefined
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), ms) })
  try {
    return await Promise.race([promise.catch(() => undefined), expired])
  } finally {
    clearTimeout(timer)
  }
}
