/**
 * The trace context of an Outrigger hop in a Bolt request: the upstream frame gets a
 * `traceparent` header (the client span), so that the next Outrigger's server span is its child.
 * SOFATracer's own `rpc_trace_context.*` headers pass through untouched (the applications number
 * their rpcIds; a sidecar must not renumber them). Sampled requests only: the frame is copied
 * with one more header pair spliced in at the end of the header map (no CRC, no traceparent
 * yet: the common case), else rebuilt from its decoded header map.
 */
import type { FilterStream } from '../api/stream-filter';
import { encodeFrame } from '../protocol/bolt/encoder';
import type { BoltFrame } from '../protocol/bolt/frame';
import { decodeHeaders, findHeaderValue, HeaderValueRange } from '../protocol/bolt/header-map';
import type { XCodec, XFrame } from '../protocol/types';
import { SOFA_TRACE_ID } from './context';
import { HEADER_SERVICE, HEADER_SERVICE_OLD } from '../protocol/bolt/constants';
import type { BoltXFrame } from '../protocol/bolt/xcodec';

const TRACEPARENT = Buffer.from('traceparent');
const SOFA_TRACE_ID_KEY = Buffer.from(SOFA_TRACE_ID);
const TP_LEN = TRACEPARENT.length;
const SOFA_LEN = SOFA_TRACE_ID_KEY.length;
const SERVICE_KEY = Buffer.from(HEADER_SERVICE);
const SERVICE_OLD_KEY = Buffer.from(HEADER_SERVICE_OLD);
const SERVICE_LEN = SERVICE_KEY.length;
const SERVICE_OLD_LEN = SERVICE_OLD_KEY.length;
const range = new HeaderValueRange();
/** Bolt's header map length is an int16. */
const MAX_HEADER_LEN = 0x7fff;

/** A copy of the Bolt request with `traceparent` set, or null when the frame cannot carry it (not Bolt, too large). */
export function boltWithTraceparent(codec: XCodec, buf: Buffer, frame: XFrame, traceparent: string, limit: number): { buf: Buffer; frame: XFrame } | null {
  if (codec.name !== 'bolt' && codec.name !== 'boltv2') return null;
  const f = frame as unknown as BoltFrame;
  if (!f.isRequest || f.isHeartbeat) return null;
  if (!f.hasCrc && findHeaderValue(buf, f.headerStart, f.contentStart, TRACEPARENT, range) === -1) {
    const out = splice(buf, f, traceparent);
    if (out === null) return null;
    const nf = codec.newFrame();
    return codec.decode(out, 0, out.length, limit, nf) > 0 ? { buf: out, frame: nf } : null;
  }
  return rebuilt(codec, buf, f, traceparent, limit);
}

/** The frame with a traceparent pair appended to its header map (headerLen updated); null when the map would be too long. */
function splice(buf: Buffer, f: BoltFrame, traceparent: string): Buffer | null {
  const vlen = Buffer.byteLength(traceparent);
  const add = 4 + TRACEPARENT.length + 4 + vlen;
  if (f.headerLen + add > MAX_HEADER_LEN) return null;
  const end = f.contentStart; // end of the header map
  // One buffer per sampled request: the upstream frame.
  const out = Buffer.allocUnsafe(f.contentEnd - f.frameStart + add);
  let p = buf.copy(out, 0, f.frameStart, end);
  p = out.writeInt32BE(TRACEPARENT.length, p);
  p += TRACEPARENT.copy(out, p);
  p = out.writeInt32BE(vlen, p);
  p += out.write(traceparent, p, 'utf8');
  buf.copy(out, p, end, f.contentEnd);
  // The fixed header ends with classLen (2), headerLen (2), contentLen (4).
  // (byte stores: Buffer#writeUInt16BE's range checks showed in the sampled request's profile)
  const hl = f.headerLen + add;
  const at = f.classStart - f.frameStart - 6;
  out[at] = hl >>> 8;
  out[at + 1] = hl & 0xff;
  return out;
}

