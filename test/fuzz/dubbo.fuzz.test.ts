// Deterministic fuzz of the Dubbo decoder and the hessian2 routing reader: mutated golden
// vectors (bit flips, byte overwrites, truncation, length-field corruption, splices) and random
// bytes. Properties checked on every input:
// - nothing throws;
// - frameLength/decode return NEED_MORE, a negative code, or a length within [16, end - start]
//   and <= maxFrameSize, and both agree;
// - results depend only on bytes in [start, end) (bytes around the range are randomized);
// - routing lookups return a string, undefined or null, and reading them never changes the frame;
// - the frame reader fed the same bytes in random splits yields the same frames as one read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dubboCodec, readStringMap, SkipState, skipValue } from '../../src/protocol/dubbo';
import { HeaderName, NEED_MORE } from '../../src/protocol/types';
import { FrameReader } from '../../src/stream/frame-reader';
import type { XFrame } from '../../src/protocol/types';
import { prng } from '../helpers/prng';

const SEED = Number(process.env.DUBBO_FUZZ_SEED ?? 0xdabb_5eed);
const ITERATIONS = Number(process.env.DUBBO_FUZZ_ITERATIONS ?? 5000);

const next = prng(SEED);
const rnd = (n: number): number => next() % n;

const VECTORS = path.join(__dirname, '..', '..', '..', 'test', 'vectors', 'dubbo');
const golden = fs
  .readdirSync(VECTORS)
  .filter((f) => f.endsWith('.hex'))
  .sort()
  .map((f) => Buffer.from(fs.readFileSync(path.join(VECTORS, f), 'utf8').replace(/\s+/g, ''), 'hex'));

const NAMES = ['service', 'version', 'method', 'dubbo', 'group', 'interface', 'path', 'application'].map((n) => new HeaderName(n));

function mutate(src: Buffer): Buffer {
  const b = Buffer.from(src);
  switch (rnd(6)) {
    case 0:
      for (let i = 0, n = 1 + rnd(4); i < n; i++) b[rnd(b.length)] ^= 1 << rnd(8);
      return b;
    case 1:
      for (let i = 0, n = 1 + rnd(4); i < n; i++) b[rnd(b.length)] = rnd(256);
      return b;
    case 2:
      return b.subarray(0, rnd(b.length + 1));
    case 3:
      if (b.length >= 16) b.writeUInt32BE(rnd(2) ? rnd(b.length * 2) : next(), 12);
      return b;
    case 4: {
      const o = golden[rnd(golden.length)];
      const cut = rnd(Math.min(b.length, o.length) + 1);
      return Buffer.concat([b.subarray(0, cut), o.subarray(cut)]);
    }
    default: {
      const r = Buffer.alloc(rnd(64));
      for (let i = 0; i < r.length; i++) r[i] = rnd(256);
      if (r.length >= 2 && rnd(2)) {
        r[0] = 0xda;
        r[1] = 0xbb;
      }
      return r;
    }
  }
}

function checkOne(input: Buffer, max: number): void {
  const pad = rnd(5);
  const padded = Buffer.alloc(input.length + 2 * pad);
  for (let i = 0; i < padded.length; i++) padded[i] = rnd(256);
  input.copy(padded, pad);
  const start = pad;
  const end = pad + input.length;
  const len = dubboCodec.frameLength(padded, start, end, max);
  const f = dubboCodec.newFrame();
  const r = dubboCodec.decode(padded, start, end, max, f);
  if (len > 0) {
    assert.ok(len >= 16 && len <= max, `length ${len}`);
    if (len <= end - start) {
      assert.ok(r === len || r < 0, `decode ${r} vs frameLength ${len}`);
    } else assert.equal(r, NEED_MORE);
  } else assert.ok(r === len || (len === NEED_MORE && r === NEED_MORE), `decode ${r} vs frameLength ${len}`);
  // Same bytes elsewhere with different surroundings: same answers.
  const copy = Buffer.alloc(input.length + 3);
  copy.fill(0xda);
  input.copy(copy, 1);
  assert.equal(dubboCodec.frameLength(copy, 1, 1 + input.length, max), len);
  if (r > 0) {
    const snapshot = Buffer.from(padded.subarray(start, start + r));
    const keys: unknown[] = [];
    for (const n of NAMES) {
      const v = dubboCodec.getHeader(padded, f, n);
      assert.ok(v === undefined || v === null || typeof v === 'string');
      keys.push(v);
    }
    const rk = dubboCodec.getRouteKey(padded, f);
    assert.ok(rk === undefined || rk === null || typeof rk === 'string');
    assert.deepEqual(padded.subarray(start, start + r), snapshot, 'lookups never write');
    const f2 = dubboCodec.newFrame();
    assert.equal(dubboCodec.decode(copy, 1, 1 + input.length, max, f2), r);
    assert.deepEqual(NAMES.map((n) => dubboCodec.getHeader(copy, f2, n)), keys, 'lookups read inside the frame only');
  }
}

test(`Dubbo decoder fuzz: ${ITERATIONS} mutated and random inputs (seed ${SEED})`, () => {
  for (let i = 0; i < ITERATIONS; i++) {
    const base = golden[rnd(golden.length)];
    const input = rnd(8) === 0 ? base : mutate(rnd(3) === 0 ? mutate(base) : base);
    checkOne(input, rnd(4) === 0 ? 64 : 1 << 20);
  }
});

test('hessian2 skip/map readers on random bytes: never throw, stay in range', () => {
  const st = new SkipState();
  for (let i = 0; i < ITERATIONS; i++) {
    const base = golden[rnd(golden.length)].subarray(16);
    const b = rnd(2) ? mutate(base) : Buffer.from(Array.from({ length: rnd(48) }, () => rnd(256)));
    st.reset();
    const p = rnd(b.length + 1);
    const r = skipValue(b, p, b.length, st);
    assert.ok(r < 0 || (r > p && r <= b.length), `skip ${r} from ${p} of ${b.length}`);
    const m = new Map<string, string>();
    const q = readStringMap(b, p, b.length, st, m);
    assert.ok(q < 0 || (q > p && q <= b.length));
  }
});

test('frame reader: random splits give the same frames as one read', () => {
  for (let round = 0; round < 200; round++) {
    const frames = Array.from({ length: 1 + rnd(6) }, () => golden[rnd(golden.length)]);
    const stream = Buffer.concat(frames);
    const collect = (splits: number[]): string[] => {
      const out: string[] = [];
      const reader = new FrameReader<XFrame>(dubboCodec, 1 << 20);
      const sink = {
        onFrame: (buf: Buffer, f: XFrame) => {
          out.push(buf.toString('hex', f.frameStart, f.frameStart + f.frameLen));
          return true;
        },
        onDecodeError: (code: number) => {
          out.push(`error ${code}`);
        },
      };
      let p = 0;
      for (const s of [...splits, stream.length]) {
        const chunk = Buffer.from(stream.subarray(p, Math.max(p, s)));
        reader.feed(chunk, 0, chunk.length, sink);
        p = Math.max(p, s);
      }
      return out;
    };
    const whole = collect([]);
    assert.deepEqual(whole, frames.map((f) => f.toString('hex')));
    const splits = Array.from({ length: rnd(6) }, () => rnd(stream.length)).sort((a, b) => a - b);
    assert.deepEqual(collect(splits), whole);
  }
});
