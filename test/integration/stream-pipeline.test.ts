/**
 * The stream pipeline with real peers: access-log lines with MOSN's variables for Bolt
 * (sofa-rpc-node), Dubbo (dubbo2.js to a dubbo-remoting provider), HTTP/1.1 (curl), HTTP/2 (curl --http2-prior-knowledge)
 * and gRPC (@grpc/grpc-js); MOSN's payload_limit stream filter on HTTP and Bolt; Bolt and Dubbo
 * retried on another host when the first refuses the connection; local replies without
 * internal addresses or exception text.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startSidecar } from '../helpers/sidecar';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sleep, sofaClient, startSofaServer } from '../helpers/sofa';
import { closeDubbo2js, dubbo2js, dubboProxyConfig, java, startDubboProvider } from '../helpers/dubbo';
import { backend, deadPort, httpConfig, raw, run } from '../helpers/http';
import { STATUS_CONNECTION_CLOSED } from '../../src/protocol/bolt';
import { Pki } from '../helpers/certs';

const SVC = 'com.example.TestService';
const FIELDS = [
  'protocol', 'response_code', 'bytes_received', 'bytes_sent', 'upstream_host', 'upstream_cluster', 'downstream_remote_address',
  'downstream_local_address', 'upstream_local_address', 'duration', 'request_received_duration', 'response_received_duration',
  'response_flag', 'start_time', 'upstream_transport_failure_reason',
];

function format(header: string): string {
  return [...FIELDS.map((f) => `%${f}%`), `%request_header_${header}%`].join('|');
}

function tmpLog(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-al-')), 'access.log');
}

/** The access-log lines as records (waits for the writer's flush). */
async function readLog(file: string, want: number): Promise<Record<string, string>[]> {
  let lines: string[] = [];
  for (let i = 0; i < 100; i++) {
    lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : [];
    if (lines.length >= want) break;
    await sleep(100);
  }
  return lines.map((l) => {
    const v = l.split('|');
    const r: Record<string, string> = {};
    FIELDS.forEach((f, i) => (r[f] = v[i]));
    r.header = v[FIELDS.length];
    return r;
  });
}

function listener0(cfg: Record<string, unknown>): Record<string, unknown> {
  return ((cfg.servers as Record<string, unknown>[])[0].listeners as Record<string, unknown>[])[0];
}

const DURATION = /^\d+(\.\d+)?(ns|µs|ms|s)$/;
const ADDR = /^127\.0\.0\.1:\d+$/;

function assertForwarded(r: Record<string, string>, protocol: string, code: string, upstreamPort: number, cluster: string): void {
  assert.equal(r.protocol, protocol);
  assert.equal(r.response_code, code);
  assert.equal(r.upstream_host, `127.0.0.1:${upstreamPort}`);
  assert.equal(r.upstream_cluster, cluster);
  assert.match(r.downstream_remote_address, ADDR);
  assert.match(r.downstream_local_address, ADDR);
  assert.match(r.upstream_local_address, ADDR);
  assert.match(r.duration, DURATION);
  assert.match(r.request_received_duration, DURATION);
  assert.match(r.response_received_duration, DURATION);
  assert.match(r.start_time, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{3}$/);
  assert.ok(Number(r.bytes_sent) > 0, `bytes_sent ${r.bytes_sent}`);
  assert.equal(r.response_flag, '-');
}

interface RpcPeers {
  readonly server: { port: number };
  readonly provider: { port: number };
  readonly bsc: Awaited<ReturnType<typeof startSidecar>>;
  readonly dsc: Awaited<ReturnType<typeof startSidecar>>;
  readonly bolt: { invoke(method: string, args: unknown[], o: { responseTimeout: number }): Promise<unknown> };
  /** dubbo2.js (its own codec): sofa-rpc-node's dubbo protocol would change its Bolt client's too. */
  readonly dubbo: { plus(a: number, b: number): Promise<{ res: unknown }> };
}

/** A sofa-rpc-node server and a dubbo-remoting provider, a sidecar in front of each (configs from their ports), a client of each. */
async function withRpcPeers(
  boltCfg: (port: number) => Promise<Record<string, unknown>>,
  dubboCfg: (port: number) => Promise<Record<string, unknown>>,
  body: (p: RpcPeers) => Promise<void>,
): Promise<void> {
  const server = await startSofaServer({ [SVC]: { async plus(a: number, b: number) { return a + b; } } });
  const provider = await startDubboProvider({ 'com.example.DemoService': { async plus(a: number, b: number) { return a + b; } } });
  const bsc = await startSidecar(await boltCfg(server.port));
  const dsc = await startSidecar(await dubboCfg(provider.port));
  const bc = sofaClient(bsc.ports.get('bolt')!);
  const d2 = dubbo2js(dsc.ports.get('clientListener')!, 'com.example.DemoService', { plus: (a: number, b: number) => [java.int(a), java.int(b)] });
  try {
    await body({ server, provider, bsc, dsc, bolt: await bc.consumer(SVC), dubbo: d2.svc });
  } finally {
    closeDubbo2js(d2.dubbo);
    await bc.close();
    await bsc.terminate();
    await dsc.terminate();
    await server.close();
    await provider.close();
  }
}

