/**
 * One HTTP request through the proxy (HTTP/1.1, HTTP/2, gRPC): the HTTP adapter of the stream
 * phase machine (src/stream/active-stream.ts runs the phases, the retry decision, the budget
 * and previous-hosts avoidance; the Exchange implements StreamHooks and keeps the HTTP work):
 *
 *   request head ─> limits (header count, Host, path normalization: 400 / 307)
 *   runPhases(exchange, HttpStream | null):
 *     routePhase       virtual host (:authority) ─> route (cached) ─> cluster
 *                      none: 404 (NR)   direct_response / redirect: answered here
 *     prepareUpstream  headers: hop-by-hop out, route and virtual-host ops, x-request-id,
 *                      prefix/host rewrite; route timeout (or a shorter grpc-timeout) armed;
 *                      body: buffered when a retry may need it again
 *                      (<= max_request_body_retry_buffer; hostPhase when complete), else streamed
 *     sendAttempt      max_requests breaker (503, UO) ─> upstream h1 pool | h2 session, per-try timer
 *     localReply       status + short text body, or grpc-status for gRPC (trailers-only)
 *     retry            backoff (25 ms base, full jitter), then retryAttempt
 *   attempt failed: connect failure / reset / 5xx / per-try timeout ─> attemptFailed / mayRetry
 *     (idempotent methods only once the upstream may have seen the request)
 *   response head ─> encode filters ─> ops ─> downstream; body with backpressure; trailers kept
 *   route timeout: 504 / grpc-status 4 before the head, reset after
 *
 * Every exchange answers exactly once: `finished` guards all the ways it can end.
 */
// The module's own binding: the global `Buffer` is an accessor property (a getter call on every use).
import { Buffer } from 'node:buffer';
import type * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { mirrorHttp, routerMirrorHttp } from '../filters/stream/mirror/mirror';
import { PassThrough, type Readable } from 'node:stream';
import { DecodePhase, type LocalReplyOptions, type StreamPeer } from '../api/stream-filter';
import type { ListenerContext } from '../filters/network/types';
import { type CompiledHttpRouter, type HttpRoute, type HttpRouteRequest, type HttpVirtualHost } from '../router/http-routes';
import { resolveTarget } from '../router/path';
import { admitRequest, requestEnded } from '../overload/manager';
import { OL } from '../overload/stats';
import { deadlines, type DeadlineEntry } from '../stream/deadlines';
import { ActiveStream, hostPort, LightResult, startSampled, type StreamPipeline } from '../stream/pipeline';
import { declaredBodyLength, runHttpLight, transportTls } from '../stream/http-light';
import { attemptDeadline, attemptDone, AttemptFailure, attemptFailed, beginRetry, hostPhase, LocalReplyKind, mayRetry, perTryExpired, requestDone, retryAttempt, runPhases, startRequestTime, statusRetryBits, triedHost, type RetryState, type StreamHooks } from '../stream/active-stream';
import { proxyLog } from '../proxy/detect';
import { C, L, R } from '../stats/layout';
import type { Cluster } from '../upstream/cluster';
import type { Host, LbContext } from '../upstream/lb';
import type { MetadataMatch } from '../upstream/subset-match';
import { LOCAL_FAILURE, outlierResult } from '../upstream/outlier';
import type { HttpProxyConfig } from './config';
import { applyOps, endToEnd, ensureRequestId, grpcTimeoutMs, isGrpc, isIdempotent, requestId, type Headers } from './headers';
import { clusterTime, routeCount, routeRequest, routeResponse } from './route-stats';
import { HC, HL, statusClass, timeBucket } from './stats';
import { FailKind, isBodySource, type BodySink, type BodySource, type HeadBytes, type RawHeadLines, type RequestBytes, type UpstreamAttempt, type UpstreamRequest, type UpstreamSink } from './upstream';
import { startH1 } from './upstream-h1';
import { startH2 } from './upstream-h2';

/**
 * The downstream side of one exchange: a node:http request and response (downstream-h1.ts), a
 * node:http2 stream (downstream-h2.ts) or a raw HTTP/1.1 connection (h1/downstream.ts). The
 * downstream calls the exchange's onDownstreamClose when the client goes away before the
 * response ended, and onDownstreamDrain once a write that returned false has drained.
 */
export interface Downstream {
  readonly h2: boolean;
  readonly method: string;
  /** Path with query (the request-target of an origin-form request). */
  readonly url: string;
  /** :authority or Host ('' when absent). */
  readonly authority: string;
  /** HTTP/1 minor version (1 for HTTP/2). */
  readonly httpMinor: number;
  /** Request headers, lower-case names, hop-by-hop ones included. */
  readonly headers: Headers;
  /**
   * One request header, as `headers[name]` (`name` in lower case), where the downstream can
   * give it without building `headers` (raw HTTP/1.1 engine; absent elsewhere).
   */
  field?(name: string): string | string[] | undefined;
  readonly headerCount: number;
  /** A request body follows the head. */
  readonly hasBody: boolean;
  /** The request body as the upstream takes it (only when hasBody). */
  body(): Readable | BodySource;
  /** The response head was sent. */
  readonly headersSent: boolean;
  /**
   * Sends the response head; `end`: nothing follows (HTTP/2: HEADERS with END_STREAM, the
   * trailers-only form); `close`: HTTP/1 closes the connection after this response.
   */
  respond(status: number, headers: Headers, end: boolean, close: boolean): void;
  /**
   * Sends a response head given as the upstream's bytes (raw HTTP/1.1 engine only; absent
   * elsewhere): `buf`'s field lines indexed by `lines`, valid during the call.
   */
  respondRaw?(status: number, buf: Buffer, lines: RawHeadLines, end: boolean, close: boolean, bufEnd: number): void;
  /**
   * The request head as its bytes, while the exchange starts (raw HTTP/1.1 engine only; absent
   * elsewhere); null when it is not available or not forwardable as it is.
   */
  requestBytes?(): HeadBytes | null;
  /** Response body bytes (the view may be transient: copy to keep). false: wait for onDownstreamDrain. */
  write(chunk: Buffer): boolean;
  /** Ends the response, with trailers where the framing can carry them. */
  end(trailers: Headers | null): void;
  /** Abandons the response: HTTP/2 RST_STREAM, HTTP/1 closes the connection. */
  reset(): void;
  /** The client connection (addresses, TLS) for access logs and filters; absent: unknown. */
  transport?(): DownstreamTransport | null;
}

