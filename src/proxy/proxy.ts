/**
 * The `proxy` network filter for multiplexed RPC protocols (Bolt v1/v2, Dubbo, any XCodec): the
 * RPC adapter of the stream phase machine (src/stream/active-stream.ts). The phases, the retry
 * decision and the budget are there; this file keeps the protocol work:
 *
 *   read ─> frame reader ─> [protocol?] ─> decode ─> heartbeat? ──yes──> ack written locally
 *                                                      │no
 *                    response from a client? drop <────┤
 *                                                      v
 *   runPhases(session, stream | null) ── StreamHooks implemented by DownstreamSession:
 *     routePhase      router (cached by service), cluster (weighted pick)  none: NO_PROCESSOR (NR)
 *                     a route that retries: an RpcStream with a copy of the frame
 *     sendAttempt     upstream pool: circuit breakers (open: busy, UO); id rewritten in place,
 *                     written (gathered, one writev per tick); timeout = frame / route, bounded
 *                     by retry_timeout (per try) within the request's own time
 *     localReply      the codec's error frame (ErrorKind -> protocol status)
 *     retry           the downstream id back into the copy, then another host
 *   response (any order) ─> id mapped back in place ─> written downstream ─> encode, access log
 *   attempt failed ─> attemptFailed: connect failure / per-try timeout retried (what MOSN
 *     retries); a request lost with its connection is answered CONNECTION_CLOSED, not resent
 *
 * No object per request unless the listener has stream filters or an access log, or the route
 * retries (RpcStream, pooled). A frame that cannot be decoded closes this downstream connection
 * only. Error statuses come from the codec, so nothing here is Bolt-specific.
 *
 * Auto (src/proxy/detect.ts): the first bytes pick the codec (Bolt v1/v2, Dubbo, any registered
 * XCodec); HTTP and TLS go to a registered handoff; anything else goes to the chain's tcp_proxy
 * with the bytes already read (fallback_for_unknown_protocol) or is closed.
 */
import { mirrorRpc } from '../filters/stream/mirror/mirror';
import { lendNow, settleCounts } from '../filters/shared/cells';
import { DecodePhase, type LocalReplyOptions, type StreamPeer } from '../api/stream-filter';
import type { RouterConfig } from '../config/types';
import { registerNetworkFilter, type ListenerContext, type NetworkFilterFactory, type RouteSwap } from '../filters/network/types';
import type { Connection, ConnectionHandler } from '../network/connection';
import { nowMs } from '../network/clock';
import { forgetHandOverHold, handingOverConnections, holdForHandOver } from '../network/connection';
import { allCodecs, ErrorKind, ERR_TOO_LARGE, getCodec, HeaderName, type XCodec, type XFrame } from '../protocol/types';
import { HC } from '../http/stats';
import { compiledRouter, isMalformed, type CompiledRouter, type Route, type RouteRequest } from '../router/router';
import { L } from '../stats/layout';
import { rpcTimeoutMs } from '../overload/limits';
import { admitRequest, requestEnded } from '../overload/manager';
import { OL } from '../overload/stats';
import { FrameReader, type FrameSink } from '../stream/frame-reader';
import { ActiveStream, hostPort, LightResult, pipelineFor, runLight, startSampled, type LightView, type StreamPipeline } from '../stream/pipeline';
import { attemptDeadline, attemptDone, AttemptFailure, attemptFailed, LocalReplyKind, perTryExpired, requestDone, retryAttempt, runPhases, startRequestTime, triedHost, type RetryState, type StreamHooks } from '../stream/active-stream';
import type { Cluster } from '../upstream/cluster';
import type { Host, LbContext } from '../upstream/lb';
import type { MetadataMatch } from '../upstream/subset-match';
import { cancelPending, hostPoolAgain, sendOverflowed, type HostPool, type PendingRequest, type PoolSettings, type StreamReceiver } from '../stream/upstream-pool';
import { RPC_PROXY_DEFAULTS, type RpcProxyConfig } from './config';
import { acceptsInitialBytes, AUTO_FALLBACK, AUTO_REJECTED, autoDrain, autoHandoff, MAX_SNIFF, proxyLog, sniff, Sniffed, sniffResult, SNIFFED_NAMES } from './detect';
import { proxyFamilyForNormalized } from './families';
import '../protocol/bolt/xcodec';
import type { BoltFrame } from '../protocol/bolt/frame';
import { sofaRequestMethod } from '../protocol/bolt/sofa-request';
import '../protocol/dubbo/xcodec';
import '../protocol/example/xcodec';
import '../filters/stream';

/** Listener stat for each ErrorKind answered locally. */
const KIND_STAT: readonly number[] = [L.RS_NO_ROUTE, L.RS_TIMEOUT, L.RS_CX_CLOSED, L.RS_OVERFLOW, L.RS_CODEC_ERROR];

export class RpcProxyFactory implements NetworkFilterFactory {
  /** Swapped by a route-config-only reload (prepareRoutes). */
  router: CompiledRouter;
  /** Live sessions (a drain closes each once its in-flight requests are answered). */
  private readonly sessions = new Set<DownstreamSession>();
  /** Set by onDrain: sessions close when they have nothing in flight. */
  draining = false;
  /** null = Auto: detect per connection. */
  readonly fixedCodec: XCodec | null;
  readonly candidates: readonly XCodec[];
  readonly upstreamCodec: XCodec | null;
  readonly settings: PoolSettings;
  /** Listener drain: connections handed to other families (HTTP) close gracefully too. */
  onDrain(): void {
    if (this.detectsAll) autoDrain(this.ctx);
    this.draining = true;
    // Hot upgrade: idle sessions are handed to the new process (src/upgrade/worker-side.ts), not
    // closed; those that cannot move (TLS) drain as usual.
    const moving = handingOverConnections();
    for (const s of this.sessions) if (!moving || !s.movable()) s.closeIfIdle();
  }

