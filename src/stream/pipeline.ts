/**
 * The stream pipeline every L7 request runs through, whatever its protocol (MOSN's downstream
 * phases, Envoy's filter manager): the listener's filters (StreamPipeline) and one request's
 * filter state and access-log entry (ActiveStream).
 *
 *   decoded request
 *     -> decode filters, phase before_route     ActiveStream.decode(phase): Stop parks, resume()
 *     -> router (route, cluster)                 goes on through continueFrom(phase)
 *     -> decode filters, phase after_route
 *     -> host chosen (lb)
 *     -> decode filters, phase after_choose_host
 *     -> upstream request: attempts, retries
 *     -> response head: encode(status)           or a local reply in the protocol's form
 *     -> stream end: end(): access log line, filters' log step
 *
 * The order of these phases, the upstream attempts and the retry decision are driven by
 * src/stream/active-stream.ts (runPhases and friends), the same for every protocol; the
 * adapters (src/proxy/proxy.ts: XCodec RPC; src/http/exchange.ts: HTTP/1.1, HTTP/2, gRPC;
 * src/http/tunnel.ts: CONNECT / Upgrade) implement its hooks. A StreamPipeline is built once
 * per listener snapshot and worker; an ActiveStream exists for a request only when the listener
 * has stream filters or an access log, or (RPC) the route retries; tunnels always make one
 * when the pipeline is active. Without one, the phase machine runs with nothing to call.
 */
import { DECODE_PHASES, DecodePhase, FilterStatus, streamFilterKind, type FilterStream, type LocalReplyOptions, type StreamFilter, type StreamPeer } from '../api/stream-filter';
import type { ListenerContext } from '../filters/network/types';
import type { AccessLogEntry, AccessLogHeaders, AccessLogResponseHeaders, AccessLogTls, AccessLogWriter } from '../log';
import type { Cluster } from '../upstream/cluster';
import type { Host } from '../upstream/lb';
import { TracingFilter } from '../filters/stream/tracing/tracing';
import type { MirrorJob } from '../filters/stream/mirror/mirror';
import type { MirrorPolicy } from '../filters/stream/mirror/policy';
import type { RouteRateLimit } from '../filters/stream/local_ratelimit/descriptors';
import { workerTracing, type ActiveTrace } from '../tracing/index';

export class StreamPipeline {
  /** Decode filters per phase, in config order. */
  readonly decoders: StreamFilter[][] = [];
  readonly encoders: StreamFilter[] = [];
  readonly loggers: StreamFilter[] = [];
  readonly accessLog: AccessLogWriter | null;
  /** Lower-case names of the request headers the access log prints (RPC copies them at decode). */
  readonly logHeaders: readonly string[];
  /** Something runs per request: the adapters make an ActiveStream (or, when light, a view). */
  readonly active: boolean;
  /**
   * Light: the per-request work is only headersOnly filters (StreamFilter.headersOnly) and
   * tracing's decision; no access log, no encode or log step, nothing after routing. The
   * adapters then run runLight() on a per-connection view (no stream object per request) and
   * make an ActiveStream only for a request tracing samples (its spans need the response).
   */
  readonly light: boolean;
  /** The before_route filters runLight runs after tracing's decision (light pipelines). */
  readonly lightFilters: readonly StreamFilter[];
  /** The top-level tracing's step (first decoder, a logger), null when tracing is off. */
  readonly tracing: TracingFilter | null;
  /**
   * Something reads the stream's times (access log; a log or encode step other than tracing's,
   * e.g. dubbo_stream's latency): the stream reads the clocks. Otherwise it reads none.
   */
  readonly timed: boolean;

