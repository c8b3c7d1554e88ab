/**
 * The lean OTLP encoders (src/tracing/otlp.ts) against OpenTelemetry JS's own serializers: the
 * same spans as ReadableSpans give the same protobuf bytes and the same JSON document, so a
 * collector sees what the SDK exporter sent. And the batcher posts to a collector.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer, JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { encodeJson, hrTimeOf, OtlpBatcher, ProtobufTraceEncoder } from '../../src/tracing/otlp';
import { KIND_CLIENT, KIND_SERVER, LightSpan, STATUS_ERROR, type SpanSink } from '../../src/tracing/span';
import { startCollector } from '../helpers/otlp-collector';

const ID = { serviceName: 'svc-ü', scopeName: 'outrigger' };
const resource = resourceFromAttributes({ 'service.name': ID.serviceName, 'telemetry.sdk.name': 'outrigger' });
const scope = { name: 'outrigger' };

function readable(s: LightSpan): ReadableSpan {
  const st = hrTimeOf(s.startMs);
  const en = hrTimeOf(s.endMs);
  return {
    name: s.name,
    kind: s.kind - 1, // the API's SpanKind (SERVER 1, CLIENT 2)
    spanContext: () => ({ traceId: s.traceId, spanId: s.spanId, traceFlags: 1 }),
    parentSpanContext: s.parentSpanId === '' ? undefined : { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: 1, isRemote: s.parentRemote },
    startTime: st,
    endTime: en,
    duration: [0, 0],
    status: s.statusMessage !== '' ? { code: s.statusCode, message: s.statusMessage } : { code: s.statusCode },
    attributes: { ...s.attributes },
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

function spans(): LightSpan[] {
  const ended: LightSpan[] = [];
  const sink: SpanSink = { onEnd: (s) => ended.push(s) };
  const remote = new LightSpan(sink, 'bolt com.example.Svc:1.0 echo', KIND_SERVER, { 'rpc.service': 'com.example.Svc', 'net.peer': '127.0.0.1:5', 'x.ü': 'naïve ☃', ratio: 0.5, flag: true, big: 2 ** 40 }, { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' });
  const root = new LightSpan(sink, 'GET /x', KIND_SERVER, {}, undefined);
  for (let i = 0; i < 300; i++) {
    const c = new LightSpan(sink, 'upstream', KIND_CLIENT, { 'upstream.host': `10.0.0.${i % 250}:80`, 'upstream.cluster': 'c'.repeat(i) }, i % 2 === 0 ? remote : root);
    if (i % 3 === 0) c.setStatus({ code: STATUS_ERROR, message: 'retried' });
    c.setAttribute('response.status_code', i * 1000);
    c.end();
  }
  remote.setAttribute('response.flags', 'UF');
  remote.setStatus({ code: STATUS_ERROR });
  remote.end();
  root.end();
  return ended;
}

test('protobuf: the same bytes as OpenTelemetry JS serializes for the same spans', () => {
  const list = spans();
  const mine = new ProtobufTraceEncoder(ID).encode(list);
  const theirs = ProtobufTraceSerializer.serializeRequest(list.map(readable));
  assert.ok(theirs !== undefined);
  assert.equal(mine.length, theirs.length);
  assert.ok(mine.equals(Buffer.from(theirs)));
  // The encoder is reused batch after batch.
  const again = new ProtobufTraceEncoder(ID);
  again.encode(list.slice(0, 5));
  assert.ok(again.encode(list.slice(5, 9)).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(list.slice(5, 9).map(readable)) as Uint8Array)));
});

test('JSON: the same document as OpenTelemetry JS serializes for the same spans', () => {
  const list = spans().slice(0, 20);
  const mine = JSON.parse(encodeJson(ID, list).toString()) as unknown;
  const theirs = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest(list.map(readable)) as Uint8Array).toString()) as unknown;
  assert.deepEqual(mine, theirs);
});

test('times: Unix nanoseconds exact past 2^53 (fixed64 from seconds and nanoseconds)', () => {
  const [s, ns] = hrTimeOf(performance.now());
  assert.ok(Math.abs(s * 1000 + ns / 1e6 - Date.now()) < 1000);
  assert.ok(ns >= 0 && ns < 1e9 && Number.isInteger(ns));
});

test('batcher: a full batch is posted at once, the rest after the interval, past the queue size dropped', async () => {
  const col = await startCollector();
  try {
    const b = new OtlpBatcher(new URL(col.url), true, ID, { batchSize: 4, batchIntervalMs: 200, maxQueueSize: 6 });
    for (let i = 0; i < 4; i++) new LightSpan(b, 'full', KIND_SERVER, {}, undefined).end();
    await col.waitFor(4, 1000);
    for (let i = 0; i < 6; i++) new LightSpan(b, 'late', KIND_SERVER, {}, undefined).end();
    assert.equal(b.dropped, 0);
    await col.waitFor(10, 3000);
    new LightSpan(b, 'flushed', KIND_SERVER, {}, undefined).end();
    await b.shutdown();
    assert.equal(col.spans.length, 11);
    assert.deepEqual(col.spans.map((s) => s.name).slice(-1), ['flushed']);
    const q = new OtlpBatcher(new URL(col.url), false, ID, { batchSize: 100, batchIntervalMs: 60_000, maxQueueSize: 3 });
    for (let i = 0; i < 5; i++) new LightSpan(q, 'q', KIND_SERVER, {}, undefined).end();
    assert.equal(q.dropped, 2);
    await q.shutdown();
    await col.waitFor(1, 1000, true);
    assert.ok(col.contentTypes.includes('application/x-protobuf'));
    // Protobuf spans are encoded as they end: full batches of batchSize, then the rest.
    const before = col.protobufBodies.length;
    const p = new OtlpBatcher(new URL(col.url), false, ID, { batchSize: 2, batchIntervalMs: 60_000, maxQueueSize: 10 });
    const five = Array.from({ length: 5 }, () => new LightSpan(p, 'p', KIND_SERVER, {}, undefined));
    for (const s of five) s.end();
    await p.shutdown();
    const bodies = col.protobufBodies.slice(before);
    assert.equal(bodies.length, 3);
    const enc = new ProtobufTraceEncoder(ID);
    assert.deepEqual(bodies, [enc.encode(five.slice(0, 2)), enc.encode(five.slice(2, 4)), enc.encode(five.slice(4))]);
  } finally {
    await col.close();
  }
});
