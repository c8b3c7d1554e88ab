// The Bolt header map (SOFARPC SimpleMapSerializer layout), read lazily in place.
//
//  +-----------+-----------+-----------+-----------+   repeated until headerLen is used up,
//  | keyLen i32| key bytes | valLen i32| val bytes |   no count prefix; length -1 = null,
//  +-----------+-----------+-----------+-----------+   0 = empty string; UTF-8 text.
//
// Pairs with a null key or value are skipped (Java drops them, MOSN skips them). When a key
// repeats, the last pair wins, as in the Java HashMap peers decode into; findHeader therefore
// walks the whole map, which also validates it: any length that is below -1 or runs past the
// end of the map makes the map malformed.

import { HEADER_MALFORMED, HEADER_NOT_FOUND, HEADER_SERVICE, HEADER_SERVICE_OLD } from './constants';

/** The value range found by findHeaderValue: buf[start, end). */
export class HeaderValueRange {
  start = 0;
  end = 0;
}

const keyCache = new Map<string, Buffer>();
const KEY_CACHE_MAX = 1024;

/** Pre-encode a header key once (UTF-8) for the byte comparisons of findHeader. */
export function headerKey(key: string): Buffer {
  let b = keyCache.get(key);
  if (b === undefined) {
    b = Buffer.from(key, 'utf8');
    if (keyCache.size < KEY_CACHE_MAX) keyCache.set(key, b);
  }
  return b;
}

function i32(buf: Buffer, i: number): number {
  return (buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3];
}

function keyEquals(buf: Buffer, at: number, key: Buffer, len: number): boolean {
  for (let j = 0; j < len; j++) if (buf[at + j] !== key[j]) return false;
  return true;
}

/**
 * Find `key` in the header map buf[headerStart, headerEnd) without decoding anything.
 * Returns the value start offset (and fills `out` with [start, end)), HEADER_NOT_FOUND (-1),
 * or HEADER_MALFORMED (-2). Never reads outside [headerStart, headerEnd). No allocation.
 */
export function findHeaderValue(buf: Buffer, headerStart: number, headerEnd: number, key: Buffer, out: HeaderValueRange): number {
  if (headerEnd > buf.length) headerEnd = buf.length;
  const klen = key.length;
  let p = headerStart;
  let found = HEADER_NOT_FOUND;
  let foundEnd = 0;
  while (p < headerEnd) {
    if (headerEnd - p < 4) return HEADER_MALFORMED;
    const kl = i32(buf, p);
    p += 4;
    if (kl < -1 || kl > headerEnd - p) return HEADER_MALFORMED;
    const kStart = p;
    if (kl > 0) p += kl;
    if (headerEnd - p < 4) return HEADER_MALFORMED;
    const vl = i32(buf, p);
    p += 4;
    if (vl < -1 || vl > headerEnd - p) return HEADER_MALFORMED;
    const vStart = p;
    if (vl > 0) p += vl;
    if (kl === klen && vl !== -1 && keyEquals(buf, kStart, key, klen)) {
      found = vStart;
      foundEnd = p;
    }
  }
  if (found >= 0) {
    out.start = found;
    out.end = foundEnd;
  }
  return found;
}

const scratch = new HeaderValueRange();

/**
 * Find `key` in the header map buf[headerStart, headerEnd).
 * Returns [valueStart, valueEnd], HEADER_NOT_FOUND (-1) or HEADER_MALFORMED (-2).
 * Allocates the result pair; the hot path should call findHeaderValue with a reused range.
 */
export function findHeader(buf: Buffer, headerStart: number, headerEnd: number, key: string | Buffer): [number, number] | number {
  const k = typeof key === 'string' ? headerKey(key) : key;
  const r = findHeaderValue(buf, headerStart, headerEnd, k, scratch);
  return r < 0 ? r : [scratch.start, scratch.end];
}

const SERVICE_KEY = headerKey(HEADER_SERVICE);
const SERVICE_OLD_KEY = headerKey(HEADER_SERVICE_OLD);

/**
 * The routing key of a SOFARPC request: `service`, else `sofa_head_target_service`.
 * Same results as findHeaderValue.
 */
export function findServiceHeader(buf: Buffer, headerStart: number, headerEnd: number, out: HeaderValueRange): number {
  const r = findHeaderValue(buf, headerStart, headerEnd, SERVICE_KEY, out);
  if (r !== HEADER_NOT_FOUND) return r;
  return findHeaderValue(buf, headerStart, headerEnd, SERVICE_OLD_KEY, out);
}

/**
 * Decode the whole header map into a Map (tests, logging, rare paths).
 * Returns null when the map is malformed. Null keys/values are dropped; the last duplicate wins.
 */
export function decodeHeaders(buf: Buffer, headerStart: number, headerEnd: number): Map<string, string> | null {
  if (headerEnd > buf.length) headerEnd = buf.length;
  const map = new Map<string, string>();
  let p = headerStart;
  while (p < headerEnd) {
    if (headerEnd - p < 4) return null;
    const kl = i32(buf, p);
    p += 4;
    if (kl < -1 || kl > headerEnd - p) return null;
    const kStart = p;
    if (kl > 0) p += kl;
    if (headerEnd - p < 4) return null;
    const vl = i32(buf, p);
    p += 4;
    if (vl < -1 || vl > headerEnd - p) return null;
    const vStart = p;
    if (vl > 0) p += vl;
    if (kl === -1 || vl === -1) continue;
    map.set(buf.toString('utf8', kStart, kStart + kl), buf.toString('utf8', vStart, vStart + vl));
  }
  return map;
}

export type HeaderInput = Map<string, string | null> | Record<string, string | null> | ReadonlyArray<readonly [string | null, string | null]>;

function pairsOf(headers: HeaderInput): Array<readonly [string | null, string | null]> {
  if (Array.isArray(headers)) return headers as Array<readonly [string | null, string | null]>;
  if (headers instanceof Map) return [...headers.entries()];
  return Object.entries(headers as Record<string, string | null>);
}

/** Encoded size of a header map: sum of 8 + |key| + |value| (null counts as 0 bytes). */
export function headersByteLength(headers: HeaderInput): number {
  let n = 0;
  for (const [k, v] of pairsOf(headers)) {
    n += 8 + (k === null ? 0 : Buffer.byteLength(k, 'utf8')) + (v === null ? 0 : Buffer.byteLength(v, 'utf8'));
  }
  return n;
}

/** Write a header map at buf[offset]; returns the offset after it. Null keys/values are written as length -1. */
export function writeHeaders(buf: Buffer, offset: number, headers: HeaderInput): number {
  let p = offset;
  for (const [k, v] of pairsOf(headers)) {
    for (const s of [k, v]) {
      if (s === null) {
        buf.writeInt32BE(-1, p);
        p += 4;
      } else {
        const n = buf.write(s, p + 4, 'utf8');
        buf.writeInt32BE(n, p);
        p += 4 + n;
      }
    }
  }
  return p;
}

/** Encode a header map into a new Buffer. */
export function encodeHeaders(headers: HeaderInput): Buffer {
  const buf = Buffer.allocUnsafe(headersByteLength(headers));
  writeHeaders(buf, 0, headers);
  return buf;
}
