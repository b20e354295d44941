import type { Log } from './connection-log.js'
import type { GatewayConfig } from './gateway-deps.js'
import type { ReadThrottleOptions } from './read-throttle.js'
import type { SocketSenderOptions } from './socket-sender.js'
import type { TransportSessionDeps } from './transport-session.js'

/** What one connection (either transport) is given by the gateway. */
export interface ConnectionDeps extends TransportSessionDeps {
  readonly config: GatewayConfig
  /** The connection's own logger (bindings: its id, transport, and a y-websocket room). */
  readonly logger: Log
  readonly connectionId: string
}

/** A socket's rate limit (see `ReadThrottle`). */
export function rateLimitsOf(o: GatewayConfig): ReadThrottleOptions {
  return {
    messagesPerSecond: o.rateLimitMessagesPerSecond, messagesBurst: o.rateLimitMessagesBurst,
    bytesPerSecond: o.rateLimitBytesPerSecond, bytesBurst: o.rateLimitBytesBurst, maxMessageBytes: o.maxMessageBytes,
  }
}

/** A socket's send limits (see `SocketSender`); `chunkBytes` 0 for a transport that never chunks. */
export function senderOptionsOf(o: GatewayConfig, chunkBytes: number): SocketSenderOptions {
  return { chunkBytes, maxBufferedBytes: o.maxBufferedBytes, slowReaderStallMs: o.slowReaderStallMs, backpressureBytes: o.backpressureBytes }
}
