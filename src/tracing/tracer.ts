/**
 * The worker's tracer: OpenTelemetry's SDK (BasicTracerProvider, BatchSpanProcessor) with an
 * OTLP/HTTP exporter (protobuf: @opentelemetry/exporter-trace-otlp-proto; JSON: the OTLP JSON
 * serializer posted by node:http). Loaded with require() only when tracing is enabled, so an
 * Outrigger without tracing never loads these modules.
 *
 * Export runs in each worker: a sampled span is already an SDK object in the worker; shipping it
 * to the main thread would serialize every span once for postMessage and again for OTLP, and
 * make the main thread (admin, config) do the encoding. Batches are small at low sampling
 * ratios, and one keep-alive connection per worker to the collector costs little.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Attributes, SpanContext } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../config/tracing';
import type { IncomingContext } from './context';
import { LightSpan, type SpanSink } from './span';

/* eslint-disable @typescript-eslint/no-require-imports */

/** What the request path needs of OpenTelemetry (bound once the modules are loaded). */
export interface OtelBinding {
  /** A server span, child of the incoming context (or the root of a new trace). */
  server(name: string, attrs: Attributes, incoming: IncomingContext | undefined): LightSpan;
  /** A client span, child of `parent`. */
  client(name: string, attrs: Attributes, parent: LightSpan): LightSpan;
  readonly ERROR: number;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** OTLP JSON over HTTP (the proto exporter's JSON sibling is not installed). */
class JsonExporter implements SpanExporter {
  private readonly agent: http.Agent;
  private readonly pending = new Set<Promise<void>>();
  constructor(private readonly url: URL) {
    this.agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 2 }) : new http.Agent({ keepAlive: true, maxSockets: 2 });
  }

  export(spans: ReadableSpan[], done: (r: { code: number; error?: Error }) => void): void {
    const { JsonTraceSerializer } = require('@opentelemetry/otlp-transformer') as typeof import('@opentelemetry/otlp-transformer');
    const body = JsonTraceSerializer.serializeRequest(spans);
    if (body === undefined) return done({ code: 1, error: new Error('OTLP JSON serialization failed') });
    const mod = this.url.protocol === 'https:' ? https : http;
    const p = new Promise<void>((resolve) => {
      const req = mod.request(this.url, { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json', 'content-length': body.length }, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
          done(ok ? { code: 0 } : { code: 1, error: new Error(`collector answered ${res.statusCode}`) });
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('collector timeout')));
      req.on('error', (e) => {
        done({ code: 1, error: e });
        resolve();
      });
      req.end(body);
    });
    this.pending.add(p);
    void p.then(() => this.pending.delete(p));
  }

  async forceFlush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.agent.destroy();
  }
}

/** A span exporter that drops spans (tracing enabled without a collector: propagation only). */
const dropExporter: SpanExporter = {
  export: (_s, done) => done({ code: 0 }),
  shutdown: async () => {},
};

/** Loads OpenTelemetry and builds the worker's tracer. */
export function loadOtel(cfg: TracingConfig): OtelBinding {
  const api = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const sdk = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  let exporter: SpanExporter = dropExporter;
  if (cfg.collector !== '') {
    if (cfg.encoding === 'json') exporter = new JsonExporter(new URL(cfg.collector));
    else {
      const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto');
      exporter = new OTLPTraceExporter({ url: cfg.collector });
    }
  }
  const processor = new sdk.BatchSpanProcessor(exporter, {
    maxExportBatchSize: cfg.batchSize,
    maxQueueSize: cfg.maxQueueSize,
    scheduledDelayMillis: cfg.batchIntervalMs,
  });
  const resource = resourceFromAttributes({ 'service.name': cfg.serviceName, 'telemetry.sdk.name': 'outrigger' });
  const provider = new sdk.BasicTracerProvider({
    // Sampling is decided before a span is made (no span object for an unsampled request).
    sampler: new sdk.AlwaysOnSampler(),
    resource,
    spanProcessors: [processor],
  });
  // Spans go straight to the processor (src/tracing/span.ts); the provider owns flush and shutdown.
  const sink: SpanSink = { processor, resource, scope: { name: 'outrigger' } };
  return {
    server(name, attrs, c) {
      const parent: SpanContext | undefined = c === undefined ? undefined : { traceId: c.traceId, spanId: c.spanId, traceFlags: api.TraceFlags.SAMPLED, isRemote: true };
      return new LightSpan(sink, name, api.SpanKind.SERVER, attrs, parent);
    },
    client: (name, attrs, parent) => new LightSpan(sink, name, api.SpanKind.CLIENT, attrs, parent.spanContext()),
    ERROR: api.SpanStatusCode.ERROR,
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
