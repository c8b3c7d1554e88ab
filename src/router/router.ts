/**
 * MOSN routers (servers[].routers[]), compiled once per config snapshot.
 *
 *   router_config_name -> virtual_hosts[] (by domain; "*" = default) -> routers[] (first match wins)
 *   route match:  headers[] {name, value, regex?, invert_match?}, all must match
 *                 (a single `service` matcher keeps MOSN's fast rule: exact value, or ".*" for
 *                  any non-empty service; router/rpc_rule.go)
 *   route action: cluster_name | weighted_clusters[] {cluster: {name, weight}} (or {name, weight}),
 *                 timeout (Go duration)
 *
 * The matchers are the shared core's (match.ts), as for HTTP (http-routes.ts). An RPC request
 * has no HTTP path: a route with a `prefix`, `path`, `regex` or `safe_regex` condition never
 * matches it (Bolt answers NO_PROCESSOR, as MOSN), it is not taken as "no condition".
 *
 * Lookup cost: every virtual host keeps a cache from the request's match key (the values of
 * the headers its routes look at, usually just `service`) to the matched route, so the common
 * case is one Map lookup per request. The cache is bounded (entries and key length) and cleared
 * when full.
 */
import { compileMirrorPolicies, type MirrorPolicy } from '../filters/stream/mirror/policy';
import { compileRouteRateLimits, compileVirtualHostRateLimits, type RouteRateLimit } from '../filters/stream/local_ratelimit/descriptors';
import type { RouterConfig } from '../config/types';
import { HeaderName } from '../protocol/types';
import { ClusterPick, compileMatch, compileRouteMetadataMatch, compileWeighted, DomainTable, durationMs, isObj, type ClusterTarget, type HeaderMatcher, type PathMatcher, type WeightedCluster } from './match';
import type { MetadataMatch } from '../upstream/subset-match';
import { compileRetryPolicy, type RetryPolicy } from './http-routes';

export type { ClusterTarget, HeaderMatcher, WeightedCluster } from './match';

/** What the router reads from a request. Implemented by the proxy session (no closures). */
export interface RouteRequest {
  /** The protocol's default routing key (Bolt: `service`, else `sofa_head_target_service`). null = unreadable. */
  routeKey(): string | undefined | null;
  /** Any header. null = the header section is unreadable. */
  header(name: HeaderName): string | undefined | null;
}

/** The default routing header of RPC protocols (MOSN types.RPCRouteMatchKey). */
export const SERVICE_KEY = 'service';

export class Route {
  private readonly clusters: ClusterPick;
  /** The protocol header key of each matcher. */
  readonly keys: readonly HeaderName[];
  /** The route's retry_policy (set by compileRoute). */
  retry: RetryPolicy | null = null;
  /** request_mirror_policies (set by compileRoute). */
  mirror: readonly MirrorPolicy[] | null = null;
  /** rate_limits (local_ratelimit descriptors; set by compileRoute). */
  rateLimits: readonly RouteRateLimit[] | null = null;

  constructor(
    readonly name: string,
    readonly clusterName: string,
    readonly weighted: readonly WeightedCluster[],
    /** Route timeout in ms; 0 = none. */
    readonly timeoutMs: number,
    readonly matchers: readonly HeaderMatcher[],
    /** HTTP path condition: an RPC request (no path) matches only a route without one. */
    readonly pathMatcher: PathMatcher | null = null,
    /** The action's subset criteria (metadata_match). */
    readonly metadataMatch: MetadataMatch | null = null,
  ) {
    this.clusters = new ClusterPick(clusterName, weighted, metadataMatch);
    this.keys = matchers.map((m) => new HeaderName(m.name));
  }

  /** The cluster for one request (a weighted pick when weighted_clusters is set). */
  pickCluster(rand?: number): string {
    return this.clusters.pick(rand);
  }

  /** The cluster and its subset criteria for one request. */
  pickTarget(rand?: number): ClusterTarget {
    return this.clusters.pickTarget(rand);
  }
}

const CACHE_MAX = 8192;
/** Longer keys are not cached (8192 entries of 64 KiB would hold 512 MiB). */
const CACHE_KEY_MAX = 512;
/** Cached "no route" (a Map value must be distinguishable from a miss). */
const NO_ROUTE = null;
/** match() result when a header the routes need cannot be read. */
export const MALFORMED = 'malformed' as const;

/**
 * Whether a match() result is MALFORMED, by its type (its only string answer): an object compared
 * with a string is a generic StrictEqual call in optimized code, typeof one compare.
 */
export function isMalformed(r: Route | null | typeof MALFORMED): r is typeof MALFORMED {
  return typeof r === 'string';
}

export class VirtualHost {
  /** Distinct header names the routes look at, in a fixed order (the cache key). */
  private readonly keys: HeaderName[];
  private readonly keyIsService: boolean[];
  private readonly cache = new Map<string, Route | null>();
  hits = 0;
  misses = 0;

