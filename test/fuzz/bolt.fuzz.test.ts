// Deterministic fuzz of the Bolt decoder and header-map scanner: random and mutated frames
// (bit flips, byte overwrites, truncation, length-field corruption, splices) built from the
// golden vectors and from generated frames. Properties checked on every input:
// - nothing throws;
// - decodeFrame returns 0, a known negative code, or a length within [1, end - offset] and
//   <= maxFrameSize, with every section offset inside the frame and a verified CRC;
// - results depend only on bytes in [offset, end): changing everything outside gives the same
//   answer (so nothing outside is read);
// - findHeader/findHeaderValue/decodeHeaders agree with each other and stay inside their range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  BoltFrame,
  DECODE_ERROR_NAMES,
  HEADER_MALFORMED,
  HEADER_NOT_FOUND,
  HeaderValueRange,
  decodeFrame,
  decodeHeaders,
  encodeErrorResponse,
  encodeFrame,
  encodeHeartbeat,
  findHeader,
  findHeaderValue,
  findServiceHeader,
  headerKey,
  type BoltFrameSpec,
} from '../../src/protocol/bolt';
import { prng } from '../helpers/prng';

const SEED = Number(process.env.BOLT_FUZZ_SEED ?? 0x5eed_b017);
const ITERATIONS = Number(process.env.BOLT_FUZZ_ITERATIONS ?? 4000);

const next = prng(SEED);
const rnd = (n: number): number => next() % n;
const pick = <T>(a: readonly T[]): T => a[rnd(a.length)];

const VECTORS = path.join(__dirname, '..', '..', '..', 'test', 'vectors', 'bolt');
const golden = fs
  .readdirSync(VECTORS)
  .filter((f) => f.endsWith('.hex'))
  .sort()
  .map((f) => Buffer.from(fs.readFileSync(path.join(VECTORS, f), 'utf8').replace(/\s+/g, ''), 'hex'));

const KEYS = ['service', 'sofa_head_target_service', 'sofa_head_method_name', 'k', 'rpc_trace_context.sofaTraceId', ''];

function randomString(max: number): string {
  const n = rnd(max + 1);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(rnd(4) === 0 ? 0x400 + rnd(200) : 0x61 + rnd(26));
  return s;
}

function randomSpec(): BoltFrameSpec {
  const proto = 1 + rnd(2);
  const type = rnd(3);
  const pairs: Array<[string | null, string | null]> = [];
  for (let i = rnd(5); i > 0; i--) {
    pairs.push([rnd(8) === 0 ? null : rnd(2) ? pick(KEYS) : randomString(12), rnd(8) === 0 ? null : randomString(20)]);
  }
  return {
    proto,
    ver1: 1 + rnd(2),
    switch: rnd(3) === 0 ? 0 : 1,
    type,
    cmdcode: rnd(4),
    requestId: next(),
    codec: pick([1, 2, 4, 11, 12]),
    timeout: rnd(3) === 0 ? -1 : rnd(10000),
    status: rnd(20),
    className: rnd(3) ? randomString(50) : undefined,
    headers: pairs,
    content: rnd(3) ? Buffer.from(randomString(300)) : undefined,
  };
}

function generated(): Buffer {
  switch (rnd(4)) {
    case 0:
      return encodeHeartbeat(1 + rnd(2), next(), 1 + rnd(2));
    case 1:
      return encodeErrorResponse(1 + rnd(2), 1 + rnd(2), next(), rnd(19), pick([1, 11]), randomString(40), { switch: rnd(2) });
    default:
      return encodeFrame(randomSpec());
  }
}

// Offsets of the length fields for each layout: [classLen, headerLen, contentLen].
function lengthOffsets(b: Buffer): number[] {
  if (b[0] === 1) return b[1] === 0 ? [12, 14, 16] : [14, 16, 18];
  return b[2] === 0 ? [14, 16, 18] : [16, 18, 20];
}

