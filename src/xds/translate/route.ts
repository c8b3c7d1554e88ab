/**
 * RouteConfiguration -> RouterConfig in the shape the MOSN JSON path produces (servers[].routers[]
 * with normalized keys: virtual_hosts[].routers[].{match, route | redirect | direct_response}),
 * then compiled by the router's own validator (src/router/validate.ts) so that what is ACKed is
 * exactly what a worker will run.
 */
import type { RouterConfig } from '../../config/types';
import { validateRouterConfig } from '../../router/validate';
import type { TranslatedRoute, TranslationContext, XdsMessage } from '../types';
import { mirrorPolicies } from './mirror';
import { dataSource } from './secret';
import { ENVOY_LB_KEY, lbCriteria } from './cluster';
import { MOSN_LB_KEY } from '../../upstream/subset-match';
import { checkFields, durationMs, goDuration, join, list, msg, str, strList, Tx, wrappedBool, wrappedNum, type Msg } from './util';

/** Envoy's route timeout when a route gives none. */
const ENVOY_DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

/** Escapes a literal for the linear regex engine. */
function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** A StringMatcher -> MOSN header matcher fields {value, regex}. */
function stringMatcher(tx: Tx, m: Msg, path: string): { value: string; regex: boolean } {
  checkFields(tx, m, path, { ok: ['exact', 'prefix', 'suffix', 'contains', 'safeRegex', 'ignoreCase'], nack: { custom: 'custom string matchers are not supported' } });
  if (m.ignoreCase === true) tx.fail(join(path, 'ignoreCase'), 'case-insensitive header matching is not supported');
  if (typeof m.exact === 'string') return m.exact === '' ? { value: '', regex: true } : { value: m.exact, regex: false };
  if (typeof m.prefix === 'string') return { value: `${reEscape(m.prefix)}.*`, regex: true };
  if (typeof m.suffix === 'string') return { value: `.*${reEscape(m.suffix)}`, regex: true };
  if (typeof m.contains === 'string') return { value: `.*${reEscape(m.contains)}.*`, regex: true };
  const sr = msg(m.safeRegex);
  if (sr !== undefined) return { value: str(sr.regex), regex: true };
  return tx.fail(path, 'needs one of exact, prefix, suffix, contains, safe_regex');
}

function headerMatcher(tx: Tx, h: Msg, path: string): Record<string, unknown> {
  checkFields(tx, h, path, {
    ok: ['name', 'exactMatch', 'safeRegexMatch', 'presentMatch', 'prefixMatch', 'suffixMatch', 'containsMatch', 'stringMatch', 'invertMatch'],
    nack: { rangeMatch: 'range header matching is not supported', treatMissingHeaderAsEmpty: 'treat_missing_header_as_empty is not supported' },
  });
  const name = str(h.name);
  if (name === '') tx.fail(join(path, 'name'), 'is required');
  const out: Record<string, unknown> = { name };
  if (h.invertMatch === true) out.invert_match = true;
  if (typeof h.exactMatch === 'string') Object.assign(out, { value: h.exactMatch, regex: false });
  else if (typeof h.prefixMatch === 'string') Object.assign(out, { value: `${reEscape(h.prefixMatch)}.*`, regex: true });
  else if (typeof h.suffixMatch === 'string') Object.assign(out, { value: `.*${reEscape(h.suffixMatch)}`, regex: true });
  else if (typeof h.containsMatch === 'string') Object.assign(out, { value: `.*${reEscape(h.containsMatch)}.*`, regex: true });
  else if (msg(h.safeRegexMatch) !== undefined) Object.assign(out, { value: str(msg(h.safeRegexMatch)?.regex), regex: true });
  else if (msg(h.stringMatch) !== undefined) Object.assign(out, stringMatcher(tx, msg(h.stringMatch) ?? {}, join(path, 'stringMatch')));
  else if (h.presentMatch === false) out.invert_match = h.invertMatch !== true; // absent: presence inverted
  // present_match true (or nothing): presence, MOSN's empty value
  if (out.value === '' && out.regex === false) Object.assign(out, { value: '', regex: true }); // exact "" means empty, not presence
  return out;
}

