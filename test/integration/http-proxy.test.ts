/**
 * The HTTP proxy end to end: the real CLI, real peers (curl, h2load, autocannon, node:http
 * and node:http2 backends), port 0 everywhere.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { backend, deadPort, httpConfig, raw, request, request2, run, type Backend } from '../helpers/http';

const ROUTER = {
  router_config_name: 'r',
  virtual_hosts: [
    {
      name: 'special',
      domains: ['special.example', '*.wild.example'],
      response_headers_to_add: [{ header: { key: 'x-vh', value: 'special' } }],
      routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b' } }],
    },
    {
      name: 'all',
      domains: ['*'],
      routers: [
        { match: { path: '/direct' }, direct_response: { status: 418, body: 'teapot' } },
        { match: { prefix: '/old/' }, redirect: { path_redirect: '/new/place', response_code: 302 } },
        { match: { prefix: '/api/v1/' }, route: { cluster_name: 'b', prefix_rewrite: '/v1/', host_rewrite: 'upstream.example' } },
        { match: { regex: '/item/[0-9]+' }, route: { cluster_name: 'b2' } },
        { match: { prefix: '/', headers: [{ name: 'x-canary', value: 'yes' }] }, route: { cluster_name: 'b2' } },
        { match: { prefix: '/by-header' }, route: { cluster_header: 'x-cluster' } },
        { match: { prefix: '/weighted' }, route: { weighted_clusters: [{ cluster: { name: 'b', weight: 80 } }, { cluster: { name: 'b2', weight: 20 } }] } },
        {
          match: { prefix: '/' },
          route: {
            cluster_name: 'b',
            request_headers_to_add: [{ header: { key: 'x-added', value: 'a' }, append: false }],
            request_headers_to_remove: ['x-secret'],
            response_headers_to_add: [{ header: { key: 'x-resp', value: 'r' } }],
            response_headers_to_remove: ['x-remove-me'],
          },
        },
      ],
    },
  ],
};

async function withProxy(
  fn: (sc: RunningSidecar, b: Backend, b2: Backend) => Promise<void>,
  opts: { downstream?: string; upstream?: string; extend?: Record<string, unknown>; h2Backends?: boolean } = {},
): Promise<void> {
  const b = await backend('b', undefined, opts.h2Backends === true);
  const b2 = await backend('b2', undefined, opts.h2Backends === true);
  const sc = await startSidecar(
    httpConfig([{ name: 'http', downstream: opts.downstream ?? 'Auto', upstream: opts.upstream ?? 'Http1', router: 'r', extend: opts.extend }], [ROUTER], { b: [b.port], b2: [b2.port] }),
    { workers: 1 },
  );
  try {
    await fn(sc, b, b2);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await b.close();
    await b2.close();
  }
}

test('routing, header operations, rewrites, direct_response and redirect over HTTP/1.1 and h2c', { timeout: 60_000 }, () =>
  withProxy(async (sc) => {
    const port = sc.ports.get('http')!;
    for (const send of [request, request2]) {
      const r = await send(port, '/hello?q=1', { headers: { 'x-secret': 's', 'x-keep': 'k' } });
      assert.equal(r.status, 200);
      const body = JSON.parse(r.body);
      assert.equal(body.backend, 'b');
      assert.equal(body.url, '/hello?q=1');
      assert.equal(body.headers['x-added'], 'a');
      assert.equal(body.headers['x-keep'], 'k');
      assert.equal(body.headers['x-secret'], undefined, 'request header removed');
      assert.match(body.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'x-request-id generated');
      assert.equal(r.headers['x-resp'], 'r');
      assert.equal(r.headers['x-remove-me'], undefined, 'response header removed');
    }
    const kept = await request(port, '/x', { headers: { 'x-request-id': 'given-id' } });
    assert.equal(JSON.parse(kept.body).headers['x-request-id'], 'given-id', 'an existing x-request-id is kept');
    const d = await request(port, '/direct');
    assert.deepEqual([d.status, d.body], [418, 'teapot']);
    const d2 = await request2(port, '/direct');
    assert.deepEqual([d2.status, d2.body], [418, 'teapot']);
    const rd = await request(port, '/old/thing', { headers: { host: 'example.com' } });
    assert.equal(rd.status, 302);
    assert.equal(rd.headers.location, 'http://example.com/new/place');
    const rw = JSON.parse((await request(port, '/api/v1/users?id=3')).body);
    assert.equal(rw.url, '/v1/users?id=3', 'prefix_rewrite keeps the rest and the query');
    assert.equal(rw.headers.host, 'upstream.example', 'host_rewrite');
    assert.equal(JSON.parse((await request(port, '/item/42')).body).backend, 'b2', 'regex match');
    assert.equal(JSON.parse((await request(port, '/item/4x')).body).backend, 'b', 'regex is anchored');
    assert.equal(JSON.parse((await request(port, '/any', { headers: { 'x-canary': 'yes' } })).body).backend, 'b2', 'header match');
    assert.equal(JSON.parse((await request(port, '/by-header', { headers: { 'x-cluster': 'b2' } })).body).backend, 'b2', 'cluster_header');
    assert.equal((await request(port, '/by-header', { headers: { 'x-cluster': 'nope' } })).status, 404, 'cluster_header naming no cluster');
    const vh = await request(port, '/z', { headers: { host: 'a.wild.example' } });
    assert.equal(vh.headers['x-vh'], 'special', 'suffix domain picks its virtual host');
    let toB2 = 0;
    for (let i = 0; i < 200; i++) if (JSON.parse((await request(port, '/weighted')).body).backend === 'b2') toB2++;
    assert.ok(toB2 > 15 && toB2 < 70, `weighted 80/20: ${toB2} of 200 went to b2`);
    const st = await sc.stats();
    assert.ok(st.listeners.http.downstream_rq_2xx >= 205);
    assert.equal(st.listeners.http.downstream_rq_direct_response, 2);
    assert.equal(st.listeners.http.downstream_rq_redirect, 1);
    assert.ok(st.listeners.http.downstream_rq_http2 >= 2);
    assert.ok(st.clusters.b.upstream_rq_2xx > 0);
    const buckets = Object.entries(st.clusters.b).filter(([k]) => k.startsWith('upstream_rq_time_'));
    assert.equal(buckets.reduce((a, [, v]) => a + (v as number), 0), st.clusters.b.upstream_rq_2xx, 'every upstream response is in a latency bucket');
  }));

test('curl over HTTP/1.1 and h2c prior knowledge, and h2c upstream', { timeout: 60_000 }, () =>
  withProxy(
    async (sc) => {
      const port = sc.ports.get('http')!;
      const a = await run('curl', ['-s', '-i', `http://127.0.0.1:${port}/curl1`, '-d', 'payload']);
      assert.equal(a.code, 0, a.stderr);
      assert.match(a.stdout, /^HTTP\/1\.1 200/);
      assert.match(a.stdout, /"body":"payload"/);
      const b = await run('curl', ['-s', '-i', '--http2-prior-knowledge', `http://127.0.0.1:${port}/curl2`]);
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stdout, /^HTTP\/2 200/);
      assert.match(b.stdout, /"url":"\/curl2"/);
      assert.match(b.stdout, /":scheme":"http"/, 'the backend saw HTTP/2');
    },
    { upstream: 'Http2', h2Backends: true },
  ));

test('h2load through the proxy (h2c downstream, h2c and HTTP/1.1 upstream) all 2xx', { timeout: 120_000 }, async () => {
  for (const upstream of ['Http2', 'Http1']) {
    await withProxy(
      async (sc) => {
        const port = sc.ports.get('http')!;
        const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '10', `http://127.0.0.1:${port}/load`], 90_000);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /2000 succeeded, 0 failed, 0 errored/);
        assert.match(r.stdout, /status codes: 2000 2xx/);
        const line = /finished in .*/.exec(r.stdout)?.[0];
        console.log(`h2load h2c -> ${upstream}: ${line}`);
      },
      { downstream: 'Http2', upstream, h2Backends: upstream === 'Http2' },
    );
  }
});

