// Dubbo 2.x framing, request-id rewrite and the frames a proxy writes itself.
//
//   0      1      2      3      4                                  12                    16
//  +------+------+------+------+----------------------------------+---------------------+------
//  |  DA  |  BB  | flag |status|       request id (int64)         |  body length (int32)| body
//  +------+------+------+------+----------------------------------+---------------------+------
//  flag: 0x80 request | 0x40 two-way | 0x20 event | 0x1f serialization id (2 = hessian2)
//  status: responses only (20 = OK); 0 in requests.
//
// A request without the two-way bit is one-way: no response ever comes back, so the proxy
// registers no pending request for it (MOSN ignores the bit and waits for its timeout).
// An event request whose body is the serialized null is a heartbeat; the proxy answers every
// two-way event locally, as MOSN does. Request ids are 64-bit on the wire; this codec keeps
// them exactly as JS numbers up to 2^53 - 1 (Java's AtomicLong counter starts at 0) and
// refuses frames with larger (or negative) ids instead of answering with a wrong id.

import { ERR_TOO_LARGE, NEED_MORE } from '../types';
import {
  ERR_BAD_LENGTH,
  ERR_BAD_MAGIC,
  ERR_ID_RANGE,
  FLAG_EVENT,
  FLAG_REQUEST,
  FLAG_TWOWAY,
  HEADER_SIZE,
  HESSIAN_NULL,
  MAGIC_HIGH,
  MAGIC_LOW,
  OFF_BODY_LEN,
  OFF_FLAG,
  OFF_ID,
  OFF_STATUS,
  SERIALIZATION_HESSIAN2,
  SERIALIZATION_MASK,
  STATUS_OK,
} from './constants';
import { encodeString } from './hessian';

/** The reusable view of one decoded Dubbo frame (offsets into the decoded buffer). */
export class DubboFrame {
  frameStart = 0;
  frameLen = 0;
  /** The 64-bit id as an exact number (< 2^53). */
  requestId = 0;
  flag = 0;
  status = 0;
  serialization = 0;
  isRequest = false;
  isTwoWay = false;
  isEvent = false;
  isOneway = false;
  /** Two-way or one-way event request, or event response (Dubbo heartbeats are events). */
  isHeartbeat = false;
  /** Dubbo requests carry their timeout in the attachments only: 0 here (route/default timeout). */
  timeoutMs = 0;
  isSuccess = false;
  bodyStart = 0;
  bodyLen = 0;
}

const TWO_32 = 0x1_0000_0000;
/** Highest id word that keeps hi * 2^32 + lo below 2^53. */
const MAX_ID_HI = 0x1f_ffff;

function u32(buf: Buffer, i: number): number {
  return ((buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]) >>> 0;
}

/** Does a stream starting with these bytes look like Dubbo? undefined = need the second byte. */
export function detectDubbo(buf: Buffer, start: number, end: number): boolean | undefined {
  if (end <= start) return undefined;
  if (buf[start] !== MAGIC_HIGH) return false;
  if (end - start < 2) return undefined;
  return buf[start + 1] === MAGIC_LOW;
}

/**
 * Frame length from the 16-byte header: > 0, NEED_MORE, or < 0 (bad magic, negative length,
 * ERR_TOO_LARGE when 16 + body length exceeds maxFrameSize).
 */
export function dubboFrameLength(buf: Buffer, start: number, end: number, maxFrameSize: number): number {
  const avail = end - start;
  if (avail >= 1 && buf[start] !== MAGIC_HIGH) return ERR_BAD_MAGIC;
  if (avail >= 2 && buf[start + 1] !== MAGIC_LOW) return ERR_BAD_MAGIC;
  if (avail < HEADER_SIZE) return NEED_MORE;
  const body = u32(buf, start + OFF_BODY_LEN);
  if (body > 0x7fffffff) return ERR_BAD_LENGTH;
  const len = HEADER_SIZE + body;
  return len > maxFrameSize ? ERR_TOO_LARGE : len;
}

