/** A real PostgreSQL server in a temporary directory (services.mjs). */
export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string
  readonly port: number
  /** `postgres --version` */
  readonly version: string
  /** A URL of another database on this server. */
  urlOf(database: string): string
  /** Stop the server (fast shutdown); `start()` brings it back on the same port and data. */
  stopServer(): void
  start(): void
  /** Stop and delete everything. */
  stop(): void
}

/** A real Redis server without persistence (services.mjs). */
export interface RedisServer {
  readonly url: string
  readonly port: number
  /** `redis-server --version`, shortened */
  readonly version: string
  /** The redis-server process's pid while it runs. */
  pid(): number | null
  /** Kill it; `start()` brings it back on the same port, empty. */
  stopServer(): Promise<void>
  start(): Promise<void>
  stop(): Promise<void>
}

export function startPostgres(): Promise<PostgresServer>
export function startRedis(): Promise<RedisServer>
