/**
 * The stream filter API: config validation through the registry (typed value, errors named by
 * JSON path, MOSN's payload_limit accepted), and the pipeline's decode phases: continue, stop and
 * resume, local replies, encode and the end-of-stream log step.
 */
import { test } from 'node:test';
import { FixedRequestStream } from '../helpers/stream';
import * as assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream } from '../../src/api/stream-filter';
import { hostPort, StreamPipeline } from '../../src/stream/pipeline';
import { compileAccessLogFormat, renderAccessLog } from '../../src/log';
import type { ListenerContext } from '../../src/filters/network/types';
import type { FilterConfig } from '../../src/config/types';
import '../../src/filters/stream';
import '../../src/extensions';
import * as net from 'node:net';
import { STATUS_SERVER_EXCEPTION } from '../../src/protocol/bolt';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sleep } from '../helpers/sofa';
import { backend, httpConfig, request } from '../helpers/http';
import '../../src/proxy/proxy';
import '../../src/http/filter';
import { testCluster } from '../helpers/cluster';
import { inProcessProxy } from '../helpers/in-process-proxy';

function doc(streamFilters: unknown[]): any {
  return {
    servers: [{
      routers: [{ router_config_name: 'r0', virtual_hosts: [{ name: 'vh', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'c0' } }] }] }],
      listeners: [{
        name: 'l0',
        address: '127.0.0.1:2045',
        filter_chains: [{ filters: [{ type: 'proxy', config: { downstream_protocol: 'Http1', router_config_name: 'r0' } }] }],
        stream_filters: streamFilters,
      }],
    }],
    cluster_manager: { clusters: [{ name: 'c0', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: '127.0.0.1:8080' }] }] },
  };
}

test('payload_limit: MOSN config accepted as a typed value; bad values named by path', () => {
  const cfg = parseConfig(doc([{ type: 'payload_limit', config: { max_entity_size: 4096, http_status: 413 } }]));
  assert.deepEqual(cfg.servers[0].listeners[0].streamFilters, [{ type: 'payload_limit', config: { value: { maxEntitySize: 4096, httpStatus: 413 } } }]);
  assert.throws(() => parseConfig(doc([{ type: 'payload_limit', config: { max_entity_size: -1 } }])), (e: Error) => {
    assert.match(e.message, /servers\[0\]\.listeners\[0\]\.stream_filters\[0\]\.config\.max_entity_size: -1 must be an integer/);
    return true;
  });
  assert.throws(() => parseConfig(doc([{ type: 'payload_limit', config: { max_size: 1 } }])), /stream_filters\[0\]\.config\.max_size: unknown key/);
});

// ---- the decode phases, with a test filter kind and a stream that records what happens

interface Probe {
  readonly seen: string[];
  held: FilterStream | null;
}

const probe: Probe = { seen: [], held: null };

registerStreamFilterKind<{ name: string; phase: number; action: string }>({
  type: 'test_probe',
  validate: (raw) => raw as { name: string; phase: number; action: string },
  create: (c) => ({
    phase: c.phase as DecodePhase,
    decode(s: FilterStream): FilterStatus {
      probe.seen.push(`${c.name}@${c.phase}`);
      if (c.action === 'hold') {
        probe.held = s;
        return FilterStatus.Stop;
      }
      if (c.action === 'deny') {
        s.sendLocalReply(403, 'denied');
        return FilterStatus.Stop;
      }
      return FilterStatus.Continue;
    },
    encode(_s: FilterStream, status: number): void {
      probe.seen.push(`${c.name}:encode ${status}`);
    },
    log(s: FilterStream): void {
      probe.seen.push(`${c.name}:log ${s.protocol}`);
    },
  }),
});

class TestStream extends FixedRequestStream {
  reply = 0;
  sendLocalReply(status: number): void {
    this.reply = status;
    this.replied = true;
    this.encode(status);
  }
  protected park(): void {
    probe.seen.push('park');
  }
  protected continueFrom(phase: DecodePhase): void {
    probe.seen.push(`continue ${phase}`);
    run(this, phase);
  }
}

/** The request path as an adapter drives it. */
function run(s: TestStream, from: DecodePhase): void {
  for (let p = from; p <= DecodePhase.AfterChooseHost; p++) if (!s.decode(p)) return;
  probe.seen.push('upstream');
  s.encode(200);
  s.end();
}

function pipeline(filters: { name: string; phase: number; action: string }[]): StreamPipeline {
  const streamFilters: FilterConfig[] = filters.map((f) => ({ type: 'test_probe', config: { value: f } }));
  const ctx = { name: 'l', accessLog: null, streamFilters } as unknown as ListenerContext;
  return new StreamPipeline(ctx);
}

