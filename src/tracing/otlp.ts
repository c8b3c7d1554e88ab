/**
 * OTLP trace export of a worker's lean spans (src/tracing/span.ts) through OpenTelemetry JS: a
 * batcher (a queue of ended spans, sent when a batch is full or the batch interval passed, bounded
 * by the queue size) that hands them, a batch at a time and off the request path, to a SpanExporter:
 * OpenTelemetry's OTLP/HTTP export delegate for protobuf, as OTLPTraceExporter builds it (its retries,
 * timeouts and OTEL_EXPORTER_OTLP_* settings) with Outrigger's encoder (./otlp-proto.ts), which
 * takes the lean spans as they are; or OTLP JSON from `@opentelemetry/otlp-transformer`'s
 * JsonTraceSerializer posted by node:http, which reads OpenTelemetry's ReadableSpan shape (adapters
 * made at export, living for one export; also for protobuf batches the encoder does not cover).
 * The request path makes no SDK object.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { HrTime, SpanContext } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { encodeLightSpans, encodeSpans, hrTimeOf } from './otlp-proto';
import { LightSpan, type SpanSink } from './span';

/* eslint-disable @typescript-eslint/no-require-imports */

export { hrTimeOf };

/** TraceFlags.SAMPLED: only sampled requests make spans. */
const SAMPLED = 1;

/** The resource and scope every span of a worker is exported under. */
export interface ExportIdentity {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
}

/** The resource of a worker's spans (service.name, telemetry.sdk.name). */
export function exportIdentity(serviceName: string): ExportIdentity {
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  return { resource: resourceFromAttributes({ 'service.name': serviceName, 'telemetry.sdk.name': 'outrigger' }), scope: { name: 'outrigger' } };
}

const NO_LINKS: ReadableSpan['links'] = [];
const NO_EVENTS: ReadableSpan['events'] = [];

/**
 * An ended lean span as a ReadableSpan (export time only, one per exported span; one class, so
 * the serializers' property reads stay monomorphic). Kinds: the lean span holds OTLP's value
 * (SERVER 2, CLIENT 3), the API's is one less; status codes agree.
 */
class ExportSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: number;
  private readonly ctx: SpanContext;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: { code: number; message?: string };
  readonly attributes: LightSpan['attributes'];
  readonly links = NO_LINKS;
  readonly events = NO_EVENTS;
  readonly ended = true;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;

  constructor(s: LightSpan, id: ExportIdentity) {
    this.name = s.name;
    this.kind = s.kind - 1;
    this.ctx = { traceId: s.traceId, spanId: s.spanId, traceFlags: SAMPLED };
    this.parentSpanContext = s.parentSpanId === '' ? undefined : { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: SAMPLED, isRemote: s.parentRemote };
    this.startTime = hrTimeOf(s.startMs);
    this.endTime = hrTimeOf(s.endMs);
    const d = s.endMs - s.startMs;
    const ds = Math.floor(d / 1000);
    this.duration = [ds, Math.round((d - ds * 1000) * 1e6)];
    this.status = s.statusMessage !== '' ? { code: s.statusCode, message: s.statusMessage } : { code: s.statusCode, message: undefined };
    this.attributes = s.attributes;
    this.resource = id.resource;
    this.instrumentationScope = id.scope;
  }

  spanContext(): SpanContext {
    return this.ctx;
  }
}

/** An ended lean span as a ReadableSpan for OpenTelemetry's serializers and exporters. */
export function readableOf(s: LightSpan, id: ExportIdentity): ReadableSpan {
  return new ExportSpan(s, id);
}

interface ExportResult {
  code: number;
  error?: Error;
}

/** OTLP JSON over HTTP (the proto exporter's JSON sibling is not installed). */
class JsonExporter implements SpanExporter {
  private readonly agent: http.Agent;
  private readonly pending = new Set<Promise<void>>();
  constructor(private readonly url: URL) {
    this.agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 2 }) : new http.Agent({ keepAlive: true, maxSockets: 2 });
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
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

/** Marks an exporter that takes the worker's lean spans as they are (OtlpBatcher then makes no adapters). */
const LEAN = Symbol('lean spans');

interface MaybeLean {
  [LEAN]?: true;
}

/**
 * The exporter for a collector URL: OTLPTraceExporter (protobuf) or OTLP JSON; null without a
 * collector. With the worker's identity, the protobuf exporter takes lean spans (src/tracing/span.ts)
 * and encodes them directly (encodeLightSpans: the bytes their ReadableSpan adapters give).
 */
