/**
 * `local_ratelimit` stream filter: Envoy's HTTP local rate limit
 * (envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit) for every L7 protocol,
 * before routing. One token bucket for the listener's filter, shared by all workers
 * (src/filters/shared/limiter.ts): the limit is the process's, not a worker's.
 *
 *   { "type": "local_ratelimit", "config": {
 *       "stat_prefix": "http_local_rate_limiter",
 *       "token_bucket": { "max_tokens": 100, "tokens_per_fill": 100, "fill_interval": "1s" },
 *       "filter_enabled":  { "default_value": { "numerator": 100, "denominator": "HUNDRED" } },
 *       "filter_enforced": { "default_value": { "numerator": 100, "denominator": "HUNDRED" } },
 *       "status": { "code": 429 }, "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
 *       "response_headers_to_add": [ { "header": { "key": "x-local-rate-limit", "value": "true" } } ] } }
 *
 * As in Envoy, filter_enabled and filter_enforced default to 0% (the filter does nothing until
 * they are set). A limited request: HTTP `status` (429) with "local_rate_limited", gRPC
 * RESOURCE_EXHAUSTED, Bolt / Dubbo the codec's limit error (MOSN's LimitExceededCode mapping);
 * response flag RL. With DRAFT_VERSION_03, HTTP responses carry x-ratelimit-limit (max_tokens),
 * x-ratelimit-remaining and x-ratelimit-reset (seconds to the next fill).
 * Counters: local_ratelimit.<listener>.<stat_prefix>.enabled | enforced | rate_limited | ok.
 *
 * Descriptors (Envoy semantics, ./descriptors.ts): `descriptors: [{ entries: [{ key, value }],
 * token_bucket }]` with the route's `rate_limits` actions of the filter's `stage` (0), and its
 * virtual host's as `vh_rate_limits` says (OVERRIDE: when the route has none; INCLUDE; IGNORE). The filter
 * then runs after routing (a request without a route is answered before it; CONNECT / Upgrade
 * tunnels have no route rate limits: the default bucket). The listed descriptors the request has take a token each, the
 * strictest (fewest tokens per second) first; the first that is empty limits the request (the
 * others keep their tokens). The default bucket is taken when no descriptor matched, and also
 * when some did unless always_consume_default_token_bucket is false. A descriptor's
 * fill_interval must be a multiple of the default one (Envoy). x-ratelimit-* headers describe
 * the first of the request's descriptors that is listed, else the default bucket.
 * A blank entry value makes a dynamic descriptor (./dynamic.ts): it matches any value there and
 * each distinct request descriptor gets its own bucket of that token_bucket, at most
 * `max_dynamic_descriptors` (20) at once, least recently used replaced; a request descriptor
 * that a descriptor without blanks lists takes that one only.
 * Not supported (refused): local_rate_limit_per_downstream_connection.
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter, type StreamFilterValidationContext } from '../../../api/stream-filter';
import { count, counterCell, sharedNowMs } from '../../shared/cells';
import { fractionalPercent, JsonObj, type Reporter } from '../../shared/json';
import { allocTokenBucket, msToNextFill, takeToken, TokenLease, tokensLeft } from '../../shared/limiter';
import type { ActiveStream } from '../../../stream/pipeline';
import { StreamRbacInput } from '../rbac/rbac';
import { requestDescriptors, descriptorKey, descriptorPattern, matchesPattern, VH_IGNORE, VH_INCLUDE, VH_OVERRIDE, type DescriptorPattern, type VhRateLimits } from './descriptors';
import { allocDynamicTable, DEFAULT_MAX_DYNAMIC_DESCRIPTORS, descriptorId, dynamicBucket } from './dynamic';

/** One listed descriptor: its entries as a descriptorKey text and its own bucket. */
export interface DescriptorBucket {
  readonly key: string;
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  /** A static descriptor's bucket; a dynamic one's table of buckets (./dynamic.ts). */
  readonly bucket: number;
  /** Dynamic descriptors (a blank value): what they match. */
  readonly pattern: DescriptorPattern | null;
}

