/**
 * upstream-h2: a request on a real h2c server completes with its trailers, and the narrowed
 * AsyncResource.prototype.bind around session.request() is node's own again afterwards, also
 * when request() throws.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AsyncResource } from 'node:async_hooks';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { closeH2Sessions, startH2 } from '../../src/http/upstream-h2';
import type { Headers } from '../../src/http/headers';
import type { UpstreamSink } from '../../src/http/upstream';
import { testCluster } from '../helpers/cluster';

interface Result {
  status: number;
  body: string;
  trailers: Headers | null;
  error: Error | null;
}

function sink(done: (r: Result) => void): UpstreamSink {
  const r: Result = { status: 0, body: '', trailers: null, error: null };
  return {
    onResponseHeaders(status: number): void {
      r.status = status;
    },
    onResponseData(chunk: Buffer): boolean {
      r.body += chunk.toString();
      return true;
    },
    onResponseEnd(trailers: Headers | null): void {
      r.trailers = trailers;
      done(r);
    },
    onUpstreamError(_kind: unknown, err: Error): void {
      r.error = err;
      done(r);
    },
  } as UpstreamSink;
}

test('startH2: response and trailers; AsyncResource.prototype.bind restored after request(), also on a throw', async () => {
  const nodeBind = AsyncResource.prototype.bind;
  const server = http2.createServer();
  server.on('stream', (st, h) => {
    st.respond({ ':status': 200 }, { waitForTrailers: true });
    st.on('wantTrailers', () => st.sendTrailers({ 'x-path': String(h[':path']) }));
    st.end('ok');
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  const cluster = testCluster([port]);
  const host = cluster.hosts[0];
  try {
    for (const path of ['/a', '/b']) {
      const r = await new Promise<Result>((resolve) => {
        startH2(cluster, host, 65_535, { method: 'GET', path, authority: 'x', headers: { 'x-h': '1' }, body: null }, sink(resolve));
        assert.equal(AsyncResource.prototype.bind, nodeBind);
      });
      assert.equal(r.error, null);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
      assert.equal(r.trailers?.['x-path'], path);
    }
    // An invalid pseudo-header makes request() throw: the attempt fails, bind is node's again.
    const bad = await new Promise<Result>((resolve) => {
      startH2(cluster, host, 65_535, { method: 'GET', path: '/', authority: 'x', headers: { ':bogus': '1' }, body: null }, sink(resolve));
      assert.equal(AsyncResource.prototype.bind, nodeBind);
    });
    assert.ok(bad.error !== null);
  } finally {
    closeH2Sessions();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