  prepareRoutes(routers: readonly RouterConfig[]): RouteSwap | null {
    if (this.detectsAll) return null; // its HTTP side has its own table (src/http/filter.ts autoFactory)
    const rc = routers.find((r) => r.name === this.config.routerConfigName);
    if (rc === undefined) throw new Error(`listener ${this.ctx.name}: proxy router_config_name "${this.config.routerConfigName}" not found`);
    const next = compiledRouter(rc);
    const prev = this.router;
    return { apply: () => void (this.router = next), undo: () => void (this.router = prev) };
  }

  /** Session bookkeeping for onDrain. */
  track(s: DownstreamSession, live: boolean): void {
    if (live) this.sessions.add(s);
    else this.sessions.delete(s);
  }

  /** `Auto`: every protocol Outrigger knows is detected, HTTP included (handed to the HTTP proxy). */
  readonly detectsAll: boolean = false;
  /** MOSN fallback_for_unknown_protocol: the chain's tcp_proxy (set by the listener). */
  fallback: NetworkFilterFactory | null = null;
  private readonly codecSettings = new Map<string, PoolSettings>();
  /** Stream filters and access log of this listener snapshot. */
  readonly pipeline: StreamPipeline;

  constructor(
    readonly config: RpcProxyConfig,
    readonly ctx: ListenerContext,
    routerConfig: RouterConfig,
  ) {
    this.router = compiledRouter(routerConfig);
    this.pipeline = pipelineFor(ctx);
    const downs = config.downstreamProtocols;
    if (downs.length === 1 && downs[0] !== 'auto') {
      this.fixedCodec = getCodec(downs[0]) ?? null;
      if (this.fixedCodec === null) throw new Error(`proxy: unknown protocol ${downs[0]}`);
      this.candidates = [this.fixedCodec];
    } else {
      this.fixedCodec = null;
      this.detectsAll = downs.length === 0 || downs.includes('auto');
      this.candidates = this.detectsAll ? allCodecs() : downs.map((d) => getCodec(d) as XCodec);
    }
    this.upstreamCodec = config.upstreamProtocol ? (getCodec(config.upstreamProtocol) ?? null) : null;
    this.settings = {
      connectionsPerHost: config.connectionsPerHost,
      maxFrameSize: config.maxFrameSize,
      keepaliveIntervalMs: config.keepaliveIntervalMs,
      keepaliveTimeoutMs: config.keepaliveTimeoutMs,
    };
  }

  /** The TCP proxy that takes connections of an unknown protocol (fallback_for_unknown_protocol). */
  setFallback(f: NetworkFilterFactory): void {
    if (this.config.fallbackForUnknownProtocol === true) this.fallback = f;
  }

  /** The frame size limit for a codec: max_frame_size when configured, else the codec's own default. */
  frameLimit(codec: XCodec): number {
    const own = (codec as XCodec & { defaultMaxFrameSize?: number }).defaultMaxFrameSize;
    return this.config.maxFrameSizeExplicit !== true && own !== undefined ? own : this.config.maxFrameSize;
  }

  /** Pool settings for an upstream codec (its frame size limit differs per codec). */
  settingsFor(codec: XCodec): PoolSettings {
    if (codec === this.lastCodec) return this.lastSettings as PoolSettings; // per request: no Map lookup
    let s = this.codecSettings.get(codec.name);
    if (s === undefined) {
      s = { ...this.settings, maxFrameSize: this.frameLimit(codec) };
      this.codecSettings.set(codec.name, s);
    }
    this.lastCodec = codec;
    this.lastSettings = s;
    return s;
  }

  private lastCodec: XCodec | null = null;
  private lastSettings: PoolSettings | null = null;

  onAccept(conn: Connection): void {
    const s = new DownstreamSession(this, conn);
    conn.setHandler(s);
    this.track(s, true);
    if (this.ctx.idleTimeoutMs > 0) conn.setTimeout(this.ctx.idleTimeoutMs);
  }
}

/** A filter's local reply status mapped as MOSN maps hijack codes. */
function replyKindOf(status: number): ErrorKind {
  return status === 404 ? ErrorKind.NoRoute : status === 504 ? ErrorKind.Timeout : status === 502 ? ErrorKind.ConnectionClosed : status === 503 ? ErrorKind.Overflow
    : status === 403 ? ErrorKind.PermissionDenied : status === 429 || status === 509 ? ErrorKind.LimitExceeded : ErrorKind.CodecError;
}

/** The codec's answer for each local reply the phase machine asks for. */
const REPLY_KIND: readonly ErrorKind[] = [ErrorKind.NoRoute, ErrorKind.NoRoute, ErrorKind.Overflow, ErrorKind.Timeout, ErrorKind.ConnectionClosed];

