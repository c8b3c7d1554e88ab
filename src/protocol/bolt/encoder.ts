// Encoders for the frames the proxy writes itself (heartbeats, acks, error responses) and a
// general encodeFrame for tests and the slow path (re-encoding after a header change).
// Layout: see the diagram in decoder.ts.

import {
  CLASS_RPC_SERVER_EXCEPTION,
  CMD_HEARTBEAT,
  CMD_RPC_RESPONSE,
  CMD_VERSION,
  CODEC_HESSIAN2,
  CRC_SIZE,
  PROTO_V1,
  STATUS_NAMES,
  STATUS_SUCCESS,
  SWITCH_CRC,
  TIMEOUT_NONE,
  TYPE_REQUEST,
  TYPE_RESPONSE,
  V1_REQUEST_HEADER,
  V1_RESPONSE_HEADER,
  V2_REQUEST_HEADER,
  V2_RESPONSE_HEADER,
  V2_VER1_CRC,
  V2_VER1_PLAIN,
} from './constants';
import { crc32 } from './crc32';
import { encodeRpcServerException } from './error-body';
import { encodeHeaders, type HeaderInput } from './header-map';

export interface BoltFrameSpec {
  /** 1 or 2. */
  proto: number;
  /** v2 only; default 1. */
  ver1?: number;
  type: number;
  cmdcode: number;
  /** default 1. */
  ver2?: number;
  requestId: number;
  /** default CODEC_HESSIAN2. */
  codec?: number;
  /** v2 only; default 0. */
  switch?: number;
  /** Requests/oneways; default -1 (none). */
  timeout?: number;
  /** Responses; default 0. */
  status?: number;
  className?: string | Buffer;
  /** A map/object/pair list (null = length -1), or an already encoded map. */
  headers?: HeaderInput | Buffer;
  content?: Buffer;
  /**
   * Append a CRC32 trailer. Default: exactly when the frame is v2 with ver1 2 and switch bit 0,
   * which is when peers (and decodeFrame) expect one. Forcing it otherwise builds a bad frame.
   */
  crc?: boolean;
}

const EMPTY = Buffer.alloc(0);
const CLASS_RPC_SERVER_EXCEPTION_BYTES = Buffer.from(CLASS_RPC_SERVER_EXCEPTION, 'latin1');

/** Size of the fixed header for a protocol and type. */
export function fixedHeaderLength(proto: number, type: number): number {
  const isResponse = type === TYPE_RESPONSE;
  if (proto === PROTO_V1) return isResponse ? V1_RESPONSE_HEADER : V1_REQUEST_HEADER;
  return isResponse ? V2_RESPONSE_HEADER : V2_REQUEST_HEADER;
}

/** Build a complete Bolt frame. Throws RangeError when a section does not fit its length field. */
export function encodeFrame(spec: BoltFrameSpec): Buffer {
  const proto = spec.proto;
  const isV1 = proto === PROTO_V1;
  const ver1 = spec.ver1 ?? V2_VER1_PLAIN;
  const sw = spec.switch ?? 0;
  const isResponse = spec.type === TYPE_RESPONSE;
  const cls = spec.className === undefined ? EMPTY : typeof spec.className === 'string' ? Buffer.from(spec.className, 'utf8') : spec.className;
  const hdr = spec.headers === undefined ? EMPTY : Buffer.isBuffer(spec.headers) ? spec.headers : encodeHeaders(spec.headers);
  const content = spec.content ?? EMPTY;
  if (cls.length > 0x7fff || hdr.length > 0x7fff || content.length > 0x7fffffff) {
    throw new RangeError('bolt: class name or header map longer than 32767 bytes, or content longer than 2^31-1');
  }
  const crc = spec.crc ?? (!isV1 && ver1 === V2_VER1_CRC && (sw & SWITCH_CRC) !== 0);
  const fixedLen = fixedHeaderLength(proto, spec.type);
  const contentEnd = fixedLen + cls.length + hdr.length + content.length;
  const buf = Buffer.allocUnsafe(contentEnd + (crc ? CRC_SIZE : 0));

  let p = 0;
  buf[p++] = proto;
  if (!isV1) buf[p++] = ver1;
  buf[p++] = spec.type;
  buf.writeUInt16BE(spec.cmdcode, p);
  p += 2;
  buf[p++] = spec.ver2 ?? CMD_VERSION;
  buf.writeUInt32BE(spec.requestId >>> 0, p);
  p += 4;
  buf[p++] = spec.codec ?? CODEC_HESSIAN2;
  if (!isV1) buf[p++] = sw;
  if (isResponse) {
    buf.writeUInt16BE(spec.status ?? STATUS_SUCCESS, p);
    p += 2;
  } else {
    buf.writeInt32BE(spec.timeout ?? TIMEOUT_NONE, p);
    p += 4;
  }
  buf.writeInt16BE(cls.length, p);
  buf.writeInt16BE(hdr.length, p + 2);
  buf.writeInt32BE(content.length, p + 4);
  p += 8;
  p += cls.copy(buf, p);
  p += hdr.copy(buf, p);
  content.copy(buf, p);
  if (crc) buf.writeUInt32BE(crc32(buf, 0, contentEnd), contentEnd);
  return buf;
}

