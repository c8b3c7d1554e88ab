/**
 * Upstream resilience with real peers (issue 13): active HTTP health checks take a host that
 * stops answering out within interval × unhealthy_threshold and bring it back after
 * healthy_threshold successes; outlier detection ejects the one host of three answering 5xx
 * (2 workers, shared counts) and a wrk run then sees under 1% errors; sofa-rpc-node calls keep
 * succeeding when one of two providers is killed (Bolt heartbeat checks); Dubbo heartbeats
 * against a dubbo-remoting provider; MOSN's slow-start-sample ramps a returning host's share.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import { Pki } from '../helpers/certs';
import { backend, httpConfig, request, run, type Backend } from '../helpers/http';
import { until } from '../helpers/wait';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { boltProxyConfig, sleep, sofaClient, startSofaServer } from '../helpers/sofa';
import { startDubboProvider } from '../helpers/dubbo';

const MOSN_FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mosn');

interface HostView {
  address: string;
  health: string;
  weight: number;
  last_check_failure?: string;
  ejection_reason?: string;
  health_check: { attempt: number; success: number; failure: number };
}

function getText(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function hostsOf(sc: RunningSidecar, cluster: string): Promise<HostView[]> {
  const all = JSON.parse(await getText(sc.adminPort, '/api/v1/clusters')) as Record<string, { hosts: HostView[] }>;
  return all[cluster]?.hosts ?? [];
}

async function hostOf(sc: RunningSidecar, cluster: string, port: number): Promise<HostView> {
  const h = (await hostsOf(sc, cluster)).find((x) => x.address === `127.0.0.1:${port}`);
  assert.ok(h, `host ${port} in ${cluster}`);
  return h;
}

const INTERVAL = 300;
const TIMEOUT = 200;
const UNHEALTHY = 3;
const HEALTHY = 2;
/** Admin polling, timer and worker scheduling on a loaded 2-CPU machine. */
const SLACK = 400;

test('HTTP health check: a host that stops answering is out within interval × unhealthy_threshold, back after healthy_threshold', { timeout: 60_000 }, async () => {
  const mode: Record<string, 'ok' | 'hang'> = { a: 'ok', b: 'ok' };
  const mk = (name: string): Promise<Backend> =>
    backend(name, (req, res) => {
      if (req.url === '/health') {
        if (mode[name] === 'hang') return; // accepts, never answers
        res.writeHead(204).end();
        return;
      }
      res.end(name);
    });
  const a = await mk('a');
  const b = await mk('b');
  const cfg = httpConfig(
    [{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'svc' } }] }] }],
    { svc: [a.port, b.port] },
    {
      svc: {
        health_check: {
          protocol: 'Http1',
          timeout: `${TIMEOUT}ms`,
          interval: `${INTERVAL}ms`,
          interval_jitter: '1ms',
          initial_delay_seconds: '100ms',
          unhealthy_threshold: UNHEALTHY,
          healthy_threshold: HEALTHY,
          check_config: { http_check_config: { path: '/health', codes: [{ start: 200, end: 299 }] } },
        },
      },
    },
  );
  const sc = await startSidecar(cfg, { workers: 2 });
  try {
    const lp = sc.ports.get('h')!;
    await until('first checks', 5000, async () => (await hostsOf(sc, 'svc')).every((h) => h.health_check.success > 0));
    const spread = await Promise.all(Array.from({ length: 10 }, () => request(lp, '/x')));
    assert.ok(spread.some((r) => r.body === 'b'), 'b takes traffic while healthy');

    mode.b = 'hang';
    const out = await until('b unhealthy', 10_000, async () => (await hostOf(sc, 'svc', b.port)).health === 'unhealthy');
    assert.ok(out <= INTERVAL * UNHEALTHY + TIMEOUT + SLACK, `out after ${out} ms (bound ${INTERVAL * UNHEALTHY + TIMEOUT} + slack)`);
    const hb = await hostOf(sc, 'svc', b.port);
    assert.equal(hb.last_check_failure, 'timeout');
    // Every worker skips it now.
    const only = await Promise.all(Array.from({ length: 20 }, () => request(lp, '/x')));
    assert.deepEqual([...new Set(only.map((r) => `${r.status} ${r.body}`))], ['200 a']);
    const prom = await getText(sc.adminPort, '/stats/prometheus');
    assert.match(prom, new RegExp(`outrigger_host_healthy\\{cluster="svc",host="127\\.0\\.0\\.1:${b.port}"\\} 0`));
    assert.match(prom, /outrigger_cluster_health_check_failure_total\{cluster="svc"\} [1-9]/);
    const st = await sc.stats();
    assert.ok(st.clusters.svc['health_check.failure'] >= UNHEALTHY, JSON.stringify(st.clusters.svc));
    assert.equal(st.clusters.svc.membership_healthy, 1);

    mode.b = 'ok';
    const back = await until('b healthy again', 10_000, async () => (await hostOf(sc, 'svc', b.port)).health === 'healthy');
    assert.ok(back <= INTERVAL * HEALTHY + SLACK, `back after ${back} ms`);
    assert.ok(back >= INTERVAL * (HEALTHY - 1) - 50, `not before ${HEALTHY} successes (${back} ms)`);
    const again = await Promise.all(Array.from({ length: 10 }, () => request(lp, '/x')));
    assert.ok(again.some((r) => r.body === 'b'), 'b takes traffic again');
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await a.close();
    await b.close();
  }
});

