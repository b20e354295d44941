import type { ConcordExtension } from './documents/extension-hooks.js'
import type { Logger } from 'pino'
import type { Backplane } from './backplane/backplane.js'
import type { NodeDirectory } from './backplane/node-directory.js'
import type { StorageAdapter } from './storage/storage-adapter.js'
import { createTokenVerifier, jwtAuthenticate, type TokenVerifier } from './auth/jwt.js'
import { allowEveryone, type AuthConfig, type Authenticate, type Authorize } from './auth/auth-hooks.js'
import type { AccessControl } from './auth/access-control.js'
import { Authorizer } from './auth/session-guard.js'
import { ServerMetrics } from './ops/metrics.js'
import type { WebhookEndpoint } from './ops/webhooks.js'
import { ConfigError, resolveConfig, type ServerConfig } from './config/server-config.js'
import type { CorsOptions } from './config/cors-config.js'
import type { RegionsConfig } from './regions/region-config.js'

export interface ServerOptions {
  /** Where documents are stored. Default: in memory. */
  storage?: StorageAdapter
  /**
   * What connects this node to the other nodes of a cluster (all on the same storage):
   * `new RedisBackplane({ url, logger })` (`url`: redis://host:port, or redis+cluster://host:port,…
   * for a Redis Cluster). Default: none (a single node).
   */
  backplane?: Backplane
  /** Prometheus metrics (served at /metrics). Default: a registry of this server's own. */
  metrics?: ServerMetrics
  /**
   * Record documents' inbound messages to files (`concord replay <file>` re-runs one):
   * the named `documents` every time they load, and a `sampleRate` share (0..1) of the others.
   */
  recording?: { dir: string; documents?: string[]; sampleRate?: number; maxBytesPerFile?: number }
  /**
   * Versions: a checkpoint once the first change after the last version is `checkpointEveryMs`
   * old (default 10 minutes; 0: only when the last session leaves, which always takes one), and
   * checkpoints older than `retentionMs` pruned (default 30 days; 0: kept for ever). Named versions stay.
   */
  history?: { checkpointEveryMs?: number; retentionMs?: number; minCheckpointIntervalMs?: number }
  /** Signed webhooks: document.changed (debounced), document.created, document.deleted, version.created. */
  webhooks?: WebhookEndpoint[]
  /**
   * Webhook deliveries one endpoint may have waiting (while it is slow or down); beyond, the
   * oldest are dropped, counted in `concord_webhook_events_dropped_total` and logged.
   */
  maxQueuedWebhookEvents?: number
  /** A built web app served over HTTP (`concord serve --demo` serves apps/demo): `/` becomes its page. */
  staticDir?: string
  /** When set, GET /metrics needs `Authorization: Bearer <metricsToken>` (or the admin token). Default: open. */
  metricsToken?: string
  /**
   * Let web apps on other origins call the HTTP API under `/v1/` (history, versions, content) from
   * the browser: `{ origins: ['https://app.example.com', 'http://localhost:5173'] }`, or
   * `{ origins: '*' }` for any origin. Default: off, no CORS headers at all.
   *
   * A request whose `Origin` is listed (compared exactly) gets `Access-Control-Allow-Origin` with
   * that origin (`*` with `origins: '*'`) and `Access-Control-Expose-Headers: retry-after, allow`;
   * a preflight (`OPTIONS` with `Access-Control-Request-Method`) gets 204 with the route's methods,
   * `Access-Control-Allow-Headers: authorization, content-type` and
   * `Access-Control-Max-Age: maxAgeSeconds` (default 7200). Another origin gets no CORS headers,
   * and its preflight 403 `CONCORD_ERR_HTTP_ORIGIN_NOT_ALLOWED`. Credentials (cookies) are never
   * allowed: the API takes bearer tokens. `/admin`, `/metrics` and the dashboard never answer
   * another origin. Each origin is written as a browser sends it (scheme://host[:port], no path);
   * anything else throws a ConfigError.
   */
  cors?: CorsOptions
  /** pino logger; default: a silent one. */
  logger?: Logger
  /** How tokens are checked. Required unless `onAuthenticate` is given. */
  auth?: AuthConfig
  /** Replaces JWT checking (then `auth` is not needed). */
  onAuthenticate?: Authenticate
  onAuthorize?: Authorize
  /** Revocations and role overrides (admin API). Default: kept in memory. */
  access?: AccessControl
  /** Time allowed to `onAuthenticate` and `onAuthorize` together. */
  authTimeoutMs?: number
  /**
   * A static bearer token for the admin HTTP API (all tenants). JWTs with
   * `admin: true` are accepted too (their own tenant only).
   */
  adminToken?: string
  /** Development only: POST /dev/token mints tokens for anyone (needs `auth: { secret }`). */
  devTokens?: boolean
  /** Largest WebSocket message, and largest reassembled chunked message. */
  maxMessageBytes?: number
  /** Native frames larger than this are sent as chunks. */
  chunkBytes?: number
  /**
   * Flow control of chunked sends: after this many bytes of chunks the server
   * sends PING and waits for the PONG, so small frames never queue behind more
   * than this at the reader.
   */
  chunkWindowBytes?: number
  /** Interval of WebSocket pings; a peer silent for a whole interval is terminated. */
  heartbeatIntervalMs?: number
  /** Time allowed between the socket opening and HELLO (native protocol). */
  handshakeTimeoutMs?: number
  /** Presence (awareness) is relayed to a room at most once per this interval. */
  presenceThrottleMs?: number
  /** Compact a document when its log tail has this many updates... */
  compactEveryUpdates?: number
  /** ...or this many bytes. */
  compactEveryBytes?: number
  maxDocumentsPerConnection?: number
  /** Documents of one socket that may be authenticating or loading at once. */
  maxPendingDocuments?: number
  /** Frames one document may queue while its OPEN is authenticated and loaded. */
  maxQueuedMessagesBeforeOpen?: number
  maxQueuedBytesBeforeOpen?: number
  /**
   * What one socket may cost the server in bytes not yet read by its peer: the
   * socket's queue plus what is held back for it while it is congested. Held
   * bytes beyond this close it at once; a queue beyond it closes it once it has
   * read nothing for `slowReaderStallMs` (or at once above four times this).
   * The largest queued message (a big initial sync) is not counted.
   */
  maxBufferedBytes?: number
  /** See `maxBufferedBytes`. */
  slowReaderStallMs?: number
  /**
   * Above this many unsent bytes a socket is congested: its presence is held
   * and sent as the latest state, its document updates are held and merged,
   * until it has read below the mark again.
   */
  backpressureBytes?: number
  /**
   * Per socket: messages per second, and the burst allowed above that. A socket over
   * its rate is read more slowly (its messages wait, in order; TCP slows the sender);
   * nothing is refused.
   */
  rateLimitMessagesPerSecond?: number
  rateLimitMessagesBurst?: number
  /** Per socket: bytes per second, and the burst (at least maxMessageBytes). */
  rateLimitBytesPerSecond?: number
  rateLimitBytesBurst?: number
  /** Largest document (its encoded state plus its log since, approximately); updates beyond are refused. */
  maxDocumentBytes?: number
  /** Largest presence (awareness) state of one client, as JSON bytes; larger ones are refused (CONCORD_ERR_LIMIT_PRESENCE). */
  maxPresenceBytes?: number
  /** Largest stateless message (an app signal for the document's other sessions), UTF-8 bytes (default 16 KiB; CONCORD_ERR_LIMIT_STATELESS). */
  maxStatelessBytes?: number
  /** Stateless messages one session may send per second, in bursts of twice that (default 20; CONCORD_ERR_LIMIT_STATELESS). */
  statelessPerSecond?: number
  /** Server extensions, in order: hooks on connections, loads, changes, saves and messages (documents/extension-hooks.ts). */
  extensions?: ConcordExtension[]
  /** How long an asynchronous extension hook may take before what it guards is refused (default 5 s; CONCORD_ERR_HOOK_TIMEOUT). */
  hookTimeoutMs?: number
  /**
   * Per document: how many bytes of document copies a second the server may make to check updates
   * whose items sit next to changes they do not carry (a burst of four seconds' worth); an update
   * beyond is refused, retryably (CONCORD_ERR_LIMIT_UPDATE_CHECKS).
   */
  maxUpdateCheckBytesPerSecond?: number
  /** Open WebSockets per client IP address. */
  maxConnectionsPerIp?: number
  /**
   * Rate limit of the HTTP API (the history routes and the admin API; not /healthz, /readyz,
   * /metrics), per caller: an authenticated user, or the client address when there is no user id.
   * A token bucket: this many requests per second come back...
   */
  httpRequestsPerSecond?: number
  /** ...and a caller may hold this many (the burst; at least `httpExpensiveRequestCost`). */
  httpRequestsBurst?: number
  /**
   * What one request that builds or stores a whole document counts as: creating a version,
   * restore, diff, time travel, attribution, reading a version other than as `format=update`,
   * the admin routes of one document.
   */
  httpExpensiveRequestCost?: number
  /** Callers the HTTP rate limit keeps a bucket for; beyond, the least recently seen is forgotten. */
  httpRateLimitMaxCallers?: number
  /** Named versions one document may have; one more is refused (CONCORD_ERR_LIMIT_NAMED_VERSIONS) until one is deleted. */
  maxNamedVersionsPerDocument?: number
  /**
   * Proxies in front of the server that append the address they saw to `X-Forwarded-For`
   * (nginx: `$proxy_add_x_forwarded_for`). 0 (default): the client address is the socket's peer.
   * n: it is the n-th address from the right of the header, so what a client wrote into the
   * header itself is never believed. Used for the per-address connection limit and in logs.
   */
  trustProxyHops?: number
  /**
   * WebSocket permessage-deflate (RFC 7692): 0 (the default) turns it off; n > 0 offers it, and
   * messages of at least n bytes are compressed (zlib level 1, no context kept between messages,
   * so an idle or typing connection holds no compressor). Large initial syncs shrink several times
   * at a CPU cost; measured in docs/benchmarks.md ("Compression").
   */
  compressionThresholdBytes?: number
  /** Name reported in WELCOME. */
  serverName?: string
  /**
   * How long `close()` (SIGTERM) may wait for storage and the backplane to take what is in flight
   * (default 10 s). Past it the server gives up the updates that are not durable yet (never acked),
   * says so in its log, and closes its connections whatever state Redis and PostgreSQL are in.
   */
  shutdownTimeoutMs?: number
  /**
   * This node's region and its peer regions (active-active replication; see docs/regions.md).
   * Needs a PostgreSQL store created with `replication: true` and a backplane.
   */
  regions?: RegionsConfig
  /**
   * The region's node directory (`createNodeDirectory({ url })` from
   * '@concord/server/backplane/node-directory', on the backplane's Redis): /admin/sessions,
   * /admin/stats and the dashboard then cover every node. Needs `backplane`. Default: none (this
   * node's views only). The server starts it once listening and closes it on close().
   */
  nodeDirectory?: NodeDirectory
}

