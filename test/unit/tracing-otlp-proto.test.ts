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
import { encodeLightSpans, encodeSpans } from '../../src/tracing/otlp-proto';
import { KIND_CLIENT, KIND_SERVER, LightSpan, STATUS_ERROR, type SpanSink } from '../../src/tracing/span';
import { startCollector } from '../helpers/otlp-collector';

const ID = exportIdentity('svc-ü');
const REMOTE = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };

/** `n` rounds of: a remote-parented server span, a root, a client child with an error; Outrigger's attribute kinds. */
function spans(n: number): ReadableSpan[] {
  return lightSpans(n).map((s) => readableOf(s, ID));
}

function lightSpans(n: number): LightSpan[] {
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
  return ended;
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

test('encodeLightSpans writes the bytes of the lean spans\' adapters, kept texts or not', () => {
  for (const n of [1, 3, 40, 400]) {
    const lean = lightSpans(n);
    const want = otel(lean.map((s) => readableOf(s, ID)));
    assert.deepEqual(Buffer.from(encodeLightSpans(lean, ID.resource, ID.scope) as Uint8Array), want, `${n * 3} spans`);
    // Again: every short text now comes from the table of encoded texts.
    assert.deepEqual(Buffer.from(encodeLightSpans(lean, ID.resource, ID.scope) as Uint8Array), want, `${n * 3} spans, again`);
  }
  // More distinct short texts than the table holds (it is cleared on the way).
  const sink: SpanSink = { onEnd: () => undefined };
  const many = Array.from({ length: 1500 }, (_, i) => {
    const s = new LightSpan(sink, `op-${i}`, KIND_SERVER, { 'peer.address': `10.0.${i >> 8}.${i & 255}:${20000 + i}`, protocol: 'bolt' }, i % 2 === 0 ? REMOTE : undefined);
    s.end();
    return s;
  });
  const want = otel(many.map((s) => readableOf(s, ID)));
  assert.deepEqual(Buffer.from(encodeLightSpans(many, ID.resource, ID.scope) as Uint8Array), want);
  assert.deepEqual(Buffer.from(encodeLightSpans(many, ID.resource, ID.scope) as Uint8Array), want);
  assert.equal(encodeLightSpans([], ID.resource, ID.scope)?.length, 0);
  // An attribute value it does not write: null (the exporter goes through the adapters).
  const neg = new LightSpan(sink, 'neg', KIND_SERVER, { n: -1 }, undefined);
  neg.end();
  assert.equal(encodeLightSpans([...lightSpans(1), neg], ID.resource, ID.scope), null);
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

test('the protobuf exporter with the worker identity posts lean spans as their adapters\' bytes', async () => {
  const col = await startCollector();
  const ex = createExporter(col.url, false, ID) as SpanExporter;
  try {
    const lean = lightSpans(3);
    const sink: SpanSink = { onEnd: () => undefined };
    const neg = new LightSpan(sink, 'neg', KIND_SERVER, { n: -1, huge: 2 ** 40 }, undefined);
    neg.end();
    const batches = [lean, [...lean, neg]];
    for (const b of batches) {
      const code = await new Promise<number>((resolve) => ex.export(b as unknown as ReadableSpan[], (r) => resolve(r.code)));
      assert.equal(code, 0);
    }
    await col.waitFor(2, 10_000, true);
    for (let i = 0; i < batches.length; i++) assert.deepEqual(col.protobufBodies[i], otel(batches[i].map((s) => readableOf(s, ID))), `batch ${i}`);
  } finally {
    await ex.shutdown();
    await col.close();
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