test('outlier detection: 3 hosts, one answering 5xx, 2 workers: ejected, then a wrk run sees under 1% errors', { timeout: 90_000 }, async () => {
  const good1 = await backend('g1', (_q, res) => res.end('ok'));
  const good2 = await backend('g2', (_q, res) => res.end('ok'));
  const bad = await backend('bad', (_q, res) => res.writeHead(500).end('broken'));
  const cfg = httpConfig(
    [{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'svc' } }] }] }],
    { svc: [good1.port, good2.port, bad.port] },
    { svc: { outlier_detection: { consecutive_5xx: 5, interval: '1s', base_ejection_time: '60s', max_ejection_percent: 50 } } },
  );
  const sc = await startSidecar(cfg, { workers: 2 });
  try {
    const lp = sc.ports.get('h')!;
    let errors = 0;
    for (let i = 0; i < 200 && (await hostOf(sc, 'svc', bad.port)).health !== 'ejected'; i++) {
      // Fresh connections: both workers see the bad host; their counts add up.
      const rs = await Promise.all(Array.from({ length: 4 }, () => request(lp, '/warm')));
      errors += rs.filter((r) => r.status === 500).length;
    }
    const hb = await hostOf(sc, 'svc', bad.port);
    assert.equal(hb.health, 'ejected');
    assert.equal(hb.ejection_reason, 'consecutive_5xx');
    assert.ok(errors >= 5, `the bad host was in rotation before (${errors} errors)`);
    const r = await run('wrk', ['-t1', '-c8', '-d3s', `http://127.0.0.1:${lp}/`]);
    const total = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 'NaN');
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? '0');
    const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
    const sock = sockErr ? sockErr.slice(1).reduce((s, x) => s + Number(x), 0) : 0;
    assert.ok(total > 100, r.stdout);
    assert.ok((non2xx + sock) / total < 0.01, `errors ${non2xx + sock} of ${total}\n${r.stdout}`);
    const st = await sc.stats();
    assert.equal(st.clusters.svc['outlier_detection.ejections_active'], 1);
    assert.ok(st.clusters.svc['outlier_detection.ejections_total'] >= 1);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await good1.close();
    await good2.close();
    await bad.close();
  }
});

test('sofa-rpc-node calls keep succeeding while one of two providers is killed (Bolt heartbeat checks)', { timeout: 60_000 }, async () => {
  const svc = { 'com.example.Echo': { async echo(x: string) { return `echo:${x}`; } } };
  const p1 = await startSofaServer(svc);
  const p2 = await startSofaServer(svc);
  const cfg = boltProxyConfig({ clusters: { bolt_svc: [p1.port, p2.port] } }) as { cluster_manager: { clusters: Record<string, unknown>[] } };
  cfg.cluster_manager.clusters[0].health_check = { protocol: 'bolt', timeout: '200ms', interval: `${INTERVAL}ms`, initial_delay_seconds: '100ms', unhealthy_threshold: 1, healthy_threshold: 1 };
  const sc = await startSidecar(cfg, { workers: 2 });
  const client = sofaClient(sc.ports.get('bolt')!);
  try {
    await until('heartbeats answered', 5000, async () => (await hostsOf(sc, 'bolt_svc')).every((h) => h.health_check.success > 0 && h.health_check.failure === 0));
    const consumer = await client.consumer('com.example.Echo');
    for (let i = 0; i < 10; i++) assert.equal(await consumer.invoke('echo', [`a${i}`], { responseTimeout: 3000 }), `echo:a${i}`);
    await p2.close();
    const out = await until('p2 unhealthy', 5000, async () => (await hostOf(sc, 'bolt_svc', p2.port)).health === 'unhealthy');
    assert.ok(out <= INTERVAL + 200 + SLACK, `out after ${out} ms`);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => consumer.invoke('echo', [`b${i}`], { responseTimeout: 3000 }).then((v: string) => v, (e: Error) => `error: ${e.message}`)),
    );
    assert.deepEqual(results, Array.from({ length: 40 }, (_, i) => `echo:b${i}`));
  } finally {
    await client.close();
    assert.equal(await sc.terminate(), 0, sc.output());
    await p1.close();
  }
});

