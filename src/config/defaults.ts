/** Outrigger's config defaults: MOSN's where it has one (the source file in mosn/mosn is named). */
import type { LbType, LogLevel } from './types';

export const DEFAULTS = Object.freeze({
  /** MOSN logs to $base/logs/mosn.log; a sidecar in a container is better served by stdout. */
  logPath: 'stdout',
  /** pkg/configmanager/parser.go ParseLogLevel: unknown/empty -> INFO. */
  logLevel: 'info' as LogLevel,
  /** 0 = one worker per CPU (MOSN: processor absent or < 1 -> NumCPU). */
  processor: 0,
  /** pkg/server/reconfigure.go GracefulTimeout = 30s. */
  gracefulTimeoutMs: 30_000,
  /** pkg/types/network.go DefaultIdleTimeout = 90s, used when connection_idle_timeout is absent. */
  connectionIdleTimeoutMs: 90_000,
  /** pkg/config/v2/server.go defaultBufferLimit = 1 << 15 (not configurable in MOSN). */
  perConnBufferLimitBytes: 32_768,
  /** pkg/network/connection.go DefaultConnectTimeout = 10s. */
  connectTimeoutMs: 10_000,
  /** pkg/config/v2/constants.go DefaultMaxRequestPerConn. */
  maxRequestPerConn: 1024,
  /** pkg/config/v2/constants.go DefaultConnBufferLimitBytes = 16 KiB. */
  connBufferLimitBytes: 16_384,
  /** pkg/config/v2/constants.go MinHostWeight / MaxHostWeight; absent or 0 -> 1. */
  hostWeight: 1,
  minHostWeight: 1,
  maxHostWeight: 128,
  /** pkg/upstream/cluster/loadbalancer.go: unknown/empty lb_type -> round robin. */
  lbType: 'LB_ROUNDROBIN' as LbType,
  /** pkg/filter/network/streamproxy: idle_timeout absent -> types.DefaultIdleTimeout (90s). */
  tcpProxyIdleTimeoutMs: 90_000,
  /** pkg/filter/network/streamproxy/streamproxy.go defaultConnectRetryTimes = 3. */
  maxConnectAttempts: 3,
  /**
   * Config reader limits (Outrigger's own; MOSN has none): the largest config file read, and the
   * deepest nesting of objects and arrays. MOSN's example configs are a few KiB and nest about 10
   * levels; inline certificates and large route tables stay far below both.
   */
  maxConfigBytes: 16 * 1024 * 1024,
  maxConfigDepth: 100,
  adminHost: '127.0.0.1',
  adminPort: 34901,
});

/** Largest timer Node can honor (setTimeout clamps bigger values to 1 ms). */
export const MAX_TIMER_MS = 2_147_483_647;
export const UINT32_MAX = 4_294_967_295;