  constructor(
    readonly name: string,
    readonly domains: readonly string[],
    readonly routes: readonly Route[],
  ) {
    const names = new Map<string, HeaderName>();
    for (const r of routes) for (const k of r.keys) if (!names.has(k.name)) names.set(k.name, k);
    this.keys = [...names.values()];
    this.keyIsService = this.keys.map((k) => k.name === SERVICE_KEY);
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  match(req: RouteRequest): Route | null | typeof MALFORMED {
    const keys = this.keys;
    let key: string;
    let vals: (string | undefined)[] | null = null;
    if (keys.length === 0) {
      key = '';
    } else if (keys.length === 1) {
      const v = this.keyIsService[0] ? req.routeKey() : req.header(keys[0]);
      if (v === null) return MALFORMED;
      key = v === undefined ? '\u0000' : v;
      vals = null;
    } else {
      // Several headers: the key joins their values (one string per request on this rare path).
      vals = [];
      key = '';
      for (let i = 0; i < keys.length; i++) {
        const v = this.keyIsService[i] ? req.routeKey() : req.header(keys[i]);
        if (v === null) return MALFORMED;
        vals.push(v);
        key += (v === undefined ? '\u0000' : v.split('\u0001').join('\u0001\u0001')) + '\u0001';
      }
    }
    // The last key found or put in the cache, and its route: a connection's requests mostly repeat
    // one service (a string compare, usually of the same string object, instead of a Map lookup).
    if (key === this.lastKey) {
      this.hits++;
      return this.lastRoute;
    }
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.hits++;
      this.lastKey = key;
      this.lastRoute = hit;
      return hit;
    }
    this.misses++;
    const r = this.slowMatch(keys.length === 1 ? [key === '\u0000' ? undefined : key] : (vals ?? []));
    if (key.length > CACHE_KEY_MAX) return r; // hostile sizes are matched, not kept
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, r);
    this.lastKey = key;
    this.lastRoute = r;
    return r;
  }

  private lastKey: string | null = null;
  private lastRoute: Route | null = null;

  private slowMatch(vals: readonly (string | undefined)[]): Route | null {
    for (const r of this.routes) {
      // An RPC request has no HTTP path: a route with a path condition is not for it.
      if (r.pathMatcher !== null && !r.pathMatcher.matches(null)) continue;
      let ok = true;
      for (let i = 0; i < r.matchers.length; i++) {
        const name = r.keys[i].name;
        const v = vals[this.keys.findIndex((k) => k.name === name)];
        if (!r.matchers[i].matches(v)) {
          ok = false;
          break;
        }
      }
      if (ok) return r;
    }
    return NO_ROUTE;
  }
}

export class CompiledRouter {
  private readonly table: DomainTable<VirtualHost>;

  constructor(
    readonly name: string,
    readonly virtualHosts: readonly VirtualHost[],
  ) {
    this.table = new DomainTable(virtualHosts);
  }

  /** The virtual host for a domain (RPC requests have none: the default "*" host). */
  virtualHost(domain?: string): VirtualHost | null {
    return domain !== undefined && domain !== '' ? this.table.lookup(domain.toLowerCase()) : this.table.defaultVh;
  }

  match(req: RouteRequest, domain?: string): Route | null | typeof MALFORMED {
    const vh = this.virtualHost(domain);
    return vh === null ? null : vh.match(req);
  }
}

// ---------------------------------------------------------------------------------------------
// Compilation from the normalized config (keys already lower-cased by config/parse.ts)
// ---------------------------------------------------------------------------------------------

function compileRoute(r: unknown, where: string, vhRateLimits: readonly RouteRateLimit[] | null): Route | null {
  if (!isObj(r)) throw new Error(`${where}: must be an object`);
  // Compiled (and so validated) even when the route is not for RPC.
  const m = compileMatch(r, where, false, SERVICE_KEY);
  const action = isObj(r['route']) ? r['route'] : null;
  if (action === null) return null; // redirect/direct_response: not for RPC
  const mm = compileRouteMetadataMatch(action, where);
  const weighted = compileWeighted(action, where, mm);
  const clusterName = typeof action['cluster_name'] === 'string' ? action['cluster_name'] : '';
  if (clusterName === '' && weighted.length === 0) throw new Error(`${where}.route: needs cluster_name or weighted_clusters`);
  const route = new Route(typeof r['name'] === 'string' ? r['name'] : '', clusterName, weighted, durationMs(action['timeout'], `${where}.route.timeout`), m.headers, m.path, mm);
  route.retry = compileRetryPolicy(action, where);
  route.mirror = compileMirrorPolicies(action, where);
  route.rateLimits = compileRouteRateLimits(action, where, vhRateLimits);
  return route;
}

/** Compile one router config (throws an Error naming the bad field). */
export function compileRouter(cfg: RouterConfig): CompiledRouter {
  const vhs = cfg.virtualHosts.map((vh, i) => {
    const where = `routers[${cfg.name}].virtual_hosts[${i}]`;
    const domains = Array.isArray(vh['domains']) ? (vh['domains'] as unknown[]).filter((d): d is string => typeof d === 'string') : ['*'];
    const list = Array.isArray(vh['routers']) ? vh['routers'] : [];
    const routes: Route[] = [];
    const vhRateLimits = compileVirtualHostRateLimits(vh, where);
    list.forEach((r, j) => {
      const cr = compileRoute(r, `${where}.routers[${j}]`, vhRateLimits);
      if (cr !== null) routes.push(cr);
    });
    return new VirtualHost(typeof vh['name'] === 'string' ? vh['name'] : `vh${i}`, domains, routes);
  });
  return new CompiledRouter(cfg.name, vhs);
}

const compiled = new WeakMap<RouterConfig, CompiledRouter>();

/** Compiled once per (immutable) router config object, i.e. once per snapshot. */
export function compiledRouter(cfg: RouterConfig): CompiledRouter {
  let r = compiled.get(cfg);
  if (r === undefined) {
    r = compileRouter(cfg);
    compiled.set(cfg, r);
  }
  return r;
}
