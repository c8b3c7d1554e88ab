/**
 * The worker's tracer: lean spans (src/tracing/span.ts) queued by the worker's batcher and
 * exported a batch at a time through OpenTelemetry's OTLP/HTTP exporter (protobuf) or serializer
 * (JSON) to the collector (src/tracing/otlp.ts). Loaded with require() only when tracing is
 * enabled, so an Outrigger without tracing never loads it nor the @opentelemetry packages.
 *
 * Export runs in each worker: shipping spans to the main thread would serialize every span once
 * for postMessage and again for OTLP, and make the main thread (admin, config) do the encoding.
 * Batches are small at low sampling ratios, and one keep-alive connection per worker to the
 * collector costs little.
 */
import type { TracingConfig } from '../config/tracing';
import type { IncomingContext } from './context';
import { createExporter, exportIdentity, OtlpBatcher } from './otlp';
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
  const id = exportIdentity(cfg.serviceName);
  const batcher = new OtlpBatcher(
    createExporter(cfg.collector, cfg.encoding === 'json', id),
    id,
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
