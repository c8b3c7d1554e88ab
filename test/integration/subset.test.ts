/**
 * Subset load balancing end to end through the real CLI (MOSN JSON): four HTTP backends and four
 * sofa-rpc-node servers labelled version v1/v2 and stage prod/canary; routes with metadata_match
 * (route-level and per weighted cluster) send each request only into its subset; each MOSN
 * fallback policy; no subset + NoFallBack = the protocol's "no healthy upstream" answer; a TCP
 * proxy with metadata_match.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { close, connect, listen } from '../helpers/net';
import { backend, httpConfig, request, type Backend } from '../helpers/http';
import { boltProxyConfig, rawClient, rawRequest, sofaClient, startSofaServer, type SofaServer } from '../helpers/sofa';
import { STATUS_NO_PROCESSOR } from '../../src/protocol/bolt';

/** Labels of the four backends a, b, c, d. */
const LABELS: readonly Record<string, string>[] = [
  { version: 'v1', stage: 'prod' },
  { version: 'v1', stage: 'canary' },
  { version: 'v2', stage: 'prod' },
  { version: 'v2', stage: 'canary' },
];
const NAMES = ['a', 'b', 'c', 'd'];
const SELECTORS = [['version'], ['version', 'stage']];

const mm = (labels: Record<string, string>) => ({ filter_metadata: { 'mosn.lb': labels } });
const labelledHosts = (ports: readonly number[]) => ports.map((p, i) => ({ address: `127.0.0.1:${p}`, metadata: mm(LABELS[i]) }));

/** Which backends answered `n` requests. */
async function answered(port: number, route: string, n = 16): Promise<string> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await request(port, '/', { headers: { 'x-route': route } });
    seen.add(r.status === 200 ? String(r.headers['x-backend']) : String(r.status));
  }
  return [...seen].sort().join(',');
}

