import { parseArgs } from 'node:util'
import { join, resolve } from 'node:path'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { ConcordError, ERROR_CODES, type Role } from '@concord/protocol'
import { AccessControl, createFileAccessStore } from '../auth/access-control.js'
import { mintToken } from '../auth/jwt.js'
import { isRole } from '../auth/patterns.js'
import { ConfigError, DEFAULTS } from '../config/server-config.js'
import { createServer, VERSION } from '../server.js'
import { createLogger } from '../ops/logger.js'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { Backplane } from '../backplane/backplane.js'
import type { NodeDirectory } from '../backplane/node-directory.js'
import { redactRedisUrl } from '../backplane/redis-url.js'
import type { PostgresStorage } from '../storage/postgres-storage.js'
import type { PartitionedPostgresStorage } from '../storage/partitioned-storage.js'
import { demoDir, parseServeConfig, UsageError, type CliConfig } from './serve-config.js'
import type { AuthConfig } from '../auth/auth-hooks.js'

export { parseServeConfig, type CliConfig }

const HELP = `concord ${VERSION}: real-time collaboration server (Yjs)

Usage:
  concord serve [options]
  concord token [options]     mint an HS256 token (development, tests, share links)
  concord replay <file> [--realtime]
                              re-run a recording (serve --record-*) against a fresh in-memory
                              server and report whether the final state matches (exit 0 if it does)
  concord export --out <file> [--store <s>] [--data <dir>] [--gzip]
                              write every document of a store, with its versions and authors, to
                              one archive (gzip when <file> ends in .gz; - for standard output);
                              safe while a server runs on the store (docs/deployment.md)
  concord import --in <file> [--store <s>] [--data <dir>] [--overwrite | --merge]
                              load an archive into a store (SQLite or PostgreSQL: also the way
                              from SQLite to PostgreSQL); checks the whole archive first and
                              refuses documents the store already has unless told what to do
  concord repartition --store <id>=postgres://…,…
                              add partitions to a partitioned PostgreSQL store, with every node
                              stopped: moves only the documents whose partition changes
                              (docs/deployment.md, Partitioned PostgreSQL)
  concord bench [options]     benchmark Concord against Hocuspocus and the y-websocket reference
                              server, or any server URL (--url); needs the repository's bench/
                              package (concord bench --help lists the options; docs/benchmarks.md)
  concord --help | --version

Options of serve (each also read from the environment variable shown):
  --port <n>         port to listen on                      CONCORD_PORT       (default 1234)
  --host <address>   address to bind                        CONCORD_HOST       (default 0.0.0.0)
  --store <kind>     sqlite | memory | postgres://user:pass@host:port/db  CONCORD_STORE (default sqlite)
                     or documents partitioned over several PostgreSQL servers by name:
                     <id>=postgres://…,<id>=postgres://… (docs/deployment.md, Partitioned PostgreSQL)
  --store-partition <id>=<postgres://…>   one partition (repeat for each), instead of the list
                     in --store  CONCORD_STORE_PARTITIONS (space-separated)
  --data <dir>       folder of the SQLite store             CONCORD_DATA       (default ./data)
  --redis <url>      redis://host:port: join the other nodes on the same --store postgres://
                     (document updates between nodes on Redis Streams)  CONCORD_REDIS
                     A Redis Cluster (7.0+): redis+cluster://host:port,host:port,… (seed
                     nodes; rediss+cluster:// for TLS; docs/deployment.md, Redis Cluster)
  --redis-stream-max-len <n>   entries kept per document stream; a node further behind
                               reloads the document from the store  CONCORD_REDIS_STREAM_MAX_LEN (default 10000)
  --region <name>    this region's name (active-active regions; needs --store postgres:// and
                     --redis, see docs/regions.md)  CONCORD_REGION
  --peer-region <name>=<postgres://…>,<redis://…>   a peer region (repeat for each): this
                     region ships its updates into the peer's PostgreSQL and announces them
                     on the peer's Redis (or redis+cluster://…)  CONCORD_PEER_REGIONS (space-separated)
  --log-level <l>    fatal|error|warn|info|debug|trace|silent CONCORD_LOG_LEVEL (default info)
  --shutdown-timeout-ms <n>    on SIGTERM, how long to wait for storage and Redis before giving up
                               what is not durable yet (never acked)  CONCORD_SHUTDOWN_TIMEOUT_MS (default 10000)
  --compact-every-updates <n>  compact a document's log after n updates  CONCORD_COMPACT_EVERY_UPDATES (default 1000)
  --max-message-bytes <n>      largest message accepted                  CONCORD_MAX_MESSAGE_BYTES (default 67108864)
  --sqlite-synchronous <s>     full: an ack survives power loss; normal: it survives a process crash
                               (kill -9) but not an OS crash, and costs fewer fsyncs
                                                                         CONCORD_SQLITE_SYNCHRONOUS (default full)
  --sqlite-worker-nice <n>     the SQLite worker thread runs this much below the process's priority
                               (Linux nice, 0 to 19), so commits rarely preempt the event loop
                                                                         CONCORD_SQLITE_WORKER_NICE (default 10)
  --commit-window-ms <n>       group commit: an append to an idle store waits this long for
                               others                                     CONCORD_COMMIT_WINDOW_MS (default 2)
  --busy-commit-window-ms <n>  the window under steady load (the last commit ended less than this
                               long ago)  CONCORD_BUSY_COMMIT_WINDOW_MS (default 10)
                               (--sqlite-commit-window-ms and --sqlite-busy-commit-window-ms: old names)
  --rate-limit-messages <n>    messages per second per socket (burst 5x)  CONCORD_RATE_LIMIT_MESSAGES (default 1000)
  --rate-limit-bytes <n>       bytes per second per socket                CONCORD_RATE_LIMIT_BYTES (default 16777216)
  --max-document-bytes <n>     largest document                           CONCORD_MAX_DOCUMENT_BYTES (default 536870912)
  --max-presence-bytes <n>     largest presence state of one client       CONCORD_MAX_PRESENCE_BYTES (default 65536)
  --max-connections-per-ip <n> open sockets per client address            CONCORD_MAX_CONNECTIONS_PER_IP (default 1000)
  --http-rate-limit <n>        HTTP API requests per second per user (or address without one; burst
                               10x; creating a version, restore, diff count 10)  CONCORD_HTTP_RATE_LIMIT (default 50)
  --compression-threshold <n>  permessage-deflate for messages of at least n bytes (0: off)      CONCORD_COMPRESSION_THRESHOLD (default 0)
  --trust-proxy <n>            proxies in front that append to X-Forwarded-For: the client address
                               is the n-th entry from its right        CONCORD_TRUST_PROXY (default 0: the peer)
  --cors-origin <origin>       let web pages on this origin call the HTTP API under /v1/ from the
                               browser (CORS): scheme://host[:port], e.g. http://localhost:5173; repeat
                               or separate with commas; * for any origin
                               CONCORD_CORS_ORIGINS (comma-separated; default: off, no CORS headers)

  Authentication (exactly one is required; docs/security.md):
  --auth-secret <s>  HS256 shared secret, at least 32 characters       CONCORD_AUTH_SECRET
  --auth-jwks <f|u>  RS256/ES256 public keys: a JWKS file or URL        CONCORD_AUTH_JWKS
  --auth none        no authentication: anyone may write anything      CONCORD_AUTH=none
  --demo             serve the demo app (apps/demo) at / with development sign-in (implies --auth dev;
                     never use in production)                      CONCORD_DEMO=1
  --auth dev         development: HS256 with a secret kept in <data>/dev-auth-secret; with --demo,
                     POST /dev/token mints tokens for anyone (never use in production)
  --auth-issuer <i>, --auth-audience <a>   required iss / aud claims
  --auth-allow-no-exp  accept tokens without an exp claim (they never expire; warned about at
                     start; default: refused)                       CONCORD_AUTH_ALLOW_NO_EXP=1
  --admin-token <t>  bearer token for the admin HTTP API (all tenants)  CONCORD_ADMIN_TOKEN
  --record-dir <dir>           record documents' inbound messages to files here     CONCORD_RECORD_DIR
  --record-documents <a,b>     documents recorded every time they load             CONCORD_RECORD_DOCUMENTS
  --record-sample <0..1>       share of the other documents recorded (default 0)   CONCORD_RECORD_SAMPLE
  --checkpoint-every-minutes <n>  a version (checkpoint) once a document has changed for n minutes
                               (and when its last session leaves)  CONCORD_CHECKPOINT_EVERY_MINUTES (default 10)
  --history-retention-days <n> checkpoints older than n days are pruned (named versions stay; 0: never)
                                                                   CONCORD_HISTORY_RETENTION_DAYS (default 30)
  --max-named-versions <n>     named versions per document; more are refused until one is deleted
                                                                   CONCORD_MAX_NAMED_VERSIONS (default 100)
  --webhook-url <url>          POST signed events (document.changed/created/deleted, version.created)
  --webhook-secret <s>         the HMAC secret they are signed with   CONCORD_WEBHOOK_URL, CONCORD_WEBHOOK_SECRET
  --otel <url>                 export OpenTelemetry spans (connect, document load, apply, append)
                               over OTLP/HTTP to <url>/v1/traces (off by default)  CONCORD_OTEL
  --metrics-token <t>  GET /metrics needs this bearer token (or the admin token); default: open
                                                                   CONCORD_METRICS_TOKEN
  -h, --help         show this help

Options of export and import (--store and --data as for serve, also from CONCORD_STORE, CONCORD_DATA):
  --store <s>        sqlite (the default, in --data <dir>) or postgres://user:pass@host:port/db, or
                     partitions <id>=postgres://…,<id>=postgres://… (or --store-partition, repeated)
  --out <file>       export: the archive to write (- for standard output)
  --gzip             export: compress (the default when --out ends in .gz)
  --in <file>        import: the archive to read, plain or gzip (- for standard input)
  --overwrite        import: replace documents the store already has (deleted first, with their versions)
  --merge            import: merge into them (Yjs merges the states; versions they have stay, the others are added)
  Exit codes: 0 done; 2 bad arguments or a refused archive (CONCORD_ERR_ARCHIVE_*, CONCORD_ERR_IMPORT_DOCUMENT_EXISTS:
  nothing was written); 1 the store failed.

Options of token:
  --tenant <t>       the namespace: documents are named <tenant>/...  (required)
  --user <id>        the user id (sub)
  --doc <pattern=role>  a role on documents matching pattern (repeatable), e.g. --doc 'acme/*=write'
  --share <document> a share link for one document, with --role read|write
  --admin            the token may use the admin HTTP API for its tenant
  --expires <t>      lifetime: 90s, 30m, 12h, 7d (default 1h)
  --secret <s>       the HS256 secret (or CONCORD_AUTH_SECRET); --dev [--data <dir>] uses the dev secret
  --json             print {"token","id","expiresAt"} instead of the bare token

Endpoints:
  ws://<host>:<port>/<room>        y-websocket protocol (stock WebsocketProvider)
  ws://<host>:<port>/ + subprotocol "concord"   native multiplexed protocol (@concord/client)
  GET /healthz, GET /readyz
  /admin/...                       revocations and roles (docs/security.md)
`

