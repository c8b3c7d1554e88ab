/**
 * The raw HTTP/1.1 engine (src/http/h1) end to end through the real CLI: what node:http used to
 * do for us and the raw engine now does itself — pipelining, chunked bodies both ways with
 * trailers, 100-continue, HTTP/1.0 clients, HEAD/204/304 framing, big bodies with backpressure,
 * slow bodies, clients that vanish, garbage — with curl and node:http as the real peers.
 * The same checks run in Auto mode (sniffed, stream-mode reads), with the node:http engine
 * (OUTRIGGER_H1_DOWNSTREAM=node) and with both library engines (+ OUTRIGGER_H1_UPSTREAM=undici):
 * every engine must give the same answers.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { backend, httpConfig, raw, run, type Backend } from '../helpers/http';

const ROUTER = {
  router_config_name: 'r',
  virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b', timeout: '5s' } }] }],
};

/** Backend behaviours by path. */
function handler(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
  const u = req.url ?? '/';
  if (u.startsWith('/chunked-trailers')) {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-sum' });
    res.write('part1-');
    res.write('part2');
    res.addTrailers({ 'x-sum': 'abc' });
    res.end();
  } else if (u.startsWith('/nocontent')) {
    res.writeHead(204);
    res.end();
  } else if (u.startsWith('/notmodified')) {
    res.writeHead(304, { etag: '"x"' });
    res.end();
  } else if (u.startsWith('/big')) {
    const n = Number(new URL(u, 'http://x').searchParams.get('n'));
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
    let left = n;
    const pump = (): void => {
      while (left > 0) {
        const k = Math.min(left, chunk.length);
        left -= k;
        if (!res.write(k === chunk.length ? chunk : chunk.subarray(0, k))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  } else if (u.startsWith('/hash')) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${body.length}:${createHash('sha256').update(body, 'latin1').digest('hex')}`);
  } else {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-method': req.method ?? '' });
    res.end(req.method === 'HEAD' ? undefined : `${req.method} ${u} ${body}`);
  }
}

async function withProxy(
  fn: (port: number, sc: RunningSidecar, b: Backend) => Promise<void>,
  opts: { downstream?: string; env?: NodeJS.ProcessEnv; extend?: Record<string, unknown> } = {},
): Promise<void> {
  const b = await backend('b', handler);
  const sc = await startSidecar(
    httpConfig([{ name: 'h', downstream: opts.downstream ?? 'Http1', upstream: 'Http1', router: 'r', extend: opts.extend }], [ROUTER], { b: [b.port] }),
    { workers: 1, env: opts.env },
  );
  try {
    await fn(sc.ports.get('h')!, sc, b);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await b.close();
  }
}

/** Splits raw HTTP/1.1 response bytes into status lines, in order. */
function statusLines(out: string): string[] {
  return out.split('\r\n').filter((l) => /^HTTP\/1\.[01] \d{3}/.test(l));
}

const MODES: readonly [string, { downstream?: string; env?: NodeJS.ProcessEnv }][] = [
  ['raw engine, Http1', {}],
  ['raw engine, Auto (sniffed)', { downstream: 'Auto' }],
  ['node:http engine', { env: { OUTRIGGER_H1_DOWNSTREAM: 'node' } }],
  ['library engines (node:http + undici)', { env: { OUTRIGGER_H1_DOWNSTREAM: 'node', OUTRIGGER_H1_UPSTREAM: 'undici' } }],
];

for (const [mode, opts] of MODES) {
  test(`${mode}: pipelined requests answered in order on one connection`, { timeout: 30_000 }, () =>
    withProxy(async (port) => {
      const out = await raw(
        port,
        'GET /one HTTP/1.1\r\nHost: a\r\n\r\n' +
          'POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' +
          'GET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      );
      assert.deepEqual(statusLines(out), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'], out);
      const one = out.indexOf('GET /one');
      const two = out.indexOf('POST /two hello');
      const three = out.indexOf('GET /three');
      assert.ok(one >= 0 && two > one && three > two, out);
    }, opts));

  test(`${mode}: chunked upload (curl) and chunked response with trailers`, { timeout: 30_000 }, () =>
    withProxy(async (port, _sc, b) => {
      const payload = 'x'.repeat(100_000);
      const up = await run('curl', ['-sS', '-H', 'Transfer-Encoding: chunked', '--data-binary', payload, `http://127.0.0.1:${port}/hash`]);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(up.stdout, `${payload.length}:${createHash('sha256').update(payload).digest('hex')}`);
      assert.equal(b.seen.at(-1)?.headers['transfer-encoding'], 'chunked');
      // node:http client reads the trailers.
      const t = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/chunked-trailers', agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ body, trailers: res.trailers }));
          })
          .on('error', reject);
      });
      assert.equal(t.body, 'part1-part2');
      assert.equal(t.trailers['x-sum'], 'abc');
    }, opts));

  test(`${mode}: Expect 100-continue, HTTP/1.0 clients, HEAD, 204 and 304 framing`, { timeout: 30_000 }, () =>
    withProxy(async (port, sc) => {
      const c = await run('curl', ['-sS', '-H', 'Expect: 100-continue', '--data-binary', 'abc', `http://127.0.0.1:${port}/e`]);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.stdout, 'POST /e abc');
      // HTTP/1.0 without keep-alive: answered, then closed.
      const h10 = await raw(port, 'GET /ten HTTP/1.0\r\n\r\n');
      assert.match(h10, /^HTTP\/1\.[01] 200 /, sc.output());
      assert.match(h10, /GET \/ten $/);
      // HTTP/1.0 asking for a response whose length the upstream did not give (chunked there): close-delimited.
      const h10c = await raw(port, 'GET /chunked-trailers HTTP/1.0\r\n\r\n');
      assert.match(h10c, /^HTTP\/1\.[01] 200 /);
      assert.ok(!/transfer-encoding: chunked/i.test(h10c), h10c);
      assert.ok(h10c.endsWith('part1-part2'), h10c);
      const head = await raw(port, 'HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /after-head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.deepEqual(statusLines(head), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'], head);
      assert.ok(head.includes('GET /after-head'), head);
      const nc = await raw(port, 'GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\nGET /notmodified HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.deepEqual(statusLines(nc), ['HTTP/1.1 204 No Content', 'HTTP/1.1 304 Not Modified', 'HTTP/1.1 200 OK'], nc);
    }, opts));

  test(`${mode}: 16 MiB down and 16 MiB up with hashes, a slow reader, and a client that vanishes`, { timeout: 60_000 }, () =>
    withProxy(async (port, sc) => {
      const n = 16 * 1024 * 1024;
      // Download, read slowly at first (backpressure through the proxy).
      const got = await new Promise<{ len: number; hash: string }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: `/big?n=${n}`, agent: false }, (res) => {
            const h = createHash('sha256');
            let len = 0;
            res.pause();
            setTimeout(() => res.resume(), 500);
            res.on('data', (d: Buffer) => {
              len += d.length;
              h.update(d);
            });
            res.on('end', () => resolve({ len, hash: h.digest('hex') }));
          })
          .on('error', reject);
      });
      assert.equal(got.len, n);
      assert.equal(got.hash, createHash('sha256').update(Buffer.alloc(n, 0x61)).digest('hex'));
      // Upload with content-length.
      const body = Buffer.alloc(n, 0x62);
      const up = await new Promise<string>((resolve, reject) => {
        const r = http.request({ host: '127.0.0.1', port, path: '/hash', method: 'PUT', agent: false, headers: { 'content-length': String(n) } }, (res) => {
          let s = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (s += d));
          res.on('end', () => resolve(s));
        });
        r.on('error', reject);
        r.end(body);
      });
      assert.equal(up, `${n}:${createHash('sha256').update(body).digest('hex')}`);
      // A client that goes away mid-download: counted, nothing else breaks.
      await new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(`GET /big?n=${n} HTTP/1.1\r\nHost: a\r\n\r\n`));
        s.once('data', () => {
          s.destroy();
          resolve();
        });
      });
      await new Promise((r) => setTimeout(r, 300));
      const after = await raw(port, 'GET /still-alive HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.match(after, /GET \/still-alive/);
      const st = await sc.stats();
      assert.ok(st.listeners.h.downstream_rq_reset >= 1, JSON.stringify(st.listeners.h));
    }, opts));
}

