import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { decodeYMessage, YMessageDecodeError, type YMessage } from './y-websocket-message.js'

/**
 * The Hocuspocus wire format (what `@hocuspocus/provider` 2.x to 4.x speaks), so a stock provider
 * can use a Concord server. Many documents share one socket; every message but the keepalive starts
 * with the document's routing key:
 *
 *   message   = key:varString type:varUint body | ping | pong
 *   key       = documentName                       -- or documentName "\0" sessionId (the
 *                                                     provider's `sessionAwareness` option: several
 *                                                     providers of one document on one socket)
 *   type/body = 0 sync (as y-websocket: 0 step 1 | 1 step 2 | 2 update, then varUint8Array)
 *             | 1 awareness update:varUint8Array
 *             | 2 auth (0 token:varString [providerVersion:varString]   -- client: its token
 *                      | 0                                              -- server: send a fresh token
 *                      | 1 reason:varString                             -- server: permission denied
 *                      | 2 scope:varString)                             -- server: "read-write" | "readonly"
 *             | 3 queryAwareness
 *             | 5 stateless payload:varString
 *             | 7 close [reason:varString]      -- server: this document's session ended (a reason);
 *                                                  client: the provider detached the document
 *             | 8 syncStatus applied:varInt     -- server: 1 per update or step 2 it took (Concord:
 *                                                  once it is durable), 0 when it refused one
 *   ping      = 9:varUint  (a single byte, no key; the provider answers pong = 10:varUint)
 *
 * Types 4 (sync reply) and 6 (broadcast stateless) are Hocuspocus's server-to-server messages.
 */
export const HOCUSPOCUS_MESSAGE = {
  SYNC: 0,
  AWARENESS: 1,
  AUTH: 2,
  QUERY_AWARENESS: 3,
  SYNC_REPLY: 4,
  STATELESS: 5,
  BROADCAST_STATELESS: 6,
  CLOSE: 7,
  SYNC_STATUS: 8,
  PING: 9,
  PONG: 10,
} as const

export const HOCUSPOCUS_AUTH = { TOKEN: 0, PERMISSION_DENIED: 1, AUTHENTICATED: 2 } as const

/** The routing key's separator between a document name and a provider's session id. */
export const HOCUSPOCUS_KEY_SEPARATOR = '\0'

export type HocuspocusScope = 'read-write' | 'readonly'

/** A message from a provider. */
export type HocuspocusClientMessage =
  | { type: 'pong' }
  | { type: 'ping' }
  | { type: 'y'; key: string; message: YMessage }
  | { type: 'token'; key: string; token: string; providerVersion: string | null }
  | { type: 'stateless'; key: string; payload: string }
  /** The provider detached this document (`HocuspocusProvider.detach`/`destroy`). */
  | { type: 'close'; key: string }

/** Thrown for bytes that are not a Hocuspocus message; `unknownType` is set for a well-formed but unknown type. */
export class HocuspocusDecodeError extends Error {
  readonly unknownType: number | undefined
  readonly key: string | undefined
  constructor(message: string, key?: string, unknownType?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'HocuspocusDecodeError'
    this.key = key
    this.unknownType = unknownType
  }
}

/** The document name of a routing key. */
export function hocuspocusDocumentName(key: string): string {
  const at = key.indexOf(HOCUSPOCUS_KEY_SEPARATOR)
  return at < 0 ? key : key.slice(0, at)
}