async function devSecret(dataDir: string): Promise<string> {
  const file = join(dataDir, 'dev-auth-secret')
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dataDir, { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async err => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  })
  return (await readFile(file, 'utf8')).trim()
}

async function serve(argv: string[]): Promise<void> {
  const config = parseServeConfig(argv, process.env)
  const logger = createLogger(config.logLevel)
  let storage: StorageAdapter
  let postgres: Pick<PostgresStorage, 'accessStore' | 'ready' | 'beforeReady'> | null = null
  if (config.storePartitions !== undefined) {
    storage = postgres = await openPartitions(config, logger)
  } else if (config.store === 'sqlite') {
    const { createSqliteStorage } = await import('../storage/sqlite-storage.js')
    const windows = { commitWindowMs: config.commitWindowMs, busyCommitWindowMs: config.busyCommitWindowMs ?? 10 }
    const nice = config.sqliteWorkerNice === undefined ? {} : { workerNice: config.sqliteWorkerNice }
    storage = createSqliteStorage({ dataDir: config.data, synchronous: config.sqliteSynchronous, ...windows, ...nice })
    logger.info({ data: config.data, synchronous: config.sqliteSynchronous, ...windows, ...nice }, 'using SQLite store')
  } else if (config.store === 'postgres') {
    const { createPostgresStorage } = await import('../storage/postgres-storage.js')
    storage = postgres = await createPostgresStorage({
      connectionString: config.storeUrl!, commitWindowMs: config.commitWindowMs, busyCommitWindowMs: config.busyCommitWindowMs ?? 10,
      ...(config.regions !== undefined ? { replication: true } : {}),
    })
    logger.info({ postgres: redactUrl(config.storeUrl!), commitWindowMs: config.commitWindowMs, busyCommitWindowMs: config.busyCommitWindowMs ?? 10 }, 'using PostgreSQL store')
  } else {
    const { createMemoryStorage } = await import('../storage/memory-storage.js')
    storage = createMemoryStorage()
    logger.warn('using the in-memory store: documents are lost when the server stops')
  }
  let auth: AuthConfig
  const claims = {
    ...(config.authIssuer !== undefined ? { issuer: config.authIssuer } : {}),
    ...(config.authAudience !== undefined ? { audience: config.authAudience } : {}),
    ...(config.authAllowNoExp ? { allowTokensWithoutExp: true } : {}),
  }
  switch (config.auth.mode) {
    case 'none':
      auth = 'none'
      break
    case 'dev':
      auth = { secret: await devSecret(config.data), ...claims }
      logger.warn({ secretFile: join(config.data, 'dev-auth-secret') },
        'DEVELOPMENT configuration (--auth dev): tokens are signed with a local secret and POST /dev/token hands them to anyone; never use this in production')
      break
    case 'secret':
      auth = { secret: config.auth.secret, ...claims }
      break
    case 'jwks':
      auth = { jwks: config.auth.jwks, ...claims }
      break
  }
  // revocations and role overrides: in PostgreSQL, shared by the nodes; else in <data>/access.json
  let access: AccessControl
  if (postgres !== null) {
    const store = postgres.accessStore()
    if (postgres.ready) {
      access = await AccessControl.open(store)
    } else {
      // PostgreSQL was unreachable at startup: the state is read before the store reports ready
      const unloaded = AccessControl.unloaded(store)
      postgres.beforeReady(() => unloaded.reload())
      access = unloaded
    }
  } else {
    access = config.store === 'sqlite' ? await AccessControl.open(createFileAccessStore(join(config.data, 'access.json'))) : AccessControl.inMemory()
  }
  let backplane: Backplane | undefined
  let nodeDirectory: NodeDirectory | undefined
  if (config.redis !== undefined) {
    const { RedisBackplane } = await import('../backplane/redis-backplane.js')
    backplane = new RedisBackplane({ url: config.redis, logger, ...(config.redisStreamMaxLen !== undefined ? { maxLen: config.redisStreamMaxLen } : {}) })
    logger.info({ redis: redactRedisUrl(config.redis), node: backplane.nodeId }, 'joined the cluster through Redis')
    // the admin API's and the dashboard's view of every node, on the same Redis
    const { createNodeDirectory } = await import('../backplane/node-directory.js')
    nodeDirectory = createNodeDirectory({ url: config.redis, logger })
  }
  let stopTracing: (() => Promise<void>) | null = null
  if (config.otel !== undefined) {
    const { startTracing } = await import('../ops/tracing.js')
    stopTracing = await startTracing({ url: config.otel, serviceName: 'concord', serviceVersion: VERSION, ...(backplane !== undefined ? { instanceId: backplane.nodeId } : {}) })
    logger.info({ otlp: redactUrl(config.otel) }, 'exporting OpenTelemetry spans')
  }
  const server = createServer({
    storage, logger, ...(backplane !== undefined ? { backplane } : {}), ...(nodeDirectory !== undefined ? { nodeDirectory } : {}), compactEveryUpdates: config.compactEveryUpdates, maxMessageBytes: config.maxMessageBytes,
    auth, access, devTokens: config.demo, ...(config.adminToken !== undefined ? { adminToken: config.adminToken } : {}),
    ...(config.metricsToken !== undefined ? { metricsToken: config.metricsToken } : {}),
    ...(config.corsOrigins !== undefined ? { cors: { origins: config.corsOrigins } } : {}),
    ...(config.recording !== undefined ? { recording: config.recording } : {}),
    ...(config.demo ? { staticDir: demoDir() } : {}),
    history: { checkpointEveryMs: config.checkpointEveryMinutes * 60_000, retentionMs: config.historyRetentionDays * 86_400_000 },
    ...(config.webhook !== undefined ? { webhooks: [config.webhook] } : {}),
    ...(config.rateLimitMessages !== undefined
      ? { rateLimitMessagesPerSecond: config.rateLimitMessages, rateLimitMessagesBurst: Math.max(DEFAULTS.rateLimitMessagesBurst, 5 * config.rateLimitMessages) }
      : {}),
    ...(config.rateLimitBytes !== undefined
      ? { rateLimitBytesPerSecond: config.rateLimitBytes, rateLimitBytesBurst: Math.max(DEFAULTS.rateLimitBytesBurst, 2 * config.rateLimitBytes) }
      : {}),
    maxDocumentBytes: config.maxDocumentBytes, maxPresenceBytes: config.maxPresenceBytes, maxConnectionsPerIp: config.maxConnectionsPerIp, trustProxyHops: config.trustProxyHops,
    ...(config.httpRateLimit !== undefined
      ? { httpRequestsPerSecond: config.httpRateLimit, httpRequestsBurst: Math.max(DEFAULTS.httpExpensiveRequestCost, 10 * config.httpRateLimit) }
      : {}),
    maxNamedVersionsPerDocument: config.maxNamedVersions,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    compressionThresholdBytes: config.compressionThresholdBytes,
    ...(config.regions !== undefined ? { regions: config.regions } : {}),
  })
  if (config.regions !== undefined) {
    logger.info({ region: config.regions.name, peers: config.regions.peers.map(p => ({ name: p.name, postgres: redactUrl(p.postgres), redis: redactRedisUrl(p.redis) })) }, 'regions: replicating with the peer regions')
  }
  const adminApi = [config.adminToken !== undefined ? 'admin token' : null, config.auth.mode === 'none' ? null : 'admin JWTs'].filter(Boolean).join(' and ') || 'off'
  logger.info({ auth: config.auth.mode, adminApi }, 'authentication')
  if (config.corsOrigins !== undefined) logger.info({ corsOrigins: config.corsOrigins }, 'CORS: pages on these origins may call the HTTP API under /v1/')
  await server.listen(config.port, config.host)
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(1)
    }
    stopping = true
    logger.info({ signal }, 'shutting down')
    server.close().then(() => stopTracing?.()).then(() => process.exit(0), err => {
      logger.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

/** `--store <id>=postgres://…,…`: documents partitioned over several PostgreSQL servers. */
async function openPartitions(config: CliConfig, logger: ReturnType<typeof createLogger>): Promise<PartitionedPostgresStorage> {
  const { createPartitionedPostgresStorage } = await import('../storage/partitioned-storage.js')
  const windows = { commitWindowMs: config.commitWindowMs, busyCommitWindowMs: config.busyCommitWindowMs ?? 10 }
  const storage = await createPartitionedPostgresStorage({
    partitions: config.storePartitions!.map(p => ({ id: p.id, connectionString: p.url })), logger, ...windows,
  })
  const primary = storage.partitions().find(p => p.primary)?.id ?? null
  logger.info({ partitions: config.storePartitions!.map(p => ({ id: p.id, postgres: redactUrl(p.url) })), primary, ...windows }, 'using PostgreSQL partitions')
  return storage
}

/** `concord token`: mint an HS256 token with Concord's claims. */
export async function token(argv: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tenant: { type: 'string' },
      user: { type: 'string' },
      doc: { type: 'string', multiple: true },
      share: { type: 'string' },
      role: { type: 'string' },
      admin: { type: 'boolean' },
      expires: { type: 'string' },
      secret: { type: 'string' },
      dev: { type: 'boolean' },
      data: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  })
  const tenant = values.tenant
  if (tenant === undefined || tenant === '' || tenant.includes('/')) throw new UsageError('--tenant <name> is required (no "/")')
  const docs: Record<string, Role> = {}
  for (const rule of values.doc ?? []) {
    const at = rule.lastIndexOf('=')
    const pattern = rule.slice(0, at)
    const role = rule.slice(at + 1)
    if (at <= 0 || !isRole(role)) throw new UsageError(`invalid --doc ${JSON.stringify(rule)}: use <pattern>=read|write|admin`)
    if (!pattern.startsWith(`${tenant}/`)) throw new UsageError(`--doc pattern ${JSON.stringify(pattern)} must start with "${tenant}/"`)
    docs[pattern] = role
  }
  let share: { doc: string; role: Role } | undefined
  if (values.share !== undefined) {
    const role = values.role ?? 'read'
    if (!isRole(role) || role === 'admin') throw new UsageError(`invalid --role ${JSON.stringify(role)}: a share link grants read or write`)
    if (!values.share.startsWith(`${tenant}/`)) throw new UsageError(`--share document must start with "${tenant}/"`)
    if (values.doc !== undefined) throw new UsageError('a share link carries one document: give --share or --doc, not both')
    share = { doc: values.share, role }
  }
  if (share === undefined && values.doc === undefined && values.admin !== true) throw new UsageError('give --doc, --share or --admin')
  const secret = values.dev === true ? await devSecret(resolve(values.data ?? env.CONCORD_DATA ?? './data')) : values.secret ?? env.CONCORD_AUTH_SECRET
  if (secret === undefined) throw new UsageError('give --secret (or CONCORD_AUTH_SECRET), or --dev for the development secret')
  const minted = await mintToken({
    secret, tenant, docs: values.doc !== undefined ? docs : undefined, share, admin: values.admin === true,
    expiresInSec: parseDuration(values.expires ?? '1h'), ...(values.user !== undefined ? { userId: values.user } : {}),
  })
  return values.json === true ? JSON.stringify(minted) : minted.token
}

