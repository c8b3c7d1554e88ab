/**
 * Rate-limit descriptors of `local_ratelimit` (Envoy semantics): a route's `rate_limits` actions
 * (and its virtual host's) make the request's descriptors; each descriptor the filter lists has
 * its own token bucket.
 *
 *   route: { "cluster_name": "c", "include_vh_rate_limits": false, "rate_limits": [ { "stage": 0, "actions": [
 *       { "request_headers": { "header_name": "x-user", "descriptor_key": "user", "skip_if_absent": false } },
 *       { "remote_address": {} },
 *       { "generic_key": { "descriptor_value": "v", "descriptor_key": "k" } },
 *       { "header_value_match": { "descriptor_value": "get", "descriptor_key": "m", "expect_match": true,
 *                                  "headers": [ { "name": ":method", "exact_match": "GET" } ] } } ] } ] }
 *   virtual host: { "name": "v", "domains": ["*"], "rate_limits": [ ...the same shape... ], "routers": [...] }
 *
 * One `rate_limits` entry whose stage is the filter's makes one descriptor: its actions' entries in
 * order. An action that cannot produce its entry drops that descriptor: a header absent or empty
 * (unless skip_if_absent: then the entry is left out and the others still make the descriptor),
 * a header match that is not as expected, a remote address that is not an IP; a descriptor left
 * with no entry is dropped. The virtual host's rate limits apply as the filter's
 * `vh_rate_limits` says (Envoy's VhRateLimitsOptions): OVERRIDE (default) when the route has
 * none, INCLUDE always, IGNORE never; a route's include_vh_rate_limits: true includes them
 * whatever the filter says. The filter's `descriptors` [{ entries: [{key, value}], token_bucket }]
 * are matched on the whole list of entries; a blank value matches any value (a dynamic
 * descriptor, ./dynamic.ts). Other action kinds (destination_cluster, metadata, query
 * parameters, ...) are refused with their path: a limit that would silently not apply is worse
 * than a config error.
 *
 * Header names and the RPC pseudo headers (:method, :service, :path) read as RBAC reads them.
 */
import type { FilterStream } from '../../../api/stream-filter';
import { compileHeader, ipOf, parseHeaderMatcher, type RbacInput } from '../../shared/rbac';
import { isObject, show, type Reporter } from '../../shared/json';

type Pred = (x: RbacInput) => boolean;

export type RateLimitAction =
  | { readonly t: 'request_headers'; readonly header: string; readonly key: string; readonly skipIfAbsent: boolean }
  | { readonly t: 'remote_address' }
  | { readonly t: 'generic_key'; readonly key: string; readonly value: string }
  | { readonly t: 'header_value_match'; readonly key: string; readonly value: string; readonly expect: boolean; readonly headers: readonly Pred[] };

/** Where a rate limit was written: the route, its virtual host, its virtual host with the route's include_vh_rate_limits. */
export const FROM_ROUTE = 0;
export const FROM_VH = 1;
export const FROM_VH_INCLUDED = 2;

/** One `rate_limits` entry of a route (or of its virtual host). */
export interface RouteRateLimit {
  readonly stage: number;
  readonly actions: readonly RateLimitAction[];
  readonly from: typeof FROM_ROUTE | typeof FROM_VH | typeof FROM_VH_INCLUDED;
}

/** The filter's vh_rate_limits (Envoy's VhRateLimitsOptions). */
export const VH_OVERRIDE = 0;
export const VH_INCLUDE = 1;
export const VH_IGNORE = 2;
export type VhRateLimits = typeof VH_OVERRIDE | typeof VH_INCLUDE | typeof VH_IGNORE;

const ACTION_KINDS = ['request_headers', 'remote_address', 'generic_key', 'header_value_match'];
const REFUSED_ACTIONS = [
  'source_cluster', 'destination_cluster', 'dynamic_metadata', 'metadata', 'extension', 'masked_remote_address',
  'query_parameters', 'query_parameter_value_match',
];

function str(o: Record<string, unknown>, key: string, where: string, def?: string): string {
  const v = o[key];
  if (v === undefined && def !== undefined) return def;
  if (typeof v !== 'string' || v === '') throw new Error(`${where}.${key}: ${show(v)} must be a non-empty string`);
  return v;
}

