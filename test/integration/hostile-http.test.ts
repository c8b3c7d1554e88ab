/**
 * Issue 16: slow clients, slow readers and a hung upstream must not make an HTTP/1.1 cluster
 * unavailable to its other clients. Each case runs an attack with our own slow sockets while a
 * real client (node:http, a fresh connection per request) probes the same cluster: every probe
 * succeeds and p99 stays under 50 ms (plus three times the p99 of the same requests sent straight to
 * the upstream in the same window: what other processes' load adds, see assertP99). RSS of the
 * sidecar is printed for the report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { backend, httpConfig, request } from '../helpers/http';
import { rssOf, startSidecar, type RunningSidecar } from '../helpers/sidecar';

const BIG = Buffer.alloc(4 * 1024 * 1024, 0x61);

interface Upstream {
  port: number;
  /** Requests to /hang whose sockets are still open. */
  hanging: Set<http.ServerResponse>;
  close(): Promise<void>;
}

async function upstream(): Promise<Upstream> {
  const hanging = new Set<http.ServerResponse>();
  const b = await backend('b', (req, res) => {
    const u = req.url ?? '/';
    if (u.startsWith('/hang')) {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return; // never answers
    }
    if (u.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length) });
      res.end(BIG);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  return { port: b.port, hanging, close: () => b.close() };
}

const ROUTER = {
  router_config_name: 'r',
  virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b', timeout: '60s' } }] }],
};

async function withSidecar(fn: (port: number, sc: RunningSidecar, up: Upstream) => Promise<void>, clusterExtra: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Promise<void> {
  const up = await upstream();
  const sc = await startSidecar({ ...httpConfig([{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }], [ROUTER], { b: [up.port] }, { b: clusterExtra }), ...top }, { workers: 1 });
  try {
    await fn(sc.ports.get('h')!, sc, up);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await up.close();
  }
}

/**
 * Probes /ok with node:http (a fresh connection each) for `ms`: through the sidecar (`lat`) and,
 * alternating with it, straight to the upstream (`direct`), the same request without the proxy in
 * the same window: what a loaded machine adds to every request whatever the proxy does.
 */
async function probe(port: number, ms: number, upstreamPort: number): Promise<{ lat: number[]; direct: number[]; failures: string[] }> {
  const lat: number[] = [];
  const direct: number[] = [];
  const failures: string[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (const [p, into] of [[port, lat], [upstreamPort, direct]] as const) {
      const t0 = performance.now();
      try {
        const r = await Promise.race([
          request(p, '/ok'),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error('probe timeout (2 s)')), 2000)),
        ]);
        if (r.status !== 200 || r.body !== 'ok') failures.push(`${p === port ? 'proxied' : 'direct'}: status ${r.status}: ${r.body}`);
      } catch (e) {
        failures.push(`${p === port ? 'proxied' : 'direct'}: ${String(e)}`);
      }
      into.push(performance.now() - t0);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { lat, direct, failures };
}

/**
 * p99 through the sidecar under 50 ms, plus three times the direct requests' p99 of the same
 * window. A direct request wakes only this process (the upstream lives here too); a proxied one
 * also wakes the sidecar, twice: on a machine where other processes wait for the CPU each wakeup
 * can wait a time slice. On a quiet machine the direct p99 is a few ms (a bound near 50 ms); under
 * load 7-12 it was 3-23 ms and the proxied one up to 104 ms (twice the direct p99 was too little
 * twice in 5 runs). A cluster starved by the attack shows seconds (or 2-s probe timeouts).
 */
function assertP99(lat: readonly number[], direct: readonly number[]): void {
  const bound = 50 + 3 * p99(direct);
  assert.ok(p99(lat) < bound, `p99 ${p99(lat).toFixed(1)} ms through the sidecar, ${p99(direct).toFixed(1)} ms direct: bound ${bound.toFixed(1)} ms`);
}