/** What the stream pipeline reads of a downstream connection (a Connection or a net.Socket). */
export interface DownstreamTransport {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
}

/** What every exchange of one filter factory shares. */
export interface HttpEnv {
  readonly cfg: HttpProxyConfig;
  /** Swapped by a route-config-only reload (HttpProxyFactory.prepareRoutes). */
  router: CompiledHttpRouter;
  readonly ctx: ListenerContext;
  /** Set while the listener drains: h1 responses close their connection. */
  draining: boolean;
  /** Stream filters and access log of the listener snapshot (absent: none). */
  readonly pipeline?: StreamPipeline;
}

/**
 * Date.now() from the monotonic clock, which is a fast call where Date.now() is a V8 runtime
 * call; the offset between the two is read again once a second (a wall-clock step shows within
 * a second, as it would for deadlines already armed).
 */
let wallOffset = Date.now() - performance.now();
let wallSynced = performance.now();
function wallClock(mono: number): number {
  if (mono - wallSynced > 1000) {
    wallSynced = performance.now();
    wallOffset = Date.now() - wallSynced;
  }
  return mono + wallOffset;
}

/** gRPC status codes used for local replies. */
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNIMPLEMENTED = 12;
const GRPC_UNAVAILABLE = 14;

/** grpc-status of a filter's local reply with this HTTP status. */
function grpcStatusOf(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return GRPC_UNIMPLEMENTED;
    case 413:
    case 429:
      return GRPC_RESOURCE_EXHAUSTED;
    case 502:
    case 503:
      return GRPC_UNAVAILABLE;
    case 504:
      return GRPC_DEADLINE_EXCEEDED;
    default:
      return 2; // UNKNOWN
  }
}


export class Exchange implements UpstreamSink, HttpRouteRequest, DeadlineEntry, StreamHooks<HttpStream>, RetryState, LbContext {
  readonly path: string;
  private readonly method: string;
  private readonly fullPath: string;
  private readonly authority: string;
  /** 0, or the answer to a request target that path normalization refuses (400) or redirects (307). */
  private readonly targetStatus: number;
  private readonly h2: boolean;
  private readonly grpc: boolean;
  private readonly counters: Float64Array;
  private readonly lb: number;
  private route: HttpRoute | null = null;
  /** LbContext: the route's subset criteria for the picked cluster (metadata_match). */
  metadataMatch: MetadataMatch | null = null;
  private vh: HttpVirtualHost | null = null;
  cluster: Cluster | null = null;
  private up: UpstreamRequest | null = null;
  private upstreamH2 = false;
  private cur: UpstreamAttempt | null = null;
  private curHost: Host | null = null;
  private attemptStart = 0;
  retries = 0;
  /** Hosts tried so far (only when the route has a retry policy). */
  tried: Host[] | null = null;
  private replayable = true;
  private responseStarted = false;
  private finished = false;
  // The attempt's deadline (attemptDeadline: the route timeout, or sooner the per-try timeout):
  // an entry of the worker's deadline wheel (no timer per request or attempt).
  deadline = 0;
  /** The end of the route timeout (RetryState; 0: none). */
  deadlineAt = 0;
  dlPrev: DeadlineEntry | null = null;
  dlNext: DeadlineEntry | null = null;
  dlSlot = 0;
  private waitingDrain = false;
  private status = 0;
  /** Counted by the overload manager (admitRequest) until finish(). */
  private admitted = false;
  /** Inside start(): the clock reading of the request's arrival stands for now (monoNow). */
  private starting = false;
  /** performance.now() when the request arrived (route latency). */
  private readonly startMs: number;
  /** The pipeline's view of this request: only when the listener has stream filters or an access log. */
  private fs: HttpStream | null = null;
  /** A retry was taken from the cluster's budget (mayRetry) / is held by the current attempt. */
  retryPending = false;
  retryHeld = false;
  /** How the last attempt failed (the local reply's text). */
  private failKind = FailKind.ConnectFailure;
  private failErr: Error | null = null;
  /** FilterStream.limitRequestBody: bytes allowed in a body of unknown length (0 = no limit), and the answer past them. */
  bodyLimit = 0;
  bodyLimitStatus = 0;
  /** Payload bytes of a streamed body of unknown length so far (meterBody; %bytes_received%). */
  bodyBytes = 0;

  /** `startMs`: when the request arrived (performance.now()), if the downstream has read the clock already. */
  constructor(
    private readonly env: HttpEnv,
    private readonly down: Downstream,
    startMs = performance.now(),
  ) {
    this.startMs = startMs;
    this.counters = env.ctx.counters;
    this.lb = env.ctx.base;
    this.h2 = down.h2;
    this.method = down.method;
    // The request target: absolute-form split, path normalized (router/path.ts); refusals in start().
    const t = resolveTarget(down.url, down.authority, env.cfg.paths);
    const url = typeof t === 'string' ? t : t.url;
    this.targetStatus = typeof t === 'string' ? 0 : t.status;
    this.fullPath = url;
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.authority = typeof t === 'string' ? down.authority : t.authority;
    this.grpc = isGrpc(this.field('content-type'));
  }

  // ---- HttpRouteRequest

  header(name: string): string | undefined {
    if (name.charCodeAt(0) === 58) {
      if (name === ':method') return this.method;
      if (name === ':path') return this.fullPath;
      if (name === ':authority') return this.authority;
    }
    const v = this.field(name);
    return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
  }

  /** A request header without building the downstream's header map where it can (Downstream.field). */
  private field(name: string): string | string[] | undefined {
    const d = this.down;
    return d.field !== undefined ? d.field(name) : d.headers[name];
  }

