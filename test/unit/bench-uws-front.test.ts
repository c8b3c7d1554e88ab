// Tests of the bench peers `outrigger-uws` (uWebSockets.js downstream -> Outrigger's Exchange ->
// raw upstream pool) and `outrigger-uws-min` (uWS straight to the raw pool): both start pinned
// like the other peers, proxy GET/HEAD/POST to the real bench backend, forward bodies, paths and
// headers intact to a node:http origin (large responses and large request bodies through
// backpressure included), drop hop-by-hop headers, and decline every mode but http1. The full
// one answers as the Exchange does: x-request-id added when the client sent none, 503 "upstream
// connect error" when the upstream refuses; the minimal one answers 502. (The bench router has
// one '*' virtual host and a '/' prefix: no 404 to test; uWS itself drops a request without Host.)
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { peerByName, type RunningPeer } from '../../bench/peers';
import { startBackend } from '../../bench/load/run';
import { close, listen } from '../helpers/net';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(port: number, opts: http.RequestOptions, body?: Buffer | Buffer[], pauseMs = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const q = http.request({ host: '127.0.0.1', port, agent: false, ...opts }, (res) => {
      const parts: Buffer[] = [];
      if (pauseMs > 0) {
        // A slow reader: the proxy meets backpressure on its client side.
        res.pause();
        setTimeout(() => res.resume(), pauseMs);
      }
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    q.on('error', reject);
    if (Array.isArray(body)) {
      for (const b of body) q.write(b); // no content-length: chunked
      q.end();
    } else q.end(body);
  });
}

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

