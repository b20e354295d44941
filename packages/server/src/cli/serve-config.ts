// `concord serve`'s configuration from its arguments and the environment: pure (the only reader of
// the environment is `main`, which passes it in), so every option is unit-tested without a server.
import { parseArgs } from 'node:util'
import { join, resolve } from 'node:path'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { LevelWithSilent } from 'pino'
import { redisUrlProblem } from '../backplane/redis-url.js'
import { parsePeerRegion, validateRegions, type RegionsConfig } from '../regions/region-config.js'
import { ConfigError } from '../config/server-config.js'
import { resolveCorsConfig } from '../config/cors-config.js'

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

/** A command line the CLI cannot run: printed with the help, exit code 2. */
export class UsageError extends Error {}

export interface CliConfig {
  port: number
  host: string
  store: 'sqlite' | 'memory' | 'postgres'
  /** The connection string, for `postgres` on one server. */
  storeUrl?: string
  /** For `postgres` on several servers: the partitions, documents placed by name (docs/deployment.md). */
  storePartitions?: StorePartitionConfig[]
  /** redis:// (or redis+cluster://, a Redis Cluster) URL of the backplane (several nodes). */
  redis?: string
  redisStreamMaxLen: number | undefined
  data: string
  logLevel: LevelWithSilent
  compactEveryUpdates: number | undefined
  maxMessageBytes: number | undefined
  sqliteSynchronous: 'FULL' | 'NORMAL'
  /** How much lower the SQLite worker thread's priority is (a nice increment; undefined: the store's default). */
  sqliteWorkerNice: number | undefined
  commitWindowMs: number
  /** undefined: the store's default (10 ms SQLite, 2 ms PostgreSQL) */
  busyCommitWindowMs: number | undefined
  auth: { mode: 'none' } | { mode: 'dev' } | { mode: 'secret'; secret: string } | { mode: 'jwks'; jwks: string }
  authIssuer: string | undefined
  authAudience: string | undefined
  /** Accept JWTs without `exp` (default: refused). */
  authAllowNoExp: boolean
  adminToken: string | undefined
  metricsToken: string | undefined
  recording: { dir: string; documents: string[]; sampleRate: number } | undefined
  checkpointEveryMinutes: number
  historyRetentionDays: number
  webhook: { url: string; secret: string } | undefined
  /** Serve the demo app (apps/demo, built) and its development sign-in. */
  demo: boolean
  /** OTLP/HTTP base URL spans are exported to (off when undefined). */
  otel: string | undefined
  rateLimitMessages: number | undefined
  rateLimitBytes: number | undefined
  maxDocumentBytes: number | undefined
  maxPresenceBytes: number | undefined
  maxConnectionsPerIp: number | undefined
  /** HTTP API requests per second per caller (undefined: the default). */
  httpRateLimit: number | undefined
  maxNamedVersions: number | undefined
  shutdownTimeoutMs: number | undefined
  trustProxyHops: number
  /** permessage-deflate for messages of at least this many bytes (0: off). */
  compressionThresholdBytes: number
  /** Origins whose pages may call the HTTP API under /v1/ (`'*'`: any), or undefined: no CORS headers. */
  corsOrigins: readonly string[] | '*' | undefined
  /** This node's region and its peers (active-active replication), or undefined: one region. */
  regions: RegionsConfig | undefined
}

function parseSynchronous(text: string): 'FULL' | 'NORMAL' {
  const upper = text.toUpperCase()
  if (upper !== 'FULL' && upper !== 'NORMAL') throw new UsageError(`invalid --sqlite-synchronous ${JSON.stringify(text)}: use full or normal`)
  return upper
}

function parseNice(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (text.trim() === '' || !Number.isInteger(n) || n < 0 || n > 19) throw new UsageError(`invalid --sqlite-worker-nice ${JSON.stringify(text)}: 0 to 19`)
  return n
}

