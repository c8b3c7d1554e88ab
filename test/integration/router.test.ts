/**
 * The router end to end, with real peers through the real CLI: linear-time regexes against
 * hostile paths, path normalization against route bypasses (curl --path-as-is), absolute-form
 * targets (curl as a proxy client), and an RPC request on a listener whose only route is
 * HTTP-only (sofa-bolt-node client frames: NO_PROCESSOR at once, nothing forwarded).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { backend, httpConfig, raw, request, run, type Backend } from '../helpers/http';
import { BoltCollector, boltProxyConfig, sofaClient, sofaEncoder } from '../helpers/sofa';
import { listen } from '../helpers/net';

const ROUTER = {
  router_config_name: 'r',
  virtual_hosts: [
    { name: 'abs', domains: ['abs.example'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b2' } }] },
    {
      name: 'all',
      domains: ['*'],
      routers: [
        { match: { prefix: '/admin' }, direct_response: { status: 403, body: 'forbidden' } },
        { match: { regex: '^/(a+)+$' }, route: { cluster_name: 'b2' } },
        { match: { regex: '(a+)+$' }, route: { cluster_name: 'b2' } },
        { match: { prefix: '/', headers: [{ name: 'x-h', value: '(x+x+)+y', regex: true }] }, route: { cluster_name: 'b2' } },
        // Hostile paths that no regex matched end here (a node:http backend would refuse 64 KiB heads).
        { match: { prefix: '/aa' }, direct_response: { status: 404, body: 'no regex matched' } },
        { match: { prefix: '/' }, route: { cluster_name: 'b' } },
      ],
    },
  ],
};

/** Bigger heads than the 16 KiB default, for the 64 KiB hostile path. */
const EXTEND = { max_header_size: 256 * 1024 };

async function withProxy(
  fn: (port: number, b: Backend, b2: Backend, sc: RunningSidecar) => Promise<void>,
  opts: { env?: NodeJS.ProcessEnv; extend?: Record<string, unknown> } = {},
): Promise<void> {
  const b = await backend('b');
  const b2 = await backend('b2');
  const sc = await startSidecar(httpConfig([{ name: 'http', downstream: 'Auto', upstream: 'Http1', router: 'r', extend: { ...EXTEND, ...opts.extend } }], [ROUTER], { b: [b.port], b2: [b2.port] }), {
    workers: 1,
    env: opts.env,
  });
  try {
    await fn(sc.ports.get('http')!, b, b2, sc);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await b.close();
    await b2.close();
  }
}

/** curl's status code and body for a path sent as is (no client-side dot removal). */
async function curl(port: number, path: string, extra: string[] = []): Promise<{ status: number; body: string }> {
  const r = await run('curl', ['-s', '--max-time', '5', '--path-as-is', '-w', '\n%{http_code}', ...extra, `http://127.0.0.1:${port}${path}`]);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
}

const BYPASSES = ['/admin', '/x/../admin', '/./admin', '//admin', '/%61dmin', '/public/%2e%2e/admin', '/%2e/admin', '/admin/', '/admin/x/../y'];

