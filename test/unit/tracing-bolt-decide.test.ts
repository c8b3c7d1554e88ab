// Tracing's sampling decision on a Bolt request (src/filters/stream/tracing/tracing.ts decide):
// the headers are read one by one only when the header map holds a key an incoming context is
// read from (src/tracing/bolt.ts boltMayCarryTraceContext); a request without one (most, at a
// low sampling ratio) costs one walk over the map. The decisions are the same as before.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { FilterStream } from '../../src/api/stream-filter';
import { TracingFilter } from '../../src/filters/stream/tracing/tracing';
import { encodeFrame } from '../../src/protocol/bolt/encoder';
import { PROTO_V1, TYPE_REQUEST } from '../../src/protocol/bolt/constants';
import { boltCodec, ROUTE_UNKNOWN, type BoltXFrame } from '../../src/protocol/bolt/xcodec';
import { HeaderName, type XFrame } from '../../src/protocol/types';
import type { WorkerTracing } from '../../src/tracing/index';
import { boltMayCarryTraceContext } from '../../src/tracing/bolt';

function frameOf(headers: [string, string][], offset = 0): { buf: Buffer; frame: XFrame } {
  const raw = encodeFrame({ proto: PROTO_V1, type: TYPE_REQUEST, cmdcode: 1, requestId: 3, codec: 1, timeout: 1000, className: 'com.alipay.sofa.rpc.core.request.SofaRequest', headers, content: Buffer.from('body') });
  const buf = Buffer.concat([Buffer.alloc(offset, 0xee), raw, Buffer.from('rpc_trace_context.sofaTraceId')]);
  const frame = boltCodec.newFrame();
  assert.ok(boltCodec.decode(buf, offset, buf.length, 1 << 20, frame) > 0);
  return { buf, frame };
}

/** A light view's shape (codec, buf, frame) with its header reads counted. */
function stream(headers: [string, string][], offset = 0): FilterStream & { reads: string[]; buf: Buffer; frame: XFrame } {
  const { buf, frame } = frameOf(headers, offset);
  const reads: string[] = [];
  const s = {
    protocol: 'bolt',
    codec: boltCodec,
    buf,
    frame,
    reads,
    header(name: string): string | undefined {
      reads.push(name);
      const v = boltCodec.getHeader(buf, frame as never, new HeaderName(name));
      return v ?? undefined;
    },
  };
  return s as unknown as FilterStream & { reads: string[]; buf: Buffer; frame: XFrame };
}

function tracing(ratio: number): TracingFilter {
  return new TracingFilter({ cfg: { samplingRatio: ratio }, otel: {}, inject: 0 } as unknown as WorkerTracing);
}

const SVC: [string, string][] = [['service', 'com.example.Echo:1.0'], ['sofa_head_method_name', 'echo']];

test('bolt decide: no trace context key in the header map: no header read, the ratio decides', () => {
  // The frame is followed by bytes that spell a key (the next frame of the read): not looked at.
  const s = stream(SVC, 7);
  assert.equal(tracing(0).decide(s), false);
  assert.equal(tracing(1).decide(s), true);
  assert.deepEqual(s.reads, []);
  assert.equal(boltMayCarryTraceContext(s), false);
});

