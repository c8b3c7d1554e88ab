// Bolt v1/v2 frame decoder over a byte range of a Buffer (no copies, no allocation per frame).
//
// Bolt v1 (proto 0x01), all integers big-endian:
//
//  request / oneway (22-byte header)
//   0      1      2      3      4      5      6      7      8      9      10     11     12     13
//  +------+------+------+------+------+------+------+------+------+------+------+------+------+------+
//  |proto | type |   cmdcode   | ver2 |         requestId         |codec |          timeout          |
//  +------+------+------+------+------+------+------+------+------+------+------+------+------+------+
//  |  classLen   |  headerLen  |        contentLen         | class | header map | content |
//  +------+------+------+------+------+------+------+------+-------+------------+---------+
//   14     15     16     17     18     19     20     21     22 ...
//
//  response (20-byte header): bytes 10-11 are respStatus (u16) instead of the 4-byte timeout;
//  classLen @12, headerLen @14, contentLen @16, body @20.
//
// Bolt v2 (proto 0x02) inserts ver1 after proto and switch after codec:
//
//   0      1      2      3      4      5      6 .. 9      10     11     12
//  +------+------+------+------+------+------+-----------+------+------+---------------------------+
//  |proto | ver1 | type |   cmdcode   | ver2 | requestId |codec |switch| request: timeout(4)       |
//  +------+------+------+------+------+------+-----------+------+------+  classLen@16 headerLen@18 |
//                                                                      |  contentLen@20, body @24  |
//                                                                      | response: status(2)       |
//                                                                      |  classLen@14 headerLen@16 |
//                                                                      |  contentLen@18, body @22  |
//                                                                      +---------------------------+
//  then class | header map | content | [CRC32 (4), only when ver1 == 2 and switch & 0x01]
//  The CRC covers byte 0 through the end of content and is counted in the frame length here
//  (MOSN leaves it out; Java and Node include it).
//
// classLen and headerLen are int16 and contentLen is int32 as Java reads them: negative values
// are framing errors. frameLen = fixed header + classLen + headerLen + contentLen (+ 4).
//
// Header map (headerLen bytes): repeated { int32 keyLen, key, int32 valueLen, value }, no count;
// -1 means null. See header-map.ts.

import {
  CMD_HEARTBEAT,
  CRC_SIZE,
  DECODE_NEED_MORE,
  ERR_BAD_LENGTH,
  ERR_BAD_VERSION,
  ERR_CRC_MISMATCH,
  ERR_FRAME_TOO_LARGE,
  ERR_UNKNOWN_PROTOCOL,
  ERR_UNKNOWN_TYPE,
  PROTO_V1,
  PROTO_V2,
  SWITCH_CRC,
  TYPE_ONEWAY,
  TYPE_RESPONSE,
  V1_REQUEST_HEADER,
  V1_RESPONSE_HEADER,
  V2_REQUEST_HEADER,
  V2_RESPONSE_HEADER,
  V2_VER1_CRC,
  V2_VER1_PLAIN,
} from './constants';
import { crc32 } from './crc32';
import type { BoltFrame } from './frame';

// Reads are open-coded (buf[i] << 8 | ...) rather than buf.readUInt16BE(): the Buffer methods
// bounds-check and may throw, and every index below is checked against `end` first.

function u16(buf: Buffer, i: number): number {
  return (buf[i] << 8) | buf[i + 1];
}

function i16(buf: Buffer, i: number): number {
  return ((buf[i] << 24) | (buf[i + 1] << 16)) >> 16;
}

function i32(buf: Buffer, i: number): number {
  return (buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3];
}

/**
 * Decode the Bolt frame that starts at `offset`, looking at no byte at or after `end`.
 *
 * Returns the frame length (> 0) when the whole frame is in [offset, end) and `out` is filled;
 * DECODE_NEED_MORE (0) when more bytes are needed; a negative ERR_* code when the stream is
 * broken. An oversized frame is reported from the fixed header alone, before its body arrives.
 * `maxFrameSize` bounds the total length including the header and CRC.
 */
