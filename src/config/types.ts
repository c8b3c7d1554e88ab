/**
 * The normalized, validated configuration model. The MOSN JSON format (keys matched
 * case-insensitively, durations as "1s"/"500ms" strings or numbers) is parsed into these
 * types by `parse.ts`; everything downstream (workers, filters, admin) reads only these.
 *
 * A ConfigSnapshot is immutable (deep-frozen) and swapped atomically: a connection keeps
 * the snapshot it was accepted under, new connections see the newest one.
 */
import type { FilterChainMatchConfig } from './filter-chain-match';
import type { OverloadConfig, ResourceLimits } from './overload';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface AccessLogConfig {
  /** "stdout", "stderr" or a file path. */
  readonly path: string;
  /** MOSN log_format with %VAR% placeholders; a default is used when absent. */
  readonly format?: string;
}

export interface FilterConfig {
  /** e.g. "tcp_proxy", "proxy" */
  readonly type: string;
  /** Filter specific config, already validated by that filter's validator; see TcpProxyConfig. */
  readonly config: Readonly<Record<string, unknown>>;
}

export interface FilterChainConfig {
  readonly filters: readonly FilterConfig[];
  /**
   * Downstream TLS (absent = plaintext): one entry for `tls_context`, several for
   * `tls_context_set` (chosen by SNI; the first one is the default).
   */
  readonly tlsContexts?: readonly TlsContextConfig[];
  /** Envoy filter_chain_match (absent = matches every connection); see filter-chain-match.ts. */
  readonly match?: FilterChainMatchConfig;
}

/** Where PEM material comes from: a file (watched and hot-reloaded) or an inline PEM string. */
export type TlsSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'inline'; readonly pem: string };

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/**
 * A validated MOSN `tls_context` with status true (pkg/config/v2 TLSConfig). Listener side:
 * certChain/privateKey are required; caCert verifies client certificates. Cluster side:
 * caCert verifies the upstream (system roots when absent), certChain/privateKey are the
 * client certificate for mTLS, serverName is the SNI and the name checked in the certificate.
 */
export interface TlsContextConfig {
  readonly certChain?: TlsSource;
  readonly privateKey?: TlsSource;
  readonly caCert?: TlsSource;
  readonly serverName: string;
  /** MOSN: verify_client && require_client_cert = require and verify; verify_client = verify if given; require_client_cert alone = request only. */
  readonly verifyClient: boolean;
  readonly requireClientCert: boolean;
  /** Cluster side: do not verify the upstream certificate (MOSN insecure_skip). */
  readonly insecureSkip: boolean;
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  /** OpenSSL cipher list (TLS 1.2 and 1.3 suites), already mapped from MOSN names. */
  readonly ciphers: string;
  /** OpenSSL curve list, e.g. "X25519:P-256". */
  readonly ecdhCurve: string;
  /** ALPN protocols in preference order (MOSN: h2, http/1.1, sofa). */
  readonly alpn: readonly string[];
}

export interface ListenerConfig {
  readonly name: string;
  readonly address: HostPort;
  readonly bindPort: boolean;
  readonly filterChains: readonly FilterChainConfig[];
  readonly streamFilters: readonly FilterConfig[];
  readonly accessLogs: readonly AccessLogConfig[];
  /** Close downstream connections idle this long (0 = never). MOSN: connection_idle_timeout. */
  readonly connectionIdleTimeoutMs: number;
  /** Per-connection buffer limit: high watermark of queued bytes before the peer is paused. */
  readonly perConnBufferLimitBytes: number;
  readonly inspector: boolean;
}

export interface TcpProxyRouteConfig {
  readonly cluster: string;
  readonly sourceAddrs: readonly CidrRange[];
  readonly destinationAddrs: readonly CidrRange[];
  readonly sourcePort?: string;
  readonly destinationPort?: string;
}

export interface CidrRange {
  readonly address: string;
  readonly length: number;
}

