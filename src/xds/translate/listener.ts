/**
 * Listener -> ListenerConfig. The xDS listener is rewritten as a MOSN-shaped listener (the
 * `servers[].listeners[]` JSON) and parsed by the MOSN listener parser, so filter chain matches,
 * network filter configs (tcp_proxy, proxy) and stream filters go through the same registered
 * validators as a static config. TLS contexts are translated separately (tls.ts: SDS) and attached
 * to their chains afterwards.
 *
 *   filter chain network filters   envoy.filters.network.http_connection_manager -> `proxy` (HTTP family)
 *                                  envoy.filters.network.tcp_proxy              -> `tcp_proxy`
 *                                  istio.metadata_exchange, istio.stats (TCP)   -> skipped (telemetry)
 *                                  `proxy` with a TypedStruct (MOSN's own shape) -> `proxy` (Bolt, Dubbo, ...)
 *                                  a type with a registered network validator   -> that filter
 *   HTTP filters                   router (required), telemetry skipped, registered stream filters
 *                                  passed through, `is_optional` unknown ones skipped, others NACK
 *
 * Plaintext filter chains that match application_protocols of Envoy's http_inspector
 * (http/1.1, h2c, http/1.0) are merged with their non-HTTP sibling chain (same match otherwise):
 * one chain whose HTTP proxy takes HTTP and hands any other bytes to the sibling's filters
 * (MOSN's fallback_for_unknown_protocol), which is what http_inspector + two chains do in Envoy.
 */
import { streamFilterKind } from '../../api/stream-filter';
import { networkFilterValidators } from '../../config/filter-registry';
import { parseListener } from '../../config/listeners';
import { ConfigObject, type ParseState } from '../../config/reader';
import { standaloneContext } from '../../config/tcp-proxy';
import type { FilterConfig, ListenerConfig, RouterConfig, TlsContextConfig } from '../../config/types';
import { parseHttpProxyConfig } from '../../http/config';
import type { TranslatedListener, TranslationContext, XdsMessage } from '../types';
import { socketAddress } from './cluster';
import { metadataMatch, mosnMatch, routeConfig } from './route';
import { transportSocket } from './tls';
import {
  checkFields, durationMs, goDuration, isMsg, join, list, msg, str, strList, typeName, Tx, withoutType, wrappedBool, wrappedNum, type Msg,
} from './util';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const FAULT = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
const TYPED_STRUCTS = new Set(['udpa.type.v1.TypedStruct', 'xds.type.v3.TypedStruct']);

/** Telemetry-only filters: skipped with a warning (they never change what is forwarded). */
const TELEMETRY_HTTP = new Set([
  'istio.stats', 'istio.metadata_exchange', 'envoy.filters.http.grpc_stats', 'istio.alpn', 'envoy.filters.http.cors',
  'envoy.cors', 'envoy.grpc_stats', 'istio.peer_metadata', 'envoy.filters.http.peer_metadata',
]);
const TELEMETRY_HTTP_TYPES = new Set([
  'stats.PluginConfig', 'io.istio.http.peer_metadata.Config', 'envoy.extensions.filters.http.grpc_stats.v3.FilterConfig',
  'istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig', 'envoy.extensions.filters.http.cors.v3.Cors',
]);
const TELEMETRY_NETWORK = new Set(['istio.metadata_exchange', 'istio.stats', 'envoy.filters.network.metadata_exchange']);
const TELEMETRY_NETWORK_TYPES = new Set(['stats.PluginConfig', 'envoy.tcp.metadataexchange.config.MetadataExchange']);

/** ALPN names Envoy's http_inspector reports for plaintext HTTP. */
const HTTP_INSPECTOR_ALPN = new Set(['http/1.1', 'h2c', 'http/1.0']);

const CODECS: Readonly<Record<string, string>> = { AUTO: 'Auto', HTTP1: 'Http1', HTTP2: 'Http2' };

/** A name set that contains everything: xDS references (clusters, RDS routes) are resolved by warming, not here. */
class Everything<T> extends Set<T> {
  override has(): boolean {
    return true;
  }
}
class EverythingMap<K, V> extends Map<K, V> {
  override has(): boolean {
    return true;
  }
}

/** google.protobuf.Struct in decoded form ({fields: {k: {stringValue}}}) -> plain JSON. */
export function structToJson(v: unknown): unknown {
  if (!isMsg(v)) return undefined;
  if ('fields' in v || Object.keys(v).length === 0) {
    const out: Record<string, unknown> = {};
    const f = msg(v.fields) ?? {};
    for (const k of Object.keys(f)) out[k] = valueToJson(f[k]);
    return out;
  }
  return undefined;
}

