/**
 * Host health shared by every thread of the process: one SharedArrayBuffer, created by the main
 * thread and handed to every worker (WorkerInit.healthSab), holding one entry per (cluster, host
 * address). The main thread's health checker and every worker's outlier detection write it with
 * Atomics; a worker's load balancer reads `Host.healthy` as one Int32 load (no message, no lock).
 *
 * Entries are found by a 64-bit hash of "cluster\0address" in an open-addressing table, claimed
 * with compareExchange by whichever thread meets the host first, and never freed (like the stats
 * slots): a host that comes back finds its entry, health and ejection history again. A full
 * table (HOST_ENTRIES hosts) leaves later hosts with a private entry: always healthy for checks
 * run elsewhere, outlier detection per worker.
 *
 * Per-cluster entries (keyed "cluster\0") count the cluster's hosts that are not healthy, so a
 * balancer of a fully healthy cluster pays one load per pick for the panic threshold.
 */

export const HOST_ENTRIES = 8192;
/** Int32 cells per entry. */
export const STRIDE = 48;
/** Float64 cells per entry. */
const FSTRIDE = 2;

/** Int32 cells of an entry. */
export const H = {
  KEY0: 0,
  KEY1: 1,
  /** Flags (F.*); 0 = healthy. */
  STATE: 2,
  /** Outlier detection: consecutive 5xx, gateway failures, local-origin failures (all workers). */
  C5XX: 3,
  CGW: 4,
  CLOCAL: 5,
  /** Requests and failures since the last sweep (rate-based ejection). */
  RQ: 6,
  ERR: 7,
  /** Ejection multiplier: grows per ejection, decays by one per healthy sweep interval. */
  EJECT_MULT: 8,
  EJECTIONS_TOTAL: 9,
  /** Why the host was last ejected (EjectReason). */
  EJECT_REASON: 10,
  /** Why the last health check failed (HcFailure). */
  HC_REASON: 11,
  HC_ATTEMPT: 12,
  HC_SUCCESS: 13,
  HC_FAILURE: 14,
  /** Per-cluster entries: hosts of the cluster whose STATE is not 0. */
  DEGRADED: 15,
  /** MOSN fault_tolerance: calls and exceptions since the last time window (src/filters/stream/fault_tolerance). */
  FT_RQ: 16,
  FT_ERR: 17,
  /** Split mode: local-origin results and failures since the last sweep (local-origin success rate). */
  RQ_LOCAL: 18,
  ERR_LOCAL: 19,
  /** Per-cluster entries: ejections enforced, by EjectReason (cell ENFORCED + reason). */
  ENFORCED: 20,
  /** Per-cluster entries: ejections detected (enforced or not), by EjectReason (cell DETECTED + reason). */
  DETECTED: 30,
  /** Per-cluster entries: ejections refused by max_ejection_percent. */
  OVERFLOW: 40,
  /**
   * Per-cluster entries of mirror target clusters (src/filters/stream/mirror): copies sent,
   * dropped by each bound (worker max_concurrent, the cluster's max_requests breaker, a body
   * not mirrorable, no host), failed upstream.
   */
  MIRROR_SENT: 41,
  MIRROR_DROP_CONCURRENT: 42,
  MIRROR_DROP_BREAKER: 43,
  MIRROR_DROP_BODY: 44,
  MIRROR_DROP_NO_HOST: 45,
  MIRROR_FAILED: 46,
  /** Envoy's first check of a host (HealthCheckConfig.startUnhealthy): 0 none, 1 pending, 2 done. */
  HC_INIT: 47,
} as const;

/** Stats names of the mirror cells (per mirror target cluster). */
export const MIRROR_STATS: readonly (readonly [string, number])[] = [
  ['mirror.sent', H.MIRROR_SENT],
  ['mirror.dropped_max_concurrent', H.MIRROR_DROP_CONCURRENT],
  ['mirror.dropped_breaker', H.MIRROR_DROP_BREAKER],
  ['mirror.dropped_body', H.MIRROR_DROP_BODY],
  ['mirror.dropped_no_host', H.MIRROR_DROP_NO_HOST],
  ['mirror.failed', H.MIRROR_FAILED],
];

/** Float64 cells (ms since the epoch, so every thread compares them with Date.now()). */
export const T = {
  /** The ejection ends at. */
  EJECTED_UNTIL: 0,
  /** A health check last brought the host back (slow start); 0 = never. */
  HEALTHY_SINCE: 1,
} as const;

/** STATE flags. */
export const F = {
  /** The active health check says unhealthy. */
  FAILED_HC: 1,
  /** Ejected by outlier detection. */
  EJECTED: 2,
} as const;

