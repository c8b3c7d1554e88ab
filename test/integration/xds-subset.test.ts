/**
 * Subset load balancing over xDS (the test ADS server, Envoy v3 resources): a cluster's
 * lb_subset_config, endpoint labels in filter_metadata["envoy.lb"] and route metadata_match;
 * requests (curl) land only in their subset, Envoy's NO_FALLBACK answers 503 (no criteria too),
 * and an EDS update that relabels an endpoint moves traffic at once.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AdsServer } from '../helpers/ads-server';
import { backend, deadPort, run, type Backend } from '../helpers/http';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { edsCluster, httpListener } from '../helpers/xds-resources';

const CLUSTER = 'outbound|80||web.default.svc.cluster.local';

function labelledEndpoints(eps: readonly { port: number; version: string }[]): Record<string, unknown> {
  return {
    cluster_name: CLUSTER,
    endpoints: [{
      lb_endpoints: eps.map((e) => ({
        endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: e.port } } },
        metadata: { filter_metadata: { 'envoy.lb': { version: e.version } } },
      })),
    }],
  };
}

function subsetRoutes(): Record<string, unknown> {
  const to = (prefix: string, version: string | null) => ({
    match: { prefix },
    route: { cluster: CLUSTER, timeout: '5s', ...(version !== null ? { metadata_match: { filter_metadata: { 'envoy.lb': { version } } } } : {}) },
  });
  return { name: 'web.80', virtual_hosts: [{ name: 'web', domains: ['*'], routes: [to('/v1', 'v1'), to('/v2', 'v2'), to('/v9', 'v9'), to('/', null)] }] };
}

/** Backends answering `n` curl requests to `path` (status codes for local replies). */
async function answered(port: number, path: string, n: number): Promise<string> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await run('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-D', '-', `http://127.0.0.1:${port}${path}`]);
    const code = /^HTTP\/1\.1 (\d+)/.exec(r.stdout)?.[1] ?? '0';
    seen.add(code === '200' ? (/x-backend: (\w+)/i.exec(r.stdout)?.[1] ?? '?') : code);
  }
  return [...seen].sort().join(',');
}

async function until(probe: () => Promise<string>, want: string, what: string): Promise<void> {
  const end = Date.now() + 15_000;
  let last = '';
  while (Date.now() < end) {
    last = await probe().catch((e: Error) => e.message);
    if (last === want) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: got ${last}, want ${want}`);
}

test('xDS: lb_subset_config + envoy.lb endpoint labels + route metadata_match; EDS relabelling moves traffic', { timeout: 60_000 }, async () => {
  const ads = await AdsServer.start();
  const backends: Backend[] = await Promise.all(['a', 'b', 'c'].map((n) => backend(n)));
  const [a, b, c] = backends.map((x) => x.port);
  const port = await deadPort();
  let sc: RunningSidecar | undefined;
  try {
    ads.set('cluster', [edsCluster(CLUSTER, { lb_subset_config: { fallback_policy: 'NO_FALLBACK', subset_selectors: [{ keys: ['version'] }] } })]);
    ads.set('endpoints', [labelledEndpoints([{ port: a, version: 'v1' }, { port: b, version: 'v1' }, { port: c, version: 'v2' }])]);
    ads.set('listener', [httpListener('web', port, 'web.80', 'HTTP1')]);
    ads.set('route', [subsetRoutes()]);
    sc = await startSidecar({
      node: { id: 'sidecar~127.0.0.1~app.default~default.svc.cluster.local', cluster: 'app' },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      dynamic_resources: {
        lds_config: { ads: {}, resource_api_version: 'V3' },
        cds_config: { ads: {}, resource_api_version: 'V3' },
        ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }] },
      },
      static_resources: {
        clusters: [{
          name: 'xds', type: 'STATIC', connect_timeout: '1s',
          load_assignment: { cluster_name: 'xds', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: ads.port } } } }] }] },
        }],
      },
    });
    await until(() => answered(port, '/v2', 1), 'c', 'the route over xDS');
    assert.equal(await answered(port, '/v1', 12), 'a,b');
    assert.equal(await answered(port, '/v2', 4), 'c');
    // Envoy NO_FALLBACK: criteria without a subset, and no criteria at all, find no host.
    assert.equal(await answered(port, '/v9', 3), '503');
    assert.equal(await answered(port, '/', 3), '503');
    // EDS relabels c: the subsets are rebuilt with the hosts.
    ads.set('endpoints', [labelledEndpoints([{ port: a, version: 'v1' }, { port: b, version: 'v1' }, { port: c, version: 'v9' }])]);
    await until(() => answered(port, '/v9', 1), 'c', 'v9 after the EDS update');
    assert.equal(await answered(port, '/v2', 3), '503');
    assert.equal(await answered(port, '/v1', 12), 'a,b');
  } finally {
    if (sc !== undefined) assert.equal(await sc.terminate(), 0);
    await ads.stop();
    await Promise.all(backends.map((x) => x.close()));
  }
});
