/**
 * Envoy v3 resources in canonical proto3 JSON, shaped as Istio emits them, for the xDS tests;
 * and a small stand-in translator for the protocol tests (ACK/NACK, warming, reconnects), which
 * exercise the client and the store apart from the real translator (src/xds/translate).
 */
import type { ClusterConfig, HostConfig, ListenerConfig } from '../../src/config/types';
import { XdsResourceError, type TranslatedCluster, type TranslatedEndpoints, type TranslatedListener, type XdsMessage, type XdsTranslator } from '../../src/xds/types';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

export function edsCluster(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name, type: 'EDS', connect_timeout: '1s', lb_policy: 'ROUND_ROBIN',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name }, ...extra,
  };
}

export function staticCluster(name: string, ports: readonly number[]): Record<string, unknown> {
  return {
    name, type: 'STATIC', connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: ports.map((p) => endpointOf(p)) }] },
  };
}

function endpointOf(port: number, weight?: number): Record<string, unknown> {
  const e: Record<string, unknown> = { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } };
  if (weight !== undefined) e.load_balancing_weight = weight;
  return e;
}

export function endpoints(name: string, ports: readonly number[]): Record<string, unknown> {
  return { cluster_name: name, endpoints: [{ locality: { region: 'r1', zone: 'z1' }, lb_endpoints: ports.map((p) => endpointOf(p)) }] };
}

export function tcpListener(name: string, port: number, cluster: string): Record<string, unknown> {
  return {
    name, address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP, stat_prefix: name, cluster } }] }],
  };
}

export function httpListener(name: string, port: number, routeConfigName: string, codec: 'AUTO' | 'HTTP1' | 'HTTP2' = 'AUTO'): Record<string, unknown> {
  return {
    name, address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': HCM, stat_prefix: name, codec_type: codec,
          rds: { route_config_name: routeConfigName, config_source: { ads: {}, resource_api_version: 'V3' } },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        },
      }],
    }],
  };
}

export function routeConfig(name: string, routes: readonly { prefix: string; cluster: string }[], domains: readonly string[] = ['*']): Record<string, unknown> {
  return {
    name,
    virtual_hosts: [{ name: `${name}-vh`, domains, routes: routes.map((r) => ({ match: { prefix: r.prefix }, route: { cluster: r.cluster, timeout: '5s' } })) }],
  };
}

// ---- the stand-in translator ----------------------------------------------------------------

type M = Readonly<Record<string, unknown>>;
const obj = (v: unknown): M => (v !== null && typeof v === 'object' ? (v as M) : {});
const arr = (v: unknown): M[] => (Array.isArray(v) ? (v as M[]) : []);

function hostsOf(la: M): HostConfig[] {
  const out: HostConfig[] = [];
  for (const e of arr(la['endpoints'])) {
    for (const lb of arr(e['lbEndpoints'])) {
      const sa = obj(obj(obj(lb['endpoint'])['address'])['socketAddress']);
      out.push({ address: { host: String(sa['address']), port: Number(sa['portValue']) }, weight: 1 });
    }
  }
  return out;
}

function clusterConfig(name: string, hosts: HostConfig[]): ClusterConfig {
  return {
    name, type: 'SIMPLE', lbType: 'LB_ROUNDROBIN', hosts, connectTimeoutMs: 1000, maxRequestPerConn: 1024, connBufferLimitBytes: 32768,
    circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
  };
}

const NONE = { routes: [], secrets: [], endpoints: [] };

/**
 * Clusters (STATIC, EDS; any other type is refused), endpoints, listeners whose first filter is
 * an HttpConnectionManager with RDS (the route is a dependency) or anything else (no dependency),
 * routes kept as given. Listener configs are placeholders: the protocol tests never run a proxy.
 */
export const standInTranslator: XdsTranslator = {
  cluster(m: XdsMessage): TranslatedCluster {
    const name = String(m['name']);
    if (m['type'] === 'EDS') {
      const eds = String(obj(m['edsClusterConfig'])['serviceName'] ?? name);
      return { name, cluster: clusterConfig(name, []), edsName: eds, deps: NONE };
    }
    if (m['type'] === 'STATIC') return { name, cluster: clusterConfig(name, hostsOf(obj(m['loadAssignment']))), deps: NONE };
    throw new XdsResourceError(name, 'type', `cluster type ${String(m['type'])} is not supported`);
  },
  endpoints(m: XdsMessage): TranslatedEndpoints {
    return { name: String(m['clusterName']), hosts: hostsOf(m) };
  },
  listener(m: XdsMessage): TranslatedListener {
    const name = String(m['name']);
    const f = obj(arr(obj(arr(m['filterChains'])[0])['filters'])[0]);
    const rds = obj(obj(f['typedConfig'])['rds'])['routeConfigName'];
    const sa = obj(obj(m['address'])['socketAddress']);
    const listener: ListenerConfig = {
      name, address: { host: String(sa['address']), port: Number(sa['portValue']) }, bindPort: true, filterChains: [], streamFilters: [],
      accessLogs: [], connectionIdleTimeoutMs: 0, perConnBufferLimitBytes: 32768, inspector: false,
    };
    return { name, listener, routers: [], deps: { ...NONE, routes: typeof rds === 'string' ? [rds] : [] } };
  },
  route(m: XdsMessage) {
    return { name: String(m['name']), router: { name: String(m['name']), virtualHosts: arr(m['virtualHosts']) } };
  },
  secret(m: XdsMessage) {
    return { name: String(m['name']) };
  },
};
