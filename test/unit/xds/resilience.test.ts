/**
 * xDS translation of the resilience fields of a Cluster (health_checks, outlier_detection,
 * healthy_panic_threshold, slow_start_config, retry_budget) — the same ClusterConfig as the MOSN
 * JSON path for the same content — and of Istio-shaped RBAC / local_ratelimit filters.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import '../../../src/extensions';
import { IssueCollector, ConfigObject } from '../../../src/config/reader';
import { parseClusterManager } from '../../../src/config/clusters';
import type { ClusterConfig } from '../../../src/config/types';
import { TYPE_URL, XdsResourceError } from '../../../src/xds/types';
import { fromJson } from '../../../src/xds/proto';
import { translator } from '../../../src/xds/translate';
import { loadFixtures, recordingContext } from './fixtures';

function cluster(extra: Record<string, unknown>): { cluster: ClusterConfig; warnings: string[] } {
  const ctx = recordingContext();
  const t = translator.cluster(fromJson(TYPE_URL.cluster, { name: 'c', type: 'EDS', ...extra }), ctx);
  return { cluster: t.cluster, warnings: ctx.warnings };
}

/** The MOSN JSON path: one cluster through parseClusterManager. */
function mosnCluster(c: Record<string, unknown>): ClusterConfig {
  const issues = new IssueCollector();
  const out = parseClusterManager({ issues, clusterNames: new Map() }, new ConfigObject(issues, 'cluster_manager', { clusters: [{ name: 'c', hosts: [{ address: '127.0.0.1:1' }], ...c }] }))[0];
  assert.deepEqual(issues.errors, []);
  return out;
}

test('http_health_check, outlier_detection, retry_budget, slow start: the values the MOSN JSON path gives', () => {
  const { cluster: c, warnings } = cluster({
    lbPolicy: 'ROUND_ROBIN',
    healthChecks: [{
      timeout: '2s', interval: '0.5s', intervalJitter: '0.1s', unhealthyThreshold: 3, healthyThreshold: 2,
      httpHealthCheck: { host: 'reviews.internal', path: '/healthz', method: 'HEAD', expectedStatuses: [{ start: 200, end: 300 }, { start: 404, end: 405 }] },
    }],
    outlierDetection: { consecutive_5xx: 3, consecutiveGatewayFailure: 2, enforcingConsecutiveGatewayFailure: 100, interval: '1s', baseEjectionTime: '15s', maxEjectionPercent: 50, enforcingConsecutive_5xx: 0, splitExternalLocalOriginErrors: true },
    roundRobinLbConfig: { slowStartConfig: { slowStartWindow: '30s', aggression: { defaultValue: 2, runtimeKey: 'ss' }, minWeightPercent: { value: 20 } } },
    circuitBreakers: { thresholds: [{ maxRetries: 7, retryBudget: { budgetPercent: { value: 25 }, minRetryConcurrency: 4 } }] },
  });
  const want = mosnCluster({
    lb_type: 'LB_WEIGHTED_ROUNDROBIN',
    health_check: {
      protocol: 'Http1', timeout: '2s', interval: '500ms', interval_jitter: '100ms', healthy_threshold: 2, unhealthy_threshold: 3,
      check_config: { http_check_config: { path: '/healthz', domain: 'reviews.internal', method: 'HEAD', timeout: '2s', codes: [{ start: 200, end: 299 }, { start: 404, end: 404 }] } },
    },
    outlier_detection: { consecutive_5xx: 3, consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100, interval: '1s', base_ejection_time: '15s', max_ejection_percent: 50, enforcing_consecutive_5xx: 0, split_external_local_origin_errors: true },
    slow_start: { mode: 'duration', slow_start_duration: '30s', aggression: 2, min_weight_percent: 0.2 },
    circuit_breakers: [{ max_retries: 7, retry_budget: { budget_percent: { value: 25 }, min_retry_concurrency: 4 } }],
  });
  // Envoy's semantics over xDS: hosts start unhealthy until their first check, run at once.
  assert.deepEqual(c.healthCheck, { ...want.healthCheck, startUnhealthy: true, initialDelayMs: 0 });
  assert.equal(c.healthCheck?.kind, 'http');
  assert.deepEqual(c.healthCheck?.http?.codes, [{ start: 200, end: 299 }, { start: 404, end: 404 }]); // [start, end) -> inclusive
  assert.deepEqual(c.outlierDetection, want.outlierDetection);
  assert.equal(c.outlierDetection?.enforcingConsecutive5xx, 0); // an explicit 0 wrapper is 0, not the default 100
  assert.deepEqual(c.slowStart, { windowMs: 30_000, aggression: 2, minWeightPercent: 0.2 });
  assert.deepEqual(c.slowStart, want.slowStart);
  assert.deepEqual(c.circuitBreakers, want.circuitBreakers);
  assert.deepEqual(c.circuitBreakers.retryBudget, { budgetPercent: 25, minRetryConcurrency: 4 });
  assert.ok(!warnings.some((w) => /slowStartConfig: slow start applies/.test(w)), `EDS-added endpoints ramp too: no warning\n${warnings.join('\n')}`);
  assert.ok(!warnings.some((w) => /healthChecks|outlierDetection|retryBudget/.test(w)), warnings.join('\n'));
});

