/**
 * Tracing in a worker: the current settings (applyTracing, from the committed config) and the
 * per-request trace (ActiveTrace, only for sampled requests). OpenTelemetry itself is loaded
 * (src/tracing/tracer.ts) the first time tracing is enabled; without a `tracing` section this
 * module holds null and the stream pipeline adds nothing per request.
 */
import type { TracingConfig } from '../config/tracing';
import type { Headers } from '../http/headers';
import { FMT_B3, FMT_B3MULTI, type IncomingContext } from './context';
import type { OtelBinding } from './tracer';
import type { XCodec, XFrame } from '../protocol/types';
import { boltWithTraceparent } from './bolt';
import type { LightSpan } from './span';
import { dubboWithTraceparent } from './dubbo';

export interface WorkerTracing {
  readonly cfg: TracingConfig;
  readonly otel: OtelBinding;
  /** Propagation formats always written (FMT_* bits besides W3C). */
  readonly inject: number;
}

let current: WorkerTracing | null = null;
let otel: OtelBinding | null = null;
let otelKey = '';

/** The committed config's tracing (undefined: off). Rebuilds the exporter when its settings changed. */
export function applyTracing(cfg: TracingConfig | undefined): void {
  if (cfg === undefined) {
    current = null;
    return;
  }
  const key = JSON.stringify(cfg);
  if (otel === null || key !== otelKey) {
    const old = otel;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { loadOtel } = require('./tracer') as typeof import('./tracer');
    otel = loadOtel(cfg);
    otelKey = key;
    if (old !== null) void old.shutdown().catch(() => {});
  }
  let inject = 0;
  for (const p of cfg.propagators) inject |= p === 'b3' ? FMT_B3 : p === 'b3multi' ? FMT_B3MULTI : 0;
  current = { cfg, otel, inject };
}

export function workerTracing(): WorkerTracing | null {
  return current;
}

/** Flushes buffered spans (worker shutdown, tests). */
export async function flushTracing(): Promise<void> {
  if (otel !== null) await otel.flush();
}

/**
 * One sampled request's spans. By default (Envoy without the router's start_child_span) one
 * span per request and sidecar: it carries the upstream attempt's host and cluster as
 * attributes, and its own context goes upstream. With `start_child_span`, a CLIENT child span
 * per upstream attempt, whose context goes upstream instead. Made only for sampled requests.
 */
export class ActiveTrace {
  private client: LightSpan | null = null;
  private status = 0;
  /** An upstream attempt started (one-span mode: the span's context went upstream). */
  private attempted = false;
  constructor(
    private readonly t: WorkerTracing,
    readonly server: LightSpan,
    /** Formats the request carried (rewritten on the upstream request). */
    private readonly formats: number,
  ) {}

  static start(t: WorkerTracing, name: string, incoming: IncomingContext | undefined, attrs: Record<string, string>): ActiveTrace {
    return new ActiveTrace(t, t.otel.server(name, attrs, incoming), incoming === undefined ? 0 : incoming.format);
  }

  /**
   * An upstream attempt to `host` starts: with child spans, a client span (the previous
   * attempt's ends as failed); without, the host and cluster on the request's span. The
   * context of the span that stands for the attempt goes into the upstream request's headers
   * (HTTP; null for RPC frames).
   */
  attempt(host: string, cluster: string, headers: Headers | null): void {
    const o = this.t.otel;
    this.attempted = true;
    let up = this.server;
    // B3's parent span id: the server span for a child, else the server span's own parent.
    let parent = this.server.parentSpanId;
    if (this.t.cfg.startChildSpan) {
      if (this.client !== null) {
        this.client.setStatus({ code: o.ERROR, message: 'retried' });
        this.client.end();
      }
      up = this.client = o.client('upstream', { 'upstream.host': host, 'upstream.cluster': cluster }, this.server);
      parent = this.server.spanId;
    } else {
      this.server.setAttribute('upstream.host', host);
      this.server.setAttribute('upstream.cluster', cluster);
    }
    if (headers === null) return;
    headers['traceparent'] = up.traceparent();
    const fm = this.formats | this.t.inject;
    if ((fm & FMT_B3) !== 0) headers['b3'] = parent === '' ? `${up.traceId}-${up.spanId}-1` : `${up.traceId}-${up.spanId}-1-${parent}`;
    if ((fm & FMT_B3MULTI) !== 0) {
      headers['x-b3-traceid'] = up.traceId;
      headers['x-b3-spanid'] = up.spanId;
      if (parent === '') delete headers['x-b3-parentspanid'];
      else headers['x-b3-parentspanid'] = parent;
      headers['x-b3-sampled'] = '1';
      delete headers['x-b3-flags'];
    }
  }

  /** An RPC attempt: the client span, and a copy of the frame carrying it (Bolt header, Dubbo attachment), or null to send the frame as it is. */
  rpcAttempt(host: string, cluster: string, codec: XCodec, buf: Buffer, frame: XFrame, limit: number): { buf: Buffer; frame: XFrame } | null {
    this.attempt(host, cluster, null);
    const tp = this.clientTraceparent() as string;
    return codec.name === 'dubbo' ? dubboWithTraceparent(codec, buf, frame, tp, limit) : boltWithTraceparent(codec, buf, frame, tp, limit);
  }

  /** The context sent upstream by the current attempt (RPC adapters that write it into the frame); undefined before one. */
  clientTraceparent(): string | undefined {
    if (this.client !== null) return this.client.traceparent();
    return this.attempted && !this.t.cfg.startChildSpan ? this.server.traceparent() : undefined;
  }

  encode(status: number): void {
    this.status = status;
  }

  /**
   * The stream ended: both spans end with its status and flags. `rpcFailed`: an RPC stream's
   * outcome (its statuses are the protocol's); undefined for HTTP (no status, or 5xx, failed).
   */
  end(status: number | undefined, flags: string | undefined, rpcFailed?: boolean): void {
    const o = this.t.otel;
    const st = status ?? this.status;
    const failed = rpcFailed ?? (st >= 500 || st === 0);
    if (this.client !== null) {
      if (st > 0 || rpcFailed !== undefined) this.client.setAttribute('response.status_code', st);
      if (failed) this.client.setStatus({ code: o.ERROR });
      this.client.end();
      this.client = null;
    }
    if (st > 0 || rpcFailed !== undefined) this.server.setAttribute('response.status_code', st);
    if (flags !== undefined) this.server.setAttribute('response.flags', flags);
    if (failed) this.server.setStatus({ code: o.ERROR });
    this.server.end();
  }
}