export interface LocalRateLimitConfig {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  /** Probabilities 0..1. */
  readonly enabled: number;
  readonly enforced: number;
  readonly status: number;
  readonly xHeaders: boolean;
  readonly responseHeaders: readonly (readonly [string, string])[];
  readonly bucket: number;
  /** Listed descriptors, strictest first (empty: the filter runs before routing, on the default bucket only). */
  readonly descriptors: readonly DescriptorBucket[];
  readonly stage: number;
  readonly vh: VhRateLimits;
  /** The keys of the static descriptors (a request descriptor one of them lists takes no dynamic one). */
  readonly staticKeys: ReadonlySet<string>;
  readonly maxDynamic: number;
  readonly alwaysConsumeDefault: boolean;
  readonly cells: { readonly enabled: number; readonly enforced: number; readonly limited: number; readonly ok: number };
}

const KEYS = [
  'stat_prefix', 'status', 'token_bucket', 'filter_enabled', 'filter_enforced', 'request_headers_to_add_when_not_enforced',
  'response_headers_to_add', 'descriptors', 'stage', 'local_rate_limit_per_downstream_connection', 'enable_x_ratelimit_headers',
  'vh_rate_limits', 'always_consume_default_token_bucket', 'rate_limited_as_resource_exhausted', 'max_dynamic_descriptors', '@type',
];

/** RuntimeFractionalPercent { default_value, runtime_key } as a probability (runtime keys are not read). */
function runtimePercent(o: JsonObj, key: string, r: Reporter): number {
  const f = o.obj(key);
  if (f === undefined) return 0;
  f.known(['default_value', 'runtime_key'], 'RuntimeFractionalPercent');
  if (f.has('runtime_key')) r.warn(f.at('runtime_key'), 'runtime keys are not read; default_value applies');
  const v = fractionalPercent(f, 'default_value', 0);
  if (!f.ok) o.ok = false;
  return v;
}

/** HeaderValueOption list -> [name, value] pairs. */
export function headerOptions(o: JsonObj, key: string): [string, string][] {
  const out: [string, string][] = [];
  for (const it of o.list(key) ?? []) {
    const h = JsonObj.from(it.value, it.path, o.r);
    if (h === undefined) {
      o.ok = false;
      continue;
    }
    h.known(['header', 'append', 'append_action', 'keep_empty_value'], 'HeaderValueOption');
    const hv = h.obj('header');
    if (hv === undefined) {
      o.fail(h.at('header'), 'required');
      continue;
    }
    hv.known(['key', 'value', 'raw_value'], 'HeaderValue');
    const k = hv.str('key');
    const v = hv.str('value', '') ?? '';
    if (k === undefined || k === '' || !/^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$/.test(k)) {
      o.fail(hv.at('key'), `${JSON.stringify(k)} is not a header name`);
      continue;
    }
    if (/[\r\n\0]/.test(v)) {
      o.fail(hv.at('value'), 'a header value cannot hold CR, LF or NUL');
      continue;
    }
    if (!h.ok || !hv.ok) o.ok = false;
    out.push([k.toLowerCase(), v]);
  }
  return out;
}

/** Whole tokens per second of a bucket (Envoy's order of descriptors: strictest first). */
function perSecond(d: DescriptorBucket): number {
  return Math.floor(d.tokensPerFill / Math.max(1, Math.floor(d.fillIntervalMs / 1000)));
}