test('raw engine: a request body slower than request_timeout gets 408; an idle connection is closed after idle_timeout', { timeout: 30_000 }, () =>
  withProxy(
    async (port) => {
      const t0 = Date.now();
      const out = await new Promise<string>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('close', () => resolve(got));
        s.write('POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab');
        const iv = setInterval(() => s.writable && s.write('c'), 200);
        s.on('close', () => clearInterval(iv));
      });
      assert.match(out, /^HTTP\/1\.1 408 /);
      assert.ok(Date.now() - t0 >= 900, 'not before request_timeout');
      const idle = await new Promise<number>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        const t = Date.now();
        s.on('close', () => resolve(Date.now() - t));
        s.on('error', () => {});
      });
      assert.ok(idle >= 400 && idle < 5000, `idle close after ${idle} ms`);
    },
    { extend: { request_timeout: '1s', idle_timeout: '500ms' } },
  ));

test('raw engine: garbage and random splits never take the worker down', { timeout: 60_000 }, () =>
  withProxy(async (port, sc) => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const good = Buffer.from('POST /g HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    for (let i = 0; i < 60; i++) {
      const b = Buffer.from(good);
      for (let k = 0; k < 1 + rnd(4); k++) b[rnd(b.length)] = rnd(256);
      await raw(port, b, 300);
    }
    // A valid request split at every byte still works.
    for (let cut = 1; cut < good.length; cut += 7) {
      const out = await new Promise<string>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write(good.subarray(0, cut));
          setTimeout(() => s.end(good.subarray(cut)), 20);
        });
        let got = '';
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
      });
      assert.match(out, /POST \/g hello/, `cut at ${cut}: ${out}`);
    }
    const st = await sc.stats();
    assert.ok(st.listeners.h !== undefined);
    const ok = await raw(port, 'GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(ok, /GET \/ok/);
  }));