/**
 * A heartbeat request: type request, cmdcode 0, codec 1, no sections.
 * v1: 22 bytes, timeout -1 by default. v2: 24 bytes with the given ver1 and switch 0 (no CRC).
 */
export function encodeHeartbeat(proto: number, requestId: number, ver1: number = V2_VER1_PLAIN, timeout: number = TIMEOUT_NONE): Buffer {
  return encodeFrame({ proto, ver1, type: TYPE_REQUEST, cmdcode: CMD_HEARTBEAT, requestId, codec: CODEC_HESSIAN2, timeout });
}

/** The ack of a heartbeat: type response, cmdcode 0, status 0, same id, no sections. */
export function encodeHeartbeatAck(proto: number, ver1: number, requestId: number, codec: number = CODEC_HESSIAN2): Buffer {
  return encodeFrame({ proto, ver1, type: TYPE_RESPONSE, cmdcode: CMD_HEARTBEAT, requestId, codec, status: STATUS_SUCCESS });
}

export interface ErrorResponseOptions {
  /**
   * Empty class, header and content sections, as MOSN writes its hijack responses. Default
   * false: for hessian2 requests the response carries an RpcServerException (see error-body.ts).
   */
  bare?: boolean;
  /** v2 switch byte to echo (a CRC is added when ver1 is 2 and bit 0 is set). Default 0. */
  switch?: number;
}

/** The message used when encodeErrorResponse gets none. */
export function defaultErrorMessage(status: number): string {
  const name = STATUS_NAMES[status] ?? 'UNKNOWN';
  return `[outrigger] ${name} (status 0x${status.toString(16).padStart(2, '0')})`;
}

/**
 * A response the proxy answers on behalf of the upstream (no route 0x06, timeout 0x07,
 * overflow 0x04, connection closed 0x10 ...). With codec hessian2 (1) and without `bare` the
 * frame carries class RpcServerException and a Hessian RpcServerException whose detailMessage is
 * `message` (or defaultErrorMessage(status)); other codecs get empty sections.
 */
export function encodeErrorResponse(
  proto: number,
  ver1: number,
  requestId: number,
  status: number,
  codec: number = CODEC_HESSIAN2,
  message?: string,
  options?: ErrorResponseOptions,
): Buffer {
  const withBody = codec === CODEC_HESSIAN2 && options?.bare !== true;
  return encodeFrame({
    proto,
    ver1,
    type: TYPE_RESPONSE,
    cmdcode: CMD_RPC_RESPONSE,
    requestId,
    codec,
    switch: options?.switch ?? 0,
    status,
    className: withBody ? CLASS_RPC_SERVER_EXCEPTION_BYTES : undefined,
    content: withBody ? encodeRpcServerException(message ?? defaultErrorMessage(status)) : undefined,
  });
}
