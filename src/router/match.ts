/**
 * The matcher core shared by the RPC router (router.ts) and the HTTP router (http-routes.ts):
 * one compilation of a route's `match` (path matcher + header matchers), one weighted-cluster
 * pick, one virtual-host table by domain, one duration reader. Every regex is linear-time
 * (regex.ts).
 *
 * A path matcher (`prefix`, `path`, `regex`, Envoy's `safe_regex`) is HTTP-only: a request
 * without an HTTP path (Bolt, Dubbo, ...) never matches it, so an RPC request cannot take a
 * route written for HTTP (MOSN answers such a request "no route": Bolt NO_PROCESSOR).
 */
import { parseGoDurationNs } from '../config/parse';
import { linearRegex, type LinearRegex } from './regex';
import { compileMetadataMatch, type MetadataMatch } from '../upstream/subset-match';

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A Go duration (string, or nanoseconds as a number) in ms; 0 when absent. */
export function durationMs(v: unknown, where: string): number {
  if (v === undefined || v === null || v === '') return 0;
  let ns: number | undefined;
  if (typeof v === 'number') ns = v; // Go time.Duration JSON: nanoseconds
  else if (typeof v === 'string') ns = parseGoDurationNs(v);
  if (ns === undefined || !Number.isFinite(ns) || ns < 0) throw new Error(`${where}: ${JSON.stringify(v)} is not a duration`);
  return ns === 0 ? 0 : Math.max(1, Math.ceil(ns / 1e6));
}

export const enum PathKind {
  Any,
  Prefix,
  Exact,
  Regex,
}

/** The path condition of a route. */
export class PathMatcher {
  constructor(
    readonly kind: PathKind,
    /** Prefix or exact path (lower-cased when not case sensitive). */
    readonly value: string,
    private readonly re: LinearRegex | null,
    private readonly caseSensitive: boolean,
  ) {}

  /** `path`: without the query; null = the request has no HTTP path (RPC): only Any matches. */
  matches(path: string | null): boolean {
    if (this.kind === PathKind.Any) return true;
    if (path === null) return false;
    switch (this.kind) {
      case PathKind.Prefix:
        // Case-insensitive prefix: compare the head only (no lower-cased copy of the whole path).
        return this.caseSensitive ? path.startsWith(this.value) : path.length >= this.value.length && path.slice(0, this.value.length).toLowerCase() === this.value;
      case PathKind.Exact:
        return this.caseSensitive ? path === this.value : path.length === this.value.length && path.toLowerCase() === this.value;
      default:
        return (this.re as LinearRegex).test(path);
    }
  }
}

export const ANY_PATH = new PathMatcher(PathKind.Any, '', null, true);

/** One header condition (MOSN semantics: no value = presence; regex = whole value, linear time). */
export class HeaderMatcher {
  private readonly re: LinearRegex | null;
  /** MOSN's single-`service` rule (RPC): ".*" matches any non-empty value. */
  private readonly anyNonEmpty: boolean;

  constructor(
    /** Lower-case for HTTP; as written for RPC (protocol header keys are case sensitive). */
    readonly name: string,
    readonly value: string,
    regex: boolean,
    readonly invert: boolean,
    fastRule: boolean,
    where: string,
  ) {
    this.anyNonEmpty = fastRule && value === '.*';
    // Anchored (MOSN uses Go's unanchored MatchString; anchoring keeps "com.foo.A" from also
    // matching "com.foo.AB"). Write ".*x.*" to search.
    this.re = regex && !this.anyNonEmpty ? linearRegex(value, where) : null;
  }

  matches(v: string | undefined): boolean {
    let ok: boolean;
    if (v === undefined) ok = false;
    else if (this.anyNonEmpty) ok = v !== '';
    else if (this.re !== null) ok = this.re.test(v);
    else ok = this.value === '' ? true : v === this.value;
    return this.invert ? !ok : ok;
  }
}

/** Keys of a route's `match` this router implements; any other (non-empty) key is refused. */
const MATCH_KEYS = new Set(['prefix', 'path', 'regex', 'safe_regex', 'case_sensitive', 'headers']);

