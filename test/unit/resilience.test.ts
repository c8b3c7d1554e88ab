/**
 * Upstream resilience without sockets: the panic threshold of every balancer, slow start's
 * weight ramp, outlier detection's consecutive-failure ejection (shared entries, max ejection
 * percent, growing ejection time), and the parsing of health_check / outlier_detection /
 * slow_start with their errors.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config';
import type { LbType, SlowStartConfig } from '../../src/config/types';
import { ClusterManager, type Cluster } from '../../src/upstream/cluster';
import { F, H, T } from '../../src/upstream/health/shared';
import { C } from '../../src/stats/layout';
import { createLoadBalancer, Host } from '../../src/upstream/lb';
import { LOCAL_FAILURE, outlierResult } from '../../src/upstream/outlier';
import { slowStartFactor } from '../../src/upstream/slow-start';
import { HealthService } from '../../src/upstream/health/service';
import { validateFaultTolerance } from '../../src/filters/stream/fault_tolerance/config';
import { responseCode } from '../../src/filters/stream/fault_tolerance/fault-tolerance';

let seq = 0;
/** Hosts of a cluster of their own (fresh shared entries). */
function hosts(weights: number[]): Host[] {
  const name = `lbtest-${seq++}`;
  return weights.map((w, i) => new Host({ address: { host: '127.0.0.1', port: 2000 + i }, weight: w }, name));
}

function counts(type: LbType, hs: Host[], n: number, opts = {}): number[] {
  const lb = createLoadBalancer(type, hs, opts);
  const c = hs.map(() => 0);
  for (let i = 0; i < n; i++) {
    const h = lb.choose();
    assert.ok(h);
    c[hs.indexOf(h)]++;
  }
  return c;
}

for (const type of ['LB_ROUNDROBIN', 'LB_RANDOM', 'LB_WEIGHTED_ROUNDROBIN', 'LB_LEAST_REQUEST'] as const) {
  test(`${type}: below the panic threshold (default 50%) every host takes traffic; at or above it only healthy ones`, () => {
    const hs = hosts([1, 1, 1, 1]);
    hs[0].healthy = false;
    hs[1].healthy = false; // 2 of 4 healthy = 50%: not below
    let c = counts(type, hs, 2000);
    assert.equal(c[0] + c[1], 0, `counts ${c}`);
    hs[2].healthy = false; // 1 of 4 = 25% < 50%: panic, all hosts
    c = counts(type, hs, 2000);
    assert.ok(c.every((x) => x > 100), `panic spreads over all hosts: ${c}`);
    // A lower threshold: 25% is not below 20%, the healthy host takes everything.
    c = counts(type, hs, 2000, { panicThreshold: 20 });
    assert.deepEqual(c, [0, 0, 0, 2000]);
    // Threshold 0 (Envoy: panic disabled): no healthy host = no host.
    hs[3].healthy = false;
    assert.equal(createLoadBalancer(type, hs, { panicThreshold: 0 }).choose(), null);
    hs[3].healthy = true;
    assert.equal(createLoadBalancer(type, hs, { panicThreshold: 0 }).choose(), hs[3]);
  });
}

test('Host health lives in the shared table: two Host objects of one (cluster, address) see the same state', () => {
  const a = new Host({ address: { host: '127.0.0.1', port: 3000 }, weight: 1 }, 'shared-a');
  const b = new Host({ address: { host: '127.0.0.1', port: 3000 }, weight: 1 }, 'shared-a');
  const other = new Host({ address: { host: '127.0.0.1', port: 3000 }, weight: 1 }, 'shared-b');
  assert.ok(a.healthy && b.healthy);
  a.healthy = false;
  assert.equal(b.healthy, false);
  assert.equal(other.healthy, true, 'another cluster with the same address is its own entry');
  assert.equal(b.cells[b.clusterOff + H.DEGRADED], 1);
  b.healthy = true;
  assert.equal(a.healthy, true);
  assert.equal(a.cells[a.clusterOff + H.DEGRADED], 0);
});