test('autocannon through the proxy vs the backend directly', { timeout: 120_000 }, () =>
  withProxy(async (sc, b) => {
    const ac = require.resolve('autocannon/autocannon.js');
    const port = sc.ports.get('http')!;
    const bench = async (p: number): Promise<{ rps: number; non2xx: number; errors: number }> => {
      const r = await run(process.execPath, [ac, '-j', '-c', '16', '-d', '1', `http://127.0.0.1:${p}/bench`], 60_000);
      const j = JSON.parse(r.stdout);
      return { rps: j.requests.average, non2xx: j.non2xx, errors: j.errors };
    };
    const direct = await bench(b.port);
    const proxied = await bench(port);
    console.log(`autocannon -c 16 -d 1: direct ${Math.round(direct.rps)} req/s, through outrigger ${Math.round(proxied.rps)} req/s (${((100 * proxied.rps) / direct.rps).toFixed(0)}%)`);
    assert.equal(proxied.non2xx + proxied.errors, 0);
    assert.ok(proxied.rps > 100);
  }));

/** Request smuggling and malformed requests: raw bytes -> expected status (connection closed after). */
const MALFORMED: readonly [string, string, number][] = [
  ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['two different Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde', 400],
  ['Transfer-Encoding not ending in chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', 400],
  ['obfuscated Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400],
  ['bad chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
  ['negative Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400],
  ['obs-fold header line', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n', 400],
  ['space before colon', 'GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n', 400],
  ['NUL in a header value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u0000c\r\n\r\n', 400],
  ['bad request line', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['unknown HTTP version', 'GET / HTTP/9.9\r\nHost: a\r\n\r\n', 505],
  ['missing Host on HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
  ['header section too large', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ['too many headers', `GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 120 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, 431],
];

test('request smuggling and malformed requests: each answered with its status, nothing reaches the backend', { timeout: 60_000 }, () =>
  withProxy(async (sc, b) => {
    const port = sc.ports.get('http')!;
    for (const [name, bytes, status] of MALFORMED) {
      const out = await raw(port, bytes);
      assert.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: got ${JSON.stringify(out.slice(0, 60))}`);
    }
    assert.equal(b.seen.length, 0, 'no malformed request was forwarded');
    const st = await sc.stats();
    const l = st.listeners.http;
    assert.equal(l.downstream_rq_bad_request + l.downstream_rq_header_overflow, MALFORMED.length);
    assert.equal(l.downstream_rq_header_overflow, 2);
  }));

test('slow clients: a request head slower than headers_timeout gets 408', { timeout: 30_000 }, () =>
  withProxy(
    async (sc) => {
      const port = sc.ports.get('http')!;
      const s = net.connect(port, '127.0.0.1');
      let out = '';
      s.on('data', (d) => (out += d.toString()));
      s.write('GET / HTTP/1.1\r\nHost: a\r\n'); // and never the rest
      const t0 = Date.now();
      await new Promise<void>((resolve) => s.on('close', () => resolve()));
      assert.match(out, /^HTTP\/1\.1 408 /);
      assert.ok(Date.now() - t0 < 5000, 'closed within a few seconds');
      assert.equal((await sc.stats()).listeners.http.downstream_rq_request_timeout, 1);
    },
    { extend: { headers_timeout: '500ms', request_timeout: '2s' } },
  ));

test('retries: 5xx on GET retried, POST not, connect failure retried, per-try and route timeouts', { timeout: 60_000 }, async () => {
  let failNext = 0;
  const flaky = await backend('flaky', (req, res) => {
    if (req.url === '/slow') {
      setTimeout(() => res.end('slow'), 1500);
      return;
    }
    if (failNext > 0) {
      failNext--;
      res.writeHead(503).end('busy');
      return;
    }
    res.end(`ok ${req.method}`);
  });
  const dead = await deadPort();
  const router = {
    router_config_name: 'r',
    virtual_hosts: [
      {
        name: 'v',
        domains: ['*'],
        routers: [
          { match: { prefix: '/slow-route' }, route: { cluster_name: 'flaky', timeout: '300ms', prefix_rewrite: '/slow' } },
          { match: { prefix: '/slow' }, route: { cluster_name: 'flaky', retry_policy: { retry_on: '5xx,reset', num_retries: 1, retry_timeout: '200ms' } } },
          { match: { prefix: '/mixed' }, route: { cluster_name: 'mixed', retry_policy: { retry_on: 'connect-failure', num_retries: 2 } } },
          { match: { prefix: '/' }, route: { cluster_name: 'flaky', retry_policy: { retry_on: true, num_retries: 2 } } },
        ],
      },
    ],
  };
  const sc = await startSidecar(httpConfig([{ name: 'http', downstream: 'Http1', router: 'r' }], [router], { flaky: [flaky.port], mixed: [dead, flaky.port] }));
  try {
    const port = sc.ports.get('http')!;
    failNext = 1;
    const g = await request(port, '/get');
    assert.deepEqual([g.status, g.body], [200, 'ok GET'], 'GET retried after a 503');
    failNext = 1;
    const p = await request(port, '/post', { method: 'POST', body: 'x' });
    assert.equal(p.status, 503, 'POST is not idempotent: the 503 is passed on');
    failNext = 0;
    for (let i = 0; i < 4; i++) assert.equal((await request(port, '/mixed')).status, 200, 'connect failure retried on the other host');
    const slow = await request(port, '/slow');
    assert.equal(slow.status, 504, 'per-try timeout twice -> 504');
    const rt = await request(port, '/slow-route');
    assert.equal(rt.status, 504, 'route timeout -> 504');
    const st = await sc.stats();
    assert.ok(st.clusters.flaky.upstream_rq_retry >= 2, JSON.stringify(st.clusters.flaky));
    assert.ok(st.clusters.flaky.upstream_rq_retry_success >= 1);
    assert.equal(st.clusters.flaky.upstream_rq_per_try_timeout, 2);
    assert.ok(st.clusters.mixed.upstream_cx_connect_fail >= 1);
  } finally {
    assert.equal(await sc.terminate(), 0);
    await flaky.close();
  }
});

test('upstream killed during load: retried per config, every request answered exactly once, no hang', { timeout: 90_000 }, async () => {
  const b1 = await backend('k1');
  const b2 = await backend('k2');
  const router = {
    router_config_name: 'r',
    virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'c', timeout: '5s', retry_policy: { retry_on: 'connect-failure,reset,5xx', num_retries: 3 } } }] }],
  };
  const sc = await startSidecar(httpConfig([{ name: 'http', downstream: 'Http1', router: 'r' }], [router], { c: [b1.port, b2.port] }));
  try {
    const port = sc.ports.get('http')!;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const N = 1500;
    let answered = 0;
    const statuses = new Map<number, number>();
    let wrong = 0;
    let next = 0;
    const one = (i: number): Promise<void> =>
      new Promise((resolve) => {
        let ends = 0;
        const r = http.get({ host: '127.0.0.1', port, path: `/r/${i}`, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => {
            if (++ends > 1) wrong++;
            answered++;
            statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
            // A response meant for another request (answered twice, or crossed) shows here.
            if (res.statusCode === 200 && JSON.parse(body).url !== `/r/${i}`) wrong++;
            resolve();
          });
        });
        r.on('error', () => {
          statuses.set(-1, (statuses.get(-1) ?? 0) + 1);
          answered++;
          resolve();
        });
      });
    const workers = Array.from({ length: 16 }, async () => {
      while (next < N) {
        const i = next++;
        if (i === 300) void b1.close(); // kill one upstream (and its live sockets) mid-load
        await one(i);
      }
    });
    await Promise.all(workers);
    agent.destroy();
    assert.equal(answered, N, 'every request got exactly one outcome');
    assert.equal(wrong, 0, 'no response delivered twice or to the wrong request');
    assert.equal(statuses.get(200), N, `all answered 200 thanks to retries: ${JSON.stringify([...statuses])}`);
    const st = await sc.stats();
    console.log(`kill during load: ${N} requests, retries ${st.clusters.c.upstream_rq_retry}, resets ${st.clusters.c.upstream_rq_reset}, connect failures ${st.clusters.c.upstream_cx_connect_fail}`);
  } finally {
    assert.equal(await sc.terminate(), 0);
    await b2.close();
  }
});

