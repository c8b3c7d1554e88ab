// SOFARPC Bolt v1/v2 codec: zero-copy frame decoding, lazy header lookup, in-place id
// rewrite (with CRC32 upkeep) and encoders for proxy-generated frames.

export * from './constants';
export { BoltFrame, createBoltFrame } from './frame';
export { decodeFrame, BOLT_MAX_FIXED_HEADER } from './decoder';
export {
  HeaderValueRange,
  headerKey,
  findHeader,
  findHeaderValue,
  findServiceHeader,
  decodeHeaders,
  encodeHeaders,
  writeHeaders,
  headersByteLength,
  type HeaderInput,
} from './header-map';
export { getRequestId, setRequestId, SET_ID_OK, SET_ID_BAD_FRAME, SET_ID_TRUNCATED } from './request-id';
export {
  encodeFrame,
  encodeHeartbeat,
  encodeHeartbeatAck,
  encodeErrorResponse,
  defaultErrorMessage,
  fixedHeaderLength,
  type BoltFrameSpec,
  type ErrorResponseOptions,
} from './encoder';
export { encodeRpcServerException, MAX_ERROR_MESSAGE } from './error-body';
export { crc32, crc32Table, HAS_NATIVE_CRC32 } from './crc32';