test('Dubbo heartbeat checks: a dubbo-remoting provider answers them; a port that accepts but never answers fails them', { timeout: 60_000 }, async () => {
  const provider = await startDubboProvider({ 'com.example.Hello': { async hi() { return 'hi'; } } });
  const held = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    held.add(s);
    s.on('error', () => {});
  });
  const silentPort = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as net.AddressInfo).port)));
  const cfg = boltProxyConfig({ clusters: { dubbo_svc: [provider.port, silentPort] }, downstreamProtocol: 'dubbo' }) as { cluster_manager: { clusters: Record<string, unknown>[] } };
  cfg.cluster_manager.clusters[0].health_check = { protocol: 'dubbo', timeout: '200ms', interval: `${INTERVAL}ms`, initial_delay_seconds: '100ms', unhealthy_threshold: 1, healthy_threshold: 1 };
  const sc = await startSidecar(cfg);
  try {
    await until('silent host out', 5000, async () => (await hostOf(sc, 'dubbo_svc', silentPort)).health === 'unhealthy');
    assert.equal((await hostOf(sc, 'dubbo_svc', silentPort)).last_check_failure, 'timeout');
    await until('provider checked', 5000, async () => (await hostOf(sc, 'dubbo_svc', provider.port)).health_check.success >= 2);
    const hp = await hostOf(sc, 'dubbo_svc', provider.port);
    assert.equal(hp.health, 'healthy');
    assert.equal(hp.health_check.failure, 0);
    await provider.close();
    await until('provider out once closed', 5000, async () => (await hostOf(sc, 'dubbo_svc', provider.port)).health === 'unhealthy');
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    for (const s of held) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test("MOSN's slow-start-sample: a host back from a failed health check ramps its share over slow_start_duration", { timeout: 90_000 }, async () => {
  // MOSN's example config as shipped; only the listener, host and admin addresses are changed.
  const cfg = JSON.parse(fs.readFileSync(path.join(MOSN_FIXTURES, 'slow-start-sample.json'), 'utf8'));
  const names = ['s1', 's2', 's3'];
  const servers: Backend[] = [];
  for (const n of names) servers.push(await backend(n, (_q, res) => res.end(n)));
  const cluster = cfg.cluster_manager.clusters[0];
  cluster.hosts.forEach((h: { address: string }, i: number) => (h.address = `127.0.0.1:${servers[i].port}`));
  cluster.slow_start.slow_start_duration = '6s';
  cluster.health_check.interval = '300ms';
  cfg.servers[0].listeners[0].address = '127.0.0.1:0';
  cfg.admin.address.socket_address.port_value = 0;
  let s3 = servers[2];
  const sc = await startSidecar(cfg, { workers: 1 });
  try {
    const lp = sc.ports.get('serverListener')!;
    const share = async (n: number): Promise<number> => {
      let hits = 0;
      for (let i = 0; i < n; i++) if ((await request(lp, '/')).body === 's3') hits++;
      return hits / n;
    };
    // All up from the start: weights 1:2:3, no slow start (MOSN: "slow start has no effect").
    const initial = await share(60);
    assert.ok(Math.abs(initial - 0.5) < 0.1, `initial share of the weight-3 host ${initial}`);
    // Kill it, wait for the health check (TCP dial, as MOSN does for http1 without http_check_config) to notice, restart it on its port.
    const port = s3.port;
    await s3.close();
    await until('s3 out', 5000, async () => (await hostOf(sc, 'serverCluster', port)).health === 'unhealthy');
    s3 = await new Promise<Backend>((resolve) => {
      const srv = http.createServer((_q, res) => res.end('s3'));
      srv.listen(port, '127.0.0.1', () => resolve({ port, seen: [], close: () => new Promise<void>((r) => srv.close(() => r())) }));
    });
    await until('s3 back', 5000, async () => (await hostOf(sc, 'serverCluster', port)).health === 'healthy');
    const early = await share(40); // within the first ~2 s of a 6 s window
    await sleep(6500);
    const late = await share(60);
    assert.ok(early < 0.3, `share right after coming back ${early} (full weight would be 0.5)`);
    assert.ok(late > 0.4, `share after the window ${late}`);
    assert.ok(late - early > 0.15, `the share ramps: ${early} -> ${late}`);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    for (const s of [servers[0], servers[1], s3]) await s.close();
  }
});

test("health checks use the cluster's TLS (tls_context: verification, SNI, ALPN http/1.1)", { timeout: 60_000 }, async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const checks: { sni: string; alpn: string; url: string }[] = [];
  let clientErrors = 0;
  const server = https.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key), ALPNProtocols: ['h2', 'http/1.1'] }, (req, res) => {
    const t = req.socket as tls.TLSSocket;
    checks.push({ sni: t.servername || '', alpn: t.alpnProtocol || '', url: req.url ?? '' });
    res.end('ok');
  });
  server.on('tlsClientError', () => clientErrors++);
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  const cfg = httpConfig(
    [{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'secure' } }] }] }],
    { secure: [port] },
    {
      secure: {
        tls_context: { status: true, ca_cert: pki.ca.cert, server_name: 'localhost', alpn: 'h2,http/1.1' },
        health_check: { protocol: 'Http1', interval: '200ms', timeout: '1s', initial_delay_seconds: '50ms', check_config: { http_check_config: { path: '/healthz' } } },
      },
    },
  );
  const sc = await startSidecar(cfg);
  try {
    await until('checks over TLS', 10_000, async () => (await hostOf(sc, 'secure', port)).health_check.success >= 2);
    const h = await hostOf(sc, 'secure', port);
    assert.equal(h.health, 'healthy');
    assert.equal(h.health_check.failure, 0);
    assert.equal(clientErrors, 0, 'no plaintext or unverified connection');
    assert.ok(checks.length >= 2);
    assert.deepEqual(checks[0], { sni: 'localhost', alpn: 'http/1.1', url: '/healthz' });
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("MOSN fault_tolerance stream filter: the host whose exception rate is a multiple of the cluster's is taken out for recoverTime", { timeout: 60_000 }, async () => {
  const good1 = await backend('g1', (_q, res) => res.end('ok'));
  const good2 = await backend('g2', (_q, res) => res.end('ok'));
  const bad = await backend('bad', (_q, res) => res.writeHead(503).end('busy'));
  const cfg = httpConfig(
    [{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'svc' } }] }] }],
    { svc: [good1.port, good2.port, bad.port] },
  ) as { servers: { listeners: Record<string, unknown>[] }[] };
  cfg.servers[0].listeners[0].stream_filters = [
    { type: 'fault_tolerance', config: { enabled: true, exceptionTypes: [502, 503, 504], timeWindow: 500, leastWindowCount: 5, exceptionRateMultiple: 1.5, maxIpCount: 1, recoverTime: 60000, taskSize: 10 } },
  ];
  const sc = await startSidecar(cfg, { workers: 2 });
  try {
    const lp = sc.ports.get('h')!;
    let seen503 = 0;
    const t0 = Date.now();
    while ((await hostOf(sc, 'svc', bad.port)).health !== 'ejected') {
      assert.ok(Date.now() - t0 < 10_000, 'taken out within a few time windows');
      const rs = await Promise.all(Array.from({ length: 6 }, () => request(lp, '/x')));
      seen503 += rs.filter((r) => r.status === 503).length;
    }
    assert.ok(seen503 >= 5, `the bad host answered before (${seen503})`);
    assert.equal((await hostOf(sc, 'svc', bad.port)).ejection_reason, 'fault_tolerance');
    const after = await Promise.all(Array.from({ length: 30 }, () => request(lp, '/x')));
    assert.deepEqual([...new Set(after.map((r) => r.status))], [200]);
    // maxIpCount 1: the good hosts stay in.
    for (const p of [good1.port, good2.port]) assert.equal((await hostOf(sc, 'svc', p)).health, 'healthy');
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await good1.close();
    await good2.close();
    await bad.close();
  }
});
