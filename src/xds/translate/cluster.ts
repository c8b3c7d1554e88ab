/**
 * Cluster -> ClusterConfig (by way of a MOSN-shaped cluster run through the MOSN cluster_manager
 * parser) and ClusterLoadAssignment -> hosts.
 *
 * Host weights: locality weight × endpoint weight (absent = 1), as the contract says; when the
 * largest product exceeds the config model's 1..128 range (MOSN's), all weights are scaled by one
 * factor (ratios kept, each at least 1).
 */
import * as net from 'node:net';
import { parseClusterManager } from '../../config/clusters';
import { ConfigObject, type ParseState } from '../../config/reader';
import { DEFAULTS } from '../../config/defaults';
import type { ClusterConfig, HostConfig, LbSubsetConfig, SubsetFallback, SubsetSelectorConfig, TlsContextConfig, TlsMatchConfig, UpstreamBindConfig } from '../../config/types';
import type { TranslatedCluster, TranslatedEndpoints, TranslationContext, XdsMessage } from '../types';
import { healthChecks, outlierDetection, panicThreshold, retryBudget, slowStart } from './resilience';
import { transportSocket } from './tls';
import { checkFields, durationMs, goDuration, join, list, msg, str, strList, Tx, wrappedBool, wrappedNum, type Msg } from './util';

const LB_POLICIES: Readonly<Record<string, string>> = {
  ROUND_ROBIN: 'LB_WEIGHTED_ROUNDROBIN', // Envoy's round robin honors host weights
  LEAST_REQUEST: 'LB_LEAST_REQUEST',
  RANDOM: 'LB_RANDOM',
};

const ENVOY_CONNECT_TIMEOUT_MS = 5000;
const HTTP_OPTIONS_TYPE = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** socket_address -> host:port ('' host = not an IP literal when `ipOnly`). */
export function socketAddress(tx: Tx, addr: Msg | undefined, path: string, ipOnly: boolean): { host: string; port: number } {
  if (addr === undefined) return tx.fail(path, 'is required');
  checkFields(tx, addr, path, { ok: ['socketAddress'], nack: { pipe: 'unix socket addresses are not supported', envoyInternalAddress: 'internal listeners are not supported' } });
  const sa = msg(addr.socketAddress);
  const sp = join(path, 'socketAddress');
  if (sa === undefined) return tx.fail(sp, 'is required');
  checkFields(tx, sa, sp, { ok: ['address', 'portValue', 'protocol', 'ipv4Compat'], nack: { namedPort: 'named ports are not supported', resolverName: 'custom resolvers are not supported' } });
  if (str(sa.protocol) === 'UDP') tx.fail(join(sp, 'protocol'), 'UDP is not supported');
  const host = str(sa.address);
  if (host === '') tx.fail(join(sp, 'address'), 'is required');
  if (ipOnly && net.isIP(host) === 0) tx.fail(join(sp, 'address'), `${JSON.stringify(host)} is not an IP address`);
  const port = typeof sa.portValue === 'number' ? sa.portValue : 0;
  return { host, port };
}

/** Scales weights into the model's 1..128 keeping their ratios. */
function scaleWeights(ws: number[]): number[] {
  const max = Math.max(0, ...ws);
  if (max <= DEFAULTS.maxHostWeight) return ws.map((w) => Math.max(DEFAULTS.minHostWeight, w));
  return ws.map((w) => Math.max(DEFAULTS.minHostWeight, Math.round((w * DEFAULTS.maxHostWeight) / max)));
}

const DROPPED_HEALTH = new Set(['UNHEALTHY', 'DRAINING', 'TIMEOUT']);

/** Envoy's filter_metadata key of the endpoint metadata that transport_socket_matches match on. */
const TRANSPORT_MATCH_KEY = 'envoy.transport_socket_match';

/**
 * A decoded google.protobuf.Struct of string values -> plain record. `strict`: a value of another
 * kind NACKs (a match criterion Outrigger would compare differently); else it is left out (it
 * can never equal a string criterion, so leaving it out changes no match).
 */
function stringStruct(tx: Tx, v: unknown, path: string, strict: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const fields = msg(msg(v)?.fields) ?? {};
  for (const k of Object.keys(fields)) {
    const sv = msg(fields[k])?.stringValue;
    if (typeof sv === 'string') out[k] = sv;
    else if (strict) tx.fail(join(path, k), 'only string match values are supported');
  }
  return out;
}