  // ---- LbContext (ORIGINAL_DST clusters: the original destination, or a request header)

  get downstream(): net.Socket | null {
    const t = this.down.transport !== undefined ? this.down.transport() : null;
    if (t === null) return null;
    const inner = (t as { socket?: net.Socket | null }).socket; // a Connection has one; a node socket (or HTTP/2's proxy of one) does not
    return inner !== undefined && inner !== null ? inner : (t as net.Socket);
  }

  lbContext(): LbContext {
    return this;
  }

  // ---- phases

  start(): void {
    const c = this.counters;
    const lb = this.lb;
    const pl = this.env.pipeline;
    // One object per request, only when the listener has stream filters or an access log (not light: below).
    if (pl !== undefined && pl.active && !pl.light) this.fs = this.newStream(pl);
    c[lb + L.RQ_TOTAL]++;
    c[lb + L.RQ_ACTIVE]++;
    c[lb + (this.h2 ? HL.RQ_HTTP2 : HL.RQ_HTTP1)]++;
    // Overload manager: counted until finish(), or shed now (flag OM, as Envoy's overload manager).
    if (!admitRequest()) {
      c[lb + OL.RQ_SHED]++;
      if (this.fs !== null) this.fs.setResponseFlag('OM');
      this.reply(503, 'overloaded', GRPC_UNAVAILABLE, true);
      return;
    }
    this.admitted = true;
    // Header count limit (h1; h2 is limited by the session's maxHeaderListPairs).
    if (!this.h2 && this.down.headerCount > this.env.cfg.maxHeaders) {
      c[lb + HL.HEADER_OVERFLOW]++;
      this.reply(431, 'too many request headers', GRPC_UNAVAILABLE, true);
      return;
    }
    if (!this.h2 && this.authority === '' && this.down.httpMinor === 1) {
      c[lb + HL.BAD_REQUEST]++;
      this.reply(400, 'missing Host header', GRPC_UNAVAILABLE, true);
      return;
    }
    if (this.targetStatus === 307 && !this.grpc) return this.localRedirect(this.fullPath);
    if (this.targetStatus !== 0) {
      c[lb + HL.BAD_REQUEST]++;
      this.reply(400, 'bad request path', GRPC_UNAVAILABLE, true);
      return;
    }
    if (pl !== undefined && pl.light) {
      // Light pipeline: the filters on a view (src/stream/http-light.ts); a stream only for a request tracing samples.
      const r = runHttpLight(pl, this, this.down, this.protocolName());
      if (r === LightResult.Answered) return;
      if (r === LightResult.Sampled) startSampled(pl, (this.fs = this.newStream(pl)));
    }
    this.starting = true;
    runPhases(this, this.fs, DecodePhase.BeforeRoute);
    this.starting = false;
  }

  /**
   * Whether this exchange may read the request's header map after start() returned (the raw
   * HTTP/1.1 downstream builds it before its buffer is reused, else never): not when it has
   * finished, nor when its request went upstream as the client's bytes (a retry of that on a new
   * connection resends the bytes written, h1/pool.ts; routes with retries, filters, access logs
   * and mirrors read the map during start()). Otherwise yes: a request queued for a connection, a
   * filter that stopped the request, a request sent from its header map.
   */
  requestHeadersLater(): boolean {
    if (this.finished) return false;
    const up = this.up;
    return !(up instanceof ByteRequest && up.sent);
  }

  /**
   * The monotonic clock: the request's arrival while start() runs (routing and a first attempt
   * sent at once take microseconds), else a fresh reading.
   */
  private monoNow(): number {
    return this.starting ? this.startMs : performance.now();
  }

  private newStream(pl: StreamPipeline): HttpStream {
    return new HttpStream(this, pl, this.down, this.protocolName(), this.env.ctx.name);
  }

  private protocolName(): string {
    return this.h2 ? (this.grpc ? 'grpc' : 'http2') : 'http1';
  }

  /** A stopped filter let the request go on (FilterStream.resume). */
  continueFrom(phase: DecodePhase): void {
    if (this.finished) return;
    runPhases(this, this.fs, phase);
  }

  // ---- StreamHooks (src/stream/active-stream.ts runs the phases; these are the HTTP parts)

  /** Virtual host, route (direct_response / redirect answered here), cluster. */
  routePhase(fs: HttpStream | null): HttpStream | null | undefined {
    const c = this.counters;
    const lb = this.lb;
    const vh = this.env.router.virtualHost(this.authority);
    const route = vh === null ? null : vh.match(this);
    if (vh === null || route === null) {
      c[lb + L.RS_NO_ROUTE]++;
      this.reply(404, 'no route', GRPC_UNIMPLEMENTED);
      return undefined;
    }
    this.vh = vh;
    this.route = route;
    routeRequest(route);
    if (route.direct !== null) {
      c[lb + HL.DIRECT_RESPONSE]++;
      this.reply(route.direct.status, route.direct.body, -1);
      return undefined;
    }
    if (route.redirect !== null) {
      c[lb + HL.REDIRECT]++;
      this.redirect(route);
      return undefined;
    }
    const target = route.pickTarget();
    const cluster = this.env.ctx.clusters.get(target !== null ? target.name : route.pickCluster(this));
    this.metadataMatch = target !== null ? target.metadataMatch : route.metadataMatch;
    if (cluster === undefined) {
      c[lb + L.RS_NO_ROUTE]++;
      this.reply(route.clusterHeader !== '' ? 404 : 503, 'cluster not found', GRPC_UNAVAILABLE);
      return undefined;
    }
    this.cluster = cluster;
    if (fs !== null) fs.routed(route.name, cluster, route.mirror, route.rateLimits);
    return fs;
  }

