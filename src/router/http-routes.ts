/**
 * HTTP routing over MOSN routers (servers[].routers[]), compiled once per config snapshot.
 *
 *   router_config_name -> virtual_hosts[] by :authority / Host ("*" default, "*.x" suffix,
 *   exact first, then the longest suffix) -> routers[] (first match wins)
 *
 *   match:   prefix | path | regex | safe_regex {regex} (whole path, query excluded; the path
 *            is normalized first: path.ts), case_sensitive (default true),
 *            headers[] {name, value, regex?, invert_match?} (all must match; ":method",
 *            ":authority" and ":path" are readable too). Matchers, weighted clusters and
 *            domains are the core shared with the RPC router (match.ts); every regex runs in
 *            linear time (regex.ts).
 *   action:  route {cluster_name | weighted_clusters | cluster_header, timeout,
 *                   retry_policy {retry_on, num_retries, retry_timeout | per_try_timeout},
 *                   prefix_rewrite, host_rewrite, auto_host_rewrite,
 *                   request/response_headers_to_add/remove}
 *            direct_response {status, body}
 *            redirect {scheme_redirect, host_redirect, path_redirect, prefix_rewrite, response_code}
 *   virtual host: request/response_headers_to_add/remove apply to every route after the route's.
 *
 * Stats identity: every route is `<router_config_name>.<virtual host name>.<route name>`, the
 * route name being its `name` field (as Envoy's route `name`) or else its index in the virtual
 * host (virtual hosts without a name are `vh<index>`). The main thread assigns each such name a
 * base slot (src/stats/layout.ts); the worker resolves it once into `HttpRoute.statsBase`
 * (src/http/route-stats.ts).
 *
 * Lookup cost: each virtual host caches (path + the values of the headers its routes read) ->
 * route, so a repeated request costs one Map lookup. The cache is bounded (entries and key
 * length) and cleared when full.
 */
import { compileMirrorPolicies, type MirrorPolicy } from '../filters/stream/mirror/policy';
import { compileRouteRateLimits, compileVirtualHostRateLimits, type RouteRateLimit } from '../filters/stream/local_ratelimit/descriptors';
import type { RouterConfig } from '../config/types';
import { ClusterPick, compileMatch, compileRouteMetadataMatch, compileWeighted, DomainTable, durationMs, isObj, PathKind, type ClusterTarget, type HeaderMatcher, type PathMatcher, type WeightedCluster } from './match';
import type { MetadataMatch } from '../upstream/subset-match';

/** Reads of a request the router needs (the downstream exchange implements it). */
export interface HttpRouteRequest {
  /** Path without the query string. */
  readonly path: string;
  /** A header by lower-case name (pseudo-headers ":method", ":authority", ":path" included). */
  header(name: string): string | undefined;
}

export const RETRY_CONNECT_FAILURE = 1;
export const RETRY_RESET = 2;
export const RETRY_5XX = 4;
export const RETRY_GATEWAY_ERROR = 8;

export interface RetryPolicy {
  /** RETRY_* bits. */
  readonly on: number;
  readonly numRetries: number;
  /** 0 = the route timeout only. */
  readonly perTryTimeoutMs: number;
}

export interface HeaderToAdd {
  readonly key: string;
  readonly value: string;
  /** true: add another value; false: replace. */
  readonly append: boolean;
}

export interface HeaderOps {
  readonly requestAdd: readonly HeaderToAdd[];
  readonly requestRemove: readonly string[];
  readonly responseAdd: readonly HeaderToAdd[];
  readonly responseRemove: readonly string[];
}

export interface DirectResponse {
  readonly status: number;
  readonly body: string;
}

export interface Redirect {
  readonly scheme: string;
  readonly host: string;
  readonly path: string;
  readonly prefixRewrite: string | undefined;
  readonly code: number;
}

/** The stats name of a route (see the header comment). */
export function routeStatsName(router: string, vhost: string, route: string, index: number): string {
  return `${router}.${vhost}.${route !== '' ? route : String(index)}`;
}

function vhostName(vh: Readonly<Record<string, unknown>>, i: number): string {
  return typeof vh['name'] === 'string' ? vh['name'] : `vh${i}`;
}

/** The stats name of the j-th route entry `r` of a virtual host. */
function statsNameOf(router: string, vhost: string, r: unknown, j: number): string {
  return routeStatsName(router, vhost, isObj(r) && typeof r['name'] === 'string' ? r['name'] : '', j);
}

/** The stats names of every route of a router config, without compiling it (main thread). */
export function httpRouteStatNames(cfg: RouterConfig): string[] {
  const out: string[] = [];
  cfg.virtualHosts.forEach((vh, i) => {
    const list = Array.isArray(vh['routers']) ? (vh['routers'] as unknown[]) : [];
    const vhName = vhostName(vh, i);
    list.forEach((r, j) => out.push(statsNameOf(cfg.name, vhName, r, j)));
  });
  return out;
}