function parseWindow(text: string, name: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: 0 to 1000`)
  return n
}

function parseRecording(dir: string | undefined, documents: string | undefined, sample: string | undefined): CliConfig['recording'] {
  if (dir === undefined) {
    if (documents !== undefined || sample !== undefined) throw new UsageError('--record-documents and --record-sample need --record-dir <dir>')
    return undefined
  }
  const sampleRate = sample === undefined ? 0 : Number(sample)
  if (!(sampleRate >= 0 && sampleRate <= 1)) throw new UsageError(`invalid --record-sample ${JSON.stringify(sample)}: a share from 0 to 1`)
  const names = (documents ?? '').split(',').map(d => d.trim()).filter(d => d !== '')
  if (names.length === 0 && sampleRate === 0) throw new UsageError('--record-dir records nothing without --record-documents or --record-sample')
  return { dir: resolve(dir), documents: names, sampleRate }
}

/** The built demo app (apps/demo/dist of the repository). */
export function demoDir(): string {
  const dir = fileURLToPath(new URL('../../../../apps/demo/dist', import.meta.url))
  if (!existsSync(join(dir, 'index.html'))) throw new UsageError(`--demo needs the built demo app in ${dir}: run npm run build at the repository root`)
  return dir
}

function parseByteThreshold(text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`invalid --compression-threshold ${JSON.stringify(text)}: a whole number of bytes, 0 (off) or more`)
  return n
}

function parseNonNegative(name: string, text: string): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: a number, 0 or more`)
  return n
}

function parseWebhook(url: string | undefined, secret: string | undefined): CliConfig['webhook'] {
  if (url === undefined && secret === undefined) return undefined
  if (url === undefined || secret === undefined) throw new UsageError('--webhook-url and --webhook-secret go together')
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`invalid --webhook-url ${JSON.stringify(url)}`)
  if (secret.length < 16) throw new UsageError('--webhook-secret must be at least 16 characters')
  return { url, secret }
}

function parseOtel(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`invalid --otel ${JSON.stringify(url)}: the OTLP/HTTP base URL of a collector, e.g. http://collector:4318`)
  return url
}

function parseHops(text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0 || n > 16) throw new UsageError(`invalid --trust-proxy ${JSON.stringify(text)}: the number of proxies in front, 0 to 16`)
  return n
}

function optionalPositiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: a positive integer is needed`)
  return n
}

/** Where the documents are: `--store` and `--data` (or CONCORD_STORE, CONCORD_DATA), as every command that opens a store takes them. */
export interface StoreConfig {
  store: 'sqlite' | 'memory' | 'postgres'
  /** The connection string, for `postgres` on one server. */
  storeUrl?: string
  /** For `postgres` on several servers (partitions): each partition's id and connection string. */
  storePartitions?: StorePartitionConfig[]
  /** The SQLite store's folder (resolved; also where `--auth dev` keeps its secret). */
  data: string
}

export interface StorePartitionConfig {
  id: string
  url: string
}

/**
 * `--store` (or CONCORD_STORE) is sqlite, memory, a postgres:// URL, or several partitions
 * `<id>=postgres://…,<id>=postgres://…`; the partitions can also be given one per
 * `--store-partition <id>=postgres://…` (or CONCORD_STORE_PARTITIONS, separated by spaces).
 * Flags win over the environment; a store and partitions from the same place are refused.
 */
export function parseStore(storeOption: string | undefined, dataOption: string | undefined, env: NodeJS.ProcessEnv, partitionOptions?: string[]): StoreConfig {
  const data = resolve(dataOption ?? env.CONCORD_DATA ?? './data')
  const flagged = partitionOptions !== undefined && partitionOptions.length > 0
  if (storeOption !== undefined && flagged) throw new UsageError('give --store or --store-partition, not both')
  const envPartitions = env.CONCORD_STORE_PARTITIONS?.split(/\s+/).filter(p => p !== '')
  if (storeOption === undefined && !flagged && env.CONCORD_STORE !== undefined && envPartitions !== undefined && envPartitions.length > 0) {
    throw new UsageError('give CONCORD_STORE or CONCORD_STORE_PARTITIONS, not both')
  }
  const partitionTexts = storeOption !== undefined ? null : flagged ? partitionOptions : env.CONCORD_STORE !== undefined ? null : envPartitions ?? null
  if (partitionTexts !== null && partitionTexts.length > 0) return { store: 'postgres', storePartitions: parsePartitions(partitionTexts), data }
  const storeText = storeOption ?? env.CONCORD_STORE ?? 'sqlite'
  if (/^[^:/]*=postgres(ql)?:\/\//.test(storeText) || /,\s*postgres(ql)?:\/\//.test(storeText)) {
    // a URL may itself hold commas (libpq's host lists): the list splits only before `<id>=postgres`
    return { store: 'postgres', storePartitions: parsePartitions(storeText.split(/,(?=\s*[A-Za-z0-9_-]+=postgres(?:ql)?:\/\/)/)), data }
  }
  const isPostgres = /^postgres(ql)?:\/\//.test(storeText)
  const store = isPostgres ? 'postgres' : storeText
  if (store !== 'sqlite' && store !== 'memory' && store !== 'postgres') {
    throw new UsageError(`invalid store ${JSON.stringify(storeText)}: use sqlite (with --data <dir>), memory, a postgres:// URL, or partitions <id>=postgres://…,<id>=postgres://…`)
  }
  return { store, ...(isPostgres ? { storeUrl: storeText } : {}), data }
}