function p99(lat: readonly number[]): number {
  const s = [...lat].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)];
}

function connectAll(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      }),
    ),
  );
}

function report(name: string, lat: number[], direct: number[], rssStart: number, rssPeak: number): void {
  // The figures quoted in the note.
  console.log(`# ${name}: ${lat.length} probes, p99 ${p99(lat).toFixed(1)} ms (direct ${p99(direct).toFixed(1)} ms), sidecar RSS ${(rssStart / 2 ** 20).toFixed(0)} -> ${(rssPeak / 2 ** 20).toFixed(0)} MiB`);
}

test('500 clients sending request bodies at 1 byte/s do not starve other clients of the cluster', { timeout: 60_000 }, () =>
  withSidecar(async (port, sc, up) => {
    const rss0 = rssOf(sc.pid);
    const socks = await connectAll(port, 500);
    for (const s of socks) {
      s.on('error', () => {});
      s.write('POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n');
    }
    const drip = setInterval(() => {
      for (const s of socks) if (!s.destroyed) s.write('x');
    }, 1000);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const { lat, direct, failures } = await probe(port, 3000, up.port);
      const rss = rssOf(sc.pid);
      report('slow bodies', lat, direct, rss0, rss);
      assert.deepEqual(failures, []);
      assertP99(lat, direct);
    } finally {
      clearInterval(drip);
      for (const s of socks) s.destroy();
    }
  }));

test('500 slow readers of large responses do not starve other clients of the cluster', { timeout: 60_000 }, () =>
  withSidecar(async (port, sc, up) => {
    const rss0 = rssOf(sc.pid);
    const socks = await connectAll(port, 500);
    for (const s of socks) {
      s.on('error', () => {});
      s.pause(); // reads nothing
      s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
    }
    try {
      // Let the first megabytes settle into socket buffers (test-process CPU, not the proxy's):
      // wait until most responses are paused on a full reader: 450 paused, or (where the socket
      // buffers take whole responses, so fewer upstream connections ever pause) settled: all 500
      // requests sent upstream, some reads paused, and no upstream byte read for a second.
      const t0 = Date.now();
      let last = -1;
      let stillSince = Date.now();
      while (Date.now() - t0 < 15_000) {
        const st = await sc.stats();
        const b = st.clusters.b;
        if (b.upstream_cx_rx_paused >= 450) break;
        if (b.upstream_bytes_rx !== last) [last, stillSince] = [b.upstream_bytes_rx, Date.now()];
        else if (b.upstream_rq_total >= 500 && b.upstream_cx_rx_paused > 0 && Date.now() - stillSince >= 1000) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 1000));
      const { lat, direct, failures } = await probe(port, 3000, up.port);
      const rss = rssOf(sc.pid);
      report('slow readers', lat, direct, rss0, rss);
      assert.deepEqual(failures, []);
      assertP99(lat, direct);
      assert.ok(rss - rss0 < 256 * 2 ** 20, `RSS grew by ${((rss - rss0) / 2 ** 20).toFixed(0)} MiB`);
    } finally {
      for (const s of socks) s.destroy();
    }
  }));

test('200 requests to a hung upstream whose clients give up after 2 s: others served, upstream connections released at once', { timeout: 60_000 }, () =>
  withSidecar(async (port, sc, up) => {
    const rss0 = rssOf(sc.pid);
    const socks = await connectAll(port, 200);
    for (const s of socks) {
      s.on('error', () => {});
      s.write('GET /hang HTTP/1.1\r\nHost: a\r\n\r\n');
    }
    const giveUp = setTimeout(() => {
      for (const s of socks) s.destroy();
    }, 2000);
    try {
      const during = await probe(port, 1800, up.port);
      const gaveUp = new Promise((r) => setTimeout(r, 2000 - 1800 + 50));
      await gaveUp;
      // Every upstream request of a client that gave up is cancelled within a second.
      const t0 = Date.now();
      while (up.hanging.size > 0 && Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 20));
      assert.equal(up.hanging.size, 0, `${up.hanging.size} upstream requests still held after their clients left`);
      const after = await probe(port, 500, up.port);
      const lat = [...during.lat, ...after.lat];
      const direct = [...during.direct, ...after.direct];
      report('hung upstream', lat, direct, rss0, rssOf(sc.pid));
      assert.deepEqual([...during.failures, ...after.failures], []);
      assertP99(lat, direct);
    } finally {
      clearTimeout(giveUp);
      for (const s of socks) s.destroy();
    }
  }));