function valueToJson(v: unknown): unknown {
  if (!isMsg(v)) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('numberValue' in v) return v.numberValue;
  if ('boolValue' in v) return v.boolValue;
  if ('structValue' in v) return structToJson(v.structValue);
  if ('listValue' in v) return (Array.isArray(msg(v.listValue)?.values) ? (msg(v.listValue)?.values as unknown[]) : []).map(valueToJson);
  return null;
}

interface ChainOut {
  /** MOSN-shaped chain (filter_chain_match, filters). */
  mosn: Record<string, unknown>;
  /** HTTP proxy configs to validate with the HTTP family's parser, by filter index. */
  http: Map<number, Record<string, unknown>>;
  tls?: TlsContextConfig;
  path: string;
}

interface ListenerState {
  readonly tx: Tx;
  readonly name: string;
  readonly routes: Set<string>;
  readonly secrets: Set<string>;
  readonly routers: RouterConfig[];
  /** Stream filters of the first HCM, as MOSN stream_filters, and the path they came from. */
  streamFilters?: { list: Record<string, unknown>[]; key: string; path: string };
  pendingSecrets: boolean;
}

/**
 * The stream-filter kind an HTTP filter maps to ('' = none registered): `http_X` first (the kind
 * that reads Envoy's config shape where a MOSN-shaped `X` also exists, e.g. http_fault vs fault),
 * then `X`, for the name `envoy.filters.http.X` and the type `envoy.extensions.filters.http.X.v3.*`.
 */
function registeredStreamFilter(name: string, tc: Msg | undefined): string {
  const shorts = [name.replace(/^envoy\.filters\.http\./, '').replace(/^envoy\./, '')];
  const t = /^envoy\.extensions\.filters\.http\.([a-z0-9_]+)\.v3\./.exec(typeName(tc));
  if (t !== null) shorts.push(t[1]);
  for (const sh of shorts) {
    for (const c of [`http_${sh}`, sh]) if (streamFilterKind(c) !== undefined) return c;
  }
  return '';
}

function httpFilters(st: ListenerState, filters: Msg[], path: string): Record<string, unknown>[] {
  const tx = st.tx;
  const out: Record<string, unknown>[] = [];
  let router = -1;
  filters.forEach((f, i) => {
    const p = join(path, i);
    checkFields(tx, f, p, { ok: ['name', 'typedConfig', 'isOptional', 'disabled'], nack: { configDiscovery: 'filter configs from ECDS are not supported' } });
    const name = str(f.name);
    const tc = msg(f.typedConfig);
    const t = typeName(tc);
    if (name === 'envoy.filters.http.router' || t === ROUTER) {
      if (router >= 0) tx.fail(p, 'a second router filter');
      router = i;
      if (tc !== undefined) {
        checkFields(tx, tc, join(p, 'typedConfig'), {
          ok: ['dynamicStats', 'suppressEnvoyHeaders', 'startChildSpan'],
          warn: { upstreamLog: 'upstream access logs are not supported; ignored', strictCheckHeaders: 'not supported; ignored', respectExpectedRqTimeout: 'not supported; ignored', suppressGrpcRequestFailureCodeStats: 'ignored', upstreamHttpFilters: 'upstream HTTP filters are not supported; ignored' },
        });
      }
      return;
    }
    if (router >= 0) tx.fail(p, `${JSON.stringify(name)} comes after the router filter (the router must be the last HTTP filter)`);
    if (f.disabled === true) {
      tx.warn(p, `${JSON.stringify(name)} is disabled by default (enabled per route, which is not supported); skipped`);
      return;
    }
    if (TELEMETRY_HTTP.has(name) || TELEMETRY_HTTP_TYPES.has(t)) {
      tx.warn(p, `${JSON.stringify(name)} is a telemetry-only filter; skipped`);
      return;
    }
    if ((name === 'envoy.filters.http.fault' || t === FAULT) && tc !== undefined && tc.abort === undefined && tc.delay === undefined) {
      // Istio always installs the fault filter; without abort or delay it does nothing (per-route
      // fault configs are typed_per_filter_config, warned about on the routes).
      tx.warn(p, 'fault filter without abort or delay has no effect; skipped');
      return;
    }
    const reg = registeredStreamFilter(name, tc);
    if (reg !== '') {
      out.push({ type: reg, config: withoutType(tc) });
      return;
    }
    if (f.isOptional === true) {
      tx.warn(p, `${JSON.stringify(name)} is not supported and marked is_optional; skipped`);
      return;
    }
    tx.fail(p, `HTTP filter ${JSON.stringify(name)}${t !== '' ? ` (${t})` : ''} is not supported (it could change security or routing; mark it is_optional to skip it)`);
  });
  if (router < 0) tx.fail(path, 'has no router filter (envoy.filters.http.router)');
  return out;
}