test('access log lines with MOSN variables: Bolt (sofa-rpc-node) and Dubbo (dubbo2.js)', { timeout: 60_000 }, async () => {
  const boltLog = tmpLog();
  const dubboLog = tmpLog();
  await withRpcPeers(
    async (port) => {
      const c = boltProxyConfig({ clusters: { bolt_service: [port] } });
      listener0(c).access_logs = [{ log_path: boltLog, log_format: format('service') }];
      return c;
    },
    async (port) => {
      const c = dubboProxyConfig({ clusters: { clientCluster: [port] } });
      listener0(c).access_logs = [{ log_path: dubboLog, log_format: format('method') }];
      return c;
    },
    async ({ server, provider, bolt, dubbo }) => {
      assert.equal(await bolt.invoke('plus', [1, 2], { responseTimeout: 3000 }), 3);
      assert.equal(await bolt.invoke('plus', [2, 2], { responseTimeout: 3000 }), 4);
      const b = await readLog(boltLog, 2);
      assert.equal(b.length, 2);
      for (const r of b) {
        assertForwarded(r, 'bolt', '0', server.port, 'bolt_service');
        assert.ok(Number(r.bytes_received) > 20, `bytes_received ${r.bytes_received}`);
        assert.equal(r.header, `${SVC}:1.0`);
      }
      assert.equal((await dubbo.plus(1, 2)).res, 3);
      const dl = await readLog(dubboLog, 1);
      assert.equal(dl.length, 1);
      assertForwarded(dl[0], 'dubbo', '20', provider.port, 'clientCluster');
      assert.equal(dl[0].header, 'plus');
    },
  );
});

const PROTO = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'echo.proto');

test('access log lines with MOSN variables: HTTP/1.1 (curl), HTTP/2 (curl h2c) and gRPC (@grpc/grpc-js); local replies are generic', { timeout: 60_000 }, async () => {
  const be = await backend('b1');
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, defaults: true })) as any;
  const gs = new grpc.Server();
  gs.addService(pkg.outrigger.test.Echo.service, {
    Unary(call: grpc.ServerUnaryCall<{ message: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      cb(null, { message: `echo ${call.request.message}`, index: 0 });
    },
  });
  const gport = await new Promise<number>((resolve, reject) => gs.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const dead = await deadPort();
  const router = {
    router_config_name: 'r',
    virtual_hosts: [{
      name: 'v',
      domains: ['*'],
      routers: [
        { match: { prefix: '/outrigger.test.Echo/' }, route: { cluster_name: 'grpc' } },
        { match: { prefix: '/dead' }, route: { cluster_name: 'dead' } },
        { match: { prefix: '/' }, route: { cluster_name: 'web' } },
      ],
    }],
  };
  const cfg = httpConfig(
    [
      { name: 'h1', downstream: 'Http1', router: 'r' },
      { name: 'h2', downstream: 'Http2', upstream: 'Http1', router: 'r' },
      { name: 'g', downstream: 'Http2', upstream: 'Http2', router: 'r' },
    ],
    [router],
    { web: [be.port], grpc: [gport], dead: [dead] },
  );
  const logs = { h1: tmpLog(), h2: tmpLog(), g: tmpLog() };
  const ls = (cfg.servers as any)[0].listeners as Record<string, unknown>[];
  ls[0].access_logs = [{ log_path: logs.h1, log_format: format('x-tag') }];
  ls[1].access_logs = [{ log_path: logs.h2, log_format: format('x-tag') }];
  ls[2].access_logs = [{ log_path: logs.g, log_format: format('content-type') }];
  const sc = await startSidecar(cfg);
  try {
    const p1 = sc.ports.get('h1')!;
    const p2 = sc.ports.get('h2')!;
    const a = await run('curl', ['-s', '-H', 'x-tag: one', `http://127.0.0.1:${p1}/hello`]);
    assert.equal(a.code, 0);
    const b = await run('curl', ['-s', '--http2-prior-knowledge', '-H', 'x-tag: two', `http://127.0.0.1:${p2}/hello`]);
    assert.equal(b.code, 0);
    // Local replies: short and generic, the reason only in the access log.
    const d1 = await run('curl', ['-s', '-w', '\n%{http_code}', `http://127.0.0.1:${p1}/dead`]);
    const d2 = await run('curl', ['-s', '--http2-prior-knowledge', '-w', '\n%{http_code}', `http://127.0.0.1:${p2}/dead`]);
    for (const d of [d1, d2]) {
      const [body, code] = d.stdout.split('\n');
      assert.equal(code, '503');
      assert.equal(body, 'upstream connect error');
      assert.doesNotMatch(body, /127\.0\.0\.1|ECONN|\d+\.\d+\.\d+\.\d+|Error/);
    }
    const client = new pkg.outrigger.test.Echo(`127.0.0.1:${sc.ports.get('g')}`, grpc.credentials.createInsecure());
    const reply = await new Promise<any>((resolve, reject) => client.Unary({ message: 'hi' }, (e: Error | null, r: any) => (e ? reject(e) : resolve(r))));
    assert.equal(reply.message, 'echo hi');
    client.close();

    const h1 = await readLog(logs.h1, 2);
    assert.equal(h1.length, 2);
    assertForwarded(h1[0], 'Http1', '200', be.port, 'web');
    assert.equal(h1[0].header, 'one');
    assert.equal(h1[0].bytes_received, '0');
    assert.equal(h1[1].response_code, '503');
    assert.equal(h1[1].response_flag, 'UF');
    assert.equal(h1[1].upstream_host, `127.0.0.1:${dead}`);
    assert.match(h1[1].upstream_transport_failure_reason, /ECONNREFUSED/);
    // One line per request (issue 16: access_logs on an HTTP listener wrote nothing).
    const load = await run('h2load', ['-n', '300', '-c', '4', '-m', '8', '-H', 'x-tag: load', `http://127.0.0.1:${p2}/hello`]);
    assert.match(load.stdout, /300 succeeded/);
    const h2 = await readLog(logs.h2, 302);
    assert.equal(h2.length, 302);
    assert.equal(h2.filter((r) => r.header === 'load' && r.response_code === '200').length, 300);
    assertForwarded(h2[0], 'Http2', '200', be.port, 'web');
    assert.equal(h2[0].header, 'two');
    assert.equal(h2[1].response_flag, 'UF');
    const g = await readLog(logs.g, 1);
    assert.equal(g.length, 1);
    assertForwarded(g[0], 'Http2', '200', gport, 'grpc');
    assert.equal(g[0].header, 'application/grpc');
  } finally {
    await sc.terminate();
    gs.forceShutdown();
    await be.close();
  }
});

