/**
 * Issue 16: the overload manager's actions, each configured in the MOSN config's
 * `overload_manager` section: stop accepting, shed new requests (HTTP 503, Bolt
 * SERVER_THREADPOOL_BUSY), close idle keep-alive connections; each counted in the stats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { STATUS_SERVER_THREADPOOL_BUSY } from '../../src/protocol/bolt/constants';
import { backend, httpConfig, request } from '../helpers/http';
import { listen } from '../helpers/net';
import { startSidecar, tcpProxyConfig, type RunningSidecar } from '../helpers/sidecar';
import { boltProxyConfig, rawClient, rawRequest, sleep } from '../helpers/sofa';

const ROUTER = {
  router_config_name: 'r',
  virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b', timeout: '30s' } }] }],
};

async function withHttp(overload: Record<string, unknown>, fn: (port: number, sc: RunningSidecar) => Promise<void>): Promise<void> {
  const b = await backend('b', (req, res) => {
    if ((req.url ?? '').startsWith('/hang')) return; // never answers
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  const sc = await startSidecar({ ...httpConfig([{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }], [ROUTER], { b: [b.port] }), overload_manager: overload });
  try {
    await fn(sc.ports.get('h')!, sc);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await b.close();
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** Resolves with the bytes read when the peer closes (or '' + 'open' after `ms`). */
function closedWithin(s: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    s.resume();
  });
}

test('overload: max_downstream_connections — beyond it new connections are closed at accept, and counted', { timeout: 30_000 }, () =>
  withHttp({ max_downstream_connections: 2 }, async (port, sc) => {
    const a = await connect(port);
    const b = await connect(port);
    await sleep(200);
    const c = await connect(port);
    assert.equal(await closedWithin(c, 2000), true, 'the third connection was not closed');
    assert.equal((await sc.stats()).listeners.h.downstream_cx_overload_reject, 1);
    a.destroy();
    await sleep(200);
    // Room again: a real client is served.
    const r = await request(port, '/ok');
    assert.equal(r.status, 200);
    b.destroy();
  }));

test('overload: max_active_requests — a new HTTP request beyond it gets 503 at once, and is counted', { timeout: 30_000 }, () =>
  withHttp({ max_active_requests: 1 }, async (port, sc) => {
    const hung = await connect(port);
    hung.write('GET /hang HTTP/1.1\r\nHost: a\r\n\r\n');
    await sleep(300);
    const t0 = performance.now();
    const r = await request(port, '/ok');
    assert.equal(r.status, 503);
    assert.match(r.body, /overloaded/);
    assert.ok(performance.now() - t0 < 1000);
    assert.equal((await sc.stats()).listeners.h.downstream_rq_overload_shed, 1);
    hung.destroy();
    await sleep(300);
    assert.equal((await request(port, '/ok')).status, 200);
  }));

test('overload: max_active_requests — a Bolt request beyond it gets SERVER_THREADPOOL_BUSY', { timeout: 30_000 }, async () => {
  const socks = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
    s.resume();
  });
  const upPort = await listen(silent);
  const sc = await startSidecar({ ...boltProxyConfig({ clusters: { up: [upPort] } }), overload_manager: { max_active_requests: 1 } });
  try {
    const c = await rawClient(sc.ports.get('bolt')!);
    c.sock.write(rawRequest(1, 'svc', { timeout: 10_000 }));
    await sleep(300);
    c.sock.write(rawRequest(2, 'svc', { timeout: 10_000 }));
    await c.wait(1, 2000);
    assert.equal(c.frames[0].frame.requestId, 2);
    assert.equal(c.frames[0].frame.status, STATUS_SERVER_THREADPOOL_BUSY);
    assert.equal((await sc.stats()).listeners.bolt.downstream_rq_overload_shed, 1);
    c.sock.destroy();
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    for (const s of socks) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});

// Memory actions: max_heap_bytes far above the process, one action's fraction far below its RSS.
const HEAP = 8 * 1024 ** 3;
const ON = 0.0001; // 0.8 MiB of 8 GiB: always reached
const OFF = 1;

test('overload: memory — close_idle_connections closes idle keep-alive connections and ends keep-alive', { timeout: 30_000 }, () =>
  withHttp({ max_heap_bytes: HEAP, refresh_interval: '100ms', heap_actions: { close_idle_connections: ON, shed_requests: OFF, stop_accepting: OFF } }, async (port, sc) => {
    const idle = await connect(port);
    assert.equal(await closedWithin(idle, 2000), true, 'an idle connection was not closed');
    assert.ok((await sc.stats()).listeners.h.downstream_cx_overload_idle_closed >= 1);
    const r = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/ok', agent: new http.Agent({ keepAlive: true }) }, resolve).on('error', reject);
    });
    r.resume();
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers.connection, 'close');
  }));

test('overload: memory — shed_requests answers new requests 503', { timeout: 30_000 }, () =>
  withHttp({ max_heap_bytes: HEAP, heap_actions: { close_idle_connections: OFF, shed_requests: ON, stop_accepting: OFF } }, async (port, sc) => {
    const r = await request(port, '/ok');
    assert.equal(r.status, 503);
    assert.equal((await sc.stats()).listeners.h.downstream_rq_overload_shed, 1);
  }));

test('overload: memory — stop_accepting closes new connections at accept', { timeout: 30_000 }, () =>
  withHttp({ max_heap_bytes: HEAP, heap_actions: { close_idle_connections: OFF, shed_requests: OFF, stop_accepting: ON } }, async (port, sc) => {
    const c = await connect(port);
    assert.equal(await closedWithin(c, 2000), true);
    assert.equal((await sc.stats()).listeners.h.downstream_cx_overload_reject, 1);
  }));

test('overload_manager and limits: bad values are refused with their JSON path', { timeout: 30_000 }, async () => {
  const { parseConfig } = await import('../../src/config/parse');
  const base = tcpProxyConfig({ upstreams: [1] });
  assert.throws(() => parseConfig({ ...base, overload_manager: { max_heap_bytes: 1000 } }), /overload_manager\.max_heap_bytes/);
  assert.throws(() => parseConfig({ ...base, overload_manager: { heap_actions: { shed_requests: 1.5 } } }), /overload_manager\.heap_actions\.shed_requests/);
  assert.throws(() => parseConfig({ ...base, overload_manager: { max_downstream_connections: -1 } }), /overload_manager\.max_downstream_connections/);
  assert.throws(() => parseConfig({ ...base, limits: { rpc_max_timeout: 'forever' } }), /limits\.rpc_max_timeout/);
  assert.throws(() => parseConfig({ ...base, limits: { upstream_queue_timeout: '0s' } }), /limits\.upstream_queue_timeout/);
  const ok = parseConfig({ ...base, limits: { rpc_max_timeout: '2s' }, overload_manager: { max_active_requests: 10 } });
  assert.equal(ok.limits?.rpcMaxTimeoutMs, 2000);
  assert.equal(ok.overload?.maxActiveRequests, 10);
});
