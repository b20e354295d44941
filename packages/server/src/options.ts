import type { Backplane } from './backplane/backplane.js'
import type { Logger } from 'pino'
import type { IncomingMessage } from 'node:http'
import type { Role } from '@concord/protocol'
import type { StorageAdapter } from './storage/storage-adapter.js'
import { createTokenVerifier, jwtAuthenticate, type JwtConfig, type TokenVerifier } from './auth/jwt.js'
import type { AccessControl } from './auth/access-control.js'
import { Authorizer } from './auth/session-guard.js'
import { ServerMetrics } from './metrics.js'
import type { WebhookEndpoint } from './webhooks.js'

/** What an authenticated session may do, and who it is. */
export interface AuthResult {
  userId: string | null
  role: Role
  /** The tenant (namespace) of the credential; revocations and role overrides are per tenant. */
  tenant?: string | null
  /** The credential's id (a JWT's `jti`), so that it can be revoked. */
  tokenId?: string | null
  /** For a share link: its id. */
  shareId?: string | null
  /** When the credential stops being valid (ms since epoch); the session is cut off then unless refreshed. */
  expiresAt?: number | null
}

export interface AuthenticateContext {
  document: string
  /** The token sent in OPEN or AUTH (native) or the `token` URL query parameter (y-websocket); '' when none. */
  token: string
  transport: 'native' | 'y-websocket' | 'http'
  request: IncomingMessage
}

/**
 * Decides who a session is and what it may do on a document. Throw a
 * `ConcordError` (`CONCORD_ERR_AUTH_DENIED`, `CONCORD_ERR_AUTH_FORBIDDEN`,
 * `CONCORD_ERR_AUTH_EXPIRED`) to refuse. It is given `authTimeoutMs` to answer.
 * The default checks JWTs (`auth`).
 */
export type Authenticate = (context: AuthenticateContext) => Promise<AuthResult> | AuthResult

export interface AuthorizeContext {
  document: string
  /** Who the session is (from `onAuthenticate` or the JWT), with the role after administrators' overrides. */
  auth: Readonly<AuthResult>
  transport: 'native' | 'y-websocket' | 'http'
}

/**
 * A last word on a session, for applications that keep permissions elsewhere:
 * return the role to grant (it may be lower or higher than `auth.role`), or
 * `null` to refuse with CONCORD_ERR_AUTH_FORBIDDEN. Runs after authentication
 * and revocation checks, within the same `authTimeoutMs`.
 */
export type Authorize = (context: AuthorizeContext) => Promise<Role | null> | Role | null

/**
 * How tokens are checked: `'none'` (everyone may write; said loudly in the
 * log), an HS256 shared `secret`, or RS256/ES256 public keys from `jwks` (a
 * file path, an http(s) URL, or a key set).
 */
export type AuthConfig = 'none' | JwtConfig

export interface ServerOptions {
  /** Where documents are stored. Default: in memory. */
  storage?: StorageAdapter
  /**
   * What connects this node to the other nodes of a cluster (all on the same storage):
   * `new RedisBackplane({ url, logger })`. Default: none (a single node).
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
  /** Name reported in WELCOME. */
  serverName?: string
}

type Resolved = Omit<ServerOptions, 'storage' | 'backplane' | 'logger' | 'auth' | 'onAuthenticate' | 'onAuthorize' | 'access' | 'adminToken' | 'devTokens'>

export type ResolvedServerOptions = Readonly<Required<Resolved>> & {
  readonly storage: StorageAdapter
  readonly backplane: Backplane | null
  readonly metrics: ServerMetrics
  readonly logger: Logger
  readonly authorizer: Authorizer
  /** Verifies JWTs (admin API), when `auth` configures JWTs. */
  readonly tokens: Promise<TokenVerifier> | null
  readonly authMode: 'none' | 'jwt' | 'hook'
  readonly adminToken: string | null
  readonly metricsToken: string | null
  readonly staticDir: string | null
  /** The HS256 secret, when `auth` has one: the server can then sign share links. */
  readonly signingSecret: string | null
  readonly devTokens: boolean
}

