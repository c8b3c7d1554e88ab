// The tracing step on a Dubbo request (src/filters/stream/tracing/tracing.ts with
// src/tracing/dubbo.ts mayCarryTraceContext): a request whose body holds no trace context key is
// not sampled-or-continued from its attachments and they are not decoded at all; a traceparent or
// SOFATracer attachment is found and continued as before; bytes that only look like a key (in an
// argument) cost a decode and change nothing.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { dubboCodec, type DubboXFrame } from '../../src/protocol/dubbo/xcodec';
import { encodeString } from '../../src/protocol/dubbo/hessian';
import { HeaderName, type XCodec } from '../../src/protocol/types';
import { TracingFilter } from '../../src/filters/stream/tracing/tracing';
import type { FilterStream } from '../../src/api/stream-filter';
import type { WorkerTracing } from '../../src/tracing/index';
import type { IncomingContext } from '../../src/tracing/context';
import type { TracingConfig } from '../../src/config/tracing';
import { dubboRequest } from '../helpers/dubbo';

const codec = dubboCodec as unknown as XCodec;
const TID = '0af7651916cd43dd8448eb211c80319c';

/** A tracing setup whose server spans record the incoming context they were given. */
function tracing(ratio: number): { t: WorkerTracing; seen: (IncomingContext | undefined)[] } {
  const seen: (IncomingContext | undefined)[] = [];
  const span = { spanContext: () => ({ traceId: TID, spanId: 'b7ad6b7169203331' }), setAttribute() {}, setStatus() {}, end() {} };
  const otel = { server: (_n: string, _a: unknown, inc: IncomingContext | undefined) => (seen.push(inc), span), client: () => span, ERROR: 2, flush: async () => {}, shutdown: async () => {} };
  const cfg = { samplingRatio: ratio, propagators: [] } as unknown as TracingConfig;
  return { t: { cfg, otel, inject: 0 } as unknown as WorkerTracing, seen };
}

/** A Dubbo stream as the RPC proxy makes it (codec, buf, frame; headers read through the codec). */
function stream(buf: Buffer): { s: FilterStream; frame: DubboXFrame } {
  const frame = codec.newFrame() as unknown as DubboXFrame;
  assert.ok(codec.decode(buf, 0, buf.length, 1 << 20, frame as never) > 0);
  const s = {
    protocol: 'dubbo', codec, buf, frame, trace: null,
    header: (n: string) => codec.getHeader(buf, frame as never, new HeaderName(n)) ?? undefined,
    service: () => 'com.example.S', method: () => 'echo', remoteAddress: () => '127.0.0.1:1',
  };
  return { s: s as unknown as FilterStream, frame };
}

test('Dubbo tracing: no trace context key in the body = attachments not decoded; traceparent and SOFATracer ids continued', () => {
  // Unsampled (ratio 0), no key: nothing read beyond the leading strings.
  {
    const { t, seen } = tracing(0);
    const { s, frame } = stream(dubboRequest(1, 'com.example.S', 'echo', { attachments: { group: 'g', timeout: '3000' } }));
    new TracingFilter(t).decode(s);
    assert.equal(frame.attachments, null, 'the attachments were not decoded');
    assert.deepEqual(seen, []);
  }
  // A sampled traceparent attachment: continued (ratio 0 does not matter).
  {
    const { t, seen } = tracing(0);
    const { s } = stream(dubboRequest(2, 'com.example.S', 'echo', { attachments: { group: 'g', traceparent: `00-${TID}-00f067aa0ba902b7-01` } }));
    new TracingFilter(t).decode(s);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.traceId, TID);
    assert.equal(seen[0]?.spanId, '00f067aa0ba902b7');
  }
  // SOFATracer's trace id attachment: continued with that trace.
  {
    const { t, seen } = tracing(1);
    const { s } = stream(dubboRequest(3, 'com.example.S', 'echo', { attachments: { 'rpc_trace_context.sofaTraceId': 'ac1b0a2d1590000000001000', 'rpc_trace_context.sofaRpcId': '0.1' } }));
    new TracingFilter(t).decode(s);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.traceId, '00000000ac1b0a2d1590000000001000');
  }
  // "traceparent" only inside an argument: decoded, no context, a new trace at ratio 1.
  {
    const { t, seen } = tracing(1);
    const { s, frame } = stream(dubboRequest(4, 'com.example.S', 'echo', { args: encodeString('about traceparent'), attachments: { group: 'g' } }));
    new TracingFilter(t).decode(s);
    assert.notEqual(frame.attachments, null);
    assert.deepEqual(seen, [undefined]);
  }
});