/** LocalRateLimitDescriptor list -> buckets sorted strictest first; undefined after an error. */
function parseDescriptors(o: JsonObj, defaultFillMs: number, bucketKey: string, maxDynamic: number, r: Reporter): DescriptorBucket[] | undefined {
  const out: DescriptorBucket[] = [];
  const seen = new Set<string>();
  let ok = true;
  for (const it of o.list('descriptors') ?? []) {
    const d = JsonObj.from(it.value, it.path, r);
    if (d === undefined) {
      ok = false;
      continue;
    }
    d.known(['entries', 'token_bucket'], 'LocalRateLimitDescriptor');
    const entries: [string, string][] = [];
    const list = d.list('entries') ?? [];
    if (list.length === 0) d.fail(d.at('entries'), 'a descriptor needs at least one entry');
    for (const e of list) {
      const eo = JsonObj.from(e.value, e.path, r);
      if (eo === undefined) {
        d.ok = false;
        continue;
      }
      eo.known(['key', 'value'], 'RateLimitDescriptor.Entry');
      const k = eo.str('key', '') ?? '';
      const v = eo.str('value', '') ?? '';
      if (k === '') eo.fail(eo.at('key'), 'required');
      if (!eo.ok) d.ok = false;
      entries.push([k, v]);
    }
    const tb = d.obj('token_bucket');
    if (tb === undefined) {
      d.fail(d.at('token_bucket'), 'required');
      ok = false;
      continue;
    }
    tb.known(['max_tokens', 'tokens_per_fill', 'fill_interval'], 'TokenBucket');
    const maxTokens = tb.int('max_tokens', 0, 1, 0x7fffffff);
    if (!tb.has('max_tokens')) tb.fail(tb.at('max_tokens'), 'required');
    const tokensPerFill = tb.int('tokens_per_fill', 1, 1, 0x7fffffff);
    const fillIntervalMs = tb.durationMs('fill_interval', defaultFillMs);
    if (fillIntervalMs <= 0 || fillIntervalMs % defaultFillMs !== 0) {
      tb.fail(tb.at('fill_interval'), `${fillIntervalMs}ms must be a multiple of the filter's token_bucket.fill_interval (${defaultFillMs}ms), as Envoy requires`);
    }
    const key = descriptorKey(entries);
    if (d.ok && seen.has(key)) d.fail(d.at('entries'), 'the same entries are listed in another descriptor');
    seen.add(key);
    if (!d.ok || !tb.ok) {
      ok = false;
      continue;
    }
    const dynamic = entries.some((e) => e[1] === '');
    const bucket = dynamic
      ? allocDynamicTable(`${bucketKey}:d:${key}:${maxTokens}:${fillIntervalMs}`, maxDynamic)
      : allocTokenBucket(`${bucketKey}:d:${key}`, maxTokens, fillIntervalMs);
    if (bucket < 0) {
      r.error(it.path, 'no shared cells left for this rate limit (too many buckets in this process)');
      ok = false;
      continue;
    }
    out.push({ key, maxTokens, tokensPerFill, fillIntervalMs, bucket, pattern: dynamic ? descriptorPattern(entries) : null });
  }
  if (!ok) {
    o.ok = false;
    return undefined;
  }
  // Stable sort: equal rates keep the config's order.
  return out.map((d, i) => ({ d, i })).sort((a, b) => perSecond(a.d) - perSecond(b.d) || a.i - b.i).map((e) => e.d);
}

