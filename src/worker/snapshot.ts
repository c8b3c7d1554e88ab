/**
 * Building a config snapshot: everything a worker builds from a config (clusters with their
 * upstream TLS, listener runtimes with their filter factories, compiled route tables, downstream
 * TLS). The same function runs
 *   - in every worker, in the prepare phase of a reload (src/server.ts reload, two-phase);
 *   - in the main thread before a file is accepted at all (SIGHUP, `outrigger validate`), on
 *     scratch stats, so the main thread refuses exactly what a worker would refuse.
 *
 * Building has no side effect on the running snapshot: the clusters are installed and the
 * listener runtimes swapped in only on commit. A resource whose version did not move (see
 * src/config/versions.ts) keeps its built object: a new cluster version rebuilds that cluster only.
 */
import { ConfigError, type ConfigIssue } from '../config/errors';
import type { ListenerConfig, OutriggerConfig } from '../config/types';
import { listenerRouteDeps, versionResources, type ResourceVersions } from '../config/versions';
import { httpRouteStatNamesOf } from '../http/route-stats';
import type { AccessLogWriter } from '../log';
import { buildListenerRuntime, type ListenerRuntime } from '../network/listener';
import { keptChains } from '../network/chain-versions';
import type { RouteSwap } from '../filters/network/types';
import { compiledHttpRouter } from '../router/http-routes';
import { STATS_SLOTS, StatsLayout, type StatsLayoutData, type StatsScope } from '../stats/layout';
import { ClusterManager, type Cluster } from '../upstream/cluster';

export interface BuiltListener {
  readonly runtime: ListenerRuntime;
  /** Listener version, stats slot and the versions of the route configs it depends on. */
  readonly key: string;
  /** Route tables of kept chains to swap on commit (a route-config-only change; undo on rollback). */
  readonly routeUpdates: readonly RouteSwap[];
}

export interface Snapshot {
  readonly version: number;
  readonly config: OutriggerConfig;
  readonly versions: ResourceVersions;
  readonly clusters: Map<string, Cluster>;
  readonly listeners: Map<string, BuiltListener>;
  /** Names of what this build made anew (the rest was reused from the previous snapshot). */
  readonly rebuilt: { readonly listeners: readonly string[]; readonly clusters: readonly string[] };
}

export interface BuildEnv {
  readonly counters: Float64Array;
  readonly layout: Pick<StatsLayoutData, 'listeners' | 'clusters'>;
  /** Holds the running clusters; the new ones are only prepared here (install() on commit). */
  readonly manager: ClusterManager;
  accessLogFor(name: string, config: ListenerConfig): AccessLogWriter | null;
  /** Build only these resources (`cluster/NAME`, `listener/NAME`); the rest is left out (a check of what changed). */
  readonly only?: ReadonlySet<string>;
}

/** JSON paths of the resources, for issues found while building. */
function routerPaths(config: OutriggerConfig): Map<string, string> {
  const out = new Map<string, string>();
  config.servers.forEach((s, si) => s.routers.forEach((r, ri) => out.set(r.name, `servers[${si}].routers[${ri}]`)));
  return out;
}

const ROUTER_ERROR = /^routers\[([^\]]*)\]((?:\.\w+|\[\d+\])*): ([\s\S]*)$/;

/** An exception of a builder as a config issue: route compile errors get the router's JSON path. */
function issueOf(e: unknown, path: string, routers: Map<string, string>): ConfigIssue {
  const message = e instanceof Error ? e.message : String(e);
  const m = ROUTER_ERROR.exec(message);
  const base = m ? routers.get(m[1]!) : undefined;
  if (m && base !== undefined) return { path: base + m[2]!, message: m[3]! };
  return { path, message };
}

/** Downstream protocol "Auto" (or none): the HTTP side of the listener is built on its first HTTP connection. */
function detectsHttp(config: Readonly<Record<string, unknown>>): boolean {
  const downs = config['downstreamProtocols'];
  return Array.isArray(downs) && (downs.length === 0 || downs.some((d) => typeof d === 'string' && d.toLowerCase() === 'auto'));
}