function mutate(src: Buffer): Buffer {
  const b = Buffer.from(src);
  const rounds = 1 + rnd(3);
  let out = b;
  for (let r = 0; r < rounds; r++) {
    switch (rnd(7)) {
      case 0: // bit flip
        if (out.length) out[rnd(out.length)] ^= 1 << rnd(8);
        break;
      case 1: // byte overwrite
        if (out.length) out[rnd(out.length)] = pick([0, 1, 2, 0x7f, 0x80, 0xff, rnd(256)]);
        break;
      case 2: // truncate
        out = out.subarray(0, rnd(out.length + 1));
        break;
      case 3: {
        // length-field corruption
        const offs = lengthOffsets(out);
        const i = rnd(3);
        const at = offs[i];
        const size = i === 2 ? 4 : 2;
        if (at + size <= out.length) {
          const v = pick([0, 1, 3, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, rnd(1 << 16), next()]);
          if (size === 2) out.writeUInt16BE(v & 0xffff, at);
          else out.writeUInt32BE(v >>> 0, at);
        }
        break;
      }
      case 4: {
        // corrupt an int32 inside the body (header-map lengths live there)
        if (out.length >= 8) out.writeInt32BE(pick([-1, -2, 0, 1, 4, 0x7fffffff, -0x80000000, rnd(64)]), rnd(out.length - 3));
        break;
      }
      case 5: // splice with another frame
        out = Buffer.concat([out.subarray(0, rnd(out.length + 1)), pick(golden).subarray(rnd(20))]);
        break;
      default: // append junk
        out = Buffer.concat([out, Buffer.from(Array.from({ length: rnd(16) }, () => rnd(256)))]);
    }
  }
  return out;
}

function input(): Buffer {
  switch (rnd(5)) {
    case 0:
      return mutate(pick(golden));
    case 1:
      return mutate(generated());
    case 2:
      return generated();
    case 3: {
      const n = rnd(64);
      const b = Buffer.from(Array.from({ length: n }, () => rnd(256)));
      if (n) b[0] = 1 + rnd(2);
      return b;
    }
    default:
      return Buffer.concat([generated(), mutate(pick(golden))]);
  }
}

const ERRORS = new Set(Object.keys(DECODE_ERROR_NAMES).map(Number));

/** The input at `offset` inside a buffer padded with `fill` on both sides. */
function embed(data: Buffer, offset: number, fill: number, tail: number): Buffer {
  const b = Buffer.alloc(offset + data.length + tail, fill);
  data.copy(b, offset);
  return b;
}

function checkHeaders(buf: Buffer, start: number, end: number): void {
  const map = decodeHeaders(buf, start, end);
  for (const k of KEYS) {
    const r = findHeader(buf, start, end, k);
    const range = new HeaderValueRange();
    const r2 = findHeaderValue(buf, start, end, headerKey(k), range);
    if (typeof r === 'number') {
      assert.ok(r === HEADER_NOT_FOUND || r === HEADER_MALFORMED, `findHeader returned ${r}`);
      assert.equal(r2, r);
      if (r === HEADER_MALFORMED) assert.equal(map, null);
      else if (map !== null) assert.equal(map.has(k), false);
    } else {
      assert.ok(start <= r[0] && r[0] <= r[1] && r[1] <= end, `value [${r[0]}, ${r[1]}) outside [${start}, ${end})`);
      assert.equal(r2, r[0]);
      assert.deepEqual([range.start, range.end], r);
      assert.notEqual(map, null);
      assert.equal(map?.get(k), buf.toString('utf8', r[0], r[1]));
    }
  }
  const svc = findServiceHeader(buf, start, end, new HeaderValueRange());
  assert.ok(svc === HEADER_NOT_FOUND || svc === HEADER_MALFORMED || (svc >= start && svc <= end));
}

