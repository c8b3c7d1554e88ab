/**
 * Outlier detection (Envoy's outlier_detection), the worker side: every upstream attempt's
 * result is counted in its host's shared entry (./health/shared.ts), so consecutive failures
 * add up across every worker, and the worker whose result reaches a threshold ejects the host
 * for every worker at once (an Atomics flag the balancers read). The main thread
 * (./health/service.ts) ends ejections when their time is up, decays the ejection multiplier
 * and runs the rate-based rule at each interval.
 *
 * Results (`code`): an HTTP status, RPC_OK / RPC_ERROR for an RPC answer, LOCAL_FAILURE for a
 * failure of the proxy's own making (connect failure, reset, lost connection, timeout).
 * Not split (default): a local failure counts as a gateway failure and a 5xx, as Envoy maps it
 * to 503. Split: local failures count apart, and any answer is a local-origin success.
 */
import type { OutlierDetectionConfig } from '../config/types';
import type { Cluster } from './cluster';
import { F, H, setFlag, T } from './health/shared';
import type { Host } from './lb';

export const LOCAL_FAILURE = -1;
export const RPC_OK = 200;
export const RPC_ERROR = 500;

export const enum EjectReason {
  Consecutive5xx = 1,
  ConsecutiveGatewayFailure = 2,
  ConsecutiveLocalOriginFailure = 3,
  FailureRate = 4,
  FaultTolerance = 5,
  SuccessRate = 6,
  FailurePercentage = 7,
  LocalOriginSuccessRate = 8,
  LocalOriginFailurePercentage = 9,
}

/**
 * Counts one attempt's result for `host`; no-op (one property read) without outlier_detection.
 * Kept this small so that the optimized caller inlines it: on its own, a function that mostly
 * returns at once runs too few bytecodes per call to tier up, and stayed baseline code
 * (property loads through IC builtins) at low request rates, per response.
 */
export function outlierResult(cluster: Cluster, host: Host, code: number): void {
  const od = cluster.config.outlierDetection;
  if (od !== undefined) countResult(cluster, host, code, od);
}

function countResult(cluster: Cluster, host: Host, code: number, od: OutlierDetectionConfig): void {
  const c = host.cells;
  const o = host.off;
  if (od.countRates) {
    // The interval rules (success rate, failure percentage, failure_rate). Split: upstream
    // answers count for the external rate, and every result for the local-origin one.
    if (!od.splitExternalLocalOriginErrors) {
      Atomics.add(c, o + H.RQ, 1);
      if (code < 0 || code >= 500) Atomics.add(c, o + H.ERR, 1);
    } else {
      Atomics.add(c, o + H.RQ_LOCAL, 1);
      if (code < 0) Atomics.add(c, o + H.ERR_LOCAL, 1);
      else {
        Atomics.add(c, o + H.RQ, 1);
        if (code >= 500) Atomics.add(c, o + H.ERR, 1);
      }
    }
  }
  if (code >= 0 && code < 500) {
    // A success resets the counters; read first so that healthy traffic writes no shared line.
    if (c[o + H.C5XX] !== 0) Atomics.store(c, o + H.C5XX, 0);
    if (c[o + H.CGW] !== 0) Atomics.store(c, o + H.CGW, 0);
    if (c[o + H.CLOCAL] !== 0) Atomics.store(c, o + H.CLOCAL, 0);
    return;
  }
  if ((c[o + H.STATE] & F.EJECTED) !== 0) return; // already out
  if (code < 0 && od.splitExternalLocalOriginErrors) {
    const n = Atomics.add(c, o + H.CLOCAL, 1) + 1;
    if (od.consecutiveLocalOriginFailure > 0 && n >= od.consecutiveLocalOriginFailure) {
      eject(cluster, host, od, EjectReason.ConsecutiveLocalOriginFailure, od.enforcingConsecutiveLocalOriginFailure);
    }
    return;
  }
  if (code >= 0 && od.splitExternalLocalOriginErrors && c[o + H.CLOCAL] !== 0) Atomics.store(c, o + H.CLOCAL, 0);
  const gateway = code < 0 || code === 502 || code === 503 || code === 504;
  const n5 = Atomics.add(c, o + H.C5XX, 1) + 1;
  const ngw = gateway ? Atomics.add(c, o + H.CGW, 1) + 1 : 0;
  if (!gateway && c[o + H.CGW] !== 0) Atomics.store(c, o + H.CGW, 0);
  if (gateway && od.consecutiveGatewayFailure > 0 && ngw >= od.consecutiveGatewayFailure && od.enforcingConsecutiveGatewayFailure > 0) {
    if (eject(cluster, host, od, EjectReason.ConsecutiveGatewayFailure, od.enforcingConsecutiveGatewayFailure)) return;
  }
  if (od.consecutive5xx > 0 && n5 >= od.consecutive5xx) eject(cluster, host, od, EjectReason.Consecutive5xx, od.enforcingConsecutive5xx);
}

/**
 * Ejects `host` when max_ejection_percent allows it (at least one host of a cluster can always
 * be ejected; refused = the cluster's overflow counter) and the enforcing percentage says so.
 * Counts the detection, and the ejection, per cluster and kind. True when this call ejected it.
 */
export function eject(cluster: Cluster, host: Host, od: OutlierDetectionConfig, reason: EjectReason, enforcing: number): boolean {
  const c = host.cells;
  const o = host.off;
  // The counters start again whether or not the ejection is enforced (as Envoy does).
  Atomics.store(c, o + H.C5XX, 0);
  Atomics.store(c, o + H.CGW, 0);
  Atomics.store(c, o + H.CLOCAL, 0);
  const co = host.clusterOff;
  if (co >= 0) Atomics.add(c, co + H.DETECTED + reason, 1);
  if (!mayEject(cluster.hosts, od.maxEjectionPercent)) {
    if (co >= 0) Atomics.add(c, co + H.OVERFLOW, 1);
    return false;
  }
  if (enforcing < 100 && Math.random() * 100 >= enforcing) return false;
  if (!setFlag(c, o, co, F.EJECTED)) return false; // another worker was first
  const mult = Atomics.add(c, o + H.EJECT_MULT, 1) + 1;
  host.times[host.toff + T.EJECTED_UNTIL] = Date.now() + Math.min(od.baseEjectionTimeMs * mult, Math.max(od.maxEjectionTimeMs, od.baseEjectionTimeMs));
  countEjection(host, reason);
  return true;
}

/** Records an enforced ejection of `host` (its reason, the host's and the cluster's totals). */
export function countEjection(host: Host, reason: EjectReason): void {
  const c = host.cells;
  Atomics.store(c, host.off + H.EJECT_REASON, reason);
  Atomics.add(c, host.off + H.EJECTIONS_TOTAL, 1);
  if (host.clusterOff >= 0) Atomics.add(c, host.clusterOff + H.ENFORCED + reason, 1);
}

/** Whether one more host of `hosts` may be ejected under max_ejection_percent. */
export function mayEject(hosts: readonly Host[], maxPercent: number): boolean {
  let ejected = 0;
  for (let i = 0; i < hosts.length; i++) if ((hosts[i].cells[hosts[i].off + H.STATE] & F.EJECTED) !== 0) ejected++;
  return ejected === 0 || (ejected + 1) * 100 <= maxPercent * hosts.length;
}
