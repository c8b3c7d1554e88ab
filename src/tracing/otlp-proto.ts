/**
 * OTLP protobuf encoding of a batch of the worker's export spans (ExportTraceServiceRequest), in
 * one pass into a reused buffer: the bytes OpenTelemetry's ProtobufTraceSerializer writes for the
 * same spans (same fields, order and omissions; the test compares them), without its size-estimate
 * pass, its per-id Uint8Arrays and its per-character writes. The export runs on the data plane's
 * thread (a timer), ~1 per second with up to a batch of spans: OpenTelemetry's serializer took
 * ~6-10 µs per span warm, ~100 µs cold (bench/filters-export.ts).
 *
 * Batches it does not cover (not one resource and scope, events, links, trace state, attribute
 * values other than strings, booleans, doubles and integers in 0..2^32-1) go to OpenTelemetry's
 * serializer: Outrigger's spans never have them.
 *
 * Two inputs: OpenTelemetry's ReadableSpan shape (encodeSpans), and the worker's lean spans
 * themselves (encodeLightSpans, what the batcher hands the protobuf exporter: no adapter object,
 * HrTime pair, context or status object per span at export time). Both write the same bytes for
 * the same span. ASCII texts up to 64 bytes (attribute keys and values, names: they repeat from
 * span to span) are kept encoded, length first, in a bounded table: a lookup and a copy instead
 * of two passes over the characters.
 */
import type { HrTime } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { LightSpan } from './span';

/* eslint-disable @typescript-eslint/no-require-imports */

let buf = Buffer.allocUnsafe(16384);
let pos = 0;

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  // Grows for a batch larger than any before (the buffer is kept for the next export).
  const b = Buffer.allocUnsafe(Math.max(buf.length * 2, pos + n));
  buf.copy(b, 0, 0, pos);
  buf = b;
}

function varint(v: number): void {
  ensure(5);
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
}

function tag(field: number, wire: number): void {
  varint((field << 3) | wire);
}

/** Reserves one byte for a length; finish() writes it (moving the body when it needs more). */
function start(): number {
  ensure(1);
  return pos++;
}

function finish(at: number): void {
  const len = pos - at - 1;
  let n = 1;
  for (let v = len; v > 0x7f; v >>>= 7) n++;
  if (n > 1) {
    ensure(n - 1);
    buf.copyWithin(at + n, at + 1, pos);
    pos += n - 1;
  }
  let v = len;
  let p = at;
  while (v > 0x7f) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p] = v;
}

/** Encoded ASCII texts (varint length + bytes) by text; cleared when full. */
const texts = new Map<string, Uint8Array>();
const MAX_TEXTS = 1024;
const MAX_TEXT_LEN = 64;

function str(s: string): void {
  const e = texts.get(s);
  if (e !== undefined) {
    ensure(e.length);
    // One typed-array copy: a byte loop over the module's buf and pos costs more (context slots).
    buf.set(e, pos);
    pos += e.length;
    return;
  }
  const n = s.length;
  let ascii = true;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) > 127) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    const from = pos;
    varint(n);
    ensure(n);
    if (n > MAX_TEXT_LEN) {
      pos += buf.write(s, pos, n, 'latin1');
      return;
    }
    // Short texts (names, addresses): a loop is cheaper than Buffer's native write call.
    for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
    if (texts.size >= MAX_TEXTS) texts.clear();
    // One small copy per distinct text, kept for the next spans and exports.
    texts.set(s, new Uint8Array(buf.subarray(from, pos)));
    return;
  }
  const len = Buffer.byteLength(s, 'utf8');
  varint(len);
  ensure(len);
  pos += buf.write(s, pos, len, 'utf8');
}

/** A hex id as its bytes (length-delimited). */
function hexId(field: number, hex: string): void {
  tag(field, 2);
  const n = hex.length >>> 1;
  varint(n);
  ensure(n);
  // Locals in the loop: the module's buf and pos are context slots (a load and a store per byte).
  const b = buf;
  let p = pos;
  for (let i = 0; i < n; i++) b[p++] = (nibble(hex.charCodeAt(2 * i)) << 4) | nibble(hex.charCodeAt(2 * i + 1));
  pos = p;
}

/** A hex digit's value (ids are lower-case hex; upper case read as OpenTelemetry reads it). */
function nibble(c: number): number {
  return c <= 57 ? c - 48 : c >= 97 ? c - 87 : c - 55;
}

const origin = performance.timeOrigin;

