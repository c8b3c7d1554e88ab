/**
 * The two top-level sections Outrigger adds to the MOSN config for hostile traffic (MOSN has
 * neither; Envoy's bootstrap has `overload_manager`). Called from parseConfig.
 *
 *   "limits": {                         per-request defaults (applied by src/overload/limits.ts)
 *     "upstream_max_pending_requests": 1024,  HTTP/1.1 waiters per host pool (circuit_breakers wins)
 *     "upstream_queue_timeout": "5s",         longest wait for an HTTP/1.1 connection
 *     "rpc_max_pending_requests": 10000,      Bolt/Dubbo in-flight requests per host (max_requests wins)
 *     "rpc_max_timeout": "60s",               cap of a client's Bolt/Dubbo timeout when the route has none
 *     "min_request_body_rate": 240,           bytes/s a streamed request body must keep (0 = off)
 *     "request_body_rate_window": "5s"
 *   }
 *   "overload_manager": {               process-wide limits (src/overload/manager.ts)
 *     "refresh_interval": "250ms",            how often memory is sampled
 *     "max_downstream_connections": 0,        0 = none; at the limit new connections are closed at accept
 *     "max_active_requests": 0,               0 = none; beyond it new requests are shed
 *     "max_heap_bytes": 0,                    0 = none; the process's resident memory (RSS) budget
 *     "heap_actions": { "close_idle_connections": 0.85, "shed_requests": 0.9, "stop_accepting": 0.95 }
 *   }                                         (fractions of max_heap_bytes where each action starts)
 */
import { showValue } from './errors';
import type { ConfigObject } from './reader';

/** Per-request resource limits (src/overload/limits.ts documents where each applies). */
export interface ResourceLimits {
  /** HTTP/1.1 pool: waiters per host pool (per worker) when circuit_breakers has none. */
  upstreamMaxPendingRequests: number;
  /** HTTP/1.1 pool: how long a request may wait for a connection (ms). */
  upstreamQueueTimeoutMs: number;
  /** Bolt/Dubbo: pending requests per host (per worker) when circuit_breakers has no max_requests. */
  rpcMaxPendingRequests: number;
  /** Bolt/Dubbo: the longest upstream timeout a client may ask for when the route sets none (ms). */
  rpcMaxTimeoutMs: number;
  /** Streamed request bodies: minimum average rate (bytes/s) per window; 0 = off. */
  minBodyRateBytesPerSec: number;
  /** The window of that check (ms). */
  bodyRateWindowMs: number;
}

export const DEFAULT_LIMITS: Readonly<ResourceLimits> = Object.freeze({
  upstreamMaxPendingRequests: 1024,
  upstreamQueueTimeoutMs: 5_000,
  rpcMaxPendingRequests: 10_000,
  rpcMaxTimeoutMs: 60_000,
  minBodyRateBytesPerSec: 240,
  bodyRateWindowMs: 5_000,
});

export interface OverloadConfig {
  readonly refreshIntervalMs: number;
  readonly maxDownstreamConnections: number;
  readonly maxActiveRequests: number;
  readonly maxHeapBytes: number;
  readonly closeIdleAt: number;
  readonly shedAt: number;
  readonly stopAcceptingAt: number;
}

export const DEFAULT_OVERLOAD: OverloadConfig = Object.freeze({
  refreshIntervalMs: 250,
  maxDownstreamConnections: 0,
  maxActiveRequests: 0,
  maxHeapBytes: 0,
  closeIdleAt: 0.85,
  shedAt: 0.9,
  stopAcceptingAt: 0.95,
});

/** What the two sections add to the OutriggerConfig. */
export interface HostileTrafficConfig {
  readonly limits: ResourceLimits;
  readonly overload: OverloadConfig;
}

const TIMER_MAX_MS = 2_147_483_647;

function fraction(o: ConfigObject, key: string, def: number): number {
  const v = o.get(key);
  if (v === undefined) return def;
  if (typeof v !== 'number' || !(v > 0 && v <= 1)) {
    o.issues.error(o.at(key), `${showValue(v)} must be a number in (0, 1] (a fraction of max_heap_bytes)`);
    return def;
  }
  return v;
}

function parseLimits(o: ConfigObject | undefined): ResourceLimits {
  if (o === undefined) return { ...DEFAULT_LIMITS };
  const d = DEFAULT_LIMITS;
  const out: ResourceLimits = {
    upstreamMaxPendingRequests: o.int('upstream_max_pending_requests', { min: 1, max: 1_000_000, def: d.upstreamMaxPendingRequests }),
    upstreamQueueTimeoutMs: o.duration('upstream_queue_timeout', { def: d.upstreamQueueTimeoutMs, positive: true }),
    rpcMaxPendingRequests: o.int('rpc_max_pending_requests', { min: 1, max: 10_000_000, def: d.rpcMaxPendingRequests }),
    rpcMaxTimeoutMs: o.duration('rpc_max_timeout', { def: d.rpcMaxTimeoutMs, positive: true }),
    minBodyRateBytesPerSec: o.int('min_request_body_rate', { min: 0, max: 1 << 30, def: d.minBodyRateBytesPerSec }),
    bodyRateWindowMs: o.duration('request_body_rate_window', { def: d.bodyRateWindowMs, positive: true }),
  };
  o.done();
  return out;
}

function parseOverload(o: ConfigObject | undefined): OverloadConfig {
  if (o === undefined) return DEFAULT_OVERLOAD;
  const d = DEFAULT_OVERLOAD;
  const refresh = o.duration('refresh_interval', { def: d.refreshIntervalMs, positive: true });
  if (refresh > 60_000) o.issues.error(o.at('refresh_interval'), `${showValue(o.get('refresh_interval'))} is too long (max 60s)`);
  let closeIdleAt = d.closeIdleAt;
  let shedAt = d.shedAt;
  let stopAcceptingAt = d.stopAcceptingAt;
  const a = o.obj('heap_actions');
  if (a !== undefined) {
    closeIdleAt = fraction(a, 'close_idle_connections', d.closeIdleAt);
    shedAt = fraction(a, 'shed_requests', d.shedAt);
    stopAcceptingAt = fraction(a, 'stop_accepting', d.stopAcceptingAt);
    a.done();
  }
  const out: OverloadConfig = {
    refreshIntervalMs: Math.min(refresh, TIMER_MAX_MS),
    maxDownstreamConnections: o.int('max_downstream_connections', { min: 0, max: 100_000_000, def: 0 }),
    maxActiveRequests: o.int('max_active_requests', { min: 0, max: 1_000_000_000, def: 0 }),
    maxHeapBytes: o.int('max_heap_bytes', { min: 0, max: Number.MAX_SAFE_INTEGER, def: 0 }),
    closeIdleAt,
    shedAt,
    stopAcceptingAt,
  };
  if (out.maxHeapBytes > 0 && out.maxHeapBytes < 64 * 1024 * 1024) {
    o.issues.error(o.at('max_heap_bytes'), `${out.maxHeapBytes} is below 64 MiB: the process needs more than that to start`);
  }
  o.done();
  return out;
}

/** Reads `limits` and `overload_manager` of the top-level object (before its done()). */
export function parseHostileTrafficSections(top: ConfigObject): HostileTrafficConfig {
  return { limits: parseLimits(top.obj('limits')), overload: parseOverload(top.obj('overload_manager')) };
}
