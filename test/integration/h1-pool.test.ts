/**
 * The raw HTTP/1.1 upstream pool (src/http/h1/pool.ts) driven directly with a recording sink,
 * against real node:http servers on 127.0.0.1:0 (raw net servers only for what node:http never
 * sends: an HTTP/1.0 until-close body, garbage, a connection dropped between requests).
 */
import { afterEach, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { PassThrough } from 'node:stream';
import { parseConfig } from '../../src/config';
import '../../src/extensions'; // filter validators register themselves (the config layer imports no filter)
import { closeRawH1Pools, rawH1ConnectionCount, rawH1Timing, startRawH1 } from '../../src/http/h1/pool';
import type { Headers } from '../../src/http/headers';
import { FailKind, type BodySink, type BodySource, type UpstreamAttempt, type UpstreamRequest, type UpstreamSink } from '../../src/http/upstream';
import { C } from '../../src/stats/layout';
import { ClusterManager, type Cluster } from '../../src/upstream/cluster';
import { Pki } from '../helpers/certs';
import { close, listen } from '../helpers/net';

const BASE = 100;

/** A cluster with one host (as the worker builds it from a parsed config). */
function clusterFor(port: number, tls?: Record<string, unknown>): Cluster {
  const c: Record<string, unknown> = { name: 'up', connect_timeout: '2s', hosts: [{ address: `127.0.0.1:${port}` }] };
  if (tls) c.tls_context = tls;
  const cfg = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'up' } }] }] }] }],
    cluster_manager: { clusters: [c] },
  });
  return new ClusterManager(cfg.clusters, new Float64Array(4096), { up: BASE }).get('up')!;
}

function stat(cl: Cluster, off: number): number {
  return cl.counters[cl.base + off];
}

/** Records what an attempt reports; `onData` decides the return value of onResponseData. */
class Recorder implements UpstreamSink {
  status = 0;
  headers: Headers | null = null;
  endStream = false;
  trailers: Headers | null = null;
  parts: Buffer[] = [];
  bytes = 0;
  error: { kind: FailKind; err: Error } | null = null;
  ended = false;
  calls = 0;
  attempt: UpstreamAttempt | null = null;
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(private readonly onData?: (r: Recorder, chunk: Buffer) => boolean) {
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  onResponseHeaders(status: number, headers: Headers, endStream: boolean): void {
    this.calls++;
    assert.equal(this.status, 0, 'one head per response');
    this.status = status;
    this.headers = headers;
    this.endStream = endStream;
    if (endStream) {
      this.ended = true;
      this.finish();
    }
  }

  onResponseData(chunk: Buffer): boolean {
    this.calls++;
    assert.ok(!this.ended);
    this.parts.push(Buffer.from(chunk)); // the view is only valid during the call
    this.bytes += chunk.length;
    return this.onData ? this.onData(this, chunk) : true;
  }

  onResponseEnd(trailers: Headers | null): void {
    this.calls++;
    assert.ok(!this.ended, 'ends once');
    this.ended = true;
    this.trailers = trailers;
    this.finish();
  }

  onUpstreamError(kind: FailKind, err: Error): void {
    this.calls++;
    assert.ok(!this.ended && this.error === null, 'one outcome');
    this.error = { kind, err };
    this.finish();
  }

  get body(): string {
    return Buffer.concat(this.parts).toString();
  }
}

function req(path: string, o: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return { method: 'GET', path, authority: 'up.test', headers: {}, body: null, ...o };
}

async function send(cl: Cluster, r: UpstreamRequest, max = 4, onData?: (r: Recorder, chunk: Buffer) => boolean): Promise<Recorder> {
  const rec = new Recorder(onData);
  rec.attempt = startRawH1(cl, cl.hosts[0], max, r, rec);
  await rec.done;
  return rec;
}

interface Server {
  readonly port: number;
  connections: number;
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

async function httpServer(handler: http.RequestListener, opts: http.ServerOptions = {}): Promise<Server & { server: http.Server }> {
  const server = http.createServer({ keepAliveTimeout: 60_000, ...opts }, handler);
  return track(server) as Promise<Server & { server: http.Server }>;
}

async function rawServer(onSocket: (s: net.Socket, n: number) => void): Promise<Server> {
  let n = 0;
  const server = net.createServer((s) => {
    s.on('error', () => {});
    onSocket(s, n++);
  });
  return track(server);
}

async function track(server: net.Server): Promise<Server & { server: net.Server }> {
  const sockets = new Set<net.Socket>();
  const s = {
    server,
    port: 0,
    connections: 0,
    sockets,
    close: async () => {
      for (const k of sockets) k.destroy();
      await close(server);
    },
  };
  server.on('connection', (k: net.Socket) => {
    s.connections++;
    sockets.add(k);
    k.on('close', () => sockets.delete(k));
  });
  s.port = await listen(server);
  return s;
}

/** Reads a whole request body. */
function readAll(r: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    r.on('data', (d: Buffer) => parts.push(d));
    r.on('end', () => resolve(Buffer.concat(parts)));
    r.on('error', reject);
  });
}

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