class DownstreamSession implements ConnectionHandler, FrameSink<XFrame>, StreamReceiver, RouteRequest, StreamHooks<RpcStream> {
  private lbCtx: { readonly downstream: LbContext['downstream']; metadataMatch: MetadataMatch | null } | null = null;
  private reader: FrameReader<XFrame> | null = null;
  private codec: XCodec | null;
  /** The frame being routed (valid during onFrame only). */
  private curBuf: Buffer | null = null;
  private curFrame: XFrame | null = null;
  /** The request of the current onFrame callback, and (without a stream) its route and cluster. */
  private reqBuf: Buffer | null = null;
  private reqFrame: XFrame | null = null;
  private reqRoute: Route | null = null;
  private reqCluster: Cluster | null = null;
  /** The subset criteria of the request's cluster (without a stream). */
  private reqMatch: MetadataMatch | null = null;
  /** A stream route() made during this callback (the route retries). */
  private made: RpcStream | null = null;
  /** A light pipeline's view of the request being decoded (made on the first request). */
  private view: RpcLightView | null = null;
  /** The upstream pool of the last attempt (hostPoolAgain: the next request to the same host skips the registry). */
  private pool: HostPool | null = null;
  /** The pending request whose failed attempt is being decided (localReply answers from it). */
  private failing: PendingRequest | null = null;
  private readonly counters: Float64Array;
  private readonly lb: number;
  private lastActivity = Date.now();
  /** Requests sent upstream and not answered yet. */
  private inflight = 0;
  /** Requests held by a stream filter that stopped them (not sent upstream yet). */
  parked = 0;
  /** This session's pending requests (kept by the upstream pool). */
  pendingHead: PendingRequest | null = null;
  private downEnded = false;
  /** The release of the hold while reads are held for a hand-over (holdForMove), else null. */
  private moveHold: (() => void) | null = null;
  /** Auto: the first bytes, when too few to tell the protocol. */
  private sniffed: Buffer | null = null;
  private remoteHP: string | undefined = undefined;
  private localHP: string | undefined = undefined;

  constructor(
    private readonly f: RpcProxyFactory,
    private readonly down: Connection,
  ) {
    this.counters = f.ctx.counters;
    this.lb = f.ctx.base;
    this.codec = f.fixedCodec;
    if (this.codec !== null) this.reader = new FrameReader(this.codec, f.frameLimit(this.codec));
  }

  get factory(): RpcProxyFactory {
    return this.f;
  }

  // ---- ConnectionHandler

  onData(_conn: Connection, buf: Buffer, start: number, end: number): void {
    this.counters[this.lb + L.BYTES_RX] += end - start;
    // After this side's FIN (a drain closing the connection between requests: Bolt and Dubbo
    // have no goodbye frame), nothing read can be answered: it is not sent upstream either, so
    // a request that crossed the FIN is never executed unanswered (the client may send it again).
    if (this.down.writeClosed) return;
    const now = nowMs(); // the read batch's clock (src/network/clock.ts)
    this.lastActivity = now;
    let reader = this.reader;
    if (reader === null) {
      if (this.sniffed !== null) {
        // The first read was too short to tell: join it with this one (connection start only).
        buf = Buffer.concat([this.sniffed, buf.subarray(start, end)]);
        start = 0;
        end = buf.length;
        this.sniffed = null;
      }
      reader = this.detect(buf, start, end);
      if (reader === null) return;
    }
    // The filters of the requests in this read (rate limits) take this read's time.
    const prev = lendNow(now);
    try {
      reader.feed(buf, start, end, this);
    } finally {
      lendNow(prev);
    }
    if (this.f.draining === true && this.inflight + this.parked > 0) this.holdForMove();
  }

  /**
   * Hot upgrade, old process: a connection that always has a request in flight (a pipelining
   * client at a steady rate, or any client on a loaded machine) is never between requests when
   * the hand-over scanner looks (src/upgrade/worker-side.ts), so it would stay here until its
   * client leaves or graceful_timeout cuts it. Once a hand-over is under way, its reads stop
   * after this read's requests: they are answered, the connection is idle, and it moves with
   * the requests sent meanwhile still in the kernel's buffer (the new process reads them).
   * Only where a pause stops reading at the socket (else bytes read after the pause would be
   * stranded in Node's stream buffer and the scanner would never see the connection idle).
   */
  private holdForMove(): void {
    if (this.moveHold !== null || this.down.isReadPaused || !handingOverConnections() || !this.movable() || !this.down.pauseStopsKernelReads) return;
    // Once per connection in a hand-over; run if the hand-over stops (the new process died).
    const release = (): void => {
      this.moveHold = null;
      this.down.resumeRead();
    };
    this.moveHold = release;
    this.down.pauseRead();
    holdForHandOver(release);
  }

  /** Auto: the protocol from the first bytes (src/proxy/detect.ts); null when the bytes went elsewhere. */
  private detect(buf: Buffer, start: number, end: number): FrameReader<XFrame> | null {
    const kind = sniff(buf, start, end, this.f.candidates);
    if (kind === Sniffed.Codec) {
      const c = sniffResult.codec as XCodec;
      this.codec = c;
      this.reader = new FrameReader(c, this.f.frameLimit(c));
      return this.reader;
    }
    if (kind === Sniffed.NeedMore) {
      this.sniffed = Buffer.from(buf.subarray(start, end)); // < MAX_SNIFF bytes, once
      return null;
    }
    // Not ours: HTTP / TLS handlers registered by other families, else the TCP fallback, else close.
    // HTTP goes to the HTTP proxy (same routers) when the listener detects every protocol (Auto).
    const h = this.f.detectsAll ? autoHandoff(kind) : undefined;
    if (h !== undefined && h(this.down, buf, start, end, this.f)) return null;
    const fb = this.f.fallback;
    if (fb !== null && acceptsInitialBytes(fb)) {
      this.counters[this.lb + AUTO_FALLBACK]++;
      this.counters[this.lb + L.BYTES_RX] -= end - start; // the tcp_proxy counts them again
      fb.onAcceptWithData(this.down, buf, start, end);
      return null;
    }
    this.counters[this.lb + AUTO_REJECTED]++;
    const what = SNIFFED_NAMES[kind];
    const why =
      kind === Sniffed.Unknown
        ? `unknown protocol (first bytes ${buf.toString('hex', start, Math.min(end, start + 8))}, ${end - start} bytes seen, up to ${MAX_SNIFF} needed)`
        : kind === Sniffed.Tls
          ? 'TLS ClientHello on an Auto listener without tls_context (add a tls_context with inspector: true)'
          : `${what} is not served by this proxy listener (no HTTP handler registered; set fallback_for_unknown_protocol with a tcp_proxy)`;
    proxyLog().warn({ listener: this.f.ctx.name, remote: `${this.down.remoteAddress}:${this.down.remotePort}`, protocol: what }, `proxy Auto: closing connection: ${why}`);
    this.down.destroy(new Error(why));
    return null;
  }

