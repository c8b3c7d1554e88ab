/**
 * Fault injection and ip_access through the real sidecar:
 *   - MOSN `fault` on HTTP: measured delays (fixed_delay 150ms) and the abort ratio (percentage 40)
 *   - gRPC over HTTP/2: `http_fault` grpc_status abort, `rbac` PERMISSION_DENIED, `local_ratelimit` RESOURCE_EXHAUSTED
 *   - `fault` on Bolt (sofa-rpc-node): delay measured; abort answered with the Bolt error
 *   - a client that goes away during a delay frees the request: the upstream never sees it
 *     (HTTP and Bolt), and the listener's active requests go back to 0
 *   - MOSN's filter/ipaccess example config: 127.0.0.1 is denied with 403
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { backend, httpConfig, request } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, sleep, sofaClient, startSofaServer } from '../helpers/sofa';

const SVC = 'com.example.Faulty';
const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] };

test('fault (MOSN) on HTTP: delays measured, abort ratio, scoped by header; a client leaving during a delay frees the request', { timeout: 90_000 }, async () => {
  const be = await backend('web', (_req, res) => res.end('ok'));
  const cfg = httpConfig([{ name: 'delay', downstream: 'Http1', router: 'r' }, { name: 'abort', downstream: 'Http1', router: 'r' }], [router], { web: [be.port] }) as any;
  cfg.servers[0].listeners[0].stream_filters = [{ type: 'fault', config: { delay: { fixed_delay: '150ms', percentage: 100 }, headers: [{ name: 'x-fault', value: 'yes', regex: false }] } }];
  cfg.servers[0].listeners[1].stream_filters = [{ type: 'fault', config: { abort: { status: 503, percentage: 40 }, upstream_cluster: 'web' } }];
  const sc = await startSidecar(cfg, { workers: 2 });
  try {
    const dport = sc.ports.get('delay')!;
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const r = await request(dport, '/d', { headers: { 'x-fault': 'yes' } });
      times.push(performance.now() - t0);
      assert.equal(r.status, 200);
    }
    times.sort((a, b) => a - b);
    const t0 = performance.now();
    await request(dport, '/d');
    const plain = performance.now() - t0;
    console.log(`fault delay 150ms: min ${times[0].toFixed(1)} median ${times[5].toFixed(1)} max ${times[9].toFixed(1)} ms; without the header ${plain.toFixed(1)} ms`);
    assert.ok(times[0] >= 148, `every matching request waits the delay (min ${times[0]})`);
    assert.ok(times[5] < 400, `median ${times[5]}`);
    assert.ok(plain < 100, 'requests without the header are not delayed');
    // Concurrent delays do not block the worker: 20 at once finish in about one delay.
    const c0 = performance.now();
    await Promise.all(Array.from({ length: 20 }, () => request(dport, '/d', { headers: { 'x-fault': 'yes' } })));
    const conc = performance.now() - c0;
    assert.ok(conc < 1000, `20 concurrent delayed requests took ${conc} ms`);

    // Abort ratio.
    const aport = sc.ports.get('abort')!;
    let aborted = 0;
    const n = 300;
    for (let i = 0; i < n; i += 30) {
      const rs = await Promise.all(Array.from({ length: 30 }, () => request(aport, '/a')));
      for (const r of rs) {
        if (r.status === 503) aborted++;
        else assert.equal(r.status, 200);
      }
    }
    console.log(`fault abort 40%: ${aborted}/${n} aborted`);
    assert.ok(aborted > n * 0.3 && aborted < n * 0.5, `${aborted}/${n}`);

    // A client that leaves during the delay: nothing reaches the backend, nothing stays active.
    const before = be.seen.length;
    const s = net.connect(dport, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write('GET /gone HTTP/1.1\r\nHost: a\r\nx-fault: yes\r\n\r\n');
    await sleep(50);
    s.destroy();
    await sleep(300);
    assert.equal(be.seen.length, before, 'the request of a client that left was not sent');
    const st = await sc.stats();
    assert.equal(st.listeners.delay.downstream_rq_active, 0);
    assert.ok(st.server['fault.delay.delays_injected'] >= 31);
  } finally {
    await sc.terminate();
    await be.close();
  }
});

test('fault on Bolt (sofa-rpc-node): delay measured, abort as the Bolt error; a client leaving during a delay frees the request', { timeout: 90_000 }, async () => {
  const sofa = await startSofaServer({ [SVC]: { async hello() { return 'hi'; } } });
  const cfg = boltProxyConfig({ clusters: { sofa: [sofa.port] } }) as any;
  cfg.servers[0].listeners[0].stream_filters = [{ type: 'fault', config: { delay: { fixed_delay: '120ms', percentage: 100 }, abort: { status: 503, percentage: 50 } } }];
  const sc = await startSidecar(cfg);
  const client = sofaClient(sc.ports.get('bolt')!);
  const up = await fakeUpstream(() => {});
  const cfg2 = boltProxyConfig({ clusters: { up: [up.port] }, listenerName: 'held' }) as any;
  cfg2.servers[0].listeners[0].stream_filters = [{ type: 'fault', config: { delay: { fixed_delay: '400ms', percentage: 100 } } }];
  const sc2 = await startSidecar(cfg2);
  try {
    const c = await client.consumer(SVC);
    let ok = 0;
    let busy = 0;
    const n = 60;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: n }, () =>
      c.invoke('hello', [], { responseTimeout: 5000 }).then(
        () => void ok++,
        (e: Error) => {
          // Bolt status SERVER_THREADPOOL_BUSY (503 in MOSN's hijack mapping).
          assert.match(e.message, /fault filter abort/);
          busy++;
        },
      )));
    const took = performance.now() - t0;
    console.log(`Bolt fault: ${ok} ok, ${busy} aborted of ${n} in ${took.toFixed(0)} ms (delay 120ms each, concurrent)`);
    assert.equal(ok + busy, n);
    assert.ok(busy > n * 0.25 && busy < n * 0.75, `${busy}/${n}`);
    assert.ok(took >= 118 && took < 1500, `${took} ms`);

    // A raw Bolt client sends a request and leaves during the 400ms delay.
    const rc = await rawClient(sc2.ports.get('held')!);
    rc.sock.write(rawRequest(7, `${SVC}:1.0`));
    await sleep(80);
    rc.sock.destroy();
    await sleep(700);
    assert.equal(up.requests.filter((r) => !r.frame.isHeartbeat).length, 0, 'the held request was dropped with its client');
    const st = await sc2.stats();
    assert.equal(st.listeners.held.downstream_rq_active, 0);
  } finally {
    await client.close();
    await sc.terminate();
    await sc2.terminate();
    await sofa.close();
    await up.close();
  }
});

test('gRPC over HTTP/2: http_fault grpc_status abort, RBAC PERMISSION_DENIED, local_ratelimit RESOURCE_EXHAUSTED; MOSN filter/ipaccess example: 127.0.0.1 denied with 403', { timeout: 60_000 }, async () => {
  const be = await backend('web', (_req, res) => res.end('ok'));
  const cfg = httpConfig([{ name: 'h2', downstream: 'Http2', router: 'r' }, { name: 'h2rbac', downstream: 'Http2', router: 'r' }, { name: 'h2rl', downstream: 'Http2', router: 'r' }], [router], { web: [be.port] }) as any;
  cfg.servers[0].listeners[0].stream_filters = [{ type: 'http_fault', config: { abort: { grpcStatus: 14, percentage: { numerator: 100, denominator: 'HUNDRED' } } } }];
  cfg.servers[0].listeners[1].stream_filters = [{ type: 'rbac', config: { rules: { action: 'DENY', policies: { p: { permissions: [{ urlPath: { path: { prefix: '/pkg.Svc/' } } }], principals: [{ any: true }] } } } } }];
  const ALL = { default_value: { numerator: 100 } };
  cfg.servers[0].listeners[2].stream_filters = [{ type: 'local_ratelimit', config: { stat_prefix: 'g', token_bucket: { max_tokens: 1, fill_interval: '60s' }, filter_enabled: ALL, filter_enforced: ALL } }];
  const sc = await startSidecar(cfg);
  const sample = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mosn', 'filter-ipaccess', 'config.json'), 'utf8'));
  sample.servers[0].listeners[0].address = '127.0.0.1:0';
  sample.cluster_manager.clusters[0].hosts[0].address = `127.0.0.1:${be.port}`;
  if (sample.admin) sample.admin.address.socket_address = { address: '127.0.0.1', port_value: 0 };
  const ip = await startSidecar(sample);
  try {
    const http2 = await import('node:http2');
    const call = async (listener: string): Promise<Record<string, unknown>> => {
      const sess = http2.connect(`http://127.0.0.1:${sc.ports.get(listener)}`);
      try {
        return await new Promise<Record<string, unknown>>((resolve, reject) => {
          const st = sess.request({ ':method': 'POST', ':path': '/pkg.Svc/Call', 'content-type': 'application/grpc', te: 'trailers' });
          st.on('response', (h) => resolve(h));
          st.on('error', reject);
          st.end(Buffer.alloc(5));
        });
      } finally {
        sess.close();
      }
    };
    const got = await call('h2');
    assert.equal(got[':status'], 200);
    assert.equal(got['grpc-status'], '14');
    assert.equal((await call('h2rbac'))['grpc-status'], '7', 'RBAC denial: PERMISSION_DENIED');
    await call('h2rl'); // takes the only token
    assert.equal((await call('h2rl'))['grpc-status'], '8', 'rate limited: RESOURCE_EXHAUSTED');
    const r = await request(ip.ports.get('serverListener')!, '/');
    assert.equal(r.status, 403, 'MOSN example: 127.0.0.1 is in the deny list');
    assert.equal(be.seen.length, 0);
  } finally {
    await sc.terminate();
    await ip.terminate();
    await be.close();
  }
});
