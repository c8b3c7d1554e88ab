/**
 * Issue 16: Bolt pending requests are bounded and the client does not choose the timeout.
 * A silent upstream (reads, never answers); our own Bolt client (500,000 requests are beyond
 * what a library client does in a test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { CMD_RPC_REQUEST, PROTO_V1, PROTO_V2, STATUS_SERVER_THREADPOOL_BUSY, STATUS_TIMEOUT, SWITCH_CRC, TYPE_REQUEST, V2_VER1_CRC } from '../../src/protocol/bolt/constants';
import { STATUS_SERVER_THREADPOOL_EXHAUSTED_ERROR } from '../../src/protocol/dubbo/constants';
import { closeDubbo2js, dubbo2js, dubboProxyConfig, dubboRawClient, dubboRequest, java } from '../helpers/dubbo';
import { listen } from '../helpers/net';
import { rssOf, startSidecar } from '../helpers/sidecar';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sleep } from '../helpers/sofa';
import { encodeFrame } from '../../src/protocol/bolt/encoder';

const DAYS_24 = 24 * 24 * 3600 * 1000; // 2,073,600,000 ms: below 2^31, a valid Bolt timeout

/** A Bolt upstream that reads everything and never answers. */
async function silentUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    s.resume();
  });
  const port = await listen(server);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of socks) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Counts Bolt v1 responses by status as they arrive (a streaming parser: no copy per frame). */
class StatusCounter {
  readonly byStatus = new Map<number, number>();
  total = 0;
  private rest: Buffer | null = null;
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(sock: net.Socket) {
    sock.on('data', (d: Buffer) => this.push(d));
  }