test('payload_limit (MOSN stream filter): HTTP gets the configured status, Bolt the codec error; smaller requests pass', { timeout: 60_000 }, async () => {
  const be = await backend('b1');
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] };
  const hcfg = httpConfig([{ name: 'h1', downstream: 'Http1', router: 'r' }], [router], { web: [be.port] });
  listener0(hcfg).stream_filters = [{ type: 'payload_limit', config: { max_entity_size: 100, http_status: 413 } }];
  const server = await startSofaServer({ [SVC]: { async echo(x: unknown) { return x; } } });
  const bcfg = boltProxyConfig({ clusters: { bolt_service: [server.port] } });
  listener0(bcfg).stream_filters = [{ type: 'payload_limit', config: { max_entity_size: 1000 } }];
  const hsc = await startSidecar(hcfg);
  const bsc = await startSidecar(bcfg);
  const bc = sofaClient(bsc.ports.get('bolt')!);
  try {
    const port = hsc.ports.get('h1')!;
    const big = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--data-binary', 'x'.repeat(500), `http://127.0.0.1:${port}/up`]);
    assert.equal(big.stdout, '413');
    const small = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--data-binary', 'x'.repeat(50), `http://127.0.0.1:${port}/up`]);
    assert.equal(small.stdout, '200');
    // Chunked: no length up front, counted as the body streams.
    const chunked = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Transfer-Encoding: chunked', '--data-binary'];
    assert.equal((await run('curl', [...chunked, 'z'.repeat(5000), `http://127.0.0.1:${port}/up`])).stdout, '413');
    assert.equal((await run('curl', [...chunked, 'z'.repeat(60), `http://127.0.0.1:${port}/up`])).stdout, '200');
    const consumer = await bc.consumer(SVC);
    assert.equal(await consumer.invoke('echo', [{ $class: 'java.lang.String', $: 'ok' }], { responseTimeout: 3000 }), 'ok');
    await assert.rejects(consumer.invoke('echo', [{ $class: 'java.lang.String', $: 'y'.repeat(5000) }], { responseTimeout: 3000 }), (e: Error) => {
      assert.match(e.message, /payload too large/);
      return true;
    });
    assert.equal(await consumer.invoke('echo', [{ $class: 'java.lang.String', $: 'still ok' }], { responseTimeout: 3000 }), 'still ok');
  } finally {
    await bc.close();
    await hsc.terminate();
    await bsc.terminate();
    await server.close();
    await be.close();
  }
});

