import { CLOSE_CODES } from './close-codes.js'

/**
 * Where an error applies.
 * - `document`: sent in-band for one document; the socket stays open. On a
 *   y-websocket connection (one document, no in-band errors) the socket is
 *   closed with `closeCode` instead.
 * - `connection`: the socket is closed with `closeCode`, reason = the error code.
 * - `http`: refused before the WebSocket upgrade with `httpStatus`.
 */
export type ErrorScope = 'document' | 'connection' | 'http' | 'config'

export interface ErrorCodeInfo {
  readonly scope: ErrorScope
  /** Whether retrying later (with backoff) can succeed without changing anything. */
  readonly retryable: boolean
  /** Close code sent when the error ends a connection (always set for `connection` scope). */
  readonly closeCode?: number
  /** HTTP status when the error refuses an HTTP request or an upgrade. */
  readonly httpStatus?: number
  readonly description: string
}

/**
 * The one table of Concord error codes. `docs/errors.md` lists exactly these;
 * a test keeps the two equal.
 */
export const ERROR_CODES = {
  CONCORD_ERR_PROTOCOL_MALFORMED_FRAME: {
    scope: 'connection', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST,
    description: 'A frame could not be decoded (truncated, bad varint, bad length). The frame is not attributable to a document, so the socket is closed.',
  },
  CONCORD_ERR_PROTOCOL_TEXT_FRAME: {
    scope: 'connection', retryable: false, closeCode: CLOSE_CODES.UNSUPPORTED_DATA,
    description: 'A text WebSocket frame was received; both protocols are binary only.',
  },
  CONCORD_ERR_PROTOCOL_HANDSHAKE_REQUIRED: {
    scope: 'connection', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST,
    description: 'A native-protocol frame other than HELLO arrived before the HELLO/WELCOME handshake.',
  },
  CONCORD_ERR_PROTOCOL_HANDSHAKE_TIMEOUT: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.HANDSHAKE_TIMEOUT,
    description: 'No HELLO arrived within the handshake timeout after the socket opened.',
  },
  CONCORD_ERR_PROTOCOL_UNSUPPORTED_VERSION: {
    scope: 'connection', retryable: false, closeCode: CLOSE_CODES.UNSUPPORTED_VERSION,
    description: 'The client offered no protocol version this server speaks.',
  },
  CONCORD_ERR_PROTOCOL_UNKNOWN_KIND: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST,
    description: 'A native frame of an unknown kind was received. Its document is named in the frame header, so only that document gets the error.',
  },
  CONCORD_ERR_PROTOCOL_BAD_CHUNK: {
    scope: 'connection', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST,
    description: 'A chunk sequence was inconsistent (index out of order, total changed, too many in flight).',
  },
  CONCORD_ERR_MESSAGE_TOO_LARGE: {
    scope: 'connection', retryable: false, closeCode: CLOSE_CODES.MESSAGE_TOO_BIG, httpStatus: 413,
    description: 'A WebSocket message, or a reassembled chunked message, exceeded maxMessageBytes.',
  },
  CONCORD_ERR_DOC_INVALID_NAME: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST, httpStatus: 400,
    description: 'The document name is empty, too long, or contains control characters.',
  },
  CONCORD_ERR_DOC_NOT_OPEN: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST,
    description: 'A frame referred to a document this socket has not opened (send OPEN first).',
  },
  CONCORD_ERR_DOC_ALREADY_OPEN: {
    scope: 'document', retryable: false,
    description: 'OPEN was sent for a document that is already open on this socket.',
  },
  CONCORD_ERR_DOC_LOAD_FAILED: {
    scope: 'document', retryable: true, closeCode: CLOSE_CODES.STORAGE_UNAVAILABLE, httpStatus: 503,
    description: 'The document could not be loaded from storage. Nothing was changed; open it again later.',
  },
  CONCORD_ERR_UPDATE_MALFORMED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST,
    description: 'A Yjs update could not be decoded, or it places an item where no Yjs document would (between two characters that are not in order in one parent: loaded afresh, the document would differ). It was not applied, stored or forwarded.',
  },
  CONCORD_ERR_UPDATE_OUT_OF_ORDER: {
    scope: 'document', retryable: true, closeCode: CLOSE_CODES.TRANSIENT,
    description: 'The update depends on changes the server does not have: it deletes items the document does not have yet, starts beyond, refers to or skips over changes the server has not received (Yjs would hold it back, and nothing is held back). It was not applied; send the missing changes first (the JS client re-sends everything unacked after a pause).',
  },
  CONCORD_ERR_LIMIT_UPDATE_CHECKS: {
    scope: 'document', retryable: true, closeCode: CLOSE_CODES.TRANSIENT,
    description: 'The update places items next to changes it does not carry (a merged update after working offline, say), so the server checked it on a copy of the document, and the document has used its share of such checks for now (maxUpdateCheckBytesPerSecond of copied document, default 8 MiB a second). It was not applied; send it again in a moment (the JS client re-sends unacked updates after a pause).',
  },
  CONCORD_ERR_UPDATE_FOREIGN_CLIENT: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST,
    description: 'The update carries new items under a Yjs client id that belongs to another user in this document (a client id belongs to the user who first wrote under it), or under one whose writer is unknown. It was not applied, stored or forwarded. An honest client that hits this shares a client id by accident: it takes a new client id (the JS client does) and its refused changes stay only in its own copy.',
  },
  CONCORD_ERR_LIMIT_PRESENCE: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.POLICY_VIOLATION,
    description: 'A presence (awareness) update was not relayed: a state beyond the per-client limit (maxPresenceBytes, default 64 KiB), or more presence client ids than one session may show. The document stays open.',
  },
  CONCORD_ERR_HOOK_REFUSED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.FORBIDDEN, httpStatus: 403,
    description: 'A server extension refused this (a session at onConnect or onAuthenticate, an update at beforeChange); the message names the extension. For an update, the document stays open and nothing was applied.',
  },
  CONCORD_ERR_HOOK_TIMEOUT: {
    scope: 'document', retryable: true, closeCode: CLOSE_CODES.TRANSIENT, httpStatus: 503,
    description: 'A server extension\'s hook did not finish within hookTimeoutMs (default 5 s); what it guarded was refused. Try again.',
  },
  CONCORD_ERR_LIMIT_STATELESS: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.POLICY_VIOLATION,
    description: 'A stateless message was not forwarded: larger than maxStatelessBytes (default 16 KiB), or more than statelessPerSecond (default 20, bursts of 40) from one session. The document stays open; send fewer.',
  },
  CONCORD_ERR_AWARENESS_MALFORMED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.BAD_REQUEST,
    description: 'An awareness update could not be decoded. It was dropped for everyone.',
  },
  CONCORD_ERR_STORAGE_WRITE_FAILED: {
    scope: 'document', retryable: true, closeCode: CLOSE_CODES.STORAGE_UNAVAILABLE, httpStatus: 503,
    description: 'Appending an update to the log failed. The update is not acked; the client keeps it and re-sends it after reconnecting.',
  },
  CONCORD_ERR_STORAGE_UNAVAILABLE: {
    scope: 'http', retryable: true, httpStatus: 503,
    description: 'The store is closed or not reachable yet (thrown by a storage adapter; on a socket it arrives as DOC_LOAD_FAILED or STORAGE_WRITE_FAILED).',
  },
  CONCORD_ERR_STORAGE_SCHEMA_TOO_NEW: {
    scope: 'config', retryable: false,
    description: 'The database was written by a newer Concord (its schema version is higher than this server knows): upgrade the server.',
  },
  CONCORD_ERR_BACKPLANE_UNAVAILABLE: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.STORAGE_UNAVAILABLE, httpStatus: 503,
    description: 'The node cannot reach the backplane (Redis) that connects it to the other nodes. /readyz reports it; the node keeps serving its own sessions and catches up when Redis is back.',
  },
  CONCORD_ERR_AUTH_DENIED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.UNAUTHORIZED, httpStatus: 401,
    description: 'The token was missing, invalid or expired, or the authenticator refused it for this document.',
  },
  CONCORD_ERR_AUTH_FORBIDDEN: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.FORBIDDEN, httpStatus: 403,
    description: 'The session may not do this (for example a write from a read-only session). Nothing was changed.',
  },
  CONCORD_ERR_AUTH_EXPIRED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.UNAUTHORIZED, httpStatus: 401,
    description: 'The token expired (at open, or mid-session without being refreshed with AUTH). Open again with a fresh token (the same token cannot succeed); unsaved local edits are kept.',
  },
  CONCORD_ERR_AUTH_REVOKED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.FORBIDDEN, httpStatus: 403,
    description: 'An administrator revoked this user, token or share link; the session was cut off. Nothing sent afterwards is applied.',
  },
  CONCORD_ERR_AUTH_ROLE_CHANGED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.FORBIDDEN, httpStatus: 403,
    description: 'An administrator changed this user\'s role on the document: AUTH_STATE carries the new role, or the session is closed when no access is left.',
  },
  CONCORD_ERR_AUTH_TIMEOUT: {
    scope: 'document', retryable: true, closeCode: CLOSE_CODES.TRANSIENT,
    description: 'The authentication hook did not answer in time.',
  },
  CONCORD_ERR_LIMIT_UNAUTHENTICATED_QUEUE: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.POLICY_VIOLATION,
    description: 'Too many messages or bytes were queued for a document whose OPEN was not yet accepted.',
  },
  CONCORD_ERR_LIMIT_PENDING_DOCUMENTS: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.RATE_LIMITED,
    description: 'Too many documents on one socket were waiting to be authenticated or loaded at once.',
  },
  CONCORD_ERR_LIMIT_DOCUMENTS_PER_CONNECTION: {
    scope: 'document', retryable: false,
    description: 'The socket already has the maximum number of open documents; close one first.',
  },
  CONCORD_ERR_DOC_RESET: {
    scope: 'document', retryable: true, closeCode: CLOSE_CODES.TRANSIENT,
    description: 'An update could not be integrated and the server reloaded the document from its log. Open it again; unacked updates are re-sent.',
  },
  CONCORD_ERR_DOC_DELETED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.NOT_FOUND, httpStatus: 404,
    description: 'An administrator deleted the document: its log and snapshots are gone and its sessions were closed. The client does not reopen it by itself (opening it again starts a new, empty document, to which a client\'s local copy would be sent).',
  },
  CONCORD_ERR_SESSION_KICKED: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.FORBIDDEN,
    description: 'An administrator ended this session (the admin API\'s kick). The client does not reopen the document by itself; revoke the user to keep them out.',
  },
  CONCORD_ERR_LIMIT_RATE: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.RATE_LIMITED,
    description: 'A socket over its rate limit (messages or bytes per second) is not refused but read more slowly: its messages wait, in order, and TCP slows the sender. This closes a socket that kept delivering messages while the server had stopped reading it (more than a paused socket can deliver), and nothing it sent after the last handled message is applied.',
  },
  CONCORD_ERR_LIMIT_CHUNKS_BEFORE_WRITE: {
    scope: 'connection', retryable: false, closeCode: CLOSE_CODES.POLICY_VIOLATION,
    description: 'Before any document was opened on it for writing, the socket sent more bytes of chunked messages than it may hold incomplete (together with the frames queued for documents whose OPEN is not yet accepted: maxQueuedBytesBeforeOpen, default 5 MiB).',
  },
  CONCORD_ERR_LIMIT_HTTP_RATE: {
    scope: 'http', retryable: true, httpStatus: 429,
    description: 'The caller (its user id, or its address when it has none) sent more HTTP API requests than its rate limit allows; requests that build or store a whole document (creating a version, restore, diff) count for more. Nothing was done. Retry after the seconds given in the Retry-After header.',
  },
  CONCORD_ERR_LIMIT_NAMED_VERSIONS: {
    scope: 'http', retryable: false, httpStatus: 409,
    description: 'The document already has the most named versions the server keeps per document. No version was created; delete one (DELETE /v1/documents/{name}/versions/{id}) to make room.',
  },
  CONCORD_ERR_LIMIT_DOCUMENT_SIZE: {
    scope: 'document', retryable: false, closeCode: CLOSE_CODES.POLICY_VIOLATION,
    description: 'Applying the update would make the document larger than the server\'s maximum document size. It was not applied.',
  },
  CONCORD_ERR_LIMIT_CONNECTIONS_PER_IP: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.TRY_AGAIN_LATER,
    description: 'Too many open sockets from this IP address; try again after closing some.',
  },
  CONCORD_ERR_LIMIT_SLOW_READER: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.TRY_AGAIN_LATER,
    description: 'The socket fell too far behind reading what the server sends (send buffer above its limit); it is closed so the room is not held back.',
  },
  CONCORD_ERR_SERVER_SHUTTING_DOWN: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.GOING_AWAY, httpStatus: 503,
    description: 'The server is draining (SIGTERM/SIGINT). Reconnect, possibly to another node.',
  },
  CONCORD_ERR_SERVER_INTERNAL: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.INTERNAL_ERROR, httpStatus: 500,
    description: 'An unexpected server error. It is logged with the connection id.',
  },
  CONCORD_ERR_CONFIG_INVALID: {
    scope: 'config', retryable: false,
    description: 'The server was started with options it cannot run with (createServer throws, concord serve exits 2); the message names the option.',
  },
  CONCORD_ERR_ARCHIVE_MALFORMED: {
    scope: 'config', retryable: false,
    description: 'concord import was given a file that is not a Concord archive, or one whose lines, fields, Yjs updates, counts or checksum are wrong. It is refused before anything is written.',
  },
  CONCORD_ERR_ARCHIVE_TRUNCATED: {
    scope: 'config', retryable: false,
    description: 'concord import was given an archive that ends before its trailer line (an interrupted export or copy). It is refused before anything is written.',
  },
  CONCORD_ERR_ARCHIVE_UNSUPPORTED_VERSION: {
    scope: 'config', retryable: false,
    description: 'concord import was given an archive of a format version this Concord does not read (written by a newer one): upgrade Concord. It is refused before anything is written.',
  },
  CONCORD_ERR_IMPORT_DOCUMENT_EXISTS: {
    scope: 'config', retryable: false,
    description: 'concord import found documents of the archive that already have content or versions in the target store; nothing was written. Choose --overwrite (replace them) or --merge (merge the Yjs updates, add the missing versions).',
  },
  CONCORD_ERR_HEARTBEAT_TIMEOUT: {
    scope: 'connection', retryable: true, closeCode: CLOSE_CODES.GOING_AWAY,
    description: 'The peer did not answer a ping within the heartbeat interval; the socket is terminated.',
  },
  CONCORD_ERR_HTTP_NOT_FOUND: {
    scope: 'http', retryable: false, httpStatus: 404,
    description: 'No such HTTP route.',
  },
  CONCORD_ERR_HTTP_BAD_REQUEST: {
    scope: 'http', retryable: false, httpStatus: 400,
    description: 'The request line or URL could not be parsed.',
  },
  CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED: {
    scope: 'http', retryable: false, httpStatus: 405,
    description: 'The route exists but not for this HTTP method.',
  },
  CONCORD_ERR_HTTP_ORIGIN_NOT_ALLOWED: {
    scope: 'http', retryable: false, httpStatus: 403,
    description: 'A CORS preflight came from a browser origin the server does not allow (cors origins, --cors-origin); the browser will not send the request. Requests from such an origin get no CORS headers.',
  },
} as const satisfies Record<string, ErrorCodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

export function isErrorCode(value: string): value is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, value)
}

export interface ConcordErrorOptions {
  cause?: unknown
  /** The document the error concerns, if any. */
  document?: string
}

/** The one error class of Concord. Its `code` is a key of `ERROR_CODES`. */
export class ConcordError extends Error {
  readonly code: ErrorCode
  readonly retryable: boolean
  readonly closeCode: number | undefined
  readonly httpStatus: number | undefined
  readonly document: string | undefined

  constructor(code: ErrorCode, message?: string, options: ConcordErrorOptions = {}) {
    const info: ErrorCodeInfo = ERROR_CODES[code]
    super(message ?? info.description, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ConcordError'
    this.code = code
    this.retryable = info.retryable
    this.closeCode = info.closeCode
    this.httpStatus = info.httpStatus
    this.document = options.document
  }
}

/** Any thrown value as a `ConcordError` (unknown failures become CONCORD_ERR_SERVER_INTERNAL). */
export function toConcordError(err: unknown): ConcordError {
  if (err instanceof ConcordError) return err
  return new ConcordError('CONCORD_ERR_SERVER_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err })
}