function routeMatch(tx: Tx, m: Msg, path: string): Record<string, unknown> {
  checkFields(tx, m, path, {
    ok: ['prefix', 'path', 'safeRegex', 'caseSensitive', 'headers', 'grpc'],
    nack: {
      pathSeparatedPrefix: 'path_separated_prefix matching is not supported',
      pathMatchPolicy: 'path match policies (URI templates) are not supported',
      connectMatcher: 'CONNECT matching is not supported',
      queryParameters: 'query parameter matching is not supported',
      runtimeFraction: 'runtime fractions are not supported',
      tlsContext: 'matching on the TLS context is not supported',
      dynamicMetadata: 'dynamic metadata matching is not supported',
      filterState: 'filter state matching is not supported',
    },
  });
  const out: Record<string, unknown> = {};
  // prefix "/" matches every HTTP path; written as no path condition it also matches RPC requests
  // (Bolt/Dubbo routes over RDS: a `service` header matcher under prefix "/").
  if (m.prefix === '/' || m.prefix === '') {
    // no path condition
  } else if (typeof m.prefix === 'string') out.prefix = m.prefix;
  else if (typeof m.path === 'string') out.path = m.path;
  else if (msg(m.safeRegex) !== undefined) out.safe_regex = { regex: str(msg(m.safeRegex)?.regex) };
  else tx.fail(path, 'needs a path condition (prefix, path or safe_regex)');
  const cs = wrappedBool(m.caseSensitive);
  if (cs === false) out.case_sensitive = false;
  const headers = list(m.headers).map((h, i) => headerMatcher(tx, h, join(join(path, 'headers'), i)));
  // grpc: {} matches gRPC requests only: content-type application/grpc[+...|;...]
  if (msg(m.grpc) !== undefined) headers.push({ name: 'content-type', value: 'application/grpc([+;].*)?', regex: true });
  if (headers.length > 0) out.headers = headers;
  return out;
}

/** HeaderValueOption[] -> MOSN [{header: {key, value}, append}]. */
function headersToAdd(tx: Tx, v: unknown, path: string): Record<string, unknown>[] {
  return list(v).map((o, i) => {
    const p = join(path, i);
    checkFields(tx, o, p, { ok: ['header', 'append', 'appendAction', 'keepEmptyValue'] });
    const h = msg(o.header) ?? {};
    const key = str(h.key);
    const value = str(h.value);
    if (key === '') tx.fail(join(p, 'header.key'), 'is required');
    if (/%[A-Z_]+(\(.*\))?%/.test(value)) tx.warn(join(p, 'header.value'), `${JSON.stringify(value)}: Envoy formatters (%...%) are not expanded; sent as written`);
    let append = wrappedBool(o.append) ?? true; // Envoy's default: append
    const action = str(o.appendAction);
    if (action === 'OVERWRITE_IF_EXISTS_OR_ADD') append = false;
    else if (action === 'APPEND_IF_EXISTS_OR_ADD') append = true;
    else if (action !== '') tx.fail(join(p, 'appendAction'), `${action} is not supported`);
    return { header: { key, value }, append };
  });
}

function headerOps(tx: Tx, m: Msg, path: string, out: Record<string, unknown>): void {
  const add = headersToAdd(tx, m.requestHeadersToAdd, join(path, 'requestHeadersToAdd'));
  const radd = headersToAdd(tx, m.responseHeadersToAdd, join(path, 'responseHeadersToAdd'));
  const rm = strList(m.requestHeadersToRemove);
  const rrm = strList(m.responseHeadersToRemove);
  if (add.length > 0) out.request_headers_to_add = add;
  if (radd.length > 0) out.response_headers_to_add = radd;
  if (rm.length > 0) out.request_headers_to_remove = rm;
  if (rrm.length > 0) out.response_headers_to_remove = rrm;
}

const HEADER_OP_FIELDS = ['requestHeadersToAdd', 'requestHeadersToRemove', 'responseHeadersToAdd', 'responseHeadersToRemove'];

/** retry_on conditions the router implements, and Envoy's that map onto them. */
const RETRY_ON: Readonly<Record<string, string>> = {
  '5xx': '5xx', 'gateway-error': 'gateway-error', reset: 'reset', 'connect-failure': 'connect-failure', 'refused-stream': 'reset',
};