test('pool overflow: beyond max_pending_requests a request is answered 503 at once and counted', { timeout: 30_000 }, () =>
  withSidecar(
    async (port, sc, up) => {
      // One connection, one waiter: the first hangs upstream, the second waits, the third overflows.
      const socks = await connectAll(port, 2);
      for (const s of socks) {
        s.on('error', () => {});
        s.write('GET /hang HTTP/1.1\r\nHost: a\r\n\r\n');
        await new Promise((r) => setTimeout(r, 100));
      }
      try {
        assert.equal(up.hanging.size, 1);
        const t0 = performance.now();
        const r = await request(port, '/ok');
        const ms = performance.now() - t0;
        assert.equal(r.status, 503);
        assert.match(r.body, /overflow/);
        assert.ok(ms < 500, `answered after ${ms} ms`);
        const st = await sc.stats();
        assert.equal(st.clusters.b.upstream_rq_pending_overflow, 1);
      } finally {
        for (const s of socks) s.destroy();
      }
    },
    { circuit_breakers: [{ max_connections: 1, max_pending_requests: 1 }] },
  ));

test('pool queue timeout: a request waiting longer than limits.upstream_queue_timeout gets 503', { timeout: 30_000 }, () =>
  withSidecar(
    async (port, sc) => {
      const hung = await connectAll(port, 1);
      hung[0].on('error', () => {});
      hung[0].write('GET /hang HTTP/1.1\r\nHost: a\r\n\r\n');
      await new Promise((r) => setTimeout(r, 200));
      try {
        const t0 = performance.now();
        const r = await request(port, '/ok');
        const ms = performance.now() - t0;
        assert.equal(r.status, 503);
        assert.match(r.body, /overflow/);
        assert.ok(ms >= 250 && ms < 2000, `answered after ${ms} ms (queue timeout 300 ms)`);
        assert.equal((await sc.stats()).clusters.b.upstream_rq_pending_overflow, 1);
      } finally {
        hung[0].destroy();
      }
    },
    { circuit_breakers: [{ max_connections: 1 }] },
    { limits: { upstream_queue_timeout: '300ms' } },
  ));

test('a large request body streamed below min_request_body_rate gets 408 and its upstream request is cancelled', { timeout: 30_000 }, () =>
  withSidecar(
    async (port, sc) => {
      // 100 KB announced (above the 64 KiB buffer limit: streamed), then 10 bytes a second.
      const [s] = await connectAll(port, 1);
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('error', () => {});
      s.write('POST /hang HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n');
      const drip = setInterval(() => s.write('0123456789'), 1000);
      const closed = new Promise((r) => s.once('close', r));
      try {
        const t0 = Date.now();
        await Promise.race([closed, new Promise((r) => setTimeout(r, 8000))]);
        assert.match(out, /^HTTP\/1\.1 408 /);
        assert.ok(Date.now() - t0 < 6000, `closed after ${Date.now() - t0} ms`);
        await new Promise((r) => setTimeout(r, 200));
        // The upstream connection the body was streamed on is closed, not left half-written.
        assert.equal((await sc.stats()).clusters.b.upstream_cx_active, 0);
      } finally {
        clearInterval(drip);
        s.destroy();
      }
    },
    {},
    { limits: { min_request_body_rate: 240, request_body_rate_window: '1s' } },
  ));
