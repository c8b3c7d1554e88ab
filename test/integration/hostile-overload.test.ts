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
    c.sock.resetAndDestroy(); // its pending request goes too: SIGTERM need not wait for it
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

/** An HTTP/2 client session that has made one request; resolves when it is closed, telling whether a GOAWAY came first. */
async function h2Idle(port: number): Promise<{ closed: Promise<{ goaway: boolean; ms: number }> }> {
  const http2 = await import('node:http2');
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on('error', () => {});
  let goaway = false;
  s.once('goaway', () => (goaway = true));
  await new Promise<void>((resolve, reject) => {
    const r = s.request({ ':path': '/ok' });
    r.on('error', reject);
    r.resume();
    r.once('end', () => resolve());
  });
  const t0 = Date.now();
  return { closed: new Promise((resolve) => s.once('close', () => resolve({ goaway, ms: Date.now() - t0 }))) };
}

/** An HTTP/1.1 keep-alive connection that has had one answered request; resolves when the proxy closes it. */
async function h1Idle(port: number): Promise<Promise<boolean>> {
  const s = await connect(port);
  s.write('GET /ok HTTP/1.1\r\nHost: a\r\n\r\n');
  await new Promise<void>((resolve) => s.once('data', () => resolve()));
  return closedWithin(s, 3000);
}

test('connection_idle_timeout closes idle keep-alive connections on every engine: raw and node:http HTTP/1.1, HTTP/2 with GOAWAY then close', { timeout: 60_000 }, async () => {
  const b = await backend('b');
  try {
    for (const env of [{}, { OUTRIGGER_H1_DOWNSTREAM: 'node' }]) {
      const cfg = httpConfig(
        [
          { name: 'h1', downstream: 'Http1', upstream: 'Http1', router: 'r' },
          { name: 'h2', downstream: 'Http2', upstream: 'Http1', router: 'r' },
        ],
        [ROUTER],
        { b: [b.port] },
      );
      for (const l of (cfg.servers as { listeners: Record<string, unknown>[] }[])[0].listeners) l.connection_idle_timeout = '400ms';
      const sc = await startSidecar(cfg, { env });
      try {
        const h1 = await h1Idle(sc.ports.get('h1')!);
        const h2 = await h2Idle(sc.ports.get('h2')!);
        assert.equal(await h1, true, `HTTP/1.1 idle connection closed (${JSON.stringify(env)})`);
        const c = await h2.closed;
        assert.equal(c.goaway, true, 'HTTP/2: GOAWAY before the close');
        assert.ok(c.ms < 3000, `HTTP/2 session closed after ${c.ms} ms`);
      } finally {
        assert.equal(await sc.terminate(), 0, sc.output());
      }
    }
  } finally {
    await b.close();
  }
});

test('overload: memory — close_idle_connections also covers the node:http engine and HTTP/2 sessions (GOAWAY)', { timeout: 30_000 }, async () => {
  const b = await backend('b');
  const cfg = httpConfig(
    [
      { name: 'h1', downstream: 'Http1', upstream: 'Http1', router: 'r' },
      { name: 'h2', downstream: 'Http2', upstream: 'Http1', router: 'r' },
    ],
    [ROUTER],
    { b: [b.port] },
  );
  const sc = await startSidecar({ ...cfg, overload_manager: { max_heap_bytes: HEAP, refresh_interval: '100ms', heap_actions: { close_idle_connections: ON, shed_requests: OFF, stop_accepting: OFF } } }, { env: { OUTRIGGER_H1_DOWNSTREAM: 'node' } });
  try {
    assert.equal(await (await h1Idle(sc.ports.get('h1')!)), true, 'node:http: an idle keep-alive connection was closed');
    const http2 = await import('node:http2');
    const s = http2.connect(`http://127.0.0.1:${sc.ports.get('h2')}`);
    s.on('error', () => {});
    const got = await new Promise<string>((resolve) => {
      s.once('goaway', () => resolve('goaway'));
      setTimeout(() => resolve('none'), 2000);
    });
    assert.equal(got, 'goaway');
    assert.ok((await sc.stats()).listeners.h2.downstream_cx_overload_idle_closed >= 1);
    s.destroy();
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await b.close();
  }
});
