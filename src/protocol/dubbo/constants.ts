// Dubbo 2.x wire constants (PROTOCOLS.md section 4; apache/dubbo ExchangeCodec, Response,
// serialize Constants).

export const MAGIC_HIGH = 0xda;
export const MAGIC_LOW = 0xbb;
export const HEADER_SIZE = 16;

// flag byte (offset 2)
export const FLAG_REQUEST = 0x80;
export const FLAG_TWOWAY = 0x40;
export const FLAG_EVENT = 0x20;
export const SERIALIZATION_MASK = 0x1f;

// offsets in the fixed header
export const OFF_FLAG = 2;
export const OFF_STATUS = 3;
export const OFF_ID = 4;
export const OFF_BODY_LEN = 12;

/** Serialization ids (only hessian2 bodies are read for routing; others stay opaque). */
export const SERIALIZATION_HESSIAN2 = 2;

/** Dubbo's own default payload limit (Constants.DEFAULT_PAYLOAD): 8 MiB. */
export const DEFAULT_PAYLOAD_LIMIT = 8 * 1024 * 1024;

// response statuses (exchange/Response.java)
export const STATUS_OK = 20;
export const STATUS_SERIALIZATION_ERROR = 25;
export const STATUS_CLIENT_TIMEOUT = 30;
export const STATUS_SERVER_TIMEOUT = 31;
export const STATUS_CHANNEL_INACTIVE = 35;
export const STATUS_BAD_REQUEST = 40;
export const STATUS_BAD_RESPONSE = 50;
export const STATUS_SERVICE_NOT_FOUND = 60;
export const STATUS_SERVICE_ERROR = 70;
export const STATUS_SERVER_ERROR = 80;
export const STATUS_CLIENT_ERROR = 90;
export const STATUS_SERVER_THREADPOOL_EXHAUSTED_ERROR = 100;

/** The serialized null a heartbeat carries (hessian2 `N`). */
export const HESSIAN_NULL = 0x4e;

// decode error codes (negative; XCodec rule: errors are return codes)
/** Bytes 0-1 are not DA BB. */
export const ERR_BAD_MAGIC = -1;
/** The body length is negative (int32 >= 2^31). */
export const ERR_BAD_LENGTH = -2;
/** Request id >= 2^53 (negative or huge): cannot be kept exactly in a JS number. */
export const ERR_ID_RANGE = -3;

export const DECODE_ERROR_NAMES: Readonly<Record<number, string>> = {
  [ERR_BAD_MAGIC]: 'bad magic',
  [ERR_BAD_LENGTH]: 'negative body length',
  [ERR_ID_RANGE]: 'request id outside 0..2^53-1',
};

/** The routing headers MOSN derives from a request (dubbo/decoder.go header names). */
export const HEADER_DUBBO_VERSION = 'dubbo';
export const HEADER_SERVICE = 'service';
export const HEADER_VERSION = 'version';
export const HEADER_METHOD = 'method';
export const HEADER_GROUP = 'group';
export const HEADER_INTERFACE = 'interface';
