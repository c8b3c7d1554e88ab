/**
 * Load balancers shared by every protocol. A balancer picks a Host for one new upstream
 * connection or request; it never allocates on `choose()`.
 *
 *  LB_ROUNDROBIN           hosts in turn, weights ignored (as MOSN does)
 *  LB_RANDOM               uniform random host
 *  LB_WEIGHTED_ROUNDROBIN  smooth weighted round robin (each pick: every host gains its
 *                          weight, the largest current value wins and loses the total)
 *  LB_LEAST_REQUEST        power of two choices on active requests (random two, fewer wins)
 *
 *  LB_ORIGINAL_DST         the downstream connection's original destination (or an HTTP
 *                          header), hosts made on demand: src/upstream/original-dst.ts
 *
 * Every balancer skips hosts whose `healthy` is false (failed active health checks, or ejected
 * by outlier detection; shared by every worker, see ./health/shared.ts), unless fewer than the
 * panic threshold (Envoy's healthy_panic_threshold, default 50%) of the hosts are healthy: then
 * it picks among all of them (panic mode) rather than overloading the few left. A fully
 * healthy cluster costs one shared Int32 load per pick for this.
 *
 * Slow start (cluster slow_start, ./slow-start.ts) scales the weight of a host that a health
 * check brought back recently, in LB_WEIGHTED_ROUNDROBIN (weights are ignored by the others).
 */
import type * as net from 'node:net';
import type { HostConfig, LbType, SlowStartConfig } from '../config/types';
import { clearFlag, F, H, healthTable, privateEntry, setFlag, T, HealthTable } from './health/shared';
import { slowStartFactor } from './slow-start';
import type { MetadataMatch } from './subset-match';

/**
 * A pool of upstream connections to one host (HTTP/1.1, HTTP/2, undici, RPC multiplexed),
 * registered on its Host under a protocol key and owned through the Cluster (cluster.ts).
 */
export interface UpstreamPool {
  /**
   * The pool left its host's registry (its host or cluster went away, or its cluster's
   * connection settings changed): take no new requests, let those in flight finish, then
   * close every connection.
   */
  drain(): void;
}

/**
 * One upstream host of a cluster in one worker. Its identity is its address: a config update
 * that changes only the weight keeps the object (with its pools, active counts and health).
 */
export class Host {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Updated in place by a new snapshot of the cluster's hosts. */
  weight: number;
  /** Active requests (or, for L4, active connections) from this worker to the host. */
  active = 0;
  /** Connection pools to this host by protocol key; see Cluster.pool / addPool. */
  readonly pools = new Map<string, UpstreamPool>();
  /** The host's shared health entry (./health/shared.ts): Int32 cells at `off`, times at `toff`. */
  readonly cells: Int32Array;
  readonly off: number;
  readonly times: Float64Array;
  readonly toff: number;
  /** Its cluster's entry in `cells` (DEGRADED count), -1 when private. */
  readonly clusterOff: number;

  /** `cluster`: the cluster's name, which keys the shared health entry (none: a private entry). */
  constructor(cfg: HostConfig, cluster?: string) {
    this.host = cfg.address.host;
    this.port = cfg.address.port;
    this.weight = cfg.weight;
    this.address = hostAddress(cfg);
    const t = cluster !== undefined ? healthTable() : null;
    const off = t !== null ? t.entry(`${cluster}\0${this.address}`) : -1;
    const coff = t !== null && off >= 0 ? t.entry(`${cluster}\0`) : -1;
    if (t !== null && off >= 0 && coff >= 0) {
      this.cells = t.cells;
      this.off = off;
      this.times = t.times;
      this.toff = HealthTable.timeIndex(off);
      this.clusterOff = coff;
    } else {
      const p = privateEntry();
      this.cells = p.cells;
      this.off = 0;
      this.times = p.times;
      this.toff = 0;
      this.clusterOff = -1;
    }
  }

  /** Neither failing active health checks nor ejected (one Int32 load of the shared entry). */
  get healthy(): boolean {
    return this.cells[this.off + H.STATE] === 0;
  }

  /** Marks the host as failing (or passing) active health checks. */
  set healthy(v: boolean) {
    if (v) clearFlag(this.cells, this.off, this.clusterOff, F.FAILED_HC);
    else setFlag(this.cells, this.off, this.clusterOff, F.FAILED_HC);
  }

  /** When a health check last brought the host back (ms since the epoch; 0 = never). */
  get healthySince(): number {
    return this.times[this.toff + T.HEALTHY_SINCE];
  }
}

/** A host's identity: `host:port` (`[v6]:port`). */
export function hostAddress(cfg: HostConfig): string {
  return cfg.address.host.includes(':') ? `[${cfg.address.host}]:${cfg.address.port}` : `${cfg.address.host}:${cfg.address.port}`;
}

/**
 * What a balancer may read of the connection or request it picks for. Only LB_ORIGINAL_DST and
 * subset load balancing (metadataMatch) read it; callers pass an object they already have (the session itself), not a new one.
 */
export interface LbContext {
  /** The downstream socket (its original destination: src/network/original-dst.ts). */
  readonly downstream: net.Socket | null;
  /** HTTP only: a request header by lower-case name (undefined = absent). */
  header?(name: string): string | undefined;
  /** The route's subset match criteria (metadata_match; ./subset.ts); absent or null = none. */
  readonly metadataMatch?: MetadataMatch | null;
}

export interface LoadBalancer {
  /**
   * Returns null when the cluster has no host, no healthy one and the panic threshold is 0, or
   * (LB_ORIGINAL_DST) no destination in `ctx`.
   */
  choose(ctx?: LbContext | null): Host | null;
}