afterEach(async () => {
  await closeRawH1Pools();
  assert.equal(rawH1ConnectionCount(), 0, 'every upstream connection closed');
});

test('keep-alive: 100 sequential requests on one TCP connection', async () => {
  const seen: string[] = [];
  const s = await httpServer((q, r) => {
    seen.push(`${q.method} ${q.url} ${q.headers.host} ${q.headers['x-n']}`);
    r.end(`hello ${q.url}`);
  });
  const cl = clusterFor(s.port);
  for (let i = 0; i < 100; i++) {
    const rec = await send(cl, req(`/n/${i}?q=${i}`, { headers: { 'x-n': String(i) } }));
    assert.equal(rec.error, null);
    assert.equal(rec.status, 200);
    assert.equal(rec.body, `hello /n/${i}?q=${i}`);
    assert.equal(rec.headers!['content-length'], String(rec.body.length));
  }
  assert.equal(s.connections, 1, 'one upstream connection for all requests');
  assert.equal(seen[42], 'GET /n/42?q=42 up.test 42');
  assert.equal(stat(cl, C.CX_TOTAL), 1);
  assert.equal(stat(cl, C.CX_ACTIVE), 1);
  assert.ok(stat(cl, C.BYTES_TX) > 100 * 20 && stat(cl, C.BYTES_RX) > 100 * 20);
  await s.close();
});

test('maxConnections: 12 concurrent requests share 3 connections, the rest wait in order', async () => {
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  const s = await httpServer((q, r) => {
    active++;
    peak = Math.max(peak, active);
    order.push(Number(q.url!.slice(1)));
    setTimeout(() => {
      active--;
      r.end(q.url);
    }, 20);
  });
  const cl = clusterFor(s.port);
  const recs: Recorder[] = [];
  for (let i = 0; i < 12; i++) {
    const rec = new Recorder();
    rec.attempt = startRawH1(cl, cl.hosts[0], 3, req(`/${i}`), rec);
    recs.push(rec);
  }
  assert.equal(stat(cl, C.RQ_PENDING_ACTIVE), 9, 'nine requests wait for a connection');
  await Promise.all(recs.map((r) => r.done));
  recs.forEach((r, i) => assert.equal(r.body, `/${i}`));
  assert.equal(s.connections, 3);
  assert.equal(peak, 3);
  assert.deepEqual(order.slice(3), [3, 4, 5, 6, 7, 8, 9, 10, 11], 'waiters served FIFO');
  assert.equal(stat(cl, C.RQ_PENDING_ACTIVE), 0);
  await s.close();
});