function httpConnectionManager(st: ListenerState, tc: Msg, path: string, chainIndex: number): Record<string, unknown> {
  const tx = st.tx;
  checkFields(tx, tc, path, {
    ok: ['statPrefix', 'codecType', 'rds', 'routeConfig', 'httpFilters', 'commonHttpProtocolOptions', 'http2ProtocolOptions', 'httpProtocolOptions',
      'requestTimeout', 'requestHeadersTimeout', 'maxRequestHeadersKb', 'normalizePath', 'mergeSlashes', 'pathWithEscapedSlashesAction', 'generateRequestId',
      'useRemoteAddress', 'streamIdleTimeout'],
    warn: {
      accessLog: 'access logs from xDS are not supported; ignored',
      tracing: 'tracing is not supported; ignored',
      forwardClientCertDetails: 'x-forwarded-client-cert handling is not supported; the header is passed as received',
      setCurrentClientCertDetails: 'x-forwarded-client-cert handling is not supported; ignored',
      xffNumTrustedHops: 'x-forwarded-for trust settings are not supported; ignored',
      skipXffAppend: 'not supported; ignored',
      via: 'not supported; ignored',
      serverName: 'not supported; ignored',
      serverHeaderTransformation: 'not supported; ignored',
      upgradeConfigs: 'upgrade settings are not configurable; Upgrade/CONNECT follow the proxy\'s defaults',
      internalAddressConfig: 'not supported; ignored',
      preserveExternalRequestId: 'not supported; ignored',
      alwaysSetRequestIdInResponse: 'not supported; ignored',
      drainTimeout: 'not supported; ignored (the server\'s drain applies)',
      delayedCloseTimeout: 'not supported; ignored',
      streamErrorOnInvalidHttpMessage: 'not supported; ignored',
      localReplyConfig: 'not supported; ignored',
      requestIdExtension: 'not supported; ignored',
      proxy_100Continue: 'not supported; ignored',
      representIpv4RemoteAddressAsIpv4MappedIpv6: 'ignored',
      originalIpDetectionExtensions: 'not supported; ignored',
      earlyHeaderMutationExtensions: 'not supported; ignored',
      stripMatchingHostPort: 'ignored',
      stripAnyHostPort: 'ignored',
      addUserAgent: 'ignored',
      userAgent: 'ignored',
      maxRequestsPerConnection: 'not supported; ignored',
      accessLogOptions: 'ignored',
      appendXForwardedPort: 'ignored',
      appendLocalOverload: 'ignored',
      proxyStatusConfig: 'ignored',
      typedHeaderValidationConfig: 'ignored',
      http3ProtocolOptions: 'ignored',
    },
    nack: {
      scopedRoutes: 'scoped routes (SRDS) are not supported',
      routeConfigName: 'not supported',
    },
  });
  const codec = str(tc.codecType) || 'AUTO';
  const down = CODECS[codec];
  if (down === undefined) tx.fail(join(path, 'codecType'), `${codec} is not supported (AUTO, HTTP1, HTTP2)`);
  let routerName = '';
  const rds = msg(tc.rds);
  const inline = msg(tc.routeConfig);
  if (rds !== undefined) {
    checkFields(tx, rds, join(path, 'rds'), { ok: ['routeConfigName', 'configSource'] });
    routerName = str(rds.routeConfigName);
    if (routerName === '') tx.fail(join(path, 'rds.routeConfigName'), 'is required');
    st.routes.add(routerName);
  } else if (inline !== undefined) {
    routerName = str(inline.name) || `${st.name}/inline/${chainIndex}`;
    const rc = routeConfig(tx, inline, join(path, 'routeConfig'), routerName);
    const same = st.routers.find((r) => r.name === routerName);
    if (same === undefined) st.routers.push(rc);
    else if (JSON.stringify(same) !== JSON.stringify(rc)) tx.fail(join(path, 'routeConfig.name'), `${JSON.stringify(routerName)} names two different inline route configurations`);
  } else {
    tx.fail(path, 'needs rds or route_config');
  }
  const ec: Record<string, unknown> = {};
  const setDur = (k: string, v: unknown): void => {
    const ms = durationMs(v);
    if (ms !== undefined) ec[k] = goDuration(ms);
  };
  setDur('request_timeout', tc.requestTimeout);
  setDur('headers_timeout', tc.requestHeadersTimeout);
  const common = msg(tc.commonHttpProtocolOptions);
  if (common !== undefined) {
    const cp = join(path, 'commonHttpProtocolOptions');
    checkFields(tx, common, cp, {
      ok: ['idleTimeout', 'maxHeadersCount'],
      warn: { maxConnectionDuration: 'not supported; ignored', maxStreamDuration: 'not supported; ignored', headersWithUnderscoresAction: 'not supported; ignored', maxRequestsPerConnection: 'not supported; ignored', maxResponseHeadersKb: 'ignored' },
    });
    setDur('idle_timeout', common.idleTimeout);
    const mh = wrappedNum(common.maxHeadersCount);
    if (mh !== undefined) ec.max_headers = mh;
  }
  const kb = wrappedNum(tc.maxRequestHeadersKb);
  if (kb !== undefined) ec.max_header_size = kb * 1024;
  const h2 = msg(tc.http2ProtocolOptions);
  if (h2 !== undefined) {
    const hp = join(path, 'http2ProtocolOptions');
    checkFields(tx, h2, hp, {
      ok: ['maxConcurrentStreams', 'initialStreamWindowSize'],
      warn: { initialConnectionWindowSize: 'ignored', hpackTableSize: 'ignored', allowConnect: 'ignored', allowMetadata: 'ignored', connectionKeepalive: 'ignored', overrideStreamErrorOnInvalidHttpMessage: 'ignored', maxOutboundFrames: 'ignored', maxOutboundControlFrames: 'ignored', maxConsecutiveInboundFramesWithEmptyPayload: 'ignored', maxInboundPriorityFramesPerStream: 'ignored', maxInboundWindowUpdateFramesPerDataFrameSent: 'ignored', streamErrorOnInvalidHttpMessaging: 'ignored' },
    });
    const mcs = wrappedNum(h2.maxConcurrentStreams);
    if (mcs !== undefined) ec.h2_max_concurrent_streams = mcs;
    const isw = wrappedNum(h2.initialStreamWindowSize);
    if (isw !== undefined) ec.h2_initial_window_size = isw;
  }
  if (msg(tc.httpProtocolOptions) !== undefined) tx.warn(join(path, 'httpProtocolOptions'), 'HTTP/1.1 options are not supported; ignored');
  const np = wrappedBool(tc.normalizePath);
  if (np !== undefined) ec.normalize_path = np;
  if (typeof tc.mergeSlashes === 'boolean') ec.merge_slashes = tc.mergeSlashes;
  const esc = str(tc.pathWithEscapedSlashesAction);
  if (esc !== '' && esc !== 'IMPLEMENTATION_SPECIFIC_DEFAULT') ec.path_with_escaped_slashes_action = esc;
  const gen = wrappedBool(tc.generateRequestId);
  if (gen !== undefined) ec.generate_request_id = gen;
  if (wrappedBool(tc.useRemoteAddress) === true) tx.warn(join(path, 'useRemoteAddress'), 'x-forwarded-for is not rewritten from the peer address; ignored');
  if (tc.streamIdleTimeout !== undefined) tx.warn(join(path, 'streamIdleTimeout'), 'per-stream idle timeout is not supported; request_timeout and idle_timeout apply');

  const sf = httpFilters(st, list(tc.httpFilters), join(path, 'httpFilters'));
  const key = JSON.stringify(sf);
  if (st.streamFilters === undefined) st.streamFilters = { list: sf, key, path: join(path, 'httpFilters') };
  else if (st.streamFilters.key !== key) {
    tx.fail(join(path, 'httpFilters'), `differs from ${st.streamFilters.path}: Outrigger runs one stream filter list per listener, so every HTTP connection manager of a listener must have the same HTTP filters`);
  }
  return { downstream_protocol: down, router_config_name: routerName, ...(Object.keys(ec).length > 0 ? { extend_config: ec } : {}) };
}