  onFrame(buf: Buffer, frame: XFrame): boolean {
    const codec = this.codec as XCodec;
    const c = this.counters;
    // Boolean fields are compared with true (one compare: src/network/connection.ts write()).
    if (frame.isRequest !== true) return true; // a response from a client: nothing to map it to
    if (frame.isHeartbeat === true) {
      c[this.lb + L.RQ_HEARTBEAT]++;
      if (frame.isOneway) return true; // e.g. a Dubbo one-way event: nothing to answer
      const ack = codec.encodeHeartbeatAck(buf, frame);
      this.down.write(ack, 0, ack.length);
      return true;
    }
    c[this.lb + L.RQ_TOTAL]++;
    if (frame.isOneway === true) c[this.lb + L.RQ_ONEWAY]++;
    // A stream object only when the listener has stream filters or an access log (pooled);
    // route() makes one when the route retries. A light pipeline (headersOnly filters, tracing)
    // runs on the connection's view and makes one only for a request tracing samples.
    const p = this.f.pipeline;
    let s: RpcStream | null = null;
    if (p.active === true) {
      if (p.light !== true) s = this.newStream(buf, frame);
      else {
        const v = (this.view ??= new RpcLightView(this, codec)); // once per connection
        v.buf = buf;
        v.frame = frame;
        v.replied = false;
        const r = runLight(p, v);
        v.buf = null;
        v.frame = null;
        if (r === LightResult.Answered) return true;
        if (r === LightResult.Sampled) {
          s = this.newStream(buf, frame);
          startSampled(p, s);
        }
      }
    }
    this.reqBuf = buf;
    this.reqFrame = frame;
    this.made = null;
    runPhases(this, s, DecodePhase.BeforeRoute);
    this.reqBuf = null;
    this.reqFrame = null;
    const m = s ?? this.made;
    this.made = null;
    if (m !== null) m.leaveFrame();
    return true;
  }

  private newStream(buf: Buffer, frame: XFrame): RpcStream {
    const s = acquireStream();
    s.bind(this, this.codec as XCodec, buf, frame);
    s.downstreamRemoteAddress = this.remoteHostPort();
    s.downstreamLocalAddress = this.localHostPort();
    s.downstreamTls = this.down.tlsInfo ?? undefined;
    s.bytesReceived = frame.frameLen;
    return s;
  }

  /** The connection's "ip:port" texts, made once per connection (filters compare them by identity). */
  remoteHostPort(): string | undefined {
    return (this.remoteHP ??= hostPort(this.down.remoteAddress, this.down.remotePort));
  }

  localHostPort(): string | undefined {
    return (this.localHP ??= hostPort(this.down.localAddress, this.down.localPort));
  }

  /** The connection's peer IP (the text remoteHostPort() starts with). */
  remoteIp(): string {
    return this.down.remoteAddress;
  }

  /** The mTLS client certificate, null without one. */
  tlsPeer(): StreamPeer | null {
    const t = this.down.tlsInfo;
    return t === null || t === undefined ? null : t.peer;
  }

  /** A light pipeline's filter answered (RpcLightView.sendLocalReply): as filterReply, without a stream. */
  lightReply(buf: Buffer, frame: XFrame, status: number, message: string | undefined): void {
    this.reply(buf, frame, replyKindOf(status), null, null, message);
  }

  /** A stopped filter let the request go on (from `phase`). */
  resumeStream(s: RpcStream, phase: DecodePhase): void {
    if (this.held !== null) this.held.delete(s);
    runPhases(this, s, phase);
  }

  /** Streams a filter holds (Stop) until it resumes them; made on the first hold. */
  private held: Set<RpcStream> | null = null;

  /** A filter holds `s` (RpcStream.park). */
  hold(s: RpcStream): void {
    (this.held ??= new Set()).add(s);
  }

  /** The client went away while a filter held `s`. */
  private dropHeld(s: RpcStream): void {
    s.setResponseFlag('DC');
    this.endStream(s);
  }

  // ---- StreamHooks (src/stream/active-stream.ts runs the phases; these are the RPC parts)

  /** ORIGINAL_DST clusters: the downstream socket (its original destination); made once per connection. */
  lbContext(s: RpcStream | null): LbContext {
    const c = (this.lbCtx ??= { downstream: this.down.socket, metadataMatch: null });
    c.metadataMatch = s !== null ? s.metadataMatch : this.reqMatch; // read by the pick that follows, in this tick
    return c;
  }

  routePhase(s: RpcStream | null): RpcStream | null | undefined {
    const buf = s !== null ? (s.buf as Buffer) : (this.reqBuf as Buffer);
    const frame = s !== null ? (s.frame as XFrame) : (this.reqFrame as XFrame);
    this.curBuf = buf;
    this.curFrame = frame;
    const r = this.f.router.match(this);
    this.curBuf = null;
    this.curFrame = null;
    if (isMalformed(r)) return this.reply(buf, frame, ErrorKind.CodecError, s, 'NR');
    if (r === null) return this.reply(buf, frame, ErrorKind.NoRoute, s, 'NR');
    const target = r.pickTarget();
    const cl = this.f.ctx.clusters.get(target.name);
    if (cl === undefined) return this.reply(buf, frame, ErrorKind.NoRoute, s, 'NR');
    const retries = r.retry !== null && r.retry.on !== 0 && r.retry.numRetries > 0 && frame.isOneway !== true;
    if (s === null) {
      if (!retries) {
        this.reqRoute = r;
        this.reqCluster = cl;
        this.reqMatch = target.metadataMatch;
        return null;
      }
      // A route that retries needs the request after this callback: a stream that keeps a copy.
      s = this.made = this.newStream(buf, frame);
    }
    s.route = r;
    s.metadataMatch = target.metadataMatch;
    s.routed(r.name, cl, r.mirror, r.rateLimits);
    if (retries) s.own(buf, frame, this.f.frameLimit(this.codec as XCodec));
    return s;
  }

