/**
 * Stats live as plain float64 counters in one SharedArrayBuffer per worker: the worker is the
 * only writer of its buffer (a `counters[i]++` on the hot path, no message per event), the
 * main thread sums all workers' buffers when the admin server asks. No Atomics are needed:
 * aligned 8-byte stores are not torn on the platforms Node supports, and a reader that sees
 * a value one event old is fine for stats.
 *
 * Slots are assigned by the main thread, per listener, cluster and HTTP route name,
 * append-only: a config reload never moves an existing name, so workers on an older snapshot
 * still write to the right place.
 *
 * Latency histograms are not here: they are hdr histograms recorded in the worker and shipped
 * to the main thread as encoded deltas (src/stats/histograms.ts), keyed by the same base slots.
 */

/** Per-listener counters (offsets from the listener's base slot). */
export const LISTENER_STATS = [
  'downstream_cx_active', // gauge
  'downstream_cx_total',
  'downstream_cx_destroy',
  'downstream_cx_idle_timeout',
  'downstream_bytes_rx',
  'downstream_bytes_tx',
  'downstream_cx_rx_paused', // times reading was paused by a watermark
  'downstream_rq_total',
  'downstream_rq_active', // gauge
  'downstream_decode_error',
  // L7 proxy (src/proxy): requests by kind, responses by outcome
  'downstream_rq_oneway',
  'downstream_rq_heartbeat',
  'downstream_rs_success',
  'downstream_rs_error', // an upstream response with a non-success status
  'downstream_rs_no_route', // answered locally: no route / cluster / host
  'downstream_rs_timeout',
  'downstream_rs_cx_closed', // answered locally: the upstream connection was lost
  'downstream_rs_overflow', // answered locally: circuit breaker
  'downstream_rs_codec_error', // answered locally: unreadable request headers
  'downstream_frame_too_large', // connections closed for a frame over the size limit
  // TLS (src/tls): handshakes, failures by reason, negotiated version and cipher family
  'downstream_tls_handshake',
  'downstream_tls_fail_no_certificate',
  'downstream_tls_fail_verify',
  'downstream_tls_fail_version',
  'downstream_tls_fail_other',
  'downstream_tls_version_tlsv1_2',
  'downstream_tls_version_tlsv1_3',
  'downstream_tls_cipher_aes_128_gcm',
  'downstream_tls_cipher_aes_256_gcm',
  'downstream_tls_cipher_chacha20_poly1305',
  'downstream_tls_cipher_other',
  'downstream_tls_inspector_plaintext',
  'downstream_tls_cert_reload',
  'downstream_tls_cert_reload_fail',
  'downstream_tls_session_reused', // a handshake that resumed a session (ticket)
  // HTTP proxy (src/http; offsets looked up by name in src/http/stats.ts). Keep the 1xx..5xx order.
  'downstream_rq_1xx',
  'downstream_rq_2xx',
  'downstream_rq_3xx',
  'downstream_rq_4xx',
  'downstream_rq_5xx',
  'downstream_rq_http1',
  'downstream_rq_http2',
  'downstream_rq_bad_request', // malformed or smuggling-shaped requests answered 400
  'downstream_rq_header_overflow', // 431: header section over the size or count limit
  'downstream_rq_request_timeout', // 408: request head or body too slow
  'downstream_rq_direct_response',
  'downstream_rq_redirect',
  'downstream_rq_upgrade',
  'downstream_rq_connect',
  'downstream_h2_goaway_sent',
  'downstream_h2_rst_sent',
  'downstream_h2_refused_stream',
  'downstream_rq_reset', // downstream went away before the response was complete
  // proxy Auto detection (src/proxy/detect.ts; offsets looked up by name)
  'downstream_auto_fallback', // unknown protocol handed to the chain's tcp_proxy
  'downstream_auto_rejected', // unknown (or unserved HTTP/TLS) protocol: connection closed
  'downstream_cx_no_filter_chain_match', // no filter chain (filter_chain_match) or no filter of the chain took it: closed
  // overload manager (src/overload; offsets looked up by name)
  'downstream_cx_overload_reject', // closed at accept: connection limit or memory (stop accepting)
  'downstream_rq_overload_shed', // answered with the protocol's overload reply: request limit or memory
  'downstream_cx_overload_idle_closed', // idle keep-alive connections closed under memory pressure
] as const;