export function createExporter(collector: string, json: boolean, id?: ExportIdentity): SpanExporter | null {
  if (collector === '') return null;
  if (json) return new JsonExporter(new URL(collector));
  // OTLPTraceExporter's parts (HTTP transport, retries, OTEL_EXPORTER_OTLP_* settings, queue bound)
  // with Outrigger's encoder (src/tracing/otlp-proto.ts) in place of its serializer.
  const { OTLPExporterBase } = require('@opentelemetry/otlp-exporter-base') as typeof import('@opentelemetry/otlp-exporter-base');
  const nodeHttp = require('@opentelemetry/otlp-exporter-base/node-http') as typeof import('@opentelemetry/otlp-exporter-base/build/src/index-node-http');
  const { ProtobufTraceSerializer, TraceExporterMetricsHelper } = require('@opentelemetry/otlp-transformer') as typeof import('@opentelemetry/otlp-transformer');
  const options = nodeHttp.convertLegacyHttpOptions({ url: collector }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });
  const encode = (items: readonly (ReadableSpan | LightSpan)[]): Uint8Array => {
    if (id === undefined || items.length === 0 || !(items[0] instanceof LightSpan)) return encodeSpans(items as ReadableSpan[]);
    const lean = items as LightSpan[];
    return encodeLightSpans(lean, id.resource, id.scope) ?? encodeSpans(lean.map((s) => readableOf(s, id)));
  };
  const serializer = { serializeRequest: encode, deserializeResponse: ProtobufTraceSerializer.deserializeResponse };
  const ex: SpanExporter & MaybeLean = new OTLPExporterBase(nodeHttp.createOtlpHttpExportDelegate(options, serializer, 'otlp_http_span_exporter', TraceExporterMetricsHelper, undefined));
  if (id !== undefined) ex[LEAN] = true;
  return ex;
}

export interface BatchSettings {
  readonly batchSize: number;
  readonly batchIntervalMs: number;
  readonly maxQueueSize: number;
}

/**
 * The worker's span queue. onEnd queues the ended lean span; a full batch is exported from
 * setImmediate (not inside the request's end), the rest after the batch interval. Past
 * maxQueueSize, spans are dropped and counted (a collector that cannot keep up must not grow the
 * proxy's memory). Export failures are dropped batches, never errors on the data path.
 */
export class OtlpBatcher implements SpanSink {
  private queue: LightSpan[] = [];
  /** The exporter takes lean spans (createExporter with an identity): no adapters at export. */
  private readonly lean: boolean;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly pending = new Set<Promise<void>>();
  /** Spans dropped because the queue was full. */
  dropped = 0;
  /** Spans of batches the exporter reported failed (after its own retries; also past its concurrency limit). */
  failed = 0;

  constructor(
    /** Where batches go; null: spans are dropped (propagation only). */
    private readonly exporter: SpanExporter | null,
    private readonly id: ExportIdentity,
    private readonly batch: BatchSettings,
  ) {
    this.lean = (exporter as (SpanExporter & MaybeLean) | null)?.[LEAN] === true;
  }

  onEnd(span: LightSpan): void {
    if (this.exporter === null) return;
    const n = this.queue.length;
    if (n >= this.batch.maxQueueSize) {
      this.dropped++;
      return;
    }
    this.queue.push(span);
    if (n + 1 >= this.batch.batchSize) {
      this.immediate ??= setImmediate(() => {
        this.immediate = null;
        this.exportQueued();
      });
    } else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.exportQueued();
      }, this.batch.batchIntervalMs);
      this.timer.unref();
    }
  }

  private exportQueued(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const exporter = this.exporter;
    const all = this.queue;
    if (exporter === null || all.length === 0) return;
    this.queue = [];
    const n = this.batch.batchSize;
    for (let i = 0; i < all.length; i += n) {
      const part = i === 0 && all.length <= n ? all : all.slice(i, i + n);
      // Export time, a batch at a time: the lean spans themselves for the protobuf exporter (it
      // encodes them), else the ReadableSpan adapters the serializers read.
      const batch = this.lean ? (part as unknown as ReadableSpan[]) : part.map((s) => readableOf(s, this.id));
      const p = new Promise<void>((resolve) => {
        try {
          exporter.export(batch, (r) => {
            if (r.code !== 0) this.failed += batch.length;
            resolve();
          });
        } catch {
          this.failed += batch.length;
          resolve();
        }
      });
      this.pending.add(p);
      void p.then(() => this.pending.delete(p));
    }
  }

  /** Exports what is queued and waits for the exports in flight. */
  async flush(): Promise<void> {
    if (this.immediate !== null) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
    this.exportQueued();
    await Promise.all([...this.pending]);
    await this.exporter?.forceFlush?.();
  }

  async shutdown(): Promise<void> {
    await this.flush();
    await this.exporter?.shutdown();
  }
}