function retryPolicy(tx: Tx, m: Msg, path: string): Record<string, unknown> {
  checkFields(tx, m, path, {
    ok: ['retryOn', 'numRetries', 'perTryTimeout', 'retryHostPredicate', 'hostSelectionRetryMaxAttempts'],
    warn: {
      retriableStatusCodes: 'retrying on status codes is not supported; ignored',
      retryPriority: 'retry priorities are not supported; ignored',
      retryBackOff: 'retry back-off is not configurable; ignored',
      rateLimitedRetryBackOff: 'not supported; ignored',
      retriableHeaders: 'not supported; ignored',
      retriableRequestHeaders: 'not supported; ignored',
      perTryIdleTimeout: 'not supported; ignored',
      retryOptionsPredicates: 'not supported; ignored',
    },
  });
  const conds: string[] = [];
  const dropped: string[] = [];
  for (const c of str(m.retryOn).split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const mapped = RETRY_ON[c];
    if (mapped === undefined) dropped.push(c);
    else if (!conds.includes(mapped)) conds.push(mapped);
  }
  if (dropped.length > 0) tx.warn(join(path, 'retryOn'), `${dropped.join(', ')}: not supported retry conditions; not retried on`);
  for (const p of list(m.retryHostPredicate)) {
    const n = str(p.name);
    if (n !== 'envoy.retry_host_predicates.previous_hosts') tx.warn(join(path, 'retryHostPredicate'), `${JSON.stringify(n)} is not supported; ignored (retries always avoid hosts already tried)`);
  }
  const out: Record<string, unknown> = { retry_on: conds.join(','), num_retries: wrappedNum(m.numRetries) ?? 1 };
  const ptt = durationMs(m.perTryTimeout);
  if (ptt !== undefined && ptt > 0) out.per_try_timeout = goDuration(ptt);
  return out;
}

/**
 * A metadata_match (core.v3.Metadata): its filter_metadata["envoy.lb"] subset criteria, string
 * values only; other filter_metadata keys would be criteria Outrigger does not apply: NACK.
 * Undefined when absent or empty.
 */
export function metadataMatch(tx: Tx, v: unknown, path: string): Record<string, string> | undefined {
  const m = msg(v);
  if (m === undefined) return undefined;
  checkFields(tx, m, path, { ok: ['filterMetadata'], nack: { typedFilterMetadata: 'typed metadata criteria are not supported' } });
  const fm = msg(m.filterMetadata) ?? {};
  for (const k of Object.keys(fm)) {
    if (k !== ENVOY_LB_KEY) tx.fail(join(join(path, 'filterMetadata'), k), `only "${ENVOY_LB_KEY}" subset criteria are supported (NACK: ignoring them would change routing)`);
  }
  if (fm[ENVOY_LB_KEY] === undefined) return undefined;
  const c = lbCriteria(tx, fm[ENVOY_LB_KEY], join(join(path, 'filterMetadata'), ENVOY_LB_KEY));
  return Object.keys(c).length > 0 ? c : undefined;
}

/** Criteria in MOSN's shape (the router reads "mosn.lb" whatever the source). */
export function mosnMatch(c: Record<string, string>): Record<string, unknown> {
  return { filter_metadata: { [MOSN_LB_KEY]: c } };
}

const RATE_LIMIT_ACTIONS_REFUSED: Readonly<Record<string, string>> = {
  sourceCluster: 'the source_cluster rate limit action is not supported',
  destinationCluster: 'the destination_cluster rate limit action is not supported',
  dynamicMetadata: 'the dynamic_metadata rate limit action is not supported',
  metadata: 'the metadata rate limit action is not supported',
  extension: 'rate limit action extensions are not supported',
  maskedRemoteAddress: 'the masked_remote_address rate limit action is not supported',
  queryParameterValueMatch: 'the query_parameter_value_match rate limit action is not supported',
  queryParameters: 'the query_parameters rate limit action is not supported',
};

/**
 * RateLimit[] (route action or virtual host) -> the MOSN-shaped `rate_limits` the router compiles
 * for local_ratelimit descriptors (src/filters/stream/local_ratelimit/descriptors.ts). A limit
 * that would not apply as written NACKs (it decides which requests are limited). Undefined when none.
 */