test('Bolt and Dubbo requests are retried on another host when the first refuses the connection (MOSN retry_policy)', { timeout: 60_000 }, async () => {
  const retry = { retry_on: true, num_retries: 2, retry_timeout: '1s' };
  const route = (cluster: string): unknown[] => [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: cluster, retry_policy: retry } }];
  await withRpcPeers(
    async (port) => boltProxyConfig({ clusters: { bolt_service: [await deadPort(), port] }, routes: route('bolt_service') }),
    async (port) => {
      const c = dubboProxyConfig({ clusters: { clientCluster: [await deadPort(), port] }, routes: route('clientCluster') });
      // LB_RANDOM in the dubbo helper: round robin makes "dead host first" certain.
      for (const cl of (c.cluster_manager as { clusters: Record<string, unknown>[] }).clusters) cl.lb_type = 'LB_ROUNDROBIN';
      return c;
    },
    async ({ bsc, dsc, bolt, dubbo }) => {
      for (let i = 0; i < 6; i++) assert.equal(await bolt.invoke('plus', [i, 1], { responseTimeout: 3000 }), i + 1);
      for (let i = 0; i < 6; i++) assert.equal((await dubbo.plus(i, 2)).res, i + 2);
      const bs = await bsc.stats();
      assert.ok(bs.clusters.bolt_service.upstream_rq_retry >= 1, `bolt retries ${bs.clusters.bolt_service.upstream_rq_retry}`);
      const ds = await dsc.stats();
      assert.ok(ds.clusters.clientCluster.upstream_rq_retry >= 1, `dubbo retries ${ds.clusters.clientCluster.upstream_rq_retry}`);
    },
  );
});

test('Bolt error responses for a refused upstream carry no address or exception text; the access log has the reason', { timeout: 30_000 }, async () => {
  const dead = await deadPort();
  const log = tmpLog();
  const cfg = boltProxyConfig({ clusters: { bolt_service: [dead] } });
  listener0(cfg).access_logs = [{ log_path: log, log_format: format('service') }];
  const sc = await startSidecar(cfg);
  const c = await rawClient(sc.ports.get('bolt')!);
  try {
    c.sock.write(rawRequest(7, SVC));
    await c.wait(1);
    const f = c.frames[0];
    assert.equal(f.frame.status, STATUS_CONNECTION_CLOSED);
    assert.doesNotMatch(f.buf.toString('latin1'), /127\.0\.0\.1|ECONNREFUSED|:\d{4,5}/);
    const [r] = await readLog(log, 1);
    assert.equal(r.response_code, String(STATUS_CONNECTION_CLOSED));
    assert.equal(r.response_flag, 'UF');
    assert.equal(r.upstream_host, `127.0.0.1:${dead}`);
    assert.match(r.upstream_transport_failure_reason, /ECONNREFUSED/);
    assert.equal(r.header, SVC);
  } finally {
    c.sock.destroy();
    await sc.terminate();
  }
});

test('Bolt: an attempt that outlives retry_timeout is retried on another host within the request time', { timeout: 30_000 }, async () => {
  const silent = await fakeUpstream(() => {}); // takes requests, never answers
  const good = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  const cfg = boltProxyConfig({
    clusters: { svc: [silent.port, good.port] },
    routes: [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'svc', timeout: '5s', retry_policy: { retry_on: true, num_retries: 1, retry_timeout: '300ms' } } }],
  });
  const sc = await startSidecar(cfg);
  const c = await rawClient(sc.ports.get('bolt')!);
  try {
    const t0 = Date.now();
    for (let i = 1; i <= 4; i++) c.sock.write(rawRequest(i, SVC));
    await c.wait(4);
    assert.deepEqual(c.frames.map((f) => f.frame.status), [0, 0, 0, 0]);
    assert.deepEqual(c.frames.map((f) => f.frame.requestId).sort(), [1, 2, 3, 4]);
    assert.ok(Date.now() - t0 < 3000, 'answered after the per-try timeout, not the route timeout');
    assert.ok(silent.requests.length >= 1, 'the silent host got at least one attempt');
    const st = await sc.stats();
    assert.ok(st.clusters.svc.upstream_rq_retry >= 1);
  } finally {
    c.sock.destroy();
    await sc.terminate();
    await silent.close();
    await good.close();
  }
});