  prepareUpstream(): boolean {
    return true;
  }

  routedCluster(s: RpcStream | null): Cluster {
    return (s !== null ? s.cluster : this.reqCluster) as Cluster;
  }

  retryState(s: RpcStream | null): RetryState | null {
    return s;
  }

  /** One upstream attempt. */
  sendAttempt(s: RpcStream | null, host: Host): void {
    const buf = s !== null ? (s.buf as Buffer) : (this.reqBuf as Buffer);
    const frame = s !== null ? (s.frame as XFrame) : (this.reqFrame as XFrame);
    const route = (s !== null ? s.route : this.reqRoute) as Route;
    const cluster = (s !== null ? s.cluster : this.reqCluster) as Cluster;
    const codec = this.codec as XCodec;
    const upCodec = this.f.upstreamCodec ?? codec;
    const pool = (this.pool = hostPoolAgain(this.pool, host, cluster, upCodec, this.f.settingsFor(upCodec)));
    // The client's own timeout, capped by the route's or limits.rpc_max_timeout.
    let timeout = rpcTimeoutMs(frame.timeoutMs, route.timeoutMs, this.f.config.defaultTimeoutMs);
    // Capped: the forwarded request carries the capped time, not the client's (codecs that can rewrite it).
    if (timeout < frame.timeoutMs && upCodec.setTimeout !== undefined) upCodec.setTimeout(buf, frame, timeout);
    const rp = route.retry;
    if (s !== null) {
      // The request's whole time is kept across attempts; retry_timeout bounds each attempt
      // (MOSN's per-try timeout), timed by the pending request's deadline-wheel entry.
      const now = nowMs();
      if (s.retries === 0) startRequestTime(s, timeout, now);
      if (rp !== null) {
        const at = attemptDeadline(s, rp, now);
        timeout = at === 0 ? 0 : Math.max(1, at - now);
        if (s.owned) triedHost(s, host);
      }
    }
    const meta = codec.replyMeta(buf, frame);
    // Overload manager: a two-way request is counted until its answer (requestDone), or shed here.
    if (frame.isOneway !== true && !admitRequest()) {
      this.counters[this.lb + OL.RQ_SHED]++;
      this.reply(buf, frame, ErrorKind.Overflow, s, 'OM');
      return;
    }
    // Mirror filter: copies of the request frame to the mirror clusters (first attempt; fire and forget).
    if (s !== null && s.mirror !== null && s.retries === 0) mirrorRpc(s.mirror, upCodec, buf, frame, this.f.ctx.clusters, this.f.settingsFor(upCodec));
    // Tracing (sampled requests): a client span per attempt; Bolt frames carry its traceparent (src/tracing/bolt.ts).
    const w = s !== null && s.trace !== null ? s.trace.rpcAttempt(host.address, cluster.name, codec, buf, frame, this.f.frameLimit(codec)) : null;
    const r = w === null ? pool.send(buf, frame, this, meta, timeout) : pool.send(w.buf, w.frame, this, meta, timeout);
    if (sendOverflowed(r)) {
      if (frame.isOneway !== true) requestEnded();
      // upstream_rq_pending_overflow is counted by the cluster's breaker (or the pool's default bound).
      this.reply(buf, frame, ErrorKind.Overflow, s, 'UO');
      return;
    }
    if (s !== null) {
      s.upstreamHost = host.address;
      s.requestSent();
    }
    if (r !== null) {
      if (s !== null) r.context = s;
      this.counters[this.lb + L.RQ_ACTIVE]++;
      this.inflight++;
    } else if (s !== null) this.endStream(s); // oneway: sent, nothing comes back
  }

  localReply(s: RpcStream | null, kind: LocalReplyKind): void {
    const ek = REPLY_KIND[kind];
    const p = this.failing;
    if (p !== null) {
      // A failed attempt: the request may be gone; the pending request kept what the answer needs.
      this.failedReply(p, ek, s);
      return;
    }
    const buf = s !== null ? (s.buf as Buffer) : (this.reqBuf as Buffer);
    const frame = s !== null ? (s.frame as XFrame) : (this.reqFrame as XFrame);
    this.reply(buf, frame, ek, s, null);
  }

  retry(s: RpcStream | null): void {
    const st = s as RpcStream;
    // The failed attempt wrote its upstream id into the copy: the downstream's goes back first.
    (this.f.upstreamCodec ?? (this.codec as XCodec)).setRequestId(st.buf as Buffer, st.frame as XFrame, st.downId);
    retryAttempt(this, st);
  }

  /** Answers the current request locally (oneway requests get nothing). */
  private reply(buf: Buffer, frame: XFrame, kind: ErrorKind, s: RpcStream | null, flag: string | null, message?: string): undefined {
    if (s !== null && flag !== null) s.setResponseFlag(flag);
    if (frame.isOneway) {
      if (s !== null) this.endStream(s);
      return undefined;
    }
    settleCounts(); // the filters' counts of this read are in the cells before the client has the answer
    const codec = this.codec as XCodec;
    const ks = KIND_STAT[kind]; // filters' denials (PermissionDenied, LimitExceeded) are counted by the filters
    if (ks !== undefined) this.counters[this.lb + ks]++;
    // Error path: one Buffer per error response.
    const out = codec.encodeError(codec.replyMeta(buf, frame), frame.requestId, kind, message);
    this.down.write(out, 0, out.length);
    this.counters[this.lb + L.BYTES_TX] += out.length;
    if (s !== null) {
      s.replied = true;
      s.bytesSent = out.length;
      s.encode(codec.errorStatus(kind));
      this.endStream(s);
    }
    return undefined;
  }