/** `<id>=postgres://…` each: ids and URLs distinct. */
function parsePartitions(texts: string[]): StorePartitionConfig[] {
  const partitions = texts.map(t => t.trim()).map(text => {
    const m = /^([A-Za-z0-9][A-Za-z0-9_-]{0,62})=(postgres(?:ql)?:\/\/.+)$/.exec(text)
    if (m === null) {
      throw new UsageError(/^postgres(ql)?:\/\//.test(text)
        ? 'each PostgreSQL partition needs an id: --store p1=postgres://host-a/db,p2=postgres://host-b/db (documents are placed by the ids, which must never change; the URLs may)'
        : `invalid partition ${JSON.stringify(text.replace(/:[^:@/]*@/, ':***@'))}: use <id>=postgres://user:pass@host:port/db, the id of letters, digits, _ and -`)
    }
    return { id: m[1]!, url: m[2]! }
  })
  const ids = partitions.map(p => p.id)
  const twice = ids.find((id, i) => ids.indexOf(id) !== i)
  if (twice !== undefined) throw new UsageError(`partition id ${JSON.stringify(twice)} is given twice`)
  const urls = partitions.map(p => p.url)
  if (urls.some((u, i) => urls.indexOf(u) !== i)) throw new UsageError('two partitions are given the same database URL')
  return partitions
}