test('decode phases run in order; Stop holds the stream until resume(), which goes on with the next filter', () => {
  probe.seen.length = 0;
  const pl = pipeline([
    { name: 'a', phase: DecodePhase.BeforeRoute, action: 'continue' },
    { name: 'b', phase: DecodePhase.AfterRoute, action: 'hold' },
    { name: 'c', phase: DecodePhase.AfterRoute, action: 'continue' },
    { name: 'd', phase: DecodePhase.AfterChooseHost, action: 'continue' },
  ]);
  assert.equal(pl.active, true);
  const s = new TestStream();
  s.begin(pl, 'bolt', 'l');
  run(s, DecodePhase.BeforeRoute);
  assert.deepEqual(probe.seen, ['a@0', 'b@1', 'park']);
  (probe.held as FilterStream).resume();
  assert.deepEqual(probe.seen, [
    'a@0', 'b@1', 'park', 'continue 1', 'c@1', 'd@2', 'upstream',
    'a:encode 200', 'b:encode 200', 'c:encode 200', 'd:encode 200', 'a:log bolt', 'b:log bolt', 'c:log bolt', 'd:log bolt',
  ]);
  // A second resume does nothing.
  (probe.held as FilterStream).resume();
  assert.equal(probe.seen.filter((x) => x === 'upstream').length, 1);
});

test('a local reply from a filter ends the decode phases; later filters and the upstream never run', () => {
  probe.seen.length = 0;
  const pl = pipeline([
    { name: 'x', phase: DecodePhase.BeforeRoute, action: 'deny' },
    { name: 'y', phase: DecodePhase.BeforeRoute, action: 'continue' },
  ]);
  const s = new TestStream();
  s.begin(pl, 'http1', 'l');
  run(s, DecodePhase.BeforeRoute);
  assert.equal(s.reply, 403);
  assert.deepEqual(probe.seen, ['x@0', 'x:encode 403', 'y:encode 403']);
  assert.equal(s.responseCode, 403);
});

test('a listener without stream filters or access log has an inactive pipeline (no stream object per request)', () => {
  assert.equal(pipeline([]).active, false);
});

// ---- through the real RPC proxy (in this process): a held Bolt request is copied, resumed
// later and forwarded with its own id; a filter's local reply is a Bolt error response.

const probeFilter = (name: string, phase: DecodePhase, action: string): FilterConfig => ({ type: 'test_probe', config: { value: { name, phase, action } } });

test('RPC proxy: a filter holds a Bolt request and resumes it later; another answers with the protocol error', async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  const { port, server } = await inProcessProxy(boltProxyConfig({ clusters: { svc: [up.port] } }), 'svc', [probeFilter('h', DecodePhase.AfterRoute, 'hold')]);
  const c = await rawClient(port);
  try {
    probe.seen.length = 0;
    probe.held = null;
    c.sock.write(rawRequest(41, 'com.example.Held:1.0', { content: Buffer.from('held body') }));
    for (let i = 0; i < 50 && probe.held === null; i++) await sleep(10);
    const held = probe.held as FilterStream | null;
    assert.ok(held !== null, 'the filter holds the request');
    assert.equal(held.service(), 'com.example.Held:1.0', 'the held stream still reads its request (a copy)');
    // Other traffic reuses the read buffer meanwhile.
    c.sock.write(rawRequest(42, 'com.example.Other:1.0', { content: Buffer.from('x'.repeat(300)) }));
    await sleep(50);
    assert.equal(up.requests.length, 0, 'nothing forwarded while held');
    held.resume();
    await c.wait(1);
    assert.equal(c.frames[0].frame.requestId, 41);
    assert.equal(c.frames[0].buf.toString('latin1', c.frames[0].frame.contentStart, c.frames[0].frame.contentEnd), 'held body');
    assert.equal(up.requests[0].buf.toString('latin1', up.requests[0].frame.contentStart, up.requests[0].frame.contentEnd), 'held body');
    // The second request is held too; the filter answers it instead.
    for (let i = 0; i < 50 && probe.seen.filter((x) => x === 'h@1').length < 2; i++) await sleep(10);
    (probe.held as unknown as FilterStream).sendLocalReply(403, 'denied here');
    await c.wait(2);
    assert.equal(c.frames[1].frame.requestId, 42);
    // 403 is MOSN's PermissionDeniedCode: Bolt has no permission status, MOSN answers SERVER_EXCEPTION.
    assert.equal(c.frames[1].frame.status, STATUS_SERVER_EXCEPTION);
    assert.equal(up.requests.length, 1);
  } finally {
    c.sock.destroy();
    server.close();
    await up.close();
  }
});

test('retry budget: circuit_breakers max_retries bounds the retries in flight per cluster (0 = no limit)', () => {
  const a = testCluster([1], { circuit_breakers: [{ max_retries: 2 }] });
  assert.equal(a.tryAcquireRetry(), true);
  assert.equal(a.tryAcquireRetry(), true);
  assert.equal(a.tryAcquireRetry(), false, 'a third retry in flight is refused');
  a.releaseRetry();
  assert.equal(a.tryAcquireRetry(), true, 'a finished retry frees its place');
  const b = testCluster([1]);
  for (let i = 0; i < 100; i++) assert.equal(b.tryAcquireRetry(), true);
});

