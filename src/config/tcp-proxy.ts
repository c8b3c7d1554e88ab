/** The `tcp_proxy` network filter config (MOSN pkg/config/v2/proxy.go StreamProxy). */
import { ConfigError, showValue } from './errors';
import { DEFAULTS } from './defaults';
import { registerFilterValidator, type FilterValidationContext } from './filter-registry';
import { ConfigObject, IssueCollector } from './reader';
import type { CidrRange, TcpProxyConfig, TcpProxyRouteConfig } from './types';
import { parseCidr, parsePortList } from './values';
import { readLbLabels } from './lb-labels';

// ---------------------------------------------------------------------------------------------

export function standaloneContext(issues: IssueCollector, listenerName = ''): FilterValidationContext {
  return {
    issues,
    error: (p, m) => issues.error(p, m),
    warn: (p, m) => issues.warn(p, m),
    hasCluster: () => true,
    hasRouter: () => true,
    listenerName,
    object: (v, p) => ConfigObject.from(issues, p, v),
  };
}

function readAlias(o: ConfigObject, keys: string[]): { key: string; value: unknown } | undefined {
  const present = keys.filter((k) => o.has(k));
  for (const k of keys) o.accept(k);
  if (present.length > 1) {
    o.issues.error(o.at(present[1]!), `conflicts with ${o.spelled(present[0]!)}; give only one`);
  }
  if (present.length === 0) return undefined;
  return { key: present[0]!, value: o.get(present[0]!) };
}

function parseCidrList(o: ConfigObject, keys: string[]): CidrRange[] {
  const found = readAlias(o, keys);
  if (!found) return [];
  const path = o.at(found.key);
  if (!Array.isArray(found.value)) {
    o.issues.error(path, `${showValue(found.value)} must be an array of CIDR ranges`);
    return [];
  }
  const out: CidrRange[] = [];
  found.value.forEach((item, i) => {
    const p = `${path}[${i}]`;
    if (typeof item === 'string') {
      const r = parseCidr(item);
      if (typeof r === 'string') o.issues.error(p, `${showValue(item)} is not a CIDR range (${r})`);
      else out.push(r);
      return;
    }
    // MOSN's own shape: {"address": "127.0.0.1", "length": 32}
    const c = ConfigObject.from(o.issues, p, item);
    if (!c) return;
    const address = c.str('address', { required: true });
    const lenV = c.get('length');
    c.done();
    if (address === undefined) return;
    if (lenV === undefined) {
      // MOSN would treat a missing length as /0 (match everything); refuse rather than widen a filter.
      o.issues.error(`${p}.length`, 'is required (a missing length would match every address)');
      return;
    }
    if (typeof lenV !== 'number' || !Number.isInteger(lenV)) {
      o.issues.error(`${p}.length`, `${showValue(lenV)} must be an integer`);
      return;
    }
    const r = parseCidr(`${address}/${lenV}`);
    if (typeof r === 'string') o.issues.error(p, `${showValue(`${address}/${lenV}`)} is not a CIDR range (${r})`);
    else out.push(r);
  });
  return out;
}

function parsePortField(o: ConfigObject, keys: string[]): string | undefined {
  const found = readAlias(o, keys);
  if (!found || found.value === '') return undefined;
  const path = o.at(found.key);
  if (typeof found.value !== 'string' && typeof found.value !== 'number') {
    o.issues.error(path, `${showValue(found.value)} must be a port list string like "80,443,8000-8100"`);
    return undefined;
  }
  const r = parsePortList(found.value);
  if (typeof r !== 'string') {
    o.issues.error(path, `${showValue(found.value)} is not a port list: ${r.reason}`);
    return undefined;
  }
  return r;
}

function checkClusterRef(ctx: FilterValidationContext, name: string, path: string): void {
  if (!ctx.hasCluster(name)) ctx.error(path, `${showValue(name)} is not a cluster defined in cluster_manager.clusters`);
}

/**
 * Validate a MOSN `tcp_proxy` network filter config (pkg/config/v2/proxy.go StreamProxy).
 * With a ctx, problems are reported there (cluster names are cross-checked); without one,
 * a ConfigError is thrown if anything is wrong.
 *
 * MOSN semantics kept: when `cluster` is set it is always used and `routes` are ignored.
 * Routes accept MOSN's untagged keys (`SourceAddrs` etc., entries `{address, length}`) and the
 * snake_case form (`source_addrs`, entries "10.0.0.0/8").
 */