function tcpProxy(st: ListenerState, tc: Msg, path: string): Record<string, unknown> {
  const tx = st.tx;
  checkFields(tx, tc, path, {
    ok: ['statPrefix', 'cluster', 'weightedClusters', 'idleTimeout', 'maxConnectAttempts', 'metadataMatch'],
    warn: {
      accessLog: 'access logs from xDS are not supported; ignored',
      accessLogOptions: 'ignored',
      hashPolicy: 'hash policies are not supported; ignored',
      maxDownstreamConnectionDuration: 'not supported; ignored',
      downstreamIdleTimeout: 'not supported; ignored',
      upstreamIdleTimeout: 'not supported; ignored',
      backoffOptions: 'not supported; ignored',
      flushAccessLogOnConnected: 'ignored',
      accessLogFlushInterval: 'ignored',
    },
    nack: {
      tunnelingConfig: 'tunneling TCP over HTTP is not supported',
      onDemand: 'on-demand clusters are not supported',
      proxyProtocolTlvs: 'PROXY protocol TLVs are not supported',
    },
  });
  const out: Record<string, unknown> = {};
  const sp = str(tc.statPrefix);
  if (sp !== '') out.stat_prefix = sp;
  const wc = msg(tc.weightedClusters);
  let mm = metadataMatch(tx, tc.metadataMatch, join(path, 'metadataMatch'));
  if (typeof tc.cluster === 'string' && tc.cluster !== '') out.cluster = tc.cluster;
  else if (wc !== undefined) {
    const all = list(wc.clusters);
    const cs = all.filter((c) => (wrappedNum(c.weight) ?? (typeof c.weight === 'number' ? c.weight : 0)) > 0);
    if (cs.length === 1) {
      out.cluster = str(cs[0].name);
      // Envoy: the cluster's criteria over the proxy's.
      const own = metadataMatch(tx, cs[0].metadataMatch, join(join(join(join(path, 'weightedClusters'), 'clusters'), all.indexOf(cs[0])), 'metadataMatch'));
      if (own !== undefined) mm = { ...(mm ?? {}), ...own };
    } else tx.fail(join(path, 'weightedClusters'), 'weighted clusters in tcp_proxy are not supported (only one cluster with a non-zero weight)');
  }
  if (mm !== undefined) out.metadata_match = mosnMatch(mm);
  // Envoy's default TCP idle timeout is 1 h; 0 disables it.
  const idle = durationMs(tc.idleTimeout);
  out.idle_timeout = goDuration(idle ?? 3_600_000);
  const mca = wrappedNum(tc.maxConnectAttempts);
  if (mca !== undefined) out.max_connect_attempts = mca;
  return out;
}

