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
import type { TracingConfig } from './tracing';

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
  /**
   * Cluster side: the upstream certificate must carry a subject alt name matching one of these
   * (Envoy match_subject_alt_names, e.g. Istio's spiffe:// identities); the host name check is
   * then not done (as Envoy). Absent = the host name check. Set by the xDS translator.
   */
  readonly matchSubjectAltNames?: readonly SanMatcher[];
  /**
   * Listener side: issue and accept session tickets (stateless resumption, shared by all
   * workers, rotating keys: src/tls/tickets.ts). Absent = true. MOSN JSON / Envoy:
   * disable_stateless_session_resumption.
   */
  readonly sessionTickets?: boolean;
}

/** A subject alt name matcher (src/tls/san.ts). `sanType` absent = any of DNS, URI, email, IP. */
export interface SanMatcher {
  readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains';
  readonly value: string;
  readonly sanType?: 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS';
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
  /**
   * Hand each accepted connection to the listener whose address matches its original
   * destination (exact ip:port, else the wildcard 0.0.0.0:port / [::]:port); none: this
   * listener's own chains serve it. Envoy use_original_dst; MOSN use_original_dst
   * "redirect"/"tproxy". Implies `originalDst`. Absent = false.
   */
  readonly useOriginalDst?: boolean;
  /**
   * How the original destination of an accepted connection is read (absent: not read, the
   * connection's destination is the listener's address). 'redirect': SO_ORIGINAL_DST /
   * IP6T_SO_ORIGINAL_DST after an iptables REDIRECT (needs the native addon); 'tproxy': the
   * socket's local address (iptables TPROXY). Filter-chain matching (destination_port,
   * prefix_ranges), tcp_proxy routes and ORIGINAL_DST clusters see the original destination.
   * Set by use_original_dst or the `original_dst` listener filter (MOSN `type`, Envoy
   * envoy.filters.listener.original_dst).
   */
  readonly originalDst?: OriginalDstMode;
  /** MOSN original_dst fallback_to_local: the fallback listener is 127.0.0.1:port, not 0.0.0.0:port. */
  readonly originalDstFallbackToLocal?: boolean;
  /**
   * IP_TRANSPARENT on the listening socket, so that iptables TPROXY can deliver connections
   * for addresses that are not local (Envoy `transparent`; MOSN sets it for use_original_dst
   * "tproxy"). Needs the native addon and CAP_NET_ADMIN. Absent = false.
   */
  readonly transparent?: boolean;
}

/** How a listener reads the original destination (see ListenerConfig.originalDst). */
export type OriginalDstMode = 'redirect' | 'tproxy';

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
  /** Subset criteria of every connection (metadata_match: Envoy TcpProxy over xDS); absent = none. */
  readonly metadataMatch?: Readonly<Record<string, string>>;
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

export type LbType = 'LB_ROUNDROBIN' | 'LB_RANDOM' | 'LB_WEIGHTED_ROUNDROBIN' | 'LB_LEAST_REQUEST' | 'LB_ORIGINAL_DST';

/**
 * SIMPLE: a static host list. ORIGINAL_DST: no configured hosts; each connection goes to its
 * downstream connection's original destination (or an HTTP header, see originalDstLb), hosts
 * are made on demand and dropped when idle (lbType is always LB_ORIGINAL_DST).
 */
export type ClusterType = 'SIMPLE' | 'ORIGINAL_DST';

/** MOSN original_dst_lb_config / Envoy original_dst_lb_config of an ORIGINAL_DST cluster. */
export interface OriginalDstLbConfig {
  /**
   * HTTP requests go to the host:port named by this request header when present (MOSN
   * use_header + header_name, default "host"; Envoy use_http_header + http_header_name,
   * default x-envoy-original-dst-host); '' = never a header, always the original destination.
   */
  readonly headerName: string;
  /** MOSN replace_local: connect to 127.0.0.1 on the original port. */
  readonly replaceLocal: boolean;
  /** Envoy cleanup_interval: an idle on-demand host is dropped after this long (default 5 s). */
  readonly cleanupIntervalMs: number;
}

