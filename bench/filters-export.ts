// What the OTLP protobuf export of a sampled Bolt request's span costs the data plane's thread
// (tracing exports from a timer on that thread): the lean spans of bench/filters-cost.ts's Bolt
// requests (7 attributes) turned into ReadableSpan adapters and serialized by OpenTelemetry's
// ProtobufTraceSerializer, as src/tracing/otlp.ts does a batch at a time. No HTTP.
//
//   node dist/bench/filters-export.js [--spans 200] [--batches 2000] [--lean]
//
// Prints ns per span (OpenTelemetry's serializer, then the exporter's own encoder) for the first batch (cold: the code runs in V8's lower tiers, as in a
// short callgrind window) and warm (after `batches` batches), adapters and serializer apart.
// --lean: instead, what the worker's exporter does now (encodeLightSpans: the lean spans encoded
// directly, no adapters), cold and warm, then adapters + encodeSpans warm (same process).
import { exportIdentity, readableOf } from '../src/tracing/otlp';
import { encodeLightSpans, encodeSpans } from '../src/tracing/otlp-proto';
import { KIND_SERVER, LightSpan, type SpanSink } from '../src/tracing/span';
import { numOpt } from './lib/script';

/* eslint-disable @typescript-eslint/no-require-imports */

const args = process.argv.slice(2);
const SPANS = numOpt(args, 'spans', 200);
const BATCHES = numOpt(args, 'batches', 2000);

function spans(): LightSpan[] {
  const sink: SpanSink = { onEnd: () => undefined };
  const out: LightSpan[] = [];
  for (let i = 0; i < SPANS; i++) {
    // The attributes tracing's filter and ActiveTrace give a Bolt server span.
    const a: Record<string, string> = { protocol: 'bolt', 'peer.address': `127.0.0.1:${40000 + i}` };
    a['rpc.service'] = 'com.alipay.test.TestService:1.0';
    a['rpc.method'] = 'echo';
    const s = new LightSpan(sink, 'bolt com.alipay.test.TestService:1.0', KIND_SERVER, a, undefined);
    s.setAttribute('upstream.host', '127.0.0.1:12200');
    s.setAttribute('upstream.cluster', 'bolt_backend');
    s.setAttribute('response.status_code', 0);
    s.end();
    out.push(s);
  }
  return out;
}

/** --lean: the lean spans encoded directly (the worker's protobuf exporter), against adapters + encodeSpans. */
function lean(): void {
  const id = exportIdentity('outrigger');
  const ss = spans();
  const perSpan = (t0: bigint, batches: number): string => (Number(process.hrtime.bigint() - t0) / (batches * SPANS)).toFixed(0);
  let t0 = process.hrtime.bigint();
  encodeLightSpans(ss, id.resource, id.scope);
  console.log(`first batch (cold), lean spans encoded directly: ${perSpan(t0, 1)} ns per span`);
  t0 = process.hrtime.bigint();
  for (let r = 0; r < BATCHES; r++) encodeLightSpans(ss, id.resource, id.scope);
  console.log(`warm, lean spans encoded directly: ${perSpan(t0, BATCHES)} ns per span`);
  t0 = process.hrtime.bigint();
  for (let r = 0; r < BATCHES; r++) encodeSpans(ss.map((s) => readableOf(s, id)));
  console.log(`warm, adapters + Outrigger's encoder: ${perSpan(t0, BATCHES)} ns per span`);
}

function main(): void {
  if (args.includes('--lean')) return lean();
  const { ProtobufTraceSerializer } = require('@opentelemetry/otlp-transformer') as typeof import('@opentelemetry/otlp-transformer');
  const id = exportIdentity('outrigger');
  const ss = spans();
  const perSpan = (t0: bigint, batches: number): string => (Number(process.hrtime.bigint() - t0) / (batches * SPANS)).toFixed(0);
  let t0 = process.hrtime.bigint();
  ProtobufTraceSerializer.serializeRequest(ss.map((s) => readableOf(s, id)));
  console.log(`first batch (cold), adapters + serializer: ${perSpan(t0, 1)} ns per span`);
  let bytes = 0;
  t0 = process.hrtime.bigint();
  for (let r = 0; r < BATCHES; r++) bytes += ProtobufTraceSerializer.serializeRequest(ss.map((s) => readableOf(s, id)))?.length ?? 0;
  console.log(`warm, adapters + serializer: ${perSpan(t0, BATCHES)} ns per span (${(bytes / (BATCHES * SPANS)).toFixed(0)} bytes per span)`);
  const rs = ss.map((s) => readableOf(s, id));
  t0 = process.hrtime.bigint();
  for (let r = 0; r < BATCHES; r++) ProtobufTraceSerializer.serializeRequest(rs);
  console.log(`warm, serializer alone: ${perSpan(t0, BATCHES)} ns per span`);
  const fresh = spans().map((s) => readableOf(s, id));
  t0 = process.hrtime.bigint();
  encodeSpans(fresh);
  console.log(`first batch (cold), Outrigger's encoder (src/tracing/otlp-proto.ts): ${perSpan(t0, 1)} ns per span`);
  t0 = process.hrtime.bigint();
  for (let r = 0; r < BATCHES; r++) encodeSpans(rs);
  console.log(`warm, Outrigger's encoder: ${perSpan(t0, BATCHES)} ns per span`);
}

main();
