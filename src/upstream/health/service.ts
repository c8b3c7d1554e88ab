/**
 * The process's health checker and outlier-detection sweeper, run once by the main thread (not
 * per worker): for every cluster with a `health_check`, each host is checked every interval
 * (+ jitter); `unhealthy_threshold` failures in a row mark it FAILED_HC in the shared health
 * table, `healthy_threshold` successes clear it (and start its slow start). For every cluster
 * with `outlier_detection`, each interval ends the ejections whose time is up, decays the
 * ejection multiplier of hosts that stayed in, and applies the rate-based rule. With MOSN's
 * `fault_tolerance` stream filter, every timeWindow judges each cluster's hosts by the calls and
 * exceptions the filter counted (MOSN's measure: a rate `exceptionRateMultiple` times the
 * cluster's, at most `maxIpCount` hosts out, each for `recoverTime`).
 *
 * The workers see all of it through the shared table (./shared.ts), nothing else.
 * `update(clusters)` follows config reloads (and, later, EDS host updates).
 */
import type { ClusterConfig, OutlierDetectionConfig } from '../../config/types';
import type { FaultToleranceConfig } from '../../filters/stream/fault_tolerance/config';
import { escapeLabelValue } from '../../stats/aggregate';
import { CLUSTER_STATS } from '../../stats/layout';
import { Cluster } from '../cluster';
import { hostAddress, type Host } from '../lb';
import { countEjection, eject, EjectReason } from '../outlier';
import { CheckResult, runCheck } from './checkers';
import { clearFlag, EJECT_REASONS, F, H, HC_FAILURES, healthTable, MIRROR_STATS, setFlag, T } from './shared';

export interface HealthLog {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
}

/** Main-thread state of one checked host. */
interface HostCheck {
  readonly host: Host;
  timer: NodeJS.Timeout | null;
  running: boolean;
  okRun: number;
  failRun: number;
}

class ClusterHealth {
  readonly checks = new Map<Host, HostCheck>();
  sweep: NodeJS.Timeout | null = null;
  /** Health-check counters of this cluster (since start). */
  attempts = 0;
  successes = 0;
  failures = 0;

  constructor(
    readonly cluster: Cluster,
    private readonly svc: HealthService,
  ) {}

  get config(): ClusterConfig {
    return this.cluster.config;
  }

  start(prev: ClusterHealth | undefined): void {
    const hc = this.config.healthCheck;
    for (const host of this.cluster.hosts) {
      const old = prev?.checks.get(host);
      const st: HostCheck = { host, timer: null, running: false, okRun: old?.okRun ?? 0, failRun: old?.failRun ?? 0 };
      if (hc !== undefined) {
        this.checks.set(host, st);
        // Envoy: a host pending its first check is checked at once; one whose first check
        // prepare() ran is next checked an interval later.
        const init = host.cells[host.off + H.HC_INIT];
        this.schedule(st, old !== undefined || init === 2 ? this.nextDelay() : init === 1 ? 0 : hc.initialDelayMs);
      }
    }
    if (prev !== undefined) {
      this.attempts = prev.attempts;
      this.successes = prev.successes;
      this.failures = prev.failures;
    }
    const od = this.config.outlierDetection;
    if (od !== undefined) {
      this.sweep = setInterval(() => this.sweepOutliers(), od.intervalMs);
      this.sweep.unref();
    }
  }

  stop(): void {
    for (const st of this.checks.values()) {
      if (st.timer !== null) clearTimeout(st.timer);
      st.timer = null;
    }
    this.checks.clear();
    if (this.sweep !== null) clearInterval(this.sweep);
    this.sweep = null;
  }

  private nextDelay(): number {
    const hc = this.config.healthCheck;
    if (hc === undefined) return 0;
    return hc.intervalMs + Math.floor(Math.random() * (hc.intervalJitterMs + 1));
  }

  private schedule(st: HostCheck, delay: number): void {
    st.timer = setTimeout(() => this.check(st), delay);
    st.timer.unref();
  }