/** The endpoint's envoy.transport_socket_match metadata (undefined when it has none). */
function endpointTlsMatch(tx: Tx, meta: unknown, path: string): Record<string, string> | undefined {
  const fm = msg(msg(meta)?.filterMetadata);
  const tm = fm?.[TRANSPORT_MATCH_KEY];
  if (tm === undefined) return undefined;
  return stringStruct(tx, tm, join(join(path, 'filterMetadata'), TRANSPORT_MATCH_KEY), false);
}

/** Envoy's filter_metadata key of subset load balancing labels (endpoints) and criteria (routes). */
export const ENVOY_LB_KEY = 'envoy.lb';

/** The endpoint's envoy.lb labels (undefined when it has none). */
function endpointLabels(tx: Tx, meta: unknown, path: string): Record<string, string> | undefined {
  const lb = msg(msg(msg(meta)?.filterMetadata)?.[ENVOY_LB_KEY]);
  if (lb === undefined) return undefined;
  const labels = stringStruct(tx, lb, join(join(path, 'filterMetadata'), ENVOY_LB_KEY), false);
  return Object.keys(labels).length > 0 ? labels : undefined;
}

/** A google.protobuf.Struct of subset criteria (route metadata_match, default_subset): string values only (NACK). */
export function lbCriteria(tx: Tx, v: unknown, path: string): Record<string, string> {
  return stringStruct(tx, v, path, true);
}

const SUBSET_FALLBACKS: Readonly<Record<string, SubsetFallback>> = { NO_FALLBACK: 'NO_FALLBACK', ANY_ENDPOINT: 'ANY_ENDPOINT', DEFAULT_SUBSET: 'DEFAULT_SUBSET' };

/** Cluster.lb_subset_config -> LbSubsetConfig (Envoy semantics: a request without criteria takes the fallback). */
function lbSubsetConfig(tx: Tx, m: Msg, path: string): LbSubsetConfig | undefined {
  const nyi = 'is not supported';
  checkFields(tx, m, path, {
    ok: ['fallbackPolicy', 'defaultSubset', 'subsetSelectors'],
    nack: {
      localityWeightAware: `locality weights in subsets ${nyi}`, scaleLocalityWeight: `locality weights in subsets ${nyi}`,
      panicModeAny: `panic_mode_any ${nyi}`, listAsAny: `list values in endpoint metadata ${nyi}`,
      metadataFallbackPolicy: `fallback from request metadata ${nyi}`,
    },
  });
  const fb = str(m.fallbackPolicy) || 'NO_FALLBACK';
  const fallback = SUBSET_FALLBACKS[fb];
  if (fallback === undefined) return tx.fail(join(path, 'fallbackPolicy'), `${fb} is not a fallback policy`);
  const defaultSubset = m.defaultSubset !== undefined ? lbCriteria(tx, m.defaultSubset, join(path, 'defaultSubset')) : {};
  const selectors: SubsetSelectorConfig[] = [];
  list(m.subsetSelectors).forEach((sel, i) => {
    const sp = join(join(path, 'subsetSelectors'), i);
    checkFields(tx, sel, sp, {
      ok: ['keys', 'fallbackPolicy'],
      nack: { singleHostPerSubset: `single_host_per_subset ${nyi}`, fallbackKeysSubset: `KEYS_SUBSET fallback ${nyi}` },
    });
    const keys = [...new Set(strList(sel.keys))].sort();
    if (keys.length === 0) return tx.warn(sp, 'a selector without keys makes no subset; ignored');
    const sfb = str(sel.fallbackPolicy) || 'NOT_DEFINED';
    let own: SubsetFallback | undefined;
    if (sfb !== 'NOT_DEFINED') {
      own = SUBSET_FALLBACKS[sfb];
      if (own === undefined) tx.fail(join(sp, 'fallbackPolicy'), `${sfb} is not supported (NOT_DEFINED, NO_FALLBACK, ANY_ENDPOINT, DEFAULT_SUBSET)`);
    }
    if (selectors.some((x) => x.keys.join('\u0000') === keys.join('\u0000'))) return;
    selectors.push({ keys, ...(own !== undefined ? { fallback: own } : {}) });
  });
  if (selectors.length === 0) {
    tx.warn(path, 'no subset_selectors: subset load balancing is off');
    return undefined;
  }
  return { fallback, defaultSubset, selectors, noCriteria: 'fallback' };
}

