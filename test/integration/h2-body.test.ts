/**
 * Streamed request bodies into an HTTP/2 upstream (src/http/upstream-h2.ts forwardBody): an
 * 8 MiB body (h2c without content-length, h2c with a content-length over the retry buffer, and
 * HTTP/1.1 chunked) arrives whole and in order at a backend that stops reading for a while; while
 * it does not read, backpressure reaches the client (its last byte is not accepted before the
 * backend reads again), so the proxy does not buffer the body.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { startSidecar } from '../helpers/sidecar';
import { httpConfig } from '../helpers/http';

const BODY = randomBytes(8 * 1024 * 1024);
const BODY_SHA = createHash('sha256').update(BODY).digest('hex');
/** How long the backend leaves a body unread before it starts reading. */
const STALL_MS = 1000;

/** An h2c backend: reads nothing for STALL_MS, then answers the body's length and sha-256. */
async function h2Backend(): Promise<{ port: number; resumedAt: number[]; close(): Promise<void> }> {
  const server = http2.createServer();
  const resumedAt: number[] = [];
  server.on('stream', (st) => {
    st.pause();
    const hash = createHash('sha256');
    let n = 0;
    st.on('data', (d: Buffer) => {
      hash.update(d);
      n += d.length;
    });
    st.on('end', () => {
      st.respond({ ':status': 200, 'x-len': String(n), 'x-sha': hash.digest('hex') });
      st.end();
    });
    setTimeout(() => {
      resumedAt.push(performance.now());
      st.resume();
    }, STALL_MS);
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  return { port, resumedAt, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

interface Upload {
  status: number;
  len: string;
  sha: string;
  /** performance.now() when the client's last body byte was accepted (its write callback). */
  sentAt: number;
}

/** Writes BODY in 64 KiB writes, each after the previous one was accepted, then ends; `sent` gets the time of the last acceptance. */
function sendBody(w: NodeJS.WritableStream, sent: (t: number) => void): void {
  let off = 0;
  const next = (): void => {
    if (off >= BODY.length) {
      sent(performance.now());
      w.end();
      return;
    }
    const part = BODY.subarray(off, off + 64 * 1024);
    off += part.length;
    w.write(part, next);
  };
  next();
}

/** POST of BODY over h2c in 64 KiB writes, each after the previous one was accepted. */
function h2Upload(port: number, withLength: boolean): Promise<Upload> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const h: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': '/upload' };
    if (withLength) h['content-length'] = String(BODY.length);
    const st = session.request(h);
    let sentAt = 0;
    let head: http2.IncomingHttpHeaders = {};
    st.on('response', (r) => (head = r));
    st.resume();
    st.on('end', () => {
      session.close();
      resolve({ status: Number(head[':status']), len: String(head['x-len']), sha: String(head['x-sha']), sentAt });
    });
    st.on('error', reject);
    sendBody(st, (t) => (sentAt = t));
  });
}

/** POST of BODY over HTTP/1.1, chunked, in 64 KiB writes. */
function h1Upload(port: number): Promise<Upload> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'transfer-encoding': 'chunked' } });
    let sentAt = 0;
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, len: String(res.headers['x-len']), sha: String(res.headers['x-sha']), sentAt }));
    });
    req.on('error', reject);
    sendBody(req, (t) => (sentAt = t));
  });
}

test('streamed request bodies into an h2c upstream: whole, in order, with backpressure to the client', { timeout: 90_000 }, async () => {
  const b = await h2Backend();
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b', timeout: '60s' } }] }] };
  const sc = await startSidecar(
    httpConfig(
      [
        { name: 'h2', downstream: 'Http2', upstream: 'Http2', router: 'r' },
        { name: 'h1', downstream: 'Http1', upstream: 'Http2', router: 'r' },
      ],
      [router],
      { b: [b.port] },
    ),
    { workers: 1 },
  );
  try {
    const cases: [string, () => Promise<Upload>][] = [
      ['h2c, no content-length', () => h2Upload(sc.ports.get('h2')!, false)],
      ['h2c, content-length', () => h2Upload(sc.ports.get('h2')!, true)],
      ['HTTP/1.1 chunked', () => h1Upload(sc.ports.get('h1')!)],
    ];
    for (const [name, upload] of cases) {
      const r = await upload();
      assert.equal(r.status, 200, name);
      assert.equal(r.len, String(BODY.length), name);
      assert.equal(r.sha, BODY_SHA, name);
      // The backend read nothing for STALL_MS: a proxy that kept reading the client would have
      // taken all 8 MiB before the backend resumed.
      const resumed = b.resumedAt[b.resumedAt.length - 1];
      assert.ok(r.sentAt > resumed, `${name}: the client's last byte was accepted ${(resumed - r.sentAt).toFixed(0)} ms before the backend read anything`);
    }
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await b.close();
  }
});
