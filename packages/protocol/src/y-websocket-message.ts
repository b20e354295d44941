import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { FRAME_PARTS_MIN_PAYLOAD, withPayloadLength } from './native-frame.js'

/**
 * The y-websocket wire format (y-protocols), one message per binary WebSocket
 * message, one document per socket (the room name is the URL path):
 *
 *   message   = sync | awareness | auth | queryAwareness
 *   sync      = 0:varUint (0:varUint stateVector:varUint8Array    -- step 1
 *                        | 1:varUint update:varUint8Array         -- step 2
 *                        | 2:varUint update:varUint8Array)        -- update
 *   awareness = 1:varUint update:varUint8Array
 *   auth      = 2:varUint 0:varUint reason:varString             -- permission denied
 *   queryAwareness = 3:varUint
 */
export const Y_MESSAGE = {
  SYNC: 0,
  AWARENESS: 1,
  AUTH: 2,
  QUERY_AWARENESS: 3,
} as const

export const Y_SYNC = {
  STEP1: 0,
  STEP2: 1,
  UPDATE: 2,
} as const

export type YMessage =
  | { type: 'sync-step1'; stateVector: Uint8Array }
  | { type: 'sync-step2'; update: Uint8Array }
  | { type: 'update'; update: Uint8Array }
  | { type: 'awareness'; update: Uint8Array }
  | { type: 'permission-denied'; reason: string }
  | { type: 'query-awareness' }

/**
 * Like `encodeYMessage`, as parts whose concatenation is the message, without
 * copying a large update: `[header, update]` for sync-step2 and update messages
 * with an update of at least FRAME_PARTS_MIN_PAYLOAD bytes.
 */
export function encodeYMessageParts(message: YMessage): Uint8Array[] {
  if ((message.type === 'sync-step2' || message.type === 'update') && message.update.length >= FRAME_PARTS_MIN_PAYLOAD) {
    return [withPayloadLength(encodeYMessage({ ...message, update: new Uint8Array(0) }), message.update.length), message.update]
  }
  return [encodeYMessage(message)]
}

export function encodeYMessage(message: YMessage): Uint8Array {
  const e = encoding.createEncoder()
  switch (message.type) {
    case 'sync-step1':
      encoding.writeVarUint(e, Y_MESSAGE.SYNC)
      encoding.writeVarUint(e, Y_SYNC.STEP1)
      encoding.writeVarUint8Array(e, message.stateVector)
      break
    case 'sync-step2':
      encoding.writeVarUint(e, Y_MESSAGE.SYNC)
      encoding.writeVarUint(e, Y_SYNC.STEP2)
      encoding.writeVarUint8Array(e, message.update)
      break
    case 'update':
      encoding.writeVarUint(e, Y_MESSAGE.SYNC)
      encoding.writeVarUint(e, Y_SYNC.UPDATE)
      encoding.writeVarUint8Array(e, message.update)
      break
    case 'awareness':
      encoding.writeVarUint(e, Y_MESSAGE.AWARENESS)
      encoding.writeVarUint8Array(e, message.update)
      break
    case 'permission-denied':
      encoding.writeVarUint(e, Y_MESSAGE.AUTH)
      encoding.writeVarUint(e, 0)
      encoding.writeVarString(e, message.reason)
      break
    case 'query-awareness':
      encoding.writeVarUint(e, Y_MESSAGE.QUERY_AWARENESS)
      break
  }
  return encoding.toUint8Array(e)
}

/** Thrown for bytes that are not a y-websocket message; `unknownType` is set for a well-formed but unknown type. */
export class YMessageDecodeError extends Error {
  readonly unknownType: number | undefined
  constructor(message: string, unknownType?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'YMessageDecodeError'
    this.unknownType = unknownType
  }
}

/** Decode one y-websocket message. Byte arrays are views into `bytes`. */
export function decodeYMessage(bytes: Uint8Array): YMessage {
  const d = decoding.createDecoder(bytes)
  let message: YMessage
  let type: number
  try {
    type = decoding.readVarUint(d)
  } catch (cause) {
    throw new YMessageDecodeError('empty or malformed message', undefined, { cause })
  }
  try {
    switch (type) {
      case Y_MESSAGE.SYNC: {
        const sub = decoding.readVarUint(d)
        const payload = decoding.readVarUint8Array(d)
        if (sub === Y_SYNC.STEP1) message = { type: 'sync-step1', stateVector: payload }
        else if (sub === Y_SYNC.STEP2) message = { type: 'sync-step2', update: payload }
        else if (sub === Y_SYNC.UPDATE) message = { type: 'update', update: payload }
        else throw new YMessageDecodeError(`unknown sync message type ${sub}`, type)
        break
      }
      case Y_MESSAGE.AWARENESS:
        message = { type: 'awareness', update: decoding.readVarUint8Array(d) }
        break
      case Y_MESSAGE.AUTH: {
        const sub = decoding.readVarUint(d)
        if (sub !== 0) throw new YMessageDecodeError(`unknown auth message type ${sub}`, type)
        message = { type: 'permission-denied', reason: decoding.readVarString(d) }
        break
      }
      case Y_MESSAGE.QUERY_AWARENESS:
        message = { type: 'query-awareness' }
        break
      default:
        throw new YMessageDecodeError(`unknown message type ${type}`, type)
    }
  } catch (cause) {
    if (cause instanceof YMessageDecodeError) throw cause
    throw new YMessageDecodeError(`malformed message of type ${type}`, undefined, { cause })
  }
  // a length prefix must not reach past `bytes` (a view into a possibly larger, pooled buffer)
  if (d.pos > bytes.length) throw new YMessageDecodeError(`malformed message of type ${type}`)
  return message
}