export function validateLocalRateLimit(raw: unknown, path: string, ctx: StreamFilterValidationContext): LocalRateLimitConfig | undefined {
  const o = JsonObj.from(raw, path, ctx);
  if (o === undefined) return undefined;
  o.known(KEYS, 'local_ratelimit');
  if (o.bool('local_rate_limit_per_downstream_connection', false)) o.fail(o.at('local_rate_limit_per_downstream_connection'), 'per-connection buckets are not supported; the bucket is the listener\'s, shared by all workers');
  const stage = o.int('stage', 0, 0, 10);
  const alwaysConsumeDefault = o.bool('always_consume_default_token_bucket', true);
  if (o.has('request_headers_to_add_when_not_enforced')) ctx.warn(o.at('request_headers_to_add_when_not_enforced'), 'request_headers_to_add_when_not_enforced is not supported; ignored');
  const vhName = o.enumOf('vh_rate_limits', ['OVERRIDE', 'INCLUDE', 'IGNORE'] as const, 'OVERRIDE');
  const vh: VhRateLimits = vhName === 'INCLUDE' ? VH_INCLUDE : vhName === 'IGNORE' ? VH_IGNORE : VH_OVERRIDE;
  const maxDynamic = o.int('max_dynamic_descriptors', DEFAULT_MAX_DYNAMIC_DESCRIPTORS, 1, 4096);
  o.bool('rate_limited_as_resource_exhausted', false); // gRPC always gets RESOURCE_EXHAUSTED
  const statPrefix = o.str('stat_prefix', '') ?? '';
  let status = 429;
  const st = o.obj('status');
  if (st !== undefined) {
    st.known(['code'], 'HttpStatus');
    status = st.int('code', 429, 200, 599);
    if (!st.ok) o.ok = false;
  }
  const tb = o.obj('token_bucket');
  if (tb === undefined) {
    if (!o.has('token_bucket')) o.fail(o.at('token_bucket'), 'required');
    return undefined;
  }
  tb.known(['max_tokens', 'tokens_per_fill', 'fill_interval'], 'TokenBucket');
  const maxTokens = tb.int('max_tokens', 0, 1, 0x7fffffff);
  if (!tb.has('max_tokens')) tb.fail(tb.at('max_tokens'), 'required');
  const tokensPerFill = tb.int('tokens_per_fill', 1, 1, 0x7fffffff);
  if (!tb.has('fill_interval')) tb.fail(tb.at('fill_interval'), 'required');
  const fillIntervalMs = tb.durationMs('fill_interval', 1000);
  if (tb.has('fill_interval') && fillIntervalMs < 50) tb.fail(tb.at('fill_interval'), `${JSON.stringify(tb.get('fill_interval'))} must be at least 50ms (Envoy's minimum)`);
  const enabled = runtimePercent(o, 'filter_enabled', ctx);
  const enforced = runtimePercent(o, 'filter_enforced', ctx);
  const xh = o.enumOf('enable_x_ratelimit_headers', ['OFF', 'DRAFT_VERSION_03'] as const, 'OFF');
  const responseHeaders = headerOptions(o, 'response_headers_to_add');
  if (!o.ok || !tb.ok) return undefined;
  const bucket = allocTokenBucket(`${ctx.listenerName}:${path}`, maxTokens, fillIntervalMs);
  if (bucket < 0) {
    ctx.error(path, 'no shared cells left for this rate limit (too many buckets in this process)');
    return undefined;
  }
  const descriptors = parseDescriptors(o, fillIntervalMs, `${ctx.listenerName}:${path}`, maxDynamic, ctx);
  if (descriptors === undefined) return undefined;
  const staticKeys = new Set(descriptors.filter((d) => d.pattern === null).map((d) => d.key));
  const base = `local_ratelimit.${ctx.listenerName}.${statPrefix === '' ? '' : `${statPrefix}.`}`;
  return {
    maxTokens, tokensPerFill, fillIntervalMs, enabled, enforced, status, xHeaders: xh === 'DRAFT_VERSION_03', responseHeaders, bucket, descriptors, stage, vh, staticKeys, maxDynamic, alwaysConsumeDefault,
    cells: { enabled: counterCell(`${base}enabled`), enforced: counterCell(`${base}enforced`), limited: counterCell(`${base}rate_limited`), ok: counterCell(`${base}ok`) },
  };
}

class LocalRateLimitFilter implements StreamFilter {
  readonly phase: DecodePhase;
  /** Without descriptors: a token per request before routing, Stop only after the 429 (StreamFilter.headersOnly). */
  readonly headersOnly: boolean;
  /** With descriptors: the request's descriptors (reused array) and a header reader over the stream. */
  private readonly keys: string[] = [];
  private readonly input = new StreamRbacInput();
  /** This worker's lease on the default bucket (threaded cells: Atomics once per batch). */
  private readonly lease: TokenLease;

  constructor(private readonly cfg: LocalRateLimitConfig) {
    this.lease = new TokenLease(cfg.bucket, cfg.maxTokens, cfg.tokensPerFill, cfg.fillIntervalMs);
    // Descriptors come from the route's rate_limits: the filter runs once the route is known.
    this.phase = cfg.descriptors.length > 0 ? DecodePhase.AfterRoute : DecodePhase.BeforeRoute;
    this.headersOnly = cfg.descriptors.length === 0;
  }

