/**
 * The spans of a sampled request, made without the OpenTelemetry Tracer: each is a plain object
 * with the fields the SDK's span processors and the OTLP serializers read (ReadableSpan), handed
 * to the BatchSpanProcessor when it ends. The Tracer's path (context lookups, the sampler, span
 * limits, attribute sanitizing, per-span clock objects) costs several times more and is made for
 * application code; here the names, kinds and attribute values are the proxy's own, all valid.
 * Ids come from a pool of random bytes refilled 4 KiB at a time (crypto), as hex strings.
 */
import { randomFillSync } from 'node:crypto';
import type { Attributes, AttributeValue, HrTime, Link, SpanContext, SpanStatus } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { Resource } from '@opentelemetry/resources';
import type { InstrumentationScope } from '@opentelemetry/core';

const POOL = Buffer.alloc(4096);
let at = POOL.length;

/** `n` random bytes as hex (never all zero: W3C forbids a zero trace or span id). */
function randomHex(n: number): string {
  for (;;) {
    if (at + n > POOL.length) {
      randomFillSync(POOL);
      at = 0;
    }
    const s = POOL.toString('hex', at, at + n);
    at += n;
    if (!/^0+$/.test(s)) return s;
  }
}

const origin = performance.timeOrigin;

function hrNow(): HrTime {
  const ms = origin + performance.now();
  const sec = Math.floor(ms / 1000);
  return [sec, Math.round((ms - sec * 1000) * 1e6)];
}

const NO_LINKS: Link[] = [];
const NO_EVENTS: TimedEvent[] = [];
/** TraceFlags.SAMPLED: only sampled requests make spans. */
const SAMPLED = 1;

/** What every span of this worker shares: where it goes, and its resource and scope. */
export interface SpanSink {
  readonly processor: SpanProcessor;
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
}

export class LightSpan implements ReadableSpan {
  readonly startTime: HrTime = hrNow();
  endTime: HrTime = [0, 0];
  duration: HrTime = [0, 0];
  status: SpanStatus = { code: 0 };
  ended = false;
  readonly links = NO_LINKS;
  readonly events = NO_EVENTS;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  private readonly ctx: SpanContext;
  readonly parentSpanContext: SpanContext | undefined;

  /** A span under `parent` (its trace), or the root of a new trace. */
  constructor(
    private readonly sink: SpanSink,
    readonly name: string,
    readonly kind: number,
    readonly attributes: Attributes,
    parent: SpanContext | undefined,
  ) {
    this.resource = sink.resource;
    this.instrumentationScope = sink.scope;
    this.parentSpanContext = parent;
    this.ctx = { traceId: parent !== undefined ? parent.traceId : randomHex(16), spanId: randomHex(8), traceFlags: SAMPLED, isRemote: false };
  }

  spanContext(): SpanContext {
    return this.ctx;
  }

  setAttribute(key: string, value: AttributeValue): void {
    if (!this.ended) this.attributes[key] = value;
  }

  setStatus(status: SpanStatus): void {
    if (!this.ended) this.status = status;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    const e = hrNow();
    this.endTime = e;
    let s = e[0] - this.startTime[0];
    let ns = e[1] - this.startTime[1];
    if (ns < 0) {
      s -= 1;
      ns += 1e9;
    }
    this.duration = [s, ns];
    this.sink.processor.onEnd(this);
  }
}