/** locality_lb_endpoints -> hosts of the first priority level that has any usable host. */
function hostsOf(tx: Tx, localities: Msg[], path: string): HostConfig[] {
  const byPriority = new Map<number, { addr: { host: string; port: number }; weight: number; hostname?: string; tlsMatch?: Record<string, string>; metadata?: Record<string, string> }[]>();
  localities.forEach((loc, i) => {
    const lp = join(path, i);
    checkFields(tx, loc, lp, {
      ok: ['locality', 'lbEndpoints', 'loadBalancingWeight', 'priority', 'metadata'],
      warn: { proximity: 'not used; ignored' },
      nack: { ledsClusterLocalityConfig: 'LEDS is not supported' },
    });
    const lw = wrappedNum(loc.loadBalancingWeight) ?? 1;
    const prio = typeof loc.priority === 'number' ? loc.priority : 0;
    const level = byPriority.get(prio) ?? [];
    byPriority.set(prio, level);
    list(loc.lbEndpoints).forEach((e, j) => {
      const ep = join(join(lp, 'lbEndpoints'), j);
      checkFields(tx, e, ep, { ok: ['endpoint', 'healthStatus', 'metadata', 'loadBalancingWeight'], nack: { endpointName: 'named endpoints are not supported' } });
      if (DROPPED_HEALTH.has(str(e.healthStatus))) return;
      const end = msg(e.endpoint);
      if (end === undefined) tx.fail(join(ep, 'endpoint'), 'is required');
      checkFields(tx, end, join(ep, 'endpoint'), {
        ok: ['address', 'hostname', 'healthCheckConfig'],
        nack: { additionalAddresses: 'additional endpoint addresses are not supported' },
      });
      const addr = socketAddress(tx, msg(end.address), join(ep, 'endpoint.address'), true);
      if (addr.port < 1 || addr.port > 65535) tx.fail(join(ep, 'endpoint.address.socketAddress.portValue'), `${addr.port} is not a port`);
      const ew = wrappedNum(e.loadBalancingWeight) ?? 1;
      const hostname = str(end.hostname);
      const tlsMatch = endpointTlsMatch(tx, e.metadata, join(ep, 'metadata'));
      const metadata = endpointLabels(tx, e.metadata, join(ep, 'metadata'));
      level.push({ addr, weight: lw * ew, ...(hostname !== '' ? { hostname } : {}), ...(tlsMatch !== undefined ? { tlsMatch } : {}), ...(metadata !== undefined ? { metadata } : {}) });
    });
  });
  const prios = [...byPriority.keys()].sort((a, b) => a - b);
  const first = prios.find((p) => (byPriority.get(p) ?? []).length > 0);
  if (first === undefined) return [];
  if (prios.some((p) => p > first && (byPriority.get(p) ?? []).length > 0)) {
    tx.warn(path, `hosts of priority levels above ${first} are not used (no priority failover; only the first level with usable hosts serves)`);
  }
  const level = byPriority.get(first) ?? [];
  const ws = scaleWeights(level.map((h) => h.weight));
  return level.map((h, i) => ({
    address: { host: h.addr.host, port: h.addr.port }, weight: ws[i],
    ...(h.hostname !== undefined ? { hostname: h.hostname } : {}),
    ...(h.tlsMatch !== undefined ? { tlsMatch: h.tlsMatch } : {}),
    ...(h.metadata !== undefined ? { metadata: h.metadata } : {}),
  }));
}

export function translateEndpoints(m: XdsMessage, ctx: TranslationContext): TranslatedEndpoints {
  const name = str(m.clusterName);
  const tx = new Tx(name || '(unnamed cluster load assignment)', ctx);
  if (name === '') tx.fail('clusterName', 'is required');
  checkFields(tx, m, '', { ok: ['clusterName', 'endpoints', 'policy'], nack: { namedEndpoints: 'named endpoints are not supported' } });
  const pol = msg(m.policy);
  if (pol !== undefined) {
    checkFields(tx, pol, 'policy', {
      ok: ['overprovisioningFactor', 'weightedPriorityHealth'],
      warn: { dropOverloads: 'drop_overloads is not supported; no request is dropped', endpointStaleAfter: 'not supported; ignored' },
    });
  }
  return { name, hosts: hostsOf(tx, list(m.endpoints), 'endpoints') };
}