  private push(d: Buffer): void {
    let buf = d;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, d]);
      this.rest = null;
    }
    let off = 0;
    while (buf.length - off >= 20) {
      const len = 20 + buf.readUInt16BE(off + 12) + buf.readUInt16BE(off + 14) + buf.readUInt32BE(off + 16);
      if (buf.length - off < len) break;
      const st = buf.readUInt16BE(off + 10);
      this.byStatus.set(st, (this.byStatus.get(st) ?? 0) + 1);
      this.total++;
      off += len;
    }
    if (off < buf.length) this.rest = Buffer.from(buf.subarray(off));
    this.waiters = this.waiters.filter((w) => {
      if (this.total < w.n) return true;
      w.resolve();
      return false;
    });
  }

  wait(n: number, ms: number): Promise<void> {
    if (this.total >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.total}/${n} responses after ${ms} ms: ${JSON.stringify([...this.byStatus])}`)), ms);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

test('a Bolt client asking for a 24-day timeout gets the route timeout, or rpc_max_timeout when the route has none', { timeout: 30_000 }, async () => {
  const up = await silentUpstream();
  const routes = [
    { match: { headers: [{ name: 'service', value: 'routed' }] }, route: { cluster_name: 'up', timeout: '300ms' } },
    { match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'up' } },
  ];
  const sc = await startSidecar({ ...boltProxyConfig({ clusters: { up: [up.port] }, routes }), limits: { rpc_max_timeout: '700ms' } });
  try {
    const s = await connect(sc.ports.get('bolt')!);
    const c = new StatusCounter(s);
    const t0 = performance.now();
    s.write(rawRequest(1, 'routed', { timeout: DAYS_24 }));
    await c.wait(1, 5000);
    const routed = performance.now() - t0;
    assert.equal(c.byStatus.get(STATUS_TIMEOUT), 1);
    assert.ok(routed >= 250 && routed < 1500, `answered after ${routed} ms (route timeout 300 ms)`);
    const t1 = performance.now();
    s.write(rawRequest(2, 'other', { timeout: DAYS_24 }));
    await c.wait(2, 5000);
    const capped = performance.now() - t1;
    assert.equal(c.byStatus.get(STATUS_TIMEOUT), 2);
    assert.ok(capped >= 650 && capped < 2000, `answered after ${capped} ms (rpc_max_timeout 700 ms)`);
    s.destroy();
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await up.close();
  }
});

test('500,000 pending Bolt requests to a silent upstream: refused beyond the limit with SERVER_THREADPOOL_BUSY, RSS returns after', { timeout: 180_000 }, async () => {
  const up = await silentUpstream();
  const sc = await startSidecar({ ...boltProxyConfig({ clusters: { up: [up.port] } }), limits: { rpc_max_timeout: '3s' } });
  try {
    const port = sc.ports.get('bolt')!;
    // One template frame; ids rewritten in place (offset 5, Bolt v1), 10,000 frames per write.
    const one = rawRequest(0, 'svc', { timeout: DAYS_24 });
    const BATCH = 10_000;
    const batch = Buffer.alloc(one.length * BATCH);
    const send = async (s: net.Socket, n: number, onBatch: () => void): Promise<void> => {
      for (let sent = 0; sent < n; sent += BATCH) {
        for (let i = 0; i < BATCH; i++) {
          one.copy(batch, i * one.length);
          batch.writeUInt32BE(sent + i + 1, i * one.length + 5);
        }
        if (!s.write(batch)) await new Promise((r) => s.once('drain', r));
        onBatch();
      }
    };
    // Warm-up on the same paths (JIT, the worker's young generation and allocator arenas at
    // their working size): 30,000 requests, 10,000 pending until the capped 3 s, the rest refused.
    const w = await connect(port);
    const wc = new StatusCounter(w);
    await send(w, 30_000, () => {});
    await wc.wait(30_000, 30_000);
    w.destroy();
    await sleep(1000);
    const rss0 = rssOf(sc.pid);
    const N = 500_000;
    const s = await connect(port);
    const c = new StatusCounter(s);
    let peak = rss0;
    let batches = 0;
    const t0 = Date.now();
    await send(s, N, () => {
      if (batches++ % 10 === 0) peak = Math.max(peak, rssOf(sc.pid));
    });
    const limit = 10_000; // limits.rpc_max_pending_requests default, per host (one worker)
    // Every request is answered once: refused at once (SERVER_THREADPOOL_BUSY) or, admitted, at
    // the capped 3 s (TIMEOUT).
    await c.wait(N, 90_000);
    const answeredMs = Date.now() - t0;
    peak = Math.max(peak, rssOf(sc.pid));
    const busy = c.byStatus.get(STATUS_SERVER_THREADPOOL_BUSY) ?? 0;
    const timedOut = c.byStatus.get(STATUS_TIMEOUT) ?? 0;
    assert.equal(busy + timedOut, N, JSON.stringify([...c.byStatus]));
    // At most `limit` pending at once: the first `limit` are admitted, the rest refused until
    // they time out 3 s later and free their room. Reading the 500,000 usually takes the sidecar
    // under 3 s (one wave: exactly `limit` admitted); a loaded machine (session 10's suite run)
    // took longer and admitted a second wave when the first timed out. Admissions end 3 s before
    // the last answer, so they span at most answeredMs - 3 s: that many 3-s waves, plus one.
    const waves = Math.floor(Math.max(0, answeredMs - 3000) / 3000) + 1;
    assert.ok(timedOut >= limit && timedOut <= waves * limit, `${timedOut} admitted (timed out) in ${answeredMs} ms: the limit ${limit} allows ${waves} wave(s)`);
    s.destroy();
    let rss = rssOf(sc.pid);
    const t1 = Date.now();
    // Waited for up to 60 s (was 30): once in this session's runs RSS stayed 31 MiB up after
    // 30 s (95 vs 64 MiB; 5 runs alone after it: +3 to +7 MiB at once). The trail says how it went.
    const trail: number[] = [];
    while (rss - rss0 > 20 * 2 ** 20 && Date.now() - t1 < 60_000) {
      await sleep(1000);
      rss = rssOf(sc.pid);
      trail.push(Math.round(rss / 2 ** 20));
    }
    if (trail.length > 0) console.log(`# RSS while waiting (MiB, 1 s apart): ${trail.join(' ')}`);
    console.log(`# 500,000 pending: answered in ${answeredMs} ms, ${timedOut} admitted; sidecar RSS ${(rss0 / 2 ** 20).toFixed(0)} MiB at start, ${(peak / 2 ** 20).toFixed(0)} MiB peak, ${(rss / 2 ** 20).toFixed(0)} MiB after`);
    assert.ok(rss - rss0 <= 20 * 2 ** 20, `RSS ${(rss / 2 ** 20).toFixed(0)} MiB vs ${(rss0 / 2 ** 20).toFixed(0)} MiB at start`);
    const st = await sc.stats();
    // The warm-up's refusals counted too (20,000 on a quiet machine: 30,000 sent, 10,000 admitted).
    assert.equal(st.clusters.up.upstream_rq_pending_overflow, busy + (wc.byStatus.get(STATUS_SERVER_THREADPOOL_BUSY) ?? 0));
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await up.close();
  }
});

test('Dubbo: in-flight requests beyond limits.rpc_max_pending_requests are answered SERVER_THREADPOOL_EXHAUSTED at once', { timeout: 30_000 }, async () => {
  const up = await silentUpstream();
  const sc = await startSidecar({ ...dubboProxyConfig({ clusters: { up: [up.port] } }), limits: { rpc_max_pending_requests: 2 } });
  try {
    const c = await dubboRawClient(sc.ports.get('clientListener')!);
    for (let id = 1; id <= 3; id++) c.sock.write(dubboRequest(id, 'com.example.Svc'));
    await c.wait(1, 2000);
    assert.equal(c.frames.length, 1);
    assert.equal(Number(c.frames[0].frame.requestId), 3);
    assert.equal(c.frames[0].frame.status, STATUS_SERVER_THREADPOOL_EXHAUSTED_ERROR);
    // Gone (RST): its pending requests are dropped and the sidecar drains at once (a FIN alone
    // is a half-close whose answers are still awaited, and SIGTERM would wait for them).
    c.sock.resetAndDestroy();
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await up.close();
  }
});

