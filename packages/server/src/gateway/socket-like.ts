/**
 * What the gateway uses of a WebSocket: exactly the subset of `ws`'s `WebSocket` (and of the
 * net socket under it) that the transports, the sender and the throttle call. A `ws` socket
 * is one structurally; unit tests pass a fake (see `testing-socket.ts`). Only gateway.ts
 * knows the `ws` server.
 */
export interface SocketLike {
  /** `SOCKET_OPEN` while frames may be sent. */
  readonly readyState: number
  /** Bytes handed to the socket and not yet written to the kernel. */
  readonly bufferedAmount: number
  /** The extensions the handshake agreed on (`'permessage-deflate'` when compression is on; '' or absent otherwise). */
  readonly extensions?: string
  /**
   * Send one frame of a message (`fin: false`: more fragments follow). `callback` runs once
   * the frame has left the process (or failed).
   */
  send(data: Uint8Array, options: { binary: boolean; fin?: boolean }, callback?: (err?: Error) => void): void
  /** Start the closing handshake with a close code and reason. */
  close(code?: number, reason?: string): void
  /** Destroy the socket at once (no closing handshake). */
  terminate(): void
  /** Stop reading the TCP socket (the kernel's buffer fills and TCP slows the peer). */
  pause(): void
  /** Read the TCP socket again. */
  resume(): void
  /** A WebSocket ping (the heartbeat). */
  ping(): void
  /** Told once when the socket has closed. */
  once(event: 'close', listener: () => void): unknown
  /**
   * ws 8's net socket (a private field): corked around a batch of sends so that they reach
   * the kernel in one writev. Absent: sends are not corked.
   */
  readonly _socket?: { cork(): void; uncork(): void; write(data: Uint8Array): boolean }
  /**
   * ws 8's frame writer (a private field), read to tell whether a frame written straight to
   * `_socket` lands where `send` would put it: nothing queued behind a compression or a blob
   * (`_state` 0, `_queue` empty) and no fragmented message under way (`_firstFragment`).
   * Absent: everything goes through `send`.
   */
  readonly _sender?: { readonly _state?: number; readonly _queue?: readonly unknown[]; readonly _firstFragment?: boolean } | null
  /**
   * ws 8's frame parser (a private field): its `_maxPayload` is the largest message this
   * socket may send (see `setReceiveLimit`). Absent: the server-wide limit applies.
   */
  readonly _receiver?: { _maxPayload?: unknown }
}

/** `WebSocket.OPEN`. */
export const SOCKET_OPEN = 1
/** `WebSocket.CLOSED`. */
export const SOCKET_CLOSED = 3