  private check(st: HostCheck): void {
    st.timer = null;
    const hc = this.config.healthCheck;
    if (hc === undefined || this.checks.get(st.host) !== st) return;
    // Fixed cadence: the next check is due an interval after this one starts, so a host that
    // stops answering is out within interval × unhealthy_threshold (+ the last check's timeout).
    this.schedule(st, this.nextDelay());
    if (st.running) return; // the previous check is still waiting (a timeout above the interval)
    st.running = true;
    this.attempts++;
    const h = st.host;
    Atomics.add(h.cells, h.off + H.HC_ATTEMPT, 1);
    runCheck(this.cluster, h, hc, (r) => {
      st.running = false;
      if (this.checks.get(h) !== st) return; // stopped meanwhile
      this.result(st, r);
    });
  }

  private result(st: HostCheck, r: CheckResult): void {
    const hc = this.config.healthCheck;
    if (hc === undefined) return;
    const h = st.host;
    // Envoy: the first result of a new host ends its pending state; a success alone brings it in.
    const first = Atomics.compareExchange(h.cells, h.off + H.HC_INIT, 1, 2) === 1;
    if (r === CheckResult.Ok) {
      this.successes++;
      Atomics.add(h.cells, h.off + H.HC_SUCCESS, 1);
      st.failRun = 0;
      st.okRun++;
      if ((h.cells[h.off + H.STATE] & F.FAILED_HC) !== 0 && (first || st.okRun >= hc.healthyThreshold)) {
        h.times[h.toff + T.HEALTHY_SINCE] = Date.now(); // slow start begins (before the flag clears)
        Atomics.store(h.cells, h.off + H.HC_REASON, 0);
        clearFlag(h.cells, h.off, h.clusterOff, F.FAILED_HC);
        this.svc.log?.info({ cluster: this.cluster.name, host: h.address }, 'health check: host is healthy again');
      }
      return;
    }
    this.failures++;
    Atomics.add(h.cells, h.off + H.HC_FAILURE, 1);
    Atomics.store(h.cells, h.off + H.HC_REASON, r);
    st.okRun = 0;
    st.failRun++;
    if (st.failRun >= hc.unhealthyThreshold && setFlag(h.cells, h.off, h.clusterOff, F.FAILED_HC)) {
      this.svc.log?.warn({ cluster: this.cluster.name, host: h.address, reason: HC_FAILURES[r] }, 'health check: host is unhealthy');
    }
  }

  /** One fault_tolerance time window (MOSN's measure model, per cluster). */
  faultTolerance(ft: FaultToleranceConfig, now = Date.now()): void {
    const hosts = this.cluster.hosts;
    let out = 0;
    for (const h of hosts) {
      const c = h.cells;
      if ((c[h.off + H.STATE] & F.EJECTED) === 0 || c[h.off + H.EJECT_REASON] !== EjectReason.FaultTolerance) continue;
      if (now >= h.times[h.toff + T.EJECTED_UNTIL]) {
        clearFlag(c, h.off, h.clusterOff, F.EJECTED);
        this.svc.log?.info({ cluster: this.cluster.name, host: h.address }, 'fault_tolerance: host recovered');
      } else out++;
    }
    // Window counts (a host taken out is not judged, as MOSN skips unhealthy ones).
    const calls: number[] = [];
    const errors: number[] = [];
    let sumCall = 0;
    let sumErr = 0;
    for (const h of hosts) {
      const r = Atomics.exchange(h.cells, h.off + H.FT_RQ, 0);
      const e = Atomics.exchange(h.cells, h.off + H.FT_ERR, 0);
      const judged = r >= ft.leastWindowCount && (h.cells[h.off + H.STATE] & F.EJECTED) === 0;
      calls.push(judged ? r : 0);
      errors.push(e);
      if (judged) {
        sumCall += r;
        sumErr += e;
      }
    }
    if (sumCall === 0 || sumErr === 0) return;
    const mean = sumErr / sumCall;
    hosts.forEach((h, i) => {
      if (calls[i] === 0 || out >= ft.maxIpCount) return;
      const rate = errors[i] / calls[i];
      if (rate / mean < ft.exceptionRateMultiple) return;
      if (!setFlag(h.cells, h.off, h.clusterOff, F.EJECTED)) return;
      h.times[h.toff + T.EJECTED_UNTIL] = now + ft.recoverTimeMs;
      countEjection(h, EjectReason.FaultTolerance);
      out++;
      this.svc.log?.warn({ cluster: this.cluster.name, host: h.address, rate, mean }, 'fault_tolerance: host taken out');
    });
  }

