/** cluster_manager section: clusters, hosts, circuit breakers, upstream TLS. */
import { showValue } from './errors';
import { parseHealthCheck, parseOutlierDetection, parseSlowStart } from './health-check';
import { DEFAULTS, UINT32_MAX } from './defaults';
import { parseOriginalDstLbConfig } from './original-dst';
import { ConfigObject, type ParseState } from './reader';
import { parseTlsContext } from './tls-context';
import type { CircuitBreakerConfig, ClusterConfig, ClusterType, HostConfig, HostPort, LbSubsetConfig, LbType, OriginalDstLbConfig, SubsetFallback, SubsetSelectorConfig, TlsContextConfig } from './types';
import { isPlainObject, joinPath, parseHostPort } from './values';
import { readLbLabels } from './lb-labels';

const LB_TYPES: readonly LbType[] = ['LB_ROUNDROBIN', 'LB_RANDOM', 'LB_WEIGHTED_ROUNDROBIN', 'LB_LEAST_REQUEST', 'LB_ORIGINAL_DST'];
/** pkg/types/loadbalancer.go: other MOSN balancers. */
const KNOWN_MOSN_LB_TYPES = new Set(['LB_MAGLEV', 'LB_REQUEST_ROUNDROBIN', 'LB_LEAST_CONNECTION', 'LB_PEAK_EWMA']);

function parseHosts(st: ParseState, c: ConfigObject): HostConfig[] {
  const hosts: HostConfig[] = [];
  for (const item of c.list('hosts')) {
    const h = ConfigObject.from(st.issues, item.path, item.value);
    if (!h) continue;
    const addr = h.str('address', { required: true });
    let address: HostPort | undefined;
    if (addr !== undefined) {
      if (addr.startsWith('unix:')) {
        st.issues.error(h.at('address'), `${showValue(addr)}: unix socket upstreams are not supported yet`);
      } else {
        const r = parseHostPort(addr);
        if (typeof r === 'string') st.issues.error(h.at('address'), `${showValue(addr)} is not host:port (${r})`);
        else address = r;
      }
    }
    let weight: number = DEFAULTS.hostWeight;
    const wv = h.get('weight');
    if (wv !== undefined) {
      const w = h.checkInt(wv, h.at('weight'), { min: 0, max: UINT32_MAX });
      if (w !== undefined) {
        // MOSN (pkg/configmanager/parser.go transHostWeight) clamps into [1, 128].
        weight = Math.min(DEFAULTS.maxHostWeight, Math.max(DEFAULTS.minHostWeight, w));
        if (w !== weight && w !== 0) st.issues.warn(h.at('weight'), `${w} clamped to ${weight} (MOSN allows ${DEFAULTS.minHostWeight}..${DEFAULTS.maxHostWeight})`);
      }
    }
    const hostname = h.str('hostname');
    const metadata = hostLabels(st, h);
    const tlsDisable = h.bool('tls_disable', false);
    h.done();
    if (address) hosts.push({ address, weight, ...(hostname ? { hostname } : {}), ...(tlsDisable ? { tlsDisable } : {}), ...(metadata ? { metadata } : {}) });
  }
  return hosts;
}

/** A host's subset labels: metadata.filter_metadata["mosn.lb"] string values (others skipped with a warning, as MOSN drops them). */
function hostLabels(st: ParseState, h: ConfigObject): Record<string, string> | undefined {
  const labels = readLbLabels(h.get('metadata'), h.at('metadata'), false, (p, m) => st.issues.error(p, m), (p, m) => st.issues.warn(p, m));
  return Object.keys(labels).length > 0 ? labels : undefined;
}

/** MOSN fall_back_policy (pkg/types: 0 NoFallBack, 1 AnyEndPoint, 2 DefaultSubset). */
const MOSN_FALLBACKS: readonly SubsetFallback[] = ['NO_FALLBACK', 'ANY_ENDPOINT', 'DEFAULT_SUBSET'];

/**
 * lb_subset_config {fall_back_policy, default_subset, subset_selectors}: undefined when absent or
 * without selectors (MOSN then balances over every host, as if it were absent).
 */