export const L = {
  CX_ACTIVE: 0,
  CX_TOTAL: 1,
  CX_DESTROY: 2,
  CX_IDLE_TIMEOUT: 3,
  BYTES_RX: 4,
  BYTES_TX: 5,
  CX_RX_PAUSED: 6,
  RQ_TOTAL: 7,
  RQ_ACTIVE: 8,
  DECODE_ERROR: 9,
  RQ_ONEWAY: 10,
  RQ_HEARTBEAT: 11,
  RS_SUCCESS: 12,
  RS_ERROR: 13,
  RS_NO_ROUTE: 14,
  RS_TIMEOUT: 15,
  RS_CX_CLOSED: 16,
  RS_OVERFLOW: 17,
  RS_CODEC_ERROR: 18,
  FRAME_TOO_LARGE: 19,
  TLS_HANDSHAKE: 20,
  TLS_FAIL_NO_CERT: 21,
  TLS_FAIL_VERIFY: 22,
  TLS_FAIL_VERSION: 23,
  TLS_FAIL_OTHER: 24,
  TLS_V1_2: 25,
  TLS_V1_3: 26,
  TLS_CIPHER_AES_128_GCM: 27,
  TLS_CIPHER_AES_256_GCM: 28,
  TLS_CIPHER_CHACHA20: 29,
  TLS_CIPHER_OTHER: 30,
  TLS_INSPECTOR_PLAINTEXT: 31,
  TLS_CERT_RELOAD: 32,
  TLS_CERT_RELOAD_FAIL: 33,
  TLS_SESSION_REUSED: 34,
} as const;

/** Per-cluster counters (offsets from the cluster's base slot). */
export const CLUSTER_STATS = [
  'upstream_cx_active', // gauge
  'upstream_cx_total',
  'upstream_cx_connect_fail',
  'upstream_cx_connect_timeout',
  'upstream_cx_destroy',
  'upstream_rq_total',
  'upstream_rq_active', // gauge
  'upstream_rq_timeout',
  'upstream_rq_pending_overflow', // a request refused by max_requests or max_pending_requests (as Envoy counts)
  'upstream_bytes_rx',
  'upstream_bytes_tx',
  'upstream_cx_rx_paused',
  'upstream_cx_no_host',
  // L7 proxy multiplexed pool (src/stream)
  'upstream_rq_pending_active', // gauge: requests queued on a connection still connecting
  'upstream_rq_oneway',
  'upstream_rq_cx_closed', // requests failed because their connection was lost
  'upstream_rs_success',
  'upstream_rs_error', // responses with a non-success status
  'upstream_rs_unknown_id', // responses matching no pending request (late after a timeout): dropped
  'upstream_decode_error',
  'upstream_cx_keepalive_fail', // connections closed for an unanswered heartbeat
  // TLS to the upstream (src/tls)
  'upstream_tls_handshake',
  'upstream_tls_fail_verify',
  'upstream_tls_fail_other',
  'upstream_tls_version_tlsv1_2',
  'upstream_tls_version_tlsv1_3',
  'upstream_tls_cipher_aes_128_gcm',
  'upstream_tls_cipher_aes_256_gcm',
  'upstream_tls_cipher_chacha20_poly1305',
  'upstream_tls_cipher_other',
  // HTTP proxy (src/http). Keep the 1xx..5xx and the time bucket order.
  'upstream_rq_1xx',
  'upstream_rq_2xx',
  'upstream_rq_3xx',
  'upstream_rq_4xx',
  'upstream_rq_5xx',
  'upstream_rq_retry',
  'upstream_rq_retry_success',
  'upstream_rq_per_try_timeout',
  'upstream_rq_reset', // the upstream reset the request or its connection mid-request
  'upstream_rq_time_le_1ms', // latency histogram: upstream request time, one counter per bucket
  'upstream_rq_time_le_5ms',
  'upstream_rq_time_le_10ms',
  'upstream_rq_time_le_25ms',
  'upstream_rq_time_le_50ms',
  'upstream_rq_time_le_100ms',
  'upstream_rq_time_le_250ms',
  'upstream_rq_time_le_500ms',
  'upstream_rq_time_le_1000ms',
  'upstream_rq_time_le_5000ms',
  'upstream_rq_time_gt_5000ms',
  // circuit breakers (src/upstream/cluster.ts), limits shared by every worker
  'upstream_cx_overflow', // a connection refused by max_connections
  'upstream_rq_retry_overflow', // a retry refused by max_retries
  // subset load balancing (src/upstream/subset.ts): picks by where the host came from
  'lb_subsets_selected', // the request's subset
  'lb_subsets_fallback', // any fallback (Envoy's name): the three below but no_fallback
  'lb_subsets_fallback_default_subset',
  'lb_subsets_fallback_any_endpoint',
  'lb_subsets_no_fallback', // no subset and no fallback: no host
] as const;