test('Bolt: a client that goes away frees its pending requests at once (circuit breaker room for others)', { timeout: 30_000 }, async () => {
  const up = await silentUpstream();
  const routes = [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'up', timeout: '20s' } }];
  const sc = await startSidecar(boltProxyConfig({ clusters: { up: [up.port] }, routes, circuitBreakers: { max_requests: 5 } }));
  try {
    const port = sc.ports.get('bolt')!;
    const a = await connect(port);
    for (let id = 1; id <= 5; id++) a.write(rawRequest(id, 'svc', { timeout: DAYS_24 }));
    await sleep(300);
    assert.equal((await sc.stats()).clusters.up.upstream_rq_active, 5);
    a.resetAndDestroy(); // gone (a FIN alone is a half-close: its answers are still awaited)
    await sleep(300);
    assert.equal((await sc.stats()).clusters.up.upstream_rq_active, 0);
    // Another client's request is taken (not SERVER_THREADPOOL_BUSY); it stays pending upstream.
    const b = await connect(port);
    const c = new StatusCounter(b);
    b.write(rawRequest(1, 'svc', { timeout: DAYS_24 }));
    await sleep(500);
    assert.equal(c.total, 0, JSON.stringify([...c.byStatus]));
    assert.equal((await sc.stats()).clusters.up.upstream_rq_active, 1);
    b.resetAndDestroy(); // its pending request goes too: SIGTERM need not wait for it
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await up.close();
  }
});

test('a forwarded Bolt request carries the capped timeout, not the client\'s (v1, and v2 with its CRC fixed); an uncapped one keeps its own', { timeout: 30_000 }, async () => {
  const seen: { id: number; timeout: number; proto: number }[] = [];
  const up = await fakeUpstream((r) => {
    seen.push({ id: r.frame.requestId, timeout: r.frame.timeout, proto: r.frame.proto });
    r.sock.write(rawResponse(r.frame, r.buf));
  });
  const routes = [
    { match: { headers: [{ name: 'service', value: 'routed' }] }, route: { cluster_name: 'up', timeout: '300ms' } },
    { match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'up' } },
  ];
  const sc = await startSidecar({ ...boltProxyConfig({ clusters: { up: [up.port] }, routes }), limits: { rpc_max_timeout: '700ms' } });
  const c = await rawClient(sc.ports.get('bolt')!);
  try {
    c.sock.write(rawRequest(1, 'routed', { timeout: DAYS_24 }));
    c.sock.write(rawRequest(2, 'other', { timeout: DAYS_24 }));
    c.sock.write(rawRequest(3, 'other', { timeout: 250 }));
    c.sock.write(encodeFrame({
      proto: PROTO_V2, ver1: V2_VER1_CRC, switch: SWITCH_CRC, type: TYPE_REQUEST, cmdcode: CMD_RPC_REQUEST, requestId: 4, timeout: DAYS_24,
      className: 'com.alipay.sofa.rpc.core.request.SofaRequest', headers: { service: 'other' }, content: Buffer.from('v2'),
    }));
    await c.wait(4);
    assert.deepEqual(c.frames.map((f) => f.frame.status), [0, 0, 0, 0], 'every request answered (the v2 frame\'s CRC still checks upstream)');
    assert.deepEqual(seen.map((x) => [x.proto, x.timeout]), [[PROTO_V1, 300], [PROTO_V1, 700], [PROTO_V1, 250], [PROTO_V2, 700]]);
  } finally {
    c.sock.destroy();
    assert.equal(await sc.terminate(), 0, sc.output());
    await up.close();
  }
});

test('a Dubbo client (dubbo2.js) asking for a 23-day timeout gets rpc_max_timeout', { timeout: 30_000 }, async () => {
  const up = await silentUpstream();
  const sc = await startSidecar({ ...dubboProxyConfig({ clusters: { up: [up.port] } }), limits: { rpc_max_timeout: '700ms' } });
  const d = dubbo2js(sc.ports.get('clientListener')!, 'com.example.DemoService', { plus: (a: number, b: number) => [java.int(a), java.int(b)] }, { timeoutS: 2_000_000 });
  try {
    const t0 = performance.now();
    const r = await d.svc.plus(1, 2);
    const ms = performance.now() - t0;
    assert.ok(r.err !== null && r.err !== undefined, `an error answer, got ${JSON.stringify(r.res)}`);
    assert.match(String(r.err.message ?? r.err), /timeout/i);
    assert.ok(ms >= 650 && ms < 2500, `answered after ${ms} ms (rpc_max_timeout 700 ms)`);
  } finally {
    closeDubbo2js(d.dubbo);
    assert.equal(await sc.terminate(), 0, sc.output());
    await up.close();
  }
});