test('mTLS: the client certificate identity reaches the HTTP stream (access log %downstream_peer_uri_san%), HTTP/1.1 and h2 by ALPN', { timeout: 60_000 }, async () => {
  const pki = new Pki();
  const be = await backend('b1');
  const server = pki.issue({ cn: 'proxy.test', dns: ['proxy.test'] });
  const client = pki.issue({ cn: 'web', usage: 'client', uris: ['spiffe://cluster.local/ns/default/sa/web'] });
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] };
  const cfg = httpConfig([{ name: 'tls', downstream: 'Auto', upstream: 'Http1', router: 'r' }], [router], { web: [be.port] });
  const l = listener0(cfg);
  const log = tmpLog();
  l.access_logs = [{ log_path: log, log_format: '%protocol% %downstream_peer_uri_san% %downstream_peer_subject% %response_code%' }];
  (l.filter_chains as Record<string, unknown>[])[0].tls_context = {
    status: true, cert_chain: server.cert, private_key: server.key, ca_cert: pki.ca.cert, verify_client: true, require_client_cert: true,
  };
  const sc = await startSidecar(cfg);
  try {
    const port = sc.ports.get('tls')!;
    const tlsArgs = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', pki.ca.cert, '--cert', client.cert, '--key', client.key,
      '--resolve', `proxy.test:${port}:127.0.0.1`];
    assert.equal((await run('curl', [...tlsArgs, '--http1.1', `https://proxy.test:${port}/a`])).stdout, '200');
    assert.equal((await run('curl', [...tlsArgs, '--http2', `https://proxy.test:${port}/b`])).stdout, '200');
    let lines: string[] = [];
    for (let i = 0; i < 50 && lines.length < 2; i++) {
      await sleep(100);
      lines = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((x) => x !== '') : [];
    }
    assert.deepEqual(lines, [
      'Http1 spiffe://cluster.local/ns/default/sa/web CN=web 200',
      'Http2 spiffe://cluster.local/ns/default/sa/web CN=web 200',
    ]);
  } finally {
    await sc.terminate();
    await be.close();
    pki.remove();
  }
});

