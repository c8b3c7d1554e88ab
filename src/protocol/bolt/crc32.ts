// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320; identical to zlib and Java's CRC32)
// over a byte range of a Buffer, without creating views for short ranges.
//
// Two implementations:
// - crc32Table: slicing-by-4 tables in TypeScript, zero allocation. Always available and used
//   for ranges below NATIVE_MIN_LEN (no view object needed).
// - zlib.crc32 (Node >= 20.15 / 22.2): native, used for longer ranges through a subarray view.
// Both are checked against each other by the unit tests.

import * as zlib from 'node:zlib';

const T0 = new Int32Array(256);
const T1 = new Int32Array(256);
const T2 = new Int32Array(256);
const T3 = new Int32Array(256);

for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  T0[n] = c;
}
for (let n = 0; n < 256; n++) {
  T1[n] = (T0[n] >>> 8) ^ T0[T0[n] & 0xff];
  T2[n] = (T1[n] >>> 8) ^ T0[T1[n] & 0xff];
  T3[n] = (T2[n] >>> 8) ^ T0[T2[n] & 0xff];
}

/** Table-driven CRC-32 of buf[start, end). Returns an unsigned 32-bit value. */
export function crc32Table(buf: Uint8Array, start: number, end: number): number {
  let c = -1;
  let i = start;
  const end4 = end - 3;
  while (i < end4) {
    c ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    c = T3[c & 0xff] ^ T2[(c >>> 8) & 0xff] ^ T1[(c >>> 16) & 0xff] ^ T0[c >>> 24];
    i += 4;
  }
  while (i < end) c = T0[(c ^ buf[i++]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

type NativeCrc = (data: Uint8Array, value?: number) => number;
const nativeCrc: NativeCrc | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (zlib as unknown as { crc32: NativeCrc }).crc32 : undefined;

/** True when zlib.crc32 exists in this Node build. */
export const HAS_NATIVE_CRC32 = nativeCrc !== undefined;

/**
 * Ranges at least this long go to zlib. The measured speed crossover on Node 20 x64 is near
 * 200 bytes, but the native call needs a subarray view (one small allocation); from 1 KiB up
 * the native CRC is 2-5x faster and that allocation is noise, below it the decode path stays
 * allocation-free.
 */
const NATIVE_MIN_LEN = 1024;

/** CRC-32 of buf[start, end), unsigned. */
export function crc32(buf: Buffer, start: number, end: number): number {
  if (nativeCrc !== undefined && end - start >= NATIVE_MIN_LEN) {
    return nativeCrc(buf.subarray(start, end)) >>> 0;
  }
  return crc32Table(buf, start, end);
}
