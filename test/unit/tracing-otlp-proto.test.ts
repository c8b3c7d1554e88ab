/**
 * Outrigger's OTLP protobuf encoder (src/tracing/otlp-proto.ts) writes the bytes OpenTelemetry's
 * ProtobufTraceSerializer writes for the same export spans: roots, local and remote parents,
 * error status with and without a message, non-ASCII text, doubles, booleans, integers, strings
 * and messages past 127 bytes (multi-byte lengths), batches past its first buffer; batches it
 * does not cover go to OpenTelemetry's serializer. The exporter posts those bytes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { createExporter, exportIdentity, readableOf } from '../../src/tracing/otlp';
import { encodeSpans } from '../../src/tracing/otlp-proto';
import { KIND_CLIENT, KIND_SERVER, LightSpan, STATUS_ERROR, type SpanSink } from '../../src/tracing/span';
import { startCollector } from '../helpers/otlp-collector';

const ID = exportIdentity('svc-ü');
const REMOTE = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };

/** `n` rounds of: a remote-parented server span, a root, a client child with an error; Outrigger's attribute kinds. */
function spans(n: number): ReadableSpan[] {
  const ended: LightSpan[] = [];
  const sink: SpanSink = { onEnd: (s) => ended.push(s) };
  for (let i = 0; i < n; i++) {
    const remote = new LightSpan(sink, `bolt com.example.Svc:1.0 echo ${'x'.repeat(i % 200)}`, KIND_SERVER, { 'rpc.service': 'com.example.Svc', 'x.ü': 'naïve ☃', ratio: 0.5, flag: true, zero: 0, max: 0xffffffff }, REMOTE);
    const root = new LightSpan(sink, 'GET /x', KIND_SERVER, {}, undefined);
    const c = new LightSpan(sink, 'upstream', KIND_CLIENT, { 'upstream.host': '10.0.0.1:80', long: 'v'.repeat(130 + i) }, remote);
    c.setStatus({ code: STATUS_ERROR, message: i % 2 === 0 ? 'retried ü' : '' });
    c.setAttribute('response.status_code', 503);
    c.end();
    remote.setStatus({ code: STATUS_ERROR });
    remote.end();
    root.setAttribute('ok', false);
    root.end();
  }
  return ended.map((s) => readableOf(s, ID));
}

function otel(batch: ReadableSpan[]): Buffer {
  return Buffer.from(ProtobufTraceSerializer.serializeRequest(batch) as Uint8Array);
}

test('encodeSpans writes OpenTelemetry serializer bytes, one span to batches past its buffer', () => {
  for (const n of [1, 3, 40, 400]) {
    const batch = spans(n);
    assert.deepEqual(Buffer.from(encodeSpans(batch)), otel(batch), `${n * 3} spans`);
  }
  // Twice in a row: the reused buffer leaves nothing of the previous batch.
  const b = spans(2);
  assert.deepEqual(Buffer.from(encodeSpans(b)), otel(b));
});

test('encodeSpans writes Outrigger-shaped batches itself and hands others to OpenTelemetry', () => {
  const own = spans(5);
  const mixed = spans(2);
  const s = readableOf(new LightSpan({ onEnd: () => undefined }, 'neg', KIND_SERVER, { n: -1, huge: 2 ** 40 }, undefined), ID);
  mixed.push(s);
  const expected = otel(mixed);
  const orig = ProtobufTraceSerializer.serializeRequest;
  let calls = 0;
  ProtobufTraceSerializer.serializeRequest = (x) => {
    calls++;
    return orig(x);
  };
  try {
    encodeSpans(own);
    assert.equal(calls, 0, 'its own encoding');
    assert.deepEqual(Buffer.from(encodeSpans(mixed)), expected, 'negative and 64-bit integers: OpenTelemetry');
    assert.equal(calls, 1);
  } finally {
    ProtobufTraceSerializer.serializeRequest = orig;
  }
});

test('the protobuf exporter posts the encoded batch', async () => {
  const col = await startCollector();
  const ex = createExporter(col.url, false) as SpanExporter;
  try {
    const batch = spans(3);
    const code = await new Promise<number>((resolve) => ex.export(batch, (r) => resolve(r.code)));
    assert.equal(code, 0);
    await col.waitFor(1, 10_000, true);
    assert.match(col.contentTypes[0], /application\/x-protobuf/);
    assert.deepEqual(col.protobufBodies[0], otel(batch));
  } finally {
    await ex.shutdown();
    await col.close();
  }
});