  /** Upstream headers, timeout, body; false while a body a retry may need is buffered (then onBodyBuffered). */
  prepareUpstream(): boolean {
    const route = this.route as HttpRoute;
    const vh = this.vh as HttpVirtualHost;
    const cfg = this.env.cfg;
    this.upstreamH2 = cfg.upstream === 'auto' ? this.h2 : cfg.upstream === 'http2';
    const bytes = this.headBytes(route, vh);
    if (bytes !== null) {
      // Nothing changes the head: the upstream gets the client's own lines (h1/pool.ts), the header map only if asked for.
      startRequestTime(this, route.timeoutMs > 0 ? route.timeoutMs : cfg.defaultTimeoutMs, wallClock(this.monoNow()));
      if (this.deadlineAt > 0) deadlines().arm(this, this.deadlineAt);
      const id = cfg.generateRequestId && this.field('x-request-id') === undefined ? requestId() : '';
      // One object per request, as the literal below.
      this.up = new ByteRequest(this.method, route.rewritePath(this.fullPath), route.hostRewrite !== '' ? route.hostRewrite : this.authority, this.down, bytes, id);
      return true;
    }
    // The upstream header set (a new object: hop-by-hop out, ops applied; the downstream's stays intact for matching and logs).
    // No host (the upstream writes the authority) and no expect: 100-continue is answered by the
    // downstream side (node:http or h1/downstream.ts), not passed on.
    const headers = endToEnd(this.down.headers, true);
    applyOps(headers, route.ops, vh.ops, false);
    if (cfg.generateRequestId) ensureRequestId(headers);
    // Route timeout, shortened by a gRPC deadline.
    let timeout = route.timeoutMs > 0 ? route.timeoutMs : cfg.defaultTimeoutMs;
    const deadline = this.grpc ? grpcTimeoutMs(this.down.headers['grpc-timeout']) : undefined;
    if (deadline !== undefined && (timeout === 0 || deadline < timeout)) timeout = deadline;
    startRequestTime(this, timeout, wallClock(this.monoNow()));
    if (this.deadlineAt > 0) deadlines().arm(this, this.deadlineAt);
    const authority = route.hostRewrite !== '' ? route.hostRewrite : this.authority;
    const path = route.rewritePath(this.fullPath);
    // Body: none, buffered (replayable by a retry) or streamed (sent once).
    let body: Buffer | Readable | BodySource | null = null;
    if (this.down.hasBody) {
      const cl = Number(this.down.headers['content-length']);
      if (Number.isInteger(cl) && cl <= cfg.maxRetryBuffer && !this.grpc) {
        // Read whole before an upstream connection is chosen (a slow client never pins one) and
        // replayable by a retry: one copy, bounded by max_request_body_retry_buffer.
        this.up = { method: this.method, path, authority, headers, body: null };
        collectBody(this.down.body(), cl, this);
        return false;
      }
      body = this.down.body();
      // A body of unknown length (chunked, HTTP/2 without content-length) is metered when a
      // limit applies or the access log needs its size.
      if (this.bodyLimit > 0 || (this.fs !== null && this.fs.bytesReceived === undefined)) body = meterBody(body, this.bodyLimit, this);
      this.replayable = false;
    }
    this.up = { method: this.method, path, authority, headers, body };
    return true;
  }

  /**
   * The client's head as bytes when the upstream request may be sent as it: a bodiless raw
   * HTTP/1.1 request to an HTTP/1.1 upstream, with no request header operations, stream filters,
   * access log or mirrors (all of which read or change the header map); else null.
   */
  private headBytes(route: HttpRoute, vh: HttpVirtualHost): HeadBytes | null {
    const down = this.down;
    if (down.requestBytes === undefined || down.hasBody || this.upstreamH2 || this.fs !== null || route.mirror !== null || this.grpc) return null;
    const pl = this.env.pipeline;
    if (pl !== undefined && pl.active) return null;
    const a = route.ops;
    const b = vh.ops;
    if (a.requestAdd.length + a.requestRemove.length + b.requestAdd.length + b.requestRemove.length !== 0) return null;
    return down.requestBytes();
  }

  routedCluster(): Cluster {
    return this.cluster as Cluster;
  }

  retryState(): RetryState {
    return this;
  }

  localReply(_fs: HttpStream | null, kind: LocalReplyKind): void {
    const c = this.counters;
    const lb = this.lb;
    switch (kind) {
      case LocalReplyKind.NoRoute:
      case LocalReplyKind.NoHost:
        c[lb + L.RS_NO_ROUTE]++;
        this.reply(503, 'no healthy upstream', GRPC_UNAVAILABLE);
        return;
      case LocalReplyKind.Overflow:
        this.reply(503, 'upstream overflow', GRPC_UNAVAILABLE);
        return;
      case LocalReplyKind.Timeout:
        c[lb + L.RS_TIMEOUT]++;
        this.reply(504, 'upstream request timeout', GRPC_DEADLINE_EXCEEDED);
        return;
      default: {
        c[lb + L.RS_CX_CLOSED]++;
        const err = this.failErr as Error;
        const cl = this.cluster as Cluster;
        // The reason (addresses, TLS verification text) goes to the access log and the debug log, never to the client.
        if (this.fs !== null) this.fs.upstreamTransportFailureReason = err.message;
        const log = proxyLog();
        if (log.debug !== undefined) log.debug({ listener: this.env.ctx.name, cluster: cl.name, err: err.message }, 'http: upstream request failed');
        this.reply(503, this.failKind === FailKind.ConnectFailure ? 'upstream connect error' : 'upstream reset before response headers', GRPC_UNAVAILABLE);
      }
    }
  }

  /** A retry was decided: the next attempt after a backoff. */
  retry(): void {
    routeCount(this.route as HttpRoute, R.RETRY);
    // During the backoff only the route timeout runs.
    this.armDeadline(this.deadlineAt);
    // Exponential backoff from 25 ms with full jitter (what Envoy does by default).
    const delay = Math.random() * 25 * 2 ** (this.retries - 1);
    // A timer per retry (error path only).
    setTimeout(() => {
      if (!this.finished) retryAttempt(this, this.fs);
    }, delay);
  }

  /** The buffered body (collectBody) is complete: first attempt. */
  onBodyBuffered(buf: Buffer): void {
    if (this.finished) return;
    this.up = { ...(this.up as UpstreamRequest), body: buf };
    hostPhase(this, this.fs, false);
  }

