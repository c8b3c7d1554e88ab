/**
 * The `proxy` network filter for multiplexed RPC protocols (Bolt v1/v2 today; any XCodec).
 *
 * One DownstreamSession per accepted connection runs each request through these phases
 * (MOSN pkg/proxy/downstream.go names them too):
 *
 *   read ─> frame reader ─> [protocol?] ─> decode ─> heartbeat? ──yes──> ack written locally
 *                                                      │no
 *                    response from a client? drop <────┤
 *                                                      v
 *                      route (router, cached by service) ──none──> NO_ROUTE error response
 *                                                      v
 *                 cluster (weighted pick) + host (lb) ──none──> NO_ROUTE error response
 *                                                      v
 *         upstream pool: circuit breakers ──open──> OVERFLOW error response
 *                        id rewritten in place, written (gathered, one writev per tick)
 *                                                      v
 *   response (any order) ─> id mapped back in place ─> written downstream
 *   timeout / upstream lost ─> TIMEOUT / CONNECTION_CLOSED error response
 *
 * A frame that cannot be decoded closes this downstream connection only. Error statuses come
 * from the codec (ErrorKind -> protocol status), so nothing here is Bolt-specific.
 *
 * Auto (src/proxy/detect.ts): the first bytes pick the codec (Bolt v1/v2, Dubbo, any registered
 * XCodec); HTTP and TLS go to a registered handoff; anything else goes to the chain's tcp_proxy
 * with the bytes already read (fallback_for_unknown_protocol) or is closed.
 */
import type { RouterConfig } from '../config/types';
import { registerNetworkFilter, type ListenerContext, type NetworkFilterFactory } from '../filters/network/types';
import type { Connection, ConnectionHandler } from '../network/connection';
import { allCodecs, ErrorKind, ERR_TOO_LARGE, getCodec, type HeaderName, type XCodec, type XFrame } from '../protocol/types';
import { compiledRouter, MALFORMED, type CompiledRouter, type RouteRequest } from '../router/router';
import { C, L } from '../stats/layout';
import { rpcTimeoutMs } from '../overload/limits';
import { admitRequest, requestEnded } from '../overload/manager';
import { OL } from '../overload/stats';
import { FrameReader, type FrameSink } from '../stream/frame-reader';
import { cancelPending, hostPool, SEND_OVERFLOW, type PendingRequest, type PoolSettings, type StreamReceiver } from '../stream/upstream-pool';
import { RPC_PROXY_DEFAULTS, type RpcProxyConfig } from './config';
import { acceptsInitialBytes, AUTO_FALLBACK, AUTO_REJECTED, autoDrain, autoHandoff, MAX_SNIFF, proxyLog, sniff, Sniffed, sniffResult, SNIFFED_NAMES } from './detect';
import { proxyFamilyForNormalized } from './families';
import '../protocol/bolt/xcodec';
import '../protocol/dubbo/xcodec';
import '../protocol/example/xcodec';

/** Listener stat for each ErrorKind answered locally. */
const KIND_STAT: readonly number[] = [L.RS_NO_ROUTE, L.RS_TIMEOUT, L.RS_CX_CLOSED, L.RS_OVERFLOW, L.RS_CODEC_ERROR];

export class RpcProxyFactory implements NetworkFilterFactory {
  readonly router: CompiledRouter;
  /** null = Auto: detect per connection. */
  readonly fixedCodec: XCodec | null;
  readonly candidates: readonly XCodec[];
  readonly upstreamCodec: XCodec | null;
  readonly settings: PoolSettings;
  /** Listener drain: connections handed to other families (HTTP) close gracefully too. */
  onDrain(): void {
    if (this.detectsAll) autoDrain(this.ctx);
  }

  /** `Auto`: every protocol Outrigger knows is detected, HTTP included (handed to the HTTP proxy). */
  readonly detectsAll: boolean = false;
  /** MOSN fallback_for_unknown_protocol: the chain's tcp_proxy (set by the listener). */
  fallback: NetworkFilterFactory | null = null;
  private readonly codecSettings = new Map<string, PoolSettings>();

  constructor(
    readonly config: RpcProxyConfig,
    readonly ctx: ListenerContext,
    routerConfig: RouterConfig,
  ) {
    this.router = compiledRouter(routerConfig);
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
    let s = this.codecSettings.get(codec.name);
    if (s === undefined) {
      s = { ...this.settings, maxFrameSize: this.frameLimit(codec) };
      this.codecSettings.set(codec.name, s);
    }
    return s;
  }

  onAccept(conn: Connection): void {
    const s = new DownstreamSession(this, conn);
    conn.setHandler(s);
    if (this.ctx.idleTimeoutMs > 0) conn.setTimeout(this.ctx.idleTimeoutMs);
  }
}

class DownstreamSession implements ConnectionHandler, FrameSink<XFrame>, StreamReceiver, RouteRequest {
  private reader: FrameReader<XFrame> | null = null;
  private codec: XCodec | null;
  /** The frame being routed (valid during onFrame only). */
  private curBuf: Buffer | null = null;
  private curFrame: XFrame | null = null;
  private readonly counters: Float64Array;
  private readonly lb: number;
  private lastActivity = Date.now();
  /** Requests sent upstream and not answered yet. */
  private inflight = 0;
  /** This session's pending requests (kept by the upstream pool). */
  pendingHead: PendingRequest | null = null;
  private downEnded = false;
  /** Auto: the first bytes, when too few to tell the protocol. */
  private sniffed: Buffer | null = null;