  /** One outlier-detection interval: end ejections, decay multipliers, rate-based ejection. */
  sweepOutliers(now = Date.now()): void {
    const od = this.config.outlierDetection;
    if (od === undefined) return;
    const hosts = this.cluster.hosts;
    for (const h of hosts) {
      const c = h.cells;
      if ((c[h.off + H.STATE] & F.EJECTED) !== 0) {
        if (now >= h.times[h.toff + T.EJECTED_UNTIL]) {
          clearFlag(c, h.off, h.clusterOff, F.EJECTED);
          this.svc.log?.info({ cluster: this.cluster.name, host: h.address }, 'outlier detection: host back in');
        }
      } else if (c[h.off + H.EJECT_MULT] > 0) Atomics.sub(c, h.off + H.EJECT_MULT, 1);
    }
    if (!od.countRates) return;
    const n = hosts.length;
    // Read-and-reset of every host's interval counts (allocation: once per interval, not per request).
    const rq = new Array<number>(n);
    const err = new Array<number>(n);
    const rqL = new Array<number>(n);
    const errL = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const h = hosts[i];
      rq[i] = Atomics.exchange(h.cells, h.off + H.RQ, 0);
      err[i] = Atomics.exchange(h.cells, h.off + H.ERR, 0);
      rqL[i] = Atomics.exchange(h.cells, h.off + H.RQ_LOCAL, 0);
      errL[i] = Atomics.exchange(h.cells, h.off + H.ERR_LOCAL, 0);
    }
    this.rateRules(od, rq, err, false);
    if (od.splitExternalLocalOriginErrors) this.rateRules(od, rqL, errL, true);
    const fr = od.failureRate;
    if (fr === undefined) return;
    // MOSN fault_tolerance's rule: rate above `rateMultiple` × the cluster's mean rate.
    let sumRq = 0;
    let sumErr = 0;
    for (let i = 0; i < n; i++) {
      sumRq += rq[i];
      sumErr += err[i];
    }
    if (sumRq === 0 || sumErr === 0) return;
    const mean = sumErr / sumRq;
    for (let i = 0; i < n; i++) {
      const h = hosts[i];
      if (rq[i] < fr.minRequests || (h.cells[h.off + H.STATE] & F.EJECTED) !== 0) continue;
      if (err[i] / rq[i] > mean * fr.rateMultiple && eject(this.cluster, h, od, EjectReason.FailureRate, 100)) {
        this.svc.log?.warn({ cluster: this.cluster.name, host: h.address, rate: err[i] / rq[i], mean }, 'outlier detection: host ejected (failure rate)');
      }
    }
  }

  /**
   * Envoy's success-rate and failure-percentage rules over one interval's counts (`rq`, `err`
   * by host index; `local`: the local-origin counts of split mode). Hosts already ejected are
   * not judged. Success rate: with at least minimum_hosts hosts of request_volume requests, a
   * host whose success rate is below mean − stdev_factor × stdev (population) is an outlier.
   * Failure percentage: with at least its own minimum_hosts such hosts, a host failing at least
   * threshold % of its requests is one.
   */
  private rateRules(od: OutlierDetectionConfig, rq: readonly number[], err: readonly number[], local: boolean): void {
    const hosts = this.cluster.hosts;
    const sr = od.successRate;
    const fp = od.failurePercentage;
    const srValid: number[] = [];
    const fpValid: number[] = [];
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i];
      if ((h.cells[h.off + H.STATE] & F.EJECTED) !== 0) continue;
      if (rq[i] >= sr.requestVolume) srValid.push(i);
      if (rq[i] >= fp.requestVolume) fpValid.push(i);
    }
    const rate = (i: number): number => (100 * (rq[i] - err[i])) / rq[i];
    const out = (i: number, reason: EjectReason, enforcing: number, detail: Record<string, number>): void => {
      const h = hosts[i];
      if ((h.cells[h.off + H.STATE] & F.EJECTED) !== 0) return; // ejected by the other rule just now
      if (eject(this.cluster, h, od, reason, enforcing)) {
        this.svc.log?.warn({ cluster: this.cluster.name, host: h.address, reason: EJECT_REASONS[reason], success_rate: rate(i), ...detail }, 'outlier detection: host ejected');
      }
    };
    if (srValid.length > 0 && srValid.length >= sr.minimumHosts) {
      let sum = 0;
      for (const i of srValid) sum += rate(i);
      const mean = sum / srValid.length;
      let sq = 0;
      for (const i of srValid) sq += (rate(i) - mean) ** 2;
      const threshold = mean - sr.stdevFactor * Math.sqrt(sq / srValid.length);
      const reason = local ? EjectReason.LocalOriginSuccessRate : EjectReason.SuccessRate;
      for (const i of srValid) if (rate(i) < threshold) out(i, reason, local ? sr.enforcingLocalOrigin : sr.enforcing, { mean, threshold });
    }
    if (fpValid.length > 0 && fpValid.length >= fp.minimumHosts) {
      const reason = local ? EjectReason.LocalOriginFailurePercentage : EjectReason.FailurePercentage;
      for (const i of fpValid) if (100 - rate(i) >= fp.threshold) out(i, reason, local ? fp.enforcingLocalOrigin : fp.enforcing, { threshold: fp.threshold });
    }
  }
}