/** Unix time in [seconds, nanoseconds] of a performance.now() value (ms). */
export function hrTimeOf(now: number): HrTime {
  const ms = origin + now;
  const sec = Math.floor(ms / 1000);
  const ns = Math.round((ms - sec * 1000) * 1e6);
  return ns >= 1e9 ? [sec + 1, ns - 1e9] : [sec, ns];
}

/** x mod m for a non-negative integer x below 2^53 and a power of two m (exact; `%` on doubles is a library call). */
function rem(x: number, m: number): number {
  return x - Math.floor(x / m) * m;
}

/** An HrTime as fixed64 nanoseconds (exact: no product above 2^53). */
function hrTime(field: number, t: readonly [number, number]): void {
  tag(field, 1);
  const sec = t[0];
  const lo = rem(sec, 0x10000) * 1e9; // < 2^46
  const hi = Math.floor(sec / 0x10000) * 1e9; // times 2^16 below
  const low = rem(lo, 0x100000000) + rem(hi, 0x10000) * 0x10000 + t[1];
  const high = Math.floor(lo / 0x100000000) + Math.floor(hi / 0x10000) + Math.floor(low / 0x100000000);
  ensure(8);
  buf.writeUInt32LE(low >>> 0, pos);
  buf.writeUInt32LE(high >>> 0, pos + 4);
  pos += 8;
}

type Attrs = ReadableSpan['attributes'];

/** Whether every value is one this encoder writes as OpenTelemetry does. */
function plainAttrs(a: Attrs): boolean {
  for (const k in a) {
    if (!Object.hasOwn(a, k)) continue;
    const v = a[k];
    const t = typeof v;
    if (t === 'string' || t === 'boolean') continue;
    if (t !== 'number') return false;
    const x = v as number;
    if (Number.isInteger(x) && (x < 0 || x > 0xffffffff)) return false;
  }
  return true;
}

function attrs(field: number, a: Attrs): void {
  for (const k in a) {
    if (!Object.hasOwn(a, k)) continue;
    const v = a[k];
    tag(field, 2);
    const kv = start();
    tag(1, 2);
    str(k);
    tag(2, 2);
    const av = start();
    if (typeof v === 'string') {
      tag(1, 2);
      str(v);
    } else if (typeof v === 'boolean') {
      tag(2, 0);
      varint(v ? 1 : 0);
    } else if (typeof v === 'number') {
      if (Number.isInteger(v)) {
        tag(3, 0);
        varint(v);
      } else {
        tag(4, 1);
        ensure(8);
        pos = buf.writeDoubleLE(v, pos);
      }
    }
    finish(av);
    finish(kv);
  }
}

/** TraceFlags.SAMPLED: only sampled requests make spans. */
const SAMPLED = 1;

/** One span (a ReadableSpan's fields, or a lean span's). `kind`: OTLP's value (the API's plus one). */
function spanFields(
  traceId: string,
  spanId: string,
  parentSpanId: string,
  name: string,
  kind: number,
  startTime: HrTime,
  endTime: HrTime,
  a: Attrs,
  dropped: readonly [number, number, number],
  statusCode: number,
  statusMessage: string | undefined,
  flags: number,
): void {
  tag(2, 2);
  const at = start();
  hexId(1, traceId);
  hexId(2, spanId);
  if (parentSpanId !== '') hexId(4, parentSpanId);
  tag(5, 2);
  str(name);
  if (kind !== 0) {
    tag(6, 0);
    varint(kind);
  }
  hrTime(7, startTime);
  hrTime(8, endTime);
  attrs(9, a);
  tag(10, 0);
  varint(dropped[0]);
  tag(12, 0);
  varint(dropped[1]);
  tag(14, 0);
  varint(dropped[2]);
  tag(15, 2);
  const st = start();
  if (statusMessage !== undefined && statusMessage !== '') {
    tag(2, 2);
    str(statusMessage);
  }
  tag(3, 0);
  varint(statusCode);
  finish(st);
  // flags: the trace flags, "has is-remote", is-remote.
  tag(16, 5);
  ensure(4);
  pos = buf.writeUInt32LE(flags, pos);
  finish(at);
}

function span(s: ReadableSpan): void {
  const ctx = s.spanContext();
  const parent = s.parentSpanContext;
  spanFields(
    ctx.traceId,
    ctx.spanId,
    parent !== undefined ? parent.spanId : '',
    s.name,
    s.kind + 1,
    s.startTime,
    s.endTime,
    s.attributes,
    [s.droppedAttributesCount, s.droppedEventsCount, s.droppedLinksCount],
    s.status.code,
    s.status.message,
    (ctx.traceFlags & 0xff) | 0x100 | (parent?.isRemote === true ? 0x200 : 0),
  );
}

