import type { PeerStatus } from '../regions/region-replicator.js'
import type { Logger } from 'pino'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { Backplane } from '../backplane/backplane.js'
import type { ServerMetrics } from '../ops/metrics.js'
import type { AccessControl } from '../auth/access-control.js'
import type { Authorizer } from '../auth/session-guard.js'
import type { TokenVerifier } from '../auth/jwt.js'
import type { DocumentVersions } from '../content/versions.js'
import type { AdminOperations } from './admin-operations.js'
import type { HttpRateLimiter } from './rate-limit.js'
import type { ClusterViews } from './cluster-views.js'
import type { CorsConfig } from '../config/cors-config.js'

/**
 * Exactly what the HTTP routes use: configuration values and services, built by the composition
 * root (server.ts). Each route group takes the part it needs (the Picks below).
 */
export interface HttpDeps {
  /** The server's version, shown at /server-info. */
  version: string
  logger: Logger
  storage: Pick<StorageAdapter, 'kind' | 'ping'>
  /** Null on a single node. */
  backplane: Pick<Backplane, 'nodeId' | 'ping'> | null
  metrics: Pick<ServerMetrics, 'text' | 'registry'>
  /** True once the server drains (/readyz answers 503). */
  isDraining(): boolean
  /** Documents held in memory on this node (/server-info). */
  documentsLoaded(): number
  /** The gateway's connection figures, spread into /server-info. */
  connectionStats(): object
  /** A built app served at / (null: none). */
  staticDir: string | null
  /** When set, /metrics needs it (or the admin token) as a bearer token. */
  metricsToken: string | null
  /** Which browser origins may call the API under /v1/ (null: no CORS headers). */
  cors: CorsConfig | null
  /** The static admin token (null: only admin JWTs reach the admin API). */
  adminToken: string | null
  /** Verifies admin JWTs (null: tokens are not checked here). */
  tokens: Promise<TokenVerifier> | null
  /** Revocations and role overrides (the admin API changes them). */
  access: AccessControl
  /** Grants users their role on a document (the history API's callers). */
  authorizer: Pick<Authorizer, 'grant'>
  /** The shared JWT secret, to mint share links and development tokens (null: public keys only). */
  signingSecret: string | null
  /** POST /dev/token is served (development only). */
  devTokens: boolean
  /** The largest update POST /admin/documents/{name}/update takes. */
  maxMessageBytes: number
  operations: AdminOperations
  versions: DocumentVersions
  /** Per-caller rate limit of the history routes and the admin API (not health, readiness, metrics). */
  limiter: HttpRateLimiter
  /** /admin/sessions and /admin/stats over every node of the region (this node's alone without a node directory). */
  views: Pick<ClusterViews, 'sessions' | 'stats'>
  /** This node's region and its peers' replication status (null: one region). */
  regions: { name: string; peers: () => PeerStatus[] } | null
}

/** Who may call the admin API: the admin token, or an admin JWT that is not revoked. */
export type AdminAuthDeps = Pick<HttpDeps, 'adminToken' | 'tokens' | 'access'>

/** The admin API (admin-routes.ts, admin-documents.ts). */
export type AdminDeps = AdminAuthDeps & Pick<HttpDeps,
  'logger' | 'backplane' | 'signingSecret' | 'devTokens' | 'maxMessageBytes' | 'operations' | 'views' | 'limiter'>

/** The history API (history-routes.ts). */
export type HistoryDeps = AdminAuthDeps & Pick<HttpDeps, 'logger' | 'authorizer' | 'versions' | 'limiter' | 'maxMessageBytes'>
