import type { Level } from 'pino'
import type { Log } from './connection-log.js'
import type { GatewayConfig } from './gateway-deps.js'
import type { ReadThrottleOptions } from './read-throttle.js'
import type { SocketSenderOptions } from './socket-sender.js'
import type { TransportSessionDeps } from './transport-session.js'
import { hocuspocusKind, nativeKind, yWebsocketKind, type Protocol } from '../ops/metrics.js'
import { encodeFrame, FRAME_KINDS } from '@concord/protocol'

/** Where a connection logs: the server's logger, from which each connection makes a child with its own bindings. */
export interface ParentLog {
  isLevelEnabled(level: Level): boolean
  child(bindings: Record<string, unknown>): Log
}

/**
 * What every connection is given by the gateway: one object for all of them (a connection
 * keeps a reference, not a copy), with its id passed beside it.
 */
export interface ConnectionDeps extends TransportSessionDeps {
  readonly config: GatewayConfig
  /** The server's logger (a connection's own child logger is made from it when it first logs). */
  readonly logger: ParentLog
}

/** The options every socket of one gateway shares (see `socketOptionsOf`). */
export interface SocketOptions {
  /** The rate limit of every socket (see `ReadThrottle`). */
  readonly throttle: ReadThrottleOptions
  /** Each transport's send limits and metrics (see `SocketSender`). */
  readonly sender: Readonly<Record<Protocol, SocketSenderOptions>>
}

const PING_FRAME = encodeFrame({ kind: FRAME_KINDS.PING, document: '' })
const shared = new WeakMap<ConnectionDeps, SocketOptions>()

/**
 * The rate limits and send options of the sockets of `deps`, made once per `deps` (per gateway)
 * and shared: an idle connection costs a reference to them, not a copy and a closure each.
 */
export function socketOptionsOf(deps: ConnectionDeps): SocketOptions {
  let options = shared.get(deps)
  if (options === undefined) {
    const o = deps.config
    const metrics = deps.metrics
    const limits = { maxBufferedBytes: o.maxBufferedBytes, slowReaderStallMs: o.slowReaderStallMs, backpressureBytes: o.backpressureBytes }
    options = Object.freeze({
      throttle: Object.freeze({
        messagesPerSecond: o.rateLimitMessagesPerSecond, messagesBurst: o.rateLimitMessagesBurst,
        bytesPerSecond: o.rateLimitBytesPerSecond, bytesBurst: o.rateLimitBytesBurst, maxMessageBytes: o.maxMessageBytes,
      }),
      sender: Object.freeze({
        native: Object.freeze({
          ...limits, chunkBytes: o.chunkBytes, chunkWindowBytes: o.chunkWindowBytes, ping: PING_FRAME,
          onSend: (first: Uint8Array, length: number) => metrics.message('out', 'native', nativeKind(first[0]), length),
        }),
        'y-websocket': Object.freeze({
          ...limits, chunkBytes: 0, onSend: (first: Uint8Array, length: number) => metrics.message('out', 'y-websocket', yWebsocketKind(first), length),
        }),
        hocuspocus: Object.freeze({
          ...limits, chunkBytes: 0, onSend: (first: Uint8Array, length: number, second?: Uint8Array) => metrics.message('out', 'hocuspocus', hocuspocusKind(first, second), length),
        }),
      }),
    })
    shared.set(deps, options)
  }
  return options
}