  constructor(
    private readonly f: RpcProxyFactory,
    private readonly down: Connection,
  ) {
    this.counters = f.ctx.counters;
    this.lb = f.ctx.base;
    this.codec = f.fixedCodec;
    if (this.codec !== null) this.reader = new FrameReader(this.codec, f.frameLimit(this.codec));
  }

  // ---- ConnectionHandler

  onData(_conn: Connection, buf: Buffer, start: number, end: number): void {
    this.counters[this.lb + L.BYTES_RX] += end - start;
    this.lastActivity = Date.now();
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
    reader.feed(buf, start, end, this);
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
    if (!frame.isRequest) return true; // a response from a client: nothing to map it to
    if (frame.isHeartbeat) {
      c[this.lb + L.RQ_HEARTBEAT]++;
      if (frame.isOneway) return true; // e.g. a Dubbo one-way event: nothing to answer
      const ack = codec.encodeHeartbeatAck(buf, frame);
      this.down.write(ack, 0, ack.length);
      return true;
    }
    c[this.lb + L.RQ_TOTAL]++;
    if (frame.isOneway) c[this.lb + L.RQ_ONEWAY]++;
    // route
    this.curBuf = buf;
    this.curFrame = frame;
    const route = this.f.router.match(this);
    this.curBuf = null;
    this.curFrame = null;
    if (route === MALFORMED) return this.reply(buf, frame, ErrorKind.CodecError);
    if (route === null) return this.reply(buf, frame, ErrorKind.NoRoute);
    // cluster and host
    const cluster = this.f.ctx.clusters.get(route.pickCluster());
    if (cluster === undefined) return this.reply(buf, frame, ErrorKind.NoRoute);
    const host = cluster.lb.choose();
    if (host === null) {
      cluster.counters[cluster.base + C.NO_HOST]++;
      return this.reply(buf, frame, ErrorKind.NoRoute);
    }
    // upstream
    const upCodec = this.f.upstreamCodec ?? codec;
    const pool = hostPool(host, cluster, upCodec, this.f.settingsFor(upCodec));
    const timeout = rpcTimeoutMs(frame.timeoutMs, route.timeoutMs, this.f.config.defaultTimeoutMs);
    const meta = codec.replyMeta(buf, frame);
    // Overload manager: a two-way request is counted until its answer, or shed here.
    if (!frame.isOneway && !admitRequest()) {
      c[this.lb + OL.RQ_SHED]++;
      return this.reply(buf, frame, ErrorKind.Overflow);
    }
    const r = pool.send(buf, frame, this, meta, timeout);
    if (r === SEND_OVERFLOW) {
      if (!frame.isOneway) requestEnded();
      cluster.counters[cluster.base + C.RQ_PENDING_OVERFLOW]++;
      return this.reply(buf, frame, ErrorKind.Overflow);
    }
    if (r !== null) {
      c[this.lb + L.RQ_ACTIVE]++;
      this.inflight++;
    }
    return true;
  }

  /** Answers the current request locally (oneway requests get nothing). */
  private reply(buf: Buffer, frame: XFrame, kind: ErrorKind): boolean {
    if (frame.isOneway) return true;
    const codec = this.codec as XCodec;
    this.counters[this.lb + KIND_STAT[kind]]++;
    // Error path: one Buffer per error response.
    const out = codec.encodeError(codec.replyMeta(buf, frame), frame.requestId, kind);
    this.down.write(out, 0, out.length);
    this.counters[this.lb + L.BYTES_TX] += out.length;
    return true;
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
    if (--this.inflight === 0 && this.downEnded) this.down.endWrite();
  }

  onClose(): void {
    // Requests still pending upstream are dropped now (their places under the pending limits
    // freed); late responses find no entry and are dropped by the pool.
    for (let n = cancelPending(this); n > 0; n--) this.requestDone();
  }

  onHighWatermark(): void {
    // The client is not reading its responses: stop taking new requests from it.
    this.down.pauseRead();
    this.counters[this.lb + L.CX_RX_PAUSED]++;
  }

  onLowWatermark(): void {
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

  onUpstreamResponse(_p: PendingRequest, buf: Buffer, frame: XFrame): void {
    const c = this.counters;
    if (this.down.state !== 'closed') {
      c[this.lb + (frame.isSuccess ? L.RS_SUCCESS : L.RS_ERROR)]++;
      c[this.lb + L.BYTES_TX] += frame.frameLen;
      this.lastActivity = Date.now();
      this.down.write(buf, frame.frameStart, frame.frameStart + frame.frameLen);
    }
    this.requestDone();
  }

  onUpstreamError(p: PendingRequest, kind: ErrorKind): void {
    const c = this.counters;
    if (this.down.state === 'closed') {
      this.requestDone();
      return;
    }
    c[this.lb + KIND_STAT[kind]]++;
    const out = (this.codec as XCodec).encodeError(p.meta, p.downId, kind);
    c[this.lb + L.BYTES_TX] += out.length;
    this.down.write(out, 0, out.length);
    this.requestDone();
  }
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