test('slow start: MOSN duration mode factor and a weighted round robin share that grows over the window', () => {
  const ss: SlowStartConfig = { windowMs: 10_000, aggression: 1, minWeightPercent: 0.1 };
  const now = 1_000_000;
  assert.equal(slowStartFactor(ss, 0, now), 1, 'never brought back by a check: full weight');
  assert.equal(slowStartFactor(ss, now - 10_000, now), 1, 'window over');
  assert.equal(slowStartFactor(ss, now - 5_000, now), 0.5);
  assert.equal(slowStartFactor(ss, now - 200, now), 0.1, 'max(1s, elapsed) / window, floored at min_weight_percent');
  assert.equal(slowStartFactor({ ...ss, aggression: 2 }, now - 2_500, now), 0.5, '(0.25)^(1/2)');
  assert.equal(slowStartFactor({ ...ss, minWeightPercent: 0.3 }, now - 2_000, now), 0.3);

  const hs = hosts([1, 1]);
  const share = (elapsedMs: number): number => {
    hs[1].times[hs[1].toff + T.HEALTHY_SINCE] = Date.now() - elapsedMs;
    const c = counts('LB_WEIGHTED_ROUNDROBIN', hs, 1100, { slowStart: ss });
    return c[1] / 1100;
  };
  const early = share(1000); // factor 0.1: 0.1 / 1.1
  const mid = share(5000); // 0.5 / 1.5
  const done = share(20_000); // 1 / 2
  assert.ok(Math.abs(early - 0.1 / 1.1) < 0.02, `early ${early}`);
  assert.ok(Math.abs(mid - 1 / 3) < 0.02, `mid ${mid}`);
  assert.ok(Math.abs(done - 0.5) < 0.02, `done ${done}`);
  // Without slow start configured the weight is whole at once.
  hs[1].times[hs[1].toff + T.HEALTHY_SINCE] = Date.now() - 1000;
  assert.deepEqual(counts('LB_WEIGHTED_ROUNDROBIN', hs, 1000), [500, 500]);
});

test('slow start also ramps hosts that an update adds to a non-empty cluster (MOSN); a cluster\'s first hosts start whole', () => {
  const name = `ss-${seq++}`;
  const hostsOf = (ports: number[]): { address: string }[] => ports.map((p) => ({ address: `127.0.0.1:${p}` }));
  const cfg = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: name } }] }] }] }],
    cluster_manager: {
      clusters: [{ name, type: 'SIMPLE', lb_type: 'LB_WEIGHTED_ROUNDROBIN', hosts: hostsOf([5100, 5101]), slow_start: { mode: 'duration', slow_start_duration: '10s', min_weight_percent: 0.1 } }],
    },
  });
  const cl = new ClusterManager(cfg.clusters, new Float64Array(4096), { [name]: 100 }).get(name)!;
  assert.deepEqual(cl.hosts.map((h) => h.healthySince), [0, 0], 'first hosts: no ramp');
  const t0 = Date.now();
  cl.updateHosts([...cl.config.hosts, { ...cl.config.hosts[0], address: { host: '127.0.0.1', port: 5102 } }]);
  const [a, b, added] = cl.hosts;
  assert.equal(a.healthySince, 0, 'a kept host keeps its state');
  assert.equal(b.healthySince, 0);
  assert.ok(added.healthySince >= t0 && added.healthySince <= Date.now(), `added host ramps from now: ${added.healthySince}`);
  // Its share starts at min_weight_percent: about 0.1 / 2.1 of the picks.
  const c = [0, 0, 0];
  for (let i = 0; i < 2100; i++) c[cl.hosts.indexOf(cl.lb.choose()!)]++;
  assert.ok(c[2] < 200 && c[2] > 0, `new host's picks ${c}`);
  // Without slow start an added host is whole at once.
  const plain = outlierCluster(1, {});
  plain.updateHosts([...plain.config.hosts, { ...plain.config.hosts[0], address: { host: '127.0.0.1', port: 5109 } }]);
  assert.equal(plain.hosts[1].healthySince, 0);
  // slow_start with a balancer that does not weigh hosts: a warning naming the path.
  const warned = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'rr' } }] }] }] }],
    cluster_manager: { clusters: [{ name: 'rr', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: hostsOf([5100]), slow_start: { mode: 'duration', slow_start_duration: '10s' } }] },
  });
  assert.ok((warned.warnings ?? []).some((w) => w.includes('slow_start') && w.includes('LB_ROUNDROBIN')), JSON.stringify(warned.warnings));
});