/** A connection string without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return 'postgres://…'
  }
}

/** `concord replay <file>`: exit 0 when the replayed state matches the recorded one, 1 when not, 3 when it could not be compared. */
async function replay(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { realtime: { type: 'boolean' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  if (positionals.length !== 1) throw new UsageError('concord replay takes one recording file')
  const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout) * 1000
  if (timeoutMs !== undefined && !(timeoutMs > 0)) throw new UsageError(`invalid --timeout ${JSON.stringify(values.timeout)}: seconds`)
  const { replayRecording, formatReplayReport } = await import('./replay.js')
  const { RecordingFormatError } = await import('../ops/recording/recording-file.js')
  let report
  try {
    report = await replayRecording(resolve(positionals[0]!), { speed: values.realtime === true ? 'realtime' : 'asap', ...(timeoutMs !== undefined ? { timeoutMs } : {}) })
  } catch (err) {
    // a file that is not a readable recording: say why, no stack
    if (err instanceof RecordingFormatError || (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') {
      process.stderr.write(`concord replay: ${(err as Error).message}\n`)
      return 2
    }
    throw err
  }
  process.stdout.write(`${formatReplayReport(report)}\n`)
  return report.matches === true ? 0 : report.matches === false ? 1 : 3
}

/** `concord export` / `concord import`: 0 done, 2 refused before anything was written, 1 the store failed. */
async function archiveCommand(command: 'export' | 'import', args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(HELP)
    return 0
  }
  const { parseExportConfig, parseImportConfig } = await import('./archive-config.js')
  const { runExport, runImport } = await import('./archive-commands.js')
  const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }
  try {
    if (command === 'export') await runExport(parseExportConfig(args, process.env), io)
    else await runImport(parseImportConfig(args, process.env), io)
    return 0
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`concord ${command}: ${(err as Error).message} (concord --help lists the options)\n`)
      return 2
    }
    if (!(err instanceof ConcordError)) throw err
    process.stderr.write(`concord ${command}: ${err.message} (${err.code})\n`)
    return ERROR_CODES[err.code].scope === 'config' ? 2 : 1
  }
}

