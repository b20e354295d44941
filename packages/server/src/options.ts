import type { Logger } from 'pino'
import type { IncomingMessage } from 'node:http'
import type { Role } from '@concord/protocol'
import type { StorageAdapter } from './storage/storage-adapter.js'

/** What an authenticated session may do, and who it is. */
export interface AuthResult {
  userId: string | null
  role: Role
}

export interface AuthenticateContext {
  document: string
  /** The token sent in OPEN (native) or the `token` URL query parameter (y-websocket); '' when none. */
  token: string
  transport: 'native' | 'y-websocket'
  request: IncomingMessage
}

/**
 * Decides whether a session may open a document. Throw a `ConcordError`
 * (`CONCORD_ERR_AUTH_DENIED`, `CONCORD_ERR_AUTH_FORBIDDEN`) to refuse.
 * It is given `authTimeoutMs` to answer.
 */
export type Authenticate = (context: AuthenticateContext) => Promise<AuthResult> | AuthResult

export interface ServerOptions {
  /** Where documents are stored. Default: in memory. */
  storage?: StorageAdapter
  /** pino logger; default: a silent one. */
  logger?: Logger
  /** Default: everyone may write (auth disabled). */
  authenticate?: Authenticate
  authTimeoutMs?: number
  /** Largest WebSocket message, and largest reassembled chunked message. */
  maxMessageBytes?: number
  /** Native frames larger than this are sent as chunks. */
  chunkBytes?: number
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
  /** A socket whose unsent bytes exceed this is closed (slow reader). */
  maxBufferedBytes?: number
  /** Name reported in WELCOME. */
  serverName?: string
}

export type ResolvedServerOptions = Readonly<Required<Omit<ServerOptions, 'storage' | 'logger' | 'authenticate'>>> & {
  readonly storage: StorageAdapter
  readonly logger: Logger
  readonly authenticate: Authenticate
}

export const DEFAULTS = {
  authTimeoutMs: 5_000,
  maxMessageBytes: 64 * 1024 * 1024,
  chunkBytes: 256 * 1024,
  heartbeatIntervalMs: 30_000,
  handshakeTimeoutMs: 10_000,
  presenceThrottleMs: 50,
  compactEveryUpdates: 1_000,
  compactEveryBytes: 4 * 1024 * 1024,
  maxDocumentsPerConnection: 1_000,
  maxPendingDocuments: 100,
  maxQueuedMessagesBeforeOpen: 1_000,
  maxQueuedBytesBeforeOpen: 5 * 1024 * 1024,
  maxBufferedBytes: 128 * 1024 * 1024,
  serverName: 'concord',
} as const

const POSITIVE_INTEGER_OPTIONS = Object.keys(DEFAULTS).filter(k => k !== 'serverName') as (keyof typeof DEFAULTS)[]

/** Validate and freeze options; misconfiguration fails at start-up, not at first use. */
export function resolveOptions(
  options: ServerOptions,
  fallbacks: { storage: () => StorageAdapter; logger: () => Logger },
): ResolvedServerOptions {
  for (const key of POSITIVE_INTEGER_OPTIONS) {
    const v = options[key]
    if (v !== undefined && (!Number.isInteger(v) || (v as number) <= 0)) {
      throw new TypeError(`option ${key} must be a positive integer, got ${String(v)}`)
    }
  }
  const resolved = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    storage: options.storage ?? fallbacks.storage(),
    logger: options.logger ?? fallbacks.logger(),
    authenticate: options.authenticate ?? allowEveryone,
  } as ResolvedServerOptions
  if (resolved.chunkBytes > resolved.maxMessageBytes) throw new TypeError('chunkBytes must not exceed maxMessageBytes')
  return Object.freeze(resolved)
}

/** Auth disabled: every session may write. */
export const allowEveryone: Authenticate = () => ({ userId: null, role: 'write' })
