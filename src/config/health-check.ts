/**
 * Cluster resilience settings: MOSN `health_check` and `slow_start`, Envoy-shaped
 * `outlier_detection` (keys as in Envoy's v3 proto JSON, durations as "10s"/"500ms").
 */
import { showValue } from './errors';
import { ConfigObject, type ParseState } from './reader';
import type { HealthCheckConfig, HttpHealthCheckConfig, OutlierDetectionConfig, SlowStartConfig } from './types';

/** MOSN pkg/upstream/healthcheck defaults. */
const HC_DEFAULTS = { timeoutMs: 1000, intervalMs: 15_000, intervalJitterMs: 5, initialDelayMs: 1000, threshold: 1, httpTimeoutMs: 30_000 } as const;

/** RPC protocols whose heartbeat is the check, by MOSN protocol name -> codec. */
const RPC_CHECKS: Readonly<Record<string, string>> = { bolt: 'bolt', sofarpc: 'bolt', boltv2: 'boltv2', dubbo: 'dubbo' };

function healthKind(protocol: string, hasHttp: boolean): HealthCheckConfig['kind'] {
  const p = protocol.toLowerCase();
  if (p === 'grpc') return 'grpc';
  if (p === 'http1' || p === 'http2' || p === 'http') return hasHttp ? 'http' : 'tcp';
  return RPC_CHECKS[p] !== undefined ? 'rpc' : 'tcp';
}

function parseHttpCheck(st: ParseState, h: ConfigObject): HttpHealthCheckConfig {
  const path = h.str('path', { def: '/' }) ?? '/';
  // Both go into the check's request line and Host header: no whitespace or control characters.
  if (!/^\/[\x21-\x7e]*$/.test(path)) st.issues.error(h.at('path'), `${showValue(path)} must start with "/" and hold no spaces or control characters`);
  const method = (h.str('method', { def: 'GET' }) ?? 'GET').toUpperCase() || 'GET';
  if (!/^[A-Z]+$/.test(method)) st.issues.error(h.at('method'), `${showValue(method)} is not an HTTP method`);
  const scheme = h.str('scheme', { def: 'http' }) ?? 'http';
  if (scheme !== '' && scheme.toLowerCase() !== 'http') st.issues.warn(h.at('scheme'), `${showValue(scheme)}: checks use the cluster's transport (TLS when it has a tls_context)`);
  const domain = h.str('domain');
  if (domain !== undefined && !/^[\x21-\x7e]*$/.test(domain)) st.issues.error(h.at('domain'), `${showValue(domain)} must hold no spaces or control characters`);
  const port = h.int('port', { max: 65535 });
  const timeoutMs = h.duration('timeout', { def: 0 });
  const codes: { start: number; end: number }[] = [];
  for (const item of h.list('codes')) {
    const c = ConfigObject.from(st.issues, item.path, item.value);
    if (!c) continue;
    const start = c.int('start', { min: 100, max: 599, def: 200 });
    const end = c.int('end', { min: 100, max: 599, def: start });
    if (end < start) st.issues.error(c.at('end'), `${end} is below start ${start}`);
    codes.push({ start, end });
    c.done();
  }
  h.done();
  const out: HttpHealthCheckConfig = { path, port, method, timeoutMs, codes: codes.length > 0 ? codes : [{ start: 200, end: 200 }] };
  return domain !== undefined && domain !== '' ? { ...out, domain } : out;
}

