/**
 * The trace context of an Outrigger hop in a Dubbo request: the upstream frame gets a
 * `traceparent` attachment (the client span), so that the next Outrigger (or a W3C-aware
 * provider) continues the trace; the incoming side reads `traceparent` from the attachments like
 * any RPC header (src/tracing/context.ts). Sampled requests only: the frame is copied with one
 * more pair written just before the attachments map's end ('Z'), or a map of its own when the
 * request has none. Hessian maps are read pair by pair into a HashMap (Java) or a Map (here):
 * the pair written last wins, so a traceparent the caller already sent is replaced.
 */
import { HEADER_SIZE, OFF_BODY_LEN, SERIALIZATION_HESSIAN2 } from '../protocol/dubbo/constants';
import { readLeadingStrings } from '../protocol/dubbo/body';
import { countJvmArgs, encodeString, skipValue, SkipState } from '../protocol/dubbo/hessian';
import type { DubboXFrame } from '../protocol/dubbo/xcodec';
import type { XCodec, XFrame } from '../protocol/types';

const KEY = encodeString('traceparent');
const MAP_START = 0x48; // 'H' untyped map
const MAP_END = 0x5a; // 'Z'
const skip = new SkipState();

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