function rateLimits(tx: Tx, v: unknown, path: string): Record<string, unknown>[] | undefined {
  const out = list(v).map((rl, i) => {
    const p = join(path, i);
    checkFields(tx, rl, p, {
      ok: ['stage', 'actions'],
      nack: { disableKey: 'disable_key (runtime) is not supported', limit: 'rate limit overrides (limit) are not supported', applyOnStreamDone: 'apply_on_stream_done is not supported' },
    });
    const actions = list(rl.actions).map((a, j): Record<string, unknown> => {
      const ap = join(join(p, 'actions'), j);
      checkFields(tx, a, ap, { ok: ['requestHeaders', 'remoteAddress', 'genericKey', 'headerValueMatch'], nack: RATE_LIMIT_ACTIONS_REFUSED });
      const rh = msg(a.requestHeaders);
      if (rh !== undefined) {
        checkFields(tx, rh, join(ap, 'requestHeaders'), { ok: ['headerName', 'descriptorKey', 'skipIfAbsent'] });
        return { request_headers: { header_name: str(rh.headerName), descriptor_key: str(rh.descriptorKey), skip_if_absent: rh.skipIfAbsent === true } };
      }
      if (msg(a.remoteAddress) !== undefined) return { remote_address: {} };
      const gk = msg(a.genericKey);
      if (gk !== undefined) {
        checkFields(tx, gk, join(ap, 'genericKey'), { ok: ['descriptorValue', 'descriptorKey'] });
        return { generic_key: { descriptor_value: str(gk.descriptorValue), ...(str(gk.descriptorKey) !== '' ? { descriptor_key: str(gk.descriptorKey) } : {}) } };
      }
      const hm = msg(a.headerValueMatch);
      if (hm !== undefined) {
        checkFields(tx, hm, join(ap, 'headerValueMatch'), { ok: ['descriptorValue', 'descriptorKey', 'expectMatch', 'headers'] });
        // Header matchers stay in their proto3 JSON spelling: the rate limit compiler reads both.
        return { header_value_match: { descriptor_value: str(hm.descriptorValue), ...(str(hm.descriptorKey) !== '' ? { descriptor_key: str(hm.descriptorKey) } : {}), expect_match: wrappedBool(hm.expectMatch) ?? true, headers: list(hm.headers) } };
      }
      return tx.fail(ap, 'needs one of request_headers, remote_address, generic_key, header_value_match');
    });
    return { stage: wrappedNum(rl.stage) ?? 0, actions };
  });
  return out.length > 0 ? out : undefined;
}