/** The services the composition root hands to the layers (each layer takes the part it uses). */
export interface ServerServices {
  readonly storage: StorageAdapter
  readonly backplane: Backplane | null
  readonly metrics: ServerMetrics
  readonly logger: Logger
  readonly authorizer: Authorizer
  /** Verifies JWTs (admin API), when `auth` configures JWTs. */
  readonly tokens: Promise<TokenVerifier> | null
}

/**
 * The configuration and the services together.
 * @deprecated a layer takes its own narrow dependencies; kept for code written against 0.1.
 */
export type ResolvedServerOptions = Readonly<ServerConfig> & ServerServices

/** Validate and freeze the options, and build the services they name (defaults from `fallbacks`). */
export function resolveOptions(
  options: ServerOptions,
  fallbacks: { storage: () => StorageAdapter; logger: () => Logger; access: () => AccessControl },
): ResolvedServerOptions {
  let authenticate: Authenticate
  let tokens: Promise<TokenVerifier> | null = null
  let authMode: ServerConfig['authMode']
  if (options.onAuthenticate !== undefined) {
    authenticate = options.onAuthenticate
    authMode = 'hook'
    if (options.auth !== undefined && options.auth !== 'none') tokens = createTokenVerifier(options.auth)
  } else if (options.auth === 'none') {
    authenticate = allowEveryone
    authMode = 'none'
  } else if (options.auth !== undefined) {
    const verifier = createTokenVerifier(options.auth)
    tokens = verifier
    authenticate = async context => jwtAuthenticate(await verifier)(context)
    authMode = 'jwt'
  } else {
    throw new ConfigError('choose how sessions are authenticated: auth: { secret } or { jwks }, onAuthenticate, or auth: \'none\'')
  }
  // a bad secret or key set fails listen(), not the first session
  tokens?.catch(() => undefined)
  const values = Object.fromEntries(Object.entries(options).filter(([k, v]) => v !== undefined && !NOT_VALUES.has(k)))
  const config = resolveConfig({
    ...values,
    ...(options.history?.checkpointEveryMs !== undefined ? { checkpointEveryMs: options.history.checkpointEveryMs } : {}),
    ...(options.history?.retentionMs !== undefined ? { versionRetentionMs: options.history.retentionMs } : {}),
    ...(options.history?.minCheckpointIntervalMs !== undefined ? { minCheckpointIntervalMs: options.history.minCheckpointIntervalMs } : {}),
    authMode,
    signingSecret: options.auth !== undefined && options.auth !== 'none' && 'secret' in options.auth ? options.auth.secret : null,
    devTokens: options.devTokens === true,
  })
  const services: ServerServices = {
    storage: options.storage ?? fallbacks.storage(),
    backplane: options.backplane ?? null,
    metrics: options.metrics ?? new ServerMetrics(),
    logger: options.logger ?? fallbacks.logger(),
    authorizer: new Authorizer({
      authenticate, authorize: options.onAuthorize, access: options.access ?? fallbacks.access(),
      timeoutMs: config.authTimeoutMs,
    }),
    tokens,
  }
  return Object.freeze({ ...config, ...services })
}

/** Options that are services or structured settings, not values of the configuration. */
const NOT_VALUES = new Set(['storage', 'backplane', 'metrics', 'logger', 'history', 'webhooks', 'recording', 'auth', 'onAuthenticate', 'onAuthorize', 'access', 'devTokens', 'regions', 'nodeDirectory'])