function httpProtocolOptions(tx: Tx, m: Msg, path: string, mosn: Record<string, unknown>): void {
  checkFields(tx, m, path, {
    ok: ['commonHttpProtocolOptions', 'explicitHttpConfig', 'useDownstreamProtocolConfig', 'autoConfig'],
    warn: { upstreamHttpProtocolOptions: 'not supported; ignored', httpFilters: 'upstream HTTP filters are not supported; ignored', headerValidationConfig: 'not supported; ignored' },
  });
  if (m.explicitHttpConfig !== undefined || m.autoConfig !== undefined) {
    tx.warn(path, 'the upstream HTTP version follows the listener\'s proxy config (upstream_protocol), not the cluster');
  }
  const c = msg(m.commonHttpProtocolOptions);
  if (c !== undefined) {
    const cp = join(path, 'commonHttpProtocolOptions');
    checkFields(tx, c, cp, {
      ok: ['maxRequestsPerConnection'],
      warn: {
        idleTimeout: 'upstream idle timeout is not supported; ignored', maxConnectionDuration: 'not supported; ignored',
        maxHeadersCount: 'not supported; ignored', maxStreamDuration: 'not supported; ignored',
        headersWithUnderscoresAction: 'not supported; ignored', maxResponseHeadersKb: 'not supported; ignored',
      },
    });
    const n = wrappedNum(c.maxRequestsPerConnection);
    if (n !== undefined) mosn.max_request_per_conn = n;
  }
}

function circuitBreakers(tx: Tx, m: Msg, path: string): Record<string, unknown>[] {
  checkFields(tx, m, path, { ok: ['thresholds'], warn: { perHostThresholds: 'per-host thresholds are not supported; ignored' } });
  const ts = list(m.thresholds);
  const def = ts.filter((t) => str(t.priority) === '' || str(t.priority) === 'DEFAULT');
  if (ts.length > def.length) tx.warn(join(path, 'thresholds'), 'HIGH priority thresholds are not used (no request priorities)');
  const t = def[0];
  if (t === undefined) return [];
  const tp = join(join(path, 'thresholds'), ts.indexOf(t));
  checkFields(tx, t, tp, {
    ok: ['priority', 'maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries', 'trackRemaining', 'retryBudget'],
    warn: { maxConnectionPools: 'not supported; ignored' },
  });
  const out: Record<string, unknown> = {};
  const set = (k: string, v: unknown): void => {
    const n = wrappedNum(v);
    if (n !== undefined) out[k] = n;
  };
  set('max_connections', t.maxConnections);
  set('max_pending_requests', t.maxPendingRequests);
  set('max_requests', t.maxRequests);
  set('max_retries', t.maxRetries);
  const rb = msg(t.retryBudget);
  if (rb !== undefined) out.retry_budget = retryBudget(tx, rb, join(tp, 'retryBudget'));
  return [out];
}

