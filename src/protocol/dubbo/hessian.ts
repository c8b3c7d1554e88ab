// The small part of Hessian 2 a Dubbo proxy needs: read a string (routing keys), skip any
// value without building it (to reach the attachments behind the arguments), read a map of
// string attachments, and write a string (error bodies). Never throws: a negative return is
// a malformed or truncated value.
//
// Tags (Hessian 2.0 serialization grammar):
//   x00-x1f string, len in tag   x20-x2f binary, len in tag   x30-x33 string, 2-byte len
//   x34-x37 binary, 2-byte len   x38-x3f long, 3 bytes        'A'/'B' binary chunk / final
//   'C' class definition         'D' double (8)   'F' false   'H' untyped map ... 'Z'
//   'I' int (4)   'J' date (8)   'K' date minutes (4)   'L' long (8)   'M' typed map ... 'Z'
//   'N' null   'O' object, class ref int   'Q' ref int   'R'/'S' string chunk / final
//   'T' true   'U' typed list ... 'Z'   'V' typed list, int len   'W' list ... 'Z'
//   'X' list, int len   'Y' long (4)   x5b-x5f doubles 0.0, 1.0, byte, short, float
//   x60-x6f object, class ref in tag   x70-x77 typed list, len in tag   x78-x7f list, len in tag
//   x80-xbf int, 1 byte   xc0-xcf int, 2 bytes   xd0-xd7 int, 3 bytes
//   xd8-xef long, 1 byte   xf0-xff long, 2 bytes
// String lengths count UTF-16 chars, not bytes.

import type { StringCache } from '../string-cache';

/** Truncated input: more bytes were needed. */
export const H_TRUNCATED = -1;
/** A tag that is not allowed where it appears. */
export const H_BAD_TAG = -2;
/** Nesting deeper than MAX_DEPTH, or a class reference that was never defined. */
export const H_LIMIT = -3;

const MAX_DEPTH = 64;

/** Result slot of readString (module scratch: the decoder is single-threaded and synchronous). */
export const hs = { value: null as string | null };

/** Byte length of `chars` UTF-16 chars of UTF-8 starting at p, or < 0 when truncated. */
function utf8Span(buf: Buffer, p: number, end: number, chars: number): number {
  const s = p;
  while (chars > 0) {
    if (p >= end) return H_TRUNCATED;
    const b = buf[p];
    if (b < 0x80) p += 1;
    else if (b < 0xe0) p += 2;
    else if (b < 0xf0) p += 3;
    else {
      p += 4;
      chars--; // a 4-byte sequence is a surrogate pair: two chars
    }
    chars--;
  }
  return p > end ? H_TRUNCATED : p - s;
}

/**
 * Reads a string (or null) at p into hs.value; returns the offset after it, or < 0.
 * Only string tags and 'N' are accepted.
 */
export function readString(buf: Buffer, p: number, end: number, cache: StringCache | null = null): number {
  let out: string | null = null;
  for (;;) {
    if (p >= end) return H_TRUNCATED;
    const tag = buf[p];
    let len: number;
    let final = true;
    if (tag <= 0x1f) {
      len = tag;
      p += 1;
    } else if (tag >= 0x30 && tag <= 0x33) {
      if (p + 2 > end) return H_TRUNCATED;
      len = ((tag - 0x30) << 8) | buf[p + 1];
      p += 2;
    } else if (tag === 0x53 || tag === 0x52) {
      if (p + 3 > end) return H_TRUNCATED;
      len = (buf[p + 1] << 8) | buf[p + 2];
      final = tag === 0x53;
      p += 3;
    } else if (tag === 0x4e && out === null) {
      hs.value = null;
      return p + 1;
    } else return H_BAD_TAG;
    // A value in one chunk may repeat from request to request (service, method): the cache's
    // string, found by its length in chars and its bytes (no measuring walk when it is there).
    const cached: boolean = cache !== null && final && out === null;
    let n: number;
    let part: string | null = cached ? (cache as StringCache).getCounted(buf, p, end, len) : null;
    if (part !== null) n = (cache as StringCache).spanLen;
    else {
      n = utf8Span(buf, p, end, len);
      if (n < 0) return n;
      part = cached ? (cache as StringCache).putCounted(buf, p, n, len) : buf.toString('utf8', p, p + n);
    }
    out = out === null ? part : out + part;
    p += n;
    if (final) {
      hs.value = out;
      return p;
    }
  }
}

/** Result slot of readInt. */
export const hi = { value: 0 };

/** Reads an int (the compact int forms and 'I'); returns the offset after it, or < 0. */
export function readInt(buf: Buffer, p: number, end: number): number {
  if (p >= end) return H_TRUNCATED;
  const t = buf[p];
  if (t >= 0x80 && t <= 0xbf) {
    hi.value = t - 0x90;
    return p + 1;
  }
  if (t >= 0xc0 && t <= 0xcf) {
    if (p + 2 > end) return H_TRUNCATED;
    hi.value = ((t - 0xc8) << 8) + buf[p + 1];
    return p + 2;
  }
  if (t >= 0xd0 && t <= 0xd7) {
    if (p + 3 > end) return H_TRUNCATED;
    hi.value = ((t - 0xd4) << 16) + (buf[p + 1] << 8) + buf[p + 2];
    return p + 3;
  }
  if (t === 0x49) {
    if (p + 5 > end) return H_TRUNCATED;
    hi.value = buf.readInt32BE(p + 1);
    return p + 5;
  }
  return H_BAD_TAG;
}