function networkFilters(st: ListenerState, filters: Msg[], path: string, chainIndex: number): { mosn: Record<string, unknown>[]; http: Map<number, Record<string, unknown>> } {
  const tx = st.tx;
  const out: Record<string, unknown>[] = [];
  const http = new Map<number, Record<string, unknown>>();
  filters.forEach((f, i) => {
    const p = join(path, i);
    checkFields(tx, f, p, { ok: ['name', 'typedConfig'], nack: { configDiscovery: 'filter configs from ECDS are not supported' } });
    const name = str(f.name);
    const tc = msg(f.typedConfig);
    const t = typeName(tc);
    const tp = join(p, 'typedConfig');
    if (t === HCM || (tc === undefined && name === 'envoy.filters.network.http_connection_manager')) {
      http.set(out.length, httpConnectionManager(st, tc ?? {}, tp, chainIndex));
      out.push({ type: 'proxy', config: {} });
    } else if (t === TCP_PROXY || (tc === undefined && name === 'envoy.filters.network.tcp_proxy')) {
      out.push({ type: 'tcp_proxy', config: tcpProxy(st, tc ?? {}, tp) });
    } else if (TELEMETRY_NETWORK.has(name) || TELEMETRY_NETWORK_TYPES.has(t)) {
      tx.warn(p, `${JSON.stringify(name)} is a telemetry-only filter; skipped`);
    } else if (tc !== undefined && TYPED_STRUCTS.has(t) && (name === 'proxy' || name === 'mosn.proxy' || name === 'x_proxy')) {
      // MOSN's own network filter shape (Bolt, Dubbo and other RPC protocols): the TypedStruct's
      // value is MOSN's `proxy` filter config; its router_config_name is an RDS route configuration.
      const cfg = structToJson(tc.value);
      if (!isMsg(cfg)) return tx.fail(join(tp, 'value'), 'must be a MOSN proxy filter config object');
      const rn = cfg.router_config_name;
      if (typeof rn === 'string' && rn !== '') st.routes.add(rn);
      out.push({ type: 'proxy', config: cfg });
    } else if (t === 'envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy') {
      tx.fail(p, 'Envoy\'s dubbo_proxy is not supported: send Dubbo (and Bolt) as MOSN\'s `proxy` network filter in a TypedStruct (see src/xds/README.md)');
    } else {
      const short = name.replace(/^envoy\.filters\.network\./, '');
      if (short !== 'proxy' && networkFilterValidators.has(short)) out.push({ type: short, config: withoutType(tc) });
      else tx.fail(p, `network filter ${JSON.stringify(name)}${t !== '' ? ` (${t})` : ''} is not supported`);
    }
  });
  if (out.length === 0) tx.fail(path, 'no supported network filter is left in this chain (only telemetry filters)');
  return { mosn: out, http };
}