function rebuilt(codec: XCodec, buf: Buffer, f: BoltFrame, traceparent: string, limit: number): { buf: Buffer; frame: XFrame } | null {
  const headers = f.headerLen > 0 ? decodeHeaders(buf, f.headerStart, f.headerStart + f.headerLen) : new Map<string, string>();
  if (headers === null) return null;
  headers.set('traceparent', traceparent);
  let out: Buffer;
  try {
    out = encodeFrame({
      proto: f.proto,
      ver1: f.ver1 || undefined,
      type: f.type,
      cmdcode: f.cmdcode,
      ver2: f.ver2,
      requestId: f.requestId,
      codec: f.codec,
      switch: f.switch,
      timeout: f.timeout,
      className: buf.subarray(f.classStart, f.classStart + f.classLen),
      headers,
      content: buf.subarray(f.contentStart, f.contentEnd),
      crc: f.hasCrc,
    });
  } catch {
    return null; // header map past its 32 KiB field: sent as it came
  }
  const nf = codec.newFrame();
  if (codec.decode(out, 0, out.length, limit, nf) <= 0) return null;
  return { buf: out, frame: nf };
}

/** What an RPC stream or light view (src/proxy/proxy.ts) holds of its request. */
interface RpcRequest {
  readonly codec?: XCodec | null;
  readonly buf?: Buffer | null;
  readonly frame?: XFrame | null;
}

function keyAt(buf: Buffer, at: number, key: Buffer): boolean {
  for (let j = 0; j < key.length; j++) if (buf[at + j] !== key[j]) return false;
  return true;
}

/**
 * False when a Bolt request's header map holds neither key an incoming context is read from
 * (src/tracing/context.ts extract, rpc: `traceparent`, `rpc_trace_context.sofaTraceId`), so
 * that the headers need not be read one by one (each read walks the map and looks the name
 * up): one walk over the map, keys compared only when their length is one of the two. True
 * otherwise: other protocols, a key present, a map that does not parse (the reads then decide,
 * as before).
 */
export function boltMayCarryTraceContext(s: FilterStream): boolean {
  const r = s as unknown as RpcRequest;
  const buf = r.buf;
  const f = r.frame as unknown as BoltFrame | null | undefined;
  const name = r.codec?.name;
  if ((name !== 'bolt' && name !== 'boltv2') || buf === null || buf === undefined || f === null || f === undefined) return true;
  const end = f.contentStart < buf.length ? f.contentStart : buf.length;
  let p = f.headerStart;
  // The routing key on the way (the last `service`, else the last `sofa_head_target_service`,
  // as findServiceHeader): the router then reads it without a walk of its own.
  let svc = -1;
  let svcEnd = 0;
  let old = -1;
  let oldEnd = 0;
  // Lengths are int32 big-endian and the map is shorter than 32 KiB: a length's two high bytes
  // are 0, else it is -1 (null) or malformed, and the reads decide. Byte reads: Buffer's
  // readInt32BE range checks cost more than the walk.
  while (p < end) {
    if (end - p < 8 || (buf[p] | buf[p + 1]) !== 0) return true;
    const kl = (buf[p + 2] << 8) | buf[p + 3];
    p += 4;
    if (kl > end - p - 4) return true;
    const k = p;
    if ((kl === TP_LEN && keyAt(buf, p, TRACEPARENT)) || (kl === SOFA_LEN && keyAt(buf, p, SOFA_TRACE_ID_KEY))) return true;
    p += kl;
    if ((buf[p] | buf[p + 1]) !== 0) return true;
    const v = p + 4;
    p = v + ((buf[p + 2] << 8) | buf[p + 3]);
    if (p > end) return true;
    if (kl === SERVICE_LEN && keyAt(buf, k, SERVICE_KEY)) {
      svc = v;
      svcEnd = p;
    } else if (kl === SERVICE_OLD_LEN && svc < 0 && keyAt(buf, k, SERVICE_OLD_KEY)) {
      old = v;
      oldEnd = p;
    }
  }
  const xf = f as BoltXFrame;
  if (svc >= 0) {
    xf.routeStart = svc;
    xf.routeEnd = svcEnd;
  } else {
    xf.routeStart = old;
    xf.routeEnd = oldEnd;
  }
  return false;
}