/** Command-line flags win over environment variables, which win over defaults. */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv): CliConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      store: { type: 'string' },
      'store-partition': { type: 'string', multiple: true },
      redis: { type: 'string' },
      'redis-stream-max-len': { type: 'string' },
      data: { type: 'string' },
      'log-level': { type: 'string' },
      'compact-every-updates': { type: 'string' },
      'max-message-bytes': { type: 'string' },
      'sqlite-synchronous': { type: 'string' },
      'sqlite-worker-nice': { type: 'string' },
      'commit-window-ms': { type: 'string' },
      'busy-commit-window-ms': { type: 'string' },
      'sqlite-commit-window-ms': { type: 'string' },
      'sqlite-busy-commit-window-ms': { type: 'string' },
      auth: { type: 'string' },
      'auth-secret': { type: 'string' },
      'auth-jwks': { type: 'string' },
      'auth-issuer': { type: 'string' },
      'auth-audience': { type: 'string' },
      'auth-allow-no-exp': { type: 'boolean' },
      'admin-token': { type: 'string' },
      'metrics-token': { type: 'string' },
      otel: { type: 'string' },
      demo: { type: 'boolean' },
      'checkpoint-every-minutes': { type: 'string' },
      'history-retention-days': { type: 'string' },
      'webhook-url': { type: 'string' },
      'webhook-secret': { type: 'string' },
      'record-dir': { type: 'string' },
      'record-documents': { type: 'string' },
      'record-sample': { type: 'string' },
      'rate-limit-messages': { type: 'string' },
      'rate-limit-bytes': { type: 'string' },
      'max-document-bytes': { type: 'string' },
      'max-presence-bytes': { type: 'string' },
      'max-connections-per-ip': { type: 'string' },
      'trust-proxy': { type: 'string' },
      'compression-threshold': { type: 'string' },
      'cors-origin': { type: 'string', multiple: true },
      'http-rate-limit': { type: 'string' },
      'max-named-versions': { type: 'string' },
      'shutdown-timeout-ms': { type: 'string' },
      region: { type: 'string' },
      'peer-region': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  })
  const portText = values.port ?? env.CONCORD_PORT ?? '1234'
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid port ${JSON.stringify(portText)}`)
  const { store, storeUrl, storePartitions, data } = parseStore(values.store, values.data, env, values['store-partition'])
  const redisUrl = values.redis ?? env.CONCORD_REDIS
  if (redisUrl !== undefined) {
    const problem = redisUrlProblem(redisUrl)
    if (problem !== null) throw new UsageError(`invalid --redis: ${problem}`)
    // nodes share documents through the store: each node's own SQLite file cannot be shared
    if (store !== 'postgres') throw new UsageError('--redis needs --store postgres://...: the nodes of a cluster share one store')
  }
  const demo = values.demo === true || env.CONCORD_DEMO === '1'
  if (demo && (values.auth ?? env.CONCORD_AUTH ?? 'dev') !== 'dev') throw new UsageError('--demo signs users in with development tokens: it goes with --auth dev (the default with --demo) only')
  const busyWindow = values['busy-commit-window-ms'] ?? values['sqlite-busy-commit-window-ms'] ?? env.CONCORD_BUSY_COMMIT_WINDOW_MS ?? env.CONCORD_SQLITE_BUSY_COMMIT_WINDOW_MS
  const logLevel = values['log-level'] ?? env.CONCORD_LOG_LEVEL ?? 'info'
  if (!LEVELS.has(logLevel)) throw new UsageError(`invalid log level ${JSON.stringify(logLevel)}`)
  return {
    port,
    host: values.host ?? env.CONCORD_HOST ?? '0.0.0.0',
    store,
    ...(storeUrl !== undefined ? { storeUrl } : {}),
    ...(storePartitions !== undefined ? { storePartitions } : {}),
    ...(redisUrl !== undefined ? { redis: redisUrl } : {}),
    redisStreamMaxLen: optionalPositiveInt('--redis-stream-max-len', values['redis-stream-max-len'] ?? env.CONCORD_REDIS_STREAM_MAX_LEN),
    data,
    logLevel: logLevel as LevelWithSilent,
    compactEveryUpdates: optionalPositiveInt('--compact-every-updates', values['compact-every-updates'] ?? env.CONCORD_COMPACT_EVERY_UPDATES),
    maxMessageBytes: optionalPositiveInt('--max-message-bytes', values['max-message-bytes'] ?? env.CONCORD_MAX_MESSAGE_BYTES),
    sqliteSynchronous: parseSynchronous(values['sqlite-synchronous'] ?? env.CONCORD_SQLITE_SYNCHRONOUS ?? 'full'),
    sqliteWorkerNice: parseNice(values['sqlite-worker-nice'] ?? env.CONCORD_SQLITE_WORKER_NICE),
    commitWindowMs: parseWindow(values['commit-window-ms'] ?? values['sqlite-commit-window-ms'] ?? env.CONCORD_COMMIT_WINDOW_MS ?? env.CONCORD_SQLITE_COMMIT_WINDOW_MS ?? '2', '--commit-window-ms'),
    busyCommitWindowMs: busyWindow === undefined ? undefined : parseWindow(busyWindow, '--busy-commit-window-ms'),
    auth: parseAuth(values.auth ?? env.CONCORD_AUTH ?? (demo ? 'dev' : undefined), values['auth-secret'] ?? env.CONCORD_AUTH_SECRET, values['auth-jwks'] ?? env.CONCORD_AUTH_JWKS),
    demo,
    authIssuer: values['auth-issuer'] ?? env.CONCORD_AUTH_ISSUER,
    authAudience: values['auth-audience'] ?? env.CONCORD_AUTH_AUDIENCE,
    authAllowNoExp: values['auth-allow-no-exp'] === true || env.CONCORD_AUTH_ALLOW_NO_EXP === '1',
    adminToken: values['admin-token'] ?? env.CONCORD_ADMIN_TOKEN,
    metricsToken: values['metrics-token'] ?? env.CONCORD_METRICS_TOKEN,
    otel: parseOtel(values.otel ?? env.CONCORD_OTEL),
    checkpointEveryMinutes: parseNonNegative('--checkpoint-every-minutes', values['checkpoint-every-minutes'] ?? env.CONCORD_CHECKPOINT_EVERY_MINUTES ?? '10'),
    historyRetentionDays: parseNonNegative('--history-retention-days', values['history-retention-days'] ?? env.CONCORD_HISTORY_RETENTION_DAYS ?? '30'),
    webhook: parseWebhook(values['webhook-url'] ?? env.CONCORD_WEBHOOK_URL, values['webhook-secret'] ?? env.CONCORD_WEBHOOK_SECRET),
    recording: parseRecording(values['record-dir'] ?? env.CONCORD_RECORD_DIR, values['record-documents'] ?? env.CONCORD_RECORD_DOCUMENTS, values['record-sample'] ?? env.CONCORD_RECORD_SAMPLE),
    rateLimitMessages: optionalPositiveInt('--rate-limit-messages', values['rate-limit-messages'] ?? env.CONCORD_RATE_LIMIT_MESSAGES),
    rateLimitBytes: optionalPositiveInt('--rate-limit-bytes', values['rate-limit-bytes'] ?? env.CONCORD_RATE_LIMIT_BYTES),
    maxDocumentBytes: optionalPositiveInt('--max-document-bytes', values['max-document-bytes'] ?? env.CONCORD_MAX_DOCUMENT_BYTES),
    maxPresenceBytes: optionalPositiveInt('--max-presence-bytes', values['max-presence-bytes'] ?? env.CONCORD_MAX_PRESENCE_BYTES),
    maxConnectionsPerIp: optionalPositiveInt('--max-connections-per-ip', values['max-connections-per-ip'] ?? env.CONCORD_MAX_CONNECTIONS_PER_IP),
    trustProxyHops: parseHops(values['trust-proxy'] ?? env.CONCORD_TRUST_PROXY ?? '0'),
    compressionThresholdBytes: parseByteThreshold(values['compression-threshold'] ?? env.CONCORD_COMPRESSION_THRESHOLD ?? '0'),
    // an empty CONCORD_CORS_ORIGINS (a template's placeholder) is off, as if unset
    corsOrigins: parseCorsOrigins(values['cors-origin'] ?? (env.CONCORD_CORS_ORIGINS?.trim() ? [env.CONCORD_CORS_ORIGINS] : undefined)),
    httpRateLimit: optionalPositiveInt('--http-rate-limit', values['http-rate-limit'] ?? env.CONCORD_HTTP_RATE_LIMIT),
    maxNamedVersions: optionalPositiveInt('--max-named-versions', values['max-named-versions'] ?? env.CONCORD_MAX_NAMED_VERSIONS),
    shutdownTimeoutMs: optionalPositiveInt('--shutdown-timeout-ms', values['shutdown-timeout-ms'] ?? env.CONCORD_SHUTDOWN_TIMEOUT_MS),
    regions: parseRegions(values.region ?? env.CONCORD_REGION, values['peer-region'] ?? splitList(env.CONCORD_PEER_REGIONS), store, redisUrl, storePartitions !== undefined),
  }
}

/**
 * `--cors-origin` (repeated, or comma-separated) or `CONCORD_CORS_ORIGINS` (comma- or space-separated):
 * exact origins, or `*` alone. Checked as createServer checks them, with the flag's name.
 */
function parseCorsOrigins(given: string[] | undefined): CliConfig['corsOrigins'] {
  if (given === undefined) return undefined
  const origins = given.flatMap(g => g.split(/[\s,]+/)).filter(o => o !== '')
  if (origins.length === 0) throw new UsageError('--cors-origin needs an origin (e.g. https://app.example.com), or * for any')
  if (origins.includes('*') && origins.length > 1) throw new UsageError('invalid --cors-origin: * allows every origin, give it alone')
  const config = resolveCorsConfig({ origins: origins.length === 1 && origins[0] === '*' ? '*' : origins },
    message => new UsageError(`invalid --cors-origin: ${message.replace(/^option cors\.origins: /, '')}`))
  return config.origins
}

/** `CONCORD_PEER_REGIONS`: peers separated by spaces or semicolons. */
function splitList(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(/[\s;]+/).filter(p => p !== '')
}

function parseRegions(name: string | undefined, peers: string[] | undefined, store: string, redis: string | undefined, partitioned: boolean): RegionsConfig | undefined {
  if (name === undefined) {
    if (peers !== undefined && peers.length > 0) throw new UsageError('--peer-region needs --region <name>: the name of this region')
    return undefined
  }
  // a region ships from one outbox into one peer database (docs/deployment.md, Partitioned PostgreSQL: limits)
  if (partitioned) throw new UsageError('--region does not work with a partitioned store yet: a region is nodes on one PostgreSQL and one Redis')
  // a region is nodes on one PostgreSQL and one Redis; its peers ship into that database and announce on that Redis
  if (store !== 'postgres' || redis === undefined) throw new UsageError('--region needs --store postgres://... and --redis redis://...: a region is nodes on one PostgreSQL and one Redis')
  try {
    return validateRegions({ name, peers: (peers ?? []).map(parsePeerRegion) })
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message)
    throw err
  }
}

function parseAuth(mode: string | undefined, secret: string | undefined, jwks: string | undefined): CliConfig['auth'] {
  const chosen = [mode !== undefined, secret !== undefined, jwks !== undefined].filter(Boolean).length
  if (chosen === 0) {
    throw new UsageError('choose how sessions are authenticated: --auth-secret <secret>, --auth-jwks <file or URL>, --auth none, or --auth dev')
  }
  if (chosen > 1) throw new UsageError('give only one of --auth-secret, --auth-jwks and --auth')
  if (secret !== undefined) {
    if (secret.length < 32) throw new UsageError('--auth-secret must be at least 32 characters')
    return { mode: 'secret', secret }
  }
  if (jwks !== undefined) return { mode: 'jwks', jwks }
  if (mode === 'none' || mode === 'dev') return { mode }
  throw new UsageError(`invalid --auth ${JSON.stringify(mode)}: use none or dev (or --auth-secret / --auth-jwks)`)
}

/** The development secret: created once in the data folder, readable by its owner only. */
