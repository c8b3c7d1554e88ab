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
  /** The caller's count of a slot filled by putCounted (-1: filled by get, or empty). */
  private readonly counts = new Int32Array(SLOTS).fill(-1);
  private readonly values: string[] = new Array<string>(SLOTS).fill('');
  /** The byte length of the value getCounted found. */
  spanLen = 0;

  /** buf[start, end) decoded as UTF-8 (as buf.toString('utf8', start, end) would). */
  get(buf: Buffer, start: number, end: number): string {
    const len = end - start;
    if (len <= 0) return '';
    if (len > MAX_LEN) return buf.toString('utf8', start, end);
    const slot = slotOf(buf, start, len);
    if (this.lens[slot] === len && this.equal(slot, buf, start, len)) return this.values[slot];
    // A value not seen (or pushed out) yet: one string, kept for the next requests.
    return this.fill(slot, buf, start, len, -1);
  }

  /**
   * A value the caller knows by a count of its own rather than by its byte length (Hessian: a
   * string's length in UTF-16 units, the bytes still to be measured): the one putCounted kept
   * for `count` whose bytes are all those at buf[start] (within `end`), its byte length in
   * spanLen; null when there is none. Equal bytes measure and decode the same, so a hit spares
   * the caller's measuring walk as well as the decode. The slot is picked from buf[start,
   * start + count): a value has at least one byte per unit.
   */
  getCounted(buf: Buffer, start: number, end: number, count: number): string | null {
    if (count <= 0 || count > MAX_LEN || start + count > end) return null;
    const slot = slotOf(buf, start, count);
    if (this.counts[slot] !== count) return null;
    const len = this.lens[slot];
    if (start + len > end || !this.equal(slot, buf, start, len)) return null;
    this.spanLen = len;
    return this.values[slot];
  }

  /** buf[start, start + len) decoded, kept for getCounted(…, count) (len: what the caller measured). */
  putCounted(buf: Buffer, start: number, len: number, count: number): string {
    if (len <= 0) return '';
    if (len > MAX_LEN || count <= 0 || count > len) return buf.toString('utf8', start, start + len);
    return this.fill(slotOf(buf, start, count), buf, start, len, count);
  }

  /** Whether slot's bytes are buf[start, start + len). */
  private equal(slot: number, buf: Buffer, start: number, len: number): boolean {
    return keptEqual(this.words, this.bytes, slot * MAX_LEN, buf, start, len);
  }

  private fill(slot: number, buf: Buffer, start: number, len: number, count: number): string {
    const v = buf.toString('utf8', start, start + len);
    keep(this.words, this.bytes, slot * MAX_LEN, buf, start, len);
    this.lens[slot] = len;
    this.counts[slot] = count;
    this.values[slot] = v;
    return v;
  }
}

/**
 * Copies buf[start, start + len) to bytes[at ...] and its whole words (word()) to words[at / 4 ...]
 * (`at` a multiple of 4), for keptEqual.
 */
function keep(words: Int32Array, bytes: Buffer, at: number, buf: Buffer, start: number, len: number): void {
  buf.copy(bytes, at, start, start + len);
  const wat = at >> 2;
  for (let i = 0; i < (len & ~3); i += 4) words[wat + (i >> 2)] = word(buf, start + i);
}

/** Whether the len bytes kept at `at` (keep()) are buf[start, start + len): four at a time, then the rest. */
function keptEqual(words: Int32Array, bytes: Buffer, at: number, buf: Buffer, start: number, len: number): boolean {
  const wat = at >> 2;
  const whole = len & ~3;
  let i = 0;
  while (i < whole && words[wat + (i >> 2)] === word(buf, start + i)) i += 4;
  if (i === whole) while (i < len && bytes[at + i] === buf[start + i]) i++;
  return i === len;
}

/**
 * One run of bytes kept to be recognised again (at most RUN_MAX bytes): the last Dubbo request's
 * leading strings (src/protocol/dubbo/body.ts), compared in one pass instead of five lookups.
 */
export class ByteRun {
  static readonly MAX = 256;
  private readonly words = new Int32Array(ByteRun.MAX >> 2);
  private readonly bytes = Buffer.alloc(ByteRun.MAX);
  /** Bytes kept; -1: none. */
  length = -1;

  /** Keeps buf[start, start + len); false (and nothing kept) when longer than MAX. */
  keep(buf: Buffer, start: number, len: number): boolean {
    if (len < 0 || len > ByteRun.MAX) {
      this.length = -1;
      return false;
    }
    keep(this.words, this.bytes, 0, buf, start, len);
    this.length = len;
    return true;
  }

  /** Whether buf holds the kept bytes at `start`, all before `end`. */
  matches(buf: Buffer, start: number, end: number): boolean {
    const len = this.length;
    return len >= 0 && start + len <= end && start + len <= buf.length && keptEqual(this.words, this.bytes, 0, buf, start, len);
  }
}

/** The slot of a value: its length (n) and a few sampled bytes of buf[start, start + n). */
function slotOf(buf: Buffer, start: number, n: number): number {
  const end = start + n;
  const q = n >> 2;
  const h = (n * 31 + buf[start]) * 31 + buf[end - 1] + ((buf[start + q] * 31 + buf[start + 2 * q]) << 5) + (buf[end - 1 - q] << 10);
  return h & (SLOTS - 1);
}
