/**
 * The xDS bootstrap sections of a config document: `dynamic_resources` (ADS), `static_resources`
 * and `node`, as MOSN's istio configs (configs/istio152/mosn_xds.json) and Envoy v3 bootstraps
 * write them. Both spellings of proto3 JSON keys are read (`socket_address`, `socketAddress`).
 *
 * Only ADS is implemented: `lds_config`/`cds_config` must be `ads: {}` or a gRPC
 * `api_config_source` on the ADS cluster (then served over the ADS stream, as MOSN does). The
 * ADS cluster is a static cluster with plaintext addresses (`hosts` in MOSN's v2 form, or
 * `load_assignment`); TLS to the control plane is refused (not built yet), never dropped.
 * Other static Envoy listeners, clusters and secrets are kept as JSON for src/xds to translate.
 */
import { showValue } from './errors';
import { ConfigObject, type ParseState } from './reader';
import type { HostPort, XdsConfig, XdsNodeConfig } from './types';
import { isHostnameOrIp, isPlainObject } from './values';

/** A key in snake_case or lowerCamelCase (ConfigObject keys are matched lowercased). */
function key(o: ConfigObject, snake: string): string {
  const camel = snake.replace(/_/g, '');
  return o.has(snake) ? snake : o.has(camel) ? camel : snake;
}

function objOf(o: ConfigObject, snake: string): ConfigObject | undefined {
  return o.obj(key(o, snake));
}

function listOf(o: ConfigObject, snake: string): { value: unknown; path: string }[] {
  return o.list(key(o, snake));
}

/** A unix socket address (`pipe.path`): pilot-agent's local xDS proxy (./etc/istio/proxy/XDS). */
function pipeAddress(st: ParseState, holder: ConfigObject): string | undefined {
  const pipe = holder.obj('pipe');
  if (!pipe) return undefined;
  const p = pipe.str('path', { required: true });
  pipe.accept('mode');
  pipe.done();
  return p === undefined || p === '' ? undefined : p;
}

function socketAddress(st: ParseState, holder: ConfigObject | undefined, pipes?: string[]): HostPort | undefined {
  if (!holder) return undefined;
  const pipe = pipes ? pipeAddress(st, holder) : undefined;
  if (pipe !== undefined) {
    pipes!.push(pipe);
    holder.done();
    return undefined;
  }
  const sa = objOf(holder, 'socket_address');
  holder.done();
  if (!sa) return undefined;
  const host = sa.str('address', { required: true }) ?? '';
  const pk = key(sa, 'port_value');
  const pv = sa.get(pk);
  const portNum = typeof pv === 'string' && /^\d+$/.test(pv) ? Number(pv) : pv;
  const port = pv === undefined ? undefined : sa.checkInt(portNum, sa.at(pk), { min: 1, max: 65535 });
  if (pv === undefined) st.issues.error(sa.at('port_value'), 'is required');
  sa.accept('protocol', 'resolver_name', 'resolvername', 'ipv4_compat', 'ipv4compat');
  sa.done();
  if (host !== '' && !isHostnameOrIp(host)) {
    st.issues.error(sa.at('address'), `${showValue(host)} is not an IP address or host name`);
    return undefined;
  }
  return port === undefined || host === '' ? undefined : { host, port };
}

/** The addresses of a static cluster: MOSN's v2 `hosts`, or `load_assignment` (unix socket paths go to `pipes`). */
function clusterAddresses(st: ParseState, c: ConfigObject, pipes: string[]): HostPort[] {
  const out: HostPort[] = [];
  for (const h of listOf(c, 'hosts')) {
    const a = socketAddress(st, ConfigObject.from(st.issues, h.path, h.value));
    if (a) out.push(a);
  }
  const la = objOf(c, 'load_assignment');
  if (la) {
    la.accept('cluster_name', 'clustername', 'policy');
    for (const e of listOf(la, 'endpoints')) {
      const eo = ConfigObject.from(st.issues, e.path, e.value);
      if (!eo) continue;
      eo.accept('locality', 'load_balancing_weight', 'loadbalancingweight', 'priority');
      for (const lb of listOf(eo, 'lb_endpoints')) {
        const lbo = ConfigObject.from(st.issues, lb.path, lb.value);
        if (!lbo) continue;
        lbo.accept('load_balancing_weight', 'loadbalancingweight', 'health_status', 'healthstatus', 'metadata');
        const ep = objOf(lbo, 'endpoint');
        lbo.done();
        if (!ep) continue;
        ep.accept('hostname', 'health_check_config', 'healthcheckconfig');
        const a = socketAddress(st, objOf(ep, 'address'), pipes);
        ep.done();
        if (a) out.push(a);
      }
      eo.done();
    }
    la.done();
  }
  return out;
}