test('tunnels are streams too: Upgrade and CONNECT (raw and node:http engines) get an access-log line with bytes both ways; an unrouted CONNECT gets 404 and NR', { timeout: 60_000 }, async () => {
  const up = http.createServer((_req, res) => res.end('plain'));
  const relay = (status: string) => (_req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
    socket.write(`HTTP/1.1 ${status}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  };
  up.on('upgrade', relay('101 Switching Protocols'));
  up.on('connect', relay('200 Connection Established'));
  const upPort = await new Promise<number>((resolve) => up.listen(0, '127.0.0.1', () => resolve((up.address() as net.AddressInfo).port)));
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['a', 'db.internal:5432'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'ws' } }] }] };
  try {
    for (const env of [{}, { OUTRIGGER_H1_DOWNSTREAM: 'node' }]) {
      const log = tmpLog();
      const cfg = httpConfig([{ name: 'h1', downstream: 'Http1', router: 'r' }], [router], { ws: [upPort] });
      listener0(cfg).access_logs = [{ log_path: log, log_format: format('upgrade') }];
      const sc = await startSidecar(cfg, { env });
      try {
        const port = sc.ports.get('h1')!;
        const ws = await raw(port, 'GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframe-bytes', 500);
        assert.match(ws, /^HTTP\/1\.1 101 Switching Protocols\r\n\r\nframe-bytes$/);
        const ct = await raw(port, 'CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\nping', 500);
        assert.match(ct, /^HTTP\/1\.1 200 Connection Established\r\n\r\nping$/);
        const no = await raw(port, 'CONNECT elsewhere:1 HTTP/1.1\r\nHost: elsewhere:1\r\n\r\n', 500);
        assert.match(no, /^HTTP\/1\.1 404 /);
        const lines = await readLog(log, 3);
        assert.equal(lines.length, 3, JSON.stringify(env));
        const byCode = (c: string): Record<string, string> => lines.find((l) => l.response_code === c) as Record<string, string>;
        const w = byCode('101');
        assert.equal(w.protocol, 'Http1');
        assert.equal(w.upstream_host, `127.0.0.1:${upPort}`);
        assert.equal(w.upstream_cluster, 'ws');
        assert.equal(w.header, 'websocket');
        assert.equal(w.response_flag, '-');
        assert.equal(w.bytes_received, String('frame-bytes'.length));
        assert.equal(w.bytes_sent, String('HTTP/1.1 101 Switching Protocols\r\n\r\nframe-bytes'.length));
        const c = byCode('200');
        assert.equal(c.upstream_host, `127.0.0.1:${upPort}`);
        assert.equal(c.bytes_received, '4');
        assert.equal(byCode('404').response_flag, 'NR');
        // Every client has gone: no connection lingers (a refused tunnel kept its paused client connection half-open).
        let active = -1;
        for (let i = 0; i < 40 && active !== 0; i++) {
          active = (await sc.stats()).listeners.h1.downstream_cx_active;
          if (active !== 0) await sleep(50);
        }
        assert.equal(active, 0, `connections left open (${JSON.stringify(env)})`);
      } finally {
        await sc.terminate();
      }
    }
  } finally {
    up.closeAllConnections();
    up.close();
  }
});

test('tunnels retry a refused connect on another host (retry_policy), on both HTTP/1.1 engines', { timeout: 60_000 }, async () => {
  const up = http.createServer((_req, res) => res.end('plain'));
  up.on('connect', (_req, socket: net.Socket, head: Buffer) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  const upPort = await new Promise<number>((resolve) => up.listen(0, '127.0.0.1', () => resolve((up.address() as net.AddressInfo).port)));
  const dead = await deadPort();
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'ws', retry_policy: { retry_on: true, num_retries: 1 } } }] }] };
  try {
    for (const env of [{}, { OUTRIGGER_H1_DOWNSTREAM: 'node' }]) {
      const sc = await startSidecar(httpConfig([{ name: 'h1', downstream: 'Http1', router: 'r' }], [router], { ws: [dead, upPort] }), { env });
      try {
        const port = sc.ports.get('h1')!;
        for (let i = 0; i < 4; i++) {
          const ct = await raw(port, `CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\nping${i}`, 300);
          assert.equal(ct, `HTTP/1.1 200 Connection Established\r\n\r\nping${i}`, `${JSON.stringify(env)} tunnel ${i}`);
        }
        const st = await sc.stats();
        assert.ok(st.clusters.ws.upstream_rq_retry >= 1, `retries ${st.clusters.ws.upstream_rq_retry}`);
      } finally {
        await sc.terminate();
      }
    }
  } finally {
    up.closeAllConnections();
    up.close();
  }
});

test('access log: %upstream_local_address%, %response_header_X%, %bytes_received% of chunked bodies and %protocol% as MOSN prints it (curl, HTTP/1.1 and HTTP/2, h1 and h2 upstreams)', { timeout: 60_000 }, async () => {
  // The upstreams name the client port they saw, so the logged local address can be checked exactly.
  const peer = (_req: http.IncomingMessage, res: http.ServerResponse, body: string): void => {
    res.writeHead(200, { 'x-peer': String(_req.socket.remotePort), 'x-len': String(body.length) });
    res.end('ok');
  };
  const b1 = await backend('b1', peer);
  const b2 = await backend('b2', peer, true);
  const router = (c: string) => ({ router_config_name: c, virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: c } }] }] });
  const cfg = httpConfig(
    [
      { name: 'h1', downstream: 'Http1', upstream: 'Http1', router: 'web' },
      { name: 'h2', downstream: 'Http2', upstream: 'Http1', router: 'web' },
      { name: 'h2h2', downstream: 'Http2', upstream: 'Http2', router: 'web2' },
    ],
    [router('web'), router('web2')],
    { web: [b1.port], web2: [b2.port] },
  );
  const fmt = '%protocol%|%upstream_local_address%|%response_header_x-peer%|%response_header_content-type%|%bytes_received%|%response_code%';
  const logs = { h1: tmpLog(), h2: tmpLog(), h2h2: tmpLog() };
  const ls = (cfg.servers as any)[0].listeners as Record<string, unknown>[];
  ls[0].access_logs = [{ log_path: logs.h1, log_format: fmt }];
  ls[1].access_logs = [{ log_path: logs.h2, log_format: fmt }];
  ls[2].access_logs = [{ log_path: logs.h2h2, log_format: fmt }];
  const bodyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-body-')), 'body');
  const body = 'x'.repeat(70_000); // above the 64 KiB buffered-body size: streamed
  fs.writeFileSync(bodyFile, body);
  const sc = await startSidecar(cfg);
  try {
    const chunked = ['-s', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${bodyFile}`];
    const p = (n: string): number => sc.ports.get(n)!;
    assert.equal((await run('curl', [...chunked, `http://127.0.0.1:${p('h1')}/up`])).stdout, 'ok');
    assert.equal((await run('curl', ['-s', `http://127.0.0.1:${p('h1')}/get`])).stdout, 'ok');
    assert.equal((await run('curl', ['-s', '--http2-prior-knowledge', '--data-binary', `@${bodyFile}`, '-H', 'content-length:', `http://127.0.0.1:${p('h2')}/up`])).stdout, 'ok');
    assert.equal((await run('curl', ['-s', '--http2-prior-knowledge', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${bodyFile}`, `http://127.0.0.1:${p('h2h2')}/up`])).stdout, 'ok');
    const read = async (file: string, want: number): Promise<string[][]> => {
      let lines: string[] = [];
      for (let i = 0; i < 100 && lines.length < want; i++) {
        await sleep(50);
        lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((x) => x !== '') : [];
      }
      return lines.map((l) => l.split('|'));
    };
    const h1 = await read(logs.h1, 2);
    assert.equal(h1.length, 2);
    for (const [proto, local, xpeer, ctype, , code] of h1) {
      assert.equal(proto, 'Http1');
      assert.equal(code, '200');
      assert.equal(local, `127.0.0.1:${xpeer}`, 'the upstream connection the backend saw');
      assert.equal(ctype, '-', 'a response header the upstream did not send prints "-"');
    }
    assert.equal(h1[0][4], String(body.length), 'a chunked request body is counted as it streams');
    assert.equal(h1[1][4], '0');
    for (const [file, want] of [[logs.h2, b1], [logs.h2h2, b2]] as const) {
      const [l] = await read(file, 1);
      assert.ok(l !== undefined, file);
      assert.equal(l[0], 'Http2');
      assert.equal(l[1], `127.0.0.1:${l[2]}`);
      assert.equal(l[4], String(body.length), 'an HTTP/2 body without content-length is counted');
      assert.equal(want.seen.at(-1)?.body.length, body.length);
    }
  } finally {
    await sc.terminate();
    await b1.close();
    await b2.close();
  }
});

test('per-try timeout, one implementation for every protocol: Bolt, HTTP/1.1 (h1 upstream) and HTTP/2 (h2 upstream) leave a silent host after retry_timeout', { timeout: 60_000 }, async () => {
  // Hosts that accept connections and requests and never answer.
  const silentSockets = new Set<net.Socket>();
  const silentServer = (): Promise<{ port: number; server: net.Server }> => {
    const server = net.createServer((s) => {
      silentSockets.add(s);
      s.on('error', () => {});
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, server })));
  };
  const silentBolt = await fakeUpstream(() => {});
  const goodBolt = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  const s1 = await silentServer();
  const s2 = await silentServer();
  const good1 = await backend('h1');
  const good2 = await backend('h2', undefined, true);
  const retry = { retry_on: true, num_retries: 1, retry_timeout: '300ms' };
  const httpRouter = (name: string, cluster: string) => ({
    router_config_name: name,
    virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: cluster, timeout: '5s', retry_policy: retry } }] }],
  });
  const hcfg = httpConfig(
    [
      { name: 'h1', downstream: 'Http1', upstream: 'Http1', router: 'r1' },
      { name: 'h2', downstream: 'Http2', upstream: 'Http2', router: 'r2' },
    ],
    [httpRouter('r1', 'c1'), httpRouter('r2', 'c2')],
    { c1: [s1.port, good1.port], c2: [s2.port, good2.port] },
  );
  const bcfg = boltProxyConfig({
    clusters: { svc: [silentBolt.port, goodBolt.port] },
    routes: [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'svc', timeout: '5s', retry_policy: retry } }],
  });
  const hsc = await startSidecar(hcfg);
  const bsc = await startSidecar(bcfg);
  const c = await rawClient(bsc.ports.get('bolt')!);
  try {
    const t0 = Date.now();
    const curl = (args: string[]): Promise<string> => run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args]).then((r) => r.stdout);
    const h1 = Array.from({ length: 4 }, (_, i) => curl([`http://127.0.0.1:${hsc.ports.get('h1')}/a${i}`]));
    const h2 = Array.from({ length: 4 }, (_, i) => curl(['--http2-prior-knowledge', `http://127.0.0.1:${hsc.ports.get('h2')}/b${i}`]));
    for (let i = 1; i <= 4; i++) c.sock.write(rawRequest(i, SVC));
    assert.deepEqual(await Promise.all(h1), ['200', '200', '200', '200'], 'HTTP/1.1');
    assert.deepEqual(await Promise.all(h2), ['200', '200', '200', '200'], 'HTTP/2');
    await c.wait(4);
    assert.deepEqual(c.frames.map((f) => f.frame.status), [0, 0, 0, 0], 'Bolt');
    assert.ok(Date.now() - t0 < 3000, `answered after the per-try timeout, not the 5 s route timeout (${Date.now() - t0} ms)`);
    const hs = await hsc.stats();
    const bs = await bsc.stats();
    for (const [name, cl] of [['HTTP/1.1', hs.clusters.c1], ['HTTP/2', hs.clusters.c2], ['Bolt', bs.clusters.svc]] as const) {
      assert.ok(cl.upstream_rq_per_try_timeout >= 1, `${name}: ${JSON.stringify(cl)}`);
      assert.equal(cl.upstream_rq_per_try_timeout, cl.upstream_rq_retry, `${name}: every per-try timeout was retried`);
    }
  } finally {
    c.sock.destroy();
    await hsc.terminate();
    await bsc.terminate();
    for (const s of silentSockets) s.destroy();
    s1.server.close();
    s2.server.close();
    await silentBolt.close();
    await goodBolt.close();
    await good1.close();
    await good2.close();
  }
});