test('tcp_health_check is a connect check; payloads are warned about; healthy_panic_threshold becomes panicThreshold', () => {
  const { cluster: c, warnings } = cluster({
    healthChecks: [{ timeout: '1s', interval: '5s', unhealthyThreshold: 2, healthyThreshold: 1, tcpHealthCheck: { send: { text: '50494e47' }, receive: [{ text: '504f4e47' }] } }],
    commonLbConfig: { healthyPanicThreshold: { value: 30 } },
  });
  const want = mosnCluster({ health_check: { protocol: 'tcp', timeout: '1s', interval: '5s', healthy_threshold: 1, unhealthy_threshold: 2 } });
  assert.deepEqual(c.healthCheck, { ...want.healthCheck, startUnhealthy: true, initialDelayMs: 0 });
  assert.equal(c.healthCheck?.kind, 'tcp');
  assert.equal(c.panicThreshold, 30);
  assert.ok(warnings.some((w) => /tcpHealthCheck\.send: TCP checks only connect/.test(w)), warnings.join('\n'));
  // Istio's outlier-detection clusters carry an empty Percent: 0 = never panic.
  assert.equal(cluster({ commonLbConfig: { healthyPanicThreshold: {} } }).cluster.panicThreshold, 0);
  assert.equal(cluster({}).cluster.panicThreshold, undefined);
  assert.throws(() => cluster({ commonLbConfig: { healthyPanicThreshold: { value: 150 } } }), (e: unknown) => e instanceof XdsResourceError && /commonLbConfig\.healthyPanicThreshold: 150 is not a percentage/.test(e.message));
});

test('grpc_health_check maps (service_name, authority); custom health checks are skipped with a named warning (no check is safe); a check without timeout NACKs', () => {
  const g = cluster({ healthChecks: [{ timeout: '1s', interval: '2s', unhealthyThreshold: 2, healthyThreshold: 1, grpcHealthCheck: { serviceName: 'pkg.Svc', authority: 'svc.internal', initialMetadata: [{ header: { key: 'k', value: 'v' } }] } }] });
  assert.equal(g.cluster.healthCheck?.kind, 'grpc');
  assert.deepEqual(g.cluster.healthCheck?.grpc, { serviceName: 'pkg.Svc', authority: 'svc.internal' });
  assert.equal(g.cluster.healthCheck?.intervalMs, 2000);
  assert.ok(g.warnings.some((w) => /grpcHealthCheck\.initialMetadata: extra check metadata is not supported/.test(w)), g.warnings.join('\n'));
  for (const checker of [{ customHealthCheck: { name: 'x' } }]) {
    const { cluster: c, warnings } = cluster({ healthChecks: [{ timeout: '1s', interval: '1s', unhealthyThreshold: 1, healthyThreshold: 1, ...checker }] });
    assert.equal(c.healthCheck, undefined);
    assert.ok(warnings.some((w) => /custom health checkers are not supported: the cluster is not health checked/.test(w)), warnings.join('\n'));
  }
  assert.throws(() => cluster({ healthChecks: [{ interval: '1s', unhealthyThreshold: 1, healthyThreshold: 1, tcpHealthCheck: {} }] }),
    (e: unknown) => e instanceof XdsResourceError && /^c: healthChecks\[0\]\.timeout: is required/.test(e.message));
  assert.throws(() => cluster({ healthChecks: [{ timeout: '1s', interval: '1s', unhealthyThreshold: 1, healthyThreshold: 1, httpHealthCheck: { path: '/', expectedStatuses: [{ start: 300, end: 200 }] } }] }),
    (e: unknown) => e instanceof XdsResourceError && /expectedStatuses\[0\]: \[300, 200\) is not a range/.test(e.message));
  assert.throws(() => cluster({ healthChecks: [{ timeout: '1s', interval: '1s', unhealthyThreshold: 1, healthyThreshold: 1, httpHealthCheck: { path: '/', method: 'CONNECT' } }] }),
    (e: unknown) => e instanceof XdsResourceError && /httpHealthCheck\.method: CONNECT/.test(e.message));
});

