import type { ErrorCode } from '@concord/protocol'
import { resolveCorsConfig, type CorsConfig, type CorsOptions } from './cors-config.js'

/**
 * The server's configuration: values only (no services), every default in one place, validated
 * and frozen at start-up so that misconfiguration fails fast with a coded error.
 */

/** A configuration value the server cannot run with. A `TypeError`, with a stable code. */
export class ConfigError extends TypeError {
  readonly code: ErrorCode = 'CONCORD_ERR_CONFIG_INVALID'
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
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
  /** A stateless message's payload, UTF-8 bytes. */
  maxStatelessBytes: 16 * 1024,
  /** Stateless messages one session may send per second (bursts of twice that). */
  statelessPerSecond: 20,
  /** How long an asynchronous extension hook may take. */
  hookTimeoutMs: 5_000,
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
  /**
   * permessage-deflate: 0 turns it off (the default, see docs/benchmarks.md "Compression"); n > 0
   * offers it to clients, and messages of at least n bytes are compressed (zlib level 1, no
   * context kept between messages).
   */
  compressionThresholdBytes: 0,
  serverName: 'concord',
  // SIGTERM / close(): how long the graceful drain may wait for storage and the backplane
  shutdownTimeoutMs: 10_000,
  // versions: a checkpoint once the first change after the last version is 10 minutes old,
  // checkpoints kept 30 days, and the last editor leaving takes none within a minute of the previous
  checkpointEveryMs: 10 * 60_000,
  versionRetentionMs: 30 * 86_400_000,
  minCheckpointIntervalMs: 60_000,
} as const

type Defaults = { -readonly [K in keyof typeof DEFAULTS]: (typeof DEFAULTS)[K] extends string ? string : number }

/** What the server runs with: the limits and timings of `DEFAULTS`, and what the options name. */
export interface ServerConfig extends Defaults {
  /** How sessions are authenticated. */
  readonly authMode: 'none' | 'jwt' | 'hook'
  readonly adminToken: string | null
  readonly metricsToken: string | null
  readonly staticDir: string | null
  /** The HS256 secret, when `auth` has one: the server can then sign share links. */
  readonly signingSecret: string | null
  readonly devTokens: boolean
  /** Which browser origins may call the HTTP API under /v1/ (null: no CORS headers at all). */
  readonly cors: CorsConfig | null
}

/** The values `resolveConfig` reads (any subset of the defaults, and the rest). */
export type ConfigInput = Partial<Defaults> & Partial<Omit<ServerConfig, keyof Defaults | 'authMode' | 'cors'>> & Pick<ServerConfig, 'authMode'>
  & { cors?: CorsOptions }

const POSITIVE_INTEGER_OPTIONS = (Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[])
  .filter(k => k !== 'serverName' && k !== 'trustProxyHops' && k !== 'checkpointEveryMs' && k !== 'versionRetentionMs' && k !== 'minCheckpointIntervalMs' && k !== 'compressionThresholdBytes')
const NON_NEGATIVE_INTEGER_OPTIONS = ['checkpointEveryMs', 'versionRetentionMs', 'minCheckpointIntervalMs', 'compressionThresholdBytes'] as const

/** Validate and freeze the configuration; misconfiguration fails at start-up, not at first use. */
export function resolveConfig(input: ConfigInput): Readonly<ServerConfig> {
  for (const key of POSITIVE_INTEGER_OPTIONS) {
    const v = input[key]
    if (v !== undefined && (!Number.isInteger(v) || (v as number) <= 0)) {
      throw new ConfigError(`option ${key} must be a positive integer, got ${String(v)}`)
    }
  }
  for (const key of NON_NEGATIVE_INTEGER_OPTIONS) {
    const v = input[key]
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new ConfigError(`option ${key} must be an integer of at least 0, got ${String(v)}`)
  }
  if (input.trustProxyHops !== undefined && (!Number.isInteger(input.trustProxyHops) || input.trustProxyHops < 0 || input.trustProxyHops > 16)) {
    throw new ConfigError(`option trustProxyHops must be an integer from 0 to 16, got ${String(input.trustProxyHops)}`)
  }
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined))
  const config: ServerConfig = {
    ...DEFAULTS,
    // the byte burst must let the largest message through
    rateLimitBytesBurst: Math.max(DEFAULTS.rateLimitBytesBurst, input.maxMessageBytes ?? 0),
    adminToken: null,
    metricsToken: null,
    staticDir: null,
    signingSecret: null,
    devTokens: false,
    ...given,
    cors: input.cors === undefined ? null : resolveCorsConfig(input.cors, message => new ConfigError(message)),
  } as ServerConfig
  if (config.devTokens && config.signingSecret === null) throw new ConfigError('devTokens needs auth: { secret }')
  if (config.chunkBytes > config.maxMessageBytes) throw new ConfigError('chunkBytes must not exceed maxMessageBytes')
  if (config.rateLimitBytesBurst < config.maxMessageBytes) throw new ConfigError('rateLimitBytesBurst must be at least maxMessageBytes, or the largest message could never pass')
  if (config.httpRequestsBurst < config.httpExpensiveRequestCost) throw new ConfigError('httpRequestsBurst must be at least httpExpensiveRequestCost, or an expensive request could never pass')
  if (config.adminToken !== null && config.adminToken.length < 16) throw new ConfigError('adminToken must be at least 16 characters')
  return Object.freeze(config)
}
