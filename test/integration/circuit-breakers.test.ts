/**
 * Circuit breakers shared by every worker (issue 11, item 9): with 2 workers, a cluster's
 * max_requests of N lets at most N requests reach a slow backend at once, whichever worker
 * each client connection lands on; the others get the overflow answer (503) at once.
 * max_connections holds the same way for tcp_proxy connections.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { httpConfig, request } from '../helpers/http';
import { startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse } from '../helpers/sofa';
import { STATUS_SERVER_THREADPOOL_BUSY } from '../../src/protocol/bolt';

const N = 3;
const CLIENTS = 24;

test(`max_requests ${N} holds at ${N} across 2 workers (HTTP, many connections)`, { timeout: 60_000 }, async () => {
  let inFlight = 0;
  let peak = 0;
  const server = http.createServer((req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    // Held long enough that a whole wave has arrived before the first answer, even on a loaded machine.
    setTimeout(() => {
      inFlight--;
      res.end('slow');
    }, 1500);
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  const cfg = httpConfig(
    [{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'slow', timeout: '10s' } }] }] }],
    { slow: [port] },
    { slow: { circuit_breakers: [{ max_requests: N }] } },
  );
  const sc = await startSidecar(cfg, { workers: 2 });
  try {
    const lp = sc.ports.get('h')!;
    // Three waves of concurrent requests, each on its own connection (spread over both workers).
    for (let wave = 0; wave < 3; wave++) {
      const replies = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => request(lp, `/w${wave}/${i}`)));
      const ok = replies.filter((r) => r.status === 200).length;
      const over = replies.filter((r) => r.status === 503).length;
      assert.equal(ok + over, CLIENTS, JSON.stringify(replies.map((r) => r.status)));
      assert.ok(ok >= 1 && ok <= N, `wave ${wave}: ${ok} answered by the backend`);
      assert.ok(peak <= N, `at most ${N} requests at the backend at once, saw ${peak}`);
    }
    assert.equal(peak, N, 'the limit is reachable');
    const st = await sc.stats();
    assert.ok(st.clusters.slow.upstream_rq_pending_overflow >= CLIENTS * 3 - 3 * N, JSON.stringify(st.clusters.slow));
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('tcp_proxy max_connections holds across 2 workers', { timeout: 60_000 }, async () => {
  const held = new Set<net.Socket>();
  let peak = 0;
  const server = net.createServer((s) => {
    held.add(s);
    peak = Math.max(peak, held.size);
    s.on('close', () => held.delete(s));
    s.on('error', () => {});
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  const cfg = tcpProxyConfig({ upstreams: [port] }) as { cluster_manager: { clusters: Record<string, unknown>[] } };
  cfg.cluster_manager.clusters[0].circuit_breakers = [{ max_connections: 2 }];
  const sc = await startSidecar(cfg, { workers: 2 });
  const clients: net.Socket[] = [];
  try {
    const lp = sc.ports.get('tcp')!;
    for (let i = 0; i < 16; i++) {
      const c = net.connect(lp, '127.0.0.1');
      c.on('error', () => {});
      c.write('x');
      clients.push(c);
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(peak <= 2, `at most 2 upstream connections at once, saw ${peak}`);
    assert.equal(held.size, 2);
    const st = await sc.stats();
    assert.equal(st.clusters.backend.upstream_cx_overflow, 14);
  } finally {
    for (const c of clients) c.destroy();
    for (const s of held) s.destroy();
    assert.equal(await sc.terminate(), 0, sc.output());
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

const ENGINES: readonly (readonly ['Http1' | 'Http2', string, NodeJS.ProcessEnv])[] = [
  ['Http1', 'raw pool', {}],
  ['Http1', 'undici', { OUTRIGGER_H1_UPSTREAM: 'undici' }],
  ['Http2', 'session', {}],
];

for (const [upstream, engine, env] of ENGINES) {
  test(`${upstream} upstream (${engine}): max_connections 1 holds across 2 workers (the pools open no more, the rest overflow or wait)`, { timeout: 60_000 }, async () => {
    const conns = new Set<net.Socket>();
    let peak = 0;
    const onReq = (_q: unknown, res: { end(b: string): void }): void => {
      setTimeout(() => res.end('slow'), 200);
    };
    const server: net.Server = upstream === 'Http2' ? (await import('node:http2')).createServer(onReq as never) : http.createServer(onReq as never);
    server.on('connection', (s: net.Socket) => {
      conns.add(s);
      peak = Math.max(peak, conns.size);
      s.on('close', () => conns.delete(s));
    });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
    const cfg = httpConfig(
      [{ name: 'h', downstream: 'Http1', upstream, router: 'r' }],
      [{ router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'slow', timeout: '10s' } }] }] }],
      { slow: [port] },
      { slow: { circuit_breakers: [{ max_connections: 1 }] } },
    );
    const sc = await startSidecar(cfg, { workers: 2, env });
    try {
      const lp = sc.ports.get('h')!;
      const replies = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => request(lp, `/c${i}`)));
      const ok = replies.filter((r) => r.status === 200).length;
      assert.equal(ok + replies.filter((r) => r.status === 503).length, CLIENTS);
      assert.ok(ok >= 1, JSON.stringify(replies.map((r) => r.status)));
      assert.equal(peak, 1, `one upstream connection for both workers, saw ${peak}`);
    } finally {
      assert.equal(await sc.terminate(), 0, sc.output());
      for (const s of conns) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
}

test(`Bolt: max_requests ${N} holds at ${N} across 2 workers (many client connections)`, { timeout: 60_000 }, async () => {
  let held = 0;
  let peak = 0;
  const up = await fakeUpstream((r) => {
    held++;
    peak = Math.max(peak, held);
    setTimeout(() => {
      held--;
      r.sock.write(rawResponse(r.frame, r.buf));
    }, 300);
  });
  const sc = await startSidecar(boltProxyConfig({ clusters: { svc: [up.port] }, circuitBreakers: { max_requests: N } }), { workers: 2 });
  const clients: Awaited<ReturnType<typeof rawClient>>[] = [];
  try {
    const lp = sc.ports.get('bolt')!;
    for (let i = 0; i < CLIENTS; i++) clients.push(await rawClient(lp));
    for (const c of clients) c.sock.write(rawRequest(1, 'com.example.A:1.0', { timeout: 5000 }));
    await Promise.all(clients.map((c) => c.wait(1)));
    const statuses = clients.map((c) => c.frames[0].frame.status);
    const ok = statuses.filter((s) => s === 0).length;
    assert.equal(ok + statuses.filter((s) => s === STATUS_SERVER_THREADPOOL_BUSY).length, CLIENTS, JSON.stringify(statuses));
    assert.ok(ok >= 1 && ok <= N, `${ok} answered by the upstream`);
    assert.ok(peak <= N, `at most ${N} requests at the upstream at once, saw ${peak}`);
  } finally {
    for (const c of clients) c.sock.destroy();
    assert.equal(await sc.terminate(), 0, sc.output());
    await up.close();
  }
});

test('tcp_proxy with max_connections 1: a retry after a failed connect is not refused by the failed attempt', { timeout: 60_000 }, async () => {
  const echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  const alive = await new Promise<number>((resolve) => echo.listen(0, '127.0.0.1', () => resolve((echo.address() as net.AddressInfo).port)));
  const dead = await new Promise<number>((resolve) => {
    const t = net.createServer();
    t.listen(0, '127.0.0.1', () => {
      const p = (t.address() as net.AddressInfo).port;
      t.close(() => resolve(p));
    });
  });
  const cfg = tcpProxyConfig({ upstreams: [dead, alive], maxConnectAttempts: 2 }) as { cluster_manager: { clusters: Record<string, unknown>[] } };
  cfg.cluster_manager.clusters[0].circuit_breakers = [{ max_connections: 1 }];
  const sc = await startSidecar(cfg, { workers: 1 });
  try {
    const lp = sc.ports.get('tcp')!;
    // Round robin: every other connection tries the dead host first, then retries on the live one.
    for (let i = 0; i < 4; i++) {
      const got = await new Promise<string>((resolve) => {
        const c = net.connect(lp, '127.0.0.1');
        let out = '';
        c.on('data', (d: Buffer) => {
          out += d.toString();
          if (out === `ping${i}`) c.end();
        });
        c.on('close', () => resolve(out));
        c.on('error', () => {});
        c.write(`ping${i}`);
      });
      assert.equal(got, `ping${i}`, `connection ${i}`);
    }
    const st = await sc.stats();
    assert.ok(st.clusters.backend.upstream_cx_connect_fail >= 1, 'the dead host was tried');
    assert.equal(st.clusters.backend.upstream_cx_overflow, 0);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  }
});
