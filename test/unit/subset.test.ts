/**
 * Subset load balancing (src/upstream/subset.ts): subsets per selector from host labels, the
 * fallback policies (MOSN and Envoy flavours), health inside a subset, rebuild on host updates;
 * route and weighted-cluster metadata_match compiled by both routers; config errors with paths;
 * the xDS translation of lb_subset_config, endpoint labels and route metadata_match.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import '../../src/extensions';
import { parseConfig } from '../../src/config';
import { IssueCollector, ConfigObject } from '../../src/config/reader';
import { parseClusterManager } from '../../src/config/clusters';
import type { ClusterConfig, HostConfig } from '../../src/config/types';
import { ClusterManager, type Cluster } from '../../src/upstream/cluster';
import type { Host, LbContext } from '../../src/upstream/lb';
import { compileMetadataMatch, MetadataMatch } from '../../src/upstream/subset-match';
import { SubsetLoadBalancer } from '../../src/upstream/subset';
import { compileHttpRouter } from '../../src/router/http-routes';
import { compileRouter } from '../../src/router/router';
import { validateRouterConfig } from '../../src/router/validate';
import { TYPE_URL, XdsResourceError } from '../../src/xds/types';
import { fromJson } from '../../src/xds/proto';
import { translator } from '../../src/xds/translate';
import { recordingContext } from './xds/fixtures';

const lbl = (labels: Record<string, string>) => ({ metadata: { filter_metadata: { 'mosn.lb': labels } } });

/** Four hosts: 1 v1/prod, 2 v1/canary, 3 v2/prod, 4 unlabelled. */
const HOSTS = [
  { address: '127.0.0.1:1', ...lbl({ version: 'v1', stage: 'prod' }) },
  { address: '127.0.0.1:2', ...lbl({ version: 'v1', stage: 'canary' }) },
  { address: '127.0.0.1:3', ...lbl({ version: 'v2', stage: 'prod' }) },
  { address: '127.0.0.1:4' },
];

function mosnClusterConfig(subset: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}): { cfg: ClusterConfig; issues: IssueCollector } {
  const issues = new IssueCollector();
  const c = { name: 'up', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: HOSTS, ...(subset ? { lb_subset_config: subset } : {}), ...extra };
  const cfg = parseClusterManager({ issues, clusterNames: new Map() }, new ConfigObject(issues, 'cluster_manager', { clusters: [c] }))[0];
  return { cfg, issues };
}

function build(cfg: ClusterConfig): Cluster {
  return new ClusterManager([cfg], new Float64Array(4096), { up: 100 }).get('up')!;
}

const ctx = (labels: Record<string, string> | null): LbContext => ({ downstream: null, metadataMatch: labels === null ? null : new MetadataMatch(labels) });

/** Ports picked over `n` choices (0 = no host). */
function picks(c: Cluster, x: LbContext | null, n = 40): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < n; i++) out.add(c.lb.choose(x)?.port ?? 0);
  return out;
}

const SEL = [['version'], ['stage', 'version']];

test('MOSN lb_subset_config: requests land only in the subset their criteria name; no criteria = every host', () => {
  const { cfg, issues } = mosnClusterConfig({ fall_back_policy: 0, subset_selectors: SEL });
  assert.deepEqual(issues.errors, []);
  assert.deepEqual(cfg.lbSubset, { fallback: 'NO_FALLBACK', defaultSubset: {}, selectors: [{ keys: ['version'] }, { keys: ['stage', 'version'] }], noCriteria: 'all' });
  assert.deepEqual(cfg.hosts[0].metadata, { version: 'v1', stage: 'prod' });
  assert.equal(cfg.hosts[3].metadata, undefined);
  const c = build(cfg);
  assert.ok(c.lb instanceof SubsetLoadBalancer);
  assert.equal((c.lb as SubsetLoadBalancer).subsetCount, 5); // v1, v2, v1/prod, v1/canary, v2/prod
  assert.deepEqual(picks(c, ctx({ version: 'v1' })), new Set([1, 2]));
  assert.deepEqual(picks(c, ctx({ version: 'v2' })), new Set([3]));
  assert.deepEqual(picks(c, ctx({ version: 'v1', stage: 'canary' })), new Set([2]));
  // Keys that are no selector's, or values no host has: NoFallBack = no host.
  assert.deepEqual(picks(c, ctx({ stage: 'prod' })), new Set([0]));
  assert.deepEqual(picks(c, ctx({ version: 'v3' })), new Set([0]));
  // MOSN: a request without criteria balances over every host.
  assert.deepEqual(picks(c, null), new Set([1, 2, 3, 4]));
  assert.deepEqual(picks(c, ctx(null)), new Set([1, 2, 3, 4]));
});

