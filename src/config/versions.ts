/**
 * Per-resource versions of a config snapshot: listeners, route configs, clusters and TLS
 * material ("secrets") each carry the snapshot version at which their config last changed.
 * Builders reuse the runtime objects of a resource whose version did not move, so changing one
 * cluster rebuilds that cluster only (xDS delivers resources one by one the same way).
 *
 * A resource's identity is `kind/name`; whether it changed is decided on a canonical form of
 * its normalized config (JSON with sorted keys), so key order never counts as a change.
 */
import type { ListenerConfig, OutriggerConfig, ServerConfig } from './types';

/** `listener/NAME`, `route/NAME`, `cluster/NAME`, `secret/listener/NAME`, `secret/cluster/NAME` -> version. */
export type ResourceVersions = Readonly<Record<string, number>>;

/** Canonical JSON: object keys sorted at every level (arrays keep their order). */
export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'undefined';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
}

/** Resource id -> canonical form of its config. */
export function describeResources(config: OutriggerConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of config.servers) {
    for (const r of s.routers) out.set(`route/${r.name}`, canonical(r));
    for (const l of s.listeners) {
      out.set(`listener/${l.name}`, canonical(l));
      const tls = l.filterChains.map((c) => c.tlsContexts ?? []);
      if (tls.some((t) => t.length > 0)) out.set(`secret/listener/${l.name}`, canonical(tls));
    }
  }
  for (const c of config.clusters) {
    out.set(`cluster/${c.name}`, canonical(c));
    if (c.tlsContext !== undefined) out.set(`secret/cluster/${c.name}`, canonical(c.tlsContext));
  }
  return out;
}

/**
 * Versions of `config`'s resources when it becomes snapshot `version`: a resource whose
 * canonical form equals the previous snapshot's keeps its previous version.
 */
export function versionResources(
  version: number, config: OutriggerConfig, previous?: { readonly config: OutriggerConfig; readonly versions: ResourceVersions },
): ResourceVersions {
  const now = describeResources(config);
  const before = previous ? describeResources(previous.config) : new Map<string, string>();
  const out: Record<string, number> = {};
  for (const [id, form] of now) {
    const prev = previous?.versions[id];
    out[id] = prev !== undefined && before.get(id) === form ? prev : version;
  }
  return out;
}

/**
 * Route configs a listener's runtime is built from: the `routerConfigName` of its filters; a
 * `proxy` filter that names none depends on every router of its server.
 */
export function listenerRouteDeps(listener: ListenerConfig, server: ServerConfig): string[] {
  const names = new Set<string>();
  for (const chain of listener.filterChains) {
    for (const f of chain.filters) {
      const rn = f.config['routerConfigName'];
      if (typeof rn === 'string' && rn !== '') names.add(rn);
      else if (f.type === 'proxy') for (const r of server.routers) names.add(r.name);
    }
  }
  return [...names].sort();
}
