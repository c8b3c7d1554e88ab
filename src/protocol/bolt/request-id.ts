// Read and rewrite the request id of a decoded frame in place (the proxy's fast path when it
// multiplexes downstream streams over one upstream connection). v1 keeps the id at offset 5,
// v2 at offset 6; a v2 frame with a CRC trailer gets its CRC recomputed after the rewrite.

import {
  CRC_SIZE,
  PROTO_V1,
  PROTO_V2,
  SWITCH_CRC,
  TYPE_RESPONSE,
  V1_ID_OFFSET,
  V2_ID_OFFSET,
  V2_REQUEST_HEADER,
  V2_RESPONSE_HEADER,
  V2_VER1_CRC,
} from './constants';
import { crc32 } from './crc32';

/** setRequestId results. */
export const SET_ID_OK = 0;
/** Byte 0 is not a Bolt protocol code, or the header is not in the buffer. */
export const SET_ID_BAD_FRAME = -1;
/** The frame carries a CRC but its content end lies beyond the buffer. */
export const SET_ID_TRUNCATED = -2;

/** The u32 request id of the frame at frameStart, or -1 when byte 0 is not 1 or 2 or the id is out of range. */
export function getRequestId(buf: Buffer, frameStart: number): number {
  const proto = buf[frameStart];
  const at = proto === PROTO_V1 ? frameStart + V1_ID_OFFSET : proto === PROTO_V2 ? frameStart + V2_ID_OFFSET : -1;
  if (at < 0 || at + 4 > buf.length) return -1;
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

/**
 * Overwrite the request id (taken mod 2^32) of the frame at frameStart. For a v2 frame with a
 * CRC trailer (ver1 2, switch bit 0) the CRC over [frameStart, contentEnd) is recomputed and
 * rewritten. The frame must be one decodeFrame accepted. Returns SET_ID_OK or a negative code
 * (the buffer is left untouched on error).
 */
export function setRequestId(buf: Buffer, frameStart: number, id: number): number {
  const proto = buf[frameStart];
  const at = proto === PROTO_V1 ? frameStart + V1_ID_OFFSET : proto === PROTO_V2 ? frameStart + V2_ID_OFFSET : -1;
  return setHeaderU32(buf, frameStart, at, id >>> 0);
}

/**
 * Overwrite the timeout field (ms, i32) of the request frame at frameStart: v1 at offset 10,
 * v2 at 12 (after the codec and switch bytes); the CRC of a v2 frame that has one is
 * recomputed. Same results as setRequestId; a response frame has no timeout (SET_ID_BAD_FRAME).
 */
export function setRequestTimeout(buf: Buffer, frameStart: number, ms: number): number {
  const proto = buf[frameStart];
  const at = proto === PROTO_V1 ? frameStart + V1_ID_OFFSET + 5 : proto === PROTO_V2 ? frameStart + V2_ID_OFFSET + 6 : -1;
  if (at < 0 || buf[frameStart + (proto === PROTO_V1 ? 1 : 2)] === TYPE_RESPONSE) return SET_ID_BAD_FRAME;
  return setHeaderU32(buf, frameStart, at, ms >>> 0);
}

/** Writes a u32 of the fixed header at `at` (-1: not a Bolt frame), fixing a v2 CRC trailer. */
function setHeaderU32(buf: Buffer, frameStart: number, at: number, v: number): number {
  if (at < 0 || at + 4 > buf.length) return SET_ID_BAD_FRAME;
  const proto = buf[frameStart];
  if (proto !== PROTO_V2 || buf[frameStart + 1] !== V2_VER1_CRC || (buf[frameStart + 11] & SWITCH_CRC) === 0) {
    writeU32(buf, at, v);
    return SET_ID_OK;
  }
  const isResponse = buf[frameStart + 2] === TYPE_RESPONSE;
  const fixedLen = isResponse ? V2_RESPONSE_HEADER : V2_REQUEST_HEADER;
  if (frameStart + fixedLen > buf.length) return SET_ID_TRUNCATED;
  const p = frameStart + (isResponse ? 14 : 16);
  const classLen = ((buf[p] << 24) | (buf[p + 1] << 16)) >> 16;
  const headerLen = ((buf[p + 2] << 24) | (buf[p + 3] << 16)) >> 16;
  const contentLen = (buf[p + 4] << 24) | (buf[p + 5] << 16) | (buf[p + 6] << 8) | buf[p + 7];
  if (classLen < 0 || headerLen < 0 || contentLen < 0) return SET_ID_BAD_FRAME;
  const contentEnd = frameStart + fixedLen + classLen + headerLen + contentLen;
  if (contentEnd + CRC_SIZE > buf.length) return SET_ID_TRUNCATED;
  writeU32(buf, at, v);
  writeU32(buf, contentEnd, crc32(buf, frameStart, contentEnd));
  return SET_ID_OK;
}

/** Writes v (an unsigned 32-bit value) big-endian at buf[at, at + 4). */
export function writeU32(buf: Buffer, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}