test('chunked response with trailers; interim 100 and 103 are not forwarded', async () => {
  const s = await httpServer((q, r) => {
    r.writeContinue();
    r.writeEarlyHints({ link: '</a.css>; rel=preload' });
    r.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-sum' });
    r.write('alpha,');
    setTimeout(() => {
      r.write('beta,');
      r.addTrailers({ 'x-sum': 'abc', 'x-count': '2' });
      r.end('gamma');
    }, 10);
  });
  const cl = clusterFor(s.port);
  const rec = await send(cl, req('/c', { headers: { expect: '100-continue' }, method: 'POST', body: Buffer.from('x') }));
  assert.equal(rec.status, 200);
  assert.equal(rec.body, 'alpha,beta,gamma');
  assert.equal(rec.headers!['transfer-encoding'], 'chunked');
  assert.deepEqual({ ...rec.trailers }, { 'x-sum': 'abc', 'x-count': '2' });
  // The connection is reused after a chunked body.
  const again = await send(cl, req('/c2'));
  assert.equal(again.body, 'alpha,beta,gamma');
  assert.equal(s.connections, 1);
  await s.close();
});

test('HEAD, 204 and 304: no body whatever the headers say, connection kept', async () => {
  const s = await httpServer((q, r) => {
    if (q.url === '/204') {
      r.writeHead(204, { 'x-a': '1' });
      r.end();
    } else if (q.url === '/304') {
      r.writeHead(304, { etag: '"e"', 'content-length': '55' });
      r.end();
    } else {
      r.writeHead(200, { 'content-length': '1234', 'content-type': 'text/plain' });
      r.end(q.method === 'HEAD' ? undefined : 'x'.repeat(1234));
    }
  });
  const cl = clusterFor(s.port);
  const h = await send(cl, req('/h', { method: 'HEAD' }));
  assert.deepEqual([h.status, h.endStream, h.bytes, h.headers!['content-length']], [200, true, 0, '1234']);
  const n = await send(cl, req('/204'));
  assert.deepEqual([n.status, n.endStream, n.bytes, n.headers!['x-a']], [204, true, 0, '1']);
  const m = await send(cl, req('/304'));
  assert.deepEqual([m.status, m.endStream, m.bytes], [304, true, 0]);
  const g = await send(cl, req('/g'));
  assert.deepEqual([g.status, g.endStream, g.bytes], [200, false, 1234]);
  assert.equal(s.connections, 1);
  await s.close();
});

test('HTTP/1.0 response without length: the body ends at EOF and the connection is not reused', async () => {
  const s = await rawServer((k, n) => {
    k.once('data', () => {
      k.write('HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\n');
      k.write(`until close ${n} `);
      setTimeout(() => k.end('done'), 10);
    });
  });
  const cl = clusterFor(s.port);
  const a = await send(cl, req('/'));
  assert.equal(a.error, null);
  assert.deepEqual([a.status, a.body], [200, 'until close 0 done']);
  const b = await send(cl, req('/'));
  assert.equal(b.body, 'until close 1 done');
  assert.equal(s.connections, 2);
  await s.close();
});

test('8 MiB response with backpressure: the sink pauses the connection and resumes it', async () => {
  const big = crypto.randomBytes(8 * 1024 * 1024);
  const s = await httpServer((q, r) => {
    if (q.url === '/chunked') {
      r.writeHead(200);
      for (let i = 0; i < big.length; i += 100_000) r.write(big.subarray(i, i + 100_000));
      r.end();
    } else {
      r.writeHead(200, { 'content-length': String(big.length) });
      r.end(big);
    }
  });
  const cl = clusterFor(s.port);
  for (const path of ['/length', '/chunked']) {
    let refusals = 0;
    let pausedAt = -1;
    const rec = await send(cl, req(path), 4, (r) => {
      // Refuse every 8th call; resume a little later. No bytes may arrive in between except
      // the rest of the read in hand (at most one read chunk).
      if (pausedAt >= 0) assert.ok(r.bytes - pausedAt <= 2 * 65536, `${r.bytes - pausedAt} bytes after a pause`);
      if (r.parts.length % 8 !== 0) return true;
      refusals++;
      pausedAt = r.bytes;
      setTimeout(() => {
        pausedAt = -1;
        r.attempt!.resume();
      }, 2);
      return false;
    });
    assert.equal(rec.error, null);
    assert.equal(rec.bytes, big.length, path);
    assert.equal(sha(Buffer.concat(rec.parts)), sha(big), path);
    assert.ok(refusals > 5, `${path}: the sink refused ${refusals} times`);
  }
  assert.ok(stat(cl, C.CX_RX_PAUSED) > 10);
  assert.equal(s.connections, 1, 'the connection is reused after paused bodies');
  await s.close();
});