/** Per-body state of skipValue: the field counts of the class definitions seen so far. */
export class SkipState {
  readonly classes: number[] = [];
  reset(): void {
    this.classes.length = 0;
  }
}

/** A list/map type: a string or a type reference (int). */
function skipType(buf: Buffer, p: number, end: number): number {
  if (p >= end) return H_TRUNCATED;
  const t = buf[p];
  if (t <= 0x1f || (t >= 0x30 && t <= 0x33) || t === 0x52 || t === 0x53) return readString(buf, p, end);
  return readInt(buf, p, end);
}

function skipN(buf: Buffer, p: number, end: number, n: number, st: SkipState, depth: number): number {
  for (let i = 0; i < n && p >= 0; i++) p = skipAt(buf, p, end, st, depth);
  return p;
}

function skipUntilZ(buf: Buffer, p: number, end: number, st: SkipState, depth: number): number {
  for (;;) {
    if (p >= end) return H_TRUNCATED;
    if (buf[p] === 0x5a) return p + 1;
    p = skipAt(buf, p, end, st, depth);
    if (p < 0) return p;
  }
}

function fixed(p: number, n: number, end: number): number {
  return p + n > end ? H_TRUNCATED : p + n;
}

function skipAt(buf: Buffer, p: number, end: number, st: SkipState, depth: number): number {
  if (depth > MAX_DEPTH) return H_LIMIT;
  if (p >= end) return H_TRUNCATED;
  const t = buf[p];
  const d = depth + 1;
  if (t <= 0x1f || (t >= 0x30 && t <= 0x33) || t === 0x52 || t === 0x53) return readString(buf, p, end);
  if (t >= 0x80) {
    if (t <= 0xbf) return p + 1;
    if (t <= 0xcf) return fixed(p, 2, end);
    if (t <= 0xd7) return fixed(p, 3, end);
    if (t <= 0xef) return p + 1;
    return fixed(p, 2, end);
  }
  if (t >= 0x20 && t <= 0x2f) return fixed(p, 1 + (t - 0x20), end);
  if (t >= 0x34 && t <= 0x37) {
    if (p + 2 > end) return H_TRUNCATED;
    return fixed(p, 2 + (((t - 0x34) << 8) | buf[p + 1]), end);
  }
  if (t >= 0x38 && t <= 0x3f) return fixed(p, 3, end);
  if (t >= 0x60 && t <= 0x6f) {
    const n = st.classes[t - 0x60];
    if (n === undefined) return H_LIMIT;
    return skipN(buf, p + 1, end, n, st, d);
  }
  if (t >= 0x70 && t <= 0x77) {
    const q = skipType(buf, p + 1, end);
    return q < 0 ? q : skipN(buf, q, end, t - 0x70, st, d);
  }
  if (t >= 0x78 && t <= 0x7f) return skipN(buf, p + 1, end, t - 0x78, st, d);
  switch (t) {
    case 0x41: // 'A' binary chunk, then more chunks
    case 0x42: {
      // 'B' final binary chunk
      let q = p;
      for (;;) {
        if (q + 3 > end) return H_TRUNCATED;
        const tag = buf[q];
        const len = (buf[q + 1] << 8) | buf[q + 2];
        q += 3 + len;
        if (q > end) return H_TRUNCATED;
        if (tag === 0x42) return q;
        if (q >= end) return H_TRUNCATED;
        const nt = buf[q];
        if (nt >= 0x20 && nt <= 0x2f) return fixed(q, 1 + (nt - 0x20), end);
        if (nt !== 0x41 && nt !== 0x42) return H_BAD_TAG;
      }
    }
    case 0x43: {
      // 'C' class definition: type name, field count, field names
      let q = readString(buf, p + 1, end);
      if (q < 0) return q;
      q = readInt(buf, q, end);
      if (q < 0) return q;
      const n = hi.value;
      if (n < 0 || n > 65535) return H_LIMIT;
      for (let i = 0; i < n; i++) {
        q = readString(buf, q, end);
        if (q < 0) return q;
      }
      st.classes.push(n);
      // A definition is not a value: the object (or another definition) that follows is.
      return skipAt(buf, q, end, st, d);
    }
    case 0x44: // 'D' double
    case 0x4a: // 'J' date
    case 0x4c: // 'L' long
      return fixed(p, 9, end);
    case 0x49: // 'I' int
    case 0x4b: // 'K' date in minutes
    case 0x59: // 'Y' long as int32
    case 0x5f: // double as int32 millis
      return fixed(p, 5, end);
    case 0x46: // 'F'
    case 0x54: // 'T'
    case 0x4e: // 'N'
    case 0x5b: // 0.0
    case 0x5c: // 1.0
      return p + 1;
    case 0x5d:
      return fixed(p, 2, end);
    case 0x5e:
      return fixed(p, 3, end);
    case 0x48: // 'H' untyped map: key value ... 'Z'
    case 0x57: // 'W' untyped variable list: value ... 'Z'
      return skipUntilZ(buf, p + 1, end, st, d);
    case 0x4d: // 'M' typed map
    case 0x55: {
      // 'U' typed variable list
      const q = skipType(buf, p + 1, end);
      return q < 0 ? q : skipUntilZ(buf, q, end, st, d);
    }
    case 0x56: {
      // 'V' typed fixed list: type, int length, values
      let q = skipType(buf, p + 1, end);
      if (q < 0) return q;
      q = readInt(buf, q, end);
      if (q < 0) return q;
      return hi.value < 0 ? H_LIMIT : skipN(buf, q, end, hi.value, st, d);
    }
    case 0x58: {
      // 'X' untyped fixed list: int length, values
      const q = readInt(buf, p + 1, end);
      if (q < 0) return q;
      return hi.value < 0 ? H_LIMIT : skipN(buf, q, end, hi.value, st, d);
    }
    case 0x4f: {
      // 'O' object: class reference int, then its fields
      const q = readInt(buf, p + 1, end);
      if (q < 0) return q;
      const n = st.classes[hi.value];
      if (n === undefined) return H_LIMIT;
      return skipN(buf, q, end, n, st, d);
    }
    case 0x51: // 'Q' reference to an earlier value
      return readInt(buf, p + 1, end);
    default:
      return H_BAD_TAG; // '@', 'E', 'G', 'P', 'Z' out of place
  }
}