  /** A filter's local reply (FilterStream.sendLocalReply): the HTTP status mapped as MOSN maps hijack codes. */
  filterReply(s: RpcStream, status: number, message: string | undefined): void {
    this.reply(s.buf as Buffer, s.frame as XFrame, replyKindOf(status), s, 'LR', message);
  }

  private endStream(s: RpcStream): void {
    if (this.held !== null) this.held.delete(s);
    requestDone(s);
    s.replied = true;
    s.end();
    if (s.parkedFrame) this.parked--;
    s.parkedFrame = false;
    if (!s.inCallback) releaseStream(s);
  }

  onDecodeError(code: number): void {
    const c = this.counters;
    c[this.lb + L.DECODE_ERROR]++;
    if (code === ERR_TOO_LARGE) c[this.lb + L.FRAME_TOO_LARGE]++;
    this.down.destroy(new Error(`downstream frame could not be decoded (${code})`));
  }

  onEnd(): void {
    // The client half-closed: no more requests. Answer what is in flight, then FIN.
    this.downEnded = true;
    if (this.inflight === 0) this.down.endWrite();
  }

  private requestDone(): void {
    requestEnded();
    this.counters[this.lb + L.RQ_ACTIVE]--;
    if (--this.inflight === 0 && (this.downEnded === true || (this.f.draining === true && !(handingOverConnections() && this.movable())))) this.down.endWrite();
  }

  /** Drain: nothing in flight -> FIN now (Bolt and Dubbo have no goodbye frame); else after the last answer. */
  closeIfIdle(): void {
    if (this.inflight === 0) this.down.endWrite();
  }

  /** Hot upgrade: whether this connection can be handed over (a plain socket; TLS state stays in this process). */
  movable(): boolean {
    return this.down.tlsInfo === null && this.down.fd >= 0;
  }

  /** Hot upgrade: between requests (nothing in flight, all written), the unread bytes; then this session lets go. */
  migrate(): Buffer | null {
    // A pause other than the hand-over's own hold (holdForMove) is flow control: it stays.
    if (this.inflight > 0 || this.parked > 0 || this.pendingHead !== null || this.downEnded || this.down.queued() > 0 || (this.down.isReadPaused && this.moveHold === null)) return null;
    if (this.moveHold !== null) forgetHandOverHold(this.moveHold); // moving: the hold ends with this connection here
    if (this.reader !== null) return this.reader.takeBuffered();
    const s = this.sniffed ?? Buffer.alloc(0);
    this.sniffed = null;
    return s;
  }

  onClose(): void {
    this.f.track(this, false);
    if (this.moveHold !== null) forgetHandOverHold(this.moveHold);
    // Requests still pending upstream are dropped now (their places under the pending limits
    // freed); late responses find no entry and are dropped by the pool.
    for (let n = cancelPending(this); n > 0; n--) this.requestDone();
    // Requests a filter holds (Stop) end now: their filters free what they keep (timers) in log().
    if (this.held !== null) for (const s of [...this.held]) this.dropHeld(s);
  }

  onHighWatermark(): void {
    // The client is not reading its responses: stop taking new requests from it.
    this.down.pauseRead();
    this.counters[this.lb + L.CX_RX_PAUSED]++;
  }

  onLowWatermark(): void {
    // Resumes a hand-over's hold too (taken while flow control had paused nothing): the next read holds again.
    if (this.moveHold !== null) {
      forgetHandOverHold(this.moveHold);
      this.moveHold = null;
    }
    this.down.resumeRead();
  }

  onTimeout(): void {
    const idle = this.f.ctx.idleTimeoutMs;
    const left = this.lastActivity + idle - Date.now();
    if (left > 0) {
      this.down.setTimeout(left);
      return;
    }
    this.counters[this.lb + L.CX_IDLE_TIMEOUT]++;
    this.down.destroy();
  }

  // ---- RouteRequest (valid while curFrame is set)

  routeKey(): string | undefined | null {
    return (this.codec as XCodec).getRouteKey(this.curBuf as Buffer, this.curFrame as XFrame);
  }

  header(name: HeaderName): string | undefined | null {
    return (this.codec as XCodec).getHeader(this.curBuf as Buffer, this.curFrame as XFrame, name);
  }

  // ---- StreamReceiver

  onUpstreamResponse(p: PendingRequest, buf: Buffer, frame: XFrame): void {
    const c = this.counters;
    if (this.down.state !== 'closed') {
      c[this.lb + (frame.isSuccess === true ? L.RS_SUCCESS : L.RS_ERROR)]++;
      c[this.lb + L.BYTES_TX] += frame.frameLen;
      this.lastActivity = nowMs();
      this.down.write(buf, frame.frameStart, frame.frameStart + frame.frameLen);
    }
    const s = p.context as RpcStream | null;
    if (s !== null) {
      // Read by the access log only.
      if (this.f.pipeline.accessLog !== null) {
        const sock = (p.conn as UpstreamConnLike).conn.socket;
        s.upstreamLocalAddress = hostPort(sock.localAddress, sock.localPort);
      }
      s.bytesSent = frame.frameLen;
      s.replied = true;
      const st = (frame as XFrame & { status?: number }).status;
      s.rpcSuccess = frame.isSuccess;
      s.encode(typeof st === 'number' ? st : frame.isSuccess ? 0 : -1);
      this.endStream(s);
    }
    this.requestDone();
  }