const FULL = 'outrigger-uws';
const MIN = 'outrigger-uws-min';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function withPeer(name: string, backendPort: number, fn: (p: RunningPeer) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-uws-test-'));
  const p = await peerByName(name)!.start({ mode: 'http1', backendPort, dir });
  try {
    await fn(p);
  } finally {
    await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('outrigger-uws peers: http1 only, described as the issue #4 candidate with and without the Exchange', () => {
  for (const name of [FULL, MIN]) {
    const p = peerByName(name);
    assert.ok(p, `${name} registered`);
    assert.equal(p.unavailable(), undefined, 'uWebSockets.js installed and the peer built');
    assert.equal(p.unsupported('http1'), undefined);
    for (const m of ['tcp', 'bolt', 'dubbo', 'tls', 'http2', 'grpc'] as const) assert.match(p.unsupported(m) ?? '', /HTTP\/1\.1/, `${name} ${m}`);
    assert.match(p.version(), /^uWebSockets\.js 20\.\d+\.\d+\S*, node v/);
  }
  assert.match(peerByName(FULL)!.description, /uWS downstream \+ Outrigger's Exchange and raw upstream pool/);
  assert.match(peerByName(MIN)!.description, /uWS downstream \+ Outrigger's raw upstream pool, no Exchange/);
});

for (const name of [FULL, MIN]) {
  test(`${name} peer proxies GET, HEAD and POST to the bench backend`, async () => {
    const backend = await startBackend();
    try {
      await withPeer(name, backend.ports.http, async (p) => {
        assert.equal(p.pids.length, 1);
        for (let i = 0; i < 3; i++) {
          const a = await request(p.port, { path: `/get/${i}?q=${i}` });
          assert.deepEqual([a.status, a.body.length, a.headers['content-type']], [200, 1024, 'application/octet-stream']);
        }
        const post = await request(p.port, { path: '/post', method: 'POST' }, crypto.randomBytes(100_000));
        assert.deepEqual([post.status, post.body.length], [200, 1024]);
        const head = await request(p.port, { path: '/', method: 'HEAD' });
        assert.deepEqual([head.status, head.body.length, head.headers['content-length']], [200, 0, '1024']);
        // Concurrent requests on several client connections.
        const many = await Promise.all(Array.from({ length: 20 }, (_, i) => request(p.port, { path: `/c/${i}` })));
        assert.deepEqual(
          many.map((a) => [a.status, a.body.length]),
          many.map(() => [200, 1024]),
        );
      });
    } finally {
      await backend.stop();
    }
  });

  test(`${name} peer forwards bodies, path, headers and large bodies both ways intact (node:http origin)`, async () => {
    const big = crypto.randomBytes(6 * 1024 * 1024 + 5);
    const origin = http.createServer({ keepAliveTimeout: 60_000 }, (q, r) => {
      const parts: Buffer[] = [];
      if (q.url === '/slow-reader') {
        // Reads the request body late: the proxy meets backpressure on its upstream side.
        q.pause();
        setTimeout(() => q.resume(), 300);
      }
      q.on('data', (d: Buffer) => parts.push(d));
      q.on('end', () => {
        const b = Buffer.concat(parts);
        if (q.url === '/big') {
          r.writeHead(200, { 'content-length': String(big.length) });
          r.end(big);
        } else if (q.url === '/big-chunked') {
          r.writeHead(200); // no length: chunked
          for (let i = 0; i < big.length; i += 500_000) r.write(big.subarray(i, i + 500_000));
          r.end();
        } else if (q.url === '/empty') {
          r.writeHead(204, { 'x-empty': 'yes' });
          r.end();
        } else {
          r.writeHead(201, { connection: 'x-hop', 'x-hop': 'dropped', 'x-kept': 'kept', 'content-type': 'application/json' });
          r.end(
            JSON.stringify({
              method: q.method,
              url: q.url,
              host: q.headers.host,
              drop: q.headers['x-drop'] ?? null,
              keep: q.headers['x-keep'] ?? null,
              rid: q.headers['x-request-id'] ?? null,
              len: b.length,
              sha: sha(b),
            }),
          );
        }
      });
    });
    const port = await listen(origin);
    try {
      await withPeer(name, port, async (p) => {
        const body = crypto.randomBytes(300_000);
        const a = await request(p.port, { path: '/echo/a%20b?x=1&y=2', method: 'PUT', headers: { host: 'svc.test', connection: 'x-drop', 'x-drop': '1', 'x-keep': '2' } }, body);
        assert.equal(a.status, 201);
        const ja = JSON.parse(a.body.toString()) as Record<string, unknown>;
        // Only the Exchange adds a request id (generate_request_id, on by default).
        if (name === FULL) assert.match(String(ja['rid']), UUID);
        else assert.equal(ja['rid'], null);
        assert.deepEqual({ ...ja, rid: null }, { method: 'PUT', url: '/echo/a%20b?x=1&y=2', host: 'svc.test', drop: null, keep: '2', rid: null, len: body.length, sha: sha(body) });
        assert.equal(a.headers['x-kept'], 'kept');
        assert.equal(a.headers['x-hop'], undefined, 'a header the upstream Connection names is not forwarded');
        // A client's request id is kept (the Exchange adds one only when there is none).
        const kept = await request(p.port, { path: '/echo', headers: { 'x-request-id': 'client-id-1' } });
        assert.equal((JSON.parse(kept.body.toString()) as { rid: unknown }).rid, 'client-id-1');
        // A chunked request body (collected in the minimal mode, streamed chunked through the Exchange).
        const c = await request(p.port, { path: '/echo', method: 'POST' }, [body.subarray(0, 1000), body.subarray(1000)]);
        const jc = JSON.parse(c.body.toString()) as Record<string, unknown>;
        assert.deepEqual([jc['method'], jc['url'], jc['host'], jc['len'], jc['sha']], ['POST', '/echo', `127.0.0.1:${p.port}`, body.length, sha(body)]);
        // A large request body to an origin that reads late (the upstream side pauses the client).
        const s = await request(p.port, { path: '/slow-reader', method: 'POST' }, big);
        const js = JSON.parse(s.body.toString()) as Record<string, unknown>;
        assert.deepEqual([s.status, js['len'], js['sha']], [201, big.length, sha(big)]);
        const e = await request(p.port, { path: '/empty' });
        assert.deepEqual([e.status, e.body.length, e.headers['x-empty']], [204, 0, 'yes']);
        // Large responses, with and without a length, to a client that reads late (backpressure).
        for (const url of ['/big', '/big-chunked']) {
          const r = await request(p.port, { path: url }, undefined, 300);
          assert.equal(r.status, 200, url);
          assert.equal(r.body.length, big.length, url);
          assert.equal(sha(r.body), sha(big), url);
          if (url === '/big') assert.equal(r.headers['content-length'], String(big.length));
          else assert.equal(r.headers['transfer-encoding'], 'chunked');
        }
      });
    } finally {
      origin.closeAllConnections();
      await close(origin);
    }
  });
}

test('outrigger-uws peer answers as the Exchange does: 503 "upstream connect error" when the upstream refuses', async () => {
  // Port 1 on 127.0.0.1: nothing listens there (connection refused).
  await withPeer(FULL, 1, async (p) => {
    for (const [method, body] of [['GET', undefined], ['POST', Buffer.from('body')], ['HEAD', undefined]] as const) {
      const a = await request(p.port, { path: '/p', method }, body);
      assert.equal(a.status, 503, method);
      if (method !== 'HEAD') assert.match(a.body.toString(), /^upstream connect error$/, method);
      assert.equal(a.headers['content-type'], 'text/plain', method);
    }
  });
});

test('outrigger-uws-min peer answers 502 when the upstream refuses', async () => {
  await withPeer(MIN, 1, async (p) => {
    assert.equal((await request(p.port, { path: '/' })).status, 502);
    assert.equal((await request(p.port, { path: '/p', method: 'POST' }, Buffer.from('body'))).status, 502);
  });
});