/** Per-host health as the admin API shows it. */
export interface HostHealthReport {
  readonly address: string;
  readonly weight: number;
  /** "healthy", "unhealthy" (active check), "ejected" (outlier detection), or "unhealthy,ejected". */
  readonly health: string;
  readonly failed_active_health_check: boolean;
  /** Envoy semantics: a new host whose first check has not answered yet (unhealthy meanwhile). */
  readonly pending_active_health_check?: true;
  readonly ejected: boolean;
  readonly last_check_failure?: string;
  readonly ejection_reason?: string;
  readonly ejected_until?: string;
  readonly ejections_total: number;
  readonly health_check: { readonly attempt: number; readonly success: number; readonly failure: number };
}

export class HealthService {
  private clusters = new Map<string, ClusterHealth>();
  /** Scratch counters of the main thread's Cluster copies (check connections count nowhere else). */
  private readonly counters = new Float64Array(CLUSTER_STATS.length + 16);

  constructor(readonly log?: HealthLog) {}

  private ft: FaultToleranceConfig | null = null;
  private ftTimer: NodeJS.Timeout | null = null;

  /**
   * Follows the clusters of a new config (or a new host list), and the process's MOSN
   * fault_tolerance rule (src/filters/stream/fault_tolerance/config.ts faultToleranceOf).
   */
  update(configs: readonly ClusterConfig[], faultTolerance: FaultToleranceConfig | null = null): void {
    if (this.ftTimer !== null && (faultTolerance === null || this.ft === null || faultTolerance.timeWindowMs !== this.ft.timeWindowMs)) {
      clearInterval(this.ftTimer);
      this.ftTimer = null;
    }
    this.ft = faultTolerance;
    if (faultTolerance !== null && this.ftTimer === null) {
      this.ftTimer = setInterval(() => {
        const ft = this.ft;
        if (ft !== null) for (const ch of this.clusters.values()) ch.faultTolerance(ft);
      }, faultTolerance.timeWindowMs);
      this.ftTimer.unref();
    }
    const next = new Map<string, ClusterHealth>();
    for (const cfg of configs) {
      const prev = this.clusters.get(cfg.name);
      const cluster = new Cluster(cfg, this.counters, 0, prev?.cluster);
      const ch = new ClusterHealth(cluster, this);
      next.set(cfg.name, ch);
    }
    for (const [name, old] of this.clusters) {
      old.stop();
      const cur = next.get(name);
      if (old.cluster.tls !== null && cur?.cluster.tls !== old.cluster.tls) old.cluster.tls.close();
      // Hosts that are no longer checked (check removed, host removed) are not held out by old results.
      const kept = cur !== undefined && cur.config.healthCheck !== undefined ? new Set(cur.cluster.hosts) : new Set<Host>();
      for (const h of old.cluster.hosts) {
        if (kept.has(h)) continue;
        clearFlag(h.cells, h.off, h.clusterOff, F.FAILED_HC);
        Atomics.store(h.cells, h.off + H.HC_INIT, 0); // back later = a new host again (Envoy)
      }
      if (cur === undefined || (cur.config.outlierDetection === undefined && faultTolerance === null)) {
        for (const h of old.cluster.hosts) clearFlag(h.cells, h.off, h.clusterOff, F.EJECTED);
      }
    }
    for (const [name, ch] of next) ch.start(this.clusters.get(name));
    this.clusters = next;
  }

