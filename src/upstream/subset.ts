/**
 * Subset load balancing (cluster lb_subset_config; MOSN pkg/upstream/cluster/subset_loadbalancer.go,
 * Envoy's subset load balancer).
 *
 * Each selector (a set of label keys) makes one subset per distinct combination of values found
 * on the hosts' labels (HostConfig.metadata); a host lacking one of the keys is in no subset of
 * that selector. Every subset has its own balancer of the cluster's lb_type over its hosts, so
 * health, outlier ejection, the panic threshold and slow start apply inside it as in the whole
 * cluster. A request's criteria (the route's metadata_match, ./subset-match.ts) name one subset by
 * exact key set and values; criteria whose keys are no selector's, or whose values no host has,
 * take the fallback: none (the protocol's "no healthy upstream"), every host, or the default
 * subset (hosts carrying every default_subset label). Envoy's per-selector fallback_policy
 * replaces the cluster's when the criteria's keys are that selector's.
 *
 * Built with the host set (./cluster.ts buildHostSet), so it is rebuilt whenever the hosts change
 * (reload, xDS EDS). choose() costs one Map lookup by the criteria's precomputed key.
 */
import type { HostConfig, LbSubsetConfig, LbType, SubsetFallback } from '../config/types';
import { createLoadBalancer, type Host, type LbContext, type LbOptions, type LoadBalancer } from './lb';
import { keySetKey, subsetKey } from './subset-match';

function hasLabels(hc: HostConfig, labels: Readonly<Record<string, string>>, keys: readonly string[]): boolean {
  const m = hc.metadata;
  for (const k of keys) if (m === undefined || m[k] !== labels[k]) return false;
  return true;
}

export class SubsetLoadBalancer implements LoadBalancer {
  /** Subset key -> its balancer. */
  private readonly subsets = new Map<string, LoadBalancer>();
  /** Selector key set -> its own fallback (null: NO_FALLBACK), for selectors that set one. */
  private readonly selectorFallback = new Map<string, LoadBalancer | null>();
  private readonly fallback: LoadBalancer | null;
  /** MOSN: no criteria = every host, and an empty pick in the matched subset falls back. */
  private readonly mosn: boolean;

  constructor(
    cfg: LbSubsetConfig,
    type: LbType,
    configs: readonly HostConfig[],
    hosts: readonly Host[],
    /** The balancer over every host (ANY_ENDPOINT, and MOSN's requests without criteria). */
    readonly full: LoadBalancer,
    opts: LbOptions,
  ) {
    this.mosn = cfg.noCriteria === 'all';
    const members = new Map<string, Host[]>();
    for (const sel of cfg.selectors) {
      for (let i = 0; i < configs.length; i++) {
        const m = configs[i].metadata;
        if (m === undefined || !sel.keys.every((k) => Object.prototype.hasOwnProperty.call(m, k))) continue;
        const key = subsetKey(m, sel.keys);
        const list = members.get(key);
        if (list === undefined) members.set(key, [hosts[i]]);
        else if (!list.includes(hosts[i])) list.push(hosts[i]);
      }
    }
    for (const [key, list] of members) this.subsets.set(key, createLoadBalancer(type, Object.freeze(list), opts));
    let defaultLb: LoadBalancer | null = null;
    const defaultSubset = (): LoadBalancer => {
      if (defaultLb === null) {
        const keys = Object.keys(cfg.defaultSubset);
        const list = hosts.filter((_h, i) => hasLabels(configs[i], cfg.defaultSubset, keys));
        defaultLb = createLoadBalancer(type, Object.freeze(list), opts);
      }
      return defaultLb;
    };
    const policyLb = (p: SubsetFallback): LoadBalancer | null => (p === 'NO_FALLBACK' ? null : p === 'ANY_ENDPOINT' ? full : defaultSubset());
    this.fallback = policyLb(cfg.fallback);
    for (const sel of cfg.selectors) if (sel.fallback !== undefined) this.selectorFallback.set(keySetKey(sel.keys), policyLb(sel.fallback));
  }

  /** Number of subsets built (admin, tests). */
  get subsetCount(): number {
    return this.subsets.size;
  }

  choose(ctx?: LbContext | null): Host | null {
    const m = ctx === undefined || ctx === null ? null : (ctx.metadataMatch ?? null);
    if (m === null) {
      if (this.mosn) return this.full.choose(ctx);
      return this.fallback === null ? null : this.fallback.choose(ctx);
    }
    const lb = this.subsets.get(m.key);
    if (lb !== undefined) {
      const h = lb.choose(ctx);
      if (h !== null || !this.mosn) return h;
    } else if (this.selectorFallback.size > 0) {
      const sf = this.selectorFallback.get(m.keysKey);
      if (sf !== undefined) return sf === null ? null : sf.choose(ctx);
    }
    return this.fallback === null ? null : this.fallback.choose(ctx);
  }
}