/**
 * A BodySource over a buffer, like a raw downstream: one `step`-byte view of a scratch buffer
 * per "read" (one per macrotask), the scratch overwritten by the next read; honours pause.
 */
class TestSource implements BodySource {
  pauses = 0;
  private paused = false;
  private sink: BodySink | null = null;
  private off = 0;
  private scheduled = false;
  private readonly scratch: Buffer;

  constructor(
    private readonly data: Buffer,
    readonly length: number,
    private readonly step: number,
    private readonly failAt = -1,
  ) {
    this.scratch = Buffer.alloc(step);
  }

  start(sink: BodySink): void {
    assert.equal(this.sink, null, 'started once');
    this.sink = sink;
    this.schedule();
  }

  pause(): void {
    if (!this.paused) this.pauses++;
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.off > this.data.length) return;
    this.scheduled = true;
    setImmediate(() => this.read());
  }

  private read(): void {
    this.scheduled = false;
    // The previous view was valid until its tick ended: the next read reuses the buffer.
    this.scratch.fill(0x58);
    if (this.paused) return;
    const sink = this.sink!;
    if (this.off >= this.data.length) {
      this.off = Infinity;
      sink.onBodyEnd();
      return;
    }
    if (this.failAt >= 0 && this.off >= this.failAt) {
      sink.onBodyError(new Error('downstream went away'));
      return;
    }
    const n = Math.min(this.step, this.data.length - this.off);
    this.data.copy(this.scratch, 0, this.off, this.off + n);
    this.off += n;
    sink.onBodyData(this.scratch, 0, n);
    this.schedule();
  }
}

test('request bodies: Buffer, Readable, BodySource with and without length', async () => {
  const s = await httpServer(async (q, r) => {
    // A server slow to start reading: the sender's kernel buffers fill and its watermarks trip.
    if (q.url!.startsWith('/slow')) {
      q.pause();
      await sleep(300);
      q.resume();
    }
    const b = await readAll(q);
    r.end(JSON.stringify({ method: q.method, cl: q.headers['content-length'] ?? null, te: q.headers['transfer-encoding'] ?? null, len: b.length, sha: sha(b) }));
  });
  const cl = clusterFor(s.port);
  const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
  const check = (rec: Recorder, framing: { cl: string | null; te: string | null }, body: Buffer, method = 'POST') => {
    assert.equal(rec.error, null, rec.error?.err.message);
    const j = JSON.parse(rec.body);
    assert.deepEqual(j, { method, ...framing, len: body.length, sha: sha(body) });
  };
  // Buffer (with a stale content-length from the downstream replaced by the real one)
  check(await send(cl, req('/b', { method: 'POST', headers: { 'content-length': '5' }, body: data })), { cl: String(data.length), te: null }, data);
  // no body: content-length 0 for POST, nothing for GET
  check(await send(cl, req('/e', { method: 'POST' })), { cl: '0', te: null }, Buffer.alloc(0));
  check(await send(cl, req('/g')), { cl: null, te: null }, Buffer.alloc(0), 'GET');
  // Readable without length: chunked
  const pt = new PassThrough();
  const p1 = send(cl, req('/r', { method: 'PUT', body: pt }));
  for (let i = 0; i < data.length; i += 200_000) {
    if (!pt.write(data.subarray(i, i + 200_000))) await new Promise((r) => pt.once('drain', r));
  }
  pt.end();
  check(await p1, { cl: null, te: 'chunked' }, data, 'PUT');
  // Readable with the downstream's content-length: forwarded as is
  const pt2 = new PassThrough();
  const p2 = send(cl, req('/r2', { method: 'POST', headers: { 'content-length': '11' }, body: pt2 }));
  pt2.write('hello ');
  setTimeout(() => pt2.end('world'), 5);
  check(await p2, { cl: '11', te: null }, Buffer.from('hello world'));
  // BodySource with a length, then chunked; a server slow to read makes them pause
  const large = crypto.randomBytes(24 * 1024 * 1024);
  const src = new TestSource(large, large.length, 60_000);
  check(await send(cl, req('/slow/s', { method: 'POST', body: src })), { cl: String(large.length), te: null }, large);
  const src2 = new TestSource(large, -1, 50_000);
  check(await send(cl, req('/slow/s2', { method: 'POST', body: src2 })), { cl: null, te: 'chunked' }, large);
  assert.ok(src.pauses > 0 && src2.pauses > 0, `the connection watermarks paused the sources (${src.pauses}, ${src2.pauses})`);
  await s.close();
});

