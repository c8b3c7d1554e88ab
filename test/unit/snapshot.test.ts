/**
 * Snapshots versioned per resource (src/config/versions.ts, src/worker/snapshot.ts): a new
 * version keeps the built objects of unchanged resources; removed resources' stats slots are reused.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseConfig, type OutriggerConfig } from '../../src/config';
import '../../src/extensions'; // filter validators and builders register themselves
import { canonical, versionResources } from '../../src/config/versions';
import { StatsHub } from '../../src/stats/aggregate';
import { CLUSTER_STATS, C, STATS_SLOTS, StatsLayout } from '../../src/stats/layout';
import { ClusterManager } from '../../src/upstream/cluster';
import { assignStats, buildSnapshot, checkBuild, discardSnapshot, releaseStats, type Snapshot } from '../../src/worker/snapshot';

function doc(opts: { c2Port?: number; route?: string; withC3?: boolean; c1Weight?: number } = {}): Record<string, unknown> {
  const tcp = (name: string, cluster: string) => ({
    name,
    address: '127.0.0.1:0',
    bind_port: true,
    filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster } }] }],
  });
  const cluster = (name: string, port: number, weight = 1) => ({ name, type: 'SIMPLE', lb_type: 'LB_WEIGHTED_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${port}`, weight }, { address: `127.0.0.1:${port + 100}`, weight: 1 }] });
  return {
    servers: [
      {
        routers: [{ router_config_name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routers: [{ match: { prefix: opts.route ?? '/' }, route: { cluster_name: 'c1' } }] }] }],
        listeners: [
          tcp('l1', 'c1'),
          tcp('l2', 'c2'),
          {
            name: 'web',
            address: '127.0.0.1:0',
            bind_port: true,
            filter_chains: [{ filters: [{ type: 'proxy', config: { downstream_protocol: 'Http1', router_config_name: 'r' } }] }],
          },
        ],
      },
    ],
    cluster_manager: { clusters: [cluster('c1', 9001, opts.c1Weight), cluster('c2', opts.c2Port ?? 9002), ...(opts.withC3 ? [cluster('c3', 9003)] : [])] },
  };
}

interface World {
  layout: StatsLayout;
  manager: ClusterManager;
  counters: Float64Array;
  running?: Snapshot;
}

/** Builds and commits `config` as a worker does (prepare, then install). */
function apply(w: World, version: number, config: OutriggerConfig): Snapshot {
  assignStats(w.layout, config);
  const versions = versionResources(version, config, w.running && { config: w.running.config, versions: w.running.versions });
  const snap = buildSnapshot(version, config, versions, { counters: w.counters, layout: w.layout.toData(), manager: w.manager, accessLogFor: () => null }, w.running);
  w.manager.install(snap.clusters);
  w.running = snap;
  return snap;
}

test('changing one cluster rebuilds that cluster only: listeners, route tables and other clusters keep their objects', () => {
  const counters = new Float64Array(STATS_SLOTS);
  const w: World = { layout: new StatsLayout(), manager: new ClusterManager([], counters, {}), counters };
  const v1 = apply(w, 1, parseConfig(doc()));
  assert.deepEqual(v1.rebuilt, { listeners: ['l1', 'l2', 'web'], clusters: ['c1', 'c2'] });

  const v2 = apply(w, 2, parseConfig(doc({ c2Port: 9999 })));
  assert.deepEqual(v2.rebuilt, { listeners: [], clusters: ['c2'] });
  for (const name of ['l1', 'l2', 'web']) assert.equal(v2.listeners.get(name)!.runtime, v1.listeners.get(name)!.runtime, name);
  assert.equal(v2.clusters.get('c1'), v1.clusters.get('c1'));
  assert.notEqual(v2.clusters.get('c2'), v1.clusters.get('c2'));
  assert.equal(w.manager.get('c2')!.hosts[0]!.address, '127.0.0.1:9999', 'the listeners reach the new cluster through the manager');
  assert.equal(v2.versions['cluster/c1'], 1);
  assert.equal(v2.versions['cluster/c2'], 2);
  assert.equal(v2.versions['listener/l2'], 1);

  // A route config change rebuilds the listener that uses it, nothing else.
  const v3 = apply(w, 3, parseConfig(doc({ c2Port: 9999, route: '/api' })));
  assert.deepEqual(v3.rebuilt, { listeners: ['web'], clusters: [] });
  assert.equal(v3.listeners.get('l1')!.runtime, v1.listeners.get('l1')!.runtime);
  assert.equal(v3.versions['route/r'], 3);
});

test('a prepared snapshot that is dropped leaves the running clusters installed', () => {
  const counters = new Float64Array(STATS_SLOTS);
  const w: World = { layout: new StatsLayout(), manager: new ClusterManager([], counters, {}), counters };
  const v1 = apply(w, 1, parseConfig(doc()));
  const next = parseConfig(doc({ c2Port: 9998 }));
  const prepared = buildSnapshot(2, next, versionResources(2, next, v1), { counters, layout: w.layout.toData(), manager: w.manager, accessLogFor: () => null }, v1);
  discardSnapshot(prepared, w.manager, v1);
  assert.equal(w.manager.get('c2'), v1.clusters.get('c2'));
  assert.equal(w.manager.get('c2')!.hosts[0]!.address, '127.0.0.1:9002');
});