/** MOSN cluster `health_check` (pkg/config/v2 HealthCheckConfig). Undefined when absent or empty. */
export function parseHealthCheck(st: ParseState, c: ConfigObject): HealthCheckConfig | undefined {
  if (!c.has('health_check')) {
    c.accept('health_check');
    return undefined;
  }
  const h = c.obj('health_check');
  if (!h) return undefined;
  if (Object.keys(h.source).length === 0) return undefined;
  const protocol = h.str('protocol', { def: '' }) ?? '';
  const timeoutMs = h.duration('timeout', { def: HC_DEFAULTS.timeoutMs }) || HC_DEFAULTS.timeoutMs;
  const intervalMs = h.duration('interval', { def: HC_DEFAULTS.intervalMs }) || HC_DEFAULTS.intervalMs;
  const intervalJitterMs = h.duration('interval_jitter', { def: HC_DEFAULTS.intervalJitterMs }) || HC_DEFAULTS.intervalJitterMs;
  const initialDelayMs = h.duration('initial_delay_seconds', { def: HC_DEFAULTS.initialDelayMs }) || HC_DEFAULTS.initialDelayMs;
  const healthyThreshold = h.int('healthy_threshold') || HC_DEFAULTS.threshold;
  const unhealthyThreshold = h.int('unhealthy_threshold') || HC_DEFAULTS.threshold;
  h.accept('service_name');
  h.warnIfSet('event_log_path', 'health check event logs are not supported; events are logged at info level');
  h.warnIfSet('common_callbacks', 'health check callbacks are not supported; ignored');
  let http: HttpHealthCheckConfig | undefined;
  let grpc: HealthCheckConfig['grpc'];
  const cc = h.obj('check_config');
  if (cc) {
    const hc = cc.obj('http_check_config');
    if (hc) http = parseHttpCheck(st, hc);
    // Outrigger's key (MOSN has no gRPC check): Envoy's grpc_health_check over xDS maps here.
    const gc = cc.obj('grpc_check_config');
    if (gc) {
      const serviceName = gc.str('service_name', { def: '' }) ?? '';
      const authority = gc.str('authority', { def: '' }) ?? '';
      if (!/^[\x21-\x7e]*$/.test(authority)) st.issues.error(gc.at('authority'), `${showValue(authority)} must hold no spaces or control characters`);
      if (Buffer.byteLength(serviceName) > 1024) st.issues.error(gc.at('service_name'), 'is longer than 1024 bytes');
      grpc = { serviceName, authority };
      gc.done();
    }
    cc.done();
  }
  h.done();
  const kind = healthKind(protocol, http !== undefined);
  if (http !== undefined && kind !== 'http') st.issues.warn(h.at('check_config'), `http_check_config is used only with protocol Http1/Http2 (here ${showValue(protocol)}: ${kind} checks)`);
  const base: HealthCheckConfig = { kind, protocol, timeoutMs, intervalMs, intervalJitterMs, initialDelayMs, healthyThreshold, unhealthyThreshold };
  if (grpc !== undefined && kind !== 'grpc') st.issues.warn(h.at('check_config'), `grpc_check_config is used only with protocol grpc (here ${showValue(protocol)}: ${kind} checks)`);
  if (kind === 'grpc') return { ...base, grpc: grpc ?? { serviceName: '', authority: '' } };
  const out: HealthCheckConfig = kind === 'rpc' ? { ...base, codec: RPC_CHECKS[protocol.toLowerCase()] } : base;
  return kind === 'http' && http ? { ...out, http: http.timeoutMs > 0 ? http : { ...http, timeoutMs: HC_DEFAULTS.httpTimeoutMs } } : out;
}

/** An Envoy UInt32Value: a number or {"value": n}; `max` 100 for percentages. */
function uint32Value(o: ConfigObject, key: string, def: number, max?: number): number {
  const v = o.get(key);
  const raw = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)['value'] : v;
  if (raw === undefined) return def;
  return o.checkInt(raw, o.at(key), max !== undefined ? { max } : {}) ?? def;
}