  /** The downstream failed while the body was being buffered. */
  onBodyFailed(): void {
    if (this.finished) return;
    this.counters[this.lb + HL.RESET]++;
    routeCount(this.route as HttpRoute, R.DOWNSTREAM_RESET);
    this.down.reset();
    this.finish();
  }

  /** One attempt on `host`. */
  sendAttempt(_fs: HttpStream | null, host: Host): void {
    const cluster = this.cluster as Cluster;
    const cc = cluster.counters;
    const cb = cluster.base;
    if (!cluster.tryAcquireRequest()) {
      // Circuit breaker max_requests (shared by every worker; released in endAttempt).
      if (this.fs !== null) this.fs.setResponseFlag('UO');
      this.reply(503, 'upstream overflow', GRPC_UNAVAILABLE);
      return;
    }
    if (this.fs !== null) {
      this.fs.upstreamHost = host.address;
      this.fs.requestSent();
    }
    host.active++;
    this.curHost = host;
    if (this.route !== null && this.route.retry !== null) triedHost(this, host);
    cc[cb + C.RQ_TOTAL]++;
    cc[cb + C.RQ_ACTIVE]++;
    this.attemptStart = this.monoNow();
    const route = this.route as HttpRoute;
    const req = this.up as UpstreamRequest;
    // Upstreams may edit the headers they get (framing, host): a retry needs its own copy.
    const up: UpstreamRequest = route.autoHostRewrite
      ? { ...req, authority: host.address, headers: { ...req.headers } }
      : route.retry !== null
        ? { ...req, headers: { ...req.headers } }
        : req;
    // Mirror filter: copies of the first attempt's request to the mirror clusters (fire and forget).
    if (this.fs !== null && this.fs.mirror !== null && this.retries === 0) mirrorHttp(this.fs.mirror, req, this.env.ctx.clusters, this.upstreamH2, this.env.cfg.h2InitialWindowSize, this.env.cfg.connectionsPerHost);
    // Envoy's router mirrors (policies from xDS) need no filter.
    if (route.mirror !== null && this.retries === 0) routerMirrorHttp(route.mirror, req, this.env.ctx.clusters, this.upstreamH2, this.env.cfg.h2InitialWindowSize, this.env.cfg.connectionsPerHost);
    // Tracing (sampled requests): a client span per attempt, its context in the upstream headers.
    if (this.fs !== null && this.fs.trace !== null) this.fs.trace.attempt(host.address, cluster.name, up.headers);
    // The attempt's time (shared with every protocol: src/stream/active-stream.ts attemptDeadline).
    // The wall clock only matters for a per-try timeout (attemptDeadline ignores it otherwise).
    const retry = route.retry;
    this.armDeadline(attemptDeadline(this, retry, retry !== null && retry.perTryTimeoutMs > 0 ? Date.now() : 0));
    this.cur = this.upstreamH2 ? startH2(cluster, host, this.env.cfg.h2InitialWindowSize, up, this) : startH1(cluster, host, this.env.cfg.connectionsPerHost, up, this);
  }

  /** Ends the current attempt's accounting (host load, cluster active, latency). */
  private endAttempt(status: number, now = 0): void {
    // A retried attempt ended: its place in the cluster's retry budget is free again.
    attemptDone(this);
    const host = this.curHost;
    if (host === null) return;
    this.curHost = null;
    host.active--;
    const cl = this.cluster as Cluster;
    const cc = cl.counters;
    const cb = cl.base;
    cc[cb + C.RQ_ACTIVE]--;
    cl.releaseRequest();
    if (status > 0) {
      outlierResult(cl, host, status); // outlier detection (src/upstream/outlier.ts)
      const ms = (now > 0 ? now : performance.now()) - this.attemptStart;
      cc[cb + HC.RQ_1XX + statusClass(status)]++;
      cc[cb + HC.TIME_BUCKET_0 + timeBucket(ms)]++;
      clusterTime(cl, ms * 1000);
      if (this.retries > 0 && status < 500) {
        cc[cb + HC.RETRY_SUCCESS]++;
        routeCount(this.route as HttpRoute, R.RETRY_SUCCESS);
      }
    }
  }

  /** Arms the wheel entry at `at` (0: disarmed); nothing to do when it is armed there already. */
  private armDeadline(at: number): void {
    if (at === this.deadline) return;
    if (at === 0) deadlines().disarm(this);
    else deadlines().arm(this, at);
  }

  /** Whether the request can be sent again after an attempt failed (`seen`: the upstream may have seen it). */
  private safe(seen: boolean): boolean {
    return this.replayable && !this.finished && (!seen || isIdempotent(this.method));
  }

  // ---- UpstreamSink

  /** The response head may go downstream as the upstream's bytes: nothing would change it (onResponseRaw). */
  rawResponseHead(): boolean {
    const route = this.route;
    const vh = this.vh;
    if (this.fs !== null || this.extraHeaders !== null || this.down.respondRaw === undefined || route === null || vh === null) return false;
    const a = route.ops;
    const b = vh.ops;
    return a.responseAdd.length + a.responseRemove.length + b.responseAdd.length + b.responseRemove.length === 0;
  }

  /** A response head as bytes (rawResponseHead() said yes): onResponseHeaders without a header map. */
  onResponseRaw(status: number, buf: Buffer, lines: RawHeadLines, endStream: boolean, bufEnd: number): void {
    if (!this.headArrived(status)) return;
    const down = this.down as Required<Pick<Downstream, 'respondRaw'>>;
    this.counters[this.lb + HL.RQ_1XX + statusClass(status)]++;
    if (endStream) {
      this.endAttempt(status);
      down.respondRaw(status, buf, lines, true, this.env.draining, bufEnd);
      this.finish();
      return;
    }
    down.respondRaw(status, buf, lines, false, this.env.draining, bufEnd);
  }