test('bolt decide: traceparent or SOFATracer ids present: read and honoured', () => {
  const sampledOff = stream([...SVC, ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00']]);
  assert.equal(tracing(1).decide(sampledOff), false, 'the caller said not sampled');
  assert.ok(sampledOff.reads.includes('traceparent'));
  const sampledOn = stream([['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'], ...SVC]);
  assert.equal(tracing(0).decide(sampledOn), true, 'the caller said sampled');
  const sofa = stream([...SVC, ['rpc_trace_context.sofaTraceId', '0a0b0c0d'], ['rpc_trace_context.sofaRpcId', '0.1']]);
  assert.equal(boltMayCarryTraceContext(sofa), true);
  tracing(0).decide(sofa);
  assert.ok(sofa.reads.includes('rpc_trace_context.sofaTraceId'));
});

test('bolt decide: a header map the walk cannot vouch for (null value, bad length) goes to the reads', () => {
  // A null value (-1 length): the walk leaves it to the reads, which skip the pair.
  const nul = stream(SVC);
  const f = nul.frame as unknown as { headerStart: number };
  const buf = nul.buf as Buffer;
  const vAt = f.headerStart + 4 + 'service'.length;
  buf.writeInt32BE(-1, vAt);
  assert.equal(boltMayCarryTraceContext(nul), true);
  assert.equal(tracing(0).decide(nul), false);
  assert.ok(nul.reads.includes('traceparent'), 'read one by one');
  const bad = stream(SVC);
  (bad.buf as Buffer).writeInt32BE(0x7fffffff, (bad.frame as unknown as { headerStart: number }).headerStart);
  assert.equal(boltMayCarryTraceContext(bad), true);
  assert.equal(tracing(1).decide(bad), true, 'a malformed map: no context, the ratio decides');
});

test('head sampling without a trace id: one Math.random per sampled request, each request still sampled with the ratio, independently', () => {
  const t = tracing(0.05);
  const s = { protocol: 'http1', header: (): string | undefined => undefined } as unknown as FilterStream;
  const orig = Math.random;
  let draws = 0;
  Math.random = () => {
    draws++;
    return orig();
  };
  const n = 200_000;
  let sampled = 0;
  let afterSampled = 0;
  let prev = false;
  try {
    for (let i = 0; i < n; i++) {
      const d = t.decide(s);
      if (d) {
        sampled++;
        if (prev) afterSampled++;
      }
      prev = d;
    }
  } finally {
    Math.random = orig;
  }
  assert.ok(Math.abs(sampled - n * 0.05) < n * 0.05 * 0.05, `sampled ${sampled} of ${n} at 5 %`);
  assert.ok(draws <= sampled + 1, `${draws} draws for ${sampled} sampled requests`);
  // Independent draws: a request right after a sampled one is sampled with the ratio too (a fixed period would never).
  const p = afterSampled / sampled;
  assert.ok(p > 0.03 && p < 0.07, `P(sampled | previous sampled) = ${p}`);
});

test('bolt decide: the walk leaves the routing key on the frame (service, else sofa_head_target_service, last wins): the router reads it without a walk', () => {
  const cases: [string, [string, string][], string | undefined][] = [
    ['service first', [['service', 'a.A:1.0'], ['sofa_head_target_service', 'b.B:1.0']], 'a.A:1.0'],
    ['target only', [['sofa_head_method_name', 'm'], ['sofa_head_target_service', 'b.B:1.0']], 'b.B:1.0'],
    ['target, then service', [['sofa_head_target_service', 'b.B:1.0'], ['service', 'a.A:1.0']], 'a.A:1.0'],
    ['duplicates: the last', [['service', 'a.A:1.0'], ['x', 'y'], ['service', 'c.C:1.0']], 'c.C:1.0'],
    ['neither', [['sofa_head_method_name', 'm']], undefined],
  ];
  for (const [what, hs, want] of cases) {
    const s = stream(hs, 3);
    const f = s.frame as unknown as BoltXFrame;
    assert.equal(f.routeStart, ROUTE_UNKNOWN, what);
    assert.equal(boltMayCarryTraceContext(s), false, what);
    assert.notEqual(f.routeStart, ROUTE_UNKNOWN, `${what}: the walk found the routing key`);
    assert.equal(boltCodec.getRouteKey(s.buf, f), want, what);
    // The same as the router's own walk on a fresh decode.
    const fresh = frameOf(hs, 3);
    assert.equal((fresh.frame as unknown as BoltXFrame).routeStart, ROUTE_UNKNOWN);
    assert.equal(boltCodec.getRouteKey(fresh.buf, fresh.frame as never), want, `${what}: router's walk`);
  }
  // A trace context key stops the walk: nothing is left on the frame; a new decode forgets it.
  const t = stream([['service', 'a.A:1.0'], ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']]);
  assert.equal(boltMayCarryTraceContext(t), true);
  assert.equal((t.frame as unknown as BoltXFrame).routeStart, ROUTE_UNKNOWN);
  assert.equal(boltCodec.getRouteKey(t.buf, t.frame as never), 'a.A:1.0');
  const s = stream(SVC);
  boltMayCarryTraceContext(s);
  assert.ok(boltCodec.decode(s.buf, 0, s.buf.length, 1 << 20, s.frame as never) > 0);
  assert.equal((s.frame as unknown as BoltXFrame).routeStart, ROUTE_UNKNOWN, 'decode resets it');
});
