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

/** Hex digit values by char code (ids are validated hex before they reach a span). */
const HEX = new Uint8Array(128);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;

/** UTF-8 length of `s` (its length when ASCII, the common case). */
function utf8Len(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s);
  return s.length;
}

function varintLen(v: number): number {
  let n = 1;
  for (; v > 0x7f; v = Math.floor(v / 128)) n++;
  return n;
}

/** A growable protobuf writer; length-delimited fields reserve 5 bytes and are compacted at their end. */
class PbWriter {
  buf: Buffer;
  pos = 0;

  constructor(size = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

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

  /** The Unix time in nanoseconds of a performance.now() value, exactly (no double past 2^53): fixed64. */
  fixed64Time(now: number): void {
    const ms = origin + now;
    let sec = Math.floor(ms / 1000);
    let ns = Math.round((ms - sec * 1000) * 1e6);
    if (ns >= 1e9) {
      sec += 1;
      ns -= 1e9;
    }
    const secLo = sec % 0x10000;
    const secHi = Math.floor(sec / 0x10000);
    const a = secLo * 1e9; // < 2^46
    const b = secHi * 1e9; // < 2^53 for any 32-bit seconds
    // sec * 1e9 = a + b * 2^16: b's low 16 bits go to the low word, the rest to the high word.
    const low = (a % 0x100000000) + (b % 0x10000) * 0x10000 + ns;
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

  /** A string of `n` UTF-8 bytes (utf8Len), length-prefixed: ASCII by byte stores (short strings: cheaper than a native call). */
  string(s: string, n: number): void {
    this.varint(n);
    this.room(n);
    if (n === s.length) {
      const b = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
      this.pos = p;
    } else this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** Hex id as bytes (length-prefixed); ids are lower-case hex (span.ts, context.ts). */
  hex(s: string): void {
    const n = s.length >>> 1;
    this.varint(n);
    this.room(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i += 2) b[p++] = (HEX[s.charCodeAt(i)] << 4) | HEX[s.charCodeAt(i + 1)];
    this.pos = p;
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

/** AnyValue of an attribute: its encoded length (the strings' UTF-8 lengths known). */
function anyValueLen(v: string | number | boolean, strLen: number): number {
  if (typeof v === 'string') return 1 + varintLen(strLen) + strLen;
  if (typeof v === 'boolean') return 2;
  return isVarint(v) ? 1 + varintLen(v) : 9;
}

function isVarint(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
}

/** Repeated KeyValue `field`: lengths computed up front (no body moves for these small messages). */
function writeAttributes(w: PbWriter, attrs: SpanAttributes, field: number): void {
  for (const key in attrs) {
    const v = attrs[key];
    const kl = utf8Len(key);
    const sl = typeof v === 'string' ? utf8Len(v) : 0;
    const al = anyValueLen(v, sl);
    w.tag(field, 2);
    w.varint(1 + varintLen(kl) + kl + 1 + varintLen(al) + al);
    w.tag(1, 2);
    w.string(key, kl);
    w.tag(2, 2);
    w.varint(al);
    if (typeof v === 'string') {
      w.tag(1, 2);
      w.string(v, sl);
    } else if (typeof v === 'boolean') {
      w.tag(2, 0);
      w.varint(v ? 1 : 0);
    } else if (isVarint(v)) {
      w.tag(3, 0);
      w.varint(v);
    } else {
      w.tag(4, 1);
      w.double(v);
    }
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
  w.string(s.name, utf8Len(s.name));
  w.tag(6, 0);
  w.varint(s.kind);
  w.tag(7, 1);
  w.fixed64Time(s.startMs);
  w.tag(8, 1);
  w.fixed64Time(s.endMs);
  writeAttributes(w, s.attributes, 9);
  w.tag(10, 0);
  w.varint(0);
  w.tag(12, 0);
  w.varint(0);
  w.tag(14, 0);
  w.varint(0);
  w.tag(15, 2);
  const ml = s.statusMessage === '' ? 0 : utf8Len(s.statusMessage);
  w.varint((ml === 0 ? 0 : 1 + varintLen(ml) + ml) + 1 + varintLen(s.statusCode));
  if (ml !== 0) {
    w.tag(2, 2);
    w.string(s.statusMessage, ml);
  }
  w.tag(3, 0);
  w.varint(s.statusCode);
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
    w.string(id.scopeName, utf8Len(id.scopeName));
    w.finish(sc);
    this.scope = Buffer.from(w.buf.subarray(0, w.pos));
  }

  /** Spans encoded since the last take(). */
  count = 0;

  /**
   * Encodes an ended span into the pending batch (ScopeSpans.spans entries). Done when the span
   * ends, so that span objects die young instead of waiting for the batch in the heap.
   */
  add(s: LightSpan): void {
    const w = this.w;
    w.tag(2, 2);
    const m = w.begin();
    writeSpan(w, s);
    w.finish(m);
    this.count++;
  }

  /** The ExportTraceServiceRequest of the pending spans (a new Buffer: it goes to a socket), the batch emptied. */
  take(): Buffer {
    const w = this.w;
    const ssLen = this.scope.length + w.pos;
    const rsLen = this.resource.length + 1 + varintLen(ssLen) + ssLen;
    const hw = new PbWriter(16);
    hw.tag(1, 2);
    hw.varint(rsLen);
    hw.raw(this.resource);
    hw.tag(2, 2);
    hw.varint(ssLen);
    hw.raw(this.scope);
    // One buffer per batch: the request body.
    const out = Buffer.allocUnsafe(hw.pos + w.pos);
    hw.buf.copy(out, 0, 0, hw.pos);
    w.buf.copy(out, hw.pos, 0, w.pos);
    w.reset();
    this.count = 0;
    return out;
  }

  /** The request body for `spans` (after what add() queued, which it takes too). */
  encode(spans: readonly LightSpan[]): Buffer {
    for (const s of spans) this.add(s);
    return this.take();
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
 * The worker's span queue and OTLP/HTTP exporter. Protobuf: onEnd encodes the span into the
 * pending batch (the span object is garbage at once, not kept alive until the export); JSON:
 * onEnd queues it. A full batch is posted from setImmediate (not inside the request's end), the
 * rest after the batch interval. Past maxQueueSize, spans are dropped (a collector that cannot keep up must not grow
 * the proxy's memory). Export failures are dropped batches, never errors on the data path.
 */
export class OtlpBatcher implements SpanSink {
  /** JSON: the ended spans (encoded per batch). */
  private queue: LightSpan[] = [];
  /** Protobuf: full batches encoded, to be posted from setImmediate, and their span count. */
  private readonly ready: Buffer[] = [];
  private readySpans = 0;
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
    const pb = this.pb;
    const n = pb !== null ? pb.count + this.readySpans : this.queue.length;
    if (n >= this.batch.maxQueueSize) {
      this.dropped++;
      return;
    }
    if (pb !== null) {
      pb.add(span);
      if (pb.count >= this.batch.batchSize) {
        this.readySpans += pb.count;
        this.ready.push(pb.take());
      }
    } else this.queue.push(span);
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
    if (this.pb !== null) {
      // Encoded as the spans ended: full batches wait in `ready`, then the rest.
      for (const body of this.ready) this.post(body);
      this.ready.length = 0;
      this.readySpans = 0;
      if (this.pb.count > 0) this.post(this.pb.take());
      return;
    }
    const all = this.queue;
    if (all.length === 0) return;
    this.queue = [];
    const n = this.batch.batchSize;
    for (let i = 0; i < all.length; i += n) this.post(encodeJson(this.id, all.length <= n ? all : all.slice(i, i + n)));
  }

  private post(body: Buffer): void {
    const url = this.url;
    if (url === null || this.agent === null) return;
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