test('preparing a weight change does not touch the running hosts: an aborted version leaves the weights, a commit applies them', () => {
  const counters = new Float64Array(STATS_SLOTS);
  const w: World = { layout: new StatsLayout(), manager: new ClusterManager([], counters, {}), counters };
  const v1 = apply(w, 1, parseConfig(doc({ c1Weight: 1 })));
  const host = w.manager.get('c1')!.hosts[0]!;
  const picks = (): number => {
    const lb = w.manager.get('c1')!.lb;
    let n = 0;
    for (let i = 0; i < 100; i++) if (lb.choose() === host) n++;
    return n;
  };
  assert.equal(picks(), 50);
  const next = parseConfig(doc({ c1Weight: 9 }));
  const prepared = buildSnapshot(2, next, versionResources(2, next, v1), { counters, layout: w.layout.toData(), manager: w.manager, accessLogFor: () => null }, v1);
  assert.equal(host.weight, 1, 'a prepared version does not change the running host');
  assert.equal(picks(), 50, 'the running balancer still splits evenly');
  discardSnapshot(prepared, w.manager, v1);
  assert.equal(host.weight, 1, 'an aborted version leaves the running weights');
  const v2 = apply(w, 2, next);
  assert.equal(v2.clusters.get('c1')!.hosts[0], host, 'the host keeps its identity (and pools)');
  assert.equal(host.weight, 9, 'the commit applies the new weight');
  assert.equal(picks(), 90);
  // A rollback installs the previous clusters again: their weights come back.
  w.manager.install(v1.clusters);
  assert.equal(host.weight, 1);
});

test('canonical form ignores key order', () => {
  assert.equal(canonical({ b: 1, a: [{ y: 2, x: 1 }] }), canonical({ a: [{ x: 1, y: 2 }], b: 1 }));
  assert.notEqual(canonical({ a: [1, 2] }), canonical({ a: [2, 1] }));
});

test('checkBuild reports a route that does not compile with its JSON path', () => {
  const d = doc() as { servers: { routers: { virtual_hosts: { routers: { match: Record<string, unknown> }[] }[] }[] }[] };
  d.servers[0]!.routers[0]!.virtual_hosts[0]!.routers[0]!.match = { regex: '(' };
  const issues = checkBuild(parseConfig(d));
  assert.equal(issues.length, 1);
  assert.equal(issues[0]!.path, 'servers[0].routers[0].virtual_hosts[0].routers[0].match.regex');
  assert.match(issues[0]!.message, /bad regex/);
});

test("removed clusters' stats slots are reused (after the quarantine), zeroed in every buffer", () => {
  const layout = new StatsLayout();
  let now = 0;
  layout.now = () => now;
  layout.quarantineMs = 1000;
  const hub = new StatsHub(layout, { version: 'test' });
  layout.onReuse = (b, n) => hub.clearSlots(b, n);
  const buf = new Float64Array(hub.addWorker('w0'));
  const withC3 = parseConfig(doc({ withC3: true }));
  assignStats(layout, withC3);
  const c3 = layout.clusterBase('c3');
  buf[c3 + C.CX_TOTAL] = 7;
  const before = layout.toData().next;

  const without = parseConfig(doc());
  releaseStats(layout, without);
  assert.equal(layout.names('cluster').includes('c3'), false, 'c3 has no slot any more');
  assert.equal(layout.toData().clusters['c3'], c3, 'its totals stay listed until the range is reused');
  assert.equal(layout.clusterBase('c4'), before, 'within the quarantine a new cluster gets fresh slots');
  now = 1000;
  assert.equal(layout.clusterBase('c5'), c3, 'after it, the new cluster reuses the removed one\'s range');
  assert.equal(layout.toData().next, before + CLUSTER_STATS.length, 'the buffer did not grow for it');
  assert.equal(buf[c3 + C.CX_TOTAL], 0, 'counts of the removed cluster do not show up under the new one');
  assert.equal(layout.toData().clusters['c3'], undefined);
  // A name that comes back within the quarantine gets its range (and counts) back.
  buf[before + C.CX_TOTAL] = 3;
  releaseStats(layout, without);
  assert.equal(layout.clusterBase('c4'), before);
  assert.equal(buf[before + C.CX_TOTAL], 3);
  // Names of a refused version that never ran: reusable at once, not listed.
  layout.clusterBase('never');
  const neverBase = layout.toData().clusters['never'];
  layout.release('cluster', 'never', false);
  assert.equal(layout.toData().clusters['never'], undefined);
  assert.equal(layout.clusterBase('next'), neverBase);
});
