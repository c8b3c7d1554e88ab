/**
 * The worker's tracer: lean spans (src/tracing/span.ts) queued and exported by the worker's OTLP
 * batcher (src/tracing/otlp.ts) to the collector over OTLP/HTTP, protobuf or JSON. Loaded with
 * require() only when tracing is enabled, so an Outrigger without tracing never loads it.
 *
 * Export runs in each worker: shipping spans to the main thread would serialize every span once
 * for postMessage and again for OTLP, and make the main thread (admin, config) do the encoding.
 * Batches are small at low sampling ratios, and one keep-alive connection per worker to the
 * collector costs little.
 */
import type { TracingConfig } from '../config/tracing';
import type { IncomingContext } from './context';
import { OtlpBatcher } from './otlp';
import { KIND_CLIENT, KIND_SERVER, LightSpan, STATUS_ERROR, type SpanAttributes } from './span';

/** What the request path needs of the tracer. */
export interface OtelBinding {
  /** A server span, child of the incoming context (or the root of a new trace). */
  server(name: string, attrs: SpanAttributes, incoming: IncomingContext | undefined): LightSpan;
  /** A client span, child of `parent`. */
  client(name: string, attrs: SpanAttributes, parent: LightSpan): LightSpan;
  readonly ERROR: number;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Builds the worker's tracer. */
export function loadOtel(cfg: TracingConfig): OtelBinding {
  const batcher = new OtlpBatcher(
    cfg.collector === '' ? null : new URL(cfg.collector),
    cfg.encoding === 'json',
    { serviceName: cfg.serviceName, scopeName: 'outrigger' },
    { batchSize: cfg.batchSize, batchIntervalMs: cfg.batchIntervalMs, maxQueueSize: cfg.maxQueueSize },
  );
  return {
    server: (name, attrs, c) => new LightSpan(batcher, name, KIND_SERVER, attrs, c),
    client: (name, attrs, parent) => new LightSpan(batcher, name, KIND_CLIENT, attrs, parent),
    ERROR: STATUS_ERROR,
    flush: () => batcher.flush(),
    shutdown: () => batcher.shutdown(),
  };
}