test('HTTP proxy: a filter holds a request before routing and resumes it; a filter\'s local reply is an HTTP status', async () => {
  const be = await backend('b1');
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] };
  const doc = httpConfig([{ name: 'h1', downstream: 'Http1', router: 'r' }], [router], { web: [be.port] });
  const held = await inProcessProxy(doc, 'web', [probeFilter('h', DecodePhase.BeforeRoute, 'hold')]);
  const denied = await inProcessProxy(doc, 'web', [probeFilter('d', DecodePhase.AfterChooseHost, 'deny')]);
  try {
    probe.held = null;
    const pending = request(held.port, '/x');
    for (let i = 0; i < 50 && probe.held === null; i++) await sleep(10);
    const s = probe.held as FilterStream | null;
    assert.ok(s !== null, 'the filter holds the request');
    assert.equal(s.protocol, 'http1');
    assert.equal(s.header(':path'), '/x');
    await sleep(50);
    s.resume();
    const r = await pending;
    assert.equal(r.status, 200);
    const d = await request(denied.port, '/y');
    assert.equal(d.status, 403);
    assert.equal(d.body, 'denied');
  } finally {
    held.server.close();
    denied.server.close();
    await be.close();
  }
});

test('access log: %request_header_NAME% reads the stream, control bytes of client values are masked, IPv6 addresses bracketed', () => {
  const f = compileAccessLogFormat('%request_header_x-trace% %upstream_transport_failure_reason% %route_name% %response_header_x%');
  assert.deepEqual(f.requestHeaders, ['x-trace']);
  const line = renderAccessLog(f, {
    startTime: 0,
    upstreamTransportFailureReason: 'connect ECONNREFUSED',
    routeName: 'r1',
    requestHeaders: { logHeader: (n: string) => (n === 'x-trace' ? 'abc\ninjected 200' : undefined) },
  });
  assert.equal(line, 'abc?injected 200 connect ECONNREFUSED r1 -');
  assert.equal(hostPort('::1', 80), '[::1]:80');
  assert.equal(hostPort('127.0.0.1', 80), '127.0.0.1:80');
  assert.equal(hostPort('', 80), undefined);
});

test('HTTP tunnels run the stream filters: a CONNECT held before routing is resumed into a tunnel; an Upgrade denied after the host is answered 403', async () => {
  // An upstream that accepts any CONNECT / Upgrade head and then echoes.
  const up = net.createServer((sock) => {
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      const i = head.indexOf('\r\n\r\n');
      if (i < 0) return;
      sock.off('data', onData);
      sock.write(head.startsWith('CONNECT') ? 'HTTP/1.1 200 Connection Established\r\n\r\n' : 'HTTP/1.1 101 Switching Protocols\r\n\r\n');
      if (head.length > i + 4) sock.write(head.slice(i + 4), 'latin1');
      sock.pipe(sock);
    };
    sock.on('data', onData);
  });
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  const upPort = (up.address() as net.AddressInfo).port;
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] };
  const doc = httpConfig([{ name: 'h1', downstream: 'Http1', router: 'r' }], [router], { web: [upPort] });
  const held = await inProcessProxy(doc, 'web', [probeFilter('h', DecodePhase.BeforeRoute, 'hold')]);
  const denied = await inProcessProxy(doc, 'web', [probeFilter('d', DecodePhase.AfterChooseHost, 'deny')]);
  const sockets: net.Socket[] = [];
  const talk = (port: number, data: string): { sock: net.Socket; got: () => string } => {
    const sock = net.connect(port, '127.0.0.1');
    sockets.push(sock);
    let out = '';
    sock.on('data', (d: Buffer) => (out += d.toString('latin1')));
    sock.on('error', () => {});
    sock.write(data);
    return { sock, got: () => out };
  };
  try {
    probe.held = null;
    const c = talk(held.port, 'CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\nping');
    for (let i = 0; i < 50 && probe.held === null; i++) await sleep(10);
    const s = probe.held as FilterStream | null;
    assert.ok(s !== null, 'the filter holds the CONNECT request');
    assert.equal(s.protocol, 'http1');
    assert.equal(s.method(), 'CONNECT');
    assert.equal(s.header(':authority'), 'db.internal:5432');
    await sleep(50);
    assert.equal(c.got(), '', 'nothing reaches the client while the filter holds the request');
    s.resume();
    for (let i = 0; i < 100 && !c.got().endsWith('ping'); i++) await sleep(10);
    assert.equal(c.got(), 'HTTP/1.1 200 Connection Established\r\n\r\nping');
    const d = talk(denied.port, 'GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    for (let i = 0; i < 100 && !/^HTTP\/1\.1 \d{3}/.test(d.got()); i++) await sleep(10);
    assert.match(d.got(), /^HTTP\/1\.1 403 /);
  } finally {
    for (const sk of sockets) sk.destroy();
    held.server.close();
    denied.server.close();
    up.close();
  }
});
