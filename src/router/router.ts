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
 * Matching is by header values only (RPC); a Matcher interface leaves room for HTTP path,
 * prefix and regex matching (another engineer): add a Matcher kind and a RouteRequest.path().
 *
 * Lookup cost: every virtual host keeps a cache from the request's match key (the values of
 * the headers its routes look at, usually just `service`) to the matched route, so the common
 * case is one Map lookup per request. The cache is bounded and cleared when full.
 */
import { parseGoDurationNs } from '../config/parse';
import type { RouterConfig } from '../config/types';
import { HeaderName } from '../protocol/types';
import { compileRetryPolicy, type RetryPolicy } from './http-routes';

/** What the router reads from a request. Implemented by the proxy session (no closures). */
export interface RouteRequest {
  /** The protocol's default routing key (Bolt: `service`, else `sofa_head_target_service`). null = unreadable. */
  routeKey(): string | undefined | null;
  /** Any header. null = the header section is unreadable. */
  header(name: HeaderName): string | undefined | null;
}

/** The default routing header of RPC protocols (MOSN types.RPCRouteMatchKey). */
export const SERVICE_KEY = 'service';

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
}

export class Route {
  /** Cumulative weights for weighted_clusters (empty when clusterName is used). */
  private readonly cumulative: number[];
  /** The route's retry_policy (set by compileRoute). */
  retry: RetryPolicy | null = null;
  private readonly total: number;

  constructor(
    readonly name: string,
    readonly clusterName: string,
    readonly weighted: readonly WeightedCluster[],
    /** Route timeout in ms; 0 = none. */
    readonly timeoutMs: number,
    readonly matchers: readonly HeaderMatcher[],
  ) {
    let sum = 0;
    this.cumulative = weighted.map((w) => (sum += w.weight));
    this.total = sum;
  }

  /** The cluster for one request (a weighted pick when weighted_clusters is set). */
  pickCluster(rand: number = Math.random()): string {
    if (this.total <= 0) return this.clusterName;
    const x = rand * this.total;
    const c = this.cumulative;
    for (let i = 0; i < c.length; i++) if (x < c[i]) return this.weighted[i].name;
    return this.weighted[this.weighted.length - 1].name;
  }
}

/** One header condition of a route. */
export class HeaderMatcher {
  readonly header: HeaderName;
  private readonly re: RegExp | null;
  /** MOSN's single-`service` rule: ".*" matches any non-empty value. */
  private readonly anyNonEmpty: boolean;

  constructor(
    name: string,
    readonly value: string,
    regex: boolean,
    readonly invert: boolean,
    fastRule: boolean,
  ) {
    this.header = new HeaderName(name);
    this.anyNonEmpty = fastRule && value === '.*';
    // Anchored like Go's regexp.MatchString on the whole value? MOSN uses MatchString (unanchored);
    // we anchor so that "com.foo.A" does not also match "com.foo.AB". Write ".*x.*" to search.
    this.re = regex && !this.anyNonEmpty ? new RegExp(`^(?:${value})$`) : null;
  }

  matches(v: string | undefined): boolean {
    let ok: boolean;
    if (v === undefined) ok = false;
    else if (this.anyNonEmpty) ok = v !== '';
    else if (this.re !== null) ok = this.re.test(v);
    else ok = v === this.value;
    return this.invert ? !ok : ok;
  }
}

