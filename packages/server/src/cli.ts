import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import type { LevelWithSilent } from 'pino'
import { createServer, VERSION } from './server.js'
import { createLogger } from './logger.js'
import type { StorageAdapter } from './storage/storage-adapter.js'

const HELP = `concord ${VERSION}: real-time collaboration server (Yjs)

Usage:
  concord serve [options]
  concord --help | --version

Options of serve (each also read from the environment variable shown):
  --port <n>         port to listen on                      CONCORD_PORT       (default 1234)
  --host <address>   address to bind                        CONCORD_HOST       (default 0.0.0.0)
  --store <kind>     sqlite | memory                        CONCORD_STORE      (default sqlite)
  --data <dir>       folder of the SQLite store             CONCORD_DATA       (default ./data)
  --log-level <l>    fatal|error|warn|info|debug|trace|silent CONCORD_LOG_LEVEL (default info)
  --compact-every-updates <n>  compact a document's log after n updates  CONCORD_COMPACT_EVERY_UPDATES (default 1000)
  --max-message-bytes <n>      largest message accepted                  CONCORD_MAX_MESSAGE_BYTES (default 67108864)
  --sqlite-synchronous <s>     full: an ack survives power loss; normal: it survives a process crash
                               (kill -9) but not an OS crash, and costs fewer fsyncs
                                                                         CONCORD_SQLITE_SYNCHRONOUS (default full)
  --sqlite-commit-window-ms <n> group-commit window                      CONCORD_SQLITE_COMMIT_WINDOW_MS (default 2)
  -h, --help         show this help

Endpoints:
  ws://<host>:<port>/<room>        y-websocket protocol (stock WebsocketProvider)
  ws://<host>:<port>/ + subprotocol "concord"   native multiplexed protocol (@concord/client)
  GET /healthz, GET /readyz
`

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

class UsageError extends Error {}

export interface CliConfig {
  port: number
  host: string
  store: 'sqlite' | 'memory'
  data: string
  logLevel: LevelWithSilent
  compactEveryUpdates: number | undefined
  maxMessageBytes: number | undefined
  sqliteSynchronous: 'FULL' | 'NORMAL'
  sqliteCommitWindowMs: number
}

function parseSynchronous(text: string): 'FULL' | 'NORMAL' {
  const upper = text.toUpperCase()
  if (upper !== 'FULL' && upper !== 'NORMAL') throw new UsageError(`invalid --sqlite-synchronous ${JSON.stringify(text)}: use full or normal`)
  return upper
}

function parseWindow(text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new UsageError(`invalid --sqlite-commit-window-ms ${JSON.stringify(text)}: 0 to 1000`)
  return n
}

function optionalPositiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: a positive integer is needed`)
  return n
}

/** Command-line flags win over environment variables, which win over defaults. */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv): CliConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      store: { type: 'string' },
      data: { type: 'string' },
      'log-level': { type: 'string' },
      'compact-every-updates': { type: 'string' },
      'max-message-bytes': { type: 'string' },
      'sqlite-synchronous': { type: 'string' },
      'sqlite-commit-window-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  })
  const portText = values.port ?? env.CONCORD_PORT ?? '1234'
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid port ${JSON.stringify(portText)}`)
  const store = values.store ?? env.CONCORD_STORE ?? 'sqlite'
  if (store !== 'sqlite' && store !== 'memory') throw new UsageError(`invalid store ${JSON.stringify(store)}: use sqlite or memory`)
  const logLevel = values['log-level'] ?? env.CONCORD_LOG_LEVEL ?? 'info'
  if (!LEVELS.has(logLevel)) throw new UsageError(`invalid log level ${JSON.stringify(logLevel)}`)
  return {
    port,
    host: values.host ?? env.CONCORD_HOST ?? '0.0.0.0',
    store,
    data: resolve(values.data ?? env.CONCORD_DATA ?? './data'),
    logLevel: logLevel as LevelWithSilent,
    compactEveryUpdates: optionalPositiveInt('--compact-every-updates', values['compact-every-updates'] ?? env.CONCORD_COMPACT_EVERY_UPDATES),
    maxMessageBytes: optionalPositiveInt('--max-message-bytes', values['max-message-bytes'] ?? env.CONCORD_MAX_MESSAGE_BYTES),
    sqliteSynchronous: parseSynchronous(values['sqlite-synchronous'] ?? env.CONCORD_SQLITE_SYNCHRONOUS ?? 'full'),
    sqliteCommitWindowMs: parseWindow(values['sqlite-commit-window-ms'] ?? env.CONCORD_SQLITE_COMMIT_WINDOW_MS ?? '2'),
  }
}

async function serve(argv: string[]): Promise<void> {
  const config = parseServeConfig(argv, process.env)
  const logger = createLogger(config.logLevel)
  let storage: StorageAdapter
  if (config.store === 'sqlite') {
    const { createSqliteStorage } = await import('./storage/sqlite-storage.js')
    storage = createSqliteStorage({
      dataDir: config.data, synchronous: config.sqliteSynchronous, commitWindowMs: config.sqliteCommitWindowMs,
    })
    logger.info({ data: config.data, synchronous: config.sqliteSynchronous, commitWindowMs: config.sqliteCommitWindowMs }, 'using SQLite store')
  } else {
    const { createMemoryStorage } = await import('./storage/memory-storage.js')
    storage = createMemoryStorage()
    logger.warn('using the in-memory store: documents are lost when the server stops')
  }
  const server = createServer({
    storage, logger, compactEveryUpdates: config.compactEveryUpdates, maxMessageBytes: config.maxMessageBytes,
  })
  await server.listen(config.port, config.host)
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(1)
    }
    stopping = true
    logger.info({ signal }, 'shutting down')
    server.close().then(() => process.exit(0), err => {
      logger.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
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
    throw err
  }
}
