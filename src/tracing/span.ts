/**
 * The spans of a sampled request: lean records (ids as hex strings, times as performance.now()
 * milliseconds, the proxy's few attributes in one plain object), handed to the worker's OTLP
 * batcher (src/tracing/otlp.ts) when they end and turned into OpenTelemetry's ReadableSpan shape
 * only there, a batch at a time, for its OTLP exporter. No OpenTelemetry SDK object per span: its ReadableSpan shape costs an HrTime pair per time, a
 * SpanContext, a status object and the SDK's processor path on every sampled request.
 * Ids come from a pool of random bytes refilled 4 KiB at a time (crypto), as hex strings.
 */
import { randomFillSync } from 'node:crypto';

const POOL = Buffer.alloc(4096);
let at = POOL.length;

/** `n` random bytes as hex (never all zero: W3C forbids a zero trace or span id). */
function randomHex(n: number): string {
  for (;;) {
    if (at + n > POOL.length) {
      randomFillSync(POOL);
      at = 0;
    }
    let zero = true;
    for (let i = at; i < at + n; i++) {
      if (POOL[i] !== 0) {
        zero = false;
        break;
      }
    }
    // One string per id: it goes into the traceparent header and the export.
    const s = zero ? '' : POOL.toString('hex', at, at + n);
    at += n;
    if (!zero) return s;
  }
}

/** OTLP SpanKind values (the proto's, not the API's: SERVER 2, CLIENT 3). */
export const KIND_SERVER = 2;
export const KIND_CLIENT = 3;
/** OTLP status code ERROR. */
export const STATUS_ERROR = 2;

export type SpanAttributes = Record<string, string | number | boolean>;

/** Where ended spans go (the worker's batcher). */
export interface SpanSink {
  onEnd(span: LightSpan): void;
}

/** The context of a span's parent when it came from another process (a request header). */
export interface RemoteParent {
  readonly traceId: string;
  readonly spanId: string;
}

export class LightSpan {
  /** performance.now() at start and end (ms). */
  readonly startMs = performance.now();
  endMs = 0;
  statusCode = 0;
  statusMessage = '';
  ended = false;
  readonly traceId: string;
  readonly spanId: string;
  /** The parent's span id, '' for the root of a trace. */
  readonly parentSpanId: string;
  /** The parent is in another process (OTLP span flags: CONTEXT_IS_REMOTE). */
  readonly parentRemote: boolean;

  /** A span under `parent` (a span of this worker or a remote context), or the root of a new trace. */
  constructor(
    private readonly sink: SpanSink,
    readonly name: string,
    /** OTLP SpanKind (KIND_*). */
    readonly kind: number,
    readonly attributes: SpanAttributes,
    parent: LightSpan | RemoteParent | undefined,
  ) {
    if (parent === undefined) {
      this.traceId = randomHex(16);
      this.parentSpanId = '';
      this.parentRemote = false;
    } else {
      this.traceId = parent.traceId;
      this.parentSpanId = parent.spanId;
      this.parentRemote = !(parent instanceof LightSpan);
    }
    this.spanId = randomHex(8);
  }

  /** The W3C traceparent of this span (sampled). */
  traceparent(): string {
    return `00-${this.traceId}-${this.spanId}-01`;
  }

  /** Compatibility with code that reads an OpenTelemetry-like span context. */
  spanContext(): { traceId: string; spanId: string } {
    return this;
  }

  setAttribute(key: string, value: string | number | boolean): void {
    if (!this.ended) this.attributes[key] = value;
  }

  setStatus(status: { code: number; message?: string }): void {
    if (this.ended) return;
    this.statusCode = status.code;
    this.statusMessage = status.message ?? '';
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.endMs = performance.now();
    this.sink.onEnd(this);
  }
}