/** Validated `tcp_proxy` network filter config. */
export interface TcpProxyConfig {
  readonly statPrefix: string;
  /** Default cluster when no route matches (MOSN: "cluster"). */
  readonly cluster: string;
  readonly routes: readonly TcpProxyRouteConfig[];
  /** 0 = no idle timeout. */
  readonly idleTimeoutMs: number;
  readonly maxConnectAttempts: number;
}

export interface RouterConfig {
  readonly name: string;
  /** Kept as parsed (normalized keys); the L7 router compiles it. */
  readonly virtualHosts: readonly Readonly<Record<string, unknown>>[];
}

export interface ServerConfig {
  readonly defaultLogPath: string;
  readonly defaultLogLevel: LogLevel;
  /** Number of worker threads (MOSN: processor); 0 = number of CPUs. */
  readonly processor: number;
  /** Grace period for draining on SIGTERM. */
  readonly gracefulTimeoutMs: number;
  readonly listeners: readonly ListenerConfig[];
  readonly routers: readonly RouterConfig[];
}

export type LbType = 'LB_ROUNDROBIN' | 'LB_RANDOM' | 'LB_WEIGHTED_ROUNDROBIN' | 'LB_LEAST_REQUEST';

export interface HostConfig {
  readonly address: HostPort;
  readonly weight: number;
  readonly hostname?: string;
}

export interface CircuitBreakerConfig {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

export interface ClusterConfig {
  readonly name: string;
  readonly type: 'SIMPLE';
  readonly lbType: LbType;
  readonly hosts: readonly HostConfig[];
  readonly connectTimeoutMs: number;
  readonly maxRequestPerConn: number;
  /** High watermark of queued bytes per upstream connection. */
  readonly connBufferLimitBytes: number;
  readonly circuitBreakers: CircuitBreakerConfig;
  /** Upstream TLS (absent = plaintext). */
  readonly tlsContext?: TlsContextConfig;
}

export interface AdminConfig {
  readonly address: HostPort;
}

/** The xDS `node` as configured (absent fields come from the environment, Istio-style). */
export interface XdsNodeConfig {
  readonly id?: string;
  readonly cluster?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly locality?: { readonly region?: string; readonly zone?: string; readonly subZone?: string };
}

/** dynamic_resources (ADS) and static_resources of a MOSN or Envoy v3 bootstrap (src/config/xds.ts). */
export interface XdsConfig {
  /** The static cluster of the ADS server (grpc_services[0].envoy_grpc.cluster_name). */
  readonly adsCluster: string;
  /** The gRPC target dialed: `host:port` of its first address (gRPC resolves host names) or `unix:PATH` for a `pipe`. */
  readonly target: string;
  /** Its TCP addresses. */
  readonly servers: readonly HostPort[];
  /** DELTA_GRPC: DeltaAggregatedResources; otherwise StreamAggregatedResources. */
  readonly delta: boolean;
  readonly setNodeOnFirstMessageOnly: boolean;
  readonly node?: XdsNodeConfig;
  /** Envoy static resources besides the ADS cluster, as proto3 JSON with their JSON paths (translated by src/xds). */
  readonly staticListeners: readonly { readonly json: unknown; readonly path: string }[];
  readonly staticClusters: readonly { readonly json: unknown; readonly path: string }[];
  readonly staticSecrets: readonly { readonly json: unknown; readonly path: string }[];
}

export interface OutriggerConfig {
  readonly servers: readonly ServerConfig[];
  readonly clusters: readonly ClusterConfig[];
  readonly admin: AdminConfig;
  /** Per-request resource limits and the overload manager (src/config/overload.ts); absent = defaults. */
  readonly limits?: ResourceLimits;
  readonly overload?: OverloadConfig;
  /** xDS: the ADS server and static Envoy resources (absent = a static config). */
  readonly xds?: XdsConfig;
  /** The input document as given (for config_dump, after redaction). */
  readonly raw: unknown;
  /**
   * Known-but-unsupported harmless settings that were ignored, and unknown keys, each as
   * `path: message`. The CLI prints them at startup and from `outrigger validate`.
   */
  readonly warnings?: readonly string[];
}