test('fallback policies: AnyEndPoint = every host, DefaultSubset = the hosts with every default_subset label', () => {
  const any = build(mosnClusterConfig({ fall_back_policy: 1, subset_selectors: SEL }).cfg);
  assert.deepEqual(picks(any, ctx({ version: 'v3' })), new Set([1, 2, 3, 4]));
  assert.deepEqual(picks(any, ctx({ version: 'v2' })), new Set([3]));
  const def = build(mosnClusterConfig({ fall_back_policy: 2, default_subset: { stage: 'prod' }, subset_selectors: SEL }).cfg);
  assert.deepEqual(picks(def, ctx({ version: 'v3' })), new Set([1, 3]));
  assert.deepEqual(picks(def, ctx({ stage: 'canary' })), new Set([1, 3]));
  assert.deepEqual(picks(def, ctx({ version: 'v1', stage: 'canary' })), new Set([2]));
  // A default subset no host carries: no host.
  const none = build(mosnClusterConfig({ fall_back_policy: 2, default_subset: { stage: 'gray' }, subset_selectors: SEL }).cfg);
  assert.deepEqual(picks(none, ctx({ version: 'v3' })), new Set([0]));
});

test('unhealthy hosts are skipped inside a subset, for every balancer type', () => {
  for (const lbType of ['LB_ROUNDROBIN', 'LB_RANDOM', 'LB_WEIGHTED_ROUNDROBIN', 'LB_LEAST_REQUEST']) {
    const c = build(mosnClusterConfig({ fall_back_policy: 1, subset_selectors: SEL }, { lb_type: lbType }).cfg);
    const h1 = c.hosts.find((h) => h.port === 1) as Host;
    h1.healthy = false;
    try {
      assert.deepEqual(picks(c, ctx({ version: 'v1' }), 60), new Set([2]), lbType);
    } finally {
      h1.healthy = true;
    }
  }
});

test('subsets are rebuilt when the hosts change (EDS, reload): new labels route at once', () => {
  const { cfg } = mosnClusterConfig({ fall_back_policy: 0, subset_selectors: SEL });
  const c = build(cfg);
  const relabel: HostConfig[] = cfg.hosts.map((h) => (h.address.port === 4 ? { ...h, metadata: { version: 'v2' } } : h.address.port === 3 ? { ...h, metadata: { version: 'v9' } } : h));
  c.updateHosts(relabel);
  assert.deepEqual(picks(c, ctx({ version: 'v2' })), new Set([4]));
  assert.deepEqual(picks(c, ctx({ version: 'v9' })), new Set([3]));
});