function filterChainMatch(tx: Tx, m: Msg, path: string): Record<string, unknown> {
  checkFields(tx, m, path, {
    ok: ['destinationPort', 'prefixRanges', 'serverNames', 'transportProtocol', 'applicationProtocols', 'sourcePrefixRanges', 'directSourcePrefixRanges', 'sourcePorts', 'sourceType', 'addressSuffix', 'suffixLen'],
  });
  const ranges = (v: unknown): Record<string, unknown>[] => list(v).map((r) => ({ address_prefix: str(r.addressPrefix), prefix_len: wrappedNum(r.prefixLen) ?? 0 }));
  const out: Record<string, unknown> = {};
  const dp = wrappedNum(m.destinationPort);
  if (dp !== undefined) out.destination_port = dp;
  if (m.prefixRanges !== undefined) out.prefix_ranges = ranges(m.prefixRanges);
  if (m.sourcePrefixRanges !== undefined) out.source_prefix_ranges = ranges(m.sourcePrefixRanges);
  if (m.directSourcePrefixRanges !== undefined) out.direct_source_prefix_ranges = ranges(m.directSourcePrefixRanges);
  if (m.serverNames !== undefined) out.server_names = strList(m.serverNames);
  if (typeof m.transportProtocol === 'string' && m.transportProtocol !== '') out.transport_protocol = m.transportProtocol;
  if (m.applicationProtocols !== undefined) out.application_protocols = strList(m.applicationProtocols);
  if (Array.isArray(m.sourcePorts)) out.source_ports = m.sourcePorts;
  const stype = str(m.sourceType);
  if (stype !== '' && stype !== 'ANY') out.source_type = stype; // refused by the MOSN parser
  if (m.addressSuffix !== undefined) out.address_suffix = m.addressSuffix;
  if (m.suffixLen !== undefined) out.suffix_len = wrappedNum(m.suffixLen);
  return out;
}

function chain(st: ListenerState, fc: Msg, path: string, index: number): ChainOut {
  const tx = st.tx;
  checkFields(tx, fc, path, {
    ok: ['filterChainMatch', 'filters', 'transportSocket', 'name', 'metadata'],
    warn: { transportSocketConnectTimeout: 'not supported; ignored' },
    nack: { useProxyProto: 'the PROXY protocol is not supported', onDemandConfiguration: 'on-demand filter chains are not supported' },
  });
  const mosn: Record<string, unknown> = {};
  const m = msg(fc.filterChainMatch);
  if (m !== undefined) mosn.filter_chain_match = filterChainMatch(tx, m, join(path, 'filterChainMatch'));
  const nf = networkFilters(st, list(fc.filters), join(path, 'filters'), index);
  mosn.filters = nf.mosn;
  const out: ChainOut = { mosn, http: nf.http, path };
  const ts = transportSocket(tx, msg(fc.transportSocket), join(path, 'transportSocket'), 'listener');
  if (ts !== undefined) {
    out.tls = ts.ctx;
    for (const s of ts.secrets) st.secrets.add(s);
    if (ts.pending) st.pendingSecrets = true;
  }
  return out;
}

/** The match without its http_inspector ALPN list, as a key. */
function keyWithoutHttpAlpn(m: Record<string, unknown> | undefined): string {
  const c = { ...(m ?? {}) };
  delete c.application_protocols;
  return JSON.stringify(Object.keys(c).sort().map((k) => [k, c[k]]));
}

function isHttpInspectorChain(c: ChainOut): boolean {
  const m = c.mosn.filter_chain_match as Record<string, unknown> | undefined;
  const alpn = m === undefined ? [] : strList(m.application_protocols);
  return c.tls === undefined && alpn.length > 0 && alpn.every((a) => HTTP_INSPECTOR_ALPN.has(a)) && m?.transport_protocol !== 'tls';
}

/**
 * Plaintext chains selected by http_inspector's ALPN: the ALPN condition is dropped (the proxy
 * detects HTTP itself) and a sibling chain with the same remaining match becomes the fallback
 * for non-HTTP bytes.
 */
