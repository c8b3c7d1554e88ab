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
 * Every balancer skips hosts whose `healthy` is false (set by health checking), unless no
 * host is healthy: then it picks among all of them (panic mode, as Envoy does below its panic
 * threshold) rather than failing every request.
 */
import type * as net from 'node:net';
import type { HostConfig, LbType } from '../config/types';

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
  /** Health status (set by health checking); load balancers skip unhealthy hosts unless all are. */
  healthy = true;
  /** Connection pools to this host by protocol key; see Cluster.pool / addPool. */
  readonly pools = new Map<string, UpstreamPool>();

  constructor(cfg: HostConfig) {
    this.host = cfg.address.host;
    this.port = cfg.address.port;
    this.weight = cfg.weight;
    this.address = hostAddress(cfg);
  }
}

/** A host's identity: `host:port` (`[v6]:port`). */
export function hostAddress(cfg: HostConfig): string {
  return cfg.address.host.includes(':') ? `[${cfg.address.host}]:${cfg.address.port}` : `${cfg.address.host}:${cfg.address.port}`;
}

/**
 * What a balancer may read of the connection or request it picks for. Only LB_ORIGINAL_DST
 * reads it; callers pass an object they already have (the session itself), not a new one.
 */
export interface LbContext {
  /** The downstream socket (its original destination: src/network/original-dst.ts). */
  readonly downstream: net.Socket | null;
  /** HTTP only: a request header by lower-case name (undefined = absent). */
  header?(name: string): string | undefined;
}

export interface LoadBalancer {
  /** Returns null only when the cluster has no host (LB_ORIGINAL_DST: no destination in `ctx`). */
  choose(ctx?: LbContext | null): Host | null;
}

/** Random integer in [0, n). Math.random is fast enough here and needs no state. */
function rand(n: number): number {
  return (Math.random() * n) | 0;
}

class RoundRobin implements LoadBalancer {
  private next = 0;
  constructor(private readonly hosts: readonly Host[]) {
    this.next = hosts.length > 0 ? rand(hosts.length) : 0; // workers start at different hosts
  }
  choose(): Host | null {
    const n = this.hosts.length;
    if (n === 0) return null;
    const start = this.next;
    for (let i = 0; i < n; i++) {
      const h = this.hosts[this.next];
      this.next = this.next + 1 === n ? 0 : this.next + 1;
      if (h.healthy) return h;
    }
    // None healthy: in turn among all (panic); the loop brought `next` back to `start`.
    this.next = start + 1 === n ? 0 : start + 1;
    return this.hosts[start];
  }
}

class RandomLb implements LoadBalancer {
  constructor(private readonly hosts: readonly Host[]) {}
  choose(): Host | null {
    const n = this.hosts.length;
    if (n === 0) return null;
    const start = rand(n);
    for (let i = 0; i < n; i++) {
      const h = this.hosts[(start + i) % n];
      if (h.healthy) return h;
    }
    return this.hosts[start]; // none healthy: any (panic)
  }
}

class SmoothWeightedRoundRobin implements LoadBalancer {
  private readonly current: Float64Array;
  constructor(private readonly hosts: readonly Host[]) {
    this.current = new Float64Array(hosts.length);
  }
  choose(): Host | null {
    const h = this.pick(true);
    return h !== null ? h : this.pick(false); // none healthy: among all (panic)
  }

  private pick(healthyOnly: boolean): Host | null {
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.hosts.length; i++) {
      const h = this.hosts[i];
      if ((healthyOnly && !h.healthy) || h.weight <= 0) continue;
      this.current[i] += h.weight;
      total += h.weight;
      if (best < 0 || this.current[i] > this.current[best]) best = i;
    }
    if (best < 0) return null;
    this.current[best] -= total;
    return this.hosts[best];
  }
}

class LeastRequest implements LoadBalancer {
  constructor(private readonly hosts: readonly Host[]) {}
  choose(): Host | null {
    const n = this.hosts.length;
    if (n === 0) return null;
    if (n === 1) return this.hosts[0];
    const a = this.hosts[rand(n)];
    let b = this.hosts[rand(n - 1)];
    if (b === a) b = this.hosts[n - 1];
    if (a.healthy !== b.healthy) return a.healthy ? a : b;
    if (!a.healthy) {
      // Both unhealthy: a healthy one elsewhere, else the less loaded of the two (panic).
      for (let i = 0; i < n; i++) if (this.hosts[i].healthy) return this.hosts[i];
    }
    return b.active < a.active ? b : a;
  }
}

export function createLoadBalancer(type: LbType, hosts: readonly Host[]): LoadBalancer {
  switch (type) {
    case 'LB_ROUNDROBIN':
      return new RoundRobin(hosts);
    case 'LB_RANDOM':
      return new RandomLb(hosts);
    case 'LB_WEIGHTED_ROUNDROBIN':
      return new SmoothWeightedRoundRobin(hosts);
    case 'LB_LEAST_REQUEST':
      return new LeastRequest(hosts);
    case 'LB_ORIGINAL_DST':
      throw new Error('LB_ORIGINAL_DST is built by its cluster (src/upstream/original-dst.ts)');
  }
}
