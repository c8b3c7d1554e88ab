/**
 * Cluster resilience fields -> the MOSN-shaped keys that src/config/clusters.ts and
 * src/config/health-check.ts parse (`health_check`, `outlier_detection`, `slow_start`,
 * circuit_breakers[0].retry_budget), so a cluster from CDS gets exactly the values a static
 * config with the same content would. healthy_panic_threshold has no MOSN key: it is returned
 * as a number for ClusterConfig.panicThreshold.
 *
 * Skipping a health check is safe (every endpoint stays in use, as without checks), so
 * checkers Outrigger cannot run (Redis, custom) are warned about, never NACKed.
 */
import { checkFields, durationMs, goDuration, join, list, msg, str, wrappedNum, type Msg, type Tx } from './util';

const HEALTH_CHECKERS_SKIPPED: Readonly<Record<string, string>> = {
  customHealthCheck: 'custom health checkers are not supported: the cluster is not health checked (every endpoint is used)',
  redisHealthCheck: 'Redis health checks are not supported: the cluster is not health checked (every endpoint is used)',
};

/** Envoy RequestMethod enum names that are HTTP methods (METHOD_UNSPECIFIED = GET). */
function methodOf(v: unknown): string {
  const m = str(v);
  return m === '' || m === 'METHOD_UNSPECIFIED' ? 'GET' : m;
}

/** expected_statuses [start, end) -> MOSN codes {start, end} inclusive. */
function statusRanges(tx: Tx, rs: Msg[], path: string): { start: number; end: number }[] {
  return rs.map((r, i) => {
    const start = Number(r.start ?? 0);
    const end = Number(r.end ?? 0);
    if (!(start >= 100 && end > start && end <= 600)) tx.fail(join(path, i), `[${start}, ${end}) is not a range of HTTP statuses (100 <= start < end <= 600)`);
    return { start, end: end - 1 };
  });
}

/** http_health_check -> MOSN check_config.http_check_config (the check's timeout is the exchange's). */
function httpCheck(tx: Tx, h: Msg, path: string, timeoutMs: number, altPort: number | undefined): Record<string, unknown> {
  checkFields(tx, h, path, {
    ok: ['host', 'path', 'expectedStatuses', 'method', 'codecClientType'],
    warn: {
      send: 'request bodies are not sent by HTTP checks; ignored',
      receive: 'response bodies are not checked; only the status is',
      requestHeadersToAdd: 'extra check request headers are not supported; ignored',
      requestHeadersToRemove: 'not supported; ignored',
      retriableStatuses: 'retriable statuses are not supported: any status outside expected_statuses is a failure',
      serviceNameMatcher: 'not supported; ignored',
    },
  });
  const codec = str(h.codecClientType);
  if (codec !== '' && codec !== 'HTTP1') tx.warn(join(path, 'codecClientType'), `${codec}: checks are sent over HTTP/1.1`);
  const method = methodOf(h.method);
  if (method === 'CONNECT') tx.fail(join(path, 'method'), 'CONNECT is not a health check method (Envoy refuses it too)');
  const out: Record<string, unknown> = { path: str(h.path) || '/', method, timeout: goDuration(timeoutMs) };
  const host = str(h.host);
  if (host !== '') out.domain = host;
  const codes = statusRanges(tx, list(h.expectedStatuses), join(path, 'expectedStatuses'));
  if (codes.length > 0) out.codes = codes;
  if (altPort !== undefined && altPort > 0) out.port = altPort;
  return out;
}