  /** A response head: false when it is not forwarded (the exchange ended, or a 5xx is retried). */
  private headArrived(status: number): boolean {
    if (this.finished) return false;
    if (status >= 500 && mayRetry(this, (this.route as HttpRoute).retry, statusRetryBits(status), this.safe(true), this.fs)) {
      (this.cur as UpstreamAttempt).abort();
      this.endAttempt(status);
      beginRetry(this, HC.RETRY);
      this.retry();
      return false;
    }
    // The head arrived: the per-try timeout no longer applies, the route timeout does.
    this.armDeadline(this.deadlineAt);
    this.status = status;
    this.responseStarted = true;
    return true;
  }

  onResponseHeaders(status: number, headers: Headers, endStream: boolean): void {
    if (!this.headArrived(status)) return;
    const out = endToEnd(headers);
    applyOps(out, (this.route as HttpRoute).ops, (this.vh as HttpVirtualHost).ops, true);
    if (this.extraHeaders !== null) Object.assign(out, this.extraHeaders);
    const fs = this.fs;
    if (fs !== null) {
      fs.respHeaders = out;
      const cur = this.cur as UpstreamAttempt;
      if (cur.localAddress !== undefined) fs.upstreamLocalAddress = cur.localAddress();
      fs.encode(status);
    }
    this.counters[this.lb + HL.RQ_1XX + statusClass(status)]++;
    if (endStream) {
      // No body (HTTP/2: trailers-only, e.g. gRPC errors, as received).
      this.endAttempt(status);
      this.down.respond(status, out, true, this.env.draining);
      this.finish();
      return;
    }
    this.down.respond(status, out, false, this.env.draining);
  }

  onResponseData(chunk: Buffer): boolean {
    if (this.finished) return false;
    if (this.fs !== null) this.fs.sent += chunk.length;
    const ok = this.down.write(chunk);
    if (!ok) this.waitingDrain = true;
    return ok;
  }

  /** The downstream drained after a write returned false. */
  onDownstreamDrain(): void {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    if (this.cur !== null && !this.finished) this.cur.resume();
  }

  onResponseEnd(trailers: Headers | null): void {
    if (this.finished) return;
    // One clock read for the attempt's and the route's latency.
    const now = performance.now();
    this.endAttempt(this.status, now);
    this.down.end(trailers !== null ? endToEnd(trailers) : null);
    this.finish(now);
  }

  onUpstreamError(kind: FailKind, err: Error): void {
    if (this.finished) return;
    if (kind === FailKind.Overflow) {
      // max_connections, or the pool's queue is full or timed out: answered at once, never retried (flag UO).
      this.endAttempt(0);
      this.counters[this.lb + L.RS_OVERFLOW]++;
      if (this.fs !== null) this.fs.setResponseFlag('UO');
      this.reply(503, 'upstream overflow', GRPC_UNAVAILABLE);
      return;
    }
    const cl = this.cluster as Cluster;
    if (kind === FailKind.ConnectFailure) cl.counters[cl.base + C.CX_CONNECT_FAIL]++;
    else cl.counters[cl.base + HC.RESET]++;
    routeCount(this.route as HttpRoute, R.UPSTREAM_RESET);
    if (this.curHost !== null) outlierResult(cl, this.curHost, LOCAL_FAILURE);
    this.endAttempt(0);
    if (this.responseStarted) {
      this.resetDownstream();
      return;
    }
    this.failKind = kind;
    this.failErr = err;
    const connect = kind === FailKind.ConnectFailure;
    attemptFailed(this, this.fs, (this.route as HttpRoute).retry, connect ? AttemptFailure.ConnectFailure : AttemptFailure.Reset, this.safe(!connect), HC.RETRY);
  }

  // ---- timers and downstream events

  /** The attempt's per-try timeout passed (onDeadline, perTryExpired) before the response head. */
  private onTryTimeout(): void {
    const cl = this.cluster as Cluster;
    cl.counters[cl.base + HC.PER_TRY_TIMEOUT]++;
    routeCount(this.route as HttpRoute, R.PER_TRY_TIMEOUT);
    if (this.curHost !== null) outlierResult(cl, this.curHost, LOCAL_FAILURE);
    (this.cur as UpstreamAttempt).abort();
    this.endAttempt(0);
    attemptFailed(this, this.fs, (this.route as HttpRoute).retry, AttemptFailure.PerTryTimeout, this.safe(true), HC.RETRY);
  }

  /** The attempt's deadline (deadline wheel): a per-try timeout, or the route timeout. */
  onDeadline(): void {
    if (this.finished) return;
    if (!this.responseStarted && this.cur !== null && perTryExpired(this, Date.now())) {
      this.onTryTimeout();
      return;
    }
    const cl = this.cluster;
    if (cl !== null) cl.counters[cl.base + C.RQ_TIMEOUT]++;
    if (cl !== null && this.curHost !== null) outlierResult(cl, this.curHost, LOCAL_FAILURE);
    routeCount(this.route as HttpRoute, R.TIMEOUT);
    this.counters[this.lb + L.RS_TIMEOUT]++;
    if (this.fs !== null) this.fs.setResponseFlag('UT');
    if (this.cur !== null) this.cur.abort();
    this.endAttempt(0);
    if (this.responseStarted) {
      if (this.grpc && this.h2) {
        // Mid-stream deadline: end the gRPC call with DEADLINE_EXCEEDED in the trailers.
        this.down.end({ 'grpc-status': String(GRPC_DEADLINE_EXCEEDED), 'grpc-message': 'Deadline Exceeded' });
        this.finish();
      } else this.resetDownstream();
      return;
    }
    this.reply(504, 'upstream request timeout', GRPC_DEADLINE_EXCEEDED);
  };

  /** The client went away (or reset the stream) before the response ended. */
  onDownstreamClose(): void {
    if (this.finished) return;
    if (this.fs !== null) this.fs.setResponseFlag('DC');
    // The client went away before the response completed.
    this.counters[this.lb + HL.RESET]++;
    if (this.route !== null) routeCount(this.route, R.DOWNSTREAM_RESET);
    if (this.cur !== null) this.cur.abort();
    this.endAttempt(0);
    this.finish();
  }