export const DEFAULTS = {
  authTimeoutMs: 5_000,
  maxMessageBytes: 64 * 1024 * 1024,
  chunkBytes: 256 * 1024,
  chunkWindowBytes: 1024 * 1024,
  heartbeatIntervalMs: 30_000,
  handshakeTimeoutMs: 10_000,
  presenceThrottleMs: 30,
  compactEveryUpdates: 1_000,
  compactEveryBytes: 4 * 1024 * 1024,
  maxDocumentsPerConnection: 1_000,
  maxPendingDocuments: 100,
  maxQueuedMessagesBeforeOpen: 1_000,
  maxQueuedBytesBeforeOpen: 5 * 1024 * 1024,
  maxBufferedBytes: 128 * 1024 * 1024,
  slowReaderStallMs: 10_000,
  backpressureBytes: 1024 * 1024,
  rateLimitMessagesPerSecond: 1_000,
  rateLimitMessagesBurst: 5_000,
  rateLimitBytesPerSecond: 16 * 1024 * 1024,
  rateLimitBytesBurst: 128 * 1024 * 1024,
  maxDocumentBytes: 512 * 1024 * 1024,
  maxPresenceBytes: 64 * 1024,
  maxUpdateCheckBytesPerSecond: 8 * 1024 * 1024,
  maxConnectionsPerIp: 1_000,
  // a user may create a version every 0.2 s (a read every 20 ms) for as long as they like, and
  // 50 versions (500 reads) at once: far above an editor's clicks, far below what fills a disk
  httpRequestsPerSecond: 50,
  httpRequestsBurst: 500,
  httpExpensiveRequestCost: 10,
  httpRateLimitMaxCallers: 10_000,
  maxNamedVersionsPerDocument: 100,
  // a waiting document.created delivery took 420 bytes of heap (100,000 queued, measured with
  // gc() before and after): about 4 MB per endpoint when full
  maxQueuedWebhookEvents: 10_000,
  trustProxyHops: 0,
  serverName: 'concord',
} as const

const POSITIVE_INTEGER_OPTIONS = Object.keys(DEFAULTS).filter(k => k !== 'serverName' && k !== 'trustProxyHops') as (keyof typeof DEFAULTS)[]

/** Validate and freeze options; misconfiguration fails at start-up, not at first use. */
export function resolveOptions(
  options: ServerOptions,
  fallbacks: { storage: () => StorageAdapter; logger: () => Logger; access: () => AccessControl },
): ResolvedServerOptions {
  for (const key of POSITIVE_INTEGER_OPTIONS) {
    const v = options[key]
    if (v !== undefined && (!Number.isInteger(v) || (v as number) <= 0)) {
      throw new TypeError(`option ${key} must be a positive integer, got ${String(v)}`)
    }
  }
  if (options.trustProxyHops !== undefined && (!Number.isInteger(options.trustProxyHops) || options.trustProxyHops < 0 || options.trustProxyHops > 16)) {
    throw new TypeError(`option trustProxyHops must be an integer from 0 to 16, got ${String(options.trustProxyHops)}`)
  }
  let authenticate: Authenticate
  let tokens: Promise<TokenVerifier> | null = null
  let authMode: ResolvedServerOptions['authMode']
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
    throw new TypeError('choose how sessions are authenticated: auth: { secret } or { jwks }, onAuthenticate, or auth: \'none\'')
  }
  // a bad secret or key set fails listen(), not the first session
  tokens?.catch(() => undefined)
  const rest = Object.fromEntries(Object.entries(options).filter(([k, v]) => v !== undefined && !NOT_RESOLVED.has(k)))
  const resolved = {
    ...DEFAULTS,
    // the byte burst must let the largest message through
    rateLimitBytesBurst: Math.max(DEFAULTS.rateLimitBytesBurst, options.maxMessageBytes ?? 0),
    ...rest,
    storage: options.storage ?? fallbacks.storage(),
    backplane: options.backplane ?? null,
    metrics: options.metrics ?? new ServerMetrics(),
    logger: options.logger ?? fallbacks.logger(),
    authorizer: new Authorizer({
      authenticate, authorize: options.onAuthorize, access: options.access ?? fallbacks.access(),
      timeoutMs: options.authTimeoutMs ?? DEFAULTS.authTimeoutMs,
    }),
    tokens,
    authMode,
    adminToken: options.adminToken ?? null,
    metricsToken: options.metricsToken ?? null,
    staticDir: options.staticDir ?? null,
    signingSecret: options.auth !== undefined && options.auth !== 'none' && 'secret' in options.auth ? options.auth.secret : null,
    devTokens: options.devTokens === true,
  } as ResolvedServerOptions
  if (resolved.devTokens && resolved.signingSecret === null) throw new TypeError('devTokens needs auth: { secret }')
  if (resolved.chunkBytes > resolved.maxMessageBytes) throw new TypeError('chunkBytes must not exceed maxMessageBytes')
  if (resolved.rateLimitBytesBurst < resolved.maxMessageBytes) throw new TypeError('rateLimitBytesBurst must be at least maxMessageBytes, or the largest message could never pass')
  if (resolved.httpRequestsBurst < resolved.httpExpensiveRequestCost) throw new TypeError('httpRequestsBurst must be at least httpExpensiveRequestCost, or an expensive request could never pass')
  if (resolved.adminToken !== null && resolved.adminToken.length < 16) throw new TypeError('adminToken must be at least 16 characters')
  return Object.freeze(resolved)
}

const NOT_RESOLVED = new Set(['staticDir', 'history', 'webhooks', 'recording', 'metrics', 'metricsToken', 'backplane', 'auth', 'onAuthenticate', 'onAuthorize', 'access', 'adminToken', 'devTokens'])

/** Auth disabled: every session may write. */
export const allowEveryone: Authenticate = () => ({ userId: null, role: 'write' })