  constructor(ctx: ListenerContext) {
    for (let i = 0; i < DECODE_PHASES; i++) this.decoders.push([]);
    for (const fc of ctx.streamFilters ?? []) {
      const kind = streamFilterKind(fc.type);
      // Types without a kind were refused or dropped with a warning by the config layer.
      if (kind === undefined) continue;
      const f = kind.create((fc.config as { value?: unknown }).value, { listener: ctx.name });
      if (f.decode !== undefined) this.decoders[f.phase].push(f);
      if (f.encode !== undefined) this.encoders.push(f);
      if (f.log !== undefined) this.loggers.push(f);
    }
    // Top-level `tracing` enabled: its step runs first and ends last (src/filters/stream/tracing).
    const tr = workerTracing();
    const headersOnly = this.decoders[DecodePhase.BeforeRoute].every((f) => f.headersOnly === true && f.encode === undefined && f.log === undefined);
    this.lightFilters = headersOnly ? this.decoders[DecodePhase.BeforeRoute].slice() : [];
    this.tracing = tr === null ? null : new TracingFilter(tr);
    if (this.tracing !== null) {
      this.decoders[this.tracing.phase].unshift(this.tracing);
      this.loggers.push(this.tracing);
    }
    this.accessLog = ctx.accessLog;
    this.logHeaders = this.accessLog !== null ? this.accessLog.format.requestHeaders : [];
    this.active = this.accessLog !== null || this.encoders.length > 0 || this.loggers.length > 0 || this.decoders.some((d) => d.length > 0);
    this.light =
      this.active && headersOnly && this.accessLog === null && this.encoders.length === 0 && this.loggers.length === (this.tracing === null ? 0 : 1) &&
      this.decoders[DecodePhase.AfterRoute].length === 0 && this.decoders[DecodePhase.AfterChooseHost].length === 0;
    this.timed = this.accessLog !== null || this.encoders.length > 0 || this.loggers.length > (this.tracing === null ? 0 : 1);
  }
}

const pipelines = new WeakMap<ListenerContext, StreamPipeline>();

/** The pipeline of a listener snapshot (built on first use in this worker). */
export function pipelineFor(ctx: ListenerContext): StreamPipeline {
  let p = pipelines.get(ctx);
  if (p === undefined) {
    p = new StreamPipeline(ctx);
    pipelines.set(ctx, p);
  }
  return p;
}

/** What runLight found: go on without a stream, answered by a filter, or traced (make the stream). */
export const enum LightResult {
  Go = 0,
  Answered = 1,
  Sampled = 2,
}

/** A light pipeline's per-connection view of the request being decoded (the adapter binds it). */
export interface LightView extends FilterStream {
  /** Set by the adapter when sendLocalReply answered. */
  readonly replied: boolean;
}

/**
 * A light pipeline's decode step on `v` (StreamPipeline.light): tracing's decision first, as in
 * the full pipeline where its step runs first; a sampled request returns Sampled before any
 * other filter runs, and the adapter goes on with an ActiveStream (startSampled). Otherwise the
 * headersOnly filters, in config order.
 */
export function runLight(p: StreamPipeline, v: LightView): LightResult {
  const tr = p.tracing;
  if (tr !== null && tr.decide(v)) return LightResult.Sampled;
  const fl = p.lightFilters;
  for (let i = 0; i < fl.length; i++) {
    const st = (fl[i].decode as (s: FilterStream) => FilterStatus)(v);
    if (v.replied) return LightResult.Answered;
    // headersOnly filters stop only after answering; one that did not cannot be resumed on a view.
    if (st === FilterStatus.Stop) {
      v.sendLocalReply(500, 'filter stopped the request');
      return LightResult.Answered;
    }
  }
  return LightResult.Go;
}

/** A request runLight found sampled goes on with `s`: its span starts, the filters after tracing's step run on it. */
export function startSampled(p: StreamPipeline, s: ActiveStream): void {
  (p.tracing as TracingFilter).startTrace(s);
  s.skipDecoders(DecodePhase.BeforeRoute, 1);
}

/** Where an ActiveStream is in its decode phases. */
const PARKED = -1;

/**
 * One request in the pipeline: the filters' view (FilterStream), the access-log entry (the
 * stream is the entry: no second object per line) and the decode progress. Protocol adapters
 * extend it with their parts (header reads, the reply form, how to go on after a resume).
 */
