// Bolt wire constants. Values and meanings: /work/shared/PROTOCOLS.md sections 1-2.

/** Byte 0 of every Bolt frame. */
export const PROTO_V1 = 0x01;
export const PROTO_V2 = 0x02;

/** Fixed header sizes (bytes before the class-name section). */
export const V1_REQUEST_HEADER = 22;
export const V1_RESPONSE_HEADER = 20;
export const V2_REQUEST_HEADER = 24;
export const V2_RESPONSE_HEADER = 22;
/** Size of the optional v2 CRC32 trailer. */
export const CRC_SIZE = 4;

/** Byte offsets of the request id (u32) inside a frame. */
export const V1_ID_OFFSET = 5;
export const V2_ID_OFFSET = 6;

/** Command type (v1 offset 1, v2 offset 2). */
export const TYPE_RESPONSE = 0;
export const TYPE_REQUEST = 1;
export const TYPE_ONEWAY = 2;

/** Command codes (u16). */
export const CMD_HEARTBEAT = 0;
export const CMD_RPC_REQUEST = 1;
export const CMD_RPC_RESPONSE = 2;
/** MOSN extension, off by default there (`enable_bolt_goaway`). */
export const CMD_GOAWAY = 100;

/** Command version (ver2), always 1 in practice. */
export const CMD_VERSION = 1;

/** v2 protocol versions (ver1, offset 1). Only ver1 2 may carry a CRC. */
export const V2_VER1_PLAIN = 1;
export const V2_VER1_CRC = 2;
/** v2 switch bit 0: a CRC32 trailer follows the content (only when ver1 == 2). */
export const SWITCH_CRC = 0x01;

/** Serializer codes (offset 9 in v1, 10 in v2). The proxy forwards the byte unchanged. */
export const CODEC_HESSIAN2 = 1;
export const CODEC_JAVA = 2;
export const CODEC_HESSIAN2_OLD = 4;
export const CODEC_PROTOBUF = 11;
export const CODEC_JSON = 12;

/** Request timeout value meaning "none". */
export const TIMEOUT_NONE = -1;

/** Response status codes (u16). */
export const STATUS_SUCCESS = 0x00;
export const STATUS_ERROR = 0x01;
export const STATUS_SERVER_EXCEPTION = 0x02;
export const STATUS_UNKNOWN = 0x03;
export const STATUS_SERVER_THREADPOOL_BUSY = 0x04;
export const STATUS_ERROR_COMM = 0x05;
export const STATUS_NO_PROCESSOR = 0x06;
export const STATUS_TIMEOUT = 0x07;
export const STATUS_CLIENT_SEND_ERROR = 0x08;
export const STATUS_CODEC_EXCEPTION = 0x09;
export const STATUS_CONNECTION_CLOSED = 0x10;
export const STATUS_SERVER_SERIAL_EXCEPTION = 0x11;
export const STATUS_SERVER_DESERIAL_EXCEPTION = 0x12;

export const STATUS_NAMES: Readonly<Record<number, string>> = {
  [STATUS_SUCCESS]: 'SUCCESS',
  [STATUS_ERROR]: 'ERROR',
  [STATUS_SERVER_EXCEPTION]: 'SERVER_EXCEPTION',
  [STATUS_UNKNOWN]: 'UNKNOWN',
  [STATUS_SERVER_THREADPOOL_BUSY]: 'SERVER_THREADPOOL_BUSY',
  [STATUS_ERROR_COMM]: 'ERROR_COMM',
  [STATUS_NO_PROCESSOR]: 'NO_PROCESSOR',
  [STATUS_TIMEOUT]: 'TIMEOUT',
  [STATUS_CLIENT_SEND_ERROR]: 'CLIENT_SEND_ERROR',
  [STATUS_CODEC_EXCEPTION]: 'CODEC_EXCEPTION',
  [STATUS_CONNECTION_CLOSED]: 'CONNECTION_CLOSED',
  [STATUS_SERVER_SERIAL_EXCEPTION]: 'SERVER_SERIAL_EXCEPTION',
  [STATUS_SERVER_DESERIAL_EXCEPTION]: 'SERVER_DESERIAL_EXCEPTION',
};

/** Class names written by SOFARPC peers (and by our error responses). */
export const CLASS_SOFA_REQUEST = 'com.alipay.sofa.rpc.core.request.SofaRequest';
export const CLASS_SOFA_RESPONSE = 'com.alipay.sofa.rpc.core.response.SofaResponse';
export const CLASS_RPC_SERVER_EXCEPTION = 'com.alipay.remoting.rpc.exception.RpcServerException';

/** Header keys used for routing. */
export const HEADER_SERVICE = 'service';
export const HEADER_SERVICE_OLD = 'sofa_head_target_service';
export const HEADER_METHOD = 'sofa_head_method_name';

/**
 * decodeFrame results. 0 = need more bytes; > 0 = frame length; < 0 = the stream is broken
 * and the connection should be closed (nothing after this point can be framed reliably).
 */
export const DECODE_NEED_MORE = 0;
export const ERR_UNKNOWN_PROTOCOL = -1;
export const ERR_UNKNOWN_TYPE = -2;
/** v2 only: ver1 not 1/2, or switch outside 0..127 (Java rejects both). */
export const ERR_BAD_VERSION = -3;
/** A negative classLen/headerLen (int16) or contentLen (int32). */
export const ERR_BAD_LENGTH = -4;
/** The header announces a frame larger than maxFrameSize. */
export const ERR_FRAME_TOO_LARGE = -5;
export const ERR_CRC_MISMATCH = -6;

export const DECODE_ERROR_NAMES: Readonly<Record<number, string>> = {
  [ERR_UNKNOWN_PROTOCOL]: 'unknown protocol code',
  [ERR_UNKNOWN_TYPE]: 'unknown command type',
  [ERR_BAD_VERSION]: 'bad v2 version or switch',
  [ERR_BAD_LENGTH]: 'negative section length',
  [ERR_FRAME_TOO_LARGE]: 'frame exceeds the size limit',
  [ERR_CRC_MISMATCH]: 'CRC32 mismatch',
};

/** findHeader results besides a value offset. */
export const HEADER_NOT_FOUND = -1;
export const HEADER_MALFORMED = -2;