const GRPC_TYPES: Record<string, boolean> = { GRPC: false, AGGREGATED_GRPC: false, DELTA_GRPC: true, AGGREGATED_DELTA_GRPC: true };

/** The ADS cluster name of an `ads_config` / `api_config_source`, and whether it asks for delta. */
function apiSource(st: ParseState, s: ConfigObject): { cluster?: string; delta: boolean; nodeOnce: boolean } {
  const tk = key(s, 'api_type');
  const apiType = s.str(tk) ?? 'GRPC';
  const delta = GRPC_TYPES[apiType.toUpperCase()];
  if (delta === undefined) st.issues.error(s.at(tk), `${showValue(apiType)}: only GRPC and DELTA_GRPC (ADS) are supported`);
  const tv = key(s, 'transport_api_version');
  const version = s.str(tv);
  if (version !== undefined && version.toUpperCase() !== 'V3' && version.toUpperCase() !== 'AUTO') st.issues.error(s.at(tv), `${showValue(version)}: only the v3 xDS API is supported`);
  const nodeOnce = s.bool(key(s, 'set_node_on_first_message_only'), false);
  s.warnIfSet(key(s, 'refresh_delay'), 'not used by gRPC subscriptions; ignored');
  s.warnIfSet(key(s, 'cluster_names'), 'MOSN ads_config.cluster_names is not used; the ADS cluster is grpc_services[0]');
  s.warnIfSet(key(s, 'request_timeout'), 'not used by gRPC streams; ignored');
  s.accept('rate_limit_settings', 'ratelimitsettings');
  let cluster: string | undefined;
  const services = listOf(s, 'grpc_services');
  // Envoy also accepts a single object where a list is expected in YAML written by hand.
  const items = services.length > 0 ? services : isPlainObject(s.get(key(s, 'grpc_services'))) ? [{ value: s.get(key(s, 'grpc_services')), path: s.at('grpc_services') }] : [];
  if (items.length === 0) st.issues.error(s.at('grpc_services'), 'an ADS gRPC service is required');
  items.forEach((g, i) => {
    const go = ConfigObject.from(st.issues, g.path, g.value);
    if (!go) return;
    go.accept('timeout', 'initial_metadata', 'initialmetadata', 'retry_policy', 'retrypolicy');
    const envoy = objOf(go, 'envoy_grpc');
    if (go.has(key(go, 'google_grpc'))) st.issues.error(go.at('google_grpc'), 'google_grpc (with its credentials) is not supported; use envoy_grpc naming a static cluster');
    go.done();
    if (!envoy) return;
    const name = envoy.str(key(envoy, 'cluster_name'), { required: true });
    envoy.accept('authority');
    envoy.done();
    if (i === 0) cluster = name;
    else st.issues.warn(g.path, 'only the first gRPC service is used');
  });
  return { cluster, delta: delta ?? false, nodeOnce };
}

/** lds_config / cds_config: ADS, or a gRPC API source on the ADS cluster. */
function checkSubscription(st: ParseState, d: ConfigObject, name: string, adsCluster: string | undefined): void {
  const s = objOf(d, name);
  if (!s) return;
  s.accept('resource_api_version', 'resourceapiversion', 'initial_fetch_timeout', 'initialfetchtimeout', 'authorities');
  if (s.has('ads')) {
    s.get('ads');
  } else {
    const src = objOf(s, 'api_config_source');
    if (!src) st.issues.error(s.path, 'only "ads" or a gRPC api_config_source on the ADS cluster is supported');
    else {
      const a = apiSource(st, src);
      src.done();
      if (a.cluster !== undefined && a.cluster !== adsCluster) st.issues.error(src.path, `cluster ${showValue(a.cluster)} is not the ADS cluster: one ADS stream serves every type`);
      else st.issues.warn(src.path, 'served over the ADS stream');
    }
  }
  s.errorIfSet(key(s, 'path'), 'file-based xDS is not supported');
  s.errorIfSet(key(s, 'path_config_source'), 'file-based xDS is not supported');
  s.done();
}

