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
 *
 * Each pick is counted in the cluster's stats (this worker's buffer, src/stats/layout.ts):
 * lb_subsets_selected (the request's subset), lb_subsets_fallback_default_subset,
 * lb_subsets_fallback_any_endpoint (also MOSN's requests without criteria, which go to every
 * host), lb_subsets_fallback (either fallback, Envoy's name) and lb_subsets_no_fallback (no
 * subset, no fallback: no host).
 */
import type { HostConfig, LbSubsetConfig, LbType, SubsetFallback } from '../config/types';
import { C } from '../stats/layout';
import { createLoadBalancer, type Host, type LbContext, type LbOptions, type LoadBalancer } from './lb';
import { keySetKey, subsetKey } from './subset-match';

function hasLabels(hc: HostConfig, labels: Readonly<Record<string, string>>, keys: readonly string[]): boolean {
  const m = hc.metadata;
  for (const k of keys) if (m === undefined || m[k] !== labels[k]) return false;
  return true;
}

/** Where a pick's host came from (the offset of its counter). */
const NONE = C.LB_SUBSETS_NO_FALLBACK;
const DEFAULT = C.LB_SUBSETS_FALLBACK_DEFAULT;
const ANY = C.LB_SUBSETS_FALLBACK_ANY;

/** A fallback: its balancer (null: NO_FALLBACK) and its counter. */
interface Fallback {
  readonly lb: LoadBalancer | null;
  readonly stat: number;
}

export class SubsetLoadBalancer implements LoadBalancer {
  /** Subset key -> its balancer. */
  private readonly subsets = new Map<string, LoadBalancer>();
  /** Selector key set -> its own fallback, for selectors that set one. */
  private readonly selectorFallback = new Map<string, Fallback>();
  private readonly fallback: Fallback;
  /** Every host (MOSN's requests without criteria). */
  private readonly all: Fallback;
  /** MOSN: no criteria = every host, and an empty pick in the matched subset falls back. */
  private readonly mosn: boolean;
  /** The cluster's counters (this worker's) and base slot; a private buffer when not given (tests). */
  private readonly counters: Float64Array;
  private readonly base: number;

  constructor(
    cfg: LbSubsetConfig,
    type: LbType,
    configs: readonly HostConfig[],
    hosts: readonly Host[],
    /** The balancer over every host (ANY_ENDPOINT, and MOSN's requests without criteria). */
    readonly full: LoadBalancer,
    opts: LbOptions,
    stats?: { readonly counters: Float64Array; readonly base: number },
  ) {
    this.counters = stats?.counters ?? new Float64Array(C.LB_SUBSETS_NO_FALLBACK + 1);
    this.base = stats?.base ?? 0;
    this.mosn = cfg.noCriteria === 'all';
    this.all = { lb: full, stat: ANY };
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
    for (const [key, list] of members) this.subsets.set(key, createLoadBalancer(type, list, opts));
    let defaultLb: LoadBalancer | null = null;
    const defaultSubset = (): LoadBalancer => {
      if (defaultLb === null) {
        const keys = Object.keys(cfg.defaultSubset);
        const list = hosts.filter((_h, i) => hasLabels(configs[i], cfg.defaultSubset, keys));
        defaultLb = createLoadBalancer(type, list, opts);
      }
      return defaultLb;
    };
    const policyLb = (p: SubsetFallback): Fallback => (p === 'NO_FALLBACK' ? { lb: null, stat: NONE } : p === 'ANY_ENDPOINT' ? this.all : { lb: defaultSubset(), stat: DEFAULT });
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
      return this.fallBack(this.mosn ? this.all : this.fallback, ctx);
    }
    const lb = this.subsets.get(m.key);
    if (lb !== undefined) {
      const h = lb.choose(ctx);
      if (h !== null || !this.mosn) {
        this.counters[this.base + C.LB_SUBSETS_SELECTED]++;
        return h;
      }
    } else if (this.selectorFallback.size > 0) {
      const sf = this.selectorFallback.get(m.keysKey);
      if (sf !== undefined) return this.fallBack(sf, ctx);
    }
    return this.fallBack(this.fallback, ctx);
  }

  private fallBack(f: Fallback, ctx: LbContext | null | undefined): Host | null {
    const c = this.counters;
    c[this.base + f.stat]++;
    if (f.lb === null) return null;
    c[this.base + C.LB_SUBSETS_FALLBACK]++;
    return f.lb.choose(ctx);
  }
}