/** Runs the benchmark runner of the `@concord/bench` workspace package with these arguments. */
async function bench(args: string[]): Promise<number> {
  let runner: string
  try {
    runner = createRequire(import.meta.url).resolve('@concord/bench/run.mjs')
  } catch {
    throw new UsageError('concord bench needs the @concord/bench package, which is part of the repository (run `npm ci` at its root)')
  }
  const child = spawn(process.execPath, [runner, ...args], { stdio: 'inherit' })
  const forward = (signal: NodeJS.Signals): void => { child.kill(signal) }
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code, signal) => resolve(code ?? (signal !== null ? 130 : 1)))
    })
  } finally {
    process.off('SIGINT', forward)
    process.off('SIGTERM', forward)
  }
}

function parseDuration(text: string): number {
  const m = /^(\d+)([smhd])$/.exec(text)
  if (m === null) throw new UsageError(`invalid --expires ${JSON.stringify(text)}: use e.g. 90s, 30m, 12h, 7d`)
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd']
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(HELP)
      return command === undefined ? 1 : 0
    }
    if (command === '--version' || command === '-v') {
      process.stdout.write(`${VERSION}\n`)
      return 0
    }
    if (command === 'token') {
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(HELP)
        return 0
      }
      process.stdout.write(`${await token(rest, process.env)}\n`)
      return 0
    }
    if (command === 'bench') return await bench(rest)
    if (command === 'export' || command === 'import') return await archiveCommand(command, rest)
    if (command === 'replay') return await replay(rest)
    if (command === 'repartition') {
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(HELP)
        return 0
      }
      const { runRepartition } = await import('./repartition-command.js')
      await runRepartition(rest, process.env, process.stdout)
      return 0
    }
    if (command === 'serve') {
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(HELP)
        return 0
      }
      await serve(rest)
      return -1 // keeps running
    }
    throw new UsageError(`unknown command ${JSON.stringify(command)}`)
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`concord: ${(err as Error).message}\n\n${HELP}`)
      return 2
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`concord: ${err.message} (${err.code})\n`)
      return 2
    }
    throw err
  }
}
