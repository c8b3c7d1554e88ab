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

/**
 * Canonical forms of resource config objects already described: configs are frozen values, so
 * a resource object that a new config reuses (an xDS push rebuilds only what changed) costs a
 * lookup, not a new form. Weak: forms go with their objects.
 */
const forms = new WeakMap<object, string>();

function formOf(o: object): string {
  let f = forms.get(o);
  if (f === undefined) {
    f = canonical(o);
    forms.set(o, f);
  }
  return f;
}

/** Resource id -> canonical form of its config. */
export function describeResources(config: OutriggerConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of config.servers) {
    for (const r of s.routers) out.set(`route/${r.name}`, formOf(r));
    for (const l of s.listeners) {
      out.set(`listener/${l.name}`, formOf(l));
      const tls = l.filterChains.map((c) => c.tlsContexts ?? []);
      if (tls.some((t) => t.length > 0)) out.set(`secret/listener/${l.name}`, canonical(tls));
    }
  }
  for (const c of config.clusters) {
    out.set(`cluster/${c.name}`, formOf(c));
    if (c.tlsContext !== undefined) out.set(`secret/cluster/${c.name}`, formOf(c.tlsContext));
  }
  return out;
}

/** A committed snapshot as versioning needs it; `forms` (describeResources of `config`) spares describing it again. */
export interface VersionedConfig {
  readonly config: OutriggerConfig;
  readonly versions: ResourceVersions;
  forms?: Map<string, string>;
}

/**
 * Versions of `config`'s resources when it becomes snapshot `version`: a resource whose
 * canonical form equals the previous snapshot's keeps its previous version. `formsOut` receives
 * the canonical forms of `config` (keep them as the next call's `previous.forms`).
 */
export function versionResources(version: number, config: OutriggerConfig, previous?: VersionedConfig, formsOut?: (forms: Map<string, string>) => void): ResourceVersions {
  const now = describeResources(config);
  formsOut?.(now);
  const before = previous ? (previous.forms ?? describeResources(previous.config)) : new Map<string, string>();
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