export abstract class ActiveStream implements FilterStream, AccessLogEntry, AccessLogHeaders, AccessLogResponseHeaders {
  pipeline: StreamPipeline | null = null;
  protocol = '';
  /** performance.now() at arrival (durations). */
  t0 = 0;
  /** Next decode filter: phase * 64 + index; PARKED while a filter holds the stream. */
  private cursor = 0;
  /** A reply (local or upstream) was sent: no more decode steps. */
  replied = false;
  /** Retries of this request so far (RPC). */
  retries = 0;
  cluster: Cluster | null = null;
  /** The host of the current attempt (set by the phase machine). */
  host: Host | null = null;
  /** The request's spans (tracing enabled and the request sampled), else null. */
  trace: ActiveTrace | null = null;
  /** The route's request_mirror_policies (set by routed()), and what the mirror filter decided to send. */
  mirrorPolicies: readonly MirrorPolicy[] | null = null;
  mirror: MirrorJob | null = null;
  /** The route's rate_limits (set by routed(); local_ratelimit descriptors). */
  rateLimits: readonly RouteRateLimit[] | null = null;
  /** The dubbo_stream filter's metrics slot for this request (-1: none); set in decode, read in log. */
  rpcMetricsSlot = -1;

  // ---- AccessLogEntry (absent values print "-")
  startTime = 0;
  requestReceivedDurationMs: number | undefined = undefined;
  responseReceivedDurationMs: number | undefined = undefined;
  requestFinishedDurationMs: number | undefined = undefined;
  durationMs: number | undefined = undefined;
  bytesSent: number | undefined = undefined;
  bytesReceived: number | undefined = undefined;
  responseCode: number | undefined = undefined;
  /** RPC streams: the upstream's response said success (the codec's isSuccess); local replies never do. */
  rpcSuccess = false;
  responseFlag: string | undefined = undefined;
  downstreamRemoteAddress: string | undefined = undefined;
  downstreamLocalAddress: string | undefined = undefined;
  upstreamHost: string | undefined = undefined;
  upstreamLocalAddress: string | undefined = undefined;
  upstreamCluster: string | undefined = undefined;
  listenerName: string | undefined = undefined;
  downstreamTls: AccessLogTls | undefined = undefined;
  upstreamTransportFailureReason: string | undefined = undefined;
  routeName: string | undefined = undefined;
  requestHeaders: AccessLogHeaders | undefined = undefined;
  responseHeaders: AccessLogResponseHeaders | undefined = undefined;

  /** Starts a request (also resets a pooled stream). */
  begin(p: StreamPipeline, protocol: string, listener: string): void {
    this.pipeline = p;
    this.protocol = protocol;
    // The clocks only when something reads the times (access log, a filter's log step).
    if (p.timed) {
      this.t0 = performance.now();
      this.startTime = Date.now();
    }
    this.rpcMetricsSlot = -1;
    this.cursor = 0;
    this.replied = false;
    this.retries = 0;
    this.cluster = null;
    this.host = null;
    this.trace = null;
    this.mirrorPolicies = null;
    this.mirror = null;
    this.rateLimits = null;
    this.requestReceivedDurationMs = undefined;
    this.responseReceivedDurationMs = undefined;
    this.requestFinishedDurationMs = undefined;
    this.durationMs = undefined;
    this.bytesSent = undefined;
    this.bytesReceived = undefined;
    this.responseCode = undefined;
    this.rpcSuccess = false;
    this.responseFlag = undefined;
    this.downstreamRemoteAddress = undefined;
    this.downstreamLocalAddress = undefined;
    this.upstreamHost = undefined;
    this.upstreamLocalAddress = undefined;
    this.upstreamCluster = undefined;
    this.listenerName = listener;
    this.downstreamTls = undefined;
    this.upstreamTransportFailureReason = undefined;
    this.routeName = undefined;
    this.requestHeaders = this;
    this.responseHeaders = this;
  }

  // ---- decode phases

  /**
   * Runs the decode filters of `phase` (from where a resume left off). true: go on with the
   * request; false: a filter answered, or holds the stream until resume().
   */
  decode(phase: DecodePhase): boolean {
    const list = (this.pipeline as StreamPipeline).decoders[phase];
    let i = this.cursor >> 6 === phase ? this.cursor & 63 : 0;
    for (; i < list.length; i++) {
      const st = (list[i].decode as (s: FilterStream) => FilterStatus)(this);
      if (this.replied) return false;
      if (st === FilterStatus.Stop) {
        this.cursor = PARKED;
        this.parkedAt = phase * 64 + i + 1;
        this.park();
        return false;
      }
    }
    this.cursor = (phase + 1) * 64;
    return true;
  }