/** Decode one message from a provider. Byte arrays are views into `bytes`. */
export function decodeHocuspocusMessage(bytes: Uint8Array): HocuspocusClientMessage {
  if (bytes.length === 1 && bytes[0] === HOCUSPOCUS_MESSAGE.PONG) return { type: 'pong' }
  if (bytes.length === 1 && bytes[0] === HOCUSPOCUS_MESSAGE.PING) return { type: 'ping' }
  const d = decoding.createDecoder(bytes)
  let key: string
  let type: number
  try {
    key = decoding.readVarString(d)
    type = decoding.readVarUint(d)
  } catch (cause) {
    throw new HocuspocusDecodeError('empty or malformed message', undefined, undefined, { cause })
  }
  if (d.pos > bytes.length) throw new HocuspocusDecodeError('malformed message')
  let message: HocuspocusClientMessage
  try {
    switch (type) {
      case HOCUSPOCUS_MESSAGE.SYNC:
      case HOCUSPOCUS_MESSAGE.AWARENESS:
      case HOCUSPOCUS_MESSAGE.QUERY_AWARENESS: {
        // the rest is a y-websocket message: the type again, then its body
        const start = d.pos - varUintLength(type)
        message = { type: 'y', key, message: decodeYMessage(bytes.subarray(start)) }
        return message
      }
      case HOCUSPOCUS_MESSAGE.AUTH: {
        const sub = decoding.readVarUint(d)
        if (sub !== HOCUSPOCUS_AUTH.TOKEN) throw new HocuspocusDecodeError(`auth message ${sub} is not accepted from clients`, key, type)
        const token = decoding.readVarString(d)
        const providerVersion = decoding.hasContent(d) ? decoding.readVarString(d) : null
        message = { type: 'token', key, token, providerVersion }
        break
      }
      case HOCUSPOCUS_MESSAGE.STATELESS:
        message = { type: 'stateless', key, payload: decoding.readVarString(d) }
        break
      case HOCUSPOCUS_MESSAGE.CLOSE:
        // the provider sends no reason; one is allowed
        if (decoding.hasContent(d)) decoding.readVarString(d)
        message = { type: 'close', key }
        break
      default:
        throw new HocuspocusDecodeError(`message type ${type} is not accepted from clients`, key, type)
    }
  } catch (cause) {
    if (cause instanceof HocuspocusDecodeError) throw cause
    if (cause instanceof YMessageDecodeError) throw new HocuspocusDecodeError(cause.message, key, cause.unknownType, { cause })
    throw new HocuspocusDecodeError(`malformed message of type ${type}`, key, undefined, { cause })
  }
  if (d.pos > bytes.length) throw new HocuspocusDecodeError(`malformed message of type ${type}`, key)
  return message
}

function varUintLength(n: number): number {
  let length = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    length++
  }
  return length
}

/** The prefix of every message for `key`: sent before a y-websocket message's bytes, it makes a Hocuspocus message of it. */
export function encodeHocuspocusKey(key: string): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarString(e, key)
  return encoding.toUint8Array(e)
}

/** A message from the server. */
export type HocuspocusServerMessage =
  | { type: 'authenticated'; key: string; scope: HocuspocusScope }
  | { type: 'permission-denied'; key: string; reason: string }
  | { type: 'token-request'; key: string }
  | { type: 'sync-status'; key: string; applied: boolean }
  | { type: 'close'; key: string; reason: string }
  | { type: 'stateless'; key: string; payload: string }
  | { type: 'ping' }

export function encodeHocuspocusMessage(message: HocuspocusServerMessage): Uint8Array {
  const e = encoding.createEncoder()
  if (message.type === 'ping') {
    encoding.writeVarUint(e, HOCUSPOCUS_MESSAGE.PING)
    return encoding.toUint8Array(e)
  }
  encoding.writeVarString(e, message.key)
  switch (message.type) {
    case 'authenticated':
      encoding.writeVarUint(e, HOCUSPOCUS_MESSAGE.AUTH)
      encoding.writeVarUint(e, HOCUSPOCUS_AUTH.AUTHENTICATED)
      encoding.writeVarString(e, message.scope)
      break
    case 'permission-denied':
      encoding.writeVarUint(e, HOCUSPOCUS_MESSAGE.AUTH)
      encoding.writeVarUint(e, HOCUSPOCUS_AUTH.PERMISSION_DENIED)
      encoding.writeVarString(e, message.reason)
      break
    case 'token-request':
      encoding.writeVarUint(e, HOCUSPOCUS_MESSAGE.AUTH)
      encoding.writeVarUint(e, HOCUSPOCUS_AUTH.TOKEN)
      break
    case 'sync-status':
      encoding.writeVarUint(e, HOCUSPOCUS_MESSAGE.SYNC_STATUS)
      encoding.writeVarInt(e, message.applied ? 1 : 0)
      break
    case 'close':
      encoding.writeVarUint(e, HOCUSPOCUS_MESSAGE.CLOSE)
      encoding.writeVarString(e, message.reason)
      break
    case 'stateless':
      encoding.writeVarUint(e, HOCUSPOCUS_MESSAGE.STATELESS)
      encoding.writeVarString(e, message.payload)
      break
  }
  return encoding.toUint8Array(e)
}