export class HttpRoute {
  private readonly clusters: ClusterPick;
  /** request_mirror_policies (src/filters/stream/mirror/policy.ts), set after construction. */
  mirror: readonly MirrorPolicy[] | null = null;
  /** rate_limits (local_ratelimit descriptors), set after construction. */
  rateLimits: readonly RouteRateLimit[] | null = null;
  /**
   * Base slot of this route's counters in this worker's stats buffer: -1 until resolved from
   * `statsName` on first use, -2 when the layout has no slot for it (then nothing is counted).
   */
  statsBase = -1;
  /** Prefix or exact path (lower-cased when not case sensitive); '' for other conditions. */
  readonly pathValue: string;

  constructor(
    readonly name: string,
    private readonly pathMatch: PathMatcher,
    readonly headers: readonly HeaderMatcher[],
    readonly clusterName: string,
    readonly weighted: readonly WeightedCluster[],
    readonly clusterHeader: string,
    readonly timeoutMs: number,
    readonly retry: RetryPolicy | null,
    readonly prefixRewrite: string | undefined,
    readonly hostRewrite: string,
    readonly autoHostRewrite: boolean,
    readonly ops: HeaderOps,
    readonly direct: DirectResponse | null,
    readonly redirect: Redirect | null,
    /** The stats name (see routeStatsName); '' = not counted per route. */
    readonly statsName: string = '',
    /** The action's subset criteria (metadata_match). */
    readonly metadataMatch: MetadataMatch | null = null,
  ) {
    this.clusters = new ClusterPick(clusterName, weighted, metadataMatch);
    this.pathValue = pathMatch.value;
  }

  /** Whether the path and headers match (the cache stores the outcome). */
  matches(path: string, req: HttpRouteRequest): boolean {
    if (!this.pathMatch.matches(path)) return false;
    for (const h of this.headers) if (!h.matches(req.header(h.name))) return false;
    return true;
  }

  /** The cluster for one request; '' when a cluster_header names none. */
  pickCluster(req: HttpRouteRequest, rand?: number): string {
    if (this.clusterHeader !== '') return req.header(this.clusterHeader) ?? '';
    return this.clusters.pick(rand);
  }

  /**
   * The cluster and its subset criteria for one request, as pickCluster; null for a
   * cluster_header route (its cluster comes from the request; its criteria are `metadataMatch`).
   */
  pickTarget(rand?: number): ClusterTarget | null {
    return this.clusterHeader !== '' ? null : this.clusters.pickTarget(rand);
  }

  /** The upstream path after prefix_rewrite (query kept). */
  rewritePath(fullPath: string): string {
    const pr = this.prefixRewrite;
    if (pr === undefined || this.pathMatch.kind !== PathKind.Prefix) return fullPath;
    return pr + fullPath.slice(this.pathValue.length);
  }
}

const CACHE_MAX = 8192;
/** Longer keys (path + header values) are not cached: 8192 entries of 64 KiB would hold 512 MiB. */
const CACHE_KEY_MAX = 1024;

export class HttpVirtualHost {
  /** Header names the routes read, in a fixed order (part of the cache key). */
  private readonly keyHeaders: string[];
  private readonly cache = new Map<string, HttpRoute | null>();
  hits = 0;
  misses = 0;

  constructor(
    readonly name: string,
    readonly domains: readonly string[],
    readonly routes: readonly HttpRoute[],
    readonly ops: HeaderOps,
  ) {
    const names = new Set<string>();
    for (const r of routes) for (const h of r.headers) names.add(h.name);
    this.keyHeaders = [...names];
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  match(req: HttpRouteRequest): HttpRoute | null {
    let key = req.path;
    const kh = this.keyHeaders;
    // Values are separated by \u0000, which cannot occur in a valid header value or path.
    for (let i = 0; i < kh.length; i++) {
      const v = req.header(kh[i]);
      key += v === undefined ? '\u0000\u0001' : '\u0000' + v;
    }
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.hits++;
      return hit;
    }
    this.misses++;
    let found: HttpRoute | null = null;
    for (const r of this.routes) {
      if (r.matches(req.path, req)) {
        found = r;
        break;
      }
    }
    if (key.length > CACHE_KEY_MAX) return found; // hostile sizes are matched, not kept
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, found);
    return found;
  }
}

export class CompiledHttpRouter {
  private readonly table: DomainTable<HttpVirtualHost>;
  private readonly hostCache = new Map<string, HttpVirtualHost | null>();

  constructor(
    readonly name: string,
    readonly virtualHosts: readonly HttpVirtualHost[],
  ) {
    this.table = new DomainTable(virtualHosts);
  }

