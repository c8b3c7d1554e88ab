/**
 * One HTTP request through the proxy (MOSN's downstream phases, for HTTP):
 *
 *   request head ─> limits (header count) ─> virtual host (:authority) ─> route (cached)
 *        │ none: 404            direct_response / redirect: answered here
 *        v
 *   cluster (cluster_name | weighted | cluster_header) ─> headers: hop-by-hop out, route and
 *   virtual-host ops, x-request-id, prefix/host rewrite ─> body: buffered when a retry may
 *   need it again (<= max_request_body_retry_buffer), else streamed
 *        v
 *   attempt: host (lb) ─> upstream h1 pool | h2 session  ── per-try timer
 *        │ connect failure / reset / 5xx / per-try timeout: retry per retry_policy
 *        │ (idempotent methods only once the upstream may have seen the request)
 *        v
 *   response head ─> ops ─> downstream; body with backpressure; trailers (grpc-status) kept
 *   route timeout (or a shorter grpc-timeout): 504 / grpc-status 4 before the head, reset after
 *
 * Every exchange answers exactly once: `finished` guards all the ways it can end.
 */
import type { Readable } from 'node:stream';
import type { ListenerContext } from '../filters/network/types';
import { RETRY_5XX, RETRY_CONNECT_FAILURE, RETRY_GATEWAY_ERROR, RETRY_RESET, type CompiledHttpRouter, type HttpRoute, type HttpRouteRequest, type HttpVirtualHost } from '../router/http-routes';
import { admitRequest, requestEnded } from '../overload/manager';
import { OL } from '../overload/stats';
import { deadlines, type DeadlineEntry } from '../stream/deadlines';
import { C, L, R } from '../stats/layout';
import type { Cluster } from '../upstream/cluster';
import type { Host } from '../upstream/lb';
import type { HttpProxyConfig } from './config';
import { applyOps, endToEnd, ensureRequestId, grpcTimeoutMs, isGrpc, isIdempotent, type Headers } from './headers';
import { clusterTime, routeCount, routeRequest, routeResponse } from './route-stats';
import { HC, HL, statusClass, timeBucket } from './stats';
import { FailKind, isBodySource, type BodySource, type UpstreamAttempt, type UpstreamRequest, type UpstreamSink } from './upstream';
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
  /** Response body bytes (the view may be transient: copy to keep). false: wait for onDownstreamDrain. */
  write(chunk: Buffer): boolean;
  /** Ends the response, with trailers where the framing can carry them. */
  end(trailers: Headers | null): void;
  /** Abandons the response: HTTP/2 RST_STREAM, HTTP/1 closes the connection. */
  reset(): void;
}

/** What every exchange of one filter factory shares. */
export interface HttpEnv {
  readonly cfg: HttpProxyConfig;
  readonly router: CompiledHttpRouter;
  readonly ctx: ListenerContext;
  /** Set while the listener drains: h1 responses close their connection. */
  draining: boolean;
}

/** gRPC status codes used for local replies. */
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNIMPLEMENTED = 12;
const GRPC_UNAVAILABLE = 14;


export class Exchange implements UpstreamSink, HttpRouteRequest, DeadlineEntry {
  readonly path: string;
  private readonly method: string;
  private readonly fullPath: string;
  private readonly authority: string;
  private readonly h2: boolean;
  private readonly grpc: boolean;
  private readonly counters: Float64Array;
  private readonly lb: number;
  private route: HttpRoute | null = null;
  private vh: HttpVirtualHost | null = null;
  private cluster: Cluster | null = null;
  private up: UpstreamRequest | null = null;
  private upstreamH2 = false;
  private cur: UpstreamAttempt | null = null;
  private curHost: Host | null = null;
  private attemptStart = 0;
  private retries = 0;
  /** Hosts tried so far (only when the route has a retry policy). */
  private tried: Host[] | null = null;
  private replayable = true;
  private responseStarted = false;
  private finished = false;
  // The route timeout: an entry of the worker's deadline wheel (no timer per request).
  deadline = 0;
  dlPrev: DeadlineEntry | null = null;
  dlNext: DeadlineEntry | null = null;
  dlSlot = 0;
  private tryTimer: NodeJS.Timeout | null = null;
  private waitingDrain = false;
  private status = 0;
  /** Envoy-style response flags for access logs ('UO': upstream overflow, 'OM': overload manager), '' when none. */
  responseFlag = '';
  /** Counted by the overload manager (admitRequest) until finish(). */
  private admitted = false;
  /** performance.now() when the request arrived (route latency). */
  private readonly startMs = performance.now();

