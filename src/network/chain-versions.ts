/**
 * Filter chains versioned one by one: a listener change (a chain added, removed or changed)
 * builds a new listener runtime, but every chain whose own config did not change keeps its
 * ChainRuntime object (its filter factories, TLS context and live connections), so connections
 * accepted under it are never drained, also after the old runtime is replaced. A chain's key is
 * its config, its listener's settings that its filters see (access log, idle timeout, buffer
 * limit, stream filters, inspector) and its stats slot; the route configs it routes with are
 * versioned apart: a route-only change swaps the route tables of the kept chain's factories
 * in place on commit (prepareRoutes), and only a factory that cannot do that gets a new chain.
 */
import type { ListenerConfig, ServerConfig } from '../config/types';
import { canonical, type ResourceVersions } from '../config/versions';
import type { RouteSwap } from '../filters/network/types';
import type { ChainRuntime, ListenerRuntime } from './listener';

const SEP = '\u0001';

/** Route configs one chain's filters route with (a `proxy` naming none uses every router of its server). */
function chainRouteDeps(filters: ListenerConfig['filterChains'][number]['filters'], server: ServerConfig): string[] {
  const names = new Set<string>();
  for (const f of filters) {
    const rn = f.config['routerConfigName'];
    if (typeof rn === 'string' && rn !== '') names.add(rn);
    else if (f.type === 'proxy') for (const r of server.routers) names.add(r.name);
  }
  return [...names].sort();
}

export interface KeptChains {
  /** Chain i of the new runtime: the previous runtime's chain to keep, or undefined (build it). */
  reuse(i: number): ChainRuntime | undefined;
  readonly keys: readonly string[];
  /** Route swaps of kept chains whose route configs changed (apply on commit). */
  readonly routeUpdates: readonly RouteSwap[];
}

/**
 * Which chains of `previous` the new runtime of `lc` keeps. Throws what a route table that
 * does not compile throws (the build reports it with the listener's path).
 */
export function keptChains(lc: ListenerConfig, server: ServerConfig, base: number, versions: ResourceVersions, previous: ListenerRuntime | undefined): KeptChains {
  const listenerPart = canonical({ ...lc, filterChains: undefined, name: undefined });
  const keys = lc.filterChains.map((fc) => {
    const routes = chainRouteDeps(fc.filters, server).map((d) => `${d}:${versions[`route/${d}`]}`).join(',');
    return `${base}|${listenerPart}|${canonical(fc)}${SEP}${routes}`;
  });
  const kept: (ChainRuntime | undefined)[] = [];
  const routeUpdates: RouteSwap[] = [];
  if (previous !== undefined) {
    const byMain = new Map<string, ChainRuntime[]>();
    for (const c of previous.chains) {
      if (c.key === undefined) continue;
      const main = c.key.slice(0, c.key.lastIndexOf(SEP));
      const list = byMain.get(main);
      if (list === undefined) byMain.set(main, [c]);
      else list.push(c);
    }
    keys.forEach((key, i) => {
      const main = key.slice(0, key.lastIndexOf(SEP));
      const c = byMain.get(main)?.shift();
      if (c === undefined) return;
      if (c.key === key) {
        kept[i] = c;
        return;
      }
      // Same chain, other route versions: swap its tables in place if every factory can.
      const swaps: RouteSwap[] = [];
      for (const st of c.built.stages) {
        const p = st.factory.prepareRoutes;
        const swap = p === undefined ? null : p.call(st.factory, server.routers);
        if (swap === null) return; // rebuilt, its connections drained
        swaps.push(swap);
      }
      kept[i] = c;
      routeUpdates.push(...swaps);
    });
  }
  return { reuse: (i) => kept[i], keys, routeUpdates };
}
