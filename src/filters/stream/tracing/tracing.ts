/**
 * The tracing step of every stream pipeline while the top-level `tracing` section is enabled
 * (MOSN traces every listener then; there is no `stream_filters` entry for it): before routing it
 * reads the request's trace context (W3C, B3, SOFATracer), decides sampling (an incoming sampled
 * flag is honoured; otherwise config.sampling_ratio) and, for a sampled request only, starts the
 * request's span; the adapters give it the upstream attempt (ActiveTrace.attempt: its host and
 * cluster, or with `start_child_span` a client span per attempt); the stream's end closes them. An unsampled request makes no span and no trace object.
 */
import { DecodePhase, FilterStatus, type FilterStream, type StreamFilter } from '../../../api/stream-filter';
import type { ActiveStream } from '../../../stream/pipeline';
import { extract, sampleByRatio, type IncomingContext } from '../../../tracing/context';
import { ActiveTrace, type WorkerTracing } from '../../../tracing/index';
import { mayCarryTraceContext } from '../../../tracing/dubbo';
import { boltMayCarryTraceContext } from '../../../tracing/bolt';

/** What decide() reads a trace context from, by protocol. */
const HTTP = 0;
const BOLT = 1;
const DUBBO = 2;
const RPC = 3;

function isHttp(protocol: string): boolean {
  return protocol === 'http1' || protocol === 'http2' || protocol === 'grpc';
}

/** Failures before the first success of Bernoulli(p) trials (0 < p < 1): the geometric law, from one uniform draw. */
export function geometricSkip(p: number): number {
  const k = Math.floor(Math.log(1 - Math.random()) / Math.log1p(-p));
  return k >= 0 && k < 0x3fffffff ? k : 0x3fffffff;
}

export class TracingFilter implements StreamFilter {
  readonly phase = DecodePhase.BeforeRoute;
  private readonly read: (name: string) => string | undefined;
  private cur: FilterStream | null = null;
  /** The incoming context of the request decide() last found sampled (startTrace reads it). */
  private inc: IncomingContext | undefined = undefined;
  /**
   * Requests without a trace id to let pass before the next one sampled at random (-1: not
   * drawn yet): a geometric draw with the ratio as its success probability, so that each request
   * is still sampled with probability `ratio`, independently, as with one Math.random() per
   * request; one draw per sampled request instead.
   */
  private skip = -1;
  /** The protocol of the last request decided, and its kind (HTTP, BOLT, DUBBO, RPC). */
  private proto = '';
  private kind = HTTP;

  constructor(private readonly t: WorkerTracing) {
    // One bound reader for every request (the stream being decoded is `cur`).
    this.read = (name) => (this.cur as FilterStream).header(name);
  }

  decode(s: FilterStream): FilterStatus {
    if (this.decide(s)) this.startTrace(s);
    return FilterStatus.Continue;
  }

  /**
   * The sampling decision from the request's headers (the decode step's first half; a light
   * pipeline asks it on its per-connection view). true: the request is traced and startTrace
   * must follow in the same tick, on the stream that carries the request on.
   */
  decide(s: FilterStream): boolean {
    const p = s.protocol;
    if (p !== this.proto) {
      // Once per protocol change (a listener carries one protocol, or a few): string compares.
      this.proto = p;
      this.kind = isHttp(p) ? HTTP : p === 'bolt' || p === 'boltv2' ? BOLT : p === 'dubbo' ? DUBBO : RPC;
    }
    const k = this.kind;
    // Dubbo: the attachments are decoded only when the body holds a trace context key; Bolt: the
    // headers are read only when the header map holds one (most requests carry none).
    let inc: IncomingContext | undefined;
    if (k === BOLT ? boltMayCarryTraceContext(s) : k === DUBBO ? mayCarryTraceContext(s) : true) {
      this.cur = s;
      inc = extract(this.read, k !== HTTP);
      this.cur = null;
    }
    const sampled = inc === undefined ? this.drawn() : inc.sampled >= 0 ? inc.sampled === 1 : sampleByRatio(this.t.cfg.samplingRatio, inc.traceId);
    this.inc = sampled ? inc : undefined;
    return sampled;
  }

  /** Head sampling of a request without a trace id: the countdown of `skip`. */
  private drawn(): boolean {
    const r = this.t.cfg.samplingRatio;
    if (r >= 1) return true;
    if (r <= 0) return false;
    let k = this.skip;
    if (k < 0) k = geometricSkip(r);
    this.skip = k - 1;
    return k === 0;
  }

  /** A sampled request (decide returned true): its server span on `s`. */
  startTrace(s: FilterStream): void {
    const inc = this.inc;
    this.inc = undefined;
    const rpc = !isHttp(s.protocol);
    const method = s.method() ?? '';
    const service = s.service() ?? '';
    // Sampled requests only: the span's attributes and objects.
    const attrs: Record<string, string> = { protocol: s.protocol, 'peer.address': s.remoteAddress() };
    if (service !== '') attrs[rpc ? 'rpc.service' : 'http.host'] = service;
    if (method !== '') attrs[rpc ? 'rpc.method' : 'http.method'] = method;
    if (!rpc) attrs['http.target'] = s.header(':path') ?? '';
    const name = rpc ? (service !== '' ? `${service}/${method}` : s.protocol) : `${method} ${service}`;
    (s as ActiveStream).trace = ActiveTrace.start(this.t, name, inc, attrs);
  }

  log(s: FilterStream): void {
    const a = s as ActiveStream;
    const tr = a.trace;
    if (tr === null) return;
    a.trace = null;
    // RPC statuses are the protocol's (Bolt 0 and Dubbo 20 are success): the codec's verdict.
    tr.end(a.responseCode, a.responseFlag, isHttp(a.protocol) ? undefined : !a.rpcSuccess);
  }
}