function outlierCluster(n: number, od: Record<string, unknown>): Cluster {
  const name = `od-${seq++}`;
  const cfg = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: name } }] }] }] }],
    cluster_manager: { clusters: [{ name, type: 'SIMPLE', hosts: Array.from({ length: n }, (_, i) => ({ address: `127.0.0.1:${4000 + i}` })), outlier_detection: od }] },
  });
  return new ClusterManager(cfg.clusters, new Float64Array(4096), { [name]: 100 }).get(name)!;
}

test('outlier detection: consecutive 5xx eject (a success in between starts the count again), for every Host object of the address', () => {
  const cl = outlierCluster(3, { consecutive_5xx: 3, base_ejection_time: '10s', max_ejection_percent: 50 });
  const h = cl.hosts[0];
  const twin = new Host({ address: { host: '127.0.0.1', port: 4000 }, weight: 1 }, cl.name); // another worker's view
  outlierResult(cl, h, 500);
  outlierResult(cl, h, 503);
  outlierResult(cl, h, 200);
  outlierResult(cl, h, 500);
  outlierResult(cl, twin, 500); // counts add up across Host objects (workers)
  assert.equal(h.healthy, true);
  const before = Date.now();
  outlierResult(cl, h, 502);
  assert.equal(h.healthy, false);
  assert.equal(twin.healthy, false);
  assert.ok((h.cells[h.off + H.STATE] & F.EJECTED) !== 0);
  const until = h.times[h.toff + T.EJECTED_UNTIL];
  assert.ok(until >= before + 10_000 && until <= Date.now() + 10_000, `ejected until ${until - before} ms`);
  assert.equal(h.cells[h.off + H.EJECTIONS_TOTAL], 1);
  // max_ejection_percent 50 of 3 hosts: a second host may not go (2/3 > 50%).
  for (let i = 0; i < 5; i++) outlierResult(cl, cl.hosts[1], 500);
  assert.equal(cl.hosts[1].healthy, true);
  // The balancer skips the ejected host.
  for (let i = 0; i < 30; i++) assert.notEqual(cl.lb.choose(), h);
});