export interface HostConfig {
  readonly address: HostPort;
  readonly weight: number;
  readonly hostname?: string;
  /**
   * The endpoint's transport socket match metadata (Envoy LbEndpoint
   * metadata.filter_metadata["envoy.transport_socket_match"], e.g. Istio's `tlsMode: istio`):
   * chooses the cluster's tlsMatches entry (src/upstream/transport-match.ts). Absent = {}.
   */
  readonly tlsMatch?: Readonly<Record<string, string>>;
  /** MOSN host `tls_disable`: plaintext to this host whatever the cluster's TLS. Absent = false. */
  readonly tlsDisable?: boolean;
  /** Subset load balancing labels (MOSN metadata.filter_metadata["mosn.lb"], Envoy's "envoy.lb"). Absent = {}. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** A fallback of subset load balancing: none, every host, or the hosts of the default subset. */
export type SubsetFallback = 'NO_FALLBACK' | 'ANY_ENDPOINT' | 'DEFAULT_SUBSET';

/** One subset selector: the metadata keys (sorted, distinct) a subset is made of. */
export interface SubsetSelectorConfig {
  readonly keys: readonly string[];
  /** Envoy per-selector fallback_policy when a request's keys are exactly these (absent = the cluster's). */
  readonly fallback?: SubsetFallback;
}

/** Cluster lb_subset_config (src/upstream/subset.ts). */
export interface LbSubsetConfig {
  readonly fallback: SubsetFallback;
  /** Labels of the DEFAULT_SUBSET fallback ({} = every host). */
  readonly defaultSubset: Readonly<Record<string, string>>;
  readonly selectors: readonly SubsetSelectorConfig[];
  /**
   * A request without match criteria: 'all' (MOSN) balances over every host, 'fallback' (Envoy)
   * takes the fallback policy. A matched subset whose balancer finds no host falls back in MOSN
   * ('all'), not in Envoy.
   */
  readonly noCriteria: 'all' | 'fallback';
}

/** One Envoy transport_socket_matches entry: hosts whose tlsMatch holds every key of `match` use `tlsContext` (absent = plaintext). */
export interface TlsMatchConfig {
  readonly name: string;
  readonly match: Readonly<Record<string, string>>;
  readonly tlsContext?: TlsContextConfig;
}

/** Envoy upstream_bind_config: upstream sockets bind this source address (port 0) before connecting. */
export interface UpstreamBindConfig {
  readonly sourceAddress: string;
}

export interface CircuitBreakerConfig {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  /**
   * Envoy's retry_budget (replaces maxRetries when present): retries in flight at most
   * `budgetPercent` of the cluster's active + pending requests (all workers), never fewer than
   * `minRetryConcurrency`. Envoy thresholds[].retry_budget {budget_percent.value, min_retry_concurrency}.
   */
  readonly retryBudget?: { readonly budgetPercent: number; readonly minRetryConcurrency: number };
}

/**
 * Active health checking of a cluster's hosts (MOSN `health_check`; Envoy's `health_checks[0]`
 * maps here: timeout, interval, interval_jitter, healthy/unhealthy_threshold, and its
 * tcp_health_check / http_health_check {path, expected_statuses -> codes} decide `kind`).
 * Run once per process by the main thread (src/upstream/health/), shared with every worker.
 */
export interface HealthCheckConfig {
  /**
   * What a check does: 'tcp' connects (TLS per the cluster) and closes; 'http' sends a GET and
   * expects one of `http.codes`; 'rpc' sends the `codec`'s heartbeat (Bolt CMD_CODE_HEARTBEAT,
   * Dubbo event) and expects its answer. MOSN protocol "Http1"/"Http2" with
   * check_config.http_check_config = http, "bolt"/"sofarpc"/"boltv2"/"dubbo" = rpc, anything
   * else = tcp (as MOSN falls back to a TCP dial).
   */
  readonly kind: 'tcp' | 'http' | 'rpc' | 'grpc';
  /** The RPC codec of an 'rpc' check ("bolt", "boltv2", "dubbo"). */
  readonly codec?: string;
  /** The protocol name as configured (for display). */
  readonly protocol: string;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  /** A random 0..interval_jitter added to every interval. */
  readonly intervalJitterMs: number;
  /** Delay of the first check (MOSN initial_delay_seconds, default 1s). */
  readonly initialDelayMs: number;
  /** Consecutive successes that bring an unhealthy host back (MOSN default 1). */
  readonly healthyThreshold: number;
  /** Consecutive failures that take a host out (MOSN default 1). */
  readonly unhealthyThreshold: number;
  /** HTTP checks (kind 'http'). */
  readonly http?: HttpHealthCheckConfig;
  /** gRPC checks (kind 'grpc': grpc.health.v1.Health/Check over HTTP/2, src/upstream/health/grpc.ts). */
  readonly grpc?: { readonly serviceName: string; readonly authority: string };
  /**
   * Envoy's semantics (clusters from xDS): a host new to the cluster starts unhealthy, pending its
   * first check, which alone brings it in; a reload waits (bounded) for those first checks.
   * Absent (MOSN): hosts start healthy.
   */
  readonly startUnhealthy?: boolean;
}

export interface HttpHealthCheckConfig {
  /** Path and query of the GET (default "/"). */
  readonly path: string;
  /** Host header (MOSN domain; default: the host's address). */
  readonly domain?: string;
  /** Port to check instead of the host's (0 = the host's). */
  readonly port: number;
  readonly method: string;
  /** Timeout of the HTTP exchange (MOSN http_check_config.timeout; 0 = the check's timeout). */
  readonly timeoutMs: number;
  /** Accepted status ranges, inclusive (default [[200, 200]]). Envoy expected_statuses [start, end) map to [start, end-1]. */
  readonly codes: readonly { readonly start: number; readonly end: number }[];
}

/**
 * Passive health checking: Envoy's `outlier_detection` (src/upstream/outlier.ts). Results of every
 * worker count together and an ejection holds for every worker. Percentages are 0..100.
 */
export interface OutlierDetectionConfig {
  /** Consecutive 5xx (or, not split, any failure) before ejection; 0 = off (default 5). */
  readonly consecutive5xx: number;
  /** Consecutive gateway failures (502/503/504, connect failures, resets when not split) (default 5). */
  readonly consecutiveGatewayFailure: number;
  /** Consecutive local-origin failures (connect failure, timeout, reset), split mode only (default 5). */
  readonly consecutiveLocalOriginFailure: number;
  /** Local-origin failures counted apart from upstream answers (default false). */
  readonly splitExternalLocalOriginErrors: boolean;
  /** Period of the ejection sweep (un-ejection, rate-based ejection) (default 10s). */
  readonly intervalMs: number;
  /** Ejection time = base × number of times the host was ejected (default 30s). */
  readonly baseEjectionTimeMs: number;
  /** Cap of the ejection time (default max(300s, base)). */
  readonly maxEjectionTimeMs: number;
  /** At most this share of the cluster's hosts ejected at once (default 10; at least one host can be ejected). */
  readonly maxEjectionPercent: number;
  readonly enforcingConsecutive5xx: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  /**
   * Rate-based ejection (MOSN fault_tolerance's rule, evaluated every interval): a host with at
   * least `minRequests` requests whose failure rate exceeds `rateMultiple` × the cluster's mean
   * failure rate is ejected. Absent = off.
   */
  readonly failureRate?: { readonly minRequests: number; readonly rateMultiple: number };
  /** Envoy's success-rate ejection (success_rate_*, enforcing_success_rate, enforcing_local_origin_success_rate). */
  readonly successRate: OutlierRateRule & { readonly stdevFactor: number };
  /** Envoy's failure-percentage ejection (failure_percentage_*, enforcing_failure_percentage[_local_origin]). */
  readonly failurePercentage: OutlierRateRule & { readonly threshold: number };
  /** Whether workers count every result for the rate rules (some rate rule can eject). */
  readonly countRates: boolean;
}

/** One interval-based rule of outlier detection (src/upstream/health/service.ts sweepOutliers). */
export interface OutlierRateRule {
  readonly minimumHosts: number;
  readonly requestVolume: number;
  /** Percent chance a detected outlier is ejected (external / local-origin results). */
  readonly enforcing: number;
  readonly enforcingLocalOrigin: number;
}

/**
 * Slow start (MOSN `slow_start`, Envoy `slow_start_config`): a host that passed a health check
 * after being unhealthy (or, Envoy, a new host) gets weight × max(min_weight_percent,
 * (elapsed/window)^(1/aggression)) until the window ends. Weighted balancers only.
 */
export interface SlowStartConfig {
  readonly windowMs: number;
  readonly aggression: number;
  /** 0..1 (MOSN min_weight_percent, default 0.1). */
  readonly minWeightPercent: number;
}

export interface ClusterConfig {
  readonly name: string;
  readonly type: ClusterType;
  readonly lbType: LbType;
  /** ORIGINAL_DST clusters only (absent = defaults: no header, no replace_local, 5 s cleanup). */
  readonly originalDstLb?: OriginalDstLbConfig;
  readonly hosts: readonly HostConfig[];
  readonly connectTimeoutMs: number;
  readonly maxRequestPerConn: number;
  /** High watermark of queued bytes per upstream connection. */
  readonly connBufferLimitBytes: number;
  readonly circuitBreakers: CircuitBreakerConfig;
  /** Upstream TLS (absent = plaintext); the default for hosts no tlsMatches entry selects. */
  readonly tlsContext?: TlsContextConfig;
  /** Active health checks (absent = none: hosts are healthy unless outlier detection ejects them). */
  readonly healthCheck?: HealthCheckConfig;
  readonly outlierDetection?: OutlierDetectionConfig;
  readonly slowStart?: SlowStartConfig;
  /** Envoy common_lb_config.healthy_panic_threshold, percent (default 50; 0 = never panic). */
  readonly panicThreshold?: number;
  /** Per-host transport sockets (Envoy transport_socket_matches), first match wins; absent = none. */
  readonly tlsMatches?: readonly TlsMatchConfig[];
  /** Source address of upstream connections (Envoy upstream_bind_config); absent = the kernel's choice. */
  readonly upstreamBind?: UpstreamBindConfig;
  /** Subset load balancing (lb_subset_config with at least one selector); absent = off. */
  readonly lbSubset?: LbSubsetConfig;
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
  /** The top-level `tracing` section when enabled (src/config/tracing.ts). */
  readonly tracing?: TracingConfig;
  /** xDS: the ADS server and static Envoy resources (absent = a static config). */
  readonly xds?: XdsConfig;
  /** The input document as given (for config_dump, after redaction). */
  readonly raw: unknown;
  /** The input document with its secrets (not enumerable: only the hot upgrade reads it, src/upgrade/old.ts). */
  readonly unredacted?: unknown;
  /**
   * Known-but-unsupported harmless settings that were ignored, and unknown keys, each as
   * `path: message`. The CLI prints them at startup and from `outrigger validate`.
   */
  readonly warnings?: readonly string[];
}