function parseLbSubset(st: ParseState, c: ConfigObject, clusterType: ClusterType, lbType: LbType): LbSubsetConfig | undefined {
  if (!c.has('lb_subset_config')) {
    c.accept('lb_subset_config');
    return undefined;
  }
  const o = c.obj('lb_subset_config');
  if (o === undefined) return undefined;
  const fb = o.int('fall_back_policy', { max: 2 });
  const defaultSubset: Record<string, string> = {};
  const dv = o.get('default_subset');
  if (dv !== undefined) {
    if (!isPlainObject(dv)) st.issues.error(o.at('default_subset'), `${showValue(dv)} must be an object of string values`);
    else {
      for (const [k, v] of Object.entries(dv)) {
        if (typeof v === 'string') defaultSubset[k] = v;
        else st.issues.error(joinPath(o.at('default_subset'), k), `${showValue(v)} must be a string`);
      }
    }
  }
  const selectors: SubsetSelectorConfig[] = [];
  const seen = new Set<string>();
  for (const item of o.list('subset_selectors')) {
    if (!Array.isArray(item.value) || item.value.some((k) => typeof k !== 'string' || k === '')) {
      st.issues.error(item.path, `${showValue(item.value)} must be a list of label keys (non-empty strings)`);
      continue;
    }
    const keys = [...new Set(item.value as string[])].sort();
    if (keys.length === 0) {
      st.issues.warn(item.path, 'an empty selector makes no subset; ignored');
      continue;
    }
    const id = keys.join('\u0000');
    if (seen.has(id)) continue; // MOSN keeps one of duplicate selectors
    seen.add(id);
    selectors.push({ keys });
  }
  o.done();
  if (selectors.length === 0) {
    st.issues.warn(c.at('lb_subset_config'), 'no subset_selectors: subset load balancing is off (every host serves), as in MOSN');
    return undefined;
  }
  if (clusterType === 'ORIGINAL_DST' || lbType === 'LB_ORIGINAL_DST') {
    st.issues.error(c.at('lb_subset_config'), 'subset load balancing does not apply to ORIGINAL_DST clusters');
    return undefined;
  }
  return { fallback: MOSN_FALLBACKS[fb] ?? 'NO_FALLBACK', defaultSubset, selectors, noCriteria: 'all' };
}

/** Envoy circuit_breakers.thresholds[].retry_budget: budget_percent (a Percent, default 20), min_retry_concurrency (default 3). */
function parseRetryBudget(st: ParseState, rb: ConfigObject): { budgetPercent: number; minRetryConcurrency: number } {
  const bv = rb.get('budget_percent');
  const raw = bv !== null && typeof bv === 'object' && !Array.isArray(bv) ? (bv as Record<string, unknown>)['value'] : bv;
  let budgetPercent = 20;
  if (raw !== undefined) {
    if (typeof raw === 'number' && raw >= 0 && raw <= 100) budgetPercent = raw;
    else st.issues.error(rb.at('budget_percent'), `${showValue(bv)} must be a percentage 0..100`);
  }
  const minRetryConcurrency = rb.int('min_retry_concurrency', { def: 3 });
  rb.done();
  return { budgetPercent, minRetryConcurrency };
}

function parseCircuitBreakers(st: ParseState, c: ConfigObject): CircuitBreakerConfig {
  const out = { maxConnections: 0, maxPendingRequests: 0, maxRequests: 0, maxRetries: 0 };
  const items = c.list('circuit_breakers');
  if (items.length > 1) st.issues.warn(c.at('circuit_breakers'), `${items.length} thresholds given; only the first is used (MOSN has no priorities)`);
  const first = items[0];
  if (first) {
    const t = ConfigObject.from(st.issues, first.path, first.value);
    if (t) {
      out.maxConnections = t.int('max_connections');
      out.maxPendingRequests = t.int('max_pending_requests');
      out.maxRequests = t.int('max_requests');
      out.maxRetries = t.int('max_retries');
      t.accept('priority');
      const rb = t.obj('retry_budget');
      t.done();
      if (rb) return { ...out, retryBudget: parseRetryBudget(st, rb) };
    }
  }
  return out;
}