test('a request body that fails mid-way: Reset, and the connection is not reused', async () => {
  const s = await httpServer(async (q, r) => {
    try {
      await readAll(q);
      r.end('whole');
    } catch {
      // the truncated request's connection went away
    }
  });
  const cl = clusterFor(s.port);
  const warm = await send(cl, req('/'));
  assert.equal(warm.body, 'whole');
  const rec = await send(cl, req('/', { method: 'POST', body: new TestSource(Buffer.alloc(100_000), -1, 10_000, 50_000) }));
  assert.equal(rec.error!.kind, FailKind.Reset);
  assert.match(rec.error!.err.message, /downstream went away/);
  assert.equal((await send(cl, req('/'))).body, 'whole');
  assert.equal(s.connections, 2);
  await s.close();
});

test('connect refused: ConnectFailure (and the waiters fail with it)', async () => {
  const s = await rawServer(() => {});
  const port = s.port;
  await s.close();
  const cl = clusterFor(port);
  const recs: Recorder[] = [];
  for (let i = 0; i < 3; i++) {
    const rec = new Recorder();
    rec.attempt = startRawH1(cl, cl.hosts[0], 1, req('/'), rec);
    recs.push(rec);
  }
  await Promise.all(recs.map((r) => r.done));
  for (const r of recs) {
    assert.equal(r.error!.kind, FailKind.ConnectFailure);
    assert.equal((r.error!.err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  }
  assert.equal(stat(cl, C.CX_TOTAL), 1, 'the waiters did not each try a dead host');
  assert.equal(stat(cl, C.CX_ACTIVE), 0);
  assert.equal(stat(cl, C.RQ_PENDING_ACTIVE), 0);
});

test('upstream closes mid-response: Reset after the head was forwarded', async () => {
  const s = await httpServer((_q, r) => {
    r.writeHead(200, { 'content-length': '100000' });
    r.write('x'.repeat(1000));
    setTimeout(() => r.socket!.destroy(), 10);
  });
  const cl = clusterFor(s.port);
  const rec = await send(cl, req('/'));
  assert.equal(rec.status, 200);
  assert.equal(rec.bytes, 1000);
  assert.equal(rec.error!.kind, FailKind.Reset);
  assert.equal(rec.ended, false);
  await s.close();
});

test('stale keep-alive connection: a request it swallows is retried once on a new connection', async () => {
  // Each connection answers its first request and drops the second without a byte, as a
  // server that timed the connection out just as the request arrived.
  const bodies: string[] = [];
  const s = await rawServer((k) => {
    let n = 0;
    let acc = '';
    k.on('data', (d: Buffer) => {
      acc += d.toString('latin1');
      const i = acc.indexOf('\r\n\r\n');
      if (i < 0) return;
      const m = /content-length: (\d+)/i.exec(acc.slice(0, i));
      const need = i + 4 + (m ? Number(m[1]) : 0);
      if (acc.length < need) return;
      bodies.push(acc.slice(i + 4, need));
      acc = acc.slice(need);
      if (n++ === 0) k.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      else k.destroy();
    });
  });
  const cl = clusterFor(s.port);
  assert.equal((await send(cl, req('/1'))).body, 'ok');
  const r2 = await send(cl, req('/2', { method: 'POST', body: Buffer.from('replayed') }));
  assert.equal(r2.error, null, r2.error?.err.message);
  assert.equal(r2.body, 'ok');
  assert.equal(s.connections, 2);
  assert.deepEqual(bodies, ['', 'replayed', 'replayed']);
  // A streamed body cannot be sent again: Reset.
  const pt = new PassThrough();
  pt.end('once');
  const r3 = await send(cl, req('/3', { method: 'POST', body: pt }));
  assert.equal(r3.error!.kind, FailKind.Reset);
  assert.equal(s.connections, 2);
  // A new connection that fails is not retried either: the next request gets connection 3,
  // whose second request is dropped and retried on connection 4.
  assert.equal((await send(cl, req('/4'))).body, 'ok');
  assert.equal((await send(cl, req('/5'))).body, 'ok');
  assert.equal(s.connections, 4);
  await s.close();
});

test('an upstream closing an idle connection: dropped from the pool, the next request connects again', async () => {
  const s = await httpServer((_q, r) => r.end('fine'), { keepAliveTimeout: 50 });
  const cl = clusterFor(s.port);
  assert.equal((await send(cl, req('/'))).body, 'fine');
  await until(() => stat(cl, C.CX_ACTIVE) === 0, 'the idle connection to leave the pool');
  assert.equal(stat(cl, C.CX_DESTROY), 1);
  assert.equal((await send(cl, req('/'))).body, 'fine');
  assert.equal(s.connections, 2);
  await s.close();
});

test('keep-alive idle timeout: the sweep closes connections idle too long, oldest first', async () => {
  const saved = { ...rawH1Timing };
  rawH1Timing.idleTimeoutMs = 300;
  rawH1Timing.sweepMs = 50;
  try {
    let held: http.ServerResponse[] = [];
    const s = await httpServer((q, r) => {
      if (q.url === '/hold') held.push(r);
      else r.end('x');
    });
    const cl = clusterFor(s.port); // a new Host: a new pool, whose sweep timer uses the short period
    const a = new Recorder();
    a.attempt = startRawH1(cl, cl.hosts[0], 4, req('/hold'), a);
    const b = new Recorder();
    b.attempt = startRawH1(cl, cl.hosts[0], 4, req('/hold'), b);
    await until(() => held.length === 2, 'two connections busy');
    const closedOrder: string[] = [];
    held[0].socket!.once('close', () => closedOrder.push('first'));
    held[1].socket!.once('close', () => closedOrder.push('second'));
    held[0].end('first');
    await a.done;
    await sleep(150);
    held[1].end('second');
    await b.done;
    const idleAt = Date.now();
    held = [];
    assert.equal(stat(cl, C.CX_ACTIVE), 2);
    await until(() => stat(cl, C.CX_ACTIVE) === 0, 'the idle connections to close');
    assert.ok(Date.now() - idleAt >= 250, 'not before the idle timeout');
    await until(() => closedOrder.length === 2, 'the server to see both close');
    assert.deepEqual(closedOrder, ['first', 'second'], 'the longest idle goes first');
    assert.equal((await send(cl, req('/'))).body, 'x');
    assert.equal(s.connections, 3);
    await s.close();
  } finally {
    await closeRawH1Pools(); // stops the short-period sweep timer
    Object.assign(rawH1Timing, saved);
  }
});

test('malformed responses and stray bytes: Reset, connection closed', async () => {
  const replies = [
    'HTTP/1.1 2x0 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n',
  ];
  const s = await rawServer((k, n) => {
    k.once('data', () => {
      if (n < replies.length) k.write(replies[n]);
      else k.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno');
    });
  });
  const cl = clusterFor(s.port);
  for (let i = 0; i < replies.length; i++) {
    const rec = await send(cl, req('/'));
    assert.equal(rec.error?.kind, FailKind.Reset, `reply ${i}`);
    assert.match(rec.error!.err.message, /malformed|101/);
    // The bad chunk comes after a valid head, which was forwarded.
    assert.equal(rec.status, i === 2 ? 200 : 0, `reply ${i}: ${rec.error!.err.message}`);
  }
  // A complete response followed by bytes nobody asked for: delivered, then the connection is dropped.
  const ok = await send(cl, req('/'));
  assert.equal(ok.body, 'ok');
  await until(() => stat(cl, C.CX_ACTIVE) === 0, 'the connection with stray bytes to close');
  assert.equal(s.connections, replies.length + 1);
  await s.close();
});

test('abort while queued and while in flight', async () => {
  const seen: string[] = [];
  const held: http.ServerResponse[] = [];
  const s = await httpServer((q, r) => {
    seen.push(q.url!);
    if (q.url === '/hold') held.push(r);
    else r.end('now');
  });
  const cl = clusterFor(s.port);
  const first = new Recorder();
  first.attempt = startRawH1(cl, cl.hosts[0], 1, req('/hold'), first);
  const queued = new Recorder();
  queued.attempt = startRawH1(cl, cl.hosts[0], 1, req('/never'), queued);
  await until(() => held.length === 1, 'the first request');
  assert.equal(stat(cl, C.RQ_PENDING_ACTIVE), 1);
  queued.attempt.abort();
  assert.equal(stat(cl, C.RQ_PENDING_ACTIVE), 0);
  held[0].end('late');
  await first.done;
  assert.equal(first.body, 'late');
  const next = await send(cl, req('/after'), 1);
  assert.equal(next.body, 'now');
  assert.deepEqual(seen, ['/hold', '/after'], 'the aborted waiter was never sent');
  assert.equal(queued.calls, 0, 'an aborted attempt hears nothing');
  // In flight: the connection is closed, the server sees it go.
  const inflight = new Recorder();
  inflight.attempt = startRawH1(cl, cl.hosts[0], 1, req('/hold'), inflight);
  await until(() => held.length === 2, 'the in-flight request');
  const closed = new Promise<void>((resolve) => held[1].socket!.once('close', () => resolve()));
  inflight.attempt.abort();
  await closed;
  assert.equal(inflight.calls, 0);
  assert.equal(stat(cl, C.CX_ACTIVE), 0);
  assert.equal((await send(cl, req('/again'), 1)).body, 'now');
  assert.equal(s.connections, 2);
  await s.close();
});

test('TLS origination from the cluster tls_context (verified against the test CA)', async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const fs = await import('node:fs');
  const server = https.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, (q, r) => {
    r.end(`tls ${(q.socket as import('node:tls').TLSSocket).servername} ${q.url}`);
  });
  const s = await track(server);
  const cl = clusterFor(s.port, { status: true, ca_cert: pki.ca.cert, server_name: 'localhost' });
  for (let i = 0; i < 3; i++) assert.equal((await send(cl, req(`/${i}`))).body, `tls localhost /${i}`);
  assert.equal(s.connections, 1);
  // The wrong name: the handshake fails, before any request: ConnectFailure.
  const bad = clusterFor(s.port, { status: true, ca_cert: pki.ca.cert, server_name: 'other.test' });
  const rec = await send(bad, req('/'));
  assert.equal(rec.error!.kind, FailKind.ConnectFailure);
  await s.close();
});