  onUpstreamError(p: PendingRequest, kind: ErrorKind): void {
    const s = p.context as RpcStream | null;
    if (this.down.state === 'closed') {
      if (s !== null) {
        s.setResponseFlag('DC');
        this.endStream(s);
      }
      this.requestDone();
      return;
    }
    if (s === null) {
      this.failedReply(p, kind, null);
    } else {
      if (p.failure !== '') s.upstreamTransportFailureReason = p.failure;
      attemptDone(s);
      // What MOSN retries for RPC: the request never reached the upstream (connect failure), or
      // the attempt's own time (retry_timeout) ran out while the request's did not. A request
      // lost with its connection is not sent again (the upstream may have executed it).
      const failure = p.connectFailed
        ? AttemptFailure.ConnectFailure
        : kind === ErrorKind.Timeout
          ? perTryExpired(s, Date.now())
            ? AttemptFailure.PerTryTimeout
            : AttemptFailure.Timeout
          : kind === ErrorKind.ConnectionClosed
            ? AttemptFailure.ConnectionClosed
            : -1;
      if (failure < 0) this.failedReply(p, kind, s);
      else {
        if (failure === AttemptFailure.PerTryTimeout) {
          const cl = s.cluster as Cluster;
          cl.counters[cl.base + HC.PER_TRY_TIMEOUT]++;
        }
        this.failing = p;
        const safe = s.owned && failure !== AttemptFailure.ConnectionClosed;
        attemptFailed(this, s, s.route === null ? null : s.route.retry, failure as AttemptFailure, safe, HC.RETRY);
        this.failing = null;
      }
    }
    this.requestDone();
  }

  /** The error answer to a request whose attempt failed (from the pending request: the frame may be gone). */
  private failedReply(p: PendingRequest, kind: ErrorKind, s: RpcStream | null): void {
    const c = this.counters;
    c[this.lb + KIND_STAT[kind]]++;
    const out = (this.codec as XCodec).encodeError(p.meta, p.downId, kind);
    c[this.lb + L.BYTES_TX] += out.length;
    this.down.write(out, 0, out.length);
    if (s !== null) {
      s.bytesSent = out.length;
      s.replied = true;
      s.encode((this.codec as XCodec).errorStatus(kind));
      this.endStream(s);
    }
  }
}

/** What the access log reads of an upstream connection. */
interface UpstreamConnLike {
  readonly conn: { readonly socket: { readonly localAddress?: string; readonly localPort?: number } };
}

/**
 * One RPC request in the stream pipeline (only when the listener has filters or an access log,
 * or the route retries). Pooled: requests allocate nothing once the pool is warm, except the
 * frame copy a retry or a stopped filter needs.
 */
class RpcStream extends ActiveStream implements RetryState {
  session: DownstreamSession | null = null;
  codec: XCodec | null = null;
  /** The request: the read buffer's view during the decode callback, or an owned copy. */
  buf: Buffer | null = null;
  frame: XFrame | null = null;
  /** buf/frame are this stream's own copy (valid after the callback). */
  owned = false;
  /** Set while process() runs inside onFrame (the stream is released after it). */
  inCallback = false;
  parkedFrame = false;
  route: Route | null = null;
  /** The subset criteria of its cluster (the route's metadata_match). */
  metadataMatch: MetadataMatch | null = null;
  retryHeld = false;
  retryPending = false;
  /** Hosts tried (a retrying route); the array is kept across pooled uses. */
  tried: Host[] | null = null;
  /** The downstream's request id (restored in the copy before a retry). */
  downId = 0;
  /** Date.now() when the request's whole time is up (routes with a retry policy; 0 = none). */
  deadlineAt = 0;
  /** Request header values the access log prints (the frame is gone when it writes). */
  private readonly logged: (string | undefined)[] = [];

  bind(session: DownstreamSession, codec: XCodec, buf: Buffer, frame: XFrame): void {
    const f = session.factory;
    this.begin(f.pipeline, codec.name, f.ctx.name);
    this.session = session;
    this.codec = codec;
    this.buf = buf;
    this.frame = frame;
    this.owned = false;
    this.inCallback = true;
    this.route = null;
    this.metadataMatch = null;
    this.host = null;
    this.retryHeld = false;
    this.retryPending = false;
    if (this.tried !== null) this.tried.length = 0;
    this.deadlineAt = 0;
    const names = f.pipeline.logHeaders;
    if (this.logged.length !== names.length) this.logged.length = names.length;
    for (let i = 0; i < names.length; i++) this.logged[i] = this.header(names[i]);
  }

  /** Keeps a copy of the request (retries, a stopped filter): the read buffer is reused after the callback. */
  own(buf: Buffer, frame: XFrame, limit: number): void {
    if (this.owned) return;
    const codec = this.codec as XCodec;
    // One copy of the frame and a frame object of its own (retry / stop paths only).
    const copy = Buffer.from(buf.subarray(frame.frameStart, frame.frameStart + frame.frameLen));
    const f = codec.newFrame();
    if (codec.decode(copy, 0, copy.length, limit, f) <= 0) return;
    this.buf = copy;
    this.frame = f;
    this.owned = true;
    this.downId = f.requestId;
  }

  /** The decode callback returns: the stream lives on only when a request or a filter holds it. */
  leaveFrame(): void {
    this.inCallback = false;
    if (this.replied && !this.parkedFrame) {
      releaseStream(this);
      return;
    }
    if (!this.owned) {
      this.buf = null;
      this.frame = null;
    }
  }

  protected park(): void {
    const s = this.session as DownstreamSession;
    s.hold(this);
    if (!this.parkedFrame) s.parked++;
    this.parkedFrame = true;
    this.own(this.buf as Buffer, this.frame as XFrame, s.factory.frameLimit(this.codec as XCodec));
  }

  protected continueFrom(phase: DecodePhase): void {
    if (this.parkedFrame) (this.session as DownstreamSession).parked--;
    this.parkedFrame = false;
    if (!this.owned) return;
    (this.session as DownstreamSession).resumeStream(this, phase);
  }

