/**
 * The export of lean spans (src/tracing/otlp.ts) through OpenTelemetry JS: the ReadableSpan
 * adapters serialize (OpenTelemetry's own JSON serializer) to the spans' ids, parent links, kinds,
 * attributes, status and times; the batcher hands OpenTelemetry's exporters batches of the
 * configured size, drops past the queue size, and the OTLPTraceExporter (protobuf) and the JSON
 * exporter post them to a collector.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { createExporter, exportIdentity, hrTimeOf, OtlpBatcher, readableOf } from '../../src/tracing/otlp';
import { KIND_CLIENT, KIND_SERVER, LightSpan, STATUS_ERROR, type SpanSink } from '../../src/tracing/span';
import { startCollector } from '../helpers/otlp-collector';

const ID = exportIdentity('svc-ü');
const REMOTE = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };

function spans(): LightSpan[] {
  const ended: LightSpan[] = [];
  const sink: SpanSink = { onEnd: (s) => ended.push(s) };
  const remote = new LightSpan(sink, 'bolt com.example.Svc:1.0 echo', KIND_SERVER, { 'rpc.service': 'com.example.Svc', 'x.ü': 'naïve ☃', ratio: 0.5, flag: true, big: 2 ** 40 }, REMOTE);
  const root = new LightSpan(sink, 'GET /x', KIND_SERVER, {}, undefined);
  const c = new LightSpan(sink, 'upstream', KIND_CLIENT, { 'upstream.host': '10.0.0.1:80' }, remote);
  c.setStatus({ code: STATUS_ERROR, message: 'retried' });
  c.setAttribute('response.status_code', 503);
  c.end();
  remote.setStatus({ code: STATUS_ERROR });
  remote.end();
  root.end();
  return ended;
}

interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: Record<string, unknown> }[];
  status: { code?: number; message?: string };
  flags: number;
}

interface JsonDoc {
  resourceSpans: { resource: { attributes: { key: string; value: Record<string, unknown> }[] }; scopeSpans: { scope: { name: string }; spans: JsonSpan[] }[] }[];
}

const nanos = (t: [number, number]): string => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();

test('adapter: OpenTelemetry serializes the lean spans with their ids, parents, kinds, attributes, status and times', () => {
  const list = spans();
  const doc = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest(list.map((s) => readableOf(s, ID))) as Uint8Array).toString()) as JsonDoc;
  assert.equal(doc.resourceSpans.length, 1);
  const rs = doc.resourceSpans[0];
  assert.deepEqual(rs.resource.attributes.find((a) => a.key === 'service.name')?.value, { stringValue: 'svc-ü' });
  assert.equal(rs.scopeSpans.length, 1);
  assert.equal(rs.scopeSpans[0].scope.name, 'outrigger');
  const out = rs.scopeSpans[0].spans;
  assert.deepEqual(
    out.map((s) => [s.name, s.kind, s.traceId, s.spanId, s.parentSpanId ?? '', s.flags, s.status.code ?? 0, s.status.message ?? '']),
    [
      ['upstream', 3, REMOTE.traceId, list[0].spanId, list[1].spanId, 0x101, 2, 'retried'],
      ['bolt com.example.Svc:1.0 echo', 2, REMOTE.traceId, list[1].spanId, REMOTE.spanId, 0x301, 2, ''],
      ['GET /x', 2, list[2].traceId, list[2].spanId, '', 0x101, 0, ''],
    ],
  );
  assert.match(list[2].traceId, /^[0-9a-f]{32}$/);
  assert.deepEqual(
    out[1].attributes.map((a) => [a.key, a.value]),
    [
      ['rpc.service', { stringValue: 'com.example.Svc' }],
      ['x.ü', { stringValue: 'naïve ☃' }],
      ['ratio', { doubleValue: 0.5 }],
      ['flag', { boolValue: true }],
      ['big', { intValue: 2 ** 40 }],
    ],
  );
  assert.deepEqual(out[0].attributes.map((a) => a.key), ['upstream.host', 'response.status_code']);
  for (let i = 0; i < 3; i++) {
    assert.equal(out[i].startTimeUnixNano, nanos(hrTimeOf(list[i].startMs)));
    assert.equal(out[i].endTimeUnixNano, nanos(hrTimeOf(list[i].endMs)));
    assert.ok(BigInt(out[i].endTimeUnixNano) >= BigInt(out[i].startTimeUnixNano));
  }
  const [s, ns] = hrTimeOf(performance.now());
  assert.ok(Math.abs(s * 1000 + ns / 1e6 - Date.now()) < 1000);
  assert.ok(ns >= 0 && ns < 1e9 && Number.isInteger(ns));
});

test('batcher: batches of batchSize from setImmediate, the rest after the interval, past the queue size dropped', async () => {
  const batches: ReadableSpan[][] = [];
  const exporter: SpanExporter = {
    export: (b, done) => {
      batches.push(b);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
  const b = new OtlpBatcher(exporter, ID, { batchSize: 2, batchIntervalMs: 100, maxQueueSize: 3 });
  const first = [0, 1].map((i) => new LightSpan(b, `s${i}`, KIND_SERVER, {}, undefined));
  for (const s of first) s.end();
  assert.equal(batches.length, 0, 'not inside span.end');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(batches.map((x) => x.map((s) => s.spanContext().spanId)), [first.map((s) => s.spanId)]);
  new LightSpan(b, 'late', KIND_SERVER, {}, undefined).end();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(batches.length, 1);
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(batches.map((x) => x.length), [2, 1]);
  // Five spans ended in one turn: the queue holds three, two are dropped.
  const q = new OtlpBatcher(exporter, ID, { batchSize: 100, batchIntervalMs: 60_000, maxQueueSize: 3 });
  for (let i = 0; i < 5; i++) new LightSpan(q, 'q', KIND_SERVER, {}, undefined).end();
  assert.equal(q.dropped, 2);
  await q.shutdown();
  assert.deepEqual(batches.map((x) => x.length), [2, 1, 3]);
  assert.equal(q.failed, 0);
  // A batch the exporter reports failed (after its retries) is counted.
  const f = new OtlpBatcher({ export: (_b, done) => done({ code: 1, error: new Error('x') }), shutdown: async () => {} }, ID, { batchSize: 2, batchIntervalMs: 10, maxQueueSize: 9 });
  for (let i = 0; i < 3; i++) new LightSpan(f, 'f', KIND_SERVER, {}, undefined).end();
  await f.flush();
  assert.equal(f.failed, 3);
  // Without a collector nothing is queued.
  const none = new OtlpBatcher(null, ID, { batchSize: 1, batchIntervalMs: 10, maxQueueSize: 1 });
  new LightSpan(none, 'n', KIND_SERVER, {}, undefined).end();
  await none.flush();
  assert.equal(none.dropped, 0);
});

test('exporters: OTLPTraceExporter posts protobuf, the JSON exporter OTLP JSON, to the collector', async () => {
  const col = await startCollector();
  try {
    const pb = createExporter(col.url, false, ID);
    // OpenTelemetry's OTLP/HTTP exporter (OTLPTraceExporter's base and transport) with Outrigger's
    // encoder; the batcher hands it the lean spans (as the worker's tracer does).
    assert.ok(pb !== null && pb.constructor.name === 'OTLPExporterBase');
    const p = new OtlpBatcher(pb, ID, { batchSize: 2, batchIntervalMs: 60_000, maxQueueSize: 10 });
    const five = Array.from({ length: 5 }, (_, i) => new LightSpan(p, `p${i}`, KIND_SERVER, { i }, undefined));
    for (const s of five) s.end();
    await p.shutdown();
    await col.waitFor(3, 2000, true);
    assert.equal(col.protobufBodies.length, 3);
    assert.ok(col.contentTypes.every((c) => c === 'application/x-protobuf'));
    const want = [five.slice(0, 2), five.slice(2, 4), five.slice(4)].map((b) => Buffer.from(ProtobufTraceSerializer.serializeRequest(b.map((s) => readableOf(s, ID))) as Uint8Array));
    assert.deepEqual(col.protobufBodies, want);
    for (const s of five) assert.ok(Buffer.concat(col.protobufBodies).includes(Buffer.from(s.spanId, 'hex')));

    const js = createExporter(col.url, true);
    assert.ok(js !== null);
    const j = new OtlpBatcher(js, ID, { batchSize: 4, batchIntervalMs: 60_000, maxQueueSize: 10 });
    const list = spans();
    const ended = list.map((s) => new LightSpan(j, s.name, s.kind, s.attributes, s.parentRemote ? REMOTE : undefined));
    for (const s of ended) s.end();
    await j.shutdown();
    await col.waitFor(3, 2000);
    assert.deepEqual(
      col.spans.map((s) => [s.name, s.kind, s.traceId, s.spanId, s.parentSpanId, s.service]),
      ended.map((s) => [s.name, s.kind, s.traceId, s.spanId, s.parentSpanId, 'svc-ü']),
    );
    assert.equal(col.spans[0].attributes['upstream.host'], '10.0.0.1:80');
    assert.equal(createExporter('', false), null);
  } finally {
    await col.close();
  }
});