/** Decodes the frame at [start, end) (header fields only; the body stays opaque). */
export function decodeDubboFrame(buf: Buffer, start: number, end: number, maxFrameSize: number, out: DubboFrame): number {
  const len = dubboFrameLength(buf, start, end, maxFrameSize);
  if (len <= 0) return len;
  if (start + len > end) return NEED_MORE;
  const hi = u32(buf, start + OFF_ID);
  if (hi > MAX_ID_HI) return ERR_ID_RANGE;
  const flag = buf[start + OFF_FLAG];
  out.frameStart = start;
  out.frameLen = len;
  out.requestId = hi * TWO_32 + u32(buf, start + OFF_ID + 4);
  out.flag = flag;
  out.status = buf[start + OFF_STATUS];
  out.serialization = flag & SERIALIZATION_MASK;
  out.isRequest = (flag & FLAG_REQUEST) !== 0;
  out.isTwoWay = out.isRequest && (flag & FLAG_TWOWAY) !== 0;
  out.isEvent = (flag & FLAG_EVENT) !== 0;
  out.isOneway = out.isRequest && !out.isTwoWay;
  out.isHeartbeat = out.isEvent;
  out.timeoutMs = 0;
  out.isSuccess = !out.isRequest && out.status === STATUS_OK;
  out.bodyStart = start + HEADER_SIZE;
  out.bodyLen = len - HEADER_SIZE;
  return len;
}

/** Writes a request id (< 2^53) as the 8-byte id of the frame at `start`. */
export function writeDubboId(buf: Buffer, start: number, id: number): void {
  // The pool's ids are u32 (xcodec nextId): no float division for them (twice per proxied request).
  const hi = id <= 0xffffffff ? 0 : Math.floor(id / TWO_32);
  const lo = id >>> 0;
  const p = start + OFF_ID;
  buf[p] = hi >>> 24;
  buf[p + 1] = hi >>> 16;
  buf[p + 2] = hi >>> 8;
  buf[p + 3] = hi;
  buf[p + 4] = lo >>> 24;
  buf[p + 5] = lo >>> 16;
  buf[p + 6] = lo >>> 8;
  buf[p + 7] = lo;
}

function header(flag: number, status: number, id: number, bodyLen: number): Buffer {
  const b = Buffer.alloc(HEADER_SIZE + bodyLen);
  b[0] = MAGIC_HIGH;
  b[1] = MAGIC_LOW;
  b[OFF_FLAG] = flag;
  b[OFF_STATUS] = status;
  writeDubboId(b, 0, id);
  b.writeUInt32BE(bodyLen, OFF_BODY_LEN);
  return b;
}

/** The heartbeat a Java consumer sends: flag 0xE2 (request, two-way, event, hessian2), body `N`. */
export function encodeDubboHeartbeat(id: number): Buffer {
  const b = header(FLAG_REQUEST | FLAG_TWOWAY | FLAG_EVENT | SERIALIZATION_HESSIAN2, 0, id, 1);
  b[HEADER_SIZE] = HESSIAN_NULL;
  return b;
}

/**
 * The answer Java Dubbo gives a heartbeat (HeaderExchangeHandler): an event response, status 20,
 * same serialization and id (the 8 id bytes are copied, so any id is echoed exactly), body `N`.
 */
export function encodeDubboHeartbeatAck(buf: Buffer, frameStart: number, serialization: number): Buffer {
  const b = header(FLAG_EVENT | (serialization || SERIALIZATION_HESSIAN2), STATUS_OK, 0, 1);
  buf.copy(b, OFF_ID, frameStart + OFF_ID, frameStart + OFF_ID + 8);
  b[HEADER_SIZE] = HESSIAN_NULL;
  return b;
}

/** An error response: flag = hessian2, the status, body = the Hessian string `message` (Response.errorMsg). */
export function encodeDubboError(id: number, status: number, message: string): Buffer {
  const body = encodeString(message);
  const b = header(SERIALIZATION_HESSIAN2, status, id, body.length);
  body.copy(b, HEADER_SIZE);
  return b;
}