export interface CompiledMatch {
  readonly path: PathMatcher;
  readonly headers: HeaderMatcher[];
}

function emptyValue(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) || (isObj(v) && Object.keys(v).length === 0);
}

/**
 * Compiles a route's `match` (`where` is the route's JSON path). `lowerNames`: header names are
 * lower-cased (HTTP). `fastService`: MOSN's single-`service` ".*" rule applies (RPC).
 */
export function compileMatch(r: Record<string, unknown>, where: string, lowerNames: boolean, serviceKey: string | null): CompiledMatch {
  const match = isObj(r['match']) ? r['match'] : {};
  for (const k of Object.keys(match)) {
    // An unimplemented condition would silently match every request: refused.
    if (!MATCH_KEYS.has(k) && !emptyValue(match[k])) throw new Error(`${where}.match.${k}: ${JSON.stringify(match[k])}: this match condition is not supported (the route would match every request)`);
  }
  const caseSensitive = match['case_sensitive'] !== false;
  const given = ['path', 'prefix', 'regex', 'safe_regex'].filter((k) => match[k] !== undefined);
  if (given.length > 1) throw new Error(`${where}.match: ${given.join(' and ')} are exclusive; give one path condition`);
  let path = ANY_PATH;
  if (given.length === 1) {
    const k = given[0];
    const v = match[k];
    if (k === 'safe_regex') {
      // Envoy's form: {google_re2: {}, regex: "..."}.
      const sr = isObj(v) ? v['regex'] : undefined;
      if (typeof sr !== 'string') throw new Error(`${where}.match.safe_regex: ${JSON.stringify(v)} needs a "regex" string`);
      path = new PathMatcher(PathKind.Regex, '', linearRegex(sr, `${where}.match.safe_regex.regex`, !caseSensitive), caseSensitive);
    } else if (typeof v !== 'string') {
      throw new Error(`${where}.match.${k}: ${JSON.stringify(v)} must be a string`);
    } else if (k === 'regex') {
      path = new PathMatcher(PathKind.Regex, '', linearRegex(v, `${where}.match.regex`, !caseSensitive), caseSensitive);
    } else {
      path = new PathMatcher(k === 'path' ? PathKind.Exact : PathKind.Prefix, caseSensitive ? v : v.toLowerCase(), null, caseSensitive);
    }
  }
  const hs = Array.isArray(match['headers']) ? match['headers'] : [];
  const fastRule = serviceKey !== null && hs.length === 1 && isObj(hs[0]) && hs[0]['name'] === serviceKey && hs[0]['regex'] !== true;
  const headers = hs.map((h, i) => {
    if (!isObj(h) || typeof h['name'] !== 'string' || h['name'] === '') throw new Error(`${where}.match.headers[${i}]: needs a name`);
    const value = typeof h['value'] === 'string' ? h['value'] : '';
    const name = lowerNames ? h['name'].toLowerCase() : h['name'];
    return new HeaderMatcher(name, value, h['regex'] === true, h['invert_match'] === true, fastRule, `${where}.match.headers[${i}].value`);
  });
  return { path, headers };
}

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
  /** Its subset criteria (metadata_match; else the route's); null = none. */
  readonly metadataMatch: MetadataMatch | null;
}

/** Where a request goes: a cluster and the subset criteria for it (precomputed per route). */
export interface ClusterTarget {
  readonly name: string;
  readonly metadataMatch: MetadataMatch | null;
}

/**
 * `route.weighted_clusters` (MOSN: [{cluster: {name, weight, metadata_match}}]; also [{name,
 * weight}]). An entry without metadata_match takes the route's (`routeMatch`).
 */