const CACHE_MAX = 8192;
/** Cached "no route" (a Map value must be distinguishable from a miss). */
const NO_ROUTE = null;
/** match() result when a header the routes need cannot be read. */
export const MALFORMED = 'malformed' as const;

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
    for (const r of routes) for (const m of r.matchers) if (!names.has(m.header.name)) names.set(m.header.name, m.header);
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
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const r = this.slowMatch(keys.length === 1 ? [key === '\u0000' ? undefined : key] : (vals ?? []));
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, r);
    return r;
  }

  private slowMatch(vals: readonly (string | undefined)[]): Route | null {
    for (const r of this.routes) {
      let ok = true;
      for (const m of r.matchers) {
        const v = vals[this.keys.findIndex((k) => k.name === m.header.name)];
        if (!m.matches(v)) {
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
  private readonly exact = new Map<string, VirtualHost>();
  private readonly suffix: { suffix: string; vh: VirtualHost }[] = [];
  private defaultVh: VirtualHost | null = null;

  constructor(
    readonly name: string,
    readonly virtualHosts: readonly VirtualHost[],
  ) {
    for (const vh of virtualHosts) {
      const domains = vh.domains.length === 0 ? ['*'] : vh.domains;
      for (const d of domains) {
        const dl = d.toLowerCase();
        if (dl === '*') {
          if (this.defaultVh === null) this.defaultVh = vh;
        } else if (dl.startsWith('*')) this.suffix.push({ suffix: dl.slice(1), vh });
        else if (!this.exact.has(dl)) this.exact.set(dl, vh);
      }
    }
    this.suffix.sort((a, b) => b.suffix.length - a.suffix.length); // longest suffix first
  }

  /** The virtual host for a domain (RPC requests have none: the default "*" host). */
  virtualHost(domain?: string): VirtualHost | null {
    if (domain !== undefined && domain !== '') {
      const d = domain.toLowerCase();
      const e = this.exact.get(d);
      if (e !== undefined) return e;
      for (const s of this.suffix) if (d.endsWith(s.suffix)) return s.vh;
    }
    return this.defaultVh;
  }

  match(req: RouteRequest, domain?: string): Route | null | typeof MALFORMED {
    const vh = this.virtualHost(domain);
    return vh === null ? null : vh.match(req);
  }
}

// ---------------------------------------------------------------------------------------------
// Compilation from the normalized config (keys already lower-cased by config/parse.ts)
// ---------------------------------------------------------------------------------------------

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function durationMs(v: unknown, where: string): number {
  if (v === undefined || v === null || v === '') return 0;
  let ns: number | undefined;
  if (typeof v === 'number') ns = v; // Go time.Duration JSON: nanoseconds
  else if (typeof v === 'string') ns = parseGoDurationNs(v);
  if (ns === undefined || !Number.isFinite(ns) || ns < 0) throw new Error(`${where}: ${JSON.stringify(v)} is not a duration`);
  return ns === 0 ? 0 : Math.max(1, Math.ceil(ns / 1e6));
}

function compileRoute(r: unknown, where: string): Route | null {
  if (!isObj(r)) throw new Error(`${where}: must be an object`);
  const match = isObj(r['match']) ? r['match'] : {};
  const action = isObj(r['route']) ? r['route'] : null;
  if (action === null) return null; // redirect/direct_response: not for RPC
  const headers = Array.isArray(match['headers']) ? match['headers'] : [];
  const fastRule = headers.length === 1 && isObj(headers[0]) && headers[0]['name'] === SERVICE_KEY && headers[0]['regex'] !== true;
  const matchers = headers.map((h, i) => {
    if (!isObj(h) || typeof h['name'] !== 'string' || h['name'] === '') throw new Error(`${where}.match.headers[${i}]: needs a name`);
    const value = typeof h['value'] === 'string' ? h['value'] : '';
    const regex = h['regex'] === true;
    if (regex) {
      try {
        new RegExp(value);
      } catch (e) {
        throw new Error(`${where}.match.headers[${i}].value: bad regex ${JSON.stringify(value)}: ${(e as Error).message}`, { cause: e });
      }
    }
    return new HeaderMatcher(h['name'] as string, value, regex, h['invert_match'] === true, fastRule);
  });
  const weighted: WeightedCluster[] = [];
  if (Array.isArray(action['weighted_clusters'])) {
    action['weighted_clusters'].forEach((wc, i) => {
      const c = isObj(wc) && isObj(wc['cluster']) ? wc['cluster'] : wc;
      if (!isObj(c) || typeof c['name'] !== 'string') throw new Error(`${where}.route.weighted_clusters[${i}]: needs a cluster name`);
      const w = typeof c['weight'] === 'number' ? c['weight'] : 1;
      if (!(w >= 0)) throw new Error(`${where}.route.weighted_clusters[${i}].weight: must be >= 0`);
      weighted.push({ name: c['name'] as string, weight: w });
    });
  }
  const clusterName = typeof action['cluster_name'] === 'string' ? action['cluster_name'] : '';
  if (clusterName === '' && weighted.length === 0) throw new Error(`${where}.route: needs cluster_name or weighted_clusters`);
  const route = new Route(typeof r['name'] === 'string' ? r['name'] : '', clusterName, weighted, durationMs(action['timeout'], `${where}.route.timeout`), matchers);
  route.retry = compileRetryPolicy(action, where);
  return route;
}

/** Compile one router config (throws an Error naming the bad field). */
export function compileRouter(cfg: RouterConfig): CompiledRouter {
  const vhs = cfg.virtualHosts.map((vh, i) => {
    const where = `routers[${cfg.name}].virtual_hosts[${i}]`;
    const domains = Array.isArray(vh['domains']) ? (vh['domains'] as unknown[]).filter((d): d is string => typeof d === 'string') : ['*'];
    const list = Array.isArray(vh['routers']) ? vh['routers'] : [];
    const routes: Route[] = [];
    list.forEach((r, j) => {
      const cr = compileRoute(r, `${where}.routers[${j}]`);
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