test(`bolt decoder fuzz: ${ITERATIONS} inputs, seed ${SEED}`, () => {
  const t0 = Date.now();
  const outA = new BoltFrame();
  const outB = new BoltFrame();
  const seen = new Map<number, number>();
  for (let it = 0; it < ITERATIONS; it++) {
    const data = input();
    const offset = rnd(8);
    const max = pick([24, 64, 200, 339, 1000, 1 << 20]);
    const a = embed(data, offset, 0x00, rnd(8));
    const b = embed(data, offset, 0xff, rnd(8));
    const end = offset + data.length;
    const ctx = `iteration ${it}: ${data.toString('hex').slice(0, 120)} max ${max}`;
    let ra = 0;
    let rb = 0;
    try {
      ra = decodeFrame(a, offset, end, max, outA);
      rb = decodeFrame(b, offset, end, max, outB);
    } catch (e) {
      assert.fail(`${ctx}: threw ${String(e)}`);
    }
    assert.ok(Number.isInteger(ra), ctx);
    assert.equal(rb, ra, `${ctx}: result depends on bytes outside [offset, end)`);
    seen.set(ra > 0 ? 1 : ra, (seen.get(ra > 0 ? 1 : ra) ?? 0) + 1);
    if (ra > 0) {
      assert.deepEqual(outB, outA, ctx);
      assert.ok(ra <= data.length && ra <= max, ctx);
      const f = outA;
      assert.equal(f.frameLen, ra);
      assert.equal(f.frameStart, offset);
      assert.ok(offset + f.fixedLen === f.classStart && f.classStart <= f.headerStart && f.headerStart <= f.contentStart, ctx);
      assert.ok(f.contentStart <= f.contentEnd && f.contentEnd + (f.hasCrc ? 4 : 0) === offset + ra, ctx);
      assert.ok(f.classLen >= 0 && f.headerLen >= 0 && f.contentLen >= 0, ctx);
      if (f.hasCrc) assert.equal(a.readUInt32BE(f.contentEnd), zlib.crc32(a.subarray(offset, f.contentEnd)), ctx);
      // Header scans inside the frame; identical with the other padding.
      checkHeaders(a, f.headerStart, f.contentStart);
      assert.deepEqual(decodeHeaders(b, f.headerStart, f.contentStart), decodeHeaders(a, f.headerStart, f.contentStart));
    } else if (ra < 0) {
      assert.ok(ERRORS.has(ra), `${ctx}: unknown error code ${ra}`);
    }
    // Header scans over arbitrary ranges of the input must stay inside the range too.
    const hs = offset + rnd(data.length + 1);
    const he = hs + rnd(end - hs + 1);
    checkHeaders(a, hs, he);
    assert.deepEqual(decodeHeaders(b, hs, he), decodeHeaders(a, hs, he), `${ctx}: header range [${hs}, ${he})`);
  }
  // The corpus reaches every outcome, so the properties above are not vacuous.
  for (const code of [0, 1, ...ERRORS]) assert.ok((seen.get(code) ?? 0) > 0, `outcome ${code} never produced: ${JSON.stringify([...seen])}`);
  assert.ok(Date.now() - t0 < 5000, `fuzz took ${Date.now() - t0} ms`);
});

test('bolt stream fuzz: concatenated frames cut into random chunks decode identically', () => {
  const out = new BoltFrame();
  for (let it = 0; it < 200; it++) {
    const frames = Array.from({ length: 1 + rnd(6) }, () => (rnd(3) ? generated() : pick(golden)));
    const stream = Buffer.concat(frames);
    // Feed a growing window, as a connection would, and collect the frames found.
    let start = 0;
    let avail = 0;
    const found: number[] = [];
    while (start < stream.length) {
      avail = Math.min(stream.length, avail + 1 + rnd(64));
      for (;;) {
        const n = decodeFrame(stream, start, avail, 1 << 20, out);
        assert.ok(n >= 0, `stream iteration ${it}: error ${n}`);
        if (n === 0) break;
        found.push(n);
        start += n;
      }
      if (avail === stream.length && start < stream.length) assert.fail(`stream iteration ${it}: stuck at ${start}`);
    }
    assert.deepEqual(found, frames.map((f) => f.length));
  }
});