export function compileWeighted(action: Record<string, unknown>, where: string, routeMatch: MetadataMatch | null = null): WeightedCluster[] {
  const weighted: WeightedCluster[] = [];
  const list = action['weighted_clusters'];
  if (Array.isArray(list)) {
    list.forEach((wc, i) => {
      const nested = isObj(wc) && isObj(wc['cluster']);
      const c = nested ? (wc['cluster'] as Record<string, unknown>) : wc;
      if (!isObj(c) || typeof c['name'] !== 'string') throw new Error(`${where}.route.weighted_clusters[${i}]: needs a cluster name`);
      const w = typeof c['weight'] === 'number' ? c['weight'] : 1;
      if (!(w >= 0)) throw new Error(`${where}.route.weighted_clusters[${i}].weight: must be >= 0`);
      const mm = compileMetadataMatch(c['metadata_match'], `${where}.route.weighted_clusters[${i}]${nested ? '.cluster' : ''}.metadata_match`);
      weighted.push({ name: c['name'], weight: w, metadataMatch: mm ?? routeMatch });
    });
  }
  return weighted;
}

/** The route action's metadata_match (subset criteria); null when absent. */
export function compileRouteMetadataMatch(action: Record<string, unknown>, where: string): MetadataMatch | null {
  return compileMetadataMatch(action['metadata_match'], `${where}.route.metadata_match`);
}

/** A weighted pick over `weighted_clusters`, or the single cluster name. */
export class ClusterPick {
  private readonly cumulative: number[];
  private readonly total: number;
  /** The single cluster with the route's criteria. */
  private readonly single: ClusterTarget;

  constructor(
    readonly clusterName: string,
    readonly weighted: readonly WeightedCluster[],
    /** The route's subset criteria (single cluster, cluster_header). */
    readonly metadataMatch: MetadataMatch | null = null,
  ) {
    let sum = 0;
    this.cumulative = weighted.map((w) => (sum += w.weight));
    this.total = sum;
    this.single = { name: clusterName, metadataMatch };
  }

  pick(rand?: number): string {
    return this.pickTarget(rand).name;
  }

  /**
   * The cluster and its subset criteria for one request (objects built at compile time). `rand`
   * in [0, 1) (tests); by default Math.random(), called only for a weighted pick (the single
   * cluster of most routes costs no random number per request).
   */
  pickTarget(rand?: number): ClusterTarget {
    if (this.total <= 0) return this.single;
    const x = (rand ?? Math.random()) * this.total;
    const c = this.cumulative;
    for (let i = 0; i < c.length; i++) if (x < c[i]) return this.weighted[i];
    return this.weighted[this.weighted.length - 1];
  }
}

/**
 * Virtual hosts by domain: exact (with or without the port), then the longest "*suffix", then
 * the longest "prefix*", then "*" (the default; RPC requests, which have no domain, get it).
 */
export class DomainTable<V extends { readonly domains: readonly string[] }> {
  private readonly exact = new Map<string, V>();
  private readonly suffix: { suffix: string; vh: V }[] = [];
  private readonly prefix: { prefix: string; vh: V }[] = [];
  readonly defaultVh: V | null = null;

  constructor(vhs: readonly V[]) {
    let def: V | null = null;
    for (const vh of vhs) {
      for (const d of vh.domains.length === 0 ? ['*'] : vh.domains) {
        const dl = d.toLowerCase();
        if (dl === '*') def ??= vh;
        else if (dl.startsWith('*')) this.suffix.push({ suffix: dl.slice(1), vh });
        else if (dl.endsWith('*')) this.prefix.push({ prefix: dl.slice(0, -1), vh });
        else if (!this.exact.has(dl)) this.exact.set(dl, vh);
      }
    }
    this.defaultVh = def;
    this.suffix.sort((a, b) => b.suffix.length - a.suffix.length);
    this.prefix.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** `a`: a lower-case authority (host or host:port). */
  lookup(a: string): V | null {
    const e = this.exact.get(a);
    if (e !== undefined) return e;
    const colon = a.lastIndexOf(':');
    const host = colon > 0 && a.indexOf(']') < colon ? a.slice(0, colon) : a;
    const e2 = this.exact.get(host);
    if (e2 !== undefined) return e2;
    for (const s of this.suffix) if (host.endsWith(s.suffix)) return s.vh;
    for (const p of this.prefix) if (host.startsWith(p.prefix)) return p.vh;
    return this.defaultVh;
  }
}