export function decodeFrame(buf: Buffer, offset: number, end: number, maxFrameSize: number, out: BoltFrame): number {
  if (end > buf.length) end = buf.length;
  const avail = end - offset;
  if (avail < 1) return DECODE_NEED_MORE;
  const proto = buf[offset];

  let ver1 = 0;
  let sw = 0;
  let type: number;
  let base: number; // offset of the type byte
  if (proto === PROTO_V1) {
    if (avail < 2) return DECODE_NEED_MORE;
    base = offset + 1;
    type = buf[base];
  } else if (proto === PROTO_V2) {
    if (avail < 2) return DECODE_NEED_MORE;
    ver1 = buf[offset + 1];
    if (ver1 !== V2_VER1_PLAIN && ver1 !== V2_VER1_CRC) return ERR_BAD_VERSION;
    if (avail < 3) return DECODE_NEED_MORE;
    base = offset + 2;
    type = buf[base];
  } else {
    return ERR_UNKNOWN_PROTOCOL;
  }
  if (type > TYPE_ONEWAY) return ERR_UNKNOWN_TYPE;
  const isResponse = type === TYPE_RESPONSE;
  const fixedLen =
    proto === PROTO_V1
      ? isResponse
        ? V1_RESPONSE_HEADER
        : V1_REQUEST_HEADER
      : isResponse
        ? V2_RESPONSE_HEADER
        : V2_REQUEST_HEADER;
  if (avail < fixedLen) return DECODE_NEED_MORE;

  // base+1: cmdcode(2), base+3: ver2, base+4: requestId(4), base+8: codec, then v2 switch.
  let p = base + 9;
  if (proto === PROTO_V2) {
    sw = buf[p];
    if (sw > 0x7f) return ERR_BAD_VERSION;
    p++;
  }
  let timeout = 0;
  let status = 0;
  if (isResponse) {
    status = u16(buf, p);
    p += 2;
  } else {
    timeout = i32(buf, p);
    p += 4;
  }
  const classLen = i16(buf, p);
  const headerLen = i16(buf, p + 2);
  const contentLen = i32(buf, p + 4);
  if (classLen < 0 || headerLen < 0 || contentLen < 0) return ERR_BAD_LENGTH;
  const hasCrc = ver1 === V2_VER1_CRC && (sw & SWITCH_CRC) !== 0;
  // At most 24 + 2 * 32767 + (2^31 - 1) + 4: exact in a double.
  const frameLen = fixedLen + classLen + headerLen + contentLen + (hasCrc ? CRC_SIZE : 0);
  if (frameLen > maxFrameSize) return ERR_FRAME_TOO_LARGE;
  if (avail < frameLen) return DECODE_NEED_MORE;

  const classStart = offset + fixedLen;
  const headerStart = classStart + classLen;
  const contentStart = headerStart + headerLen;
  const contentEnd = contentStart + contentLen;
  if (hasCrc && crc32(buf, offset, contentEnd) !== i32(buf, contentEnd) >>> 0) return ERR_CRC_MISMATCH;

  const cmdcode = u16(buf, base + 1);
  out.proto = proto;
  out.ver1 = ver1;
  out.type = type;
  out.cmdcode = cmdcode;
  out.ver2 = buf[base + 3];
  out.requestId = i32(buf, base + 4) >>> 0;
  out.codec = buf[base + 8];
  out.switch = sw;
  out.timeout = timeout;
  out.status = status;
  out.classLen = classLen;
  out.headerLen = headerLen;
  out.contentLen = contentLen;
  out.frameStart = offset;
  out.fixedLen = fixedLen;
  out.classStart = classStart;
  out.headerStart = headerStart;
  out.contentStart = contentStart;
  out.contentEnd = contentEnd;
  out.hasCrc = hasCrc;
  out.frameLen = frameLen;
  out.isHeartbeat = cmdcode === CMD_HEARTBEAT;
  out.isRequest = !isResponse;
  return frameLen;
}

/** Bytes needed to compute the frame length of a Bolt frame (the largest fixed header). */
export const BOLT_MAX_FIXED_HEADER = V2_REQUEST_HEADER;
