import type { GatewayConfig } from './gateway-deps.js'
import type { SocketLike } from './socket-like.js'

/**
 * What a socket may make the server hold before it has write access to any
 * document: the largest WebSocket message it may send, and (native) its
 * incomplete chunked messages together with the frames queued for documents
 * whose OPEN is not yet accepted. The pre-open queue's budget, but never below
 * `chunkBytes` (a native client may send any message up to it unchunked).
 */
export function bytesBeforeWriteAccess(o: Pick<GatewayConfig, 'maxMessageBytes' | 'maxQueuedBytesBeforeOpen' | 'chunkBytes'>): number {
  return Math.min(o.maxMessageBytes, Math.max(o.maxQueuedBytesBeforeOpen, o.chunkBytes))
}

/**
 * Set the largest WebSocket message this socket may send. ws has one
 * `maxPayload` per server, checked for each frame header against the
 * socket's receiver (ws 8: `_receiver._maxPayload`), so a socket's own limit
 * is set there: an incomplete message above it is never buffered (ws closes
 * the socket with 1009 at the frame header). Without that field (another ws
 * version) the server-wide `maxMessageBytes` applies.
 */
export function setReceiveLimit(ws: SocketLike, bytes: number): void {
  const receiver = ws._receiver
  if (receiver !== undefined && typeof receiver._maxPayload === 'number') receiver._maxPayload = bytes
}