  /** The first request descriptor (index in keys) a dynamic descriptor matches and no static one lists; -1: none. */
  private dynamicMatch(p: DescriptorPattern): number {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (matchesPattern(p, keys[i]) && !this.cfg.staticKeys.has(keys[i])) return i;
    return -1;
  }

  /** Takes the tokens of the request's listed descriptors and (Envoy's rule) the default bucket's; -1: limited. */
  private takeDescribed(s: FilterStream, now: number): { left: number; shown: DescriptorBucket | null } {
    const c = this.cfg;
    const keys = this.keys;
    const limits = (s as Partial<ActiveStream>).rateLimits ?? null;
    if (limits === null) keys.length = 0;
    else {
      this.input.bind(s);
      requestDescriptors(limits, c.stage, c.vh, s, this.input, keys);
      this.input.bind(null);
    }
    let matched = false;
    let shown: DescriptorBucket | null = null;
    let shownBucket = -1;
    let shownAt = keys.length;
    let left = 0;
    for (const d of c.descriptors) {
      let at: number;
      let bucket = d.bucket;
      if (d.pattern === null) at = keys.indexOf(d.key);
      else {
        at = this.dynamicMatch(d.pattern);
        if (at >= 0) bucket = dynamicBucket(d.bucket, c.maxDynamic, descriptorId(keys[at]), d.maxTokens, d.fillIntervalMs, now);
        if (bucket < 0) at = -1;
      }
      if (at < 0) continue;
      matched = true;
      if (at < shownAt) {
        shown = d;
        shownBucket = bucket;
        shownAt = at;
      }
      if (takeToken(bucket, d.maxTokens, d.tokensPerFill, d.fillIntervalMs, now) < 0) return { left: -1, shown };
    }
    if (!matched || c.alwaysConsumeDefault) left = takeToken(c.bucket, c.maxTokens, c.tokensPerFill, c.fillIntervalMs, now);
    if (left >= 0 && shown !== null) left = tokensLeft(shownBucket);
    return { left, shown };
  }

  decode(s: FilterStream): FilterStatus {
    const c = this.cfg;
    if (c.enabled < 1 && (c.enabled === 0 || Math.random() >= c.enabled)) return FilterStatus.Continue;
    count(c.cells.enabled);
    const now = sharedNowMs();
    let left: number;
    let shown: DescriptorBucket | null = null;
    if (c.descriptors.length === 0) left = this.lease.take(now);
    else ({ left, shown } = this.takeDescribed(s, now)); // one small object per request, only with descriptors
    if (c.xHeaders) {
      // Three header strings per request, only with enable_x_ratelimit_headers.
      s.addResponseHeader('x-ratelimit-limit', String(shown !== null ? shown.maxTokens : c.maxTokens));
      s.addResponseHeader('x-ratelimit-remaining', String(left < 0 ? 0 : left));
      s.addResponseHeader('x-ratelimit-reset', String(Math.ceil(msToNextFill(shown !== null ? shown.fillIntervalMs : c.fillIntervalMs, now) / 1000)));
    }
    if (left >= 0) {
      count(c.cells.ok);
      return FilterStatus.Continue;
    }
    count(c.cells.limited);
    if (c.enforced < 1 && (c.enforced === 0 || Math.random() >= c.enforced)) return FilterStatus.Continue;
    count(c.cells.enforced);
    for (const [k, v] of c.responseHeaders) s.addResponseHeader(k, v);
    s.setResponseFlag('RL');
    s.sendLocalReply(c.status, 'local_rate_limited');
    return FilterStatus.Stop;
  }
}

registerStreamFilterKind<LocalRateLimitConfig>({
  type: 'local_ratelimit',
  validate: validateLocalRateLimit,
  create: (cfg) => new LocalRateLimitFilter(cfg),
});