  /**
   * Before a config with Envoy-semantics clusters (HealthCheckConfig.startUnhealthy) is
   * committed: their new hosts are marked pending and checked once now, so the workers start
   * with the first round's verdict (Envoy's cluster warming waits for it). Resolves when every
   * first check has answered, or after the longest check timeout (capped at `capMs`).
   */
  prepare(configs: readonly ClusterConfig[], capMs = 5000): Promise<void> {
    const waits: Promise<void>[] = [];
    let bound = 0;
    for (const cfg of configs) {
      const hc = cfg.healthCheck;
      if (hc === undefined || hc.startUnhealthy !== true) continue;
      const running = this.clusters.get(cfg.name)?.cluster;
      if (running !== undefined && running.config.healthCheck?.startUnhealthy === true) {
        const have = new Set(running.hosts.map((h) => h.address));
        if (cfg.hosts.every((hc) => have.has(hostAddress(hc)))) continue; // no new host: nothing to wait for
      }
      const copy = new Cluster(cfg, this.counters, 0, running);
      const pending = copy.hosts.filter((h) => h.cells[h.off + H.HC_INIT] === 1 && h.cells[h.off + H.HC_ATTEMPT] === 0);
      if (pending.length === 0) {
        if (copy.tls !== null && copy.tls !== running?.tls) copy.tls.close();
        continue;
      }
      bound = Math.max(bound, hc.timeoutMs);
      const done = pending.map((h) => new Promise<void>((resolve) => {
        Atomics.add(h.cells, h.off + H.HC_ATTEMPT, 1);
        runCheck(copy, h, hc, (r) => {
          if (Atomics.compareExchange(h.cells, h.off + H.HC_INIT, 1, 2) === 1) {
            if (r === CheckResult.Ok) {
              Atomics.add(h.cells, h.off + H.HC_SUCCESS, 1);
              h.times[h.toff + T.HEALTHY_SINCE] = Date.now();
              clearFlag(h.cells, h.off, h.clusterOff, F.FAILED_HC);
            } else {
              Atomics.add(h.cells, h.off + H.HC_FAILURE, 1);
              Atomics.store(h.cells, h.off + H.HC_REASON, r);
            }
          }
          resolve();
        });
      }));
      waits.push(Promise.all(done).then(() => {
        if (copy.tls !== null && copy.tls !== running?.tls) copy.tls.close();
      }));
    }
    if (waits.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(bound + 100, capMs));
      timer.unref();
      void Promise.all(waits).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  stop(): void {
    if (this.ftTimer !== null) clearInterval(this.ftTimer);
    this.ftTimer = null;
    for (const ch of this.clusters.values()) {
      ch.stop();
      if (ch.cluster.tls !== null) ch.cluster.tls.close();
    }
    this.clusters.clear();
  }

  /** Runs one outlier-detection interval of `cluster` now (tests; the timer does the same). */
  sweepOutliers(cluster: string, now = Date.now()): void {
    this.clusters.get(cluster)?.sweepOutliers(now);
  }

  /** Hosts of every cluster with their health (admin /api/v1/clusters). */
  report(): Record<string, { hosts: HostHealthReport[]; health_check?: string; outlier_detection: boolean }> {
    const out: Record<string, { hosts: HostHealthReport[]; health_check?: string; outlier_detection: boolean }> = {};
    for (const [name, ch] of this.clusters) {
      const hosts = ch.cluster.hosts.map((h) => hostReport(h));
      const hc = ch.config.healthCheck;
      out[name] = hc !== undefined ? { hosts, health_check: hc.kind, outlier_detection: ch.config.outlierDetection !== undefined } : { hosts, outlier_detection: ch.config.outlierDetection !== undefined };
    }
    return out;
  }

  /** Cluster-level counters and gauges, Envoy's names (stats JSON `clusters` section merges them). */
  clusterStats(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [name, ch] of this.clusters) {
      let ejectedActive = 0;
      let ejections = 0;
      let healthy = 0;
      let failedHc = 0;
      for (const h of ch.cluster.hosts) {
        const st = h.cells[h.off + H.STATE];
        if (st === 0) healthy++;
        if ((st & F.FAILED_HC) !== 0) failedHc++;
        if ((st & F.EJECTED) !== 0) ejectedActive++;
        ejections += h.cells[h.off + H.EJECTIONS_TOTAL];
      }
      out[name] = {
        'health_check.attempt': ch.attempts,
        'health_check.success': ch.successes,
        'health_check.failure': ch.failures,
        'health_check.healthy': ch.config.healthCheck !== undefined ? ch.cluster.hosts.length - failedHc : ch.cluster.hosts.length,
        'outlier_detection.ejections_active': ejectedActive,
        'outlier_detection.ejections_total': ejections,
        membership_healthy: healthy,
        membership_total: ch.cluster.hosts.length,
        ...clusterCounters(name),
      };
    }
    return out;
  }