function parseCluster(st: ParseState, c: ConfigObject, cmTls: TlsContextConfig | undefined): ClusterConfig | undefined {
  const name = c.str('name', { required: true });
  if (name !== undefined) {
    const prev = st.clusterNames.get(name);
    if (prev !== undefined) st.issues.error(c.at('name'), `${showValue(name)} is a duplicate cluster name (also ${prev})`);
    else st.clusterNames.set(name, c.at('name'));
  }
  const typeRaw = c.str('type', { def: 'SIMPLE' }) ?? 'SIMPLE';
  const type = typeRaw.toUpperCase();
  let clusterType: ClusterType = 'SIMPLE';
  if (type === '' || type === 'SIMPLE') {
    // ok
  } else if (type === 'ORIGINAL_DST') {
    clusterType = 'ORIGINAL_DST';
  } else if (type === 'STATIC' || type === 'DYNAMIC' || type === 'EDS') {
    st.issues.warn(c.at('type'), `${showValue(typeRaw)} is treated as SIMPLE (static host list), as MOSN does for cluster types without a factory`);
  } else if (type === 'STRICT_DNS') {
    st.issues.error(c.at('type'), `${showValue(typeRaw)} cluster type is not supported yet (only SIMPLE and ORIGINAL_DST)`);
  } else {
    st.issues.error(c.at('type'), `${showValue(typeRaw)} is not a cluster type (expected SIMPLE or ORIGINAL_DST)`);
  }

  let lbType: LbType = DEFAULTS.lbType;
  const lbRaw = c.str('lb_type');
  if (lbRaw !== undefined && lbRaw !== '') {
    const up = lbRaw.toUpperCase();
    if ((LB_TYPES as readonly string[]).includes(up)) lbType = up as LbType;
    else if (KNOWN_MOSN_LB_TYPES.has(up)) st.issues.error(c.at('lb_type'), `${showValue(lbRaw)} is not supported yet (supported: ${LB_TYPES.join(', ')})`);
    else st.issues.error(c.at('lb_type'), `${showValue(lbRaw)} is not a load balancer type (supported: ${LB_TYPES.join(', ')})`);
  }

  // MOSN (pkg/upstream/cluster): an ORIGINAL_DST cluster balances with LB_ORIGINAL_DST, and that
  // balancer picks the original destination whatever the cluster type says.
  let originalDstLb: OriginalDstLbConfig | undefined;
  if (clusterType === 'ORIGINAL_DST' || lbType === 'LB_ORIGINAL_DST') {
    clusterType = 'ORIGINAL_DST';
    lbType = 'LB_ORIGINAL_DST';
    originalDstLb = parseOriginalDstLbConfig(st, c);
  } else {
    c.warnIfSet('original_dst_lb_config', 'only used by ORIGINAL_DST clusters; ignored');
    c.warnIfSet('cleanup_interval', 'only used by ORIGINAL_DST clusters; ignored');
  }

  const hv = c.get('hosts');
  const hosts = clusterType === 'ORIGINAL_DST' ? [] : parseHosts(st, c);
  if (clusterType === 'ORIGINAL_DST') {
    if (Array.isArray(hv) && hv.length > 0) st.issues.warn(c.at('hosts'), 'an ORIGINAL_DST cluster connects to each connection\'s original destination; hosts ignored');
  } else if (hv === undefined || (Array.isArray(hv) && hv.length === 0)) st.issues.warn(c.at('hosts'), 'cluster has no hosts; connections routed to it will fail');

  const connectTimeoutMs = c.duration('connect_timeout', { def: DEFAULTS.connectTimeoutMs, positive: true });
  const mrpc = c.int('max_request_per_conn');
  const cbl = c.int('conn_buffer_limit_bytes');
  const circuitBreakers = parseCircuitBreakers(st, c);

  let tlsContext: TlsContextConfig | undefined;
  if (c.has('tls_context')) tlsContext = parseTlsContext(st.issues, c.get('tls_context'), c.at('tls_context'), 'cluster');
  else c.accept('tls_context');
  // MOSN: cluster_manager_tls = use the cluster manager's tls_context for this cluster.
  if (c.bool('cluster_manager_tls', false) && tlsContext === undefined) {
    if (cmTls) tlsContext = cmTls;
    else st.issues.warn(c.at('cluster_manager_tls'), 'true, but cluster_manager.tls_context is absent or off: this cluster is plaintext');
  }

  const healthCheck = parseHealthCheck(st, c);
  const outlierDetection = parseOutlierDetection(st, c);
  const slowStart = parseSlowStart(st, c);
  const lbSubset = parseLbSubset(st, c, clusterType, lbType);
  c.warnIfSet('keepalive', 'upstream keepalive probing is not supported yet; ignored');
  c.warnIfSet('idle_timeout', 'upstream idle timeout is not supported yet; ignored');
  c.warnIfSet('mark', 'SO_MARK is not supported; ignored');
  c.warnIfSet('spec', 'service subscription is not supported; ignored');
  c.warnIfSet('lbconfig', 'not supported yet; ignored');
  c.warnIfSet('sub_type', 'not used; ignored');
  c.warnIfSet('cluster_pool_enable', 'not supported; ignored');
  for (const k of ['dns_refresh_rate', 'respect_dns_ttl', 'dns_lookup_family', 'dns_resolvers', 'dns_resolver_file', 'dns_resolver_port']) {
    c.warnIfSet(k, 'DNS settings only apply to STRICT_DNS clusters; ignored');
  }
  c.done();
  if (name === undefined) return undefined;
  const out: ClusterConfig = {
    name,
    type: clusterType,
    ...(healthCheck ? { healthCheck } : {}),
    ...(outlierDetection ? { outlierDetection } : {}),
    ...(slowStart ? { slowStart } : {}),
    lbType,
    ...(originalDstLb ? { originalDstLb } : {}),
    hosts,
    connectTimeoutMs,
    maxRequestPerConn: mrpc === 0 ? DEFAULTS.maxRequestPerConn : mrpc,
    connBufferLimitBytes: cbl === 0 ? DEFAULTS.connBufferLimitBytes : cbl,
    circuitBreakers,
    ...(lbSubset ? { lbSubset } : {}),
  };
  return tlsContext ? { ...out, tlsContext } : out;
}

export function parseClusterManager(st: ParseState, cm: ConfigObject | undefined): ClusterConfig[] {
  if (!cm) return [];
  let cmTls: TlsContextConfig | undefined;
  if (cm.has('tls_context')) cmTls = parseTlsContext(st.issues, cm.get('tls_context'), cm.at('tls_context'), 'cluster');
  else cm.accept('tls_context');
  cm.errorIfSet('clusters_configs', 'loading clusters from a directory is not supported yet; list them in clusters');
  cm.warnIfSet('cluster_pool_enable', 'not supported; ignored');
  const clusters: ClusterConfig[] = [];
  for (const item of cm.list('clusters')) {
    const c = ConfigObject.from(st.issues, item.path, item.value);
    if (!c) continue;
    const parsed = parseCluster(st, c, cmTls);
    if (parsed) clusters.push(parsed);
  }
  cm.done();
  return clusters;
}