test('outlier detection: gateway failures and local-origin failures, split or not; ejection time grows per ejection up to the max', () => {
  const gw = outlierCluster(2, { consecutive_5xx: 0, consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100, max_ejection_percent: 100 });
  outlierResult(gw, gw.hosts[0], 500); // not a gateway error
  outlierResult(gw, gw.hosts[0], LOCAL_FAILURE); // a connect failure counts as one (not split)
  assert.equal(gw.hosts[0].healthy, true);
  outlierResult(gw, gw.hosts[0], 504);
  assert.equal(gw.hosts[0].healthy, false);

  const split = outlierCluster(2, { split_external_local_origin_errors: true, consecutive_local_origin_failure: 2, consecutive_5xx: 3, base_ejection_time: '1s', max_ejection_time: '2500ms', max_ejection_percent: 100 });
  const h = split.hosts[0];
  outlierResult(split, h, LOCAL_FAILURE);
  outlierResult(split, h, 500); // an answer: local-origin success, and one 5xx
  outlierResult(split, h, LOCAL_FAILURE);
  assert.equal(h.healthy, true);
  const t0 = Date.now();
  outlierResult(split, h, LOCAL_FAILURE);
  const t1 = Date.now(); // the clock may turn a millisecond during the call
  assert.equal(h.healthy, false);
  assert.equal(h.cells[h.off + H.EJECT_REASON], 3);
  const until = h.times[h.toff + T.EJECTED_UNTIL];
  assert.ok(until >= t0 + 1000 && until <= t1 + 1000, `first ${until - t0} (call took ${t1 - t0} ms)`);
  // Back in (as the main thread's sweep does), then ejected again: 2 × base; a third time: capped at the max.
  h.cells[h.off + H.STATE] = 0;
  outlierResult(split, h, LOCAL_FAILURE);
  outlierResult(split, h, LOCAL_FAILURE);
  const second = h.times[h.toff + T.EJECTED_UNTIL] - Date.now();
  h.cells[h.off + H.STATE] = 0;
  outlierResult(split, h, LOCAL_FAILURE);
  outlierResult(split, h, LOCAL_FAILURE);
  const third = h.times[h.toff + T.EJECTED_UNTIL] - Date.now();
  assert.ok(second > 1900 && second <= 2000, `second ${second}`);
  assert.ok(third > 2400 && third <= 2500, `third ${third}`);
});

function clusterDoc(extra: Record<string, unknown>): unknown {
  return {
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'c' } }] }] }] }],
    cluster_manager: { clusters: [{ name: 'c', type: 'SIMPLE', hosts: [{ address: '127.0.0.1:1' }], ...extra }] },
  };
}

test('config: health_check (MOSN keys), outlier_detection (Envoy keys), slow_start parsed; bad values name their path', () => {
  const cfg = parseConfig(
    clusterDoc({
      health_check: {
        protocol: 'Http1',
        timeout: '2s',
        interval: '3s',
        interval_jitter: '100ms',
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        service_name: 'c',
        check_config: { http_check_config: { path: '/health?x=1', timeout: '1s', codes: [{ start: 200, end: 299 }], domain: 'svc' } },
      },
      outlier_detection: { consecutive_5xx: 7, interval: '5s', base_ejection_time: '20s', max_ejection_percent: { value: 30 }, split_external_local_origin_errors: true },
      slow_start: { mode: 'duration', slow_start_duration: '30s', aggression: 2, min_weight_percent: 0.2 },
    }),
  );
  const c = cfg.clusters[0]!;
  assert.deepEqual(c.healthCheck, {
    kind: 'http',
    protocol: 'Http1',
    timeoutMs: 2000,
    intervalMs: 3000,
    intervalJitterMs: 100,
    initialDelayMs: 1000,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    http: { path: '/health?x=1', port: 0, method: 'GET', timeoutMs: 1000, codes: [{ start: 200, end: 299 }], domain: 'svc' },
  });
  assert.equal(c.outlierDetection!.consecutive5xx, 7);
  assert.equal(c.outlierDetection!.maxEjectionPercent, 30);
  assert.equal(c.outlierDetection!.baseEjectionTimeMs, 20_000);
  assert.equal(c.outlierDetection!.maxEjectionTimeMs, 300_000);
  assert.equal(c.outlierDetection!.splitExternalLocalOriginErrors, true);
  assert.deepEqual(c.slowStart, { windowMs: 30_000, aggression: 2, minWeightPercent: 0.2 });
  assert.equal(parseConfig(clusterDoc({ health_check: { protocol: 'bolt' } })).clusters[0]!.healthCheck!.codec, 'bolt');
  assert.equal(parseConfig(clusterDoc({ health_check: { protocol: 'dubbo' } })).clusters[0]!.healthCheck!.kind, 'rpc');
  // MOSN's slow-start-sample: protocol http1 without http_check_config is a TCP dial.
  assert.equal(parseConfig(clusterDoc({ health_check: { protocol: 'http1', interval: '1s' } })).clusters[0]!.healthCheck!.kind, 'tcp');

  const bad = (extra: Record<string, unknown>, path: string): void => {
    try {
      parseConfig(clusterDoc(extra));
      assert.fail(`expected an error at ${path}`);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      assert.ok(e.message.includes(path), e.message);
    }
  };
  bad({ health_check: { interval: 5 } }, 'cluster_manager.clusters[0].health_check.interval');
  bad({ health_check: { check_config: { http_check_config: { codes: [{ start: 200, end: 700 }] } } } }, 'http_check_config.codes[0].end');
  bad({ health_check: { protocol: 'Http1', check_config: { http_check_config: { path: '/h HTTP/1.1\r\nX: y' } } } }, 'http_check_config.path');
  bad({ health_check: { protocol: 'Http1', check_config: { http_check_config: { domain: 'a\r\nb' } } } }, 'http_check_config.domain');
  bad({ outlier_detection: { max_ejection_percent: 150 } }, 'outlier_detection.max_ejection_percent');
  bad({ slow_start: { mode: 'duration', min_weight_percent: 3 } }, 'slow_start.min_weight_percent');
});