function routeAction(tx: Tx, a: Msg, path: string, vhRetry: Msg | undefined): Record<string, unknown> {
  checkFields(tx, a, path, {
    ok: ['cluster', 'clusterHeader', 'weightedClusters', 'prefixRewrite', 'hostRewriteLiteral', 'autoHostRewrite', 'timeout', 'retryPolicy',
      'priority', 'clusterNotFoundResponseCode', 'earlyDataPolicy', 'metadataMatch', 'requestMirrorPolicies', 'rateLimits', 'includeVhRateLimits'],
    warn: {
      idleTimeout: 'per-route idle timeout is not supported; ignored',
      hashPolicy: 'hash policies are not supported; ignored (no hashing load balancer)',
      cors: 'CORS is not supported; ignored',
      maxGrpcTimeout: 'not supported; ignored',
      grpcTimeoutOffset: 'not supported; ignored',
      upgradeConfigs: 'per-route upgrade settings are not supported; ignored',
      internalRedirectPolicy: 'internal redirects are not supported; ignored',
      hedgePolicy: 'request hedging is not supported; ignored',
      maxStreamDuration: 'not supported; ignored',
      appendXForwardedHost: 'not supported; ignored',
      maxInternalRedirects: 'internal redirects are not supported; ignored',
    },
    nack: {
      regexRewrite: 'regex path rewriting is not supported',
      pathRewritePolicy: 'path rewrite policies are not supported',
      hostRewriteHeader: 'host rewriting from a header is not supported',
      hostRewritePathRegex: 'host rewriting from the path is not supported',
      clusterSpecifierPlugin: 'cluster specifier plugins are not supported',
      inlineClusterSpecifierPlugin: 'cluster specifier plugins are not supported',
    },
  });
  const out: Record<string, unknown> = {};
  const routeMatch = metadataMatch(tx, a.metadataMatch, join(path, 'metadataMatch'));
  if (routeMatch !== undefined) out.metadata_match = mosnMatch(routeMatch);
  if (typeof a.cluster === 'string' && a.cluster !== '') out.cluster_name = a.cluster;
  else if (typeof a.clusterHeader === 'string' && a.clusterHeader !== '') out.cluster_header = a.clusterHeader.toLowerCase();
  else if (msg(a.weightedClusters) !== undefined) {
    const wc = msg(a.weightedClusters) ?? {};
    const wpath = join(path, 'weightedClusters');
    checkFields(tx, wc, wpath, { ok: ['clusters', 'totalWeight'], nack: { runtimeKeyPrefix: 'runtime weights are not supported', headerName: 'weights from a header are not supported', randomValueSpecifier: 'not supported' } });
    out.weighted_clusters = list(wc.clusters).map((c, i) => {
      const cp = join(join(wpath, 'clusters'), i);
      checkFields(tx, c, cp, {
        ok: ['name', 'weight', 'metadataMatch'],
        nack: {
          requestHeadersToAdd: 'per-cluster header rewriting is not supported', requestHeadersToRemove: 'per-cluster header rewriting is not supported',
          responseHeadersToAdd: 'per-cluster header rewriting is not supported', responseHeadersToRemove: 'per-cluster header rewriting is not supported',
          hostRewriteLiteral: 'per-cluster host rewriting is not supported', clusterHeader: 'not supported',
        },
        warn: { typedPerFilterConfig: 'per-filter configs are not supported; ignored' },
      });
      const name = str(c.name);
      if (name === '') tx.fail(join(cp, 'name'), 'is required');
      // Envoy: the cluster's criteria merged over the route's (its values win).
      const own = metadataMatch(tx, c.metadataMatch, join(cp, 'metadataMatch'));
      const mm = own === undefined ? routeMatch : { ...(routeMatch ?? {}), ...own };
      return { cluster: { name, weight: wrappedNum(c.weight) ?? 0, ...(mm !== undefined ? { metadata_match: mosnMatch(mm) } : {}) } };
    });
    if ((out.weighted_clusters as unknown[]).length === 0) tx.fail(join(wpath, 'clusters'), 'is empty');
  } else tx.fail(path, 'needs cluster, cluster_header or weighted_clusters');
  if (typeof a.prefixRewrite === 'string' && a.prefixRewrite !== '') out.prefix_rewrite = a.prefixRewrite;
  if (typeof a.hostRewriteLiteral === 'string' && a.hostRewriteLiteral !== '') out.host_rewrite = a.hostRewriteLiteral;
  if (wrappedBool(a.autoHostRewrite) === true) out.auto_host_rewrite = true;
  const t = durationMs(a.timeout);
  if (t === undefined) out.timeout = goDuration(ENVOY_DEFAULT_ROUTE_TIMEOUT_MS);
  else if (t > 0) out.timeout = goDuration(t);
  else tx.warn(join(path, 'timeout'), '0 (no timeout): the HTTP proxy\'s default_timeout applies');
  const rp = msg(a.retryPolicy) ?? vhRetry;
  if (rp !== undefined) out.retry_policy = retryPolicy(tx, rp, msg(a.retryPolicy) !== undefined ? join(path, 'retryPolicy') : 'virtualHost.retryPolicy');
  const mirror = mirrorPolicies(tx, a.requestMirrorPolicies, join(path, 'requestMirrorPolicies'));
  if (mirror !== undefined) out.request_mirror_policies = mirror;
  const rl = rateLimits(tx, a.rateLimits, join(path, 'rateLimits'));
  if (rl !== undefined) out.rate_limits = rl;
  if (wrappedBool(a.includeVhRateLimits) === true) out.include_vh_rate_limits = true;
  return out;
}

const REDIRECT_CODES: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308,
};

