// Content of the error responses the proxy writes itself: a Hessian-serialized
// com.alipay.remoting.rpc.exception.RpcServerException, the same class and content shape a
// Java or Node Bolt server puts in its own error responses, so a SOFARPC client surfaces our
// message (sofa-bolt-node shows "RpcServerException: <message>"). An error response with empty
// sections (MOSN's hijack form) only yields a generic "Server exception..." in sofa-bolt-node.
//
// SOFA's Hessian (Java sofa-hessian, Node sofa-hessian-node v3) uses the Hessian 2 draft
// object grammar, which is what is written here:
//
//   'O' int(len) class-bytes int(nfields) string(field)...   class definition #0
//   'o' int(0) value...                                       instance of definition #0
//
// fields: detailMessage = message, stackTrace = empty StackTraceElement[], cause = null.
//   typed list:  'V' 't' u16(len) type-bytes 'n' u8(count) item... 'z'
//   int:         0x90 + v for -16..47; 0xc8 + (v >> 8), v & 0xff for -2048..2047
//   string:      u8(len) for len < 32, else 'S' u16(len); then UTF-8; len counts UTF-16 units

import { CLASS_RPC_SERVER_EXCEPTION } from './constants';

/** Longest message carried (UTF-16 units); longer messages are cut. */
export const MAX_ERROR_MESSAGE = 4096;

function hInt(v: number): number[] {
  if (v >= -16 && v <= 47) return [0x90 + v];
  return [0xc8 + (v >> 8), v & 0xff];
}

function hString(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  const head = s.length < 32 ? Buffer.from([s.length]) : Buffer.from([0x53, s.length >>> 8, s.length & 0xff]);
  return Buffer.concat([head, body]);
}

// Hessian counts UTF-16 units but decodes each as one UTF-8 sequence of at most 3 bytes: a
// surrogate (pair or lone) would break that count, so it becomes '?'.
function sanitize(message: string): string {
  const s = message.length > MAX_ERROR_MESSAGE ? message.slice(0, MAX_ERROR_MESSAGE) : message;
  return s.replace(/[\uD800-\uDFFF]/g, '?');
}

const STACK_TRACE_TYPE = '[java.lang.StackTraceElement';

// Everything before the message never changes.
const PREFIX = Buffer.concat([
  Buffer.from([0x4f, ...hInt(CLASS_RPC_SERVER_EXCEPTION.length)]),
  Buffer.from(CLASS_RPC_SERVER_EXCEPTION, 'latin1'),
  Buffer.from(hInt(3)),
  hString('detailMessage'),
  hString('stackTrace'),
  hString('cause'),
  Buffer.from([0x6f, ...hInt(0)]),
]);

const SUFFIX = Buffer.concat([
  Buffer.from([0x56, 0x74, 0, STACK_TRACE_TYPE.length]),
  Buffer.from(STACK_TRACE_TYPE, 'latin1'),
  Buffer.from([0x6e, 0, 0x7a]), // 'n' 0, 'z': empty list
  Buffer.from([0x4e]), // cause: null
]);

/** Hessian content of an RpcServerException carrying `message`. */
export function encodeRpcServerException(message: string): Buffer {
  return Buffer.concat([PREFIX, hString(sanitize(message)), SUFFIX]);
}