test('outlier sweep (main thread): rate-based ejection (failure_rate, MOSN fault_tolerance rule), un-ejection when the time is up', async () => {
  const cl = outlierCluster(3, { consecutive_5xx: 0, interval: '100ms', base_ejection_time: '300ms', max_ejection_percent: 50, failure_rate: { min_requests: 10, rate_multiple: 1.5 } });
  const svc = new HealthService();
  svc.update([cl.config]);
  try {
    const [bad, g1, g2] = cl.hosts;
    for (let i = 0; i < 20; i++) {
      outlierResult(cl, bad, i % 2 === 0 ? 503 : 200); // 50% errors, never 5 in a row
      outlierResult(cl, g1, i === 0 ? 500 : 200); // 5%
      outlierResult(cl, g2, 200);
    }
    assert.equal(bad.healthy, true, 'nothing is ejected before the sweep');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(bad.healthy, false, 'the sweep ejects the host far above the mean failure rate');
    assert.equal(bad.cells[bad.off + H.EJECT_REASON], 4);
    assert.equal(g1.healthy, true);
    assert.equal(svc.clusterStats()[cl.name]['outlier_detection.ejections_active'], 1);
    const report = svc.report()[cl.name].hosts[0];
    assert.equal(report.health, 'ejected');
    assert.equal(report.ejection_reason, 'failure_rate');
    await new Promise((r) => setTimeout(r, 450));
    assert.equal(bad.healthy, true, 'back in once base_ejection_time has passed');
  } finally {
    svc.stop();
  }
});