  /** The same, plus per-host health, in Prometheus text format. */
  prometheus(): string {
    const parts: string[] = [];
    const stats = this.clusterStats();
    const families: [string, string, 'counter' | 'gauge'][] = [
      ['health_check.attempt', 'outrigger_cluster_health_check_attempt_total', 'counter'],
      ['health_check.success', 'outrigger_cluster_health_check_success_total', 'counter'],
      ['health_check.failure', 'outrigger_cluster_health_check_failure_total', 'counter'],
      ['health_check.healthy', 'outrigger_cluster_health_check_healthy', 'gauge'],
      ['outlier_detection.ejections_active', 'outrigger_cluster_outlier_detection_ejections_active', 'gauge'],
      ['outlier_detection.ejections_total', 'outrigger_cluster_outlier_detection_ejections_total', 'counter'],
      ['membership_healthy', 'outrigger_cluster_membership_healthy', 'gauge'],
      ['membership_total', 'outrigger_cluster_membership_total', 'gauge'],
    ];
    const names = Object.keys(stats);
    if (names.length === 0) return '';
    for (const [key, prom, type] of families) {
      parts.push(`# HELP ${prom} ${key.replace(/[._]/g, ' ')}\n# TYPE ${prom} ${type}\n`);
      for (const n of names) parts.push(`${prom}{cluster="${escapeLabelValue(n)}"} ${stats[n][key]}\n`);
    }
    // Ejections by kind: one family each for enforced and detected, labelled by cluster and type.
    const kinds: [string, string, string][] = [
      ['enforced', 'outrigger_cluster_outlier_detection_ejections_enforced_by_type_total', 'ejections enforced, by kind (outlier detection rules, fault_tolerance)'],
      ['detected', 'outrigger_cluster_outlier_detection_ejections_detected_by_type_total', 'outliers detected (ejected or not), by kind'],
    ];
    for (const [what, prom, help] of kinds) {
      parts.push(`# HELP ${prom} ${help}\n# TYPE ${prom} counter\n`);
      for (const n of names) {
        for (let r = 1; r < EJECT_REASONS.length; r++) {
          if (r === EjectReason.FaultTolerance && what === 'detected') continue;
          parts.push(`${prom}{cluster="${escapeLabelValue(n)}",type="${EJECT_REASONS[r]}"} ${stats[n][`outlier_detection.ejections_${what}_${EJECT_REASONS[r]}`]}\n`);
        }
      }
    }
    parts.push('# HELP outrigger_cluster_outlier_detection_ejections_overflow_total ejections refused by max_ejection_percent\n# TYPE outrigger_cluster_outlier_detection_ejections_overflow_total counter\n');
    for (const n of names) parts.push(`outrigger_cluster_outlier_detection_ejections_overflow_total{cluster="${escapeLabelValue(n)}"} ${stats[n]['outlier_detection.ejections_overflow']}\n`);
    // Mirror copies by target cluster: sent, failed, dropped by bound.
    parts.push('# HELP outrigger_cluster_mirror_sent_total mirror copies sent to the cluster\n# TYPE outrigger_cluster_mirror_sent_total counter\n');
    for (const n of names) parts.push(`outrigger_cluster_mirror_sent_total{cluster="${escapeLabelValue(n)}"} ${stats[n]['mirror.sent']}\n`);
    parts.push('# HELP outrigger_cluster_mirror_failed_total mirror copies that failed upstream\n# TYPE outrigger_cluster_mirror_failed_total counter\n');
    for (const n of names) parts.push(`outrigger_cluster_mirror_failed_total{cluster="${escapeLabelValue(n)}"} ${stats[n]['mirror.failed']}\n`);
    parts.push('# HELP outrigger_cluster_mirror_dropped_total mirror copies not sent, by the bound that dropped them\n# TYPE outrigger_cluster_mirror_dropped_total counter\n');
    for (const n of names) {
      for (const [key] of MIRROR_STATS) {
        if (key.startsWith('mirror.dropped_')) parts.push(`outrigger_cluster_mirror_dropped_total{cluster="${escapeLabelValue(n)}",bound="${key.slice('mirror.dropped_'.length)}"} ${stats[n][key]}\n`);
      }
    }
    // Per host: one family each (a family's samples stay together, as the text format requires).
    const hostFamilies: [string, string, (st: number) => number][] = [
      ['outrigger_host_healthy', '1 when the host takes traffic (not failing health checks, not ejected)', (st) => (st === 0 ? 1 : 0)],
      ['outrigger_host_failed_active_health_check', '1 while active health checks say unhealthy', (st) => ((st & F.FAILED_HC) !== 0 ? 1 : 0)],
      ['outrigger_host_ejected', '1 while ejected by outlier detection or fault_tolerance', (st) => ((st & F.EJECTED) !== 0 ? 1 : 0)],
    ];
    for (const [prom, help, value] of hostFamilies) {
      parts.push(`# HELP ${prom} ${help}\n# TYPE ${prom} gauge\n`);
      for (const [name, ch] of this.clusters) {
        for (const h of ch.cluster.hosts) parts.push(`${prom}{cluster="${escapeLabelValue(name)}",host="${escapeLabelValue(h.address)}"} ${value(h.cells[h.off + H.STATE])}\n`);
      }
    }
    return parts.join('');
  }
}