  /** The virtual host for an authority (port ignored unless a domain lists it). */
  virtualHost(authority: string | undefined): HttpVirtualHost | null {
    if (authority === undefined || authority === '') return this.table.defaultVh;
    const hit = this.hostCache.get(authority);
    if (hit !== undefined) return hit;
    const vh = this.table.lookup(authority.toLowerCase());
    if (authority.length > CACHE_KEY_MAX) return vh;
    if (this.hostCache.size >= CACHE_MAX) this.hostCache.clear();
    this.hostCache.set(authority, vh);
    return vh;
  }
}

// ---------------------------------------------------------------------------------------------
// Compilation (keys already normalized to lower case by config/parse.ts)
// ---------------------------------------------------------------------------------------------

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values: visible ASCII, obs-text, space and tab; no CR, LF or NUL (they would inject lines).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** A string that ends up in a request or response head: no CR/LF/NUL or other control bytes. */
function headSafe(v: string, where: string): string {
  if (!FIELD_VALUE.test(v)) throw new Error(`${where}: ${JSON.stringify(v)} contains a control character (CR, LF, NUL...), not allowed in an HTTP head`);
  return v;
}

/** An optional string option that ends up in a head ('' or undefined when absent). */
function headOpt(v: unknown, where: string): string | undefined {
  return typeof v === 'string' ? headSafe(v, where) : undefined;
}

function headersToAdd(v: unknown, where: string): HeaderToAdd[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Error(`${where}: must be a list`);
  return v.map((x, i) => {
    // MOSN: {header: {key, value}, append}; also accepted flat: {key, value, append}.
    const h = isObj(x) && isObj(x['header']) ? x['header'] : x;
    if (!isObj(h) || typeof h['key'] !== 'string' || h['key'] === '') throw new Error(`${where}[${i}]: needs header.key`);
    if (!TOKEN.test(h['key'])) throw new Error(`${where}[${i}].header.key: ${JSON.stringify(h['key'])} is not a valid header name`);
    const value = headSafe(typeof h['value'] === 'string' ? h['value'] : String(h['value'] ?? ''), `${where}[${i}].header.value`);
    const append = isObj(x) && typeof x['append'] === 'boolean' ? x['append'] : false;
    return { key: h['key'].toLowerCase(), value, append };
  });
}