test('MOSN config errors and warnings name the path', () => {
  const err = (subset: unknown): string[] => mosnClusterConfig(subset as Record<string, unknown>).issues.errors.map((e) => `${e.path}: ${e.message}`);
  assert.match(err({ fall_back_policy: 3, subset_selectors: SEL }).join('\n'), /cluster_manager\.clusters\[0\]\.lb_subset_config\.fall_back_policy: 3 is out of range 0\.\.2/);
  assert.match(err({ subset_selectors: [['version'], 'stage'] }).join('\n'), /lb_subset_config\.subset_selectors\[1\]: "stage" must be a list of label keys/);
  assert.match(err({ subset_selectors: SEL, default_subset: { version: 1 } }).join('\n'), /lb_subset_config\.default_subset\.version: 1 must be a string/);
  assert.match(err({ subset_selectors: SEL, fallback: 1 }).join('\n'), /^$/); // unknown keys warn (below), they do not fail
  const { issues } = mosnClusterConfig({ subset_selectors: SEL, fallback: 1 });
  assert.match(issues.warnings.join('\n'), /lb_subset_config\.fallback/);
  const od = mosnClusterConfig({ subset_selectors: SEL }, { type: 'ORIGINAL_DST', hosts: [] });
  assert.match(od.issues.errors.map((e) => `${e.path}: ${e.message}`).join('\n'), /lb_subset_config: subset load balancing does not apply to ORIGINAL_DST/);
  // No selectors: off (as MOSN), said so.
  const off = mosnClusterConfig({ fall_back_policy: 1 });
  assert.equal(off.cfg.lbSubset, undefined);
  assert.match(off.issues.warnings.join('\n'), /lb_subset_config: no subset_selectors/);
  // Host labels of another kind are skipped with a warning.
  const odd = mosnClusterConfig({ subset_selectors: SEL }, { hosts: [{ address: '127.0.0.1:1', metadata: { filter_metadata: { 'mosn.lb': { version: 2 } } } }] });
  assert.match(odd.issues.warnings.join('\n'), /hosts\[0\]\.metadata\.filter_metadata\["mosn\.lb"\]\.version: 2: only string values/);
  // The whole config: no "ignored" warning any more.
  const doc = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'up' } }] }] }] }],
    cluster_manager: { clusters: [{ name: 'up', hosts: HOSTS, lb_subset_config: { subset_selectors: SEL } }] },
  });
  assert.ok(!(doc.warnings ?? []).some((w) => /lb_subset_config/.test(w)), (doc.warnings ?? []).join('\n'));
  assert.ok(doc.clusters[0].lbSubset);
});

const router = (action: Record<string, unknown>) => ({
  name: 'r',
  virtualHosts: [{ name: 'vh', domains: ['*'], routers: [{ match: { prefix: '/', headers: [{ name: 'service', value: '.*' }] }, route: action }] }],
});

test('routers: metadata_match of the route and of each weighted cluster, precomputed per route', () => {
  const mm = (labels: Record<string, string>) => ({ filter_metadata: { 'mosn.lb': labels } });
  const cfg = router({
    weighted_clusters: [
      { cluster: { name: 'a', weight: 1, metadata_match: mm({ version: 'v2' }) } },
      { cluster: { name: 'b', weight: 1 } },
    ],
    metadata_match: mm({ version: 'v1' }),
  });
  const http = compileHttpRouter(cfg).virtualHosts[0].routes[0];
  const rpc = compileRouter(cfg).virtualHosts[0].routes[0];
  for (const r of [http, rpc]) {
    const a = r.pickTarget(0.1);
    const b = r.pickTarget(0.9);
    assert.equal(a?.name, 'a');
    assert.deepEqual(a?.metadataMatch?.labels, { version: 'v2' });
    assert.equal(b?.name, 'b');
    assert.deepEqual(b?.metadataMatch?.labels, { version: 'v1' }); // the route's criteria
    assert.equal(r.pickTarget(0.1), a, 'the same object every time (no allocation per request)');
  }
  const single = compileHttpRouter(router({ cluster_name: 'a', metadata_match: mm({ stage: 'prod', version: 'v1' }) })).virtualHosts[0].routes[0].pickTarget();
  assert.equal(single?.metadataMatch?.key, new MetadataMatch({ version: 'v1', stage: 'prod' }).key, 'label order does not matter');
  assert.equal(compileHttpRouter(router({ cluster_name: 'a' })).virtualHosts[0].routes[0].pickTarget()?.metadataMatch, null);
});