export const C = {
  CX_ACTIVE: 0,
  CX_TOTAL: 1,
  CX_CONNECT_FAIL: 2,
  CX_CONNECT_TIMEOUT: 3,
  CX_DESTROY: 4,
  RQ_TOTAL: 5,
  RQ_ACTIVE: 6,
  RQ_TIMEOUT: 7,
  RQ_PENDING_OVERFLOW: 8,
  BYTES_RX: 9,
  BYTES_TX: 10,
  CX_RX_PAUSED: 11,
  NO_HOST: 12,
  RQ_PENDING_ACTIVE: 13,
  RQ_ONEWAY: 14,
  RQ_CX_CLOSED: 15,
  RS_SUCCESS: 16,
  RS_ERROR: 17,
  RS_UNKNOWN_ID: 18,
  DECODE_ERROR: 19,
  CX_KEEPALIVE_FAIL: 20,
  TLS_HANDSHAKE: 21,
  TLS_FAIL_VERIFY: 22,
  TLS_FAIL_OTHER: 23,
  TLS_V1_2: 24,
  TLS_V1_3: 25,
  TLS_CIPHER_AES_128_GCM: 26,
  TLS_CIPHER_AES_256_GCM: 27,
  TLS_CIPHER_CHACHA20: 28,
  TLS_CIPHER_OTHER: 29,
  CX_OVERFLOW: 50,
  RQ_RETRY_OVERFLOW: 51,
  LB_SUBSETS_SELECTED: 52,
  LB_SUBSETS_FALLBACK: 53,
  LB_SUBSETS_FALLBACK_DEFAULT: 54,
  LB_SUBSETS_FALLBACK_ANY: 55,
  LB_SUBSETS_NO_FALLBACK: 56,
} as const;

/**
 * Circuit-breaker usage, shared by every worker: an Int32Array over one SharedArrayBuffer
 * (created by the main thread, WorkerInit.breakerSab) updated with Atomics, one cell per
 * breaker at the cluster's stats base slot + B.* (cluster slot ranges never overlap).
 */
export const B = { CX: 0, PENDING: 1, RQ: 2, RETRY: 3 } as const;
export const BREAKER_CELLS = 1 << 20; // = STATS_SLOTS

/**
 * Per-route counters of HTTP routes (offsets from the route's base slot), Envoy's vhost/route
 * stats. A route is named `<router_config_name>.<virtual host name>.<route name or index>`
 * (src/router/http-routes.ts routeStatsName). Keep the 1xx..5xx order.
 */
export const ROUTE_STATS = [
  'rq_total', // requests matched to the route
  'rq_1xx', // responses sent downstream, by status class
  'rq_2xx',
  'rq_3xx',
  'rq_4xx',
  'rq_5xx',
  'upstream_rq_retry',
  'upstream_rq_retry_success', // an attempt after a retry that answered below 500
  'upstream_rq_timeout', // the route timeout fired
  'upstream_rq_per_try_timeout',
  'upstream_rq_reset', // an attempt failed by an upstream reset or connect failure
  'downstream_rq_reset', // the client went away before the response was complete
] as const;

export const R = {
  RQ_TOTAL: 0,
  RQ_1XX: 1,
  RETRY: 6,
  RETRY_SUCCESS: 7,
  TIMEOUT: 8,
  PER_TRY_TIMEOUT: 9,
  UPSTREAM_RESET: 10,
  DOWNSTREAM_RESET: 11,
} as const;

/** Counters of a whole worker (offsets from slot 0). */
export const WORKER_STATS = ['worker_restarts', 'worker_flushes', 'worker_writev_calls', 'worker_write_copies'] as const;
export const W = { RESTARTS: 0, FLUSHES: 1, WRITEV_CALLS: 2, WRITE_COPIES: 3 } as const;

export const GAUGES: ReadonlySet<string> = new Set([
  'downstream_cx_active',
  'downstream_rq_active',
  'upstream_cx_active',
  'upstream_rq_active',
  'upstream_rq_pending_active',
]);