test('HTTP/2 CONNECT (RFC 7540 §8.3) and extended CONNECT (RFC 8441 websocket) tunnel through the HTTP/1.1 tunnel path: routed by authority, access-logged, refused like HTTP/1.1 CONNECT (node http2 client, ws upstream)', { timeout: 60_000 }, async () => {
  const http2 = await import('node:http2');
  const crypto = await import('node:crypto');
  // CONNECT upstream: an HTTP/1.1 proxy that accepts db.internal and refuses the rest, then echoes.
  const up = http.createServer((_req, res) => res.end('plain'));
  up.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    if (req.url !== 'db.internal:5432') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  const upPort = await new Promise<number>((resolve) => up.listen(0, '127.0.0.1', () => resolve((up.address() as net.AddressInfo).port)));
  // An HTTP/1.1 WebSocket server (RFC 6455 handshake: it needs Sec-WebSocket-Key) that echoes one unfragmented text frame.
  const wsUp = http.createServer((_req, res) => res.end('plain'));
  let wsPath = '';
  wsUp.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || req.headers.upgrade !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wsPath = req.url ?? '';
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (d: Buffer) => {
      const len = d[1] & 0x7f;
      const m = d.subarray(2, 6);
      const text = Buffer.from(d.subarray(6, 6 + len).map((x, i) => x ^ m[i % 4])).toString();
      const out = Buffer.from(`echo ${text}`);
      socket.write(Buffer.concat([Buffer.from([0x81, out.length]), out]));
    });
  });
  const wsPort = await new Promise<number>((resolve) => wsUp.listen(0, '127.0.0.1', () => resolve((wsUp.address() as net.AddressInfo).port)));
  const router = {
    router_config_name: 'r',
    virtual_hosts: [
      { name: 'db', domains: ['db.internal:5432', 'other.internal:1'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'proxy' } }] },
      { name: 'ws', domains: ['chat'], routers: [{ match: { prefix: '/chat' }, route: { cluster_name: 'ws' } }] },
    ],
  };
  const log = tmpLog();
  const cfg = httpConfig([{ name: 'h2', downstream: 'Http2', router: 'r' }], [router], { proxy: [upPort], ws: [wsPort] });
  listener0(cfg).access_logs = [{ log_path: log, log_format: format('x-tag') }];
  const sc = await startSidecar(cfg);
  const client = http2.connect(`http://127.0.0.1:${sc.ports.get('h2')}`);
  client.on('error', () => {});
  const open = (h: Record<string, string>): Promise<{ status: number; s: import('node:http2').ClientHttp2Stream }> =>
    new Promise((resolve, reject) => {
      const s = client.request(h, { endStream: false });
      s.on('error', reject);
      s.once('response', (r) => resolve({ status: Number(r[':status']), s }));
    });
  const readAll = (s: import('node:http2').ClientHttp2Stream): Promise<Buffer> =>
    new Promise((resolve) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      s.once('end', () => resolve(Buffer.concat(parts)));
    });
  try {
    await new Promise<void>((resolve) => client.once('remoteSettings', () => resolve()));
    assert.equal(client.remoteSettings.enableConnectProtocol, true, 'SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)');
    // Plain CONNECT: bytes both ways, half-close passed on.
    const c = await open({ ':method': 'CONNECT', ':authority': 'db.internal:5432', 'x-tag': 'tunnel' });
    assert.equal(c.status, 200);
    const echoed = readAll(c.s);
    c.s.write('ping');
    await sleep(100);
    c.s.end('pong');
    assert.equal((await echoed).toString(), 'pingpong');
    // Refusals: no route (404, as on HTTP/1.1), and the upstream's own refusal passed back.
    assert.equal((await open({ ':method': 'CONNECT', ':authority': 'elsewhere:1' })).status, 404);
    assert.equal((await open({ ':method': 'CONNECT', ':authority': 'other.internal:1' })).status, 403);
    // Extended CONNECT: a WebSocket over HTTP/2 to an HTTP/1.1 WebSocket server.
    const w = await open({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/chat/room?x=1', ':authority': 'chat', 'sec-websocket-version': '13', 'x-tag': 'ws' });
    assert.equal(w.status, 200);
    const frames: Buffer[] = [];
    w.s.on('data', (d: Buffer) => frames.push(d));
    // A masked client text frame "hi" (RFC 6455 §5.2).
    const mask = Buffer.from([1, 2, 3, 4]);
    const payload = Buffer.from('hi');
    w.s.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4])]));
    for (let i = 0; i < 50 && Buffer.concat(frames).length < 9; i++) await sleep(20);
    const f = Buffer.concat(frames);
    assert.equal(f[0], 0x81, 'a text frame back');
    assert.equal(f.subarray(2, 2 + f[1]).toString(), 'echo hi');
    assert.equal(wsPath, '/chat/room?x=1');
    w.s.close();
    const lines = await readLog(log, 4);
    assert.equal(lines.length, 4, JSON.stringify(lines));
    const t = lines.find((l) => l.header === 'tunnel') as Record<string, string>;
    assert.equal(t.protocol, 'Http2');
    assert.equal(t.response_code, '200');
    assert.equal(t.upstream_host, `127.0.0.1:${upPort}`);
    assert.equal(t.upstream_cluster, 'proxy');
    assert.equal(t.bytes_received, '8');
    assert.equal(t.bytes_sent, '8');
    assert.deepEqual(lines.map((l) => l.response_code).sort(), ['101', '200', '403', '404']);
    assert.equal(lines.find((l) => l.response_code === '404')?.response_flag, 'NR');
    assert.equal(lines.find((l) => l.header === 'ws')?.upstream_cluster, 'ws');
  } finally {
    client.destroy();
    await sc.terminate();
    up.close();
    wsUp.close();
  }
});