test('routers: a bad metadata_match is refused with its JSON path', () => {
  const bad = (action: Record<string, unknown>) => () => validateRouterConfig(router(action));
  assert.throws(bad({ cluster_name: 'a', metadata_match: { filter_metadata: { 'mosn.lb': { version: 1 } } } }), /routers\[r\]\.virtual_hosts\[0\]\.routers\[0\]\.route\.metadata_match\.filter_metadata\["mosn\.lb"\]\.version: 1: only string values are supported/);
  assert.throws(bad({ cluster_name: 'a', metadata_match: { filter_metadata: { 'envoy.lb': { version: 'v1' } } } }), /route\.metadata_match\.filter_metadata\.envoy\.lb: only "mosn\.lb" is used/);
  assert.throws(bad({ cluster_name: 'a', metadata_match: 'v1' }), /route\.metadata_match: must be an object/);
  assert.throws(bad({ weighted_clusters: [{ cluster: { name: 'a', weight: 1, metadata_match: { filter_metadata: { 'mosn.lb': ['v1'] } } } }] }),
    /route\.weighted_clusters\[0\]\.cluster\.metadata_match\.filter_metadata\["mosn\.lb"\]: must be an object of string values/);
  assert.equal(compileMetadataMatch({ filter_metadata: { 'mosn.lb': {} } }, 'x'), null);
});

// ---- xDS

function xdsCluster(extra: Record<string, unknown>): ClusterConfig {
  return translator.cluster(fromJson(TYPE_URL.cluster, { name: 'c', type: 'EDS', ...extra }), recordingContext()).cluster;
}

function nack(fn: () => unknown, path: string, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof XdsResourceError, String(e));
    assert.equal(e.path, path);
    assert.match(e.reason, reason);
    return true;
  });
}

test('xDS: lb_subset_config, envoy.lb endpoint labels and route metadata_match; unimplemented fields NACK with their path', () => {
  const c = xdsCluster({
    lbSubsetConfig: {
      fallbackPolicy: 'DEFAULT_SUBSET', defaultSubset: { stage: 'prod' },
      subsetSelectors: [{ keys: ['version'] }, { keys: ['version', 'stage'], fallbackPolicy: 'NO_FALLBACK' }],
    },
  });
  assert.deepEqual(c.lbSubset, {
    fallback: 'DEFAULT_SUBSET', defaultSubset: { stage: 'prod' }, noCriteria: 'fallback',
    selectors: [{ keys: ['version'] }, { keys: ['stage', 'version'], fallback: 'NO_FALLBACK' }],
  });
  const ep = (port: number, labels: Record<string, string>) => ({ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } }, metadata: { filterMetadata: { 'envoy.lb': labels } } });
  const eds = translator.endpoints(fromJson(TYPE_URL.endpoints, { clusterName: 'c', endpoints: [{ lbEndpoints: [ep(1, { version: 'v1', stage: 'prod' }), ep(2, { version: 'v1', stage: 'canary' }), ep(3, { version: 'v2', stage: 'prod' })] }] }), recordingContext());
  assert.deepEqual(eds.hosts.map((h) => h.metadata), [{ version: 'v1', stage: 'prod' }, { version: 'v1', stage: 'canary' }, { version: 'v2', stage: 'prod' }]);
  const cl = build({ ...c, name: 'up', hosts: eds.hosts });
  assert.deepEqual(picks(cl, ctx({ version: 'v1' })), new Set([1, 2]));
  assert.deepEqual(picks(cl, ctx({ version: 'v3' })), new Set([1, 3]), 'the default subset');
  assert.deepEqual(picks(cl, ctx({ version: 'v3', stage: 'prod' })), new Set([0]), "the selector's own NO_FALLBACK");
  assert.deepEqual(picks(cl, null), new Set([1, 3]), 'Envoy: no criteria takes the fallback');

  nack(() => xdsCluster({ lbSubsetConfig: { subsetSelectors: [{ keys: ['v'] }], listAsAny: true } }), 'lbSubsetConfig.listAsAny', /list values/);
  nack(() => xdsCluster({ lbSubsetConfig: { subsetSelectors: [{ keys: ['v'] }], panicModeAny: true } }), 'lbSubsetConfig.panicModeAny', /not supported/);
  nack(() => xdsCluster({ lbSubsetConfig: { subsetSelectors: [{ keys: ['v'] }], localityWeightAware: true } }), 'lbSubsetConfig.localityWeightAware', /locality/);
  nack(() => xdsCluster({ lbSubsetConfig: { subsetSelectors: [{ keys: ['v'] }], scaleLocalityWeight: true } }), 'lbSubsetConfig.scaleLocalityWeight', /locality/);
  nack(() => xdsCluster({ lbSubsetConfig: { subsetSelectors: [{ keys: ['v'], fallbackPolicy: 'KEYS_SUBSET', fallbackKeysSubset: ['v'] }] } }), 'lbSubsetConfig.subsetSelectors[0].fallbackKeysSubset', /KEYS_SUBSET/);
  nack(() => xdsCluster({ lbSubsetConfig: { subsetSelectors: [{ keys: ['v'], singleHostPerSubset: true }] } }), 'lbSubsetConfig.subsetSelectors[0].singleHostPerSubset', /not supported/);
  nack(() => xdsCluster({ lbSubsetConfig: { subsetSelectors: [{ keys: ['v'] }], defaultSubset: { v: 1 } } }), 'lbSubsetConfig.defaultSubset.v', /only string/);

  const rc = (route: Record<string, unknown>) => fromJson(TYPE_URL.route, { name: 'r1', virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route }] }] });
  const envoyLb = (labels: Record<string, unknown>) => ({ filterMetadata: { 'envoy.lb': labels } });
  const t = translator.route(rc({
    weightedClusters: { clusters: [{ name: 'a', weight: 1, metadataMatch: envoyLb({ stage: 'canary' }) }, { name: 'b', weight: 1 }] },
    metadataMatch: envoyLb({ version: 'v1', stage: 'prod' }),
  }), recordingContext());
  const r = compileHttpRouter(t.router).virtualHosts[0].routes[0];
  assert.deepEqual(r.pickTarget(0.1)?.metadataMatch?.labels, { version: 'v1', stage: 'canary' }, "Envoy merges the cluster's criteria over the route's");
  assert.deepEqual(r.pickTarget(0.9)?.metadataMatch?.labels, { version: 'v1', stage: 'prod' });
  nack(() => translator.route(rc({ cluster: 'x', metadataMatch: { filterMetadata: { 'istio': { a: 'b' } } } }), recordingContext()), 'virtualHosts[0].routes[0].route.metadataMatch.filterMetadata.istio', /only "envoy\.lb"/);
  nack(() => translator.route(rc({ cluster: 'x', metadataMatch: envoyLb({ v: true }) }), recordingContext()), 'virtualHosts[0].routes[0].route.metadataMatch.filterMetadata.envoy.lb.v', /only string/);
});

