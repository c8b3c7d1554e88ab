/**
 * The cluster manager owns every upstream pool (issue 11): pools are registered per cluster,
 * host and protocol; a new config snapshot keeps a host (and its pools) across a weight
 * change, and drains the pools of a host or cluster that went away. Circuit-breaker usage is
 * shared through one array by every cluster object of every worker, and what a crashed worker
 * held is given back. A lint rule keeps socket creation inside src/upstream.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as path from 'node:path';
import { ESLint } from 'eslint';
import { parseConfig } from '../../src/config';
import { closeRawH1Pools, rawH1ConnectionCount, startRawH1 } from '../../src/http/h1/pool';
import type { UpstreamSink } from '../../src/http/upstream';
import { closeH2Sessions, startH2 } from '../../src/http/upstream-h2';
import { B } from '../../src/stats/layout';
import { breakerCells, newBreakerBuffer, releaseWorkerShare } from '../../src/upstream/breakers';
import { ClusterManager } from '../../src/upstream/cluster';

function manager(clusters: Record<string, { port: number; weight?: number }[]>, previous?: ClusterManager, tls?: Record<string, unknown>): ClusterManager {
  const cfg = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: Object.keys(clusters)[0] } }] }] }] }],
    cluster_manager: {
      clusters: Object.entries(clusters).map(([name, hosts]) => ({
        name,
        type: 'SIMPLE',
        lb_type: 'LB_WEIGHTED_ROUNDROBIN',
        connect_timeout: '1s',
        hosts: hosts.map((h) => ({ address: `127.0.0.1:${h.port}`, weight: h.weight ?? 1 })),
        ...(tls !== undefined ? { tls_context: tls } : {}),
      })),
    },
  });
  const bases: Record<string, number> = { a: 100, b: 200 };
  return new ClusterManager(cfg.clusters, new Float64Array(4096), bases, previous);
}

function get(m: ClusterManager, name: string): NonNullable<ReturnType<ClusterManager['get']>> {
  const c = m.get(name);
  assert.ok(c);
  return c;
}

/** Resolves with the status once the response is complete. */
function done(): { sink: UpstreamSink; result: Promise<number> } {
  let resolve: (n: number) => void = () => {};
  const result = new Promise<number>((r) => (resolve = r));
  let status = 0;
  const sink: UpstreamSink = {
    onResponseHeaders: (s) => void (status = s),
    onResponseData: () => true,
    onResponseEnd: () => resolve(status),
    onUpstreamError: () => resolve(-1),
  };
  return { sink, result };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

test('a weight change keeps the Host object and its pools; a removed host or cluster has its pools drained', async () => {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_q, r) => r.end('ok'));
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  try {
    const m1 = manager({ a: [{ port }, { port: 1 }], b: [{ port }] });
    const a1 = get(m1, 'a');
    const h = a1.hosts[0];
    const r = done();
    startRawH1(a1, h, 1, { method: 'GET', path: '/', authority: 'x', headers: {}, body: null }, r.sink);
    assert.equal(await r.result, 200);
    assert.ok(a1.pool(h, 'h1') !== undefined, 'the pool is in the host registry');
    const hostSet1 = a1.hostSet;

    // Weight 1 -> 5: same Host object, same pool, connection kept.
    const m2 = manager({ a: [{ port, weight: 5 }, { port: 1 }], b: [{ port }] }, m1);
    const a2 = get(m2, 'a');
    assert.equal(a2.hosts[0], h);
    assert.equal(h.weight, 5);
    assert.ok(a2.pool(h, 'h1') !== undefined);
    assert.notEqual(a2.hostSet, hostSet1, 'a new snapshot');
    assert.notEqual(a2.hosts, a1.hosts, 'a new hosts array');
    // Not frozen: element loads from a frozen array are not inlined by TurboFan (a KeyedLoadIC call per pick).
    assert.ok(!Object.isFrozen(a2.hosts));
    assert.equal(sockets.size, 1);

    // The host leaves the cluster: its pool is drained (idle connection closed).
    const m3 = manager({ a: [{ port: 1 }], b: [{ port }] }, m2);
    assert.ok(!get(m3, 'a').hosts.includes(h));
    assert.equal(h.pools.size, 0);
    await until(() => sockets.size === 0 && rawH1ConnectionCount() === 0, 'the drained pool closed its connection');

    // HTTP/2 session of cluster b: the cluster goes away, the session is closed.
    const h2srv = http2.createServer();
    h2srv.on('stream', (st) => {
      st.respond({ ':status': 200 });
      st.end('ok');
    });
    const p2 = await new Promise<number>((resolve) => h2srv.listen(0, '127.0.0.1', () => resolve((h2srv.address() as net.AddressInfo).port)));
    const m4 = manager({ a: [{ port: 1 }], b: [{ port: p2 }] }, m3);
    const b4 = get(m4, 'b');
    const r2 = done();
    startH2(b4, b4.hosts[0], 65_535, { method: 'GET', path: '/', authority: 'x', headers: {}, body: null }, r2.sink);
    assert.equal(await r2.result, 200);
    const entry = b4.pool(b4.hosts[0], 'h2') as unknown as { session: http2.ClientHttp2Session };
    assert.ok(entry !== undefined);
    manager({ a: [{ port: 1 }] }, m4);
    await until(() => entry.session.closed, 'the HTTP/2 session of the removed cluster is closed');
    closeH2Sessions();
    await new Promise<void>((resolve) => h2srv.close(() => resolve()));
  } finally {
    await closeRawH1Pools();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('circuit breakers: one usage across cluster objects of different workers; a crashed worker share is given back', () => {
  const shared = newBreakerBuffer();
  const own1 = newBreakerBuffer();
  const own2 = newBreakerBuffer();
  const cfg = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'a' } }] }] }] }],
    cluster_manager: { clusters: [{ name: 'a', type: 'SIMPLE', hosts: [{ address: '127.0.0.1:1' }], circuit_breakers: [{ max_requests: 3, max_retries: 1 }] }] },
  });
  const w1 = get(new ClusterManager(cfg.clusters, new Float64Array(4096), { a: 100 }, undefined, breakerCells(shared, own1)), 'a');
  const w2 = get(new ClusterManager(cfg.clusters, new Float64Array(4096), { a: 100 }, undefined, breakerCells(shared, own2)), 'a');
  assert.ok(w1.tryAcquireRequest());
  assert.ok(w1.tryAcquireRequest());
  assert.ok(w2.tryAcquireRequest());
  assert.equal(w2.tryAcquireRequest(), false, 'the limit counts both workers');
  assert.equal(w1.tryAcquireRequest(), false);
  assert.equal(w1.breakerUsage(B.RQ), 3);
  w2.releaseRequest();
  assert.ok(w1.tryAcquireRequest());
  assert.ok(w2.tryAcquireRetry());
  assert.equal(w1.tryAcquireRetry(), false);
  // Worker 1 dies holding 3 requests: the main thread gives them back.
  releaseWorkerShare(shared, own1);
  assert.equal(w2.breakerUsage(B.RQ), 0);
  assert.equal(w2.breakerUsage(B.RETRY), 1);
  assert.ok(w2.tryAcquireRequest());
});

