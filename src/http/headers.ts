/**
 * Header work of the HTTP proxy: hop-by-hop removal, route/virtual-host add and remove
 * operations, request-id generation and gRPC deadline parsing. Headers are plain objects with
 * lower-case names (what node:http and node:http2 hand out), values a string or a string list.
 */
import { randomFillSync } from 'node:crypto';
import type { HeaderOps } from '../router/http-routes';

export type Headers = Record<string, string | string[] | undefined>;

/** Connection-specific headers (RFC 9110 7.6.1); never forwarded, forbidden in HTTP/2. */
function isHopByHop(k: string): boolean {
  // A switch, not a Set: property names are internalized strings, compared by identity first.
  switch (k) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
    case 'te':
    case 'http2-settings':
      return true;
    default:
      return false;
  }
}

/**
 * The last Connection value seen and the names it lists (hop-by-hop ones left out: those go
 * anyway); null = none. A peer sends the same value on every message ("keep-alive") and the
 * codec hands out one interned string for it, so the split runs once per distinct value.
 */
let memoConn: string | undefined;
let memoNamed: Set<string> | null = null;

function connectionNamed(conn: string | string[]): Set<string> | null {
  if (conn === memoConn) return memoNamed;
  let named: Set<string> | null = null;
  // Allocations (Set, split lists) only for a Connection value not seen last time.
  for (const v of Array.isArray(conn) ? conn : [conn]) {
    for (const t of v.split(',')) {
      const n = t.trim().toLowerCase();
      if (n !== '' && !isHopByHop(n)) (named ??= new Set()).add(n);
    }
  }
  if (typeof conn === 'string') {
    memoConn = conn;
    memoNamed = named;
  }
  return named;
}

/**
 * Copies the end-to-end headers of a request or response: drops pseudo-headers, hop-by-hop
 * headers and headers the Connection header names. `te: trailers` survives (gRPC needs it).
 * `upstreamRequest`: also leaves out `host` (the upstream side writes the authority) and
 * `expect` (100-continue is answered by the downstream side), without a `delete` on the copy
 * (which would turn it into a slow dictionary object).
 */
