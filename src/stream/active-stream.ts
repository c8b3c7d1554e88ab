/**
 * The phase machine every L7 request runs through (MOSN's downstream phases, Envoy's filter
 * manager and router filter), written once for every protocol:
 *
 *   runPhases(hooks, s, from)
 *     decode filters, before_route          (s.decode; Stop parks, resume() comes back here)
 *     hooks.routePhase(s)                       route + cluster; none: the adapter answers (NR)
 *     decode filters, after_route
 *     hooks.prepareUpstream(s)               upstream request form (HTTP: headers, body buffering;
 *                                            false: the adapter calls hostPhase when ready)
 *   hostPhase(hooks, s, u, resumed)
 *     chooseHost(cluster, u)                 lb, avoiding hosts already tried; none: localReply(NoHost) (UH)
 *     decode filters, after_choose_host      (first attempt only)
 *     hooks.sendAttempt(s, host)             the protocol's pool (RPC multiplexed, HTTP/1.1, HTTP/2,
 *                                            a tunnel's byte relay); circuit breakers there
 *   attemptDeadline(u, policy, now)          the attempt's time: the request's end (startRequestTime),
 *                                            or sooner the per-try timeout; the adapter arms it on
 *                                            its own timer (RPC: the pending request's wheel entry;
 *                                            HTTP: the exchange's wheel entry); when it passes,
 *                                            perTryExpired tells a per-try timeout (retry decision)
 *                                            from the request's own timeout
 *   attemptFailed(hooks, s, u, failure, …)   one retry decision: retry_on bits, num_retries, the
 *     retry? hooks.retry(s) -> retryAttempt  cluster's retry budget (max_retries), previous hosts
 *     else   hooks.localReply(s, kind)       flag (UF / UR / UC / UT / URX) on the stream
 *
 * The adapters (src/proxy/proxy.ts: RPC codecs; src/http/exchange.ts: HTTP/1.1, HTTP/2, gRPC;
 * src/http/tunnel.ts: CONNECT / Upgrade) implement StreamHooks as methods (no closure per
 * request). `s` is the request's ActiveStream, or null when nothing needs one (no filters, no
 * access log, no retries: the RPC path then makes no object per request). `u` is the upstream
 * request's retry state (RetryState), held by whatever object the request already has.
 */
import { DecodePhase } from '../api/stream-filter';
import { RETRY_5XX, RETRY_CONNECT_FAILURE, RETRY_GATEWAY_ERROR, RETRY_RESET, type RetryPolicy } from '../router/http-routes';
import { C } from '../stats/layout';
import type { Cluster } from '../upstream/cluster';
import type { Host, LbContext } from '../upstream/lb';
import type { ActiveStream } from './pipeline';

/** Why the driver (or a failed attempt) asks the adapter for a local reply; the adapter maps it to its protocol's form. */
export const enum LocalReplyKind {
  /** No route / cluster (HTTP 404 or 503, RPC NO_PROCESSOR). */
  NoRoute = 0,
  /** The cluster has no host (HTTP 503, RPC NO_PROCESSOR). */
  NoHost = 1,
  /** A circuit breaker is open (HTTP 503, RPC busy). */
  Overflow = 2,
  /** The upstream did not answer in time (HTTP 504, RPC timeout). */
  Timeout = 3,
  /** Connect failure, reset or lost connection (HTTP 503, RPC connection closed). */
  UpstreamFailure = 4,
}

/** How one upstream attempt failed. */
export const enum AttemptFailure {
  /** The request never reached the upstream (connection refused, TLS, connect timeout). */
  ConnectFailure = 0,
  /** The upstream reset the stream (HTTP) before the response head. */
  Reset = 1,
  /** The upstream connection went away with the request in flight (RPC). */
  ConnectionClosed = 2,
  /** The attempt's own time (per-try timeout) ran out before the request's. */
  PerTryTimeout = 3,
  /** The request's whole time ran out. */
  Timeout = 4,
}

/** retry_on bits each failure satisfies (Envoy's semantics: gateway-error includes connect failures and resets). */
const FAILURE_BITS: readonly number[] = [
  RETRY_CONNECT_FAILURE | RETRY_GATEWAY_ERROR,
  RETRY_RESET | RETRY_GATEWAY_ERROR,
  RETRY_RESET | RETRY_GATEWAY_ERROR,
  RETRY_5XX | RETRY_GATEWAY_ERROR | RETRY_RESET,
  0,
];
/** Access-log response flag of a failure that is not retried. */
const FAILURE_FLAG: readonly string[] = ['UF', 'UR', 'UC', 'UT', 'UT'];
const FAILURE_REPLY: readonly LocalReplyKind[] = [
  LocalReplyKind.UpstreamFailure,
  LocalReplyKind.UpstreamFailure,
  LocalReplyKind.UpstreamFailure,
  LocalReplyKind.Timeout,
  LocalReplyKind.Timeout,
];