/** Skips one value at p; returns the offset after it, or < 0. */
export function skipValue(buf: Buffer, p: number, end: number, st: SkipState): number {
  return skipAt(buf, p, end, st, 0);
}

/**
 * Reads an attachments map ('H' or 'M' ... 'Z', or 'N') at p: string keys with string values
 * are put into `out` (other values are skipped). Returns the offset after the map, or < 0.
 */
export function readStringMap(buf: Buffer, p: number, end: number, st: SkipState, out: Map<string, string>): number {
  if (p >= end) return H_TRUNCATED;
  const t = buf[p];
  if (t === 0x4e) return p + 1;
  let q: number;
  if (t === 0x48) q = p + 1;
  else if (t === 0x4d) {
    q = skipType(buf, p + 1, end);
    if (q < 0) return q;
  } else return H_BAD_TAG;
  for (;;) {
    if (q >= end) return H_TRUNCATED;
    if (buf[q] === 0x5a) return q + 1;
    let key: string | null = null;
    const kt = buf[q];
    if (kt <= 0x1f || (kt >= 0x30 && kt <= 0x33) || kt === 0x52 || kt === 0x53) {
      q = readString(buf, q, end);
      if (q < 0) return q;
      key = hs.value;
    } else {
      q = skipValue(buf, q, end, st);
      if (q < 0) return q;
    }
    const vt = q < end ? buf[q] : -1;
    if (key !== null && (vt <= 0x1f || (vt >= 0x30 && vt <= 0x33) || vt === 0x52 || vt === 0x53)) {
      q = readString(buf, q, end);
      if (q < 0) return q;
      if (hs.value !== null) out.set(key, hs.value);
    } else {
      q = skipValue(buf, q, end, st);
      if (q < 0) return q;
    }
  }
}

/** Number of arguments a JVM parameter descriptor names ("Ljava/lang/String;I[J" = 3), or -1. */
export function countJvmArgs(desc: string): number {
  let n = 0;
  let i = 0;
  while (i < desc.length) {
    let c = desc.charCodeAt(i);
    while (c === 0x5b /* [ */) c = desc.charCodeAt(++i);
    if (c === 0x4c /* L */) {
      const semi = desc.indexOf(';', i);
      if (semi < 0) return -1;
      i = semi + 1;
    } else if ('ZBCDFIJSV'.includes(desc[i] ?? '')) i++;
    else return -1;
    n++;
  }
  return n;
}

/** Hessian 2 bytes of a string (the shortest encoding; allocates: error bodies are rare). */
export function encodeString(s: string): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  do {
    // chunks of at most 0x8000 UTF-16 chars ('R' non-final, 'S' or compact final)
    const chunk = s.slice(i, i + 0x8000);
    i += chunk.length;
    const bytes = Buffer.from(chunk, 'utf8');
    const n = chunk.length;
    const last = i >= s.length;
    let head: Buffer;
    if (!last) head = Buffer.from([0x52, n >> 8, n & 0xff]);
    else if (n <= 0x1f) head = Buffer.from([n]);
    else if (n <= 0x3ff) head = Buffer.from([0x30 + (n >> 8), n & 0xff]);
    else head = Buffer.from([0x53, n >> 8, n & 0xff]);
    parts.push(head, bytes);
  } while (i < s.length);
  return Buffer.concat(parts);
}