test('outlier_detection: success-rate and failure-percentage fields map, fields the model lacks are warned about; slow start on LEAST_REQUEST is warned, its tuning knobs NACK', () => {
  const { cluster: c, warnings } = cluster({
    outlierDetection: {
      successRateMinimumHosts: 3, successRateRequestVolume: 20, successRateStdevFactor: 1500, enforcingSuccessRate: 0,
      failurePercentageThreshold: 60, enforcingFailurePercentage: 100, failurePercentageMinimumHosts: 2, failurePercentageRequestVolume: 10,
      alwaysEjectOneHost: true,
    },
  });
  assert.equal(c.outlierDetection?.consecutive5xx, 5); // Envoy's defaults
  assert.deepEqual(c.outlierDetection?.successRate, { minimumHosts: 3, requestVolume: 20, stdevFactor: 1.5, enforcing: 0, enforcingLocalOrigin: 100 });
  assert.deepEqual(c.outlierDetection?.failurePercentage, { threshold: 60, minimumHosts: 2, requestVolume: 10, enforcing: 100, enforcingLocalOrigin: 0 });
  assert.equal(c.outlierDetection?.countRates, true);
  assert.ok(!warnings.some((w) => /success|failure_percentage|failurePercentage/.test(w)), warnings.join('\n'));
  assert.ok(warnings.some((w) => /alwaysEjectOneHost: not supported/.test(w)), warnings.join('\n'));
  const lr = cluster({ lbPolicy: 'LEAST_REQUEST', leastRequestLbConfig: { slowStartConfig: { slowStartWindow: '10s' } } });
  assert.equal(lr.cluster.slowStart, undefined);
  assert.ok(lr.warnings.some((w) => /leastRequestLbConfig\.slowStartConfig: slow start is applied by the weighted round-robin balancer/.test(w)), lr.warnings.join('\n'));
  assert.throws(() => cluster({ lbPolicy: 'LEAST_REQUEST', leastRequestLbConfig: { choiceCount: 3 } }), (e: unknown) => e instanceof XdsResourceError && /leastRequestLbConfig\.choiceCount/.test(e.message));
});

const SPIFFE = 'spiffe://cluster.local/ns/foo/sa/sleep';
/** Istio's AuthorizationPolicy ALLOW rule as RBAC: every rule is and/or-wrapped. */
function istioPolicy(permission: Record<string, unknown>): Record<string, unknown> {
  return {
    permissions: [{ andRules: { rules: [{ orRules: { rules: [permission] } }] } }],
    principals: [{ andIds: { ids: [{ orIds: { ids: [{ authenticated: { principalName: { exact: SPIFFE } } }] } }] } }],
  };
}

test('Istio RBAC: network envoy.filters.network.rbac -> the rbac network filter, before tcp_proxy', () => {
  const ctx = recordingContext();
  const l = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'virtualInbound', address: { socketAddress: { address: '0.0.0.0', portValue: 15006 } },
    filterChains: [{ filters: [
      { name: 'envoy.filters.network.rbac', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC', statPrefix: 'tcp.', rules: { action: 'ALLOW', policies: { 'ns[foo]-policy[db]-rule[0]': istioPolicy({ destinationPort: 3306 }) } } } },
      { name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: 's', cluster: 'inbound|3306||' } },
    ] }],
  }), ctx);
  const fs = l.listener.filterChains[0].filters;
  assert.deepEqual(fs.map((f) => f.type), ['rbac', 'tcp_proxy']);
  const s = JSON.stringify(fs[0].config);
  assert.match(s, /"action":"ALLOW"/);
  assert.match(s, /"name":"ns\[foo\]-policy\[db\]-rule\[0\]"/);
  assert.match(s, /"t":"port","start":3306,"end":3307/);
  assert.match(s, new RegExp(`"t":"auth","m":\\{"kind":"exact","value":"${SPIFFE}"`));
  assert.deepEqual(ctx.warnings, []);
});