test('lint: net/tls/http2 connects and undici clients are refused in src/ outside src/upstream', async () => {
  const root = path.join(__dirname, '..', '..', '..');
  const eslint = new ESLint({ cwd: root, overrideConfigFile: path.join(root, 'eslint.config.mjs') });
  const code = [
    "import * as net from 'node:net';",
    "import * as tls from 'node:tls';",
    "import * as http2 from 'node:http2';",
    "import { Pool } from 'undici';",
    'export const a = [net.connect(1), net.createConnection(1), tls.connect(1), http2.connect("http://x"), new Pool("http://x")];',
    '',
  ].join('\n');
  const [outside] = await eslint.lintText(code, { filePath: path.join(root, 'src', 'http', 'probe.ts') });
  const msgs = outside.messages.filter((m) => m.ruleId === 'no-restricted-syntax' || m.ruleId === '@typescript-eslint/no-restricted-imports');
  assert.equal(msgs.length, 5, JSON.stringify(outside.messages));
  const [inside] = await eslint.lintText(code, { filePath: path.join(root, 'src', 'upstream', 'probe.ts') });
  assert.equal(inside.messages.filter((m) => m.ruleId === 'no-restricted-syntax' || m.ruleId === '@typescript-eslint/no-restricted-imports').length, 0);
});
