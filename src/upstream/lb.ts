/**
 * Load balancers shared by every protocol. A balancer picks a Host for one new upstream
 * connection or request; it never allocates on `choose()`.
 *
 *  LB_ROUNDROBIN           hosts in turn, weights ignored (as MOSN does)
 *  LB_RANDOM               uniform random host
 *  LB_WEIGHTED_ROUNDROBIN  smooth weighted round robin (each pick: every host gains its
 *                          weight, the largest current value wins and loses the total)
 *  LB_LEAST_REQUEST        power of two choices on active requests (random two, fewer wins)
 */
import type { HostConfig, LbType } from '../config/types';

export class Host {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /** Active requests (or, for L4, active connections) from this worker to the host. */
  active = 0;
  healthy = true;

  constructor(cfg: HostConfig) {
    this.host = cfg.address.host;
    this.port = cfg.address.port;
    this.weight = cfg.weight;
    this.address = cfg.address.host.includes(':') ? `[${cfg.address.host}]:${cfg.address.port}` : `${cfg.address.host}:${cfg.address.port}`;
  }
}

export interface LoadBalancer {
  /** Returns null when the cluster has no (healthy) host. */
  choose(): Host | null;
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
    for (let i = 0; i < n; i++) {
      const h = this.hosts[this.next];
      this.next = this.next + 1 === n ? 0 : this.next + 1;
      if (h.healthy) return h;
    }
    return null;
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
    return null;
  }
}

class SmoothWeightedRoundRobin implements LoadBalancer {
  private readonly current: Float64Array;
  constructor(private readonly hosts: readonly Host[]) {
    this.current = new Float64Array(hosts.length);
  }
  choose(): Host | null {
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.hosts.length; i++) {
      const h = this.hosts[i];
      if (!h.healthy || h.weight <= 0) continue;
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
    if (n === 1) return this.hosts[0].healthy ? this.hosts[0] : null;
    const a = this.hosts[rand(n)];
    let b = this.hosts[rand(n - 1)];
    if (b === a) b = this.hosts[n - 1];
    if (!a.healthy) return b.healthy ? b : new RandomLb(this.hosts).choose();
    if (!b.healthy) return a;
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
  }
}
