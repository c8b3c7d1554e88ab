// Bolt v1/v2 as an XCodec (src/protocol/types.ts): the glue between the zero-copy Bolt codec
// of this folder and the protocol-independent stream and proxy layers.
//
// One decoder reads both versions (byte 0 says which), so a "bolt" listener also forwards v2
// frames and vice versa, as MOSN's bolt/boltv2 codecs hand frames to each other. The two codecs
// differ only in the frames the proxy generates itself without a request to copy from: the
// keepalive heartbeats sent upstream (v1 for "bolt", v2 for "boltv2").

import { ErrorKind, HeaderName, NEED_MORE, ERR_TOO_LARGE, registerCodec, type XCodec, type XFrame } from '../types';
import {
  CODEC_HESSIAN2,
  CRC_SIZE,
  DECODE_NEED_MORE,
  ERR_FRAME_TOO_LARGE,
  PROTO_V1,
  PROTO_V2,
  STATUS_CONNECTION_CLOSED,
  STATUS_CODEC_EXCEPTION,
  STATUS_NO_PROCESSOR,
  STATUS_SERVER_EXCEPTION,
  STATUS_SERVER_THREADPOOL_BUSY,
  STATUS_SUCCESS,
  STATUS_TIMEOUT,
  STATUS_UNKNOWN,
  SWITCH_CRC,
  TYPE_ONEWAY,
  TYPE_RESPONSE,
  V1_REQUEST_HEADER,
  V1_RESPONSE_HEADER,
  V2_REQUEST_HEADER,
  V2_RESPONSE_HEADER,
  V1_ID_OFFSET,
  V2_ID_OFFSET,
  V2_VER1_CRC,
  V2_VER1_PLAIN,
} from './constants';
import { decodeFrame } from './decoder';
import { encodeErrorResponse, encodeHeartbeat, encodeHeartbeatAck } from './encoder';
import { BoltFrame } from './frame';
import { findHeaderValue, findServiceHeader, HeaderValueRange } from './header-map';
import { setRequestId, setRequestTimeout, writeU32 } from './request-id';
import { StringCache } from '../string-cache';

/** BoltXFrame.routeStart before a walk over the header map found the routing key. */
export const ROUTE_UNKNOWN = -2;

/** A BoltFrame that also carries the generic XFrame fields. */
export class BoltXFrame extends BoltFrame implements XFrame {
  isOneway = false;
  timeoutMs = 0;
  isSuccess = false;
  /**
   * The routing key's value range ([routeStart, routeEnd): `service`, else
   * `sofa_head_target_service`; -1: neither) when a walk over the whole header map found it
   * before routing (tracing's check, src/tracing/bolt.ts); ROUTE_UNKNOWN: not walked yet.
   */
  routeStart = ROUTE_UNKNOWN;
  routeEnd = 0;
}

/** Bolt status for each ErrorKind (PROTOCOLS.md section 6, MOSN's hijack mapping). */
const STATUS_OF_KIND: readonly number[] = [
  STATUS_NO_PROCESSOR, // NoRoute
  STATUS_TIMEOUT, // Timeout
  STATUS_CONNECTION_CLOSED, // ConnectionClosed
  STATUS_SERVER_THREADPOOL_BUSY, // Overflow
  STATUS_CODEC_EXCEPTION, // CodecError
  STATUS_SERVER_EXCEPTION, // PermissionDenied (MOSN: Bolt has no permission status)
  STATUS_UNKNOWN, // LimitExceeded (MOSN's default mapping)
];

const MESSAGE_OF_KIND: readonly string[] = [
  '[outrigger] no route or no healthy upstream host for this service',
  '[outrigger] upstream request timeout',
  '[outrigger] upstream connection closed',
  '[outrigger] upstream overflow (circuit breaker)',
  '[outrigger] request headers could not be decoded',
  '[outrigger] permission denied',
  '[outrigger] limit exceeded',
];

function i16(buf: Buffer, i: number): number {
  return ((buf[i] << 24) | (buf[i + 1] << 16)) >> 16;
}

function i32(buf: Buffer, i: number): number {
  return (buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3];
}

/**
 * Frame length from the fixed header alone (needed by the frame reader to size a partial
 * frame and to refuse an oversized one before buffering its body). Same checks as decodeFrame.
 */
export function boltFrameLength(buf: Buffer, start: number, end: number, maxFrameSize: number): number {
  const avail = end - start;
  if (avail < 3) return NEED_MORE;
  const proto = buf[start];
  let base: number;
  let ver1 = 0;
  if (proto === PROTO_V1) base = start + 1;
  else if (proto === PROTO_V2) {
    ver1 = buf[start + 1];
    if (ver1 !== V2_VER1_PLAIN && ver1 !== V2_VER1_CRC) return -3;
    base = start + 2;
  } else return -1;
  const type = buf[base];
  if (type > TYPE_ONEWAY) return -2;
  const isResponse = type === TYPE_RESPONSE;
  const fixed = proto === PROTO_V1 ? (isResponse ? V1_RESPONSE_HEADER : V1_REQUEST_HEADER) : isResponse ? V2_RESPONSE_HEADER : V2_REQUEST_HEADER;
  if (avail < fixed) return NEED_MORE;
  let p = base + 9;
  let sw = 0;
  if (proto === PROTO_V2) {
    sw = buf[p];
    if (sw > 0x7f) return -3;
    p++;
  }
  p += isResponse ? 2 : 4;
  const classLen = i16(buf, p);
  const headerLen = i16(buf, p + 2);
  const contentLen = i32(buf, p + 4);
  if (classLen < 0 || headerLen < 0 || contentLen < 0) return -4;
  const len = fixed + classLen + headerLen + contentLen + (ver1 === V2_VER1_CRC && (sw & SWITCH_CRC) !== 0 ? CRC_SIZE : 0);
  return len > maxFrameSize ? ERR_TOO_LARGE : len;
}