const NONE_DROPPED = [0, 0, 0] as const;

/** A lean span as span() writes its ReadableSpan adapter (src/tracing/otlp.ts ExportSpan). */
function lightSpan(s: LightSpan): void {
  const parented = s.parentSpanId !== '';
  spanFields(
    s.traceId,
    s.spanId,
    s.parentSpanId,
    s.name,
    s.kind,
    hrTimeOf(s.startMs),
    hrTimeOf(s.endMs),
    s.attributes,
    NONE_DROPPED,
    s.statusCode,
    s.statusMessage,
    SAMPLED | 0x100 | (parented && s.parentRemote ? 0x200 : 0),
  );
}

/** Whether encodeSpans writes `spans` (one resource and scope, nothing it leaves out). */
function covers(spans: readonly ReadableSpan[]): boolean {
  const r = spans[0].resource;
  const sc = spans[0].instrumentationScope;
  const scx = sc as { schemaUrl?: string; attributes?: unknown; droppedAttributesCount?: number };
  if (r.schemaUrl || scx.schemaUrl || scx.attributes !== undefined || scx.droppedAttributesCount || !plainAttrs(r.attributes)) return false;
  for (const s of spans) {
    if (s.resource !== r || s.instrumentationScope !== sc || s.events.length > 0 || s.links.length > 0) return false;
    if (s.spanContext().traceState !== undefined || !plainAttrs(s.attributes)) return false;
    if (!Number.isInteger(s.droppedAttributesCount) || s.droppedAttributesCount < 0) return false;
  }
  return true;
}

/** ExportTraceServiceRequest of `spans` as OTLP protobuf; a new Uint8Array per batch (the transport keeps it). */
export function encodeSpans(spans: readonly ReadableSpan[]): Uint8Array {
  if (spans.length === 0) return new Uint8Array(0);
  if (!covers(spans)) {
    const { ProtobufTraceSerializer } = require('@opentelemetry/otlp-transformer') as typeof import('@opentelemetry/otlp-transformer');
    return ProtobufTraceSerializer.serializeRequest(spans as ReadableSpan[]) ?? new Uint8Array(0);
  }
  const ss = head(spans[0].resource, spans[0].instrumentationScope);
  for (const s of spans) span(s);
  return tail(ss);
}

/**
 * The same request for the worker's lean spans under `resource` and `scope` (the bytes
 * encodeSpans writes for their ReadableSpan adapters); null when a span has an attribute value it
 * does not write (the caller then goes through the adapters and OpenTelemetry's serializer).
 */
export function encodeLightSpans(spans: readonly LightSpan[], resource: Resource, scope: InstrumentationScope): Uint8Array | null {
  if (spans.length === 0) return new Uint8Array(0);
  for (let i = 0; i < spans.length; i++) if (!plainAttrs(spans[i].attributes)) return null;
  const ss = head(resource, scope);
  for (let i = 0; i < spans.length; i++) lightSpan(spans[i]);
  return tail(ss);
}

/** Where the resource spans' length goes: after its one-byte tag, at the start of the buffer. */
const RESOURCE_SPANS_AT = 1;

/** The request up to the first span: the resource, the scope; returns the scope spans' length slot. */
function head(r: Resource, sc: InstrumentationScope): number {
  pos = 0;
  tag(1, 2);
  start(); // RESOURCE_SPANS_AT
  tag(1, 2);
  const res = start();
  attrs(1, r.attributes);
  tag(2, 0);
  varint(0);
  finish(res);
  tag(2, 2);
  const ss = start();
  tag(1, 2);
  const scope = start();
  tag(1, 2);
  str(sc.name);
  if (sc.version !== undefined && sc.version !== '') {
    tag(2, 2);
    str(sc.version);
  }
  finish(scope);
  return ss;
}

/** The request after its last span: the two lengths left open, a copy of the bytes. */
function tail(ss: number): Uint8Array {
  finish(ss);
  finish(RESOURCE_SPANS_AT);
  // A copy (the next export reuses buf): one memcpy (Buffer.from of a view copies element by element).
  const out = Buffer.allocUnsafe(pos);
  buf.copy(out, 0, 0, pos);
  return out;
}