/**
 * A cluster's ejection counters from its shared entry (every worker's ejections and the main
 * thread's), Envoy's names: ejections_enforced_<kind>, ejections_detected_<kind> (fault_tolerance
 * has no detection apart from its ejection), ejections_enforced_total, ejections_overflow; and the
 * mirror counters of the cluster as a mirror target (mirror.sent, mirror.dropped_*, mirror.failed).
 */
function clusterCounters(cluster: string): Record<string, number> {
  const t = healthTable();
  const co = t.entry(`${cluster}\0`);
  const out: Record<string, number> = {};
  let total = 0;
  for (let r = 1; r < EJECT_REASONS.length; r++) {
    const enforced = co >= 0 ? Atomics.load(t.cells, co + H.ENFORCED + r) : 0;
    total += enforced;
    out[`outlier_detection.ejections_enforced_${EJECT_REASONS[r]}`] = enforced;
    if (r !== EjectReason.FaultTolerance) out[`outlier_detection.ejections_detected_${EJECT_REASONS[r]}`] = co >= 0 ? Atomics.load(t.cells, co + H.DETECTED + r) : 0;
  }
  out['outlier_detection.ejections_enforced_total'] = total;
  out['outlier_detection.ejections_overflow'] = co >= 0 ? Atomics.load(t.cells, co + H.OVERFLOW) : 0;
  // Copies the mirror filter / router sent to this cluster (as a mirror target).
  for (const [key, cell] of MIRROR_STATS) out[key] = co >= 0 ? Atomics.load(t.cells, co + cell) : 0;
  return out;
}

function hostReport(h: Host): HostHealthReport {
  const st = h.cells[h.off + H.STATE];
  const failed = (st & F.FAILED_HC) !== 0;
  const ejected = (st & F.EJECTED) !== 0;
  const hcReason = h.cells[h.off + H.HC_REASON];
  const ejReason = h.cells[h.off + H.EJECT_REASON];
  const base: HostHealthReport = {
    address: h.address,
    weight: h.weight,
    health: st === 0 ? 'healthy' : [failed ? 'unhealthy' : '', ejected ? 'ejected' : ''].filter((x) => x !== '').join(','),
    failed_active_health_check: failed,
    ejected,
    ejections_total: h.cells[h.off + H.EJECTIONS_TOTAL],
    health_check: { attempt: h.cells[h.off + H.HC_ATTEMPT], success: h.cells[h.off + H.HC_SUCCESS], failure: h.cells[h.off + H.HC_FAILURE] },
  };
  return {
    ...base,
    ...(h.cells[h.off + H.HC_INIT] === 1 ? { pending_active_health_check: true as const } : {}),
    ...(hcReason > 0 ? { last_check_failure: HC_FAILURES[hcReason] } : {}),
    ...(ejReason > 0 ? { ejection_reason: EJECT_REASONS[ejReason] } : {}),
    ...(ejected ? { ejected_until: new Date(h.times[h.toff + T.EJECTED_UNTIL]).toISOString() } : {}),
  };
}