  private resetDownstream(): void {
    if (this.h2) this.counters[this.lb + HL.H2_RST_SENT]++;
    this.down.reset();
    this.finish();
  }

  private finish(now = 0): void {
    if (this.finished) return;
    this.finished = true;
    if (this.cluster !== null) requestDone(this);
    if (this.admitted) requestEnded();
    this.counters[this.lb + L.RQ_ACTIVE]--;
    // A response (head) was sent: the route's status class and request time.
    if (this.route !== null && this.status > 0) routeResponse(this.route, this.status, ((now > 0 ? now : performance.now()) - this.startMs) * 1000);
    if (this.deadline !== 0) deadlines().disarm(this);
    const fs = this.fs;
    if (fs !== null) {
      fs.replied = true;
      if (fs.responseCode === undefined && this.status > 0) fs.responseCode = this.status;
      fs.bytesSent = fs.sent;
      if (fs.bytesReceived === undefined && this.down.hasBody) fs.bytesReceived = this.bodyBytes;
      fs.end();
    }
  }

  /** A streamed body went past limitRequestBody's limit. */
  onBodyTooLarge(): void {
    if (this.finished) return;
    if (this.fs !== null) this.fs.setResponseFlag('RE');
    if (this.cur !== null) this.cur.abort();
    this.endAttempt(0);
    // The rest of the body is not read: HTTP/1 closes the connection after the answer.
    this.reply(this.bodyLimitStatus, 'payload too large', GRPC_RESOURCE_EXHAUSTED, true);
  }

  /** A filter's local reply (FilterStream.sendLocalReply): gRPC gets the status mapped from the HTTP one, or the filter's. */
  filterReply(status: number, message: string | undefined, opts: LocalReplyOptions | undefined): void {
    const g = opts?.grpcStatus;
    this.reply(status, message ?? '', g !== undefined ? g : grpcStatusOf(status));
  }

  /** Response headers filters added (FilterStream.addResponseHeader); null: none. */
  extraHeaders: Headers | null = null;

  // ---- local replies

  /**
   * Answers here. gRPC requests get HTTP 200 with grpc-status (trailers-only), others `status`
   * with a text body; grpcCode -1 = answer with `status` even for gRPC (direct_response).
   */
  private reply(status: number, body: string, grpcCode: number, close = false): void {
    if (this.finished) return;
    const down = this.down;
    if (down.headersSent) {
      this.resetDownstream();
      return;
    }
    let headers: Headers;
    if (this.grpc && grpcCode >= 0) {
      status = 200;
      headers = { 'content-type': 'application/grpc', 'grpc-status': String(grpcCode), 'grpc-message': encodeURIComponent(body) };
    } else {
      headers = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) };
    }
    if (this.route !== null) applyOps(headers, this.route.ops, (this.vh as HttpVirtualHost).ops, true);
    if (this.extraHeaders !== null) Object.assign(headers, this.extraHeaders);
    this.status = status;
    this.counters[this.lb + HL.RQ_1XX + statusClass(status)]++;
    const noBody = this.method === 'HEAD' || (this.grpc && grpcCode >= 0);
    const fs = this.fs;
    if (fs !== null) {
      fs.respHeaders = headers;
      fs.encode(status);
      if (!noBody) fs.sent += Buffer.byteLength(body);
    }
    down.respond(status, headers, noBody, close || this.env.draining);
    if (!noBody) {
      down.write(Buffer.from(body));
      down.end(null);
    }
    this.finish();
  }

  /** 307 to a normalized path (path_with_escaped_slashes_action UNESCAPE_AND_REDIRECT). */
  private localRedirect(location: string): void {
    this.status = 307;
    this.counters[this.lb + HL.RQ_1XX + statusClass(307)]++;
    this.down.respond(307, { location, 'content-length': '0' }, true, this.env.draining);
    this.finish();
  }

  private redirect(route: HttpRoute): void {
    const r = route.redirect!;
    const scheme = r.scheme !== '' ? r.scheme : 'http';
    const host = r.host !== '' ? r.host : this.authority;
    let path = this.fullPath;
    if (r.path !== '') path = r.path;
    else if (r.prefixRewrite !== undefined) path = route.rewritePath(this.fullPath).replace(/^(?!\/)/, '/');
    if (r.prefixRewrite !== undefined && r.path === '') path = r.prefixRewrite + this.fullPath.slice(route.pathValue.length);
    const headers: Headers = { location: `${scheme}://${host}${path}`, 'content-length': '0' };
    applyOps(headers, route.ops, (this.vh as HttpVirtualHost).ops, true);
    this.status = r.code;
    this.counters[this.lb + HL.RQ_1XX + statusClass(r.code)]++;
    if (this.fs !== null) {
      this.fs.respHeaders = headers;
      this.fs.encode(r.code);
    }
    this.down.respond(r.code, headers, true, this.env.draining);
    this.finish();
  }
}

/**
 * An HTTP request in the stream pipeline: what filters read (headers, addresses, peer
 * certificate) and the access-log entry. The Exchange keeps the request path.
 */
class HttpStream extends ActiveStream {
  /** Response body bytes written so far. */
  sent = 0;
  host: Host | null = null;
  /** The response head sent downstream (%response_header_NAME%): the headers object itself, no copy. */
  respHeaders: Headers | null = null;
  private readonly tlsPeer: StreamPeer | null;

  constructor(
    private readonly ex: Exchange,
    pl: StreamPipeline,
    private readonly down: Downstream,
    protocol: string,
    listener: string,
  ) {
    super();
    this.begin(pl, protocol, listener);
    this.tlsPeer = streamTransport(this, down.transport !== undefined ? down.transport() : null);
    this.bytesReceived = declaredBodyLength(down);
  }

  service(): string | undefined {
    return this.down.authority === '' ? undefined : this.down.authority;
  }

  method(): string | undefined {
    return this.down.method;
  }

  header(name: string): string | undefined {
    return this.ex.header(name);
  }

  requestBodyLength(): number {
    return this.bytesReceived ?? -1;
  }

  override logResponseHeader(name: string): string | undefined {
    const h = this.respHeaders;
    const v = h === null ? undefined : h[name];
    return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
  }