function redirect(tx: Tx, r: Msg, path: string): Record<string, unknown> {
  checkFields(tx, r, path, {
    ok: ['httpsRedirect', 'schemeRedirect', 'hostRedirect', 'pathRedirect', 'prefixRewrite', 'responseCode'],
    warn: { stripQuery: 'the query is always kept; ignored' },
    nack: { portRedirect: 'port redirects are not supported', regexRewrite: 'regex path rewriting is not supported' },
  });
  const out: Record<string, unknown> = {};
  if (r.httpsRedirect === true) out.scheme_redirect = 'https';
  else if (typeof r.schemeRedirect === 'string') out.scheme_redirect = r.schemeRedirect;
  if (typeof r.hostRedirect === 'string') out.host_redirect = r.hostRedirect;
  if (typeof r.pathRedirect === 'string') out.path_redirect = r.pathRedirect;
  if (typeof r.prefixRewrite === 'string') out.prefix_rewrite = r.prefixRewrite;
  out.response_code = REDIRECT_CODES[str(r.responseCode) || 'MOVED_PERMANENTLY'] ?? 301;
  return out;
}

function directResponse(tx: Tx, d: Msg, path: string): Record<string, unknown> {
  checkFields(tx, d, path, { ok: ['status', 'body'] });
  const out: Record<string, unknown> = { status: typeof d.status === 'number' ? d.status : 200 };
  const b = msg(d.body);
  if (b !== undefined) {
    const src = dataSource(tx, b, join(path, 'body'));
    if (src.kind === 'file') tx.fail(join(path, 'body.filename'), 'a body from a file is not supported (give inline_string)');
    out.body = src.pem;
  }
  return out;
}

function route(tx: Tx, r: Msg, path: string, vhRetry: Msg | undefined): Record<string, unknown> {
  checkFields(tx, r, path, {
    ok: ['name', 'match', 'route', 'redirect', 'directResponse', 'metadata', 'statPrefix', ...HEADER_OP_FIELDS],
    warn: {
      decorator: 'tracing is not supported; ignored',
      tracing: 'tracing is not supported; ignored',
      typedPerFilterConfig: 'per-route filter configs are not supported; ignored (the listener\'s filters apply as configured)',
      perRequestBufferLimitBytes: 'not supported; ignored',
      requestBodyBufferLimit: 'not supported; ignored',
    },
    nack: { filterAction: 'filter actions are not supported', nonForwardingAction: 'non-forwarding actions are not supported' },
  });
  const m = msg(r.match);
  if (m === undefined) tx.fail(join(path, 'match'), 'is required');
  const out: Record<string, unknown> = { match: routeMatch(tx, m, join(path, 'match')) };
  if (typeof r.name === 'string' && r.name !== '') out.name = r.name;
  const ra = msg(r.route);
  const rd = msg(r.redirect);
  const dr = msg(r.directResponse);
  if (ra !== undefined) {
    const action = routeAction(tx, ra, join(path, 'route'), vhRetry);
    headerOps(tx, r, path, action);
    out.route = action;
  } else if (rd !== undefined) out.redirect = redirect(tx, rd, join(path, 'redirect'));
  else if (dr !== undefined) out.direct_response = directResponse(tx, dr, join(path, 'directResponse'));
  else tx.fail(path, 'needs an action (route, redirect or direct_response)');
  if (ra === undefined && HEADER_OP_FIELDS.some((k) => r[k] !== undefined)) tx.warn(path, 'header rewriting applies to forwarded requests only; ignored on redirect/direct_response');
  return out;
}