/** Envoy `outlier_detection` on a cluster. */
export function parseOutlierDetection(st: ParseState, c: ConfigObject): OutlierDetectionConfig | undefined {
  if (!c.has('outlier_detection')) {
    c.accept('outlier_detection');
    return undefined;
  }
  const o = c.obj('outlier_detection');
  if (!o) return undefined;
  const baseEjectionTimeMs = o.duration('base_ejection_time', { def: 30_000 }) || 30_000;
  const out = {
    consecutive5xx: uint32Value(o, 'consecutive_5xx', 5),
    consecutiveGatewayFailure: uint32Value(o, 'consecutive_gateway_failure', 5),
    consecutiveLocalOriginFailure: uint32Value(o, 'consecutive_local_origin_failure', 5),
    splitExternalLocalOriginErrors: o.bool('split_external_local_origin_errors', false),
    intervalMs: o.duration('interval', { def: 10_000 }) || 10_000,
    baseEjectionTimeMs,
    maxEjectionTimeMs: o.duration('max_ejection_time', { def: Math.max(300_000, baseEjectionTimeMs) }) || Math.max(300_000, baseEjectionTimeMs),
    maxEjectionPercent: uint32Value(o, 'max_ejection_percent', 10, 100),
    enforcingConsecutive5xx: uint32Value(o, 'enforcing_consecutive_5xx', 100, 100),
    enforcingConsecutiveGatewayFailure: uint32Value(o, 'enforcing_consecutive_gateway_failure', 0, 100),
    enforcingConsecutiveLocalOriginFailure: uint32Value(o, 'enforcing_consecutive_local_origin_failure', 100, 100),
  };
  o.warnIfSet('max_ejection_time_jitter', 'not supported; ignored');
  o.warnIfSet('successful_active_health_check_uneject_host', 'not supported; ignored (a host is un-ejected when its ejection time ends)');
  let failureRate: OutlierDetectionConfig['failureRate'];
  const fr = o.obj('failure_rate');
  if (fr) {
    // Outrigger's name for MOSN fault_tolerance's rule (leastWindowCount, exceptionRateMultiple).
    const minRequests = fr.int('min_requests', { def: 10 });
    const mv = fr.get('rate_multiple');
    const rateMultiple = typeof mv === 'number' && mv > 0 ? mv : 2;
    if (mv !== undefined && !(typeof mv === 'number' && mv > 0)) st.issues.error(fr.at('rate_multiple'), `${showValue(mv)} must be a number above 0`);
    failureRate = { minRequests, rateMultiple };
    fr.done();
  }
  const successRate = {
    minimumHosts: uint32Value(o, 'success_rate_minimum_hosts', 5),
    requestVolume: Math.max(1, uint32Value(o, 'success_rate_request_volume', 100)),
    stdevFactor: uint32Value(o, 'success_rate_stdev_factor', 1900) / 1000,
    enforcing: uint32Value(o, 'enforcing_success_rate', 100, 100),
    enforcingLocalOrigin: uint32Value(o, 'enforcing_local_origin_success_rate', 100, 100),
  };
  const failurePercentage = {
    threshold: uint32Value(o, 'failure_percentage_threshold', 85, 100),
    minimumHosts: uint32Value(o, 'failure_percentage_minimum_hosts', 5),
    requestVolume: Math.max(1, uint32Value(o, 'failure_percentage_request_volume', 50)),
    enforcing: uint32Value(o, 'enforcing_failure_percentage', 0, 100),
    enforcingLocalOrigin: uint32Value(o, 'enforcing_failure_percentage_local_origin', 0, 100),
  };
  const split = out.splitExternalLocalOriginErrors;
  const countRates = failureRate !== undefined || successRate.enforcing > 0 || failurePercentage.enforcing > 0 ||
    (split && (successRate.enforcingLocalOrigin > 0 || failurePercentage.enforcingLocalOrigin > 0));
  o.done();
  const full: OutlierDetectionConfig = { ...out, successRate, failurePercentage, countRates };
  return failureRate ? { ...full, failureRate } : full;
}

/** MOSN cluster `slow_start` (mode "duration"; empty mode = off, as MOSN). */
export function parseSlowStart(st: ParseState, c: ConfigObject): SlowStartConfig | undefined {
  if (!c.has('slow_start')) {
    c.accept('slow_start');
    return undefined;
  }
  const s = c.obj('slow_start');
  if (!s) return undefined;
  const mode = s.str('mode', { def: '' }) ?? '';
  const windowMs = s.duration('slow_start_duration', { def: 0 });
  const num = (key: string, def: number, max: number): number => {
    const v = s.get(key);
    if (v === undefined || v === 0) return def;
    if (typeof v !== 'number' || !(v > 0) || v > max) {
      st.issues.error(s.at(key), `${showValue(v)} must be a number in (0, ${max}]`);
      return def;
    }
    return v;
  };
  const aggression = num('aggression', 1, 1e6);
  const minWeightPercent = num('min_weight_percent', 0.1, 1);
  s.done();
  if (mode === '') return undefined;
  if (mode !== 'duration') {
    st.issues.warn(s.at('mode'), `${showValue(mode)} is not a slow start mode (only "duration"); slow start is off`);
    return undefined;
  }
  if (windowMs <= 0) return undefined; // MOSN: no duration = factor 1
  return { windowMs, aggression, minWeightPercent };
}
