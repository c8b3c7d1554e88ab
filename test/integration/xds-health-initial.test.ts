/**
 * Envoy's semantics for the hosts of a health-checked cluster from xDS: a new host starts
 * unhealthy, pending its first check; that first check (run at once, before the config is
 * committed, bounded by the check's timeout) brings it in alone (whatever healthy_threshold),
 * a failed one keeps it out. A MOSN cluster keeps MOSN's behaviour: hosts start healthy.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Sidecar } from '../../src/server';
import type { ClusterConfig, OutriggerConfig } from '../../src/config/types';
import { fromJson } from '../../src/xds/proto';
import { translator } from '../../src/xds/translate';
import { TYPE_URL, type TranslatedListener, type TranslationContext } from '../../src/xds/types';
import { backend, httpConfig, request, type Backend } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';

const ctx: TranslationContext = { secret: () => undefined, warn: () => undefined };
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const NAME = 'outbound|80||svc';

/** A backend answering its name, and /healthz with 200 or 503 as `ok` says. */
async function hostB(name: string, ok: { v: boolean }): Promise<Backend> {
  return backend(name, (req, res) => (req.url === '/healthz' ? res.writeHead(ok.v ? 200 : 503).end() : res.end(name)));
}

function xdsCluster(ports: readonly number[]): ClusterConfig {
  return translator.cluster(fromJson(TYPE_URL.cluster, {
    name: NAME, type: 'STATIC', connectTimeout: '1s',
    loadAssignment: { clusterName: NAME, endpoints: [{ lbEndpoints: ports.map((p) => ({ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: p } } } })) }] },
    // A long interval: only the first check can decide within the test; healthy_threshold 3 is not needed by it.
    healthChecks: [{ timeout: '1s', interval: '30s', unhealthyThreshold: 1, healthyThreshold: 3, httpHealthCheck: { path: '/healthz' } }],
  }), ctx).cluster;
}

function xdsListener(): TranslatedListener {
  return translator.listener(fromJson(TYPE_URL.listener, {
    name: 'l', address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
      '@type': HCM, statPrefix: 'l',
      routeConfig: { name: 'r', virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: NAME, timeout: '2s' } }] }] },
      httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    } }] }],
  }), ctx);
}

function configOf(tl: TranslatedListener, cluster: ClusterConfig): OutriggerConfig {
  return {
    servers: [{ defaultLogPath: 'stderr', defaultLogLevel: 'error', processor: 1, gracefulTimeoutMs: 1000, listeners: [tl.listener], routers: [...tl.routers] }],
    clusters: [cluster], admin: { address: { host: '127.0.0.1', port: 0 } }, raw: {},
  };
}

async function served(port: number, n: number): Promise<string[]> {
  const rs = await Promise.all(Array.from({ length: n }, () => request(port, '/x')));
  return [...new Set(rs.map((r) => `${r.status} ${r.body}`))].sort();
}

test('xDS cluster with health checks: hosts start pending; the first check alone brings one in, a failed one keeps it out; added hosts too; a MOSN cluster\'s hosts start healthy', { timeout: 30_000 }, async (t) => {
  const okA = { v: true };
  const okB = { v: false };
  const okC = { v: true };
  const okD = { v: false };
  const [a, b, c, d] = [await hostB('a', okA), await hostB('b', okB), await hostB('c', okC), await hostB('d', okD)];
  t.after(async () => {
    for (const x of [a, b, c, d]) await x.close();
  });
  const tl = xdsListener();
  const sc = new Sidecar({ config: configOf(tl, xdsCluster([a.port, b.port])), workers: 1, adminPort: 0, logLevel: 'error' });
  await sc.start();
  t.after(() => sc.stop());
  const port = sc.listeners().find((l) => l.name === tl.listener.name)!.port;
  // From the first request: a passed its first check (healthy_threshold 3 notwithstanding), b failed it.
  assert.deepEqual(await served(port, 12), ['200 a']);
  assert.equal(b.seen.filter((s) => s.url === '/healthz').length, 1);

  // EDS-style update: c (healthy) and d (failing) join; the reload waits for their first checks.
  await sc.reload(configOf(tl, xdsCluster([a.port, b.port, c.port, d.port])));
  assert.deepEqual(await served(port, 16), ['200 a', '200 c']);
  assert.equal(d.seen.filter((s) => s.url !== '/healthz').length, 0, 'd never took traffic');

  // The same hosts in a MOSN cluster: they start healthy (MOSN), b takes traffic until its first check.
  const cfg = httpConfig(
    [{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'svc' } }] }] }],
    { svc: [a.port, b.port] },
    { svc: { health_check: { protocol: 'Http1', timeout: '1s', interval: '30s', initial_delay_seconds: '10s', check_config: { http_check_config: { path: '/healthz' } } } } },
  );
  const mosn = await startSidecar(cfg);
  try {
    assert.deepEqual(await served(mosn.ports.get('h')!, 12), ['200 a', '200 b']);
  } finally {
    assert.equal(await mosn.terminate(), 0, mosn.output());
  }
});