/** health_checks -> MOSN `health_check` (undefined: no check). */
export function healthChecks(tx: Tx, hcs: Msg[], path: string): Record<string, unknown> | undefined {
  const hc = hcs[0];
  if (hc === undefined) return undefined;
  if (hcs.length > 1) tx.warn(path, `${hcs.length} health checks given; only the first is run`);
  const p = join(path, 0);
  checkFields(tx, hc, p, {
    ok: ['timeout', 'interval', 'intervalJitter', 'unhealthyThreshold', 'healthyThreshold', 'httpHealthCheck', 'tcpHealthCheck', 'grpcHealthCheck', 'altPort',
      ...Object.keys(HEALTH_CHECKERS_SKIPPED)],
    warn: {
      initialJitter: 'not supported: the first check runs 1 s after the hosts are known',
      intervalJitterPercent: 'not supported; interval_jitter applies',
      reuseConnection: 'every check opens its own connection; ignored',
      noTrafficInterval: 'checks run at `interval` whether or not the cluster has traffic',
      noTrafficHealthyInterval: 'checks run at `interval` whether or not the cluster has traffic',
      unhealthyInterval: 'checks run at `interval` whatever the host\'s state',
      unhealthyEdgeInterval: 'checks run at `interval` whatever the host\'s state',
      healthyEdgeInterval: 'checks run at `interval` whatever the host\'s state',
      eventLogPath: 'health check event logs are not supported; events are logged at info level',
      eventLogger: 'health check event logs are not supported; events are logged at info level',
      eventService: 'not supported; ignored',
      alwaysLogHealthCheckFailures: 'ignored', alwaysLogHealthCheckSuccess: 'ignored',
      tlsOptions: 'checks use the host\'s transport (TLS as its traffic); ALPN options ignored',
      transportSocketMatchCriteria: 'checks use the host\'s own transport; ignored',
    },
  });
  for (const k of Object.keys(HEALTH_CHECKERS_SKIPPED)) {
    if (hc[k] !== undefined) {
      tx.warn(join(p, k), HEALTH_CHECKERS_SKIPPED[k]);
      return undefined;
    }
  }
  const timeoutMs = durationMs(hc.timeout) ?? 0;
  const intervalMs = durationMs(hc.interval) ?? 0;
  // Both are required (and > 0) in Envoy: a check without them is refused there too.
  if (timeoutMs <= 0) tx.fail(join(p, 'timeout'), 'is required (greater than 0)');
  if (intervalMs <= 0) tx.fail(join(p, 'interval'), 'is required (greater than 0)');
  const unhealthy = wrappedNum(hc.unhealthyThreshold);
  const healthy = wrappedNum(hc.healthyThreshold);
  if (unhealthy === undefined) tx.fail(join(p, 'unhealthyThreshold'), 'is required');
  if (healthy === undefined) tx.fail(join(p, 'healthyThreshold'), 'is required');
  const altPort = wrappedNum(hc.altPort);
  if (altPort !== undefined && altPort > 65535) tx.fail(join(p, 'altPort'), `${altPort} is not a port`);
  const out: Record<string, unknown> = {
    timeout: goDuration(timeoutMs), interval: goDuration(intervalMs),
    healthy_threshold: healthy, unhealthy_threshold: unhealthy,
  };
  const jitter = durationMs(hc.intervalJitter);
  if (jitter !== undefined && jitter > 0) out.interval_jitter = goDuration(jitter);
  const http = msg(hc.httpHealthCheck);
  const tcp = msg(hc.tcpHealthCheck);
  const grpc = msg(hc.grpcHealthCheck);
  if (grpc !== undefined) {
    // grpc.health.v1.Health/Check over HTTP/2 through the cluster's connection path (its TLS).
    out.protocol = 'grpc';
    const gp = join(p, 'grpcHealthCheck');
    checkFields(tx, grpc, gp, { ok: ['serviceName', 'authority'], warn: { initialMetadata: 'extra check metadata is not supported; ignored' } });
    out.check_config = { grpc_check_config: { service_name: str(grpc.serviceName), authority: str(grpc.authority) } };
    if (altPort !== undefined && altPort > 0) tx.warn(join(p, 'altPort'), 'gRPC checks go to the host\'s own port; ignored');
  } else if (http !== undefined) {
    out.protocol = 'Http1';
    out.check_config = { http_check_config: httpCheck(tx, http, join(p, 'httpHealthCheck'), timeoutMs, altPort) };
  } else if (tcp !== undefined) {
    // MOSN: any protocol without a check of its own is a TCP connect check.
    out.protocol = 'tcp';
    checkFields(tx, tcp, join(p, 'tcpHealthCheck'), {
      ok: [],
      warn: {
        send: 'TCP checks only connect; the payload is not sent (a host that accepts connections passes)',
        receive: 'TCP checks only connect; no answer is checked (a host that accepts connections passes)',
        proxyProtocolConfig: 'not supported; checks send no PROXY header',
      },
    });
    if (altPort !== undefined && altPort > 0) tx.warn(join(p, 'altPort'), 'TCP checks connect to the host\'s own port; ignored');
  } else {
    tx.warn(p, 'no health checker given: the cluster is not health checked');
    return undefined;
  }
  return out;
}

/** The outlier_detection fields the config model implements (UInt32Value wrappers), by MOSN key. */
const OUTLIER_NUMBERS: readonly (readonly [string, string])[] = [
  ['consecutive_5xx', 'consecutive_5xx'],
  ['consecutiveGatewayFailure', 'consecutive_gateway_failure'],
  ['consecutiveLocalOriginFailure', 'consecutive_local_origin_failure'],
  ['maxEjectionPercent', 'max_ejection_percent'],
  ['enforcingConsecutive_5xx', 'enforcing_consecutive_5xx'],
  ['enforcingConsecutiveGatewayFailure', 'enforcing_consecutive_gateway_failure'],
  ['enforcingConsecutiveLocalOriginFailure', 'enforcing_consecutive_local_origin_failure'],
];
const OUTLIER_DURATIONS: readonly (readonly [string, string])[] = [
  ['interval', 'interval'], ['baseEjectionTime', 'base_ejection_time'], ['maxEjectionTime', 'max_ejection_time'],
];
/** Success-rate and failure-percentage ejection (UInt32Value wrappers), by MOSN key. */
const OUTLIER_RATE_RULES: readonly (readonly [string, string])[] = [
  ['successRateMinimumHosts', 'success_rate_minimum_hosts'], ['successRateRequestVolume', 'success_rate_request_volume'],
  ['successRateStdevFactor', 'success_rate_stdev_factor'], ['enforcingSuccessRate', 'enforcing_success_rate'],
  ['enforcingLocalOriginSuccessRate', 'enforcing_local_origin_success_rate'], ['failurePercentageThreshold', 'failure_percentage_threshold'],
  ['enforcingFailurePercentage', 'enforcing_failure_percentage'], ['enforcingFailurePercentageLocalOrigin', 'enforcing_failure_percentage_local_origin'],
  ['failurePercentageMinimumHosts', 'failure_percentage_minimum_hosts'], ['failurePercentageRequestVolume', 'failure_percentage_request_volume'],
];