/**
 * Builds snapshot `version` of `config`, reusing what `previous` built for resources whose
 * version is unchanged. Throws a ConfigError listing every resource that failed to build (with
 * its JSON path), after releasing what it built.
 */
export function buildSnapshot(version: number, config: OutriggerConfig, versions: ResourceVersions, env: BuildEnv, previous?: Snapshot): Snapshot {
  const issues: ConfigIssue[] = [];
  const routers = routerPaths(config);
  const same = (id: string): boolean => previous !== undefined && previous.versions[id] !== undefined && previous.versions[id] === versions[id];
  const clusters = new Map<string, Cluster>();
  const rebuiltClusters: string[] = [];
  config.clusters.forEach((c, i) => {
    if (env.only !== undefined && !env.only.has(`cluster/${c.name}`)) return;
    try {
      const base = env.layout.clusters[c.name];
      if (base === undefined) throw new Error(`stats layout has no slot for cluster ${c.name}`);
      const built = env.manager.prepareCluster(c, env.counters, base, same(`cluster/${c.name}`));
      if (built !== env.manager.get(c.name)) rebuiltClusters.push(c.name);
      clusters.set(c.name, built);
    } catch (e) {
      issues.push(issueOf(e, `cluster_manager.clusters[${i}]`, routers));
    }
  });
  const listeners = new Map<string, BuiltListener>();
  const rebuiltListeners: string[] = [];
  config.servers.forEach((server, si) => {
    server.listeners.forEach((lc, li) => {
      if (env.only !== undefined && !env.only.has(`listener/${lc.name}`)) return;
      const path = `servers[${si}].listeners[${li}]`;
      try {
        const base = env.layout.listeners[lc.name];
        if (base === undefined) throw new Error(`stats layout has no slot for listener ${lc.name}`);
        const deps = listenerRouteDeps(lc, server);
        const key = `${versions[`listener/${lc.name}`]}@${base}|${deps.map((d) => `${d}:${versions[`route/${d}`]}`).join(',')}`;
        const prev = previous?.listeners.get(lc.name);
        if (prev !== undefined && prev.key === key && same(`listener/${lc.name}`)) {
          listeners.set(lc.name, prev.routeUpdates.length === 0 ? prev : { ...prev, routeUpdates: [] });
          return;
        }
        const ctx = {
          name: lc.name,
          counters: env.counters,
          base,
          clusters: env.manager,
          idleTimeoutMs: lc.connectionIdleTimeoutMs,
          bufferLimit: lc.perConnBufferLimitBytes,
          accessLog: env.accessLogFor(lc.name, lc),
          routers: server.routers,
          streamFilters: lc.streamFilters,
        };
        const kept = keptChains(lc, server, base, versions, prev?.runtime);
        const runtime = buildListenerRuntime(lc, ctx, kept.reuse, kept.keys);
        listeners.set(lc.name, { runtime, key, routeUpdates: kept.routeUpdates });
        rebuiltListeners.push(lc.name);
        // An Auto listener builds its HTTP side on the first HTTP connection: compile its route
        // tables now (cached per router config object, so that first connection reuses them).
        for (const chain of lc.filterChains) {
          for (const f of chain.filters) {
            if (f.type !== 'proxy' || !detectsHttp(f.config)) continue;
            for (const d of deps) {
              const rc = server.routers.find((r) => r.name === d);
              if (rc !== undefined) compiledHttpRouter(rc);
            }
          }
        }
      } catch (e) {
        issues.push(issueOf(e, path, routers));
      }
    });
  });
  const snap: Snapshot = { version, config, versions, clusters, listeners, rebuilt: { listeners: rebuiltListeners, clusters: rebuiltClusters } };
  if (issues.length > 0) {
    discardSnapshot(snap, env.manager, previous);
    throw new ConfigError(issues);
  }
  return snap;
}

/**
 * Releases what a snapshot built that the running one does not share (certificate watchers of
 * TLS contexts): for a prepared snapshot that is aborted, or a main-thread check build.
 */
