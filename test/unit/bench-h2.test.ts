// Tests of the harness's http2 and grpc workloads: the h2c backend, the node:http2 and
// h2load drivers, the h2load log parser, the grpc-js driver against the Echo server, and
// the HTTP/2 peer configs. 127.0.0.1 only, a few seconds.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { h2cServer } from '../../bench/backend';
import { startGrpcServer, GRPC_PAYLOAD_BYTES } from '../../bench/grpc-echo';
import runTask from '../../bench/load/worker';
import { h2loadBin, parseH2loadLog, runH2load } from '../../bench/load/h2load';
import type { LoadSpec } from '../../bench/load/spec';
import { haproxyConfig, nginxConfig, outriggerConfig, envoyConfig } from '../../bench/peers/configs';
import { workloadByName } from '../../bench/workloads';
import { parseArgs } from '../../bench/cli';

function listen(srv: net.Server): Promise<number> {
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
}

/** Starts tracking an h2 server's sessions; the returned function closes it (its sessions first). */
function closer(srv: import('node:http2').Http2Server): () => Promise<void> {
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  srv.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sessions) s.destroy();
      srv.close(() => resolve());
      setTimeout(resolve, 200);
    });
}

function spec(port: number, over: Partial<LoadSpec>): LoadSpec {
  return {
    kind: 'h2', host: '127.0.0.1', port, connections: 2, threads: 1, messageSize: 0, streams: 10,
    measureStart: Date.now() + 200, durationMs: 800, proxyPids: [], backendPids: [], ...over,
  };
}

test('node:http2 driver completes requests against the h2c backend', async () => {
  const srv = h2cServer();
  const stop = closer(srv);
  const port = await listen(srv as unknown as net.Server);
  try {
    const r = await runTask({ spec: spec(port, {}), connections: 2 });
    assert.equal(r.errors, 0, r.firstError);
    assert.ok(r.ops >= 50, `only ${r.ops} requests`);
    assert.equal(r.bytes, r.ops * 1024);
    const h = hdr.decodeFromCompressedBase64(r.histogram);
    assert.equal(h.totalCount, r.ops);
    h.destroy();
  } finally {
    await stop();
  }
});

test('h2 driver reports a server answering non-200 as errors', async () => {
  const http2 = await import('node:http2');
  const srv = http2.createServer();
  const stop = closer(srv);
  srv.on('stream', (st) => {
    st.respond({ ':status': 503 });
    st.end();
  });
  const port = await listen(srv as unknown as net.Server);
  try {
    const r = await runTask({ spec: spec(port, { durationMs: 300, streams: 2 }), connections: 1 });
    assert.equal(r.ops, 0);
    assert.ok(r.errors > 0);
    assert.match(r.firstError ?? '', /status 503/);
  } finally {
    await stop();
  }
});

test('h2load log parser: counts 200s ending inside the window, records their durations', () => {
  const t0 = 1_700_000_000_000; // ms
  const row = (startMs: number, status: number, durUs: number): string => `${startMs * 1000}\t${status}\t${durUs}`;
  const log = [
    row(t0 - 5, 200, 1000),
    row(t0 + 1, 200, 2000),
    row(t0 + 2, 200, 3000),
    row(t0 + 3, 404, 100),
    row(t0 + 999, 200, 5000),
    row(t0 - 50, 0, 60_000), // started in warm-up, head seen then: h2load logs status 0, not an error
    row(t0 + 10, 0, 1000), // status 0 for a stream started in the window: an error
    '',
  ].join('\n');
  const r = parseH2loadLog(log, t0, t0 + 1000, 1024);
  // first ends at t0-4 (before), last ends at t0+1004 (after)
  assert.equal(r.ops, 2);
  assert.equal(r.bytes, 2048);
  assert.equal(r.errors, 2);
  const h = hdr.decodeFromCompressedBase64(r.histogram);
  assert.equal(h.totalCount, 2);
  assert.ok(Math.abs(h.maxValue - 3000) < 10);
  h.destroy();
});

test('h2load driver (when installed) completes requests against the h2c backend', async (t) => {
  const bin = h2loadBin();
  if (!bin) {
    t.skip('h2load not installed (scripts/install-peers.sh)');
    return;
  }
  const srv = h2cServer();
  const stop = closer(srv);
  const port = await listen(srv as unknown as net.Server);
  try {
    const r = await runH2load(spec(port, { measureStart: Date.now() + 300 }), bin);
    assert.equal(r.errors, 0, r.firstError);
    assert.ok(r.ops >= 50, `only ${r.ops} requests`);
    assert.match(r.note ?? '', /h2load/);
  } finally {
    await stop();
  }
});

test('grpc driver completes unary calls against the grpc-js Echo server', async () => {
  const { port, server } = await startGrpcServer();
  try {
    const r = await runTask({ spec: spec(port, { kind: 'grpc', messageSize: 1024, streams: 4 }), connections: 2 });
    assert.equal(r.errors, 0, r.firstError);
    assert.ok(r.ops >= 20, `only ${r.ops} calls`);
    assert.equal(r.bytes, r.ops * GRPC_PAYLOAD_BYTES);
  } finally {
    server.forceShutdown();
  }
});

test('HTTP/2 peer configs: h2 both sides for HAProxy, h2c + HTTP/1.1 upstream / grpc_pass for nginx, Http2 for Outrigger', () => {
  const base = { port: 42001, backendPort: 42000, dir: '/tmp/x', http1BackendPort: 42009 };
  const h = haproxyConfig({ ...base, mode: 'http2' });
  assert.match(h, /mode http/);
  assert.match(h, /bind 127\.0\.0\.1:42001 proto h2/);
  assert.match(h, /server backend 127\.0\.0\.1:42000 proto h2/);
  const n = nginxConfig({ ...base, mode: 'http2' }, '/x/ngx_stream_module.so');
  assert.doesNotMatch(n, /load_module/);
  assert.match(n, /listen 127\.0\.0\.1:42001 http2;/);
  assert.match(n, /server 127\.0\.0\.1:42009; keepalive/); // HTTP/1.1 backend
  assert.match(n, /proxy_http_version 1\.1/);
  const g = nginxConfig({ ...base, mode: 'grpc' }, undefined);
  assert.match(g, /grpc_pass grpc:\/\/backend;/);
  assert.match(g, /server 127\.0\.0\.1:42000; keepalive/);
  const o = outriggerConfig({ ...base, mode: 'grpc' }) as any;
  assert.deepEqual(o.servers[0].listeners[0].filter_chains[0].filters[0].config, {
    downstream_protocol: 'Http2', upstream_protocol: 'Http2', router_config_name: 'h2_router',
  });
  assert.equal(o.servers[0].routers[0].router_config_name, 'h2_router');
  const e = envoyConfig({ ...base, mode: 'http2' }) as any;
  assert.ok(e.static_resources.clusters[0].typed_extension_protocol_options);
});

test('http2/grpc workloads: defaults, --streams and --connections overrides', () => {
  const h = workloadByName('http2')!;
  assert.equal(h.pending, undefined);
  assert.deepEqual(h.cases({}).map((c) => [c.id, c.kind, c.streams, c.backend]), [['http2 c=4 s=100', 'h2', 100, 'h2']]);
  const g = workloadByName('grpc')!;
  assert.deepEqual(g.cases({ connections: 2, streams: 7 }).map((c) => [c.id, c.unit, c.backend]), [['grpc c=2 s=7', 'calls/s', 'grpc']]);
  assert.equal(parseArgs(['http2', '--streams', '32']).streams, 32);
  assert.throws(() => parseArgs(['--streams', '0']), /--streams/);
});