test('outlier sweep: Envoy success-rate ejection (mean − stdev_factor × stdev over hosts with request_volume, minimum_hosts), counted per kind', () => {
  const cl = outlierCluster(5, { consecutive_5xx: 0, interval: '1h', base_ejection_time: '10s', max_ejection_percent: 50, success_rate_request_volume: 20, success_rate_minimum_hosts: 5 });
  const svc = new HealthService();
  svc.update([cl.config]);
  try {
    const [bad, ...good] = cl.hosts;
    const feed = (badEvery: number, goodHosts: readonly Host[]): void => {
      for (let i = 0; i < 40; i++) {
        outlierResult(cl, bad, i % badEvery === 0 ? 503 : 200);
        for (const g of goodHosts) outlierResult(cl, g, i === 7 ? 500 : 200);
      }
    };
    // Only 4 hosts with request_volume: below success_rate_minimum_hosts, nothing is judged.
    feed(2, good.slice(1));
    for (let i = 0; i < 10; i++) outlierResult(cl, good[0], 200);
    svc.sweepOutliers(cl.name);
    assert.equal(bad.healthy, true, 'too few hosts with request_volume requests');
    // All 5: 50% success against 97.5% — below the threshold.
    feed(2, good);
    svc.sweepOutliers(cl.name);
    assert.equal(bad.healthy, false, 'ejected by success rate');
    assert.equal(bad.cells[bad.off + H.EJECT_REASON], 6);
    assert.ok(good.every((g) => g.healthy));
    const st = svc.clusterStats()[cl.name];
    assert.equal(st['outlier_detection.ejections_enforced_success_rate'], 1);
    assert.equal(st['outlier_detection.ejections_detected_success_rate'], 1);
    assert.equal(st['outlier_detection.ejections_enforced_total'], 1);
    assert.equal(svc.report()[cl.name].hosts[0].ejection_reason, 'success_rate');
    assert.match(svc.prometheus(), new RegExp(`outrigger_cluster_outlier_detection_ejections_enforced_by_type_total\\{cluster="${cl.name}",type="success_rate"\\} 1\n`));
  } finally {
    svc.stop();
  }
  // enforcing_success_rate 0: detected and counted (results are counted for failure percentage here), never ejected.
  const off = outlierCluster(5, { consecutive_5xx: 0, interval: '1h', success_rate_request_volume: 20, enforcing_success_rate: 0, enforcing_failure_percentage: 100, max_ejection_percent: 50 });
  const svc2 = new HealthService();
  svc2.update([off.config]);
  try {
    for (let i = 0; i < 40; i++) off.hosts.forEach((h, j) => outlierResult(off, h, j === 0 && i % 2 === 0 ? 503 : 200));
    svc2.sweepOutliers(off.name);
    assert.equal(off.hosts[0].healthy, true);
    assert.equal(svc2.clusterStats()[off.name]['outlier_detection.ejections_detected_success_rate'], 1);
    assert.equal(svc2.clusterStats()[off.name]['outlier_detection.ejections_enforced_success_rate'], 0);
  } finally {
    svc2.stop();
  }
});

test('outlier sweep: Envoy failure-percentage ejection (threshold over hosts with request_volume, minimum_hosts); max_ejection_percent overflow counted', () => {
  const cl = outlierCluster(4, {
    consecutive_5xx: 0, interval: '1h', base_ejection_time: '10s', max_ejection_percent: 25, enforcing_success_rate: 0,
    failure_percentage_threshold: 60, enforcing_failure_percentage: 100, failure_percentage_minimum_hosts: 3, failure_percentage_request_volume: 10,
  });
  const svc = new HealthService();
  svc.update([cl.config]);
  try {
    const [bad1, bad2, g1, g2] = cl.hosts;
    for (let i = 0; i < 20; i++) {
      outlierResult(cl, bad1, i % 4 === 0 ? 200 : 502); // 75% failures
      outlierResult(cl, bad2, i % 5 === 0 ? 200 : 500); // 80%
      outlierResult(cl, g1, i % 2 === 0 ? 500 : 200); // 50%: under the threshold
      outlierResult(cl, g2, 200);
    }
    svc.sweepOutliers(cl.name);
    assert.equal(bad1.healthy, false, 'ejected by failure percentage');
    assert.equal(bad1.cells[bad1.off + H.EJECT_REASON], 7);
    assert.equal(bad2.healthy, true, 'max_ejection_percent 25 of 4 hosts: one at a time');
    assert.equal(g1.healthy, true);
    const st = svc.clusterStats()[cl.name];
    assert.equal(st['outlier_detection.ejections_enforced_failure_percentage'], 1);
    assert.equal(st['outlier_detection.ejections_detected_failure_percentage'], 2);
    assert.equal(st['outlier_detection.ejections_overflow'], 1);
  } finally {
    svc.stop();
  }
});

