/** Trace context parsing (W3C, B3, SOFATracer), sampling, the `tracing` config section, lazy loading. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { parseConfig } from '../../src/config';
import { extract, parseB3, parseTraceparent, sampleByRatio, sofaTraceIdToW3c, FMT_SOFA } from '../../src/tracing/context';

const h = (m: Record<string, string>) => (n: string): string | undefined => m[n];

test('traceparent: valid, sampled flag, refusals', () => {
  const c = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  assert.deepEqual(c && [c.traceId, c.spanId, c.sampled], ['4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 1]);
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')?.sampled, 0);
  assert.equal(parseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), undefined);
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'), undefined);
  assert.equal(parseTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), undefined);
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01'), undefined);
  assert.equal(parseTraceparent('garbage'), undefined);
});

test('B3 single and multi; 64-bit ids padded; W3C wins', () => {
  assert.equal(parseB3('80f198ee56343ba8-e457b5a2e4d86bd1-1')?.traceId, '000000000000000080f198ee56343ba8');
  assert.equal(parseB3('0'), undefined);
  assert.equal(parseB3('80f198ee56343ba8-e457b5a2e4d86bd1')?.sampled, -1);
  const m = extract(h({ 'x-b3-traceid': '80f198ee56343ba880f198ee56343ba8', 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-flags': '1' }), false);
  assert.equal(m?.sampled, 1);
  const both = extract(h({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', b3: '80f198ee56343ba8-e457b5a2e4d86bd1-0' }), false);
  assert.equal(both?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(extract(h({}), false), undefined);
});

test('SOFATracer: hex ids padded, others hashed; rpcId gives a stable parent span id', () => {
  assert.equal(sofaTraceIdToW3c('0a0fe8a415447811864321001234'), '00000a0fe8a415447811864321001234');
  assert.match(sofaTraceIdToW3c('not-hex-trace-id'), /^[0-9a-f]{32}$/);
  const a = extract(h({ 'rpc_trace_context.sofaTraceId': 'abc1', 'rpc_trace_context.sofaRpcId': '0.1' }), true);
  const b = extract(h({ 'rpc_trace_context.sofaTraceId': 'abc1', 'rpc_trace_context.sofaRpcId': '0.1' }), true);
  const c = extract(h({ 'rpc_trace_context.sofaTraceId': 'abc1', 'rpc_trace_context.sofaRpcId': '0.1.1' }), true);
  assert.equal(a?.format, FMT_SOFA);
  assert.equal(a?.sampled, -1);
  assert.equal(a?.spanId, b?.spanId);
  assert.notEqual(a?.spanId, c?.spanId);
  // HTTP requests do not read SOFA headers.
  assert.equal(extract(h({ 'rpc_trace_context.sofaTraceId': 'abc1' }), false), undefined);
});

test('sampling by ratio: deterministic on a trace id, bounds', () => {
  assert.equal(sampleByRatio(1, undefined), true);
  assert.equal(sampleByRatio(0, 'ffffffffffffffffffffffff00000000'), false);
  assert.equal(sampleByRatio(0.01, 'ffffffffffffffffffffffff00000001'), true);
  assert.equal(sampleByRatio(0.01, 'ffffffffffffffffffffffff80000000'), false);
  let n = 0;
  for (let i = 0; i < 20000; i++) if (sampleByRatio(0.1, undefined)) n++;
  assert.ok(n > 1500 && n < 2500, `${n} of 20000 at 10%`);
});

const base = {
  servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'c' } }] }] }] }],
  cluster_manager: { clusters: [{ name: 'c', type: 'SIMPLE', hosts: [{ address: '127.0.0.1:1' }] }] },
  admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
};

test('tracing config: MOSN keys, OTLP settings, errors name the path', () => {
  const cfg = parseConfig({ ...base, tracing: { enable: true, driver: 'SOFATracer', config: { collector: 'http://127.0.0.1:4318/v1/traces', encoding: 'json', sampling_ratio: 0.01, batch_size: 100, batch_interval: '2s', propagators: ['tracecontext', 'b3'] } } });
  assert.equal(cfg.tracing?.driver, 'sofatracer');
  assert.equal(cfg.tracing?.samplingRatio, 0.01);
  assert.equal(cfg.tracing?.batchIntervalMs, 2000);
  assert.equal(cfg.tracing?.encoding, 'json');
  assert.equal(parseConfig({ ...base, tracing: { enable: false, tracer: 'SOFATracer' } }).tracing, undefined);
  assert.throws(() => parseConfig({ ...base, tracing: { enable: true, config: { sampling_ratio: 2 } } }), /tracing\.config\.sampling_ratio: 2 must be a number in 0\.\.1/);
  assert.throws(() => parseConfig({ ...base, tracing: { enable: true, config: { collector: 'ftp://x' } } }), /tracing\.config\.collector/);
  assert.throws(() => parseConfig({ ...base, tracing: { enable: true, config: { encoding: 'thrift' } } }), /tracing\.config\.encoding/);
  assert.throws(() => parseConfig({ ...base, tracing: { enable: true, config: { propagators: ['jaeger'] } } }), /tracing\.config\.propagators\[0\]/);
  const w = parseConfig({ ...base, tracing: { enable: true, driver: 'jaeger', config: { collector: 'http://127.0.0.1:1/', agent_host: 'x' } } }).warnings ?? [];
  assert.ok(w.some((x) => x.startsWith('tracing.config.agent_host: unknown key')), w.join('\n'));
});

test('OpenTelemetry is not loaded by the request path when tracing is off', () => {
  const dist = path.join(__dirname, '..', '..', 'src');
  const out = execFileSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(dist, 'extensions.js'))}); require(${JSON.stringify(path.join(dist, 'stream', 'pipeline.js'))}); require(${JSON.stringify(path.join(dist, 'http', 'exchange.js'))}); require(${JSON.stringify(path.join(dist, 'proxy', 'proxy.js'))}); console.log(Object.keys(require.cache).filter((k) => k.includes('@opentelemetry')).length)`]).toString().trim();
  assert.equal(out, '0');
});
