/**
 * The trace context of an Outrigger hop in a Dubbo request: the upstream frame gets a
 * `traceparent` attachment (the client span), so that the next Outrigger (or a W3C-aware
 * provider) continues the trace; the incoming side reads `traceparent` from the attachments like
 * any RPC header (src/tracing/context.ts). Sampled requests only: the frame is copied with one
 * more pair written just before the attachments map's end ('Z'), or a map of its own when the
 * request has none. Hessian maps are read pair by pair into a HashMap (Java) or a Map (here):
 * the pair written last wins, so a traceparent the caller already sent is replaced.
 *
 * Reading the incoming context costs nothing much for the requests that carry none (most, at a
 * low sampling ratio): mayCarryTraceContext looks for the keys' bytes in the body with one
 * memchr-style search, and only when one is there are the attachments decoded (every argument
 * skipped, a Map built) to read it.
 */
import { HEADER_SIZE, OFF_BODY_LEN, SERIALIZATION_HESSIAN2 } from '../protocol/dubbo/constants';
import { readLeadingStrings } from '../protocol/dubbo/body';
import { countJvmArgs, encodeString, skipValue, SkipState } from '../protocol/dubbo/hessian';
import type { DubboXFrame } from '../protocol/dubbo/xcodec';
import type { XCodec, XFrame } from '../protocol/types';
import type { FilterStream } from '../api/stream-filter';

const KEY = encodeString('traceparent');
const MAP_START = 0x48; // 'H' untyped map
const MAP_END = 0x5a; // 'Z'
const skip = new SkipState();
/**
 * What the attachment keys a trace context is read from (src/tracing/context.ts extract, rpc:
 * `traceparent`, `rpc_trace_context.sofaTraceId`) have in common: one search finds either.
 */
const TRACE = Buffer.from('trace', 'latin1');

/** What an RPC stream (src/proxy/proxy.ts RpcStream) holds of its request. */
interface RpcRequest {
  readonly codec?: XCodec | null;
  readonly buf?: Buffer | null;
  readonly frame?: XFrame | null;
}

/**
 * False when the stream's request is a hessian2 Dubbo request whose body holds neither
 * `traceparent` nor `rpc_trace_context.sofaTraceId` (not even "trace"): it carries no trace context, and its
 * attachments need not be read. True otherwise (other protocols, a key present, or bytes that
 * only look like one: the attachments are then read as before). Hessian writes a string's
 * characters as contiguous UTF-8 bytes (chunks only for strings over 32 KiB), so a key present
 * is always found.
 */
export function mayCarryTraceContext(s: FilterStream): boolean {
  const r = s as unknown as RpcRequest;
  const buf = r.buf;
  const f = r.frame as unknown as DubboXFrame | null | undefined;
  if (r.codec?.name !== 'dubbo' || buf === null || buf === undefined || f === null || f === undefined) return true;
  if (!f.isRequest || f.isEvent || f.serialization !== SERIALIZATION_HESSIAN2) return true;
  if (f.attachments !== null || f.attachmentsBad) return true; // already decoded (a route read one): a lookup is cheap
  // One view object per request (Dubbo with tracing on): indexOf has no end bound, and the read
  // buffer may hold more frames after this one.
  const body = buf.subarray(f.bodyStart, f.bodyStart + f.bodyLen);
  return body.indexOf(TRACE) >= 0;
}

/** Offset of the attachments map in the body (== body end when the request has none), or -1. */
function attachmentsAt(buf: Buffer, f: DubboXFrame): number {
  if (f.keys === 0) f.keys = readLeadingStrings(buf, f) ? 1 : -1;
  if (f.keys !== 1) return -1;
  const n = countJvmArgs(f.paramDesc ?? '');
  if (n < 0) return -1;
  const end = f.bodyStart + f.bodyLen;
  skip.reset();
  let p = f.argsStart;
  for (let i = 0; i < n && p >= 0; i++) p = skipValue(buf, p, end, skip);
  if (p < 0 || p === end) return p;
  // The map must run to the body's end, closed by 'Z' (an 'H' map, or a typed 'M' one).
  const t = buf[p];
  if ((t !== MAP_START && t !== 0x4d) || skipValue(buf, p, end, skip) !== end || buf[end - 1] !== MAP_END) return -1;
  return p;
}

/** A copy of the Dubbo request with a `traceparent` attachment, or null (not a hessian2 request, unreadable, too large). */
export function dubboWithTraceparent(codec: XCodec, buf: Buffer, frame: XFrame, traceparent: string, limit: number): { buf: Buffer; frame: XFrame } | null {
  if (codec.name !== 'dubbo') return null;
  const f = frame as unknown as DubboXFrame;
  if (!f.isRequest || f.isEvent || f.serialization !== SERIALIZATION_HESSIAN2) return null;
  const at = attachmentsAt(buf, f);
  if (at < 0) return null;
  const end = f.bodyStart + f.bodyLen;
  const hasMap = at < end;
  // Sampled requests only: the value's bytes and the new frame.
  const value = encodeString(traceparent);
  const add = KEY.length + value.length + (hasMap ? 0 : 2);
  const out = Buffer.allocUnsafe(end - f.frameStart + add);
  const keep = hasMap ? end - 1 : end; // up to the map's 'Z', or the whole body
  let p = buf.copy(out, 0, f.frameStart, keep);
  if (!hasMap) out[p++] = MAP_START;
  p += KEY.copy(out, p);
  p += value.copy(out, p);
  out[p++] = MAP_END;
  out.writeUInt32BE(f.bodyLen + add, OFF_BODY_LEN);
  if (p !== out.length || out.length - HEADER_SIZE !== f.bodyLen + add) return null;
  const nf = codec.newFrame();
  return codec.decode(out, 0, out.length, limit, nf) > 0 ? { buf: out, frame: nf } : null;
}