/** retry_on bits an upstream response status satisfies (HTTP 5xx; 502/503/504 are gateway errors too). */
export function statusRetryBits(status: number): number {
  if (status < 500) return 0;
  return status === 502 || status === 503 || status === 504 ? RETRY_5XX | RETRY_GATEWAY_ERROR : RETRY_5XX;
}

/**
 * One upstream request's attempts (HTTP: the Exchange; RPC: its RpcStream, made when the route
 * retries). Fields, so that the object the request already has carries them.
 */
export interface RetryState {
  cluster: Cluster | null;
  /** Retries so far. */
  retries: number;
  /** A retry was taken from the cluster's budget (mayRetry) and not started yet. */
  retryPending: boolean;
  /** The current attempt is a retry holding a place in the budget. */
  retryHeld: boolean;
  /** Hosts tried so far (routes with a retry policy only), for previous-hosts avoidance. */
  tried: Host[] | null;
  /** The end of the request's whole time across attempts (Date.now() clock; 0: none). startRequestTime sets it. */
  deadlineAt: number;
}

/** The request's own time (route timeout, the client's RPC timeout) starts now; kept across attempts. */
export function startRequestTime(u: RetryState, timeoutMs: number, now: number): void {
  u.deadlineAt = timeoutMs > 0 ? now + timeoutMs : 0;
}

/**
 * When the current attempt must have its response head (absolute, Date.now() clock; 0: never):
 * the request's end, or sooner the policy's per-try timeout (retry_timeout / per_try_timeout),
 * the same for every protocol. The adapter arms it on its timer and, when it passes, asks
 * perTryExpired which of the two it was.
 */
export function attemptDeadline(u: RetryState, policy: RetryPolicy | null, now: number): number {
  const per = policy === null ? 0 : policy.perTryTimeoutMs;
  const end = u.deadlineAt;
  if (per <= 0) return end;
  const t = now + per;
  return end === 0 || t < end ? t : end;
}

/** An attempt's deadline passed at `now`: true when it was the per-try timeout (the request still has time), false when the request's own time ran out. */
export function perTryExpired(u: RetryState | null, now: number): boolean {
  return u !== null && (u.deadlineAt === 0 || u.deadlineAt > now + 1);
}

/**
 * Whether a failed attempt is tried again: the policy's retry_on `bits`, num_retries, and a
 * place in the cluster's retry budget (circuit_breakers max_retries, shared by every worker;
 * URX when full). `safe`: the adapter's word that the request can be sent again (HTTP:
 * replayable body, idempotent method once the upstream may have seen it; RPC: an owned copy).
 */
export function mayRetry(u: RetryState, policy: RetryPolicy | null, bits: number, safe: boolean, s: ActiveStream | null): boolean {
  if (!safe || policy === null || (policy.on & bits) === 0 || u.retries >= policy.numRetries || u.cluster === null) return false;
  if (u.retryPending) return true;
  if (!u.cluster.tryAcquireRetry()) {
    if (s !== null) s.setResponseFlag('URX');
    return false;
  }
  u.retryPending = true;
  return true;
}

/** A retry decided by mayRetry starts: counted on the cluster; its budget place is held by the next attempt. */
export function beginRetry(u: RetryState, retryCounter: number): void {
  const cl = u.cluster as Cluster;
  u.retryHeld = u.retryPending;
  u.retryPending = false;
  u.retries++;
  cl.counters[cl.base + retryCounter]++;
}

/** An attempt ended: a retried attempt's place in the budget is free again. */
export function attemptDone(u: RetryState): void {
  if (u.retryHeld) {
    u.retryHeld = false;
    (u.cluster as Cluster).releaseRetry();
  }
}

/** The request ended: every budget place it holds (pending or held) goes back. */
export function requestDone(u: RetryState): void {
  if (u.retryHeld || u.retryPending) {
    u.retryHeld = u.retryPending = false;
    (u.cluster as Cluster).releaseRetry();
  }
}

/** A host for the next attempt: the lb's choice, another one when that was tried already (Envoy's previous_hosts). */
export function chooseHost(cluster: Cluster, u: RetryState | null, ctx: LbContext | null = null): Host | null {
  let host = cluster.lb.choose(ctx);
  const tried = u === null ? null : u.tried;
  if (tried !== null && tried.length > 0 && host !== null) {
    for (let i = 0; i < cluster.hosts.length && tried.includes(host); i++) {
      const h = cluster.lb.choose(ctx);
      if (h === null) break;
      host = h;
    }
  }
  return host;
}