  private parkedAt = 0;

  /** The first `n` decode filters of `phase` already ran (runLight): decode(phase) goes on after them. */
  skipDecoders(phase: DecodePhase, n: number): void {
    this.cursor = phase * 64 + n;
  }

  resume(): void {
    if (this.cursor !== PARKED || this.replied) return;
    this.cursor = this.parkedAt;
    this.continueFrom(this.parkedAt >> 6);
  }

  /** A filter stopped the stream: keep what the request needs beyond the current callback. */
  protected abstract park(): void;
  /** Goes on with the request from `phase` (its remaining filters first) after a resume. */
  protected abstract continueFrom(phase: DecodePhase): void;

  // ---- encode and end

  /** The response head is known (status: HTTP status or the RPC protocol's). */
  encode(status: number): void {
    this.responseCode = status;
    const p = this.pipeline as StreamPipeline;
    if (p.timed) this.responseReceivedDurationMs = performance.now() - this.t0;
    const enc = p.encoders;
    for (let i = 0; i < enc.length; i++) (enc[i].encode as (s: FilterStream, st: number) => void)(this, status);
  }

  /** The upstream request was sent (first attempt). */
  requestSent(): void {
    if (this.requestReceivedDurationMs === undefined && (this.pipeline as StreamPipeline).timed) this.requestReceivedDurationMs = performance.now() - this.t0;
  }

  /** The stream ended: access log line, filters' log step. */
  end(): void {
    const p = this.pipeline as StreamPipeline;
    if (p.timed) {
      const now = performance.now() - this.t0;
      this.requestFinishedDurationMs = now;
      this.durationMs = now;
    }
    if (p.accessLog !== null) p.accessLog.log(this);
    const l = p.loggers;
    for (let i = 0; i < l.length; i++) (l[i].log as (s: FilterStream) => void)(this);
  }

  /** Routing picked `cluster` by the route named `routeName`. */
  routed(routeName: string, cluster: Cluster, mirror: readonly MirrorPolicy[] | null = null, rateLimits: readonly RouteRateLimit[] | null = null): void {
    this.mirrorPolicies = mirror;
    this.rateLimits = rateLimits;
    this.cluster = cluster;
    this.upstreamCluster = cluster.name;
    this.routeName = routeName;
  }

  setResponseFlag(flag: string): void {
    // MOSN joins several flags with ','; rare (error paths), so a string concat is fine.
    this.responseFlag = this.responseFlag === undefined ? flag : `${this.responseFlag},${flag}`;
  }

  // ---- FilterStream parts every adapter provides

  abstract service(): string | undefined;
  abstract method(): string | undefined;
  abstract header(name: string): string | undefined;
  abstract requestBodyLength(): number;
  abstract peer(): StreamPeer | null;
  abstract sendLocalReply(status: number, message?: string, opts?: LocalReplyOptions): void;

  limitRequestBody(_max: number, _status: number): void {
    // Whole-frame protocols know the length at decode; HTTP overrides this.
  }

  remoteAddress(): string {
    return this.downstreamRemoteAddress ?? '';
  }

  routeCluster(): string | undefined {
    return this.upstreamCluster;
  }

  localAddress(): string {
    return this.downstreamLocalAddress ?? '';
  }

  addResponseHeader(_name: string, _value: string): void {
    // RPC responses carry no headers a filter could add; HTTP overrides this.
  }

  /** %request_header_NAME%: the request's header (adapters that lose the request keep copies). */
  logHeader(name: string): string | undefined {
    return this.header(name);
  }

  /** %response_header_NAME%: the response header sent downstream (HTTP overrides this; RPC: none). */
  logResponseHeader(_name: string): string | undefined {
    return undefined;
  }
}

/** "ip:port" ("[v6]:port"), as access logs print addresses. */
export function hostPort(address: string | undefined, port: number | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  return address.indexOf(':') >= 0 ? `[${address}]:${port ?? 0}` : `${address}:${port ?? 0}`;
}