test('HTTP: requests land only in the subset their route names; AnyEndPoint, DefaultSubset and NoFallBack', { timeout: 60_000 }, async () => {
  const backends: Backend[] = await Promise.all(NAMES.map((n) => backend(n)));
  const ports = backends.map((b) => b.port);
  const route = (value: string | null, action: Record<string, unknown>) => ({
    match: { prefix: '/', ...(value !== null ? { headers: [{ name: 'x-route', value }] } : {}) },
    route: action,
  });
  const cfg = httpConfig(
    [{ name: 'web', downstream: 'Http1', router: 'r' }],
    [{
      router_config_name: 'r',
      virtual_hosts: [{
        name: 'vh', domains: ['*'],
        routers: [
          route('v1', { cluster_name: 'none', metadata_match: mm({ version: 'v1' }) }),
          route('v2-canary', { cluster_name: 'none', metadata_match: mm({ stage: 'canary', version: 'v2' }) }),
          route('v3', { cluster_name: 'none', metadata_match: mm({ version: 'v3' }) }),
          route('stage-only', { cluster_name: 'none', metadata_match: mm({ stage: 'prod' }) }),
          route('any-v3', { cluster_name: 'any', metadata_match: mm({ version: 'v3' }) }),
          route('default-v3', { cluster_name: 'default', metadata_match: mm({ version: 'v3' }) }),
          route('weighted', { weighted_clusters: [{ cluster: { name: 'none', weight: 100, metadata_match: mm({ version: 'v2' }) } }] }),
          route(null, { cluster_name: 'none' }),
        ],
      }],
    }],
    { none: ports, any: ports, default: ports },
    {
      none: { hosts: labelledHosts(ports), lb_subset_config: { fall_back_policy: 0, subset_selectors: SELECTORS } },
      any: { hosts: labelledHosts(ports), lb_subset_config: { fall_back_policy: 1, subset_selectors: SELECTORS } },
      default: { hosts: labelledHosts(ports), lb_subset_config: { fall_back_policy: 2, default_subset: { stage: 'canary' }, subset_selectors: SELECTORS } },
    },
  );
  const sc = await startSidecar(cfg);
  try {
    const port = sc.ports.get('web')!;
    assert.equal(await answered(port, 'v1'), 'a,b');
    assert.equal(await answered(port, 'v2-canary', 6), 'd');
    assert.equal(await answered(port, 'weighted'), 'c,d');
    // No subset has these criteria (values no host has; keys no selector has): NoFallBack = 503.
    assert.equal(await answered(port, 'v3', 4), '503');
    assert.equal(await answered(port, 'stage-only', 4), '503');
    const r = await request(port, '/', { headers: { 'x-route': 'v3' } });
    assert.doesNotMatch(r.body, /127\.0\.0\.1|Error/, 'no internal detail in the local reply');
    // AnyEndPoint: every host; DefaultSubset: the default_subset's hosts.
    assert.equal(await answered(port, 'any-v3', 24), 'a,b,c,d');
    assert.equal(await answered(port, 'default-v3'), 'b,d');
    // No criteria (MOSN): every host of the cluster.
    assert.equal(await answered(port, 'none', 24), 'a,b,c,d');
    const st = await sc.stats();
    assert.equal(st.clusters.none.upstream_cx_no_host, 9, 'the 503s were "no host" answers');
    // Where each pick's host came from, per cluster (v1 16 + v2-canary 6 + weighted 16 in their subsets;
    // 9 without subset nor fallback; MOSN's 24 without criteria go to every host).
    const picks = (c: string) => {
      const s = st.clusters[c] as Record<string, number>;
      return [s.lb_subsets_selected, s.lb_subsets_fallback, s.lb_subsets_fallback_default_subset, s.lb_subsets_fallback_any_endpoint, s.lb_subsets_no_fallback];
    };
    assert.deepEqual(picks('none'), [38, 24, 0, 24, 9]);
    assert.deepEqual(picks('any'), [0, 24, 0, 24, 0]);
    assert.deepEqual(picks('default'), [0, 16, 16, 0, 0]);
    const prom = await (await fetch(`http://127.0.0.1:${sc.adminPort}/stats/prometheus`)).text();
    assert.match(prom, /\n# TYPE outrigger_cluster_lb_subsets_no_fallback_total counter\n/);
    assert.match(prom, /\noutrigger_cluster_lb_subsets_no_fallback_total\{cluster="none"\} 9\n/);
    assert.match(prom, /\noutrigger_cluster_lb_subsets_fallback_default_subset_total\{cluster="default"\} 16\n/);
  } finally {
    assert.equal(await sc.terminate(), 0);
    await Promise.all(backends.map((b) => b.close()));
  }
});

test('Bolt (sofa-rpc-node): subset by metadata_match; NoFallBack without a subset = the error status', { timeout: 60_000 }, async () => {
  const servers: SofaServer[] = await Promise.all(NAMES.map((n) => startSofaServer({
    'com.example.V1': { async who() { return n; } },
    'com.example.V2Canary': { async who() { return n; } },
    'com.example.V3': { async who() { return n; } },
  })));
  const ports = servers.map((s) => s.port);
  const svc = (name: string) => ({ match: { headers: [{ name: 'service', value: `${name}:1.0` }] } });
  const cfg = boltProxyConfig({
    clusters: { bolt: ports },
    routes: [
      { ...svc('com.example.V1'), route: { cluster_name: 'bolt', metadata_match: mm({ version: 'v1' }) } },
      { ...svc('com.example.V2Canary'), route: { weighted_clusters: [{ cluster: { name: 'bolt', weight: 1, metadata_match: mm({ version: 'v2', stage: 'canary' }) } }] } },
      { ...svc('com.example.V3'), route: { cluster_name: 'bolt', metadata_match: mm({ version: 'v3' }) } },
    ],
  });
  const cluster = (cfg.cluster_manager as { clusters: Record<string, unknown>[] }).clusters[0];
  cluster.hosts = labelledHosts(ports);
  cluster.lb_subset_config = { fall_back_policy: 0, subset_selectors: SELECTORS };
  const sc = await startSidecar(cfg);
  const client = sofaClient(sc.ports.get('bolt')!);
  try {
    const who = async (iface: string, n: number): Promise<string> => {
      // A short fault-retry sleep: the client's 30 s default would keep the test process alive after close().
      const c = client.client.createConsumer({ interfaceName: iface, serverHost: `127.0.0.1:${sc.ports.get('bolt')!}`, retryFaultInterval: 200 });
      await c.ready();
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) seen.add(String(await c.invoke('who', [], { responseTimeout: 3000 })));
      return [...seen].sort().join(',');
    };
    assert.equal(await who('com.example.V1', 16), 'a,b');
    assert.equal(await who('com.example.V2Canary', 6), 'd');
    const raw = await rawClient(sc.ports.get('bolt')!);
    raw.sock.write(rawRequest(7, 'com.example.V3:1.0'));
    await raw.wait(1);
    assert.equal(raw.frames[0].frame.requestId, 7);
    assert.equal(raw.frames[0].frame.status, STATUS_NO_PROCESSOR, 'no healthy upstream');
    raw.sock.destroy();
  } finally {
    await client.close();
    assert.equal(await sc.terminate(), 0);
    await Promise.all(servers.map((s) => s.close()));
  }
});

test('TCP proxy: metadata_match (the form the xDS translator writes for Envoy TcpProxy) picks the subset', { timeout: 60_000 }, async () => {
  const servers = await Promise.all(NAMES.map(async (n) => {
    const server = net.createServer((s) => s.end(n));
    return { server, port: await listen(server) };
  }));
  const ports = servers.map((s) => s.port);
  const cfg = tcpProxyConfig({ upstreams: ports });
  const listener = (cfg.servers as { listeners: { filter_chains: { filters: { config: Record<string, unknown> }[] }[] }[] }[])[0].listeners[0];
  listener.filter_chains[0].filters[0].config.metadata_match = mm({ stage: 'canary' });
  const cluster = (cfg.cluster_manager as { clusters: Record<string, unknown>[] }).clusters[0];
  cluster.hosts = labelledHosts(ports);
  cluster.lb_subset_config = { fall_back_policy: 0, subset_selectors: [['stage']] };
  const sc = await startSidecar(cfg);
  try {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const s = await connect(sc.ports.get('tcp')!);
      seen.add(await new Promise<string>((resolve) => {
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.on('end', () => {
          s.destroy();
          resolve(got);
        });
      }));
    }
    assert.equal([...seen].sort().join(','), 'b,d');
  } finally {
    assert.equal(await sc.terminate(), 0);
    await Promise.all(servers.map((s) => close(s.server)));
  }
});