export function translateCluster(m: XdsMessage, ctx: TranslationContext): TranslatedCluster {
  const name = str(m.name);
  const tx = new Tx(name || '(unnamed cluster)', ctx);
  if (name === '') tx.fail('name', 'is required');
  // The cluster type first: it is the most basic reason to refuse a cluster.
  const type = str(m.type) || 'STATIC';
  let edsName: string | undefined;
  if (type === 'EDS') {
    const eds = msg(m.edsClusterConfig);
    edsName = str(eds?.serviceName) || name;
  } else if (type !== 'STATIC' && type !== 'ORIGINAL_DST') {
    tx.fail('type', `${type} clusters are not supported (STATIC, EDS and ORIGINAL_DST)`);
  }
  checkFields(tx, m, '', {
    ok: ['name', 'type', 'edsClusterConfig', 'connectTimeout', 'lbPolicy', 'loadAssignment', 'circuitBreakers', 'maxRequestsPerConnection',
      'typedExtensionProtocolOptions', 'transportSocket', 'perConnectionBufferLimitBytes', 'metadata', 'altStatName', 'commonLbConfig',
      'cleanupInterval', 'originalDstLbConfig', 'respectDnsTtl', 'dnsRefreshRate', 'dnsLookupFamily', 'ignoreHealthOnHostRemoval', 'trackClusterStats', 'protocolSelection',
      'transportSocketMatches', 'upstreamBindConfig', 'healthChecks', 'outlierDetection', 'roundRobinLbConfig', 'leastRequestLbConfig', 'lbSubsetConfig'],
    warn: {
      upstreamConnectionOptions: 'TCP keepalive settings are not supported; ignored',
      commonHttpProtocolOptions: 'deprecated; not supported; ignored',
      http2ProtocolOptions: 'the upstream HTTP version follows the listener\'s proxy config; ignored',
      httpProtocolOptions: 'not supported; ignored',
      closeConnectionsOnHostHealthFailure: 'not supported; ignored',
      connectionPoolPerDownstreamConnection: 'not supported; ignored',
      preconnectPolicy: 'not supported; ignored',
      lrsServer: 'load reporting is not supported; ignored',
      dnsResolvers: 'DNS settings only apply to DNS clusters; ignored',
      typedDnsResolverConfig: 'DNS settings only apply to DNS clusters; ignored',
      waitForWarmOnInit: 'ignored (clusters always wait for their endpoints)',
    },
    nack: {
      clusterType: 'custom cluster types are not supported',
      ringHashLbConfig: 'consistent hashing (RING_HASH) is not supported',
      maglevLbConfig: 'consistent hashing (MAGLEV) is not supported',
      loadBalancingPolicy: 'load balancing policy extensions are not supported',
      filters: 'upstream network filters are not supported',
    },
  });
  const mosn: Record<string, unknown> = { name, type: type === 'ORIGINAL_DST' ? 'ORIGINAL_DST' : 'SIMPLE' };
  const lb = str(m.lbPolicy) || 'ROUND_ROBIN';
  if (type === 'ORIGINAL_DST') {
    // Envoy requires CLUSTER_PROVIDED here; the cluster balances by original destination.
    if (lb !== 'CLUSTER_PROVIDED' && lb !== 'ROUND_ROBIN') tx.fail('lbPolicy', `${lb} does not apply to an ORIGINAL_DST cluster (CLUSTER_PROVIDED)`);
    mosn.lb_type = 'LB_ORIGINAL_DST';
    const ci = durationMs(m.cleanupInterval);
    if (ci !== undefined && ci > 0) mosn.cleanup_interval = goDuration(ci);
    const od = msg(m.originalDstLbConfig);
    if (od !== undefined) {
      checkFields(tx, od, 'originalDstLbConfig', {
        ok: ['useHttpHeader', 'httpHeaderName'],
        nack: { upstreamPortOverride: 'overriding the upstream port is not supported', metadataKey: 'destinations from metadata are not supported' },
      });
      mosn.original_dst_lb_config = { use_http_header: od.useHttpHeader === true, ...(str(od.httpHeaderName) !== '' ? { http_header_name: str(od.httpHeaderName) } : {}) };
    }
  } else {
    const lbType = LB_POLICIES[lb];
    if (lbType === undefined) tx.fail('lbPolicy', `${lb} is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM)`);
    mosn.lb_type = lbType;
    if (m.originalDstLbConfig !== undefined) tx.warn('originalDstLbConfig', 'only used by ORIGINAL_DST clusters; ignored');
  }
  lbPolicyConfigs(tx, m, lb, mosn);
  // Envoy's connect_timeout default is 5 s (MOSN's is 10 s).
  const ct = durationMs(m.connectTimeout) ?? ENVOY_CONNECT_TIMEOUT_MS;
  if (ct <= 0) tx.fail('connectTimeout', 'must be greater than 0');
  mosn.connect_timeout = goDuration(ct);
  const mrpc = wrappedNum(m.maxRequestsPerConnection);
  if (mrpc !== undefined) mosn.max_request_per_conn = mrpc;
  const buf = wrappedNum(m.perConnectionBufferLimitBytes);
  if (buf !== undefined) mosn.conn_buffer_limit_bytes = buf;
  const cb = msg(m.circuitBreakers);
  if (cb !== undefined) mosn.circuit_breakers = circuitBreakers(tx, cb, 'circuitBreakers');
  const tepo = msg(m.typedExtensionProtocolOptions) ?? {};
  for (const k of Object.keys(tepo)) {
    const o = msg(tepo[k]);
    const p = join('typedExtensionProtocolOptions', k);
    if (o !== undefined && str(o['@type']).endsWith(HTTP_OPTIONS_TYPE)) httpProtocolOptions(tx, o, p, mosn);
    else tx.warn(p, 'protocol options of this type are not supported; ignored');
  }
  const clb = msg(m.commonLbConfig);
  if (clb !== undefined) {
    checkFields(tx, clb, 'commonLbConfig', {
      ok: ['localityWeightedLbConfig', 'healthyPanicThreshold'],
      warn: { zoneAwareLbConfig: 'zone-aware routing is not supported; ignored', updateMergeWindow: 'ignored', ignoreNewHostsUntilFirstHc: 'ignored', closeConnectionsOnHostSetChange: 'ignored', consistentHashingLbConfig: 'ignored', overrideHostStatus: 'ignored' },
      nack: { localityConfigSpecifier: 'not supported' },
    });
  }
  const panic = clb !== undefined ? panicThreshold(tx, clb, 'commonLbConfig') : undefined;
  const hc = healthChecks(tx, list(m.healthChecks), 'healthChecks');
  if (hc !== undefined) mosn.health_check = hc;
  const od = msg(m.outlierDetection);
  if (od !== undefined) mosn.outlier_detection = outlierDetection(tx, od, 'outlierDetection');
  let hosts: HostConfig[] = [];
  if (type === 'STATIC') {
    const la = msg(m.loadAssignment);
    if (la !== undefined) hosts = translateEndpoints({ clusterName: name, ...la }, ctx).hosts.slice();
    else tx.warn('loadAssignment', 'a STATIC cluster without load_assignment has no hosts');
  } else if (m.loadAssignment !== undefined) {
    tx.warn('loadAssignment', `ignored on an ${type} cluster`);
  }
  const secrets: string[] = [];
  let tlsContext: TlsContextConfig | undefined;
  const ts = transportSocket(tx, msg(m.transportSocket), 'transportSocket', 'cluster');
  if (ts !== undefined) {
    tlsContext = ts.ctx;
    secrets.push(...ts.secrets);
  }
  const tlsMatches = transportSocketMatches(tx, list(m.transportSocketMatches), 'transportSocketMatches', secrets);
  const ub = msg(m.upstreamBindConfig);
  const upstreamBind = ub !== undefined ? upstreamBindConfig(tx, ub, 'upstreamBindConfig') : undefined;
  const lsc = msg(m.lbSubsetConfig);
  const lbSubset = lsc !== undefined ? lbSubsetConfig(tx, lsc, 'lbSubsetConfig') : undefined;
  if (lbSubset !== undefined && type === 'ORIGINAL_DST') tx.fail('lbSubsetConfig', 'subset load balancing does not apply to ORIGINAL_DST clusters');
  // The MOSN cluster_manager parser normalizes and validates (defaults, ranges, warnings).
  const parsed = tx.mosn('', (issues) => {
    const st: ParseState = { issues, clusterNames: new Map() };
    const cm = new ConfigObject(issues, 'cluster_manager', { clusters: [{ ...mosn, ...(type === 'ORIGINAL_DST' ? {} : { hosts: [{ address: '127.0.0.1:1' }] }) }] });
    return parseClusterManager(st, cm)[0];
  });
  if (parsed === undefined) return tx.fail('', 'cluster could not be translated');
  // Envoy: hosts of a health-checked cluster start unhealthy until their first check (run at once).
  const envoyHc = parsed.healthCheck !== undefined ? { healthCheck: { ...parsed.healthCheck, startUnhealthy: true, initialDelayMs: 0 } } : {};
  const cluster: ClusterConfig = {
    ...parsed, ...envoyHc, hosts, ...(panic !== undefined ? { panicThreshold: panic } : {}), ...(tlsContext !== undefined ? { tlsContext } : {}),
    ...(tlsMatches.length > 0 ? { tlsMatches } : {}), ...(upstreamBind !== undefined ? { upstreamBind } : {}),
    ...(lbSubset !== undefined ? { lbSubset } : {}),
  };
  return { name, cluster, ...(edsName !== undefined ? { edsName } : {}), deps: { routes: [], secrets, endpoints: edsName !== undefined ? [edsName] : [] } };
}