/**
 * Capacity of one worker's buffer, in slots (8 MiB of address space): ~19,000 clusters, or
 * ~12,000 clusters plus ~40,000 HTTP routes. Only the pages of slots in use become resident
 * (a SharedArrayBuffer is zero-filled lazily by the kernel): a slot costs memory when its
 * resource first counts something, so thousands of clusters that see no traffic cost their
 * layout entry only (measured in bench/xds-scale.ts).
 */
export const STATS_SLOTS = 1 << 20;

export interface StatsLayoutData {
  readonly listeners: Readonly<Record<string, number>>;
  readonly clusters: Readonly<Record<string, number>>;
  readonly routes: Readonly<Record<string, number>>;
  readonly next: number;
}

export type StatsScope = 'listener' | 'cluster' | 'route';

/**
 * Main-thread owned assignment of base slots. Slots of removed resources are reclaimed: a
 * released range is handed to a new resource of the same kind once its quarantine is over
 * (connections of a removed listener keep counting into it while they drain), zeroed first.
 */
export class StatsLayout {
  private readonly listeners = new Map<string, number>();
  private readonly clusters = new Map<string, number>();
  private readonly routes = new Map<string, number>();
  private next = WORKER_STATS.length;
  /** Released ranges by kind; `name` stays listed in the stats (toData) until the range is reused. */
  private readonly free: Record<StatsScope, { name: string; base: number; reusableAt: number }[]> = { listener: [], cluster: [], route: [] };
  /** How long a released range waits before reuse (the sidecar sets its graceful drain time). */
  quarantineMs = 30_000;
  /** Called before a released range is reused: zero it in every buffer (the stats hub). */
  onReuse: ((base: number, slots: number) => void) | null = null;
  /** Clock (tests). */
  now: () => number = Date.now;

  listenerBase(name: string): number {
    return this.base(this.listeners, name, LISTENER_STATS.length, 'listener');
  }

  clusterBase(name: string): number {
    return this.base(this.clusters, name, CLUSTER_STATS.length, 'cluster');
  }

  routeBase(name: string): number {
    return this.base(this.routes, name, ROUTE_STATS.length, 'route');
  }

  /** Names that have a slot now. */
  names(scope: StatsScope): string[] {
    return [...this.map(scope).keys()];
  }

  /**
   * The resource is gone: its range becomes reusable after the quarantine. `served` false: it
   * never ran (a refused config version), so its range is reusable at once and not listed.
   */
  release(scope: StatsScope, name: string, served = true): boolean {
    const names = this.map(scope);
    const b = names.get(name);
    if (b === undefined) return false;
    names.delete(name);
    this.free[scope].push({ name: served ? name : '', base: b, reusableAt: served ? this.now() + this.quarantineMs : 0 });
    return true;
  }

  /** Active names and released ones whose range was not reused yet (their totals stay visible). */
  private listed(scope: StatsScope): Record<string, number> {
    const out: Record<string, number> = {};
    for (const f of this.free[scope]) if (f.name !== '') out[f.name] = f.base;
    return Object.assign(out, Object.fromEntries(this.map(scope)));
  }

  private map(scope: StatsScope): Map<string, number> {
    return scope === 'listener' ? this.listeners : scope === 'cluster' ? this.clusters : this.routes;
  }

  private base(names: Map<string, number>, name: string, n: number, scope: StatsScope): number {
    let b = names.get(name);
    if (b === undefined) {
      b = this.reuse(scope, name, n) ?? this.alloc(n);
      names.set(name, b);
    }
    return b;
  }

  /** A name that comes back gets its own range again (counters continue); else a range past its quarantine, zeroed. */
  private reuse(scope: StatsScope, name: string, n: number): number | undefined {
    const list = this.free[scope];
    const own = list.findIndex((f) => f.name === name && name !== '');
    if (own >= 0) return list.splice(own, 1)[0]!.base;
    const now = this.now();
    const i = list.findIndex((f) => f.reusableAt <= now);
    if (i < 0) return undefined;
    const b = list.splice(i, 1)[0]!.base;
    this.onReuse?.(b, n);
    return b;
  }

  private alloc(n: number): number {
    if (this.next + n > STATS_SLOTS) throw new Error(`stats: out of slots (${STATS_SLOTS})`);
    const b = this.next;
    this.next += n;
    return b;
  }

  toData(): StatsLayoutData {
    return {
      listeners: this.listed('listener'),
      clusters: this.listed('cluster'),
      routes: this.listed('route'),
      next: this.next,
    };
  }
}