function keysOnly(o: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new Error(`${where}.${k}: not supported in ${where.slice(where.lastIndexOf('.') + 1)} (known: ${keys.join(', ')})`);
}

/** Header matchers through RBAC's parser; the first error becomes the thrown one (route compilation throws). */
function headerPreds(v: unknown, where: string): Pred[] {
  if (!Array.isArray(v) || v.length === 0) throw new Error(`${where}: must be a non-empty list of header matchers`);
  const r: Reporter = {
    error: (p, m) => {
      throw new Error(`${p}: ${m}`);
    },
    warn: () => {},
  };
  return v.map((h, i) => {
    const m = parseHeaderMatcher(h, `${where}[${i}]`, r);
    if (m === undefined) throw new Error(`${where}[${i}]: not a header matcher`);
    return compileHeader(m);
  });
}

function action(raw: unknown, where: string): RateLimitAction {
  if (!isObject(raw)) throw new Error(`${where}: must be an object`);
  const kinds = Object.keys(raw);
  if (kinds.length !== 1) throw new Error(`${where}: one action kind per entry (has ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
  const k = kinds[0];
  const at = `${where}.${k}`;
  if (REFUSED_ACTIONS.includes(k)) throw new Error(`${at}: the ${k} rate limit action is not supported by Outrigger (supported: ${ACTION_KINDS.join(', ')})`);
  if (!ACTION_KINDS.includes(k)) throw new Error(`${at}: unknown rate limit action (supported: ${ACTION_KINDS.join(', ')})`);
  const o = raw[k];
  if (!isObject(o)) throw new Error(`${at}: must be an object`);
  switch (k) {
    case 'request_headers': {
      keysOnly(o, ['header_name', 'descriptor_key', 'skip_if_absent'], at);
      const skip = o['skip_if_absent'];
      if (skip !== undefined && typeof skip !== 'boolean') throw new Error(`${at}.skip_if_absent: ${show(skip)} must be true or false`);
      return { t: 'request_headers', header: str(o, 'header_name', at).toLowerCase(), key: str(o, 'descriptor_key', at), skipIfAbsent: skip === true };
    }
    case 'remote_address':
      keysOnly(o, [], at);
      return { t: 'remote_address' };
    case 'generic_key':
      keysOnly(o, ['descriptor_value', 'descriptor_key'], at);
      return { t: 'generic_key', key: str(o, 'descriptor_key', at, 'generic_key'), value: str(o, 'descriptor_value', at) };
    default: {
      keysOnly(o, ['descriptor_value', 'descriptor_key', 'expect_match', 'headers'], at);
      const expect = o['expect_match'];
      if (expect !== undefined && typeof expect !== 'boolean') throw new Error(`${at}.expect_match: ${show(expect)} must be true or false`);
      return { t: 'header_value_match', key: str(o, 'descriptor_key', at, 'header_match'), value: str(o, 'descriptor_value', at), expect: expect !== false, headers: headerPreds(o['headers'], `${at}.headers`) };
    }
  }
}

function compileList(v: unknown, at: string, from: RouteRateLimit['from']): RouteRateLimit[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error(`${at}: must be a list`);
  return v.map((rl, i): RouteRateLimit => {
    const w = `${at}[${i}]`;
    if (!isObject(rl)) throw new Error(`${w}: must be an object`);
    keysOnly(rl, ['stage', 'actions'], w);
    const stage = rl['stage'] ?? 0;
    if (typeof stage !== 'number' || !Number.isInteger(stage) || stage < 0 || stage > 10) throw new Error(`${w}.stage: ${show(stage)} must be an integer in 0..10`);
    const acts = rl['actions'];
    if (!Array.isArray(acts) || acts.length === 0) throw new Error(`${w}.actions: must be a non-empty list`);
    return { stage, actions: acts.map((a, j) => action(a, `${w}.actions[${j}]`)), from };
  });
}

/** A virtual host's `rate_limits` (`where` is the virtual host's path; throws an Error naming the bad field); null when none. */
export function compileVirtualHostRateLimits(vh: Readonly<Record<string, unknown>>, where: string): readonly RouteRateLimit[] | null {
  const out = compileList(vh['rate_limits'], `${where}.rate_limits`, FROM_VH);
  return out.length > 0 ? out : null;
}

/**
 * The route action's `rate_limits`, then its virtual host's (`vh`, from
 * compileVirtualHostRateLimits; the filter decides whether they apply) (throws an Error naming
 * the bad field, as route compilation does); null when none.
 */
export function compileRouteRateLimits(routeAction: Readonly<Record<string, unknown>>, where: string, vh: readonly RouteRateLimit[] | null = null): readonly RouteRateLimit[] | null {
  const out = compileList(routeAction['rate_limits'], `${where}.route.rate_limits`, FROM_ROUTE);
  const inc = routeAction['include_vh_rate_limits'];
  if (inc !== undefined && typeof inc !== 'boolean') throw new Error(`${where}.route.include_vh_rate_limits: ${show(inc)} must be true or false`);
  if (vh !== null) for (const rl of vh) out.push(inc === true ? { ...rl, from: FROM_VH_INCLUDED } : rl);
  return out.length > 0 ? out : null;
}

/** Entry separators of a descriptor's key text (neither can appear in a header value). */
const KV = '\u0000';
const NEXT = '\u0001';

/** The text a descriptor is matched by: its entries in order. */
export function descriptorKey(entries: readonly (readonly [string, string])[]): string {
  let s = '';
  for (let i = 0; i < entries.length; i++) s += (i > 0 ? NEXT : '') + entries[i][0] + KV + entries[i][1];
  return s;
}

/**
 * The request's descriptors (as descriptorKey texts) from the route's rate limits of `stage`
 * (its virtual host's as `vh` says), into `out` (cleared first). Strings per request: only for
 * listeners whose filter has descriptors.
 */
export function requestDescriptors(limits: readonly RouteRateLimit[], stage: number, vh: VhRateLimits, s: FilterStream, x: RbacInput, out: string[]): void {
  out.length = 0;
  // The route's own come first: it has some when the first is its own.
  const routeHas = limits.length > 0 && limits[0].from === FROM_ROUTE;
  for (const rl of limits) {
    if (rl.stage !== stage) continue;
    if (rl.from === FROM_VH && (vh === VH_IGNORE || (vh === VH_OVERRIDE && routeHas))) continue;
    let key = '';
    let ok = true;
    for (const a of rl.actions) {
      let k: string;
      let v: string | undefined;
      switch (a.t) {
        case 'request_headers':
          k = a.key;
          v = x.header(a.header);
          if (v === '') v = undefined; // Envoy: an empty header is an absent one
          if (v === undefined && a.skipIfAbsent) continue;
          break;
        case 'remote_address':
          k = 'remote_address';
          v = ipOf(s.remoteAddress());
          if (v === '') v = undefined;
          break;
        case 'generic_key':
          k = a.key;
          v = a.value;
          break;
        default: {
          let all = true;
          for (const h of a.headers) {
            if (!h(x)) {
              all = false;
              break;
            }
          }
          k = a.key;
          v = all === a.expect ? a.value : undefined;
        }
      }
      if (v === undefined) {
        ok = false;
        break;
      }
      key += (key === '' ? '' : NEXT) + k + KV + v;
    }
    if (ok && key !== '') out.push(key);
  }
}

/** A listed descriptor with blank values: its entries' "key" + KV texts and values ('' = any). */
export interface DescriptorPattern {
  readonly heads: readonly string[];
  readonly values: readonly string[];
}

export function descriptorPattern(entries: readonly (readonly [string, string])[]): DescriptorPattern {
  return { heads: entries.map((e) => e[0] + KV), values: entries.map((e) => e[1]) };
}

/** Whether a request descriptor's text has the pattern's keys in order and its fixed values (no allocation). */
export function matchesPattern(p: DescriptorPattern, text: string): boolean {
  let pos = 0;
  const n = p.heads.length;
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      if (text.charCodeAt(pos) !== 1) return false; // NEXT
      pos++;
    }
    const h = p.heads[i];
    if (!text.startsWith(h, pos)) return false;
    pos += h.length;
    let end = text.indexOf(NEXT, pos);
    if (end < 0) end = text.length;
    const v = p.values[i];
    if (v === '' ? end === pos : end - pos !== v.length || !text.startsWith(v, pos)) return false;
    pos = end;
  }
  return pos === text.length;
}