/**
 * round_robin_lb_config / least_request_lb_config: their slow_start_config -> MOSN slow_start
 * (applied by the weighted round robin only). The least-request tuning knobs change which host
 * is picked and are not implemented: NACK.
 */
function lbPolicyConfigs(tx: Tx, m: Msg, lb: string, mosn: Record<string, unknown>): void {
  const rr = msg(m.roundRobinLbConfig);
  const lr = msg(m.leastRequestLbConfig);
  if (rr !== undefined) {
    checkFields(tx, rr, 'roundRobinLbConfig', { ok: ['slowStartConfig'] });
    if (lb !== 'ROUND_ROBIN') tx.warn('roundRobinLbConfig', `only used with lb_policy ROUND_ROBIN (here ${lb}); ignored`);
  }
  if (lr !== undefined) {
    checkFields(tx, lr, 'leastRequestLbConfig', {
      ok: ['slowStartConfig'],
      nack: { choiceCount: 'least-request options are not supported', activeRequestBias: 'least-request options are not supported' },
    });
    if (lb !== 'LEAST_REQUEST') tx.warn('leastRequestLbConfig', `only used with lb_policy LEAST_REQUEST (here ${lb}); ignored`);
  }
  const own = lb === 'ROUND_ROBIN' ? rr : lb === 'LEAST_REQUEST' ? lr : undefined;
  const ssc = msg(own?.slowStartConfig);
  if (ssc === undefined) return;
  const where = `${lb === 'ROUND_ROBIN' ? 'roundRobinLbConfig' : 'leastRequestLbConfig'}.slowStartConfig`;
  const ss = slowStart(tx, ssc, where, lb === 'ROUND_ROBIN');
  if (ss !== undefined) mosn.slow_start = ss;
}

