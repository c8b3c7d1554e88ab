/** servers[].listeners section: addresses, filter chains, stream filters, access logs. */
import * as net from 'node:net';
import { showValue } from './errors';
import { DEFAULTS } from './defaults';
import { streamFilterValidator } from '../api/stream-filter';
import { checkChainMatches, parseFilterChainMatch } from './filter-chain-match';
import {
  HARMLESS_MOSN_STREAM_FILTERS, KNOWN_MOSN_NETWORK_FILTERS, networkFilterValidators, supportedNetworkFilterTypes,
  type FilterValidationContext,
} from './filter-registry';
import { parseListenerOriginalDst } from './original-dst';
import { parseProxyFilterConfig } from './proxy-filter';
import { ConfigObject, type ParseState } from './reader';
import { checkTlsSetConsistent, parseTlsContext } from './tls-context';
import type { AccessLogConfig, FilterChainConfig, FilterConfig, HostPort, ListenerConfig, TlsContextConfig } from './types';
import { isPlainObject, parseHostPort } from './values';

export function parseFilterList(
  st: ParseState, items: { value: unknown; path: string }[], kind: 'network' | 'stream', mk: (listener: string) => FilterValidationContext,
  listenerName: string,
): FilterConfig[] {
  const out: FilterConfig[] = [];
  for (const item of items) {
    const f = ConfigObject.from(st.issues, item.path, item.value);
    if (!f) continue;
    const type = f.str('type', { required: true });
    const cfg = f.get('config');
    const cfgPath = f.at('config');
    f.errorIfSet('go_plugin_config', 'Go plugin filters are not supported');
    f.done();
    if (type === undefined) continue;
    if (cfg !== undefined && !isPlainObject(cfg)) {
      st.issues.error(cfgPath, `${showValue(cfg)} must be an object`);
      continue;
    }
    // Stream filters validate through their registered kind (src/api/stream-filter.ts), the registry the workers build from.
    const fn = kind === 'network' ? networkFilterValidators.get(type) : streamFilterValidator(type);
    const ctx = mk(listenerName);
    if (fn) {
      out.push({ type, config: fn(cfg ?? {}, cfgPath, ctx) });
      continue;
    }
    const tpath = f.at('type');
    if (kind === 'network') {
      if (type === 'proxy') {
        const p = parseProxyFilterConfig(cfg ?? {}, cfgPath, ctx);
        const protos = p.downstreamProtocols.length ? ` for downstream_protocol ${showValue(p.downstreamProtocols.join(','))}` : '';
        st.issues.error(tpath, `"proxy" network filter${protos} is not supported yet`);
      } else if (KNOWN_MOSN_NETWORK_FILTERS.has(type)) {
        st.issues.error(tpath, `${showValue(type)} network filter is not supported yet (supported: ${supportedNetworkFilterTypes().join(', ')})`);
      } else {
        st.issues.error(tpath, `${showValue(type)} is not a known network filter type (supported: ${supportedNetworkFilterTypes().join(', ')})`);
      }
    } else if (HARMLESS_MOSN_STREAM_FILTERS.has(type)) {
      st.issues.warn(tpath, `${showValue(type)} stream filter is not supported yet; ignored`);
    } else {
      // Unknown or security-relevant (ip_access, jwt_authn, payload_limit, flow control, wasm, ...):
      // silently skipping it could open access the config meant to restrict.
      st.issues.error(tpath, `${showValue(type)} stream filter is not supported; refusing to run without it`);
    }
  }
  return out;
}

export interface BoundAddress {
  readonly key: string;
  readonly path: string;
  readonly host: string;
  readonly port: number;
}

function addressesConflict(a: BoundAddress, b: BoundAddress): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  if (a.host === b.host) return true;
  const v4any = (h: string) => h === '0.0.0.0';
  const v6any = (h: string) => h === '::';
  const fam = (h: string) => net.isIP(h);
  if (v6any(a.host) || v6any(b.host)) return true; // dual-stack wildcard
  if (v4any(a.host)) return fam(b.host) !== 6;
  if (v4any(b.host)) return fam(a.host) !== 6;
  return false;
}