test('Istio RBAC and local_ratelimit HTTP filters -> the rbac and local_ratelimit stream filters', () => {
  const ctx = recordingContext();
  const l = translator.listener(fromJson(TYPE_URL.listener, {
    name: '0.0.0.0_8080', address: { socketAddress: { address: '0.0.0.0', portValue: 8080 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      statPrefix: 'inbound_0.0.0.0_8080', rds: { routeConfigName: '8080', configSource: { ads: {} } },
      httpFilters: [
        { name: 'envoy.filters.http.rbac', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC', rules: { action: 'ALLOW', policies: { 'ns[foo]-policy[httpbin]-rule[0]': istioPolicy({ urlPath: { path: { prefix: '/api' } } }) } } } },
        { name: 'envoy.filters.http.local_ratelimit', typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit', statPrefix: 'http_local_rate_limiter',
          tokenBucket: { maxTokens: 10, tokensPerFill: 5, fillInterval: '2s' },
          filterEnabled: { defaultValue: { numerator: 100, denominator: 'HUNDRED' } }, filterEnforced: { defaultValue: { numerator: 100, denominator: 'HUNDRED' } },
          responseHeadersToAdd: [{ header: { key: 'x-local-rate-limit', value: 'true' } }],
        } },
        { name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
      ],
    } }] }],
  }), ctx);
  const sf = l.listener.streamFilters;
  assert.deepEqual(sf.map((f) => f.type), ['rbac', 'local_ratelimit']);
  const rbac = JSON.stringify(sf[0].config);
  assert.match(rbac, /"t":"path","m":\{"kind":"prefix","value":"\/api"/);
  assert.match(rbac, new RegExp(`"t":"auth","m":\\{"kind":"exact","value":"${SPIFFE}"`));
  const rl = JSON.stringify(sf[1].config);
  assert.match(rl, /"maxTokens":10,"tokensPerFill":5,"fillIntervalMs":2000/);
  assert.match(rl, /"status":429/);
  assert.match(rl, /\["x-local-rate-limit","true"\]/);
  assert.deepEqual(ctx.warnings, []);
});

test('Istio DestinationRule fixture (productpage): outlier detection, no panic, warmup, retry budget; no warning about success-rate ejection Istio turns off', () => {
  const fx = loadFixtures({ cert: '', key: '', ca: '' });
  const m = fx.clusters.find((c) => c.name === 'outbound|9080||productpage.default.svc.cluster.local');
  assert.ok(m);
  const ctx = recordingContext();
  const c = translator.cluster(m, ctx).cluster;
  assert.deepEqual(c.outlierDetection, mosnCluster({
    outlier_detection: { consecutive_5xx: 7, interval: '30s', base_ejection_time: '30s', max_ejection_percent: 100, enforcing_consecutive_5xx: 100, consecutive_gateway_failure: 0, enforcing_consecutive_gateway_failure: 0, enforcing_success_rate: 0 },
  }).outlierDetection);
  assert.equal(c.outlierDetection?.consecutiveGatewayFailure, 0);
  assert.equal(c.outlierDetection?.successRate.enforcing, 0, 'Istio turns success-rate ejection off');
  assert.equal(c.outlierDetection?.countRates, false);
  assert.equal(c.panicThreshold, 0);
  assert.deepEqual(c.slowStart, { windowMs: 60_000, aggression: 1, minWeightPercent: 0.1 });
  assert.deepEqual(c.circuitBreakers.retryBudget, { budgetPercent: 20, minRetryConcurrency: 5 });
  assert.ok(!ctx.warnings.some((w) => /success/.test(w)), ctx.warnings.join('\n'));
});