/** outlier_detection -> MOSN/Envoy-keyed `outlier_detection` (src/config/health-check.ts parseOutlierDetection). */
export function outlierDetection(tx: Tx, o: Msg, path: string): Record<string, unknown> {
  checkFields(tx, o, path, {
    ok: [...OUTLIER_NUMBERS, ...OUTLIER_DURATIONS, ...OUTLIER_RATE_RULES].map(([k]) => k).concat(['splitExternalLocalOriginErrors']),
    warn: {
      maxEjectionTimeJitter: 'not supported; ignored',
      successfulActiveHealthCheckUnejectHost: 'not supported; ignored (a host is un-ejected when its ejection time ends)',
      alwaysEjectOneHost: 'not supported: max_ejection_percent applies (at least one host can always be ejected)',
      detectorEventLogPath: 'not supported; ignored',
    },
  });
  const out: Record<string, unknown> = {};
  for (const [k, mk] of OUTLIER_NUMBERS) {
    const n = wrappedNum(o[k]);
    if (n !== undefined) out[mk] = n;
  }
  for (const [k, mk] of OUTLIER_RATE_RULES) {
    const n = wrappedNum(o[k]);
    // An enforcing_* of 0 turns that ejection off (Istio sends enforcing_success_rate 0).
    if (n !== undefined) out[mk] = n;
  }
  for (const [k, mk] of OUTLIER_DURATIONS) {
    const ms = durationMs(o[k]);
    if (ms !== undefined) out[mk] = goDuration(ms);
  }
  if (o.splitExternalLocalOriginErrors === true) out.split_external_local_origin_errors = true;
  return out;
}

/** common_lb_config.healthy_panic_threshold (a Percent) -> percent, or undefined when absent. */
export function panicThreshold(tx: Tx, clb: Msg, path: string): number | undefined {
  const p = msg(clb.healthyPanicThreshold);
  if (p === undefined) return undefined;
  const v = typeof p.value === 'number' ? p.value : 0; // {} = 0 (proto3 default): never panic
  if (!(v >= 0 && v <= 100)) tx.fail(join(path, 'healthyPanicThreshold'), `${v} is not a percentage 0..100`);
  return v;
}

/**
 * slow_start_config (of round_robin_lb_config / least_request_lb_config) -> MOSN `slow_start`
 * (min_weight_percent: Envoy's Percent 0..100 -> MOSN's share 0..1). `applies`: false when the
 * cluster's balancer does not weigh hosts by slow start (warned, not mapped).
 */
export function slowStart(tx: Tx, ss: Msg, path: string, applies: boolean): Record<string, unknown> | undefined {
  checkFields(tx, ss, path, { ok: ['slowStartWindow', 'aggression', 'minWeightPercent'] });
  if (!applies) {
    tx.warn(path, 'slow start is applied by the weighted round-robin balancer (ROUND_ROBIN) only; ignored');
    return undefined;
  }
  const windowMs = durationMs(ss.slowStartWindow) ?? 0;
  if (windowMs <= 0) return undefined; // Envoy: no window = no slow start
  const out: Record<string, unknown> = { mode: 'duration', slow_start_duration: goDuration(windowMs) };
  const ag = msg(ss.aggression);
  if (ag !== undefined) {
    if (str(ag.runtimeKey) !== '') tx.warn(join(path, 'aggression.runtimeKey'), 'runtime overrides are not supported; default_value applies');
    if (typeof ag.defaultValue === 'number') out.aggression = ag.defaultValue;
  }
  const mw = msg(ss.minWeightPercent);
  if (mw !== undefined) out.min_weight_percent = (typeof mw.value === 'number' ? mw.value : 0) / 100;
  return out;
}

/** circuit_breakers threshold retry_budget -> MOSN retry_budget (budget_percent {value}, min_retry_concurrency). */
export function retryBudget(tx: Tx, rb: Msg, path: string): Record<string, unknown> {
  checkFields(tx, rb, path, { ok: ['budgetPercent', 'minRetryConcurrency'] });
  const out: Record<string, unknown> = {};
  const bp = msg(rb.budgetPercent);
  if (bp !== undefined) out.budget_percent = { value: typeof bp.value === 'number' ? bp.value : 0 };
  const mrc = wrappedNum(rb.minRetryConcurrency);
  if (mrc !== undefined) out.min_retry_concurrency = mrc;
  return out;
}