/** By EjectReason (src/upstream/outlier.ts); Envoy's stat suffixes where Envoy has the kind. */
export const EJECT_REASONS = [
  '', 'consecutive_5xx', 'consecutive_gateway_failure', 'consecutive_local_origin_failure', 'failure_rate', 'fault_tolerance',
  'success_rate', 'failure_percentage', 'local_origin_success_rate', 'failure_percentage_local_origin',
] as const;
export const HC_FAILURES = ['', 'connect_failed', 'timeout', 'bad_status', 'bad_response', 'closed'] as const;

export class HealthTable {
  readonly cells: Int32Array;
  readonly times: Float64Array;

  constructor(readonly sab: SharedArrayBuffer) {
    this.cells = new Int32Array(sab, 0, HOST_ENTRIES * STRIDE);
    this.times = new Float64Array(sab, HOST_ENTRIES * STRIDE * 4, HOST_ENTRIES * FSTRIDE);
  }

  /** The entry's Int32 offset for `key`, claimed when new; -1 when the table is full. */
  entry(key: string): number {
    const k0 = hash(key, 0x811c9dc5) | 1; // never 0: 0 marks a free entry
    const k1 = hash(key, 0x01000193);
    const c = this.cells;
    let i = (k0 >>> 1) % HOST_ENTRIES;
    for (let n = 0; n < HOST_ENTRIES; n++, i = i + 1 === HOST_ENTRIES ? 0 : i + 1) {
      const off = i * STRIDE;
      let cur = Atomics.load(c, off + H.KEY0);
      if (cur === 0) {
        cur = Atomics.compareExchange(c, off + H.KEY0, 0, k0);
        if (cur === 0) {
          Atomics.store(c, off + H.KEY1, k1);
          return off;
        }
      }
      if (cur === k0) {
        // A claimer stores KEY1 right after KEY0: wait for it (a few instructions at most).
        let k = Atomics.load(c, off + H.KEY1);
        for (let spin = 0; k === 0 && spin < 1_000_000; spin++) k = Atomics.load(c, off + H.KEY1);
        if (k === k1) return off;
      }
    }
    return -1;
  }

  /** Float64 index of an entry's times. */
  static timeIndex(off: number): number {
    return (off / STRIDE) * FSTRIDE;
  }
}

/** FNV-1a over UTF-16 code units with a seed. */
function hash(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h | 0;
}

export function newHealthBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HOST_ENTRIES * STRIDE * 4 + HOST_ENTRIES * FSTRIDE * 8);
}

let table: HealthTable | null = null;

/** This thread's view of the process's health table (a worker installs WorkerInit.healthSab before building clusters). */
export function installHealthBuffer(sab: SharedArrayBuffer): void {
  table = new HealthTable(sab);
}

export function healthTable(): HealthTable {
  return (table ??= new HealthTable(newHealthBuffer()));
}

/** A private entry (full table, hosts made outside a cluster): a table of one. */
export function privateEntry(): { cells: Int32Array; times: Float64Array } {
  return { cells: new Int32Array(STRIDE), times: new Float64Array(FSTRIDE) };
}

/**
 * Sets flag `f` on a host entry; counts the host in its cluster's DEGRADED cell when it was
 * healthy. True when the flag was not set before.
 */
export function setFlag(cells: Int32Array, off: number, clusterOff: number, f: number): boolean {
  const before = Atomics.or(cells, off + H.STATE, f);
  if (before === 0 && clusterOff >= 0) Atomics.add(cells, clusterOff + H.DEGRADED, 1);
  return (before & f) === 0;
}

/**
 * A host new to a cluster with Envoy's health-check semantics: unhealthy and pending its first
 * check. Whichever thread meets the host first marks it (once, until the host leaves the cluster).
 */
export function markPendingCheck(cells: Int32Array, off: number, clusterOff: number): void {
  if (clusterOff < 0) return; // a private entry: no checker sees it
  if (Atomics.compareExchange(cells, off + H.HC_INIT, 0, 1) === 0) setFlag(cells, off, clusterOff, F.FAILED_HC);
}

/** Clears flag `f`; uncounts the host from DEGRADED when it becomes healthy. True when it was set. */
export function clearFlag(cells: Int32Array, off: number, clusterOff: number, f: number): boolean {
  const before = Atomics.and(cells, off + H.STATE, ~f);
  if (before === f && clusterOff >= 0) Atomics.sub(cells, clusterOff + H.DEGRADED, 1);
  return (before & f) !== 0;
}