function headersToRemove(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${where}: must be a list of header names`);
  return (v as string[]).map((s) => s.toLowerCase());
}

function headerOps(o: Record<string, unknown>, where: string): HeaderOps {
  return {
    requestAdd: headersToAdd(o['request_headers_to_add'], `${where}.request_headers_to_add`),
    requestRemove: headersToRemove(o['request_headers_to_remove'], `${where}.request_headers_to_remove`),
    responseAdd: headersToAdd(o['response_headers_to_add'], `${where}.response_headers_to_add`),
    responseRemove: headersToRemove(o['response_headers_to_remove'], `${where}.response_headers_to_remove`),
  };
}

/** retry_on: MOSN's boolean (true = connect failure, reset, 5xx) or Envoy's comma list. */
function retryOnBits(v: unknown, where: string): number {
  if (v === true) return RETRY_CONNECT_FAILURE | RETRY_RESET | RETRY_5XX;
  if (v === false || v === undefined) return 0;
  if (typeof v !== 'string') throw new Error(`${where}: must be true/false or a list such as "5xx,reset,connect-failure"`);
  let bits = 0;
  for (const part of v.split(',')) {
    const p = part.trim().toLowerCase();
    if (p === '') continue;
    if (p === 'connect-failure') bits |= RETRY_CONNECT_FAILURE;
    else if (p === 'reset') bits |= RETRY_RESET;
    else if (p === '5xx') bits |= RETRY_5XX;
    else if (p === 'gateway-error') bits |= RETRY_GATEWAY_ERROR;
    else throw new Error(`${where}: unknown retry condition ${JSON.stringify(p)} (known: connect-failure, reset, 5xx, gateway-error)`);
  }
  return bits;
}

/** A route action's retry_policy (MOSN: retry_on, num_retries, retry_timeout); null without one. Every protocol's router uses it. */
export function compileRetryPolicy(a: Record<string, unknown>, where: string): RetryPolicy | null {
  if (!isObj(a['retry_policy'])) return null;
  const rp = a['retry_policy'];
  const n = rp['num_retries'] === undefined ? 1 : rp['num_retries'];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 10) throw new Error(`${where}.route.retry_policy.num_retries: must be an integer in 0..10`);
  return {
    on: retryOnBits(rp['retry_on'], `${where}.route.retry_policy.retry_on`),
    numRetries: n,
    perTryTimeoutMs: durationMs(rp['per_try_timeout'] ?? rp['retry_timeout'], `${where}.route.retry_policy.retry_timeout`),
  };
}

const EMPTY_OPS: HeaderOps = { requestAdd: [], requestRemove: [], responseAdd: [], responseRemove: [] };

function compileRoute(r: unknown, where: string, statsName: string, vhRateLimits: readonly RouteRateLimit[] | null): HttpRoute {
  if (!isObj(r)) throw new Error(`${where}: must be an object`);
  const m = compileMatch(r, where, true, null);
  const name = typeof r['name'] === 'string' ? r['name'] : '';
  const action = isObj(r['route']) ? r['route'] : null;
  const dr = isObj(r['direct_response']) ? r['direct_response'] : null;
  const rd = isObj(r['redirect']) ? r['redirect'] : null;
  let direct: DirectResponse | null = null;
  let redirect: Redirect | null = null;
  if (dr !== null) {
    const status = typeof dr['status'] === 'number' ? dr['status'] : 200;
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new Error(`${where}.direct_response.status: must be 200..599`);
    direct = { status, body: typeof dr['body'] === 'string' ? dr['body'] : '' };
  } else if (rd !== null) {
    const code = typeof rd['response_code'] === 'number' ? rd['response_code'] : 301;
    if (![301, 302, 303, 307, 308].includes(code)) throw new Error(`${where}.redirect.response_code: must be 301, 302, 303, 307 or 308`);
    redirect = {
      scheme: headOpt(rd['scheme_redirect'], `${where}.redirect.scheme_redirect`) ?? '',
      host: headOpt(rd['host_redirect'], `${where}.redirect.host_redirect`) ?? '',
      path: headOpt(rd['path_redirect'], `${where}.redirect.path_redirect`) ?? '',
      prefixRewrite: headOpt(rd['prefix_rewrite'], `${where}.redirect.prefix_rewrite`),
      code,
    };
  } else if (action === null) {
    throw new Error(`${where}: needs route, direct_response or redirect`);
  }
  const a = action ?? {};
  const mm = compileRouteMetadataMatch(a, where);
  const weighted = compileWeighted(a, where, mm);
  const clusterName = typeof a['cluster_name'] === 'string' ? a['cluster_name'] : '';
  const clusterHeader = typeof a['cluster_header'] === 'string' ? a['cluster_header'].toLowerCase() : '';
  if (action !== null && clusterName === '' && weighted.length === 0 && clusterHeader === '') {
    throw new Error(`${where}.route: needs cluster_name, weighted_clusters or cluster_header`);
  }
  const retry = compileRetryPolicy(a, where);
  const route = new HttpRoute(
    name,
    m.path,
    m.headers,
    clusterName,
    weighted,
    clusterHeader,
    durationMs(a['timeout'], `${where}.route.timeout`),
    retry,
    headOpt(a['prefix_rewrite'], `${where}.route.prefix_rewrite`),
    headOpt(a['host_rewrite'], `${where}.route.host_rewrite`) ?? '',
    a['auto_host_rewrite'] === true,
    action !== null ? headerOps(a, `${where}.route`) : headerOps(r, where),
    direct,
    redirect,
    statsName,
    mm,
  );
  route.mirror = compileMirrorPolicies(a, where);
  route.rateLimits = compileRouteRateLimits(a, where, action !== null ? vhRateLimits : null); // Envoy: no rate limits on direct responses and redirects
  return route;
}

/** Compiles one router config for HTTP (throws an Error naming the bad field). */
export function compileHttpRouter(cfg: RouterConfig): CompiledHttpRouter {
  const vhs = cfg.virtualHosts.map((vh, i) => {
    const where = `routers[${cfg.name}].virtual_hosts[${i}]`;
    const domains = Array.isArray(vh['domains']) ? (vh['domains'] as unknown[]).filter((d): d is string => typeof d === 'string') : ['*'];
    const list = Array.isArray(vh['routers']) ? vh['routers'] : [];
    const vhName = vhostName(vh, i);
    const vhRateLimits = compileVirtualHostRateLimits(vh, where);
    const routes = list.map((r, j) => compileRoute(r, `${where}.routers[${j}]`, statsNameOf(cfg.name, vhName, r, j), vhRateLimits));
    const ops = headerOps(vh, where);
    const noOps = ops.requestAdd.length + ops.requestRemove.length + ops.responseAdd.length + ops.responseRemove.length === 0;
    return new HttpVirtualHost(vhName, domains, routes, noOps ? EMPTY_OPS : ops);
  });
  return new CompiledHttpRouter(cfg.name, vhs);
}

const compiled = new WeakMap<RouterConfig, CompiledHttpRouter>();

/** Compiled once per (immutable) router config object, i.e. once per snapshot. */
export function compiledHttpRouter(cfg: RouterConfig): CompiledHttpRouter {
  let r = compiled.get(cfg);
  if (r === undefined) {
    r = compileHttpRouter(cfg);
    compiled.set(cfg, r);
  }
  return r;
}