for (const [engine, env, h2] of [
  ['raw HTTP/1.1 engine', undefined, false],
  ['node:http engine', { OUTRIGGER_H1_DOWNSTREAM: 'node' }, false],
  ['h2c', undefined, true],
] as const) {
  test(`path normalization (${engine}): every bypass of a /admin 403 route gets 403; normal paths route, normalized upstream`, { timeout: 60_000 }, () =>
    withProxy(
      async (port, b) => {
        const extra = h2 ? ['--http2-prior-knowledge'] : [];
        for (const p of BYPASSES) assert.deepEqual(await curl(port, p, extra), { status: 403, body: 'forbidden' }, p);
        for (const [sent, seen] of [
          ['/public/x', '/public/x'],
          ['/public/./a/../b?q=/../admin', '/public/b?q=/../admin'],
          ['//public//%7Euser', '/public/~user'],
          ['/administrator/../public', '/public'],
        ]) {
          const r = await curl(port, sent, extra);
          assert.equal(r.status, 200, sent);
          assert.equal(JSON.parse(r.body).url, seen, `${sent} is forwarded normalized`);
        }
        if (!h2) {
          // An Upgrade request is routed on the same normalized path: no tunnel to the backend.
          const up = await raw(port, 'GET /x/../admin HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 2000);
          assert.match(up, /^HTTP\/1\.1 404 /, 'refused here (a tunnel to the backend would be closed by it without an answer)');
        }
        assert.equal(b.seen.filter((s) => s.url.split('?')[0].includes('admin')).length, 0, 'nothing under /admin reached the backend');
      },
      { env },
    ),
  );
}

test('ReDoS: (a+)+ route regexes against a 28-char and a 64 KiB hostile path, and a hostile header, answer within milliseconds', { timeout: 60_000 }, () =>
  withProxy(async (port, _b, b2) => {
    // Warm up (connection pool, JIT).
    assert.equal((await request(port, '/warm')).status, 200);
    for (const len of [27, 64 * 1024]) {
      const path = '/' + 'a'.repeat(len) + '!';
      const t0 = performance.now();
      const r = await request(port, path);
      const ms = performance.now() - t0;
      assert.deepEqual([r.status, r.body], [404, 'no regex matched']);
      assert.ok(ms < 500, `${path.length}-char hostile path answered in ${ms.toFixed(1)} ms`);
    }
    const t0 = performance.now();
    const r = await request(port, '/h', { headers: { 'x-h': 'x'.repeat(64) } });
    assert.equal(JSON.parse(r.body).backend, 'b');
    assert.ok(performance.now() - t0 < 500, 'hostile header answered at once');
    // The regexes still match what they should.
    assert.equal(JSON.parse((await request(port, '/aaaa')).body).backend, 'b2');
    assert.equal(JSON.parse((await request(port, '/h', { headers: { 'x-h': 'xxy' } })).body).backend, 'b2');
    assert.equal(b2.seen.length, 2);
  }),
);

test('absolute-form requests are routed by the URI authority and forwarded in origin form', { timeout: 60_000 }, () =>
  withProxy(async (port, b, b2) => {
    // curl as a proxy client sends `GET http://abs.example/x/../y?q HTTP/1.1` with Host: abs.example.
    const viaProxy = await run('curl', ['-s', '--max-time', '5', '--path-as-is', '-x', `http://127.0.0.1:${port}`, 'http://abs.example/x/../y?q=1']);
    const got = JSON.parse(viaProxy.stdout);
    assert.equal(got.backend, 'b2', 'routed by the absolute URI authority');
    assert.equal(got.url, '/y?q=1', 'origin-form, normalized');
    assert.equal(got.headers.host, 'abs.example');
    // The URI's authority wins over a different Host header (RFC 9112 3.2.2).
    const r = await run('curl', ['-s', '--max-time', '5', '-H', 'Host: other.example', '--request-target', 'http://abs.example/z', `http://127.0.0.1:${port}/`]);
    assert.equal(JSON.parse(r.stdout).backend, 'b2');
    // And the 403 route cannot be bypassed through the absolute form.
    const adm = await run('curl', ['-s', '--max-time', '5', '-w', '\n%{http_code}', '--request-target', 'http://127.0.0.1/x/../admin', `http://127.0.0.1:${port}/`]);
    assert.match(adm.stdout, /\n403$/);
    const bad = await run('curl', ['-s', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', '--request-target', 'ftp://abs.example/z', `http://127.0.0.1:${port}/`]);
    assert.equal(bad.stdout, '400');
    assert.equal(b.seen.length, 0);
    assert.deepEqual(
      b2.seen.map((s) => s.url),
      ['/y?q=1', '/z'],
    );
  }),
);

test('path_with_escaped_slashes_action: reject, unescape-and-forward, unescape-and-redirect; keep is the default', { timeout: 60_000 }, async () => {
  await withProxy(async (port, b) => {
    assert.equal((await curl(port, '/x%2F..%2Fadmin')).status, 200, 'kept as is by default');
    assert.equal(b.seen[0].url, '/x%2F..%2Fadmin');
  });
  await withProxy(async (port) => assert.equal((await curl(port, '/x%2F..%2Fadmin')).status, 400), { extend: { path_with_escaped_slashes_action: 'REJECT_REQUEST' } });
  await withProxy(async (port) => assert.equal((await curl(port, '/x%2F..%2Fadmin')).status, 403), { extend: { path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' } });
  await withProxy(
    async (port) => {
      const r = await run('curl', ['-s', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `http://127.0.0.1:${port}/a%2Fb?q`]);
      assert.equal(r.stdout, `307 http://127.0.0.1:${port}/a/b?q`);
    },
    { extend: { path_with_escaped_slashes_action: 'unescape_and_redirect' } },
  );
  await withProxy(async (port, b) => assert.equal((await curl(port, '/x/../admin')).status, 200, b.seen[0]?.url), { extend: { normalize_path: false } });
});

for (const downstream of ['bolt', 'Auto']) {
  test(`a Bolt request on a ${downstream} listener whose only route has a path matcher gets NO_PROCESSOR at once (nothing forwarded)`, { timeout: 60_000 }, async () => {
    let accepted = 0;
    const web = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    const webPort = await listen(web);
    const sc = await startSidecar(boltProxyConfig({ clusters: { web: [webPort] }, downstreamProtocol: downstream, routes: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }));
    const port = sc.ports.get('bolt')!;
    const sock = net.connect({ port, host: '127.0.0.1' });
    const client = sofaClient(port);
    try {
      await new Promise((r) => sock.once('connect', r));
      const frames = new BoltCollector(sock);
      const enc = sofaEncoder();
      enc.pipe(sock);
      const t0 = performance.now();
      enc.writeRequest(9, { serverSignature: 'com.example.Svc:1.0', methodName: 'plus', args: [{ $class: 'int', $: 1 }], timeout: 3000, requestProps: { service: 'com.example.Svc:1.0' } });
      await frames.wait(1);
      const ms = performance.now() - t0;
      assert.equal(frames.frames[0].frame.requestId, 9);
      assert.equal(frames.frames[0].frame.status, 0x06, 'NO_PROCESSOR');
      assert.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms`);
      // The real sofa-rpc-node client gets an error, not a hang or a forwarded call.
      const consumer = await client.consumer('com.example.Svc');
      await assert.rejects(consumer.invoke('plus', [1, 2], { responseTimeout: 3000 }), (e: Error) => !/timeout/i.test(e.message));
      assert.equal(accepted, 0, 'the HTTP backend was never contacted');
    } finally {
      sock.destroy();
      await client.close();
      assert.equal(await sc.terminate(), 0);
      web.close();
    }
  });
}
