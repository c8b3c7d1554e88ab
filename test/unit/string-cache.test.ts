// StringCache (src/protocol/string-cache.ts): the strings routing reads from frames, decoded
// once per distinct value; every lookup must give what buf.toString('utf8', start, end) gives.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { StringCache } from '../../src/protocol/string-cache';
import { boltCodec, type BoltXFrame } from '../../src/protocol/bolt/xcodec';
import { HeaderName } from '../../src/protocol/types';
import { rawRequest } from '../helpers/sofa';
import { DubboXFrame, decodeDubboFrame, encodeString, hs, readLeadingStrings, readString } from '../../src/protocol/dubbo';
import { DUBBO_BENCH_SERVICE, dubboRequestTemplate } from '../../bench/load/dubbo';

test('string cache: same text as toString for repeated, colliding, multi-byte, invalid and long values', () => {
  const c = new StringCache();
  const values: Buffer[] = [
    Buffer.from('com.example.BenchService:1.0'),
    Buffer.from('com.example.BenchServicf:1.0'), // differs in one middle byte
    Buffer.from('com.example.BenchService:1.1'),
    Buffer.from('服务.名字:1.0'),
    Buffer.from([0x61, 0xc3, 0x28, 0x62, 0xff]), // invalid UTF-8: replacement characters
    Buffer.from('x'),
    Buffer.alloc(128, 0x41),
    Buffer.alloc(129, 0x42), // longer than a slot: decoded every time
    Buffer.alloc(300, 0x43),
  ];
  // Many distinct values of the same length and ends: slot collisions replace each other.
  for (let i = 0; i < 400; i++) values.push(Buffer.from(`svc.${String(i).padStart(4, '0')}.end`));
  const pad = Buffer.alloc(7, 0x2e);
  for (let round = 0; round < 3; round++) {
    for (const v of values) {
      // At an offset inside a larger buffer, like a header value inside a read chunk.
      const buf = Buffer.concat([pad, v, pad]);
      assert.equal(c.get(buf, pad.length, pad.length + v.length), v.toString('utf8'));
    }
  }
  assert.equal(c.get(Buffer.from('abc'), 1, 1), '');
  // The bytes are copied: a reused read buffer does not change what a later hit returns.
  const buf = Buffer.from('service-a');
  assert.equal(c.get(buf, 0, buf.length), 'service-a');
  buf.write('service-b');
  assert.equal(c.get(buf, 0, buf.length), 'service-b');
});

test('bolt codec: the route key and headers read through the cache match the frame, request after request', () => {
  const frame = boltCodec.newFrame() as BoltXFrame;
  const method = new HeaderName('sofa_head_method_name');
  for (const svc of ['com.a.Svc:1.0', 'com.b.Svc:1.0', 'com.a.Svc:1.0', 'com.a.Svd:1.0']) {
    for (const m of ['echo', 'ping']) {
      const b = rawRequest(7, svc, { headers: { sofa_head_method_name: m } });
      assert.ok(boltCodec.decode(b, 0, b.length, 1 << 20, frame) > 0);
      assert.equal(boltCodec.getRouteKey(b, frame), svc);
      assert.equal(boltCodec.getHeader(b, frame, method), m);
      b.fill(0); // the read chunk is reused for the next request
    }
  }
});

test('hessian strings through the cache (found by their length in chars): same value and end as without it, request after request', () => {
  const c = new StringCache();
  const values = ['com.example.BenchService', 'com.example.BenchServicf', 'sayHello', 'é世🚀', '世界世界', 'abcdefghijkl', 'Ljava/lang/String;', '', 'x'.repeat(128), 'y'.repeat(200)];
  // Same length in chars, other bytes (and byte lengths): 'aé' vs 'ab' vs '世b' vs '🚀' (two UTF-16 units).
  values.push('aé', 'ab', '世b', '🚀', 'a🚀', '🚀a');
  for (let i = 0; i < 300; i++) values.push(`svc.${String(i).padStart(4, '0')}.${i % 3 === 0 ? 'é' : 'e'}nd`);
  const pad = Buffer.alloc(5, 0x2e);
  for (let round = 0; round < 3; round++) {
    for (const v of values) {
      const enc = encodeString(v);
      const buf = Buffer.concat([pad, enc, Buffer.from('tail')]);
      const endPlain = readString(buf, pad.length, buf.length);
      const plain = hs.value;
      const endCached = readString(buf, pad.length, buf.length, c);
      assert.equal(endCached, endPlain, v);
      assert.equal(hs.value, plain);
      assert.equal(plain, v);
      // Truncated: the cache must not answer for bytes beyond the end.
      for (const cut of [1, 2, 3]) {
        if (enc.length - cut <= 0) continue;
        assert.equal(readString(buf, pad.length, pad.length + enc.length - cut, c), readString(buf, pad.length, pad.length + enc.length - cut), `${v} cut ${cut}`);
      }
      buf.fill(0); // a reused read chunk
    }
  }
});

test('Dubbo leading strings: the last request remembered (ByteRun) reads as a fresh parse, one byte apart or cut short', () => {
  // readString without a cache, five times: what readLeadingStrings must fill in.
  const fresh = (buf: Buffer, f: DubboXFrame): (string | null | number)[] | null => {
    const end = f.bodyStart + f.bodyLen;
    const out: (string | null | number)[] = [];
    let p = f.bodyStart;
    for (let i = 0; i < 5; i++) {
      p = readString(buf, p, end);
      if (p < 0) return null;
      out.push(hs.value);
    }
    out.push(p);
    return out;
  };
  const got = (f: DubboXFrame): (string | null | number)[] => [f.dubboVersion, f.service, f.version, f.method, f.paramDesc, f.argsStart];
  const a = dubboRequestTemplate({ method: 'echo' });
  const b = dubboRequestTemplate({ method: 'echp' }); // same length, the method's last byte differs
  const c = dubboRequestTemplate({ service: 'com.example.Other', method: 'echo' });
  const longService = dubboRequestTemplate({ service: 's'.repeat(300) }); // more than a ByteRun keeps
  // a's bytes up to the middle of its method: the remembered run does not fit in the body.
  const cut = Buffer.from(a);
  const f0 = new DubboXFrame();
  decodeDubboFrame(a, 0, a.length, 1 << 20, f0);
  const methodAt = f0.bodyStart + 1 + 5 + 1 + DUBBO_BENCH_SERVICE.length + 1 + 5 + 1;
  cut.writeUInt32BE(methodAt + 2 - f0.bodyStart, 12); // body length: ends inside the method
  const frames: Buffer[] = [a, a, b, a, c, c, a, longService, longService, a, cut, a, b, b];
  const pad = Buffer.alloc(5, 0x2e);
  for (const [i, raw] of frames.entries()) {
    const buf = Buffer.concat([pad.subarray(0, i % 5), raw, pad]); // at varying offsets
    const f = new DubboXFrame();
    assert.ok(decodeDubboFrame(buf, i % 5, buf.length, 1 << 20, f) !== 0 || raw === cut, `frame ${i}`);
    if (raw === cut) {
      f.bodyStart = (i % 5) + 16;
      f.bodyLen = methodAt + 2 - f0.bodyStart;
    }
    const want = fresh(buf, f);
    const ok = readLeadingStrings(buf, f);
    assert.equal(ok, want !== null, `frame ${i}: readable`);
    if (want !== null) assert.deepEqual(got(f), want, `frame ${i}`);
  }
});
