/**
 * The tracing step of every stream pipeline while the top-level `tracing` section is enabled
 * (MOSN traces every listener then; there is no `stream_filters` entry for it): before routing it
 * reads the request's trace context (W3C, B3, SOFATracer), decides sampling (an incoming sampled
 * flag is honoured; otherwise config.sampling_ratio) and, for a sampled request only, starts the
 * server span; the adapters add a client span per upstream attempt (ActiveTrace.attempt); the
 * stream's end closes both. An unsampled request makes no span and no trace object.
 */
import { DecodePhase, FilterStatus, type FilterStream, type StreamFilter } from '../../../api/stream-filter';
import type { ActiveStream } from '../../../stream/pipeline';
import { extract, sampleByRatio } from '../../../tracing/context';
import { ActiveTrace, type WorkerTracing } from '../../../tracing/index';
import { mayCarryTraceContext } from '../../../tracing/dubbo';

function isHttp(protocol: string): boolean {
  return protocol === 'http1' || protocol === 'http2' || protocol === 'grpc';
}

export class TracingFilter implements StreamFilter {
  readonly phase = DecodePhase.BeforeRoute;
  private readonly read: (name: string) => string | undefined;
  private cur: FilterStream | null = null;

  constructor(private readonly t: WorkerTracing) {
    // One bound reader for every request (the stream being decoded is `cur`).
    this.read = (name) => (this.cur as FilterStream).header(name);
  }

  decode(s: FilterStream): FilterStatus {
    this.cur = s;
    const rpc = !isHttp(s.protocol);
    // Dubbo: the attachments are decoded only when the body holds a trace context key.
    const inc = rpc && !mayCarryTraceContext(s) ? undefined : extract(this.read, rpc);
    this.cur = null;
    const sampled = inc !== undefined && inc.sampled >= 0 ? inc.sampled === 1 : sampleByRatio(this.t.cfg.samplingRatio, inc?.traceId);
    if (!sampled) return FilterStatus.Continue;
    const method = s.method() ?? '';
    const service = s.service() ?? '';
    // Sampled requests only: the span's attributes and objects.
    const attrs: Record<string, string> = { protocol: s.protocol, 'peer.address': s.remoteAddress() };
    if (service !== '') attrs[rpc ? 'rpc.service' : 'http.host'] = service;
    if (method !== '') attrs[rpc ? 'rpc.method' : 'http.method'] = method;
    if (!rpc) attrs['http.target'] = s.header(':path') ?? '';
    const name = rpc ? (service !== '' ? `${service}/${method}` : s.protocol) : `${method} ${service}`;
    (s as ActiveStream).trace = ActiveTrace.start(this.t, name, inc, attrs);
    return FilterStatus.Continue;
  }

  log(s: FilterStream): void {
    const a = s as ActiveStream;
    const tr = a.trace;
    if (tr === null) return;
    a.trace = null;
    tr.end(a.responseCode, a.responseFlag);
  }
}