export function discardSnapshot(snap: Snapshot, manager: ClusterManager, running?: Snapshot): void {
  for (const c of snap.clusters.values()) {
    if (c.tls !== null && manager.get(c.name)?.tls !== c.tls) c.tls.close();
  }
  for (const [name, l] of snap.listeners) {
    const keep = new Set(running?.listeners.get(name)?.runtime.chains.map((c) => c.tls));
    for (const c of l.runtime.chains) if (c.tls !== null && !keep.has(c.tls)) c.tls.close();
  }
}

/** Gives every listener, cluster and HTTP route of `config` its stats slot (main thread). */
export function assignStats(layout: StatsLayout, config: OutriggerConfig): void {
  for (const s of config.servers) for (const l of s.listeners) layout.listenerBase(l.name);
  for (const c of config.clusters) layout.clusterBase(c.name);
  for (const r of httpRouteStatNamesOf(config)) layout.routeBase(r);
}

/**
 * Releases the stats slots of listeners, clusters and HTTP routes `config` does not have
 * (reclaimed later). `served` false: the names come from a version that was never committed.
 */
export function releaseStats(layout: StatsLayout, config: OutriggerConfig, served = true): void {
  const wanted: Record<StatsScope, Set<string>> = {
    listener: new Set(config.servers.flatMap((s) => s.listeners.map((l) => l.name))),
    cluster: new Set(config.clusters.map((c) => c.name)),
    route: new Set(httpRouteStatNamesOf(config)),
  };
  for (const scope of ['listener', 'cluster', 'route'] as const) {
    for (const name of layout.names(scope)) if (!wanted[scope].has(name)) layout.release(scope, name, served);
  }
}

let scratch: Float64Array | undefined;

/**
 * Resources of snapshot `version` that a check must build: those whose version is `version`
 * (new or changed), and listeners whose route configs changed. The rest built before.
 */
function changedResources(config: OutriggerConfig, versions: ResourceVersions, version: number): Set<string> {
  const out = new Set<string>();
  for (const c of config.clusters) if (versions[`cluster/${c.name}`] === version || versions[`secret/cluster/${c.name}`] === version) out.add(`cluster/${c.name}`);
  for (const server of config.servers) {
    for (const l of server.listeners) {
      const id = `listener/${l.name}`;
      if (versions[id] === version || versions[`secret/${id}`] === version || listenerRouteDeps(l, server).some((d) => versions[`route/${d}`] === version)) out.add(id);
    }
  }
  return out;
}

/**
 * The main thread's check before it accepts a file: builds every resource as a worker would,
 * on scratch stats, then releases it. Returns the issues (empty: a worker will build it too).
 * With `versions` of snapshot `version`, only what changed is built (the rest was checked when
 * it came): a push of one changed resource costs one resource's build.
 */
export function checkBuild(config: OutriggerConfig, versions?: ResourceVersions, version?: number): readonly ConfigIssue[] {
  scratch ??= new Float64Array(STATS_SLOTS); // once per process: a check never touches live stats
  const layout = new StatsLayout();
  const only = versions !== undefined && version !== undefined ? changedResources(config, versions, version) : undefined;
  try {
    if (only === undefined) assignStats(layout, config);
    else {
      // Slots for what is built only (scratch stats: the layout is thrown away).
      for (const s of config.servers) for (const l of s.listeners) if (only.has(`listener/${l.name}`)) layout.listenerBase(l.name);
      for (const c of config.clusters) if (only.has(`cluster/${c.name}`)) layout.clusterBase(c.name);
      for (const r of httpRouteStatNamesOf(config)) layout.routeBase(r);
    }
  } catch (e) {
    return [{ path: '', message: e instanceof Error ? e.message : String(e) }];
  }
  const manager = new ClusterManager([], scratch, {});
  try {
    const snap = buildSnapshot(1, config, versions ?? versionResources(1, config), { counters: scratch, layout: layout.toData(), manager, accessLogFor: () => null, only });
    discardSnapshot(snap, manager);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.errors;
    return [{ path: '', message: e instanceof Error ? e.message : String(e) }];
  }
}