const range = new HeaderValueRange();
/** Header values routing reads (service, method, ...), decoded once per distinct value. */
const names = new StringCache();

class BoltXCodec implements XCodec<BoltXFrame> {
  readonly maxHeaderSize = V2_REQUEST_HEADER;

  constructor(
    readonly name: string,
    /** Protocol code of the heartbeats this codec sends upstream. */
    private readonly heartbeatProto: number,
  ) {}

  detect(buf: Buffer, start: number, end: number): boolean | undefined {
    if (end <= start) return undefined;
    return buf[start] === this.heartbeatProto;
  }

  newFrame(): BoltXFrame {
    return new BoltXFrame();
  }

  frameLength(buf: Buffer, start: number, end: number, maxFrameSize: number): number {
    return boltFrameLength(buf, start, end, maxFrameSize);
  }

  decode(buf: Buffer, start: number, end: number, maxFrameSize: number, out: BoltXFrame): number {
    const r = decodeFrame(buf, start, end, maxFrameSize, out);
    if (r === DECODE_NEED_MORE) return NEED_MORE;
    if (r === ERR_FRAME_TOO_LARGE) return ERR_TOO_LARGE;
    if (r < 0) return r;
    out.isOneway = out.type === TYPE_ONEWAY;
    out.routeStart = ROUTE_UNKNOWN;
    out.timeoutMs = out.timeout > 0 ? out.timeout : 0;
    out.isSuccess = out.status === STATUS_SUCCESS;
    return r;
  }

  setTimeout(buf: Buffer, frame: BoltXFrame, ms: number): boolean {
    if (setRequestTimeout(buf, frame.frameStart, ms) !== 0) return false;
    frame.timeout = ms;
    frame.timeoutMs = ms;
    return true;
  }

  setRequestId(buf: Buffer, frame: BoltXFrame, id: number): boolean {
    // Twice per proxied request. A frame without a CRC trailer (every v1 one, v2 without the
    // CRC switch) needs only the id's four bytes, where its decode says they are.
    const at = frame.frameStart + (frame.proto === PROTO_V1 ? V1_ID_OFFSET : V2_ID_OFFSET);
    if (frame.hasCrc !== true && at + 4 <= buf.length && buf[frame.frameStart] === frame.proto) {
      writeU32(buf, at, id >>> 0);
      frame.requestId = id >>> 0;
      return true;
    }
    if (setRequestId(buf, frame.frameStart, id) !== 0) return false;
    frame.requestId = id >>> 0;
    return true;
  }

  getHeader(buf: Buffer, frame: BoltXFrame, name: HeaderName): string | undefined | null {
    const r = findHeaderValue(buf, frame.headerStart, frame.contentStart, name.bytes, range);
    if (r === -1) return undefined;
    if (r < 0) return null;
    // The router's cache is keyed by it (see router/router.ts): repeated values are one string.
    return names.get(buf, range.start, range.end);
  }

  getRouteKey(buf: Buffer, frame: BoltXFrame): string | undefined | null {
    const rs = frame.routeStart;
    if (rs !== ROUTE_UNKNOWN) return rs < 0 ? undefined : names.get(buf, rs, frame.routeEnd);
    const r = findServiceHeader(buf, frame.headerStart, frame.contentStart, range);
    if (r === -1) return undefined;
    if (r < 0) return null;
    return names.get(buf, range.start, range.end);
  }

  replyMeta(_buf: Buffer, frame: BoltXFrame): number {
    // proto | ver1 << 8 | codec << 16 | switch << 24 (switch <= 0x7f: stays a positive int)
    return frame.proto | (frame.ver1 << 8) | (frame.codec << 16) | (frame.switch << 24);
  }

  encodeHeartbeatAck(_buf: Buffer, frame: BoltXFrame): Buffer {
    return encodeHeartbeatAck(frame.proto, frame.ver1 || V2_VER1_PLAIN, frame.requestId, frame.codec);
  }

  encodeHeartbeat(id: number): Buffer {
    return encodeHeartbeat(this.heartbeatProto, id);
  }

  encodeError(meta: number, requestId: number, kind: ErrorKind, message?: string): Buffer {
    const proto = meta & 0xff;
    const ver1 = (meta >>> 8) & 0xff || V2_VER1_PLAIN;
    const codec = (meta >>> 16) & 0xff;
    const sw = (meta >>> 24) & 0x7f;
    return encodeErrorResponse(proto, ver1, requestId, STATUS_OF_KIND[kind], codec || CODEC_HESSIAN2, message ?? MESSAGE_OF_KIND[kind], {
      switch: sw,
    });
  }

  errorStatus(kind: ErrorKind): number {
    return STATUS_OF_KIND[kind];
  }

  nextId(id: number): number {
    // u32 wrap (MOSN issue #2403); 0 is skipped so a fresh connection's first id is 1.
    return id >= 0xffffffff ? 1 : id + 1;
  }
}

export const boltCodec: XCodec<BoltXFrame> = new BoltXCodec('bolt', PROTO_V1);
export const boltV2Codec: XCodec<BoltXFrame> = new BoltXCodec('boltv2', PROTO_V2);

// MOSN spellings: "bolt"/"boltv2" (xprotocol sub-protocols), "SofaRpc" (the old protocol name).
registerCodec(boltCodec, 'sofarpc');
registerCodec(boltV2Codec);
