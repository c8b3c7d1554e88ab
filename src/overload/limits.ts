/**
 * Per-request resource limits that apply when a cluster's `circuit_breakers` say nothing:
 * the defaults that keep a slow client, a hung upstream or a silent RPC upstream from holding
 * unbounded memory or pool capacity. Set once per thread from the config's top-level `limits`
 * section (src/config/overload.ts) by applyLimits(); read on the request path (plain fields).
 *
 *   HTTP/1.1 pool (src/http/h1/pool.ts), per worker and cluster host:
 *     connections  = circuit_breakers.max_connections, else the proxy's connections_per_host
 *     waiters      <= circuit_breakers.max_pending_requests, else upstreamMaxPendingRequests;
 *                     beyond: 503 at once (flag UO, upstream_rq_pending_overflow)
 *     a waiter waits at most upstreamQueueTimeoutMs: then 503 (UO) as well
 *   Bolt/Dubbo pool (src/stream/upstream-pool.ts), per worker and cluster host:
 *     pending (in-flight) requests <= circuit_breakers.max_requests, else rpcMaxPendingRequests;
 *                     beyond: SERVER_THREADPOOL_BUSY (Bolt) / SERVER_THREADPOOL_EXHAUSTED (Dubbo)
 *     the client's timeout is capped by the route's timeout, else by rpcMaxTimeoutMs
 *   request bodies (src/http/exchange.ts, src/http/h1/downstream.ts):
 *     a body with a known length up to max_request_body_retry_buffer is read whole before an
 *     upstream connection is chosen; a body streamed to an upstream must keep
 *     minBodyRateBytesPerSec on average over each bodyRateWindowMs (after the first window).
 */
import { DEFAULT_LIMITS, type ResourceLimits } from '../config/overload';

// A type re-export only: a value re-exported here (`export { X }` of an import) compiles to an
// accessor defined over the exports object's own `X`, which turns that object into a dictionary,
// and optimized code then reads `limits` and `rpcTimeoutMs` through a LoadIC call per request
// (test/unit/module-exports.test.ts).
export type { ResourceLimits };

/** This thread's limits (workers apply the config's; tests may change fields). */
export const limits: ResourceLimits = { ...DEFAULT_LIMITS };

/** Applies a config's `limits` section (absent fields keep their defaults). */
export function applyLimits(l: Partial<ResourceLimits> | undefined): void {
  Object.assign(limits, DEFAULT_LIMITS, l ?? {});
}

/**
 * The upstream timeout of a Bolt/Dubbo request: the client's own (its frame's timeout field)
 * capped by the route's timeout, or by rpcMaxTimeoutMs when the route has none; without a
 * client timeout (Dubbo carries none the proxy reads), the route's, else the proxy's default
 * capped by rpcMaxTimeoutMs too.
 */
export function rpcTimeoutMs(clientMs: number, routeMs: number, defaultMs: number): number {
  const cap = routeMs > 0 ? routeMs : limits.rpcMaxTimeoutMs;
  if (clientMs > 0) return clientMs < cap ? clientMs : cap;
  return routeMs > 0 ? routeMs : defaultMs > 0 && defaultMs < cap ? defaultMs : cap;
}
