/**
 * Issue 13's rate limits and mirroring end to end over xDS: a real sidecar (the CLI) whose only
 * listener, route configuration and clusters come from the test ADS server. The listener's HCM
 * has Envoy's `local_ratelimit` HTTP filter with descriptors; the route configuration carries
 * `rate_limits` on a route (request_headers) and on its virtual host (generic_key), and
 * `request_mirror_policies` at the route-configuration level (neither route nor virtual host has
 * its own). Requests beyond a descriptor's bucket get 429 with x-ratelimit-* headers, the others
 * pass; every request that reached the main backend reaches the shadow backend too.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AdsServer } from '../helpers/ads-server';
import { backend, deadPort, request } from '../helpers/http';
import { sleep } from '../helpers/sofa';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { staticCluster } from '../helpers/xds-resources';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const RL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ALL = { runtime_key: 'rl_on', default_value: { numerator: 100, denominator: 'HUNDRED' } };
const bucket = (n: number): Record<string, unknown> => ({ max_tokens: n, tokens_per_fill: n, fill_interval: '60s' });

/** An Envoy bootstrap whose listeners and clusters all come over ADS (state of the world). */
function adsOnly(adsPort: number): Record<string, unknown> {
  const ads = { ads: {}, resource_api_version: 'V3' };
  return {
    node: { id: 'sidecar~127.0.0.1~rl-mirror.default~default.svc.cluster.local', cluster: 'rl-mirror.default' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    dynamic_resources: {
      lds_config: ads,
      cds_config: ads,
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
    },
    static_resources: { clusters: [staticCluster('xds-grpc', [adsPort])] },
  };
}

test('over xDS: local_ratelimit HTTP filter with route and virtual-host rate_limits answers 429 past a descriptor\'s bucket; route-configuration request_mirror_policies copies to the shadow', { timeout: 60_000 }, async () => {
  const ads = await AdsServer.start();
  const main = await backend('main');
  const shadow = await backend('shadow');
  const port = await deadPort();
  let sc: RunningSidecar | undefined;
  try {
    ads.set('cluster', [staticCluster('main', [main.port]), staticCluster('shadow', [shadow.port])]);
    ads.set('listener', [{
      name: 'rl_mirror', address: { socket_address: { address: '127.0.0.1', port_value: port } },
      filter_chains: [{
        filters: [{
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': HCM, stat_prefix: 'rl_mirror', codec_type: 'HTTP1',
            rds: { route_config_name: 'r', config_source: { ads: {}, resource_api_version: 'V3' } },
            http_filters: [
              {
                name: 'envoy.filters.http.local_ratelimit',
                typed_config: {
                  '@type': RL, stat_prefix: 'rl', token_bucket: bucket(100), filter_enabled: ALL, filter_enforced: ALL,
                  enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
                  descriptors: [
                    { entries: [{ key: 'user', value: 'alice' }], token_bucket: bucket(2) },
                    { entries: [{ key: 'generic_key', value: 'vh' }], token_bucket: bucket(3) },
                  ],
                },
              },
              { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
            ],
          },
        }],
      }],
    }]);
    ads.set('route', [{
      name: 'r',
      request_mirror_policies: [{ cluster: 'shadow', runtime_fraction: { default_value: { numerator: 100, denominator: 'HUNDRED' } } }],
      virtual_hosts: [{
        name: 'vh', domains: ['*'],
        rate_limits: [{ actions: [{ generic_key: { descriptor_value: 'vh' } }] }],
        routes: [
          // The route's own rate_limits replace the virtual host's (no include_vh_rate_limits).
          { match: { prefix: '/user' }, route: { cluster: 'main', timeout: '5s', rate_limits: [{ actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user' } }] }] } },
          { match: { prefix: '/' }, route: { cluster: 'main', timeout: '5s' } },
        ],
      }],
    }]);
    sc = await startSidecar(adsOnly(ads.port));
    // Wait until the listener, its route and clusters have arrived (carol has no descriptor of her own).
    const end = Date.now() + 15_000;
    let probe = await request(port, '/user/probe', { headers: { 'x-user': 'carol' } }).catch(() => null);
    while ((probe === null || probe.status !== 200) && Date.now() < end) {
      await sleep(100);
      probe = await request(port, '/user/probe', { headers: { 'x-user': 'carol' } }).catch(() => null);
    }
    assert.ok(probe !== null && probe.status === 200, `the xDS listener serves (last: ${probe?.status})`);
    assert.equal(probe.headers['x-ratelimit-limit'], '100', 'no listed descriptor: the default bucket');

    const statuses = async (n: number, p: string, headers: Record<string, string> = {}): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await request(port, `${p}/${i}`, { headers })).status);
      return out;
    };
    // request_headers (the route's rate_limits): alice's descriptor has 2 tokens.
    const a = await request(port, '/user/a0', { headers: { 'x-user': 'alice' } });
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-ratelimit-limit'], '2', 'alice\'s descriptor bucket');
    assert.equal(a.headers['x-ratelimit-remaining'], '1');
    assert.equal((await request(port, '/user/a1', { headers: { 'x-user': 'alice' } })).status, 200);
    const rejected = await request(port, '/user/a2', { headers: { 'x-user': 'alice' } });
    assert.equal(rejected.status, 429);
    assert.equal(rejected.headers['x-ratelimit-limit'], '2');
    assert.equal(rejected.headers['x-ratelimit-remaining'], '0');
    // bob is not a listed descriptor value: the default bucket lets him through.
    assert.deepEqual(await statuses(3, '/user/bob', { 'x-user': 'bob' }), [200, 200, 200]);
    // generic_key (the virtual host's rate_limits): the catch-all route has none of its own; 3 tokens.
    assert.deepEqual(await statuses(4, '/vh'), [200, 200, 200, 429]);

    // Mirror: every request the main backend answered was copied to the shadow, none of the 429s.
    const mainUrls = main.seen.map((s) => s.url).sort();
    for (const u of ['/user/a0', '/user/a1', '/user/bob/2', '/vh/2']) assert.ok(mainUrls.includes(u), `main saw ${u}`);
    for (const u of ['/user/a2', '/vh/3']) assert.ok(!mainUrls.includes(u), `main did not see the rejected ${u}`);
    const until = Date.now() + 5000;
    while (shadow.seen.length < mainUrls.length && Date.now() < until) await sleep(20);
    await sleep(100); // a stray copy of a rejected request would have arrived by now
    assert.deepEqual(shadow.seen.map((s) => s.url).sort(), mainUrls);
    assert.ok(shadow.seen.every((s) => String(s.headers.host).endsWith('-shadow')), 'copies carry the shadow host');
  } finally {
    if (sc) assert.equal(await sc.terminate(), 0);
    await ads.stop();
    await Promise.all([main.close(), shadow.close()]);
  }
});