test('WebSocket-style Upgrade and CONNECT pass through HTTP/1.1', { timeout: 30_000 }, async () => {
  const up = http.createServer((_req, res) => res.end('plain'));
  up.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Path: ${req.url}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  up.on('connect', (req, socket: net.Socket, head: Buffer) => {
    socket.write(`HTTP/1.1 200 Connection Established\r\nX-Target: ${req.url}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  const upPort = await new Promise<number>((resolve) => up.listen(0, '127.0.0.1', () => resolve((up.address() as net.AddressInfo).port)));
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'ws' } }] }] };
  const sc = await startSidecar(httpConfig([{ name: 'http', downstream: 'Auto', upstream: 'Http1', router: 'r' }], [router], { ws: [upPort] }));
  try {
    const port = sc.ports.get('http')!;
    const ws = await raw(port, 'GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nframe-bytes', 1000);
    assert.match(ws, /^HTTP\/1\.1 101 Switching Protocols/);
    assert.match(ws, /X-Path: \/chat/);
    assert.match(ws, /\r\n\r\nframe-bytes$/, 'bytes after the upgrade flow both ways');
    const ct = await raw(port, 'CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\nping', 1000);
    assert.match(ct, /^HTTP\/1\.1 200 Connection Established/);
    assert.match(ct, /X-Target: db\.internal:5432/);
    assert.match(ct, /\r\n\r\nping$/);
    const st = await sc.stats();
    assert.equal(st.listeners.http.downstream_rq_upgrade, 1);
    assert.equal(st.listeners.http.downstream_rq_connect, 1);
  } finally {
    assert.equal(await sc.terminate(), 0);
    up.closeAllConnections();
    up.close();
  }
});

test("MOSN examples/codes/http-sample shape: client sidecar (Http1 -> Http2) -> server sidecar (Http2 -> Http1) -> server", { timeout: 30_000 }, async () => {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const server = await backend('sample-server');
  const serverListenerPort = await deadPort();
  const fixture = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'http-sample.json'), 'utf8');
  const cfg = JSON.parse(fixture.replace(/__SERVER_PORT__/g, String(server.port)).replace(/__SERVER_LISTENER_PORT__/g, String(serverListenerPort)));
  const sc = await startSidecar(cfg);
  try {
    const port = sc.ports.get('clientListener')!;
    const r = await run('curl', ['-s', `http://127.0.0.1:${port}/hello`]);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout);
    assert.equal(body.backend, 'sample-server');
    assert.equal(body.url, '/hello');
    const st = await sc.stats();
    assert.equal(st.listeners.serverListener.downstream_rq_http2, 1, 'the hop between the sidecars is HTTP/2');
    assert.equal(st.listeners.clientListener.downstream_rq_http1, 1);
  } finally {
    assert.equal(await sc.terminate(), 0);
    await server.close();
  }
});