function mergeHttpInspectorChains(tx: Tx, chains: ChainOut[]): ChainOut[] {
  const drop = new Set<ChainOut>();
  for (const c of chains) {
    if (!isHttpInspectorChain(c)) continue;
    const m = c.mosn.filter_chain_match as Record<string, unknown>;
    const k = keyWithoutHttpAlpn(m);
    const plainSibling = (o: ChainOut): boolean => o !== c && !drop.has(o) && o.tls === undefined && !isHttpInspectorChain(o);
    const exact = chains.find((o) => plainSibling(o) && keyWithoutHttpAlpn(o.mosn.filter_chain_match as Record<string, unknown> | undefined) === k
      && strList((o.mosn.filter_chain_match as Record<string, unknown> | undefined)?.application_protocols).length === 0);
    // Without a sibling of the same match, the catch-all chain (no match at all: Istio's
    // PassthroughFilterChain) takes non-HTTP bytes, as it would in Envoy; it stays for TLS too.
    const sib = exact ?? chains.find((o) => plainSibling(o) && o.mosn.filter_chain_match === undefined);
    const nm = { ...m };
    delete nm.application_protocols;
    c.mosn.filter_chain_match = nm;
    if (sib === undefined) continue;
    const filters = c.mosn.filters as Record<string, unknown>[];
    if (c.http.size !== 1 || filters.length !== 1 || !c.http.has(0)) {
      tx.fail(c.path, 'an http_inspector chain (application_protocols http/1.1, h2c) with a non-HTTP sibling chain must hold one http_connection_manager');
    }
    c.http.get(0)!.fallback_for_unknown_protocol = true;
    c.mosn.filters = [...filters, ...(sib.mosn.filters as Record<string, unknown>[])];
    for (const [j, h] of sib.http) c.http.set(filters.length + j, h);
    if (sib === exact) drop.add(sib);
  }
  return chains.filter((c) => !drop.has(c));
}

