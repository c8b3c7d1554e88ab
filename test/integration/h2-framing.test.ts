/**
 * h2c -> h2c response framing through Outrigger: a complete small response leaves as HEADERS +
 * DATA(END_STREAM) (no empty trailing DATA frame), trailers of non-gRPC responses pass with and
 * without a body, a response that is still open gets its head at once, large bodies arrive whole.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { existsSync } from 'node:fs';
import { startSidecar } from '../helpers/sidecar';
import { httpConfig, run } from '../helpers/http';

const SMALL = Buffer.alloc(1024, 'a');
const BIG = Buffer.alloc(200 * 1024, 'b');
const SLOW_MS = 600;

/** An h2c backend on the core stream API; one behaviour per path. */
async function h2Backend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer();
  server.on('stream', (st, h) => {
    const path = h[':path'];
    if (path === '/trailers-body' || path === '/trailers-nobody') {
      st.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
      st.on('wantTrailers', () => st.sendTrailers({ 'x-checksum': 'abc', 'x-count': '2' }));
      if (path === '/trailers-body') st.end('with trailers');
      else st.end();
    } else if (path === '/slow') {
      st.respond({ ':status': 200 });
      st.write('first;');
      setTimeout(() => st.end('last'), SLOW_MS);
    } else if (path === '/big') {
      st.respond({ ':status': 200 });
      for (let i = 0; i < BIG.length; i += 10_000) st.write(BIG.subarray(i, i + 10_000));
      st.end();
    } else if (path === '/empty') {
      st.respond({ ':status': 200, 'x-empty': '1' });
      st.end();
    } else {
      st.respond({ ':status': 200, 'content-length': String(SMALL.length) });
      st.end(SMALL);
    }
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

interface Got {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | null;
  body: Buffer;
  headMs: number;
  endMs: number;
}

function get(session: http2.ClientHttp2Session, path: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const st = session.request({ ':path': path });
    const parts: Buffer[] = [];
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | null = null;
    let headMs = -1;
    st.on('response', (h) => {
      headMs = performance.now() - t0;
      status = Number(h[':status']);
      headers = h;
    });
    st.on('trailers', (t) => (trailers = t));
    st.on('data', (d: Buffer) => parts.push(d));
    st.on('end', () => resolve({ status, headers, trailers, body: Buffer.concat(parts), headMs, endMs: performance.now() - t0 }));
    st.on('error', reject);
  });
}

test('h2c -> h2c: small responses end with their DATA frame; trailers, open and large responses pass', { timeout: 60_000 }, async () => {
  const b = await h2Backend();
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b' } }] }] };
  const sc = await startSidecar(httpConfig([{ name: 'h2', downstream: 'Http2', upstream: 'Http2', router: 'r' }], [router], { b: [b.port] }), { workers: 1 });
  const port = sc.ports.get('h2')!;
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const small = await get(session, '/small');
    assert.equal(small.status, 200);
    assert.deepEqual(small.body, SMALL);
    assert.equal(small.trailers, null);

    for (const path of ['/trailers-body', '/trailers-nobody']) {
      const r = await get(session, path);
      assert.equal(r.status, 200, path);
      assert.equal(r.body.toString(), path === '/trailers-body' ? 'with trailers' : '', path);
      assert.ok(r.trailers !== null, `${path}: trailers forwarded`);
      assert.equal(r.trailers['x-checksum'], 'abc', path);
      assert.equal(r.trailers['x-count'], '2', path);
    }

    const empty = await get(session, '/empty');
    assert.equal(empty.status, 200);
    assert.equal(empty.headers['x-empty'], '1');
    assert.equal(empty.body.length, 0);

    // The head of a response that stays open is not held until its end.
    const slow = await get(session, '/slow');
    assert.equal(slow.body.toString(), 'first;last');
    assert.ok(slow.headMs < SLOW_MS / 2, `head after ${slow.headMs.toFixed(0)} ms, end after ${slow.endMs.toFixed(0)} ms`);
    assert.ok(slow.endMs >= SLOW_MS - 50, `end after ${slow.endMs.toFixed(0)} ms`);

    const big = await get(session, '/big');
    assert.ok(big.body.equals(BIG), `big body: ${big.body.length} bytes`);

    // 50 concurrent small responses on one connection.
    const many = await Promise.all(Array.from({ length: 50 }, () => get(session, '/small')));
    for (const r of many) assert.deepEqual(r.body, SMALL);

    // Frame level (nghttp -v): END_STREAM rides on the 1 KiB DATA frame, no empty DATA frame follows.
    if (existsSync('/usr/bin/nghttp')) {
      const out = await run('nghttp', ['-v', `http://127.0.0.1:${port}/small`], 10_000);
      assert.equal(out.code, 0, out.stderr);
      const data = [...out.stdout.matchAll(/recv DATA frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=(\d+)>/g)].map((m) => ({ len: Number(m[1]), flags: parseInt(m[2], 16) }));
      assert.deepEqual(data, [{ len: 1024, flags: 1 }], out.stdout);
    }
  } finally {
    session.close();
    assert.equal(await sc.terminate(), 0, sc.output());
    await b.close();
  }
});