  service(): string | undefined {
    if (this.buf === null) return undefined;
    return rpcService(this.codec as XCodec, this.buf, this.frame as XFrame);
  }

  method(): string | undefined {
    if (this.buf === null) return this.header('method') ?? this.header('sofa_head_method_name');
    return rpcMethod(this.codec as XCodec, this.buf, this.frame as XFrame);
  }

  header(name: string): string | undefined {
    if (this.buf === null) {
      const i = (this.pipeline as StreamPipeline).logHeaders.indexOf(name);
      return i < 0 ? undefined : this.logged[i];
    }
    return rpcHeader(this.codec as XCodec, this.buf, this.frame as XFrame, name);
  }

  override logHeader(name: string): string | undefined {
    const i = (this.pipeline as StreamPipeline).logHeaders.indexOf(name);
    return i < 0 ? undefined : this.logged[i];
  }

  requestBodyLength(): number {
    return this.bytesReceived ?? -1;
  }

  peer(): StreamPeer | null {
    return this.downstreamTls?.peer ?? null;
  }

  sendLocalReply(status: number, message?: string, _opts?: LocalReplyOptions): void {
    if (this.replied || this.buf === null) return;
    (this.session as DownstreamSession).filterReply(this, status, message);
  }
}

/** The service of an RPC request (the codec's route key). */
function rpcService(codec: XCodec, buf: Buffer, frame: XFrame): string | undefined {
  return codec.getRouteKey(buf, frame) ?? undefined;
}

function rpcHeader(codec: XCodec, buf: Buffer, frame: XFrame, name: string): string | undefined {
  return codec.getHeader(buf, frame, headerName(name)) ?? undefined;
}

/** The method: its header, or for Hessian SOFARPC clients without one (sofa-rpc-node) the SofaRequest's methodName. */
function rpcMethod(codec: XCodec, buf: Buffer, frame: XFrame): string | undefined {
  const m = rpcHeader(codec, buf, frame, 'method') ?? rpcHeader(codec, buf, frame, 'sofa_head_method_name');
  if (m !== undefined || (codec.name !== 'bolt' && codec.name !== 'boltv2')) return m;
  return sofaRequestMethod(buf, frame as unknown as BoltFrame);
}

/**
 * A light pipeline's view of the request being decoded (StreamPipeline.light): one per
 * connection, bound to each request's frame for the filters' decode step only. Response flags
 * are read by nobody on this path (no access log, no trace), so they are not kept.
 */
class RpcLightView implements LightView {
  readonly protocol: string;
  replied = false;
  buf: Buffer | null = null;
  frame: XFrame | null = null;

  constructor(
    private readonly session: DownstreamSession,
    /** codec, buf and frame as RpcStream has them (what src/tracing reads of an RPC request). */
    readonly codec: XCodec,
  ) {
    this.protocol = codec.name;
  }

  service(): string | undefined {
    return rpcService(this.codec, this.buf as Buffer, this.frame as XFrame);
  }

  method(): string | undefined {
    return rpcMethod(this.codec, this.buf as Buffer, this.frame as XFrame);
  }

  header(name: string): string | undefined {
    return rpcHeader(this.codec, this.buf as Buffer, this.frame as XFrame, name);
  }

  requestBodyLength(): number {
    return (this.frame as XFrame).frameLen;
  }

  routeCluster(): string | undefined {
    return undefined; // light filters run before routing
  }

  peer(): StreamPeer | null {
    return this.session.tlsPeer();
  }

  remoteAddress(): string {
    return this.session.remoteHostPort() ?? '';
  }

  remoteIp(): string {
    return this.session.remoteIp();
  }

  localAddress(): string {
    return this.session.localHostPort() ?? '';
  }

  sendLocalReply(status: number, message?: string, _opts?: LocalReplyOptions): void {
    if (this.replied || this.buf === null) return;
    this.replied = true;
    this.session.lightReply(this.buf, this.frame as XFrame, status, message);
  }

  addResponseHeader(_name: string, _value: string): void {
    // RPC responses carry no headers a filter could add.
  }

  limitRequestBody(_max: number, _status: number): void {
    // The frame is whole: its length is known at decode.
  }

  setResponseFlag(_flag: string): void {
    // Read by the access log and the trace only; a light request has neither.
  }

  resume(): void {
    // headersOnly filters never hold a request.
  }
}

const streamFree: RpcStream[] = [];

function acquireStream(): RpcStream {
  return streamFree.pop() ?? new RpcStream();
}

function releaseStream(s: RpcStream): void {
  s.session = null;
  s.buf = null;
  s.frame = null;
  s.owned = false;
  s.route = null;
  s.host = null;
  s.cluster = null;
  s.pipeline = null;
  if (streamFree.length < 4096) streamFree.push(s);
}

const headerNames = new Map<string, HeaderName>();

/** HeaderName objects by name, made once. */
function headerName(name: string): HeaderName {
  let h = headerNames.get(name);
  if (h === undefined) {
    h = new HeaderName(name);
    if (headerNames.size < 1024) headerNames.set(name, h);
  }
  return h;
}

function buildFactory(config: Readonly<Record<string, unknown>>, ctx: ListenerContext): NetworkFilterFactory {
  const family = proxyFamilyForNormalized(config);
  if (family !== undefined) return family.build(config, ctx);
  const cfg = { ...RPC_PROXY_DEFAULTS, ...(config as unknown as RpcProxyConfig) };
  const rc = ctx.routers?.find((r) => r.name === cfg.routerConfigName);
  if (rc === undefined) throw new Error(`listener ${ctx.name}: proxy router_config_name "${cfg.routerConfigName}" not found`);
  return new RpcProxyFactory(cfg, ctx, rc);
}

registerNetworkFilter('proxy', buildFactory);
