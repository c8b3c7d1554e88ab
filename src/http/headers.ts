/**
 * Header work of the HTTP proxy: hop-by-hop removal, route/virtual-host add and remove
 * operations, request-id generation and gRPC deadline parsing. Headers are plain objects with
 * lower-case names (what node:http and node:http2 hand out), values a string or a string list.
 */
import { randomUUID } from 'node:crypto';
import type { HeaderOps } from '../router/http-routes';

export type Headers = Record<string, string | string[] | undefined>;

/** Connection-specific headers (RFC 9110 7.6.1); never forwarded, forbidden in HTTP/2. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

/**
 * Copies the end-to-end headers of a request or response: drops pseudo-headers, hop-by-hop
 * headers and headers the Connection header names. `te: trailers` survives (gRPC needs it).
 */
export function endToEnd(src: Headers): Headers {
  const out: Headers = {};
  const conn = src['connection'];
  let named: Set<string> | null = null;
  if (conn !== undefined) {
    named = new Set();
    for (const v of Array.isArray(conn) ? conn : [conn]) for (const t of v.split(',')) named.add(t.trim().toLowerCase());
  }
  for (const k in src) {
    if (k.charCodeAt(0) === 58 /* : */) continue;
    const v = src[k];
    if (v === undefined) continue;
    if (HOP_BY_HOP.has(k)) {
      if (k === 'te' && typeof v === 'string' && v.trim().toLowerCase() === 'trailers') out[k] = 'trailers';
      continue;
    }
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

/** Sets x-request-id when the request has none. */
export function ensureRequestId(h: Headers): void {
  if (h['x-request-id'] === undefined) h['x-request-id'] = randomUUID();
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

export function isGrpc(h: Headers): boolean {
  const ct = h['content-type'];
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