  constructor(
    private readonly env: HttpEnv,
    private readonly down: Downstream,
  ) {
    this.counters = env.ctx.counters;
    this.lb = env.ctx.base;
    this.h2 = down.h2;
    this.method = down.method;
    const url = down.url;
    this.fullPath = url;
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.authority = down.authority;
    this.grpc = isGrpc(down.headers);
  }

  // ---- HttpRouteRequest

  header(name: string): string | undefined {
    if (name.charCodeAt(0) === 58) {
      if (name === ':method') return this.method;
      if (name === ':path') return this.fullPath;
      if (name === ':authority') return this.authority;
    }
    const v = this.down.headers[name];
    return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
  }

  // ---- phases

  start(): void {
    const c = this.counters;
    const lb = this.lb;
    c[lb + L.RQ_TOTAL]++;
    c[lb + L.RQ_ACTIVE]++;
    c[lb + (this.h2 ? HL.RQ_HTTP2 : HL.RQ_HTTP1)]++;
    // Overload manager: counted until finish(), or shed now (flag OM, as Envoy's overload manager).
    if (!admitRequest()) {
      c[lb + OL.RQ_SHED]++;
      this.responseFlag = 'OM';
      this.localReply(503, 'overloaded', GRPC_UNAVAILABLE, true);
      return;
    }
    this.admitted = true;
    // Header count limit (h1; h2 is limited by the session's maxHeaderListPairs).
    if (!this.h2 && this.down.headerCount > this.env.cfg.maxHeaders) {
      c[lb + HL.HEADER_OVERFLOW]++;
      this.localReply(431, 'too many request headers', GRPC_UNAVAILABLE, true);
      return;
    }
    if (!this.h2 && this.authority === '' && this.down.httpMinor === 1) {
      c[lb + HL.BAD_REQUEST]++;
      this.localReply(400, 'missing Host header', GRPC_UNAVAILABLE, true);
      return;
    }
    const vh = this.env.router.virtualHost(this.authority);
    const route = vh === null ? null : vh.match(this);
    if (vh === null || route === null) {
      c[lb + L.RS_NO_ROUTE]++;
      this.localReply(404, 'no route', GRPC_UNIMPLEMENTED);
      return;
    }
    this.vh = vh;
    this.route = route;
    routeRequest(route);
    if (route.direct !== null) {
      c[lb + HL.DIRECT_RESPONSE]++;
      this.localReply(route.direct.status, route.direct.body, -1);
      return;
    }
    if (route.redirect !== null) {
      c[lb + HL.REDIRECT]++;
      this.redirect(route);
      return;
    }
    const cluster = this.env.ctx.clusters.get(route.pickCluster(this));
    if (cluster === undefined) {
      c[lb + L.RS_NO_ROUTE]++;
      this.localReply(route.clusterHeader !== '' ? 404 : 503, 'cluster not found', GRPC_UNAVAILABLE);
      return;
    }
    this.cluster = cluster;
    // The upstream header set (a new object: hop-by-hop out, ops applied; the downstream's stays intact for matching and logs).
    const headers = endToEnd(this.down.headers);
    delete headers['host'];
    // 100-continue is answered by the downstream side (node:http or h1/downstream.ts), not passed on.
    delete headers['expect'];
    applyOps(headers, route.ops, vh.ops, false);
    if (this.env.cfg.generateRequestId) ensureRequestId(headers);
    const cfg = this.env.cfg;
    this.upstreamH2 = cfg.upstream === 'auto' ? this.h2 : cfg.upstream === 'http2';
    // Route timeout, shortened by a gRPC deadline.
    let timeout = route.timeoutMs > 0 ? route.timeoutMs : cfg.defaultTimeoutMs;
    const deadline = this.grpc ? grpcTimeoutMs(this.down.headers['grpc-timeout']) : undefined;
    if (deadline !== undefined && (timeout === 0 || deadline < timeout)) timeout = deadline;
    if (timeout > 0) deadlines().arm(this, Date.now() + timeout);
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
        return;
      }
      body = this.down.body();
      this.replayable = false;
    }
    this.up = { method: this.method, path, authority, headers, body };
    this.attempt();
  }

  /** The buffered body (collectBody) is complete: first attempt. */
  onBodyBuffered(buf: Buffer): void {
    if (this.finished) return;
    this.up = { ...(this.up as UpstreamRequest), body: buf };
    this.attempt();
  }

  /** The downstream failed while the body was being buffered. */
  onBodyFailed(): void {
    if (this.finished) return;
    this.counters[this.lb + HL.RESET]++;
    routeCount(this.route as HttpRoute, R.DOWNSTREAM_RESET);
    this.down.reset();
    this.finish();
  }

  private attempt(): void {
    const cluster = this.cluster as Cluster;
    let host = cluster.lb.choose();
    // A retry prefers a host not tried yet (Envoy's previous_hosts predicate).
    if (this.tried !== null && host !== null) {
      for (let i = 0; i < cluster.hosts.length && this.tried.includes(host); i++) {
        const h = cluster.lb.choose();
        if (h === null) break;
        host = h;
      }
    }
    const cc = cluster.counters;
    const cb = cluster.base;
    if (host === null) {
      cc[cb + C.NO_HOST]++;
      this.counters[this.lb + L.RS_NO_ROUTE]++;
      this.localReply(503, 'no healthy upstream', GRPC_UNAVAILABLE);
      return;
    }
    host.active++;
    this.curHost = host;
    if (this.route !== null && this.route.retry !== null) (this.tried ??= []).push(host);
    cc[cb + C.RQ_TOTAL]++;
    cc[cb + C.RQ_ACTIVE]++;
    this.attemptStart = performance.now();
    const route = this.route as HttpRoute;
    const req = this.up as UpstreamRequest;
    // Upstreams may edit the headers they get (framing, host): a retry needs its own copy.
    const up: UpstreamRequest = route.autoHostRewrite
      ? { ...req, authority: host.address, headers: { ...req.headers } }
      : route.retry !== null
        ? { ...req, headers: { ...req.headers } }
        : req;
    const rp = route.retry;
    if (rp !== null && rp.perTryTimeoutMs > 0) this.tryTimer = setTimeout(this.onTryTimeout, rp.perTryTimeoutMs);
    this.cur = this.upstreamH2 ? startH2(cluster, host, this.env.cfg.h2InitialWindowSize, up, this) : startH1(cluster, host, this.env.cfg.connectionsPerHost, up, this);
  }

  /** Ends the current attempt's accounting (host load, cluster active, latency). */
  private endAttempt(status: number): void {
    const host = this.curHost;
    if (host === null) return;
    this.curHost = null;
    host.active--;
    const cl = this.cluster as Cluster;
    const cc = cl.counters;
    const cb = cl.base;
    cc[cb + C.RQ_ACTIVE]--;
    if (status > 0) {
      const ms = performance.now() - this.attemptStart;
      cc[cb + HC.RQ_1XX + statusClass(status)]++;
      cc[cb + HC.TIME_BUCKET_0 + timeBucket(ms)]++;
      clusterTime(cl, ms * 1000);
      if (this.retries > 0 && status < 500) {
        cc[cb + HC.RETRY_SUCCESS]++;
        routeCount(this.route as HttpRoute, R.RETRY_SUCCESS);
      }
    }
    if (this.tryTimer !== null) {
      clearTimeout(this.tryTimer);
      this.tryTimer = null;
    }
  }

  /** Whether a failed attempt may be tried again, given the condition bits it failed with. */
  private mayRetry(bits: number, sentUpstream: boolean): boolean {
    const rp = (this.route as HttpRoute).retry;
    if (rp === null || (rp.on & bits) === 0 || this.retries >= rp.numRetries || !this.replayable || this.finished) return false;
    return !sentUpstream || isIdempotent(this.method);
  }

  private retry(): void {
    this.retries++;
    const cl = this.cluster as Cluster;
    cl.counters[cl.base + HC.RETRY]++;
    routeCount(this.route as HttpRoute, R.RETRY);
    // Exponential backoff from 25 ms with full jitter (what Envoy does by default).
    const delay = Math.random() * 25 * 2 ** (this.retries - 1);
    setTimeout(() => {
      if (!this.finished) this.attempt();
    }, delay);
  }

  // ---- UpstreamSink

  onResponseHeaders(status: number, headers: Headers, endStream: boolean): void {
    if (this.finished) return;
    const gateway = status === 502 || status === 503 || status === 504;
    if (status >= 500 && this.mayRetry(RETRY_5XX | (gateway ? RETRY_GATEWAY_ERROR : 0), true)) {
      (this.cur as UpstreamAttempt).abort();
      this.endAttempt(status);
      this.retry();
      return;
    }
    if (this.tryTimer !== null) {
      clearTimeout(this.tryTimer);
      this.tryTimer = null;
    }
    this.status = status;
    this.responseStarted = true;
    const out = endToEnd(headers);
    applyOps(out, (this.route as HttpRoute).ops, (this.vh as HttpVirtualHost).ops, true);
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
    this.endAttempt(this.status);
    this.down.end(trailers !== null ? endToEnd(trailers) : null);
    this.finish();
  }

  onUpstreamError(kind: FailKind, err: Error): void {
    if (this.finished) return;
    const cl = this.cluster as Cluster;
    if (kind === FailKind.ConnectFailure) cl.counters[cl.base + C.CX_CONNECT_FAIL]++;
    else if (kind === FailKind.Reset) cl.counters[cl.base + HC.RESET]++;
    if (kind !== FailKind.Overflow) routeCount(this.route as HttpRoute, R.UPSTREAM_RESET);
    this.endAttempt(0);
    if (this.responseStarted) {
      this.resetDownstream();
      return;
    }
    if (kind === FailKind.Overflow) {
      // The pool's queue is full or timed out: answered at once, never retried (flag UO).
      this.responseFlag = 'UO';
      this.counters[this.lb + L.RS_OVERFLOW]++;
      this.localReply(503, 'upstream overflow', GRPC_UNAVAILABLE);
      return;
    }
    const bits = kind === FailKind.ConnectFailure ? RETRY_CONNECT_FAILURE | RETRY_GATEWAY_ERROR : RETRY_RESET | RETRY_GATEWAY_ERROR;
    if (this.mayRetry(bits, kind !== FailKind.ConnectFailure)) {
      this.retry();
      return;
    }
    this.counters[this.lb + L.RS_CX_CLOSED]++;
    this.localReply(503, kind === FailKind.ConnectFailure ? `upstream connect error: ${err.message}` : 'upstream reset before response headers', GRPC_UNAVAILABLE);
  }

  // ---- timers and downstream events

  private readonly onTryTimeout = (): void => {
    this.tryTimer = null;
    if (this.finished || this.responseStarted) return;
    const cl = this.cluster as Cluster;
    cl.counters[cl.base + HC.PER_TRY_TIMEOUT]++;
    routeCount(this.route as HttpRoute, R.PER_TRY_TIMEOUT);
    (this.cur as UpstreamAttempt).abort();
    this.endAttempt(0);
    if (this.mayRetry(RETRY_5XX | RETRY_GATEWAY_ERROR | RETRY_RESET, true)) {
      this.retry();
      return;
    }
    this.counters[this.lb + L.RS_TIMEOUT]++;
    this.localReply(504, 'upstream request timeout', GRPC_DEADLINE_EXCEEDED);
  };

  /** The route timeout (deadline wheel). */
  onDeadline(): void {
    if (this.finished) return;
    const cl = this.cluster;
    if (cl !== null) cl.counters[cl.base + C.RQ_TIMEOUT]++;
    routeCount(this.route as HttpRoute, R.TIMEOUT);
    this.counters[this.lb + L.RS_TIMEOUT]++;
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
    this.localReply(504, 'upstream request timeout', GRPC_DEADLINE_EXCEEDED);
  };

  /** The client went away (or reset the stream) before the response ended. */
  onDownstreamClose(): void {
    if (this.finished) return;
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

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.admitted) requestEnded();
    this.counters[this.lb + L.RQ_ACTIVE]--;
    // A response (head) was sent: the route's status class and request time.
    if (this.route !== null && this.status > 0) routeResponse(this.route, this.status, (performance.now() - this.startMs) * 1000);
    if (this.deadline !== 0) deadlines().disarm(this);
    if (this.tryTimer !== null) {
      clearTimeout(this.tryTimer);
      this.tryTimer = null;
    }
  }

  // ---- local replies

  /**
   * Answers here. gRPC requests get HTTP 200 with grpc-status (trailers-only), others `status`
   * with a text body; grpcCode -1 = answer with `status` even for gRPC (direct_response).
   */
  private localReply(status: number, body: string, grpcCode: number, close = false): void {
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
    this.status = status;
    this.counters[this.lb + HL.RQ_1XX + statusClass(status)]++;
    const noBody = this.method === 'HEAD' || (this.grpc && grpcCode >= 0);
    down.respond(status, headers, noBody, close || this.env.draining);
    if (!noBody) {
      down.write(Buffer.from(body));
      down.end(null);
    }
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
    this.down.respond(r.code, headers, true, this.env.draining);
    this.finish();
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