export function endToEnd(src: Headers, upstreamRequest = false): Headers {
  const out: Headers = {};
  const conn = src['connection'];
  const named = conn === undefined ? null : connectionNamed(conn);
  for (const k in src) {
    if (k.charCodeAt(0) === 58 /* : */) continue;
    const v = src[k];
    if (v === undefined) continue;
    if (isHopByHop(k)) {
      if (k === 'te' && typeof v === 'string' && v.trim().toLowerCase() === 'trailers') out[k] = 'trailers';
      continue;
    }
    if (upstreamRequest && (k === 'host' || k === 'expect')) continue;
    if (named !== null && named.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/** Applies remove-then-add operations (route first, then its virtual host). */
export function applyOps(h: Headers, first: HeaderOps, second: HeaderOps, response: boolean): void {
  applyOne(h, first, response);
  applyOne(h, second, response);
}

function applyOne(h: Headers, ops: HeaderOps, response: boolean): void {
  const rm = response ? ops.responseRemove : ops.requestRemove;
  for (let i = 0; i < rm.length; i++) delete h[rm[i]];
  const add = response ? ops.responseAdd : ops.requestAdd;
  for (let i = 0; i < add.length; i++) {
    const a = add[i];
    const cur = h[a.key];
    if (!a.append || cur === undefined) h[a.key] = a.value;
    else h[a.key] = Array.isArray(cur) ? [...cur, a.value] : [cur, a.value];
  }
}

/** Random bytes for UUIDs, refilled (CSPRNG) once per UUID_BATCH ids; allocated once per thread. */
const UUID_BATCH = 256;
const UUID_CHARS = 36;
const uuidBytes = Buffer.allocUnsafeSlow(16 * UUID_BATCH);
/** The batch's ids as text, back to back (encoded at each refill; allocated once per thread). */
const uuidText = Buffer.allocUnsafeSlow(UUID_CHARS * UUID_BATCH);
/** uuidText as one string: each id is a slice of it (no copy, no concatenation per id). */
let uuidBatch = '';
let uuidNext = UUID_BATCH;
/** Lower-case hex digits of each byte value: HEX_DIGITS[2b], HEX_DIGITS[2b + 1]. */
const HEX_DIGITS = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  HEX_DIGITS[2 * i] = '0123456789abcdef'.charCodeAt(i >>> 4);
  HEX_DIGITS[2 * i + 1] = '0123456789abcdef'.charCodeAt(i & 15);
}

/** Fills the next batch: random bytes, version and variant bits, 8-4-4-4-12 hex text. */
function refillUuids(): void {
  randomFillSync(uuidBytes);
  const b = uuidBytes;
  const t = uuidText;
  let p = 0;
  for (let o = 0; o < 16 * UUID_BATCH; o += 16) {
    for (let i = 0; i < 16; i++) {
      let v = b[o + i];
      if (i === 6) v = (v & 0x0f) | 0x40;
      else if (i === 8) v = (v & 0x3f) | 0x80;
      t[p] = HEX_DIGITS[2 * v];
      t[p + 1] = HEX_DIGITS[2 * v + 1];
      p += 2;
      if (i === 3 || i === 5 || i === 7 || i === 9) t[p++] = 45; // '-'
    }
  }
  uuidNext = 0;
}

/**
 * A random (version 4) UUID, as crypto.randomUUID() makes it, without its per-call option
 * handling: the x-request-id of every request that comes without one. A slice of the batch's
 * text (V8 shares the batch string's bytes: ~9 KiB stay alive while one of its ids is held).
 */
export function requestId(): string {
  if (uuidNext === UUID_BATCH) {
    refillUuids();
    // Here, not at the end of refillUuids: its loop is compiled on-stack during its first call,
    // before any code after the loop has run, and a property access there without type feedback
    // deoptimized that compiled loop at the end of every refill for tens of thousands of requests
    // (--trace-deopt, seen in warm-ups of main too).
    uuidBatch = (uuidText as Buffer & { latin1Slice(s: number, e: number): string }).latin1Slice(0, UUID_CHARS * UUID_BATCH);
  }
  const o = uuidNext++ * UUID_CHARS;
  return uuidBatch.slice(o, o + UUID_CHARS);
}

/** Sets x-request-id when the request has none. */
export function ensureRequestId(h: Headers): void {
  if (h['x-request-id'] === undefined) h['x-request-id'] = requestId();
}

const GRPC_UNITS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** grpc-timeout ("100m", "5S", ...) in ms; undefined when absent or malformed. */
export function grpcTimeoutMs(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string' || v.length < 2 || v.length > 9) return undefined;
  const unit = GRPC_UNITS[v[v.length - 1]];
  const n = Number(v.slice(0, -1));
  if (unit === undefined || !Number.isInteger(n) || n < 0) return undefined;
  return Math.max(1, Math.ceil(n * unit));
}

/** Whether a request's content-type value (headers['content-type']) is gRPC's. */
export function isGrpc(ct: string | string[] | undefined): boolean {
  return typeof ct === 'string' && ct.startsWith('application/grpc');
}

/** Methods a retry may repeat after the upstream saw the request (RFC 9110 9.2.2). */
export function isIdempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
    default:
      return false;
  }
}

/** Header list from undici's raw [name, value, ...] Buffers/strings into a Headers object. */
export function fromRaw(raw: readonly (Buffer | string)[] | null | undefined): Headers {
  const out: Headers = {};
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i].toString('latin1').toLowerCase();
    const v = raw[i + 1].toString('latin1');
    const cur = out[k];
    if (cur === undefined) out[k] = v;
    else if (Array.isArray(cur)) cur.push(v);
    else out[k] = [cur, v];
  }
  return out;
}