export interface LbOptions {
  /** Percent of healthy hosts below which health is ignored (default 50; 0 = never). */
  readonly panicThreshold?: number;
  readonly slowStart?: SlowStartConfig;
}

export const DEFAULT_PANIC_THRESHOLD = 50;

/**
 * Whether health is ignored on this pick: fewer than `threshold` percent of `hosts` healthy.
 * The cluster's DEGRADED count spares the host loop while every host is healthy.
 */
function panic(hosts: readonly Host[], threshold: number): boolean {
  const n = hosts.length;
  const h0 = hosts[0];
  if (h0.clusterOff >= 0 && h0.cells[h0.clusterOff + H.DEGRADED] <= 0) return false;
  let healthy = 0;
  for (let i = 0; i < n; i++) if (hosts[i].healthy) healthy++;
  if (healthy === 0) return threshold > 0;
  return healthy * 100 < threshold * n;
}

/** Random integer in [0, n). Math.random is fast enough here and needs no state. */
function rand(n: number): number {
  return (Math.random() * n) | 0;
}

class RoundRobin implements LoadBalancer {
  private next = 0;
  constructor(
    private readonly hosts: readonly Host[],
    private readonly threshold: number,
  ) {
    this.next = hosts.length > 0 ? rand(hosts.length) : 0; // workers start at different hosts
  }
  choose(): Host | null {
    const n = this.hosts.length;
    if (n === 0) return null;
    const start = this.next;
    const all = panic(this.hosts, this.threshold);
    for (let i = 0; i < n; i++) {
      const h = this.hosts[this.next];
      this.next = this.next + 1 === n ? 0 : this.next + 1;
      if (all || h.healthy) return h;
    }
    // None healthy (health changed since panic()): in turn among all; the loop brought `next` back to `start`.
    if (this.threshold === 0) return null; // panic disabled (Envoy threshold 0): no host
    this.next = start + 1 === n ? 0 : start + 1;
    return this.hosts[start];
  }
}

class RandomLb implements LoadBalancer {
  constructor(
    private readonly hosts: readonly Host[],
    private readonly threshold: number,
  ) {}
  choose(): Host | null {
    const n = this.hosts.length;
    if (n === 0) return null;
    const start = rand(n);
    if (panic(this.hosts, this.threshold)) return this.hosts[start];
    for (let i = 0; i < n; i++) {
      const h = this.hosts[(start + i) % n];
      if (h.healthy) return h;
    }
    return this.threshold > 0 ? this.hosts[start] : null; // none healthy: any (panic), none when panic is disabled
  }
}

class SmoothWeightedRoundRobin implements LoadBalancer {
  private readonly current: Float64Array;
  constructor(
    private readonly hosts: readonly Host[],
    private readonly threshold: number,
    private readonly slowStart: SlowStartConfig | null,
  ) {
    this.current = new Float64Array(hosts.length);
  }
  choose(): Host | null {
    if (this.hosts.length === 0) return null;
    const h = panic(this.hosts, this.threshold) ? null : this.pick(true);
    return h !== null || this.threshold === 0 ? h : this.pick(false); // panic: among all
  }

  private pick(healthyOnly: boolean): Host | null {
    let total = 0;
    let best = -1;
    const ss = this.slowStart;
    const now = ss !== null ? Date.now() : 0;
    for (let i = 0; i < this.hosts.length; i++) {
      const h = this.hosts[i];
      if ((healthyOnly && !h.healthy) || h.weight <= 0) continue;
      const w = ss === null ? h.weight : h.weight * slowStartFactor(ss, h.healthySince, now);
      this.current[i] += w;
      total += w;
      if (best < 0 || this.current[i] > this.current[best]) best = i;
    }
    if (best < 0) return null;
    this.current[best] -= total;
    return this.hosts[best];
  }
}

class LeastRequest implements LoadBalancer {
  constructor(
    private readonly hosts: readonly Host[],
    private readonly threshold: number,
  ) {}
  choose(): Host | null {
    const n = this.hosts.length;
    if (n === 0) return null;
    if (n === 1) return this.hosts[0];
    const a = this.hosts[rand(n)];
    let b = this.hosts[rand(n - 1)];
    if (b === a) b = this.hosts[n - 1];
    if (panic(this.hosts, this.threshold)) return b.active < a.active ? b : a;
    if (a.healthy !== b.healthy) return a.healthy ? a : b;
    if (!a.healthy) {
      // Both unhealthy: a healthy one elsewhere, else the less loaded of the two (panic).
      for (let i = 0; i < n; i++) if (this.hosts[i].healthy) return this.hosts[i];
      if (this.threshold === 0) return null;
    }
    return b.active < a.active ? b : a;
  }
}

export function createLoadBalancer(type: LbType, hosts: readonly Host[], opts: LbOptions = {}): LoadBalancer {
  const t = opts.panicThreshold ?? DEFAULT_PANIC_THRESHOLD;
  switch (type) {
    case 'LB_ROUNDROBIN':
      return new RoundRobin(hosts, t);
    case 'LB_RANDOM':
      return new RandomLb(hosts, t);
    case 'LB_WEIGHTED_ROUNDROBIN':
      return new SmoothWeightedRoundRobin(hosts, t, opts.slowStart ?? null);
    case 'LB_LEAST_REQUEST':
      return new LeastRequest(hosts, t);
    case 'LB_ORIGINAL_DST':
      throw new Error('LB_ORIGINAL_DST is built by its cluster (src/upstream/original-dst.ts)');
  }
}