/** Records an attempt's host (routes with a retry policy: previous-hosts avoidance). Allocates the list once per request. */
export function triedHost(u: RetryState, host: Host): void {
  (u.tried ??= []).push(host);
}

/** What a protocol adapter does at each phase; the phase machine calls these as methods. */
export interface StreamHooks<S extends ActiveStream> {
  /**
   * Route and cluster; the adapter keeps them (in its request state and, when present, the
   * stream: s.cluster, s.routeName, s.upstreamCluster). Returns the stream to go on with (s,
   * or one made now because the route needs it, e.g. an RPC route that retries), null when
   * none is needed, or undefined after answering locally.
   */
  routePhase(s: S | null): S | null | undefined;
  /** Between the after-route filters and the host: false when the adapter calls hostPhase itself later. */
  prepareUpstream(s: S | null): boolean;
  /** The request's cluster (set by route). */
  routedCluster(s: S | null): Cluster;
  /** The request's retry state (null: the request cannot retry). */
  retryState(s: S | null): RetryState | null;
  /** One upstream attempt on `host` (pool, breakers, per-try timer). */
  sendAttempt(s: S | null, host: Host): void;
  /** What the load balancer may read (ORIGINAL_DST: downstream socket, headers); absent: nothing. */
  lbContext?(s: S | null): LbContext | null;
  /** Answers locally in the protocol's form. */
  localReply(s: S | null, kind: LocalReplyKind): void;
  /** A retry was decided (beginRetry done): the adapter calls retryAttempt now or after a backoff. */
  retry(s: S | null): void;
}

/** The decode phases, routing and the first attempt, from `from` (a resumed filter's phase). */
export function runPhases<S extends ActiveStream>(h: StreamHooks<S>, s: S | null, from: DecodePhase): void {
  if (from <= DecodePhase.BeforeRoute) {
    if (s !== null && !s.decode(DecodePhase.BeforeRoute)) return;
    const r = h.routePhase(s);
    if (r === undefined) return;
    s = r;
  }
  if (from <= DecodePhase.AfterRoute) {
    if (s !== null && !s.decode(DecodePhase.AfterRoute)) return;
    if (!h.prepareUpstream(s)) return;
  }
  hostPhase(h, s, from === DecodePhase.AfterChooseHost);
}

/** Host choice, after-choose-host filters (first attempt), then the attempt. `resumed`: a filter of that phase let it go on. */
export function hostPhase<S extends ActiveStream>(h: StreamHooks<S>, s: S | null, resumed: boolean): void {
  if (resumed && s !== null) {
    if (!s.decode(DecodePhase.AfterChooseHost)) return;
    h.sendAttempt(s, s.host as Host);
    return;
  }
  const cluster = h.routedCluster(s);
  const u = h.retryState(s);
  const host = chooseHost(cluster, u, h.lbContext !== undefined ? h.lbContext(s) : null);
  if (host === null) {
    cluster.counters[cluster.base + C.NO_HOST]++;
    if (s !== null) s.setResponseFlag('UH');
    h.localReply(s, LocalReplyKind.NoHost);
    return;
  }
  if (s !== null && (u === null || u.retries === 0)) {
    s.host = host;
    if (!s.decode(DecodePhase.AfterChooseHost)) return;
  }
  h.sendAttempt(s, host);
}

/** A retry's attempt: another host where the cluster has one, no filters again. */
export function retryAttempt<S extends ActiveStream>(h: StreamHooks<S>, s: S | null): void {
  const cluster = h.routedCluster(s);
  const host = chooseHost(cluster, h.retryState(s), h.lbContext !== undefined ? h.lbContext(s) : null);
  if (host === null) {
    cluster.counters[cluster.base + C.NO_HOST]++;
    if (s !== null) s.setResponseFlag('UH');
    h.localReply(s, LocalReplyKind.NoHost);
    return;
  }
  if (s !== null) s.host = host;
  h.sendAttempt(s, host);
}

/**
 * An attempt failed before the response head: retried when the policy and budget allow
 * (`safe`: see mayRetry), else answered locally with the failure's flag. `retryCounter`: the
 * cluster stat a retry counts (upstream_rq_retry).
 */
export function attemptFailed<S extends ActiveStream>(h: StreamHooks<S>, s: S | null, policy: RetryPolicy | null, failure: AttemptFailure, safe: boolean, retryCounter: number): void {
  const u = h.retryState(s);
  if (u !== null && mayRetry(u, policy, FAILURE_BITS[failure], safe, s)) {
    beginRetry(u, retryCounter);
    h.retry(s);
    return;
  }
  if (s !== null) s.setResponseFlag(FAILURE_FLAG[failure]);
  h.localReply(s, FAILURE_REPLY[failure]);
}