export function parseListener(
  st: ParseState, l: ConfigObject, routerNames: Set<string>, listenerNames: Map<string, string>, bound: BoundAddress[],
): ListenerConfig | undefined {
  const network = (l.str('network', { def: 'tcp' }) || 'tcp').toLowerCase();
  if (network === 'udp' || network === 'unix') st.issues.error(l.at('network'), `${showValue(network)} listeners are not supported yet (only tcp)`);
  else if (network !== 'tcp') st.issues.error(l.at('network'), `${showValue(network)} must be tcp, udp or unix`);

  const addrStr = l.str('address', { required: true });
  let address: HostPort | undefined;
  if (addrStr !== undefined) {
    const r = parseHostPort(addrStr, { allowEmptyHost: true, allowPortZero: true });
    if (typeof r === 'string') st.issues.error(l.at('address'), `${showValue(addrStr)} is not host:port (${r})`);
    else address = r;
  }
  // MOSN (pkg/server/handler.go): a listener without a name is named after its address.
  const name = l.str('name') || addrStr || '';
  if (name !== '') {
    const prev = listenerNames.get(name);
    if (prev) st.issues.error(l.at('name'), `${showValue(name)} is a duplicate listener name (also ${prev})`);
    else listenerNames.set(name, l.at('name'));
  }

  // MOSN's bind_port defaults to false: such a listener only receives connections redirected to it.
  const bindPort = l.bool('bind_port', false);
  if (!bindPort && addrStr !== undefined) {
    st.issues.warn(l.at('bind_port'), 'false (the MOSN default): the listener does not bind its address and only gets connections handed over by a use_original_dst listener; set "bind_port": true to accept connections');
  }
  if (address && bindPort) {
    const me: BoundAddress = { key: `${address.host}:${address.port}`, path: l.at('address'), host: address.host, port: address.port };
    const clash = bound.find((b) => addressesConflict(b, me));
    if (clash) st.issues.error(me.path, `${showValue(addrStr)} is already used by ${clash.path} (${clash.key})`);
    bound.push(me);
  }

  l.accept('type'); // ingress/egress: a label only
  l.warnIfSet('reuseport', 'SO_REUSEPORT is not supported yet; ignored');
  l.warnIfSet('default_read_buffer_size', 'not supported; ignored');
  l.warnIfSet('log_path', 'listener-level log_path is a legacy MOSN key; ignored (use access_logs)');
  l.warnIfSet('log_level', 'listener-level log_level is a legacy MOSN key; ignored');
  const origDst = parseListenerOriginalDst(st, l); // use_original_dst, listener_filters (original_dst)
  const inspector = l.bool('inspector', false);
  const connectionIdleTimeoutMs = l.duration('connection_idle_timeout', { def: DEFAULTS.connectionIdleTimeoutMs });
  // Not configurable in MOSN (json:"-"); accepted under Envoy's name as an Outrigger extension.
  const perConnBufferLimitBytes = l.int('per_connection_buffer_limit_bytes', { min: 1024, def: DEFAULTS.perConnBufferLimitBytes });

  const accessLogs: AccessLogConfig[] = [];
  for (const item of l.list('access_logs')) {
    const a = ConfigObject.from(st.issues, item.path, item.value);
    if (!a) continue;
    const path = a.str('log_path', { required: true });
    const format = a.str('log_format');
    a.done();
    if (path !== undefined) accessLogs.push(format ? { path, format } : { path });
  }

  const mkCtx = (listenerName: string): FilterValidationContext => ({
    issues: st.issues,
    error: (p, m) => st.issues.error(p, m),
    warn: (p, m) => st.issues.warn(p, m),
    hasCluster: (n) => st.clusterNames.has(n),
    hasRouter: (n) => routerNames.has(n),
    listenerName,
    object: (v, p) => ConfigObject.from(st.issues, p, v),
  });

  const chains: FilterChainConfig[] = [];
  const chainItems = l.list('filter_chains');
  if (chainItems.length === 0) st.issues.error(l.at('filter_chains'), 'at least one filter chain is required');
  chainItems.forEach((item) => {
    const fc = ConfigObject.from(st.issues, item.path, item.value);
    if (!fc) return;
    fc.warnIfSet('match', 'MOSN\'s match string has no effect; ignored (use filter_chain_match)');
    const match = parseFilterChainMatch(fc);
    const tlsContexts: { ctx: TlsContextConfig; path: string }[] = [];
    const hasCtx = fc.has('tls_context');
    const set = fc.list('tls_context_set');
    if (hasCtx && set.length > 0) st.issues.error(fc.at('tls_context_set'), 'give either tls_context or tls_context_set, not both');
    if (hasCtx) {
      const t = parseTlsContext(st.issues, fc.get('tls_context'), fc.at('tls_context'), 'listener');
      if (t) tlsContexts.push({ ctx: t, path: fc.at('tls_context') });
    } else fc.accept('tls_context');
    for (const s of set) {
      // MOSN (pkg/mtls/provider.go): entries with status false are skipped.
      const t = parseTlsContext(st.issues, s.value, s.path, 'listener');
      if (t) tlsContexts.push({ ctx: t, path: s.path });
    }
    checkTlsSetConsistent(st.issues, tlsContexts);
    const fItems = fc.list('filters');
    if (fItems.length === 0) st.issues.error(fc.at('filters'), 'at least one network filter is required');
    const filters = parseFilterList(st, fItems, 'network', mkCtx, name);
    fc.done();
    chains.push({ filters, ...(tlsContexts.length > 0 ? { tlsContexts: tlsContexts.map((t) => t.ctx) } : {}), ...(match ? { match } : {}) });
  });
  checkChainMatches(st, l.at('filter_chains'), chains);
  const streamFilters = parseFilterList(st, l.list('stream_filters'), 'stream', mkCtx, name);
  if (inspector && !chains.some((c) => c.tlsContexts !== undefined)) {
    st.issues.warn(l.at('inspector'), 'has no effect without an enabled tls_context (the inspector tells TLS from plaintext)');
  }
  l.done();
  if (!address) return undefined;
  return {
    name, address, bindPort, filterChains: chains, streamFilters, accessLogs, connectionIdleTimeoutMs, perConnBufferLimitBytes, inspector, ...origDst,
  };
}
