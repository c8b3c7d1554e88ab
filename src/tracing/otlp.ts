/**
 * OTLP trace export of a worker's spans: a batcher (a queue of ended spans, sent when a batch is
 * full or the batch interval passed, bounded by the queue size) and the two OTLP/HTTP encodings
 * of an ExportTraceServiceRequest, protobuf (opentelemetry/proto/collector/trace/v1) and OTLP
 * JSON, written straight from the lean spans (src/tracing/span.ts): one resource (service.name,
 * telemetry.sdk.name) and one scope ("outrigger"), encoded once; per span only its own fields.
 * The protobuf encoding writes the fields in the order OpenTelemetry JS's serializer does (the
 * unit test compares the bytes), so collectors see what they saw from the SDK exporter.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { LightSpan, SpanAttributes, SpanSink } from './span';

const origin = performance.timeOrigin;

/** Unix time in [seconds, nanoseconds] of a performance.now() value (ms). */
export function hrTimeOf(now: number): [number, number] {
  const ms = origin + now;
  const sec = Math.floor(ms / 1000);
  const ns = Math.round((ms - sec * 1000) * 1e6);
  return ns >= 1e9 ? [sec + 1, ns - 1e9] : [sec, ns];
}

/** A growable protobuf writer; length-delimited fields reserve 5 bytes and are compacted at their end. */
class PbWriter {
  buf = Buffer.allocUnsafe(64 * 1024);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    // Grows rarely (a larger batch than ever before): kept for the next batches.
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }

  varint(v: number): void {
    this.room(10);
    const b = this.buf;
    while (v > 0x7f) {
      b[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    b[this.pos++] = v;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  fixed32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** A Unix time in nanoseconds from [seconds, nanoseconds], exactly (no double past 2^53). */
  fixed64Time(t: [number, number]): void {
    const secLo = t[0] % 0x10000;
    const secHi = Math.floor(t[0] / 0x10000);
    const a = secLo * 1e9; // < 2^46
    const b = secHi * 1e9; // < 2^53 for any 32-bit seconds
    // b * 2^16 = (b >>> 16 ... ) split into words: low word gets (b mod 2^16) * 2^16.
    const low = (a % 0x100000000) + (b % 0x10000) * 0x10000 + t[1];
    const high = Math.floor(a / 0x100000000) + Math.floor(b / 0x10000) + Math.floor(low / 0x100000000);
    this.room(8);
    this.buf.writeUInt32LE(low % 0x100000000, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  double(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  string(s: string): void {
    const n = Buffer.byteLength(s);
    this.varint(n);
    this.room(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** Hex id as bytes (length-prefixed). */
  hex(s: string): void {
    const n = s.length >>> 1;
    this.varint(n);
    this.room(n);
    this.pos += this.buf.write(s, this.pos, 'hex');
  }

  raw(b: Buffer): void {
    this.room(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }

  /** Starts a length-delimited value (its tag already written): returns its mark. */
  begin(): number {
    this.room(5);
    const m = this.pos;
    this.pos += 5;
    return m;
  }

  /** Ends the value begun at `m`: its length as a minimal varint, the body moved up to it. */
  finish(m: number): void {
    const len = this.pos - m - 5;
    let n = 1;
    for (let v = len; v > 0x7f; v = Math.floor(v / 128)) n++;
    if (n < 5) this.buf.copyWithin(m + n, m + 5, this.pos);
    let v = len;
    let p = m;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[p] = v;
    this.pos -= 5 - n;
  }
}

function writeAnyValue(w: PbWriter, v: string | number | boolean): void {
  if (typeof v === 'string') {
    w.tag(1, 2);
    w.string(v);
  } else if (typeof v === 'boolean') {
    w.tag(2, 0);
    w.varint(v ? 1 : 0);
  } else if (Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
    w.tag(3, 0);
    w.varint(v);
  } else {
    w.tag(4, 1);
    w.double(v);
  }
}

function writeAttributes(w: PbWriter, attrs: SpanAttributes, field: number): void {
  for (const key in attrs) {
    w.tag(field, 2);
    const kv = w.begin();
    w.tag(1, 2);
    w.string(key);
    w.tag(2, 2);
    const av = w.begin();
    writeAnyValue(w, attrs[key]);
    w.finish(av);
    w.finish(kv);
  }
}

/** OTLP span flags: sampled, and whether the parent is remote (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE / IS_REMOTE). */
function spanFlags(s: LightSpan): number {
  return s.parentRemote ? 0x301 : 0x101;
}

function writeSpan(w: PbWriter, s: LightSpan): void {
  w.tag(1, 2);
  w.hex(s.traceId);
  w.tag(2, 2);
  w.hex(s.spanId);
  if (s.parentSpanId !== '') {
    w.tag(4, 2);
    w.hex(s.parentSpanId);
  }
  w.tag(5, 2);
  w.string(s.name);
  w.tag(6, 0);
  w.varint(s.kind);
  w.tag(7, 1);
  w.fixed64Time(hrTimeOf(s.startMs));
  w.tag(8, 1);
  w.fixed64Time(hrTimeOf(s.endMs));
  writeAttributes(w, s.attributes, 9);
  w.tag(10, 0);
  w.varint(0);
  w.tag(12, 0);
  w.varint(0);
  w.tag(14, 0);
  w.varint(0);
  w.tag(15, 2);
  const st = w.begin();
  if (s.statusMessage !== '') {
    w.tag(2, 2);
    w.string(s.statusMessage);
  }
  w.tag(3, 0);
  w.varint(s.statusCode);
  w.finish(st);
  w.tag(16, 5);
  w.fixed32(spanFlags(s));
}

/** The resource and scope of every span of a worker. */
export interface ExportIdentity {
  readonly serviceName: string;
  readonly scopeName: string;
}

function resourceAttributes(id: ExportIdentity): SpanAttributes {
  return { 'service.name': id.serviceName, 'telemetry.sdk.name': 'outrigger' };
}

/** Encodes ExportTraceServiceRequests (protobuf) for one resource and scope. */
export class ProtobufTraceEncoder {
  private readonly w = new PbWriter();
  /** ResourceSpans.resource (field 1) and the ScopeSpans.scope, encoded once. */
  private readonly resource: Buffer;
  private readonly scope: Buffer;

  constructor(id: ExportIdentity) {
    const w = new PbWriter();
    w.tag(1, 2);
    const r = w.begin();
    writeAttributes(w, resourceAttributes(id), 1);
    w.tag(2, 0);
    w.varint(0);
    w.finish(r);
    this.resource = Buffer.from(w.buf.subarray(0, w.pos));
    w.reset();
    w.tag(1, 2);
    const sc = w.begin();
    w.tag(1, 2);
    w.string(id.scopeName);
    w.finish(sc);
    this.scope = Buffer.from(w.buf.subarray(0, w.pos));
  }

  /** The request body for `spans` (a new Buffer: it is written to a socket while the next batch is encoded). */
  encode(spans: readonly LightSpan[]): Buffer {
    const w = this.w;
    w.reset();
    w.tag(1, 2);
    const rs = w.begin();
    w.raw(this.resource);
    w.tag(2, 2);
    const ss = w.begin();
    w.raw(this.scope);
    for (const s of spans) {
      w.tag(2, 2);
      const m = w.begin();
      writeSpan(w, s);
      w.finish(m);
    }
    w.finish(ss);
    w.finish(rs);
    return Buffer.from(w.buf.subarray(0, w.pos));
  }
}

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number;
  doubleValue?: number;
}

function jsonValue(v: string | number | boolean): JsonAnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
}

function jsonAttributes(a: SpanAttributes): { key: string; value: JsonAnyValue }[] {
  const out: { key: string; value: JsonAnyValue }[] = [];
  for (const key in a) out.push({ key, value: jsonValue(a[key]) });
  return out;
}

function jsonTime(now: number): string {
  const [s, ns] = hrTimeOf(now);
  return (BigInt(s) * 1_000_000_000n + BigInt(ns)).toString();
}

/** Encodes ExportTraceServiceRequests as OTLP JSON (hex ids, times as decimal strings). */
export function encodeJson(id: ExportIdentity, spans: readonly LightSpan[]): Buffer {
  const doc = {
    resourceSpans: [
      {
        resource: { attributes: jsonAttributes(resourceAttributes(id)), droppedAttributesCount: 0 },
        scopeSpans: [
          {
            scope: { name: id.scopeName },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId !== '' ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name,
              kind: s.kind,
              startTimeUnixNano: jsonTime(s.startMs),
              endTimeUnixNano: jsonTime(s.endMs),
              attributes: jsonAttributes(s.attributes),
              droppedAttributesCount: 0,
              events: [],
              droppedEventsCount: 0,
              status: s.statusMessage !== '' ? { code: s.statusCode, message: s.statusMessage } : { code: s.statusCode },
              links: [],
              droppedLinksCount: 0,
              flags: spanFlags(s),
            })),
          },
        ],
      },
    ],
  };
  return Buffer.from(JSON.stringify(doc));
}

export interface BatchSettings {
  readonly batchSize: number;
  readonly batchIntervalMs: number;
  readonly maxQueueSize: number;
}

/**
 * The worker's span queue and OTLP/HTTP exporter. onEnd only queues (no work on the request's
 * path); a full batch is encoded and posted from setImmediate, the rest after the batch
 * interval. Past maxQueueSize, spans are dropped (a collector that cannot keep up must not grow
 * the proxy's memory). Export failures are dropped batches, never errors on the data path.
 */
export class OtlpBatcher implements SpanSink {
  private queue: LightSpan[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly pending = new Set<Promise<void>>();
  private readonly agent: http.Agent | null;
  private readonly pb: ProtobufTraceEncoder | null;
  dropped = 0;

  constructor(
    /** The collector's traces URL; null: spans are dropped (propagation only). */
    private readonly url: URL | null,
    private readonly json: boolean,
    private readonly id: ExportIdentity,
    private readonly batch: BatchSettings,
  ) {
    this.agent = url === null ? null : url.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 2 }) : new http.Agent({ keepAlive: true, maxSockets: 2 });
    this.pb = json ? null : new ProtobufTraceEncoder(id);
  }

  onEnd(span: LightSpan): void {
    if (this.url === null) return;
    const q = this.queue;
    if (q.length >= this.batch.maxQueueSize) {
      this.dropped++;
      return;
    }
    q.push(span);
    if (q.length >= this.batch.batchSize) {
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
    const all = this.queue;
    if (all.length === 0) return;
    this.queue = [];
    const n = this.batch.batchSize;
    for (let i = 0; i < all.length; i += n) this.post(all.length <= n ? all : all.slice(i, i + n));
  }

  private post(spans: readonly LightSpan[]): void {
    const url = this.url;
    if (url === null || this.agent === null) return;
    const body = this.pb !== null ? this.pb.encode(spans) : encodeJson(this.id, spans);
    const mod = url.protocol === 'https:' ? https : http;
    const ct = this.json ? 'application/json' : 'application/x-protobuf';
    const p = new Promise<void>((resolve) => {
      const req = mod.request(url, { method: 'POST', agent: this.agent ?? undefined, headers: { 'content-type': ct, 'content-length': body.length }, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy(new Error('collector timeout')));
      req.on('error', () => resolve());
      req.end(body);
    });
    this.pending.add(p);
    void p.then(() => this.pending.delete(p));
  }

  /** Sends what is queued and waits for the exports in flight. */
  async flush(): Promise<void> {
    if (this.immediate !== null) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
    this.exportQueued();
    await Promise.all([...this.pending]);
  }

  async shutdown(): Promise<void> {
    await this.flush();
    this.agent?.destroy();
  }
}