  peer(): StreamPeer | null {
    return this.tlsPeer;
  }

  sendLocalReply(status: number, message?: string, opts?: LocalReplyOptions): void {
    if (this.replied) return;
    this.ex.filterReply(status, message, opts);
  }

  override addResponseHeader(name: string, value: string): void {
    // One object per request that gets headers from a filter.
    (this.ex.extraHeaders ??= {})[name] = value;
  }

  override limitRequestBody(max: number, status: number): void {
    this.ex.bodyLimit = max;
    this.ex.bodyLimitStatus = status;
  }

  protected park(): void {
    // The Exchange and its downstream live until the stream ends: nothing to copy.
  }

  protected continueFrom(phase: DecodePhase): void {
    this.ex.continueFrom(phase);
  }
}

/**
 * A bodiless request whose head the raw HTTP/1.1 pool sends as the client's bytes while they are
 * there (RequestBytes); `headers` (end-to-end, with the x-request-id) is made only when read: a
 * later attempt, another upstream engine.
 */
class ByteRequest implements UpstreamRequest, RequestBytes {
  readonly body = null;
  readonly bytes: RequestBytes = this;
  readonly addedLines: string;
  /** The head went out as the client's bytes (headBuffer() gave them to the pool). */
  sent = false;
  private h: Headers | null = null;

  constructor(
    readonly method: string,
    readonly path: string,
    readonly authority: string,
    private readonly down: Downstream,
    private readonly src: HeadBytes,
    private readonly id: string,
  ) {
    // One string per request with a generated id (the map path concatenates it too).
    this.addedLines = id === '' ? '' : 'x-request-id: ' + id + '\r\n';
  }

  get lines(): RawHeadLines {
    return this.src.lines;
  }

  headBuffer(): Buffer | null {
    const b = this.src.headBuffer();
    if (b !== null) this.sent = true;
    return b;
  }

  get headers(): Headers {
    let h = this.h;
    if (h === null) {
      h = endToEnd(this.down.headers, true);
      if (this.id !== '') h['x-request-id'] = this.id;
      this.h = h;
    }
    return h;
  }
}

/** Fills a stream's downstream addresses and TLS info from the client connection; the mTLS peer certificate, or null. */
export function streamTransport(s: ActiveStream, t: DownstreamTransport | null): StreamPeer | null {
  if (t === null) return null;
  s.downstreamRemoteAddress = hostPort(t.remoteAddress, t.remotePort);
  s.downstreamLocalAddress = hostPort(t.localAddress, t.localPort);
  const info = transportTls(t);
  if (info === null) return null;
  s.downstreamTls = info;
  return info.peer;
}

/**
 * Wraps a streamed request body so that it counts its bytes into ex.bodyBytes, and stops past
 * `max` (0: no limit). One wrapper per metered request (limited, or access-logged with a body
 * of unknown length).
 */
function meterBody(src: Readable | BodySource, max: number, ex: Exchange): Readable | BodySource {
  if (isBodySource(src)) return new MeteredBodySource(src, max, ex);
  const out = new PassThrough();
  src.on('data', (d: Buffer) => {
    ex.bodyBytes += d.length;
    if (max > 0 && ex.bodyBytes > max) {
      src.unpipe(out);
      out.destroy();
      ex.onBodyTooLarge();
    }
  });
  src.once('error', (e: Error) => out.destroy(e));
  src.pipe(out);
  return out;
}

/** A raw HTTP/1.1 body (BodySource) that counts its payload bytes and stops past `max` (0: no limit). */
class MeteredBodySource implements BodySource, BodySink {
  private sink: BodySink | null = null;
  private over = false;

  constructor(
    private readonly src: BodySource,
    private readonly max: number,
    private readonly ex: Exchange,
  ) {}

  get length(): number {
    return this.src.length;
  }

  start(sink: BodySink): void {
    this.sink = sink;
    this.src.start(this);
  }

  pause(): void {
    this.src.pause();
  }

  resume(): void {
    this.src.resume();
  }

  onBodyData(buf: Buffer, start: number, end: number): void {
    if (this.over) return;
    this.ex.bodyBytes += end - start;
    if (this.max > 0 && this.ex.bodyBytes > this.max) {
      this.over = true;
      this.ex.onBodyTooLarge();
      return;
    }
    (this.sink as BodySink).onBodyData(buf, start, end);
  }

  onBodyEnd(): void {
    if (!this.over) (this.sink as BodySink).onBodyEnd();
  }

  onBodyError(err: Error): void {
    if (!this.over) (this.sink as BodySink).onBodyError(err);
  }
}

/** Receives a buffered request body (collectBody). */
interface BodyCollector {
  onBodyBuffered(buf: Buffer): void;
  onBodyFailed(): void;
}

/** Reads a whole request body of `len` bytes (content-length) into one Buffer. */
function collectBody(src: Readable | BodySource, len: number, to: BodyCollector): void {
  // Grown as bytes arrive (not allocated at the announced length): a client that announces a
  // large body and trickles it holds only what it has sent.
  let buf = Buffer.allocUnsafe(Math.min(len, 16 * 1024));
  let n = 0;
  const add = (b: Buffer, s: number, e: number): void => {
    const want = Math.min(e - s, len - n);
    if (n + want > buf.length) {
      const bigger = Buffer.allocUnsafe(Math.min(len, Math.max(buf.length * 2, n + want)));
      buf.copy(bigger, 0, 0, n);
      buf = bigger;
    }
    n += b.copy(buf, n, s, s + want);
  };
  if (isBodySource(src)) {
    src.start({
      collecting: true,
      onBodyData: add,
      onBodyEnd(): void {
        to.onBodyBuffered(buf.subarray(0, n));
      },
      onBodyError(): void {
        to.onBodyFailed();
      },
    });
    return;
  }
  src.on('data', (d: Buffer) => add(d, 0, d.length));
  src.once('end', () => to.onBodyBuffered(buf.subarray(0, n)));
  src.once('error', () => to.onBodyFailed());
}