test('retry budget (Envoy circuit_breakers retry_budget): retries in flight at most budget_percent of the requests in flight, at least min_retry_concurrency', () => {
  const name = `rb-${seq++}`;
  const cfg = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: name } }] }] }] }],
    cluster_manager: { clusters: [{ name, type: 'SIMPLE', hosts: [{ address: '127.0.0.1:1' }], circuit_breakers: [{ max_retries: 100, retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: 1 } }] }] },
  });
  assert.deepEqual(cfg.clusters[0]!.circuitBreakers.retryBudget, { budgetPercent: 50, minRetryConcurrency: 1 });
  const cl = new ClusterManager(cfg.clusters, new Float64Array(4096), { [name]: 300 }).get(name)!;
  let retries = 0;
  let requests = 0;
  try {
    assert.ok(cl.tryAcquireRetry(), 'min_retry_concurrency 1 with nothing in flight');
    retries++;
    assert.equal(cl.tryAcquireRetry(), false, 'max_retries 100 does not apply: the budget replaces it');
    for (; requests < 10; requests++) assert.ok(cl.tryAcquireRequest());
    for (let i = 0; i < 4; i++, retries++) assert.ok(cl.tryAcquireRetry(), `retry ${retries + 1} of 5 (50% of 10)`);
    assert.equal(cl.tryAcquireRetry(), false);
    assert.equal(cl.counters[300 + C.RQ_RETRY_OVERFLOW], 2);
  } finally {
    for (; retries > 0; retries--) cl.releaseRetry();
    for (; requests > 0; requests--) cl.releaseRequest();
  }
  assert.throws(
    () => parseConfig({ ...(cfg.raw as object), cluster_manager: { clusters: [{ name, hosts: [{ address: '127.0.0.1:1' }], circuit_breakers: [{ retry_budget: { budget_percent: 120 } }] }] } }),
    /circuit_breakers\[0\]\.retry_budget\.budget_percent/,
  );
});

test('fault_tolerance config: MOSN keys and defaults, illegal values refused with their path; RPC statuses mapped as MOSN maps them', () => {
  const errors: string[] = [];
  const warnings: string[] = [];
  const ctx = { error: (p: string, m: string) => errors.push(`${p}: ${m}`), warn: (p: string, m: string) => warnings.push(`${p}: ${m}`), listenerName: 'l' };
  assert.deepEqual(validateFaultTolerance({ enabled: true }, 'f', ctx), {
    enabled: true,
    exceptionTypes: [502, 503, 504],
    timeWindowMs: 10_000,
    leastWindowCount: 10,
    exceptionRateMultiple: 5,
    maxIpCount: 1,
    recoverTimeMs: 900_000,
  });
  assert.equal(validateFaultTolerance({ enabled: true, exceptionRateMultiple: 1 }, 'f', ctx), undefined);
  assert.equal(validateFaultTolerance({ timeWindow: 5 }, 'f', ctx), undefined);
  assert.equal(validateFaultTolerance({ exceptionTypes: ['x'] }, 'f', ctx), undefined);
  assert.deepEqual(errors.map((e) => e.split(':')[0]), ['f.exceptionRateMultiple', 'f.timeWindow', 'f.exceptionTypes']);
  validateFaultTolerance({ maxIpRatio: 0.5 }, 'f', ctx);
  assert.ok(warnings.some((w) => w.startsWith('f.maxIpRatio')));
  assert.equal(responseCode('bolt', 0), 200);
  assert.equal(responseCode('bolt', 0x04), 503);
  assert.equal(responseCode('boltv2', 0x07), 504);
  assert.equal(responseCode('bolt', 0x10), 502);
  assert.equal(responseCode('bolt', 0x02), 500);
  assert.equal(responseCode('dubbo', 20), 200);
  assert.equal(responseCode('dubbo', 31), 504);
  assert.equal(responseCode('dubbo', 100), 503);
  assert.equal(responseCode('http1', 503), 503);
});
