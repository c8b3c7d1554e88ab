/**
 * Tracing with propagation through two Outriggers (client side and server side): spans of one
 * request reach a test OTLP collector with one trace id and parent links A server -> A client ->
 * B server -> B client; W3C / B3 contexts are continued, an unsampled flag is honoured;
 * SOFATracer context sent by sofa-rpc-node is continued over Bolt. These run with
 * start_child_span; without it (the default), one span per request and sidecar (last tests).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { backend, httpConfig } from '../helpers/http';
import { startCollector, type CollectedSpan, type Collector } from '../helpers/otlp-collector';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import * as net from 'node:net';
import * as path from 'node:path';
import { boltProxyConfig, quietLogger, sleep } from '../helpers/sofa';

/* eslint-disable @typescript-eslint/no-require-imports */
const sofa = require('sofa-rpc-node') as any;
const bolt = require('sofa-bolt-node') as any;
const protobuf = require('protobufjs') as any;
/* eslint-enable @typescript-eslint/no-require-imports */
const PROTO = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'echo.proto');

const ROUTER = { router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b' } }] }] };

function tracing(c: Collector, service: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { enable: true, driver: 'SOFATracer', config: { collector: c.url, encoding: 'json', sampling_ratio: 1, batch_interval: '50ms', service_name: service, start_child_span: true, ...extra } };
}

function curl(port: number, headers: string[] = []): Promise<{ code: number; out: string }> {
  const args = ['-s', '--max-time', '5', ...headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${port}/trace/me`];
  return new Promise((resolve) => execFile('curl', args, (err, stdout) => resolve({ code: err ? 1 : 0, out: stdout })));
}

/** Two HTTP sidecars: A (client side) -> B (server side) -> backend. */
async function twoHop(c: Collector, tracingExtra: Record<string, unknown> = {}, ratio = 1) {
  const be = await backend('be');
  const b = await startSidecar({ ...httpConfig([{ name: 'in', downstream: 'Http1', router: 'r' }], [ROUTER], { b: [be.port] }), tracing: tracing(c, 'server-side', { sampling_ratio: ratio, ...tracingExtra }) });
  const a = await startSidecar({ ...httpConfig([{ name: 'out', downstream: 'Http1', router: 'r' }], [ROUTER], { b: [b.ports.get('in') as number] }), tracing: tracing(c, 'client-side', { sampling_ratio: ratio, ...tracingExtra }) });
  return { be, a, b, port: a.ports.get('out') as number };
}

async function stop(...s: RunningSidecar[]): Promise<void> {
  for (const x of s) await x.terminate();
}

function byKind(spans: CollectedSpan[], service: string, kind: number): CollectedSpan {
  const s = spans.find((x) => x.service === service && x.kind === kind);
  assert.ok(s, `no ${kind === 2 ? 'server' : 'client'} span from ${service}: ${JSON.stringify(spans)}`);
  return s;
}

test('HTTP/1.1 through two Outriggers: one trace, parent links, traceparent upstream', async () => {
  const c = await startCollector();
  const { be, a, b, port } = await twoHop(c);
  try {
    const r = await curl(port);
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.out).backend, 'be');
    await c.waitFor(4);
    const as = byKind(c.spans, 'client-side', 2);
    const ac = byKind(c.spans, 'client-side', 3);
    const bs = byKind(c.spans, 'server-side', 2);
    const bc = byKind(c.spans, 'server-side', 3);
    const tid = as.traceId;
    assert.match(tid, /^[0-9a-f]{32}$/);
    for (const s of [ac, bs, bc]) assert.equal(s.traceId, tid);
    assert.equal(as.parentSpanId, ''); // a new trace: the root
    assert.equal(ac.parentSpanId, as.spanId);
    assert.equal(bs.parentSpanId, ac.spanId);
    assert.equal(bc.parentSpanId, bs.spanId);
    assert.equal(as.attributes['response.status_code'], 200);
    // The backend got the context of B's client span.
    assert.equal(be.seen[0].headers.traceparent, `00-${tid}-${bc.spanId}-01`);
  } finally {
    await stop(a, b);
    await be.close();
    await c.close();
  }
});

test('incoming W3C and B3 contexts are continued; sampled=0 is honoured (no spans, header untouched)', async () => {
  const c = await startCollector();
  const { be, a, b, port } = await twoHop(c, { propagators: ['tracecontext', 'b3multi'] }, 0);
  try {
    const tid = '4bf92f3577b34da6a3ce929d0e0e4736';
    // Unsampled: passes through unchanged, nothing exported (sampling_ratio 0 would not sample a new trace either).
    const off = `00-${tid}-00f067aa0ba902b7-00`;
    assert.equal((await curl(port, [`traceparent: ${off}`])).code, 0);
    assert.equal(be.seen[0].headers.traceparent, off);
    // Sampled by the caller (ratio 0 does not matter): continued.
    const on = `00-${tid}-00f067aa0ba902b7-01`;
    assert.equal((await curl(port, [`traceparent: ${on}`])).code, 0);
    await c.waitFor(4);
    const as = byKind(c.spans, 'client-side', 2);
    assert.equal(as.traceId, tid);
    assert.equal(as.parentSpanId, '00f067aa0ba902b7');
    const bc = byKind(c.spans, 'server-side', 3);
    assert.equal(be.seen[1].headers.traceparent, `00-${tid}-${bc.spanId}-01`);
    assert.equal(be.seen[1].headers['x-b3-traceid'], tid);
    assert.equal(be.seen[1].headers['x-b3-spanid'], bc.spanId);
    // B3 multi-header context (64-bit trace id), sampled.
    c.spans.length = 0;
    assert.equal((await curl(port, ['X-B3-TraceId: 80f198ee56343ba8', 'X-B3-SpanId: e457b5a2e4d86bd1', 'X-B3-Sampled: 1'])).code, 0);
    await c.waitFor(4);
    const as2 = byKind(c.spans, 'client-side', 2);
    assert.equal(as2.traceId, '000000000000000080f198ee56343ba8');
    assert.equal(as2.parentSpanId, 'e457b5a2e4d86bd1');
    // B3 single header, not sampled: nothing more exported.
    c.spans.length = 0;
    assert.equal((await curl(port, ['b3: 80f198ee56343ba880f198ee56343ba8-e457b5a2e4d86bd1-0'])).code, 0);
    await sleep(300);
    assert.equal(c.spans.length, 0);
  } finally {
    await stop(a, b);
    await be.close();
    await c.close();
  }
});

test('protobuf export: the collector gets application/x-protobuf carrying the trace id', async () => {
  const c = await startCollector();
  const { be, a, b, port } = await twoHop(c, { encoding: 'protobuf' });
  try {
    const tid = 'aabbccddeeff00112233445566778899';
    assert.equal((await curl(port, [`traceparent: 00-${tid}-1122334455667788-01`])).code, 0);
    await c.waitFor(2, 5000, true);
    assert.ok(c.contentTypes.every((t) => t === 'application/x-protobuf'), c.contentTypes.join());
    for (const body of c.protobufBodies) assert.ok(body.includes(Buffer.from(tid, 'hex')), 'trace id bytes in the OTLP protobuf body');
  } finally {
    await stop(a, b);
    await be.close();
    await c.close();
  }
});

/** sofa-rpc-node -> A (client side) -> B (server side) -> a sofa-rpc-node provider, over Bolt. */
async function boltTwoHop(c: Collector, tracingExtra: Record<string, unknown> = {}) {
  // sofa-rpc-node writes requestProps (rpc_trace_context.*) into the Bolt header map with its protobuf codec.
  const root = protobuf.loadSync(PROTO);
  bolt.setOptions({ proto: root });
  const server = new sofa.server.RpcServer({ logger: quietLogger, port: 0, proto: root });
  server.addService({ interfaceName: 'outrigger.test.Echo' }, {
    async Unary(req: { message: string }) {
      return { message: `got ${req.message}`, index: 1 };
    },
  });
  await server.start();
  await server.ready();
  const providerPort = (server._servers[0] as net.Server).address() as net.AddressInfo;
  const b = await startSidecar({ ...boltProxyConfig({ clusters: { p: [providerPort.port] } }), tracing: tracing(c, 'server-side', tracingExtra) });
  const a = await startSidecar({ ...boltProxyConfig({ clusters: { p: [b.ports.get('bolt') as number] } }), tracing: tracing(c, 'client-side', tracingExtra) });
  const client = new sofa.client.RpcClient({ logger: quietLogger });
  return { server, a, b, client };
}

test('Bolt: SOFATracer headers from sofa-rpc-node are continued through two Outriggers, parent links kept', async () => {
  const c = await startCollector();
  const { server, a, b, client } = await boltTwoHop(c);
  try {
    const consumer = client.createConsumer({ interfaceName: 'outrigger.test.Echo', serverHost: `127.0.0.1:${a.ports.get('bolt')}` });
    await consumer.ready();
    const sofaTraceId = '0a0fe8a415447811864321001234';
    const r = await consumer.invoke('Unary', [{ message: 'hi' }], { codecType: 'protobuf', responseTimeout: 3000, requestProps: { rpc_trace_context: { sofaTraceId, sofaRpcId: '0.1' } } });
    assert.equal(r.message, 'got hi');
    await c.waitFor(4);
    const tid = sofaTraceId.padStart(32, '0');
    for (const s of c.spans) assert.equal(s.traceId, tid);
    const as = byKind(c.spans, 'client-side', 2);
    const ac = byKind(c.spans, 'client-side', 3);
    const bs = byKind(c.spans, 'server-side', 2);
    const bc = byKind(c.spans, 'server-side', 3);
    assert.equal(as.attributes['rpc.service'], 'outrigger.test.Echo:1.0');
    assert.equal(as.attributes['rpc.method'], 'Unary');
    assert.match(as.parentSpanId, /^[0-9a-f]{16}$/); // the application's span (rpcId 0.1)
    assert.equal(ac.parentSpanId, as.spanId);
    assert.equal(bs.parentSpanId, ac.spanId);
    assert.equal(bc.parentSpanId, bs.spanId);
    // Bolt's status 0 is SUCCESS: no span of a successful call is marked failed.
    for (const s of [as, ac, bs, bc]) assert.notEqual(s.statusCode, 2, `${s.service} span marked ERROR: ${JSON.stringify(s)}`);
  } finally {
    await client.close();
    await stop(a, b);
    await server.close();
    await c.close();
  }
});

function only(spans: CollectedSpan[], service: string): CollectedSpan {
  const mine = spans.filter((s) => s.service === service);
  assert.equal(mine.length, 1, `one span from ${service}: ${JSON.stringify(spans)}`);
  return mine[0];
}

// Without start_child_span (the default, as Envoy's router): one span per request and sidecar,
// whose own context goes upstream, with the upstream host and cluster as attributes.
test('one span per request and sidecar (no start_child_span): HTTP/1.1 through two Outriggers', async () => {
  const c = await startCollector();
  const { be, a, b, port } = await twoHop(c, { start_child_span: false });
  try {
    assert.equal(JSON.parse((await curl(port)).out).backend, 'be');
    await c.waitFor(2);
    await sleep(300); // a second span per sidecar, if one were made, is exported in the same batch
    assert.equal(c.spans.length, 2, JSON.stringify(c.spans));
    const as = only(c.spans, 'client-side');
    const bs = only(c.spans, 'server-side');
    assert.equal(as.parentSpanId, '');
    assert.equal(bs.traceId, as.traceId);
    assert.equal(bs.parentSpanId, as.spanId, "B continues A's span");
    assert.equal(be.seen[0].headers.traceparent, `00-${as.traceId}-${bs.spanId}-01`, "the backend sees B's span");
    assert.equal(as.attributes['upstream.cluster'], 'b');
    assert.equal(as.attributes['upstream.host'], `127.0.0.1:${b.ports.get('in')}`);
    assert.equal(as.attributes['response.status_code'], 200);
  } finally {
    await stop(a, b);
    await be.close();
    await c.close();
  }
});

test('one span per request and sidecar (no start_child_span): Bolt with sofa-rpc-node through two Outriggers', async () => {
  const c = await startCollector();
  const { server, a, b, client } = await boltTwoHop(c, { start_child_span: false });
  try {
    const consumer = client.createConsumer({ interfaceName: 'outrigger.test.Echo', serverHost: `127.0.0.1:${a.ports.get('bolt')}` });
    await consumer.ready();
    const sofaTraceId = '0a0fe8a415447811864321005678';
    const r = await consumer.invoke('Unary', [{ message: 'hi' }], { codecType: 'protobuf', responseTimeout: 3000, requestProps: { rpc_trace_context: { sofaTraceId, sofaRpcId: '0.1' } } });
    assert.equal(r.message, 'got hi');
    await c.waitFor(2);
    await sleep(300);
    assert.equal(c.spans.length, 2, JSON.stringify(c.spans));
    const as = only(c.spans, 'client-side');
    const bs = only(c.spans, 'server-side');
    assert.equal(as.traceId, sofaTraceId.padStart(32, '0'));
    assert.equal(bs.traceId, as.traceId);
    assert.equal(bs.parentSpanId, as.spanId, "the traceparent A wrote into the Bolt frame is its span's");
    assert.equal(as.attributes['upstream.cluster'], 'p');
    for (const s of [as, bs]) assert.notEqual(s.statusCode, 2, `${s.service} span marked ERROR: ${JSON.stringify(s)}`);
  } finally {
    await client.close();
    await stop(a, b);
    await server.close();
    await c.close();
  }
});