function virtualHost(tx: Tx, vh: Msg, path: string, rcOps: Record<string, unknown>, rcMirror: Record<string, unknown>[] | undefined): Record<string, unknown> {
  checkFields(tx, vh, path, {
    ok: ['name', 'domains', 'routes', 'retryPolicy', 'requireTls', 'metadata', 'requestMirrorPolicies', 'rateLimits', ...HEADER_OP_FIELDS],
    warn: {
      virtualClusters: 'virtual cluster stats are not supported; ignored',
      cors: 'CORS is not supported; ignored',
      typedPerFilterConfig: 'per-host filter configs are not supported; ignored (the listener\'s filters apply as configured)',
      includeRequestAttemptCount: 'not supported; ignored',
      includeAttemptCountInResponse: 'not supported; ignored',
      hedgePolicy: 'request hedging is not supported; ignored',
      perRequestBufferLimitBytes: 'not supported; ignored',
      retryPolicyTypedConfig: 'not supported; ignored',
      requestBodyBufferLimit: 'not supported; ignored',
    },
    nack: { matcher: 'the generic matcher API is not supported' },
  });
  const rt = str(vh.requireTls);
  if (rt !== '' && rt !== 'NONE') tx.fail(join(path, 'requireTls'), `${rt} (redirecting plaintext requests to https) is not supported`);
  const domains = strList(vh.domains);
  if (domains.length === 0) tx.fail(join(path, 'domains'), 'is empty (Envoy requires at least one domain)');
  const vhRetry = msg(vh.retryPolicy);
  const out: Record<string, unknown> = {
    domains,
    routers: list(vh.routes).map((r, i) => route(tx, r, join(join(path, 'routes'), i), vhRetry)),
  };
  if (typeof vh.name === 'string' && vh.name !== '') out.name = vh.name;
  const vhLimits = rateLimits(tx, vh.rateLimits, join(path, 'rateLimits'));
  if (vhLimits !== undefined) out.rate_limits = vhLimits;
  // The virtual host's mirror policies apply to its routes that have none of their own, and the
  // route configuration's to the routes that have neither (Envoy: the most specific level wins).
  const vhMirror = mirrorPolicies(tx, vh.requestMirrorPolicies, join(path, 'requestMirrorPolicies')) ?? rcMirror;
  if (vhMirror !== undefined) {
    for (const r of out.routers as Record<string, unknown>[]) {
      const act = r.route as Record<string, unknown> | undefined;
      if (act !== undefined && act.request_mirror_policies === undefined) act.request_mirror_policies = vhMirror;
    }
  }
  headerOps(tx, vh, path, out);
  // Route-configuration level ops run after the virtual host's (Envoy's order): appended.
  for (const k of Object.keys(rcOps)) out[k] = [...((out[k] as unknown[] | undefined) ?? []), ...(rcOps[k] as unknown[])];
  return out;
}

/** RouteConfiguration -> RouterConfig (`name` overrides an empty name for inline route configs). */
export function routeConfig(tx: Tx, m: Msg, path: string, name: string): RouterConfig {
  checkFields(tx, m, path, {
    ok: ['name', 'virtualHosts', 'validateClusters', 'maxDirectResponseBodySizeBytes', 'ignorePortInHostMatching', 'ignorePathParametersInPathMatching', 'requestMirrorPolicies', ...HEADER_OP_FIELDS],
    warn: {
      mostSpecificHeaderMutationsWins: 'not supported; ignored',
      typedPerFilterConfig: 'per-route filter configs are not supported; ignored',
      metadata: 'ignored',
    },
    nack: {
      vhds: 'on-demand virtual hosts (VHDS) are not supported',
      internalOnlyHeaders: 'internal-only headers (stripped from external requests) are not supported',
      clusterSpecifierPlugins: 'cluster specifier plugins are not supported',
    },
  });
  const rcOps: Record<string, unknown> = {};
  headerOps(tx, m, path, rcOps);
  const rcMirror = mirrorPolicies(tx, m.requestMirrorPolicies, join(path, 'requestMirrorPolicies'));
  const virtualHosts = list(m.virtualHosts).map((vh, i) => virtualHost(tx, vh, join(join(path, 'virtualHosts'), i), rcOps, rcMirror));
  const cfg: RouterConfig = { name, virtualHosts };
  try {
    validateRouterConfig(cfg);
  } catch (e) {
    tx.fail(path === '' ? 'virtualHosts' : join(path, 'virtualHosts'), `refused by the router (MOSN-shaped paths): ${e instanceof Error ? e.message : String(e)}`);
  }
  return cfg;
}

export function translateRoute(m: XdsMessage, ctx: TranslationContext): TranslatedRoute {
  const name = str(m.name);
  const tx = new Tx(name || '(unnamed route configuration)', ctx);
  if (name === '') tx.fail('name', 'is required');
  return { name, router: routeConfig(tx, m, '', name) };
}