function nodeSection(st: ParseState, n: ConfigObject | undefined): XdsNodeConfig | undefined {
  if (!n) return undefined;
  const id = n.str('id');
  const cluster = n.str('cluster');
  const md = n.get('metadata');
  let metadata: Readonly<Record<string, unknown>> | undefined;
  if (md !== undefined) {
    if (isPlainObject(md)) metadata = md;
    else st.issues.error(n.at('metadata'), `${showValue(md)} must be an object`);
  }
  let locality: XdsNodeConfig['locality'];
  const lo = n.obj('locality');
  if (lo) {
    locality = { region: lo.str('region'), zone: lo.str('zone'), subZone: lo.str(key(lo, 'sub_zone')) };
    lo.done();
  }
  n.accept('user_agent_name', 'useragentname', 'user_agent_version', 'useragentversion', 'extensions', 'client_features', 'clientfeatures');
  n.done();
  return { id, cluster, metadata, locality };
}

/**
 * Parses `dynamic_resources`, `static_resources` and `node`. Returns undefined when the document
 * has no dynamic_resources (static_resources alone are an error: use servers and cluster_manager).
 */
export function parseXdsSections(st: ParseState, top: ConfigObject): XdsConfig | undefined {
  const dyn = top.obj('dynamic_resources');
  const stat = top.obj('static_resources');
  const node = nodeSection(st, top.obj('node'));
  if (!dyn) {
    if (stat) st.issues.error(stat.path, 'static_resources without dynamic_resources: use servers and cluster_manager');
    return undefined;
  }
  const ads = objOf(dyn, 'ads_config');
  let adsCluster: string | undefined;
  let delta = false;
  let nodeOnce = false;
  if (!ads) st.issues.error(dyn.at('ads_config'), 'is required: Outrigger speaks xDS over ADS only');
  else {
    const a = apiSource(st, ads);
    ads.done();
    adsCluster = a.cluster;
    delta = a.delta;
    nodeOnce = a.nodeOnce;
  }
  checkSubscription(st, dyn, 'lds_config', adsCluster);
  checkSubscription(st, dyn, 'cds_config', adsCluster);
  dyn.errorIfSet(key(dyn, 'lds_resources_locator'), 'xDS-TP locators are not supported');
  dyn.errorIfSet(key(dyn, 'cds_resources_locator'), 'xDS-TP locators are not supported');
  dyn.done();

  const staticListeners: { json: unknown; path: string }[] = [];
  const staticClusters: { json: unknown; path: string }[] = [];
  const staticSecrets: { json: unknown; path: string }[] = [];
  let servers: HostPort[] = [];
  const pipes: string[] = [];
  let found = false;
  if (stat) {
    for (const c of listOf(stat, 'clusters')) {
      const co = ConfigObject.from(st.issues, c.path, c.value);
      if (!co) continue;
      const name = co.str('name');
      if (name !== undefined && name === adsCluster) {
        found = true;
        servers = clusterAddresses(st, co, pipes);
        if (servers.length === 0 && pipes.length === 0) st.issues.error(c.path, `the ADS cluster ${showValue(name)} has no address`);
        for (const k of ['transport_socket', 'tls_context']) {
          co.errorIfSet(key(co, k), 'TLS to the xDS server is not supported yet (a plaintext connection would not be what was asked)');
        }
        // The rest of the ADS cluster (timeouts, HTTP/2 options, DNS settings) is what gRPC does anyway.
        for (const k of Object.keys(c.value as object)) co.accept(k.toLowerCase());
        co.done();
        continue;
      }
      for (const k of Object.keys(c.value as object)) co.accept(k.toLowerCase());
      staticClusters.push({ json: c.value, path: c.path });
    }
    for (const l of listOf(stat, 'listeners')) staticListeners.push({ json: l.value, path: l.path });
    for (const s of listOf(stat, 'secrets')) staticSecrets.push({ json: s.value, path: s.path });
    stat.done();
  }
  if (adsCluster !== undefined && !found) st.issues.error('static_resources.clusters', `the ADS cluster ${showValue(adsCluster)} is not defined`);
  const first = servers[0];
  const target = pipes.length > 0 ? `unix:${pipes[0]}` : first === undefined ? '' : `${first.host.includes(':') ? `[${first.host}]` : first.host}:${first.port}`;
  return {
    adsCluster: adsCluster ?? '', target, servers, delta, setNodeOnFirstMessageOnly: nodeOnce, node, staticListeners, staticClusters, staticSecrets,
  };
}