/** transport_socket_matches -> tlsMatches (first match wins, per host: src/upstream/transport-match.ts); their secrets join `secrets`. */
function transportSocketMatches(tx: Tx, ms: Msg[], path: string, secrets: string[]): TlsMatchConfig[] {
  return ms.map((e, i) => {
    const p = join(path, i);
    checkFields(tx, e, p, { ok: ['name', 'match', 'transportSocket'] });
    const match = stringStruct(tx, e.match, join(p, 'match'), true);
    const ts = transportSocket(tx, msg(e.transportSocket), join(p, 'transportSocket'), 'cluster');
    if (ts !== undefined) secrets.push(...ts.secrets.filter((n) => !secrets.includes(n)));
    return { name: str(e.name), match, ...(ts !== undefined ? { tlsContext: ts.ctx } : {}) };
  });
}

/** upstream_bind_config -> the source address of upstream sockets (Istio's 127.0.0.6 for inbound passthrough). */
function upstreamBindConfig(tx: Tx, m: Msg, path: string): UpstreamBindConfig {
  checkFields(tx, m, path, {
    ok: ['sourceAddress', 'freebind'],
    warn: { socketOptions: 'socket options are not supported; ignored' },
    nack: {
      extraSourceAddresses: 'several source addresses are not supported',
      additionalSourceAddresses: 'several source addresses are not supported',
      localAddressSelector: 'local address selectors are not supported',
    },
  });
  if (wrappedBool(m.freebind) === true) tx.warn(join(path, 'freebind'), 'IP_FREEBIND is not supported: the source address must be local (as 127.0.0.6 on loopback is)');
  const sa = msg(m.sourceAddress);
  const sp = join(path, 'sourceAddress');
  if (sa === undefined) return tx.fail(sp, 'is required');
  checkFields(tx, sa, sp, { ok: ['address', 'portValue', 'protocol', 'ipv4Compat'], nack: { namedPort: 'named ports are not supported', resolverName: 'custom resolvers are not supported' } });
  const host = str(sa.address);
  if (net.isIP(host) === 0) tx.fail(join(sp, 'address'), `${JSON.stringify(host)} is not an IP address`);
  const port = typeof sa.portValue === 'number' ? sa.portValue : 0;
  if (port !== 0) tx.fail(join(sp, 'portValue'), `${port}: a fixed source port is not supported (0 only)`);
  return { sourceAddress: host };
}