test('xDS: TcpProxy metadata_match (and its one weighted cluster\'s, merged over it) becomes the tcp_proxy criteria', () => {
  const TCP = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
  const listener = (tcp: Record<string, unknown>) => translator.listener(fromJson(TYPE_URL.listener, {
    name: 'l1', address: { socketAddress: { address: '127.0.0.1', portValue: 9000 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TCP, statPrefix: 's', ...tcp } }] }],
  }), recordingContext());
  const criteria = (tcp: Record<string, unknown>): unknown => {
    const f = listener(tcp).listener.filterChains[0].filters[0];
    return (f.config as { metadataMatch?: unknown }).metadataMatch;
  };
  const envoyLb = (labels: Record<string, unknown>) => ({ filterMetadata: { 'envoy.lb': labels } });
  assert.deepEqual(criteria({ cluster: 'c', metadataMatch: envoyLb({ version: 'v2' }) }), { version: 'v2' });
  assert.deepEqual(criteria({ weightedClusters: { clusters: [{ name: 'c', weight: 1, metadataMatch: envoyLb({ stage: 'canary' }) }, { name: 'd', weight: 0 }] }, metadataMatch: envoyLb({ version: 'v2', stage: 'prod' }) }),
    { version: 'v2', stage: 'canary' });
  assert.equal(criteria({ cluster: 'c' }), undefined);
  nack(() => listener({ cluster: 'c', metadataMatch: envoyLb({ version: 2 }) }), 'filterChains[0].filters[0].typedConfig.metadataMatch.filterMetadata.envoy.lb.version', /only string/);
});