export function parseTcpProxyConfig(config: unknown, path = 'config', ctx?: FilterValidationContext): TcpProxyConfig {
  const issues = ctx?.issues ?? new IssueCollector();
  const c = ctx ?? standaloneContext(issues);
  const o = ConfigObject.from(issues, path, config ?? {});
  const result: { -readonly [K in keyof TcpProxyConfig]: TcpProxyConfig[K] } = {
    statPrefix: c.listenerName || 'tcp_proxy',
    cluster: '',
    routes: [],
    idleTimeoutMs: DEFAULTS.tcpProxyIdleTimeoutMs,
    maxConnectAttempts: DEFAULTS.maxConnectAttempts,
  };
  if (o) {
    result.statPrefix = o.str('stat_prefix') || result.statPrefix;
    const cluster = o.str('cluster');
    if (cluster !== undefined && cluster !== '') {
      result.cluster = cluster;
      checkClusterRef(c, cluster, o.at('cluster'));
    }
    // Subset criteria (Envoy TcpProxy.metadata_match, written in MOSN's shape by the xDS translator).
    const mm = readLbLabels(o.get('metadata_match'), o.at('metadata_match'), true, (p, m) => issues.error(p, m), (p, m) => issues.error(p, m));
    if (Object.keys(mm).length > 0) result.metadataMatch = mm;
    // MOSN decodes idle_timeout as a Go time.Duration: a number is nanoseconds. Strings are our extension.
    result.idleTimeoutMs = o.duration('idle_timeout', { def: DEFAULTS.tcpProxyIdleTimeoutMs, numberUnit: 'ns' });
    const mca = o.get('max_connect_attempts');
    if (mca !== undefined && mca !== 0) {
      result.maxConnectAttempts = o.checkInt(mca, o.at('max_connect_attempts'), { min: 1, max: 100 }) ?? DEFAULTS.maxConnectAttempts;
    }
    const routes: TcpProxyRouteConfig[] = [];
    let routesWithEffect = false;
    for (const item of o.list('routes')) {
      const r = ConfigObject.from(issues, item.path, item.value);
      if (!r) continue;
      const rc = r.str('cluster', { required: true });
      if (rc !== undefined) checkClusterRef(c, rc, r.at('cluster'));
      const sourceAddrs = parseCidrList(r, ['sourceaddrs', 'source_addrs']);
      const destinationAddrs = parseCidrList(r, ['destinationaddrs', 'destination_addrs']);
      const sourcePort = parsePortField(r, ['sourceport', 'source_port']);
      const destinationPort = parsePortField(r, ['destinationport', 'destination_port']);
      r.done();
      const route: { -readonly [K in keyof TcpProxyRouteConfig]: TcpProxyRouteConfig[K] } = {
        cluster: rc ?? '', sourceAddrs, destinationAddrs,
      };
      if (sourcePort !== undefined) route.sourcePort = sourcePort;
      if (destinationPort !== undefined) route.destinationPort = destinationPort;
      if (rc !== result.cluster || sourceAddrs.length || destinationAddrs.length || sourcePort || destinationPort) routesWithEffect = true;
      routes.push(route);
    }
    result.routes = routes;
    if (result.cluster === '' && routes.length === 0 && cluster === undefined) {
      issues.error(o.at('cluster'), 'is required (or give routes)');
    } else if (result.cluster === '' && routes.length === 0) {
      issues.error(o.at('cluster'), `${showValue(cluster)} must not be empty (or give routes)`);
    } else if (result.cluster !== '' && routesWithEffect) {
      issues.warn(o.at('routes'), `ignored because cluster ${showValue(result.cluster)} is set (MOSN always uses cluster when present)`);
    }
    o.done();
  }
  if (!ctx && issues.errors.length > 0) throw new ConfigError(issues.errors, undefined, issues.warnings);
  return result;
}

registerFilterValidator('tcp_proxy', (config, path, ctx) => parseTcpProxyConfig(config, path, ctx) as unknown as Record<string, unknown>);
