export { CLOSE_CODES, classifyCloseCode, type CloseCode, type CloseCodeClass } from './close-codes.js'
export { ERROR_CODES, ConcordError, isErrorCode, toConcordError, type ErrorCode, type ErrorCodeInfo, type ErrorScope, type ConcordErrorOptions } from './errors.js'
export {
  FRAME_KINDS, encodeFrame, encodeFrameParts, FRAME_PARTS_MIN_PAYLOAD, decodeFrame, isUnknownFrame, FrameDecodeError, toSeqRanges, inSeqRanges,
  type Frame, type FrameKind, type FrameOf, type UnknownFrame, type Role, type SeqRange,
} from './native-frame.js'
export { chunkFrame, needsChunking, ChunkAssembler, type ChunkAssemblerOptions } from './chunking.js'
export { PROTOCOL_VERSIONS, PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX, NATIVE_SUBPROTOCOL, negotiateVersion } from './version.js'
export { MAX_DOCUMENT_NAME_BYTES, documentNameProblem, assertDocumentName } from './document-name.js'
export { Y_MESSAGE, Y_SYNC, encodeYMessage, encodeYMessageParts, decodeYMessage, YMessageDecodeError, type YMessage } from './y-websocket-message.js'
export { validateUpdate, inspectUpdate, encodeStateVectorOf, type UpdateInspection, type InspectedItem, type IdLike } from './update.js'
export {
  HOCUSPOCUS_MESSAGE, HOCUSPOCUS_AUTH, HOCUSPOCUS_KEY_SEPARATOR, HocuspocusDecodeError, decodeHocuspocusMessage, encodeHocuspocusMessage, encodeHocuspocusKey,
  hocuspocusDocumentName, type HocuspocusClientMessage, type HocuspocusServerMessage, type HocuspocusScope,
} from './hocuspocus-message.js'
