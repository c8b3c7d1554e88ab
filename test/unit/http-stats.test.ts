/** Per-route HTTP stats: route names and slots across reloads, the worker-side recording API. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseConfig } from '../../src/config'; // with the proxy filter's validators registered
import '../../src/extensions'; // filter validators register themselves (the config layer imports no filter)
import { bindRouteStats, clusterTime, drainHistograms, httpRouteStatNamesOf, resetRouteStats, routeBase, routeCount, routeRequest, routeResponse } from '../../src/http/route-stats';
import { compileHttpRouter, httpRouteStatNames } from '../../src/router/http-routes';
import { StatsHub } from '../../src/stats/aggregate';
import { R, ROUTE_STATS, STATS_SLOTS, StatsLayout } from '../../src/stats/layout';

function mosn(routers: unknown[], proxies: Array<{ router: string; downstream: string; upstream?: string }>): unknown {
  return {
    servers: [
      {
        routers,
        listeners: proxies.map((p, i) => ({
          name: `l${i}`,
          address: `127.0.0.1:${20000 + i}`,
          filter_chains: [
            {
              filters: [
                {
                  type: 'proxy',
                  config: { downstream_protocol: p.downstream, upstream_protocol: p.upstream ?? p.downstream, router_config_name: p.router },
                },
              ],
            },
          ],
        })),
      },
    ],
    cluster_manager: { clusters: [{ name: 'a', type: 'SIMPLE', hosts: [{ address: '127.0.0.1:1' }] }, { name: 'b', type: 'SIMPLE', hosts: [{ address: '127.0.0.1:2' }] }] },
  };
}

const V1 = {
  router_config_name: 'web',
  virtual_hosts: [
    {
      name: 'site',
      domains: ['*'],
      routers: [
        { name: 'api', match: { prefix: '/api' }, route: { cluster_name: 'a' } },
        { match: { prefix: '/' }, route: { cluster_name: 'b' } },
      ],
    },
  ],
};

test('route stats names: router.vhost.(name | index), unnamed virtual hosts are vh<i>', () => {
  assert.deepEqual(httpRouteStatNames({ name: 'web', virtualHosts: V1.virtual_hosts }), ['web.site.api', 'web.site.1']);
  const unnamed = { name: 'r', virtualHosts: [{ domains: ['x'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'a' } }] }] };
  assert.deepEqual(httpRouteStatNames(unnamed), ['r.vh0.0']);
  // The compiled routes carry the same names the main thread assigns slots to.
  const compiled = compileHttpRouter({ name: 'web', virtualHosts: V1.virtual_hosts });
  assert.deepEqual(
    compiled.virtualHosts.flatMap((vh) => vh.routes.map((r) => r.statsName)),
    ['web.site.api', 'web.site.1'],
  );
});

test('only routers of HTTP proxy filters get route slots', () => {
  const rpc = { router_config_name: 'rpc', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'a' } }] }] };
  const cfg = parseConfig(mosn([V1, rpc], [{ router: 'web', downstream: 'Http1' }, { router: 'rpc', downstream: 'Auto', upstream: 'Auto' }]));
  assert.deepEqual(httpRouteStatNamesOf(cfg), ['web.site.api', 'web.site.1']);
});

test('route slots are append-only across a reload: existing names keep their slots', () => {
  const layout = new StatsLayout();
  const before = parseConfig(mosn([V1], [{ router: 'web', downstream: 'Http1' }]));
  for (const n of httpRouteStatNamesOf(before)) layout.routeBase(n);
  const slots1 = { ...layout.toData().routes };
  assert.equal(Object.keys(slots1).length, 2);
  assert.equal(slots1['web.site.1'] - slots1['web.site.api'], ROUTE_STATS.length, 'one block per route');
  // Reload: a route inserted before the index-named one (which is renamed web.site.2), a new
  // virtual host, and the named route moved to the end.
  const v2 = {
    router_config_name: 'web',
    virtual_hosts: [
      {
        name: 'site',
        domains: ['*'],
        routers: [
          { name: 'health', match: { path: '/healthz' }, direct_response: { status: 200, body: 'ok' } },
          { match: { prefix: '/x' }, route: { cluster_name: 'b' } },
          { match: { prefix: '/' }, route: { cluster_name: 'b' } },
          { name: 'api', match: { prefix: '/api' }, route: { cluster_name: 'a' } },
        ],
      },
      { name: 'admin', domains: ['admin.example'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'a' } }] },
    ],
  };
  const after = parseConfig(mosn([v2], [{ router: 'web', downstream: 'Http1' }]));
  for (const n of httpRouteStatNamesOf(after)) layout.routeBase(n);
  const slots2 = layout.toData().routes;
  assert.equal(slots2['web.site.api'], slots1['web.site.api'], 'a named route keeps its slot wherever it moves');
  assert.equal(slots2['web.site.1'], slots1['web.site.1'], 'index 1 keeps its slot (it is another route now: index names follow positions)');
  for (const n of ['web.site.health', 'web.site.2', 'web.admin.0']) {
    assert.ok(slots2[n] >= slots1['web.site.1'] + ROUTE_STATS.length, `${n} is appended`);
  }
  const all = Object.values(slots2).sort((x, y) => x - y);
  for (let i = 1; i < all.length; i++) assert.equal(all[i] - all[i - 1], ROUTE_STATS.length, 'no overlap');
});

test('the exchange API counts into the route block of the bound buffer; unknown routes count nothing', () => {
  const layout = new StatsLayout();
  layout.clusterBase('a');
  const hub = new StatsHub(layout, { version: 't' });
  const cfg = { name: 'web', virtualHosts: V1.virtual_hosts };
  for (const n of httpRouteStatNames(cfg)) layout.routeBase(n);
  const buf = new Float64Array(hub.addWorker(0));
  resetRouteStats();
  try {
    bindRouteStats(buf, layout.toData().routes);
    const [api, rest] = compileHttpRouter(cfg).virtualHosts[0].routes;
    assert.equal(api.statsBase, -1, 'unresolved until first use');
    routeRequest(api);
    assert.equal(api.statsBase, layout.toData().routes['web.site.api'], 'resolved once, kept on the route');
    routeRequest(api);
    routeRequest(rest);
    routeResponse(api, 200, 20_000);
    routeResponse(api, 503, 1_000);
    routeResponse(rest, 404, 500);
    routeCount(api, R.RETRY);
    routeCount(api, R.RETRY_SUCCESS);
    routeCount(api, R.TIMEOUT);
    routeCount(api, R.PER_TRY_TIMEOUT);
    routeCount(api, R.UPSTREAM_RESET);
    routeCount(rest, R.DOWNSTREAM_RESET);
    clusterTime({ base: layout.clusterBase('a') }, 7_000);
    const stray = compileHttpRouter({ name: 'other', virtualHosts: V1.virtual_hosts }).virtualHosts[0].routes[0];
    routeRequest(stray);
    routeResponse(stray, 200, 5);
    assert.equal(routeBase(stray), -2, 'no slot: not counted');
    hub.addHistograms(drainHistograms() ?? []);
    assert.equal(drainHistograms(), null, 'nothing changed since the last drain: nothing to ship');
    const s = hub.snapshot();
    assert.deepEqual(s.routes['web.site.api'], {
      rq_total: 2,
      rq_1xx: 0,
      rq_2xx: 1,
      rq_3xx: 0,
      rq_4xx: 0,
      rq_5xx: 1,
      upstream_rq_retry: 1,
      upstream_rq_retry_success: 1,
      upstream_rq_timeout: 1,
      upstream_rq_per_try_timeout: 1,
      upstream_rq_reset: 1,
      downstream_rq_reset: 0,
    });
    assert.equal(s.routes['web.site.1'].rq_4xx, 1);
    assert.equal(s.routes['web.site.1'].downstream_rq_reset, 1);
    assert.equal(s.histograms.routes['web.site.api'].downstream_rq_time.count, 2);
    assert.ok(Math.abs(s.histograms.routes['web.site.api'].downstream_rq_time.max - 20) < 0.2);
    assert.equal(s.histograms.routes['web.site.1'].downstream_rq_time.count, 1);
    assert.equal(s.histograms.clusters.a.upstream_rq_time.count, 1);
    assert.ok(Math.abs(s.histograms.clusters.a.upstream_rq_time.p50 - 7) < 0.07);
    // Nothing outside the assigned blocks was written.
    const used = new Set<number>();
    for (const b of Object.values(layout.toData().routes)) for (let i = 0; i < ROUTE_STATS.length; i++) used.add(b + i);
    for (let i = 0; i < STATS_SLOTS; i++) if (!used.has(i)) assert.equal(buf[i], 0, `slot ${i}`);
  } finally {
    resetRouteStats();
  }
});