export function translateListener(m: XdsMessage, ctx: TranslationContext): TranslatedListener {
  const name = str(m.name);
  const tx = new Tx(name || '(unnamed listener)', ctx);
  if (name === '') tx.fail('name', 'is required');
  checkFields(tx, m, '', {
    ok: ['name', 'address', 'filterChains', 'defaultFilterChain', 'listenerFilters', 'listenerFiltersTimeout', 'continueOnListenerFiltersTimeout',
      'perConnectionBufferLimitBytes', 'metadata', 'trafficDirection', 'bindToPort', 'deprecatedV1', 'statPrefix', 'useOriginalDst',
      'drainType', 'ignoreGlobalConnLimit', 'maxConnectionsToAcceptPerSocketEvent', 'transparent'],
    warn: {
      accessLog: 'listener access logs from xDS are not supported; ignored',
      socketOptions: 'socket options are not supported; ignored',
      tcpFastOpenQueueLength: 'TCP fast open is not supported; ignored',
      connectionBalanceConfig: 'connection balancing is not supported; ignored (the kernel spreads accepts over the workers)',
      reusePort: 'ignored (workers share one listening socket)',
      enableReusePort: 'ignored (workers share one listening socket)',
      tcpBacklogSize: 'not supported; ignored',
      freebind: 'not supported; ignored',
      enableMptcp: 'not supported; ignored',
    },
    nack: {
      udpListenerConfig: 'UDP listeners are not supported',
      apiListener: 'API listeners are not supported',
      additionalAddresses: 'additional listener addresses are not supported',
      filterChainMatcher: 'the filter_chain_matcher API is not supported (filter_chain_match is)',
      internalListener: 'internal listeners are not supported',
    },
  });
  const addr = socketAddress(tx, msg(m.address), 'address', true);
  if (addr.port < 0 || addr.port > 65535) tx.fail('address.socketAddress.portValue', `${addr.port} is not a port`);
  // Original destination (the config model's transparent interception): use_original_dst hands
  // connections to the listener at their original destination; the original_dst listener filter
  // reads it (SO_ORIGINAL_DST after REDIRECT, or the local address when the listener is
  // transparent, Envoy's TPROXY setup).
  const transparent = wrappedBool(m.transparent) === true;
  let originalDstFilter = false;
  list(m.listenerFilters).forEach((lf, i) => {
    const p = join('listenerFilters', i);
    checkFields(tx, lf, p, { ok: ['name', 'typedConfig', 'filterDisabled'], nack: { configDiscovery: 'filter configs from ECDS are not supported' } });
    const n = str(lf.name);
    const t = typeName(msg(lf.typedConfig));
    if (n === 'envoy.filters.listener.tls_inspector' || t.endsWith('.tls_inspector.v3.TlsInspector')) {
      // The listener reads the ClientHello whenever a chain matches on SNI/ALPN/transport or terminates TLS.
    } else if (n === 'envoy.filters.listener.http_inspector' || t.endsWith('.http_inspector.v3.HttpInspector')) {
      // Plaintext HTTP detection: done by the HTTP proxy (chains merged below).
    } else if (n === 'envoy.filters.listener.original_dst' || t.endsWith('.original_dst.v3.OriginalDst')) {
      const oc = msg(lf.typedConfig);
      if (oc !== undefined) checkFields(tx, oc, join(p, 'typedConfig'), { ok: [], warn: { trafficDirection: 'ignored (the original destination is read the same way in both directions)' } });
      originalDstFilter = true;
    } else {
      tx.fail(p, `listener filter ${JSON.stringify(n)} is not supported (it would change which chain serves a connection)`);
    }
    if (lf.filterDisabled !== undefined) tx.warn(join(p, 'filterDisabled'), 'the filter runs on every connection (no disable predicate); ignored');
  });
  const st: ListenerState = { tx, name, routes: new Set(), secrets: new Set(), routers: [], pendingSecrets: false };
  let chains = list(m.filterChains).map((fc, i) => chain(st, fc, join('filterChains', i), i));
  const dfc = msg(m.defaultFilterChain);
  if (dfc !== undefined) {
    if (dfc.filterChainMatch !== undefined) tx.warn('defaultFilterChain.filterChainMatch', 'ignored (the default chain takes what no other chain matches)');
    const { filterChainMatch: _ignored, ...rest } = dfc;
    chains.push(chain(st, rest, 'defaultFilterChain', chains.length));
  }
  if (chains.length === 0) tx.fail('filterChains', 'at least one filter chain (or default_filter_chain) is required');
  chains = mergeHttpInspectorChains(tx, chains);

  // The MOSN parser sees each http_connection_manager as an Http1 `proxy` (a shape it accepts);
  // the HTTP family's parser then reads the real one (codec AUTO included) below.
  for (const c of chains) {
    const fl = c.mosn.filters as Record<string, unknown>[];
    for (const [j, h] of c.http) fl[j] = { type: 'proxy', config: { ...h, downstream_protocol: 'Http1' } };
  }
  const bind = wrappedBool(m.bindToPort) ?? wrappedBool(msg(m.deprecatedV1)?.bindToPort) ?? true;
  const mosnListener: Record<string, unknown> = {
    name,
    address: `${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`,
    bind_port: bind,
    // Envoy has no listener-level idle timeout: the HTTP/TCP filters' own timeouts apply.
    connection_idle_timeout: 0,
    filter_chains: chains.map((c) => c.mosn),
    stream_filters: st.streamFilters?.list ?? [],
  };
  if (wrappedBool(m.useOriginalDst) === true) mosnListener.use_original_dst = true;
  if (originalDstFilter) mosnListener.listener_filters = [{ type: 'original_dst', config: { type: transparent ? 'tproxy' : 'redirect' } }];
  if (transparent) mosnListener.transparent = true;
  const buf = wrappedNum(m.perConnectionBufferLimitBytes);
  if (buf !== undefined) mosnListener.per_connection_buffer_limit_bytes = Math.max(1024, buf);

  const parsed = tx.mosn('', (issues) => {
    const pst: ParseState = { issues, clusterNames: new EverythingMap<string, string>() };
    const lo = new ConfigObject(issues, 'listener', mosnListener);
    const l = parseListener(pst, lo, new Everything<string>(), new Map(), []);
    // The HTTP family's own parser for each http_connection_manager (codec AUTO included).
    const vctx = standaloneContext(issues, name);
    const filterChains = (l?.filterChains ?? []).map((fc, i) => {
      const c = chains[i];
      const filters: FilterConfig[] = fc.filters.map((f, j) => {
        const h = c.http.get(j);
        return h === undefined ? f : { type: 'proxy', config: parseHttpProxyConfig(h, `${c.path}.filters[${j}]`, vctx) as unknown as Record<string, unknown> };
      });
      return { ...fc, filters, ...(c.tls !== undefined ? { tlsContexts: [c.tls] } : {}) };
    });
    return l === undefined ? undefined : { ...l, filterChains };
  });
  if (parsed === undefined) return tx.fail('', 'listener could not be translated');
  const listener: ListenerConfig = parsed;
  return {
    name, listener, routers: st.routers,
    deps: { routes: [...st.routes].filter((r) => !st.routers.some((x) => x.name === r)), secrets: [...st.secrets], endpoints: [] },
  };
}
