/**
 * The trace context of an Outrigger hop in a Bolt request: the upstream frame gets a
 * `traceparent` header (the client span), so that the next Outrigger's server span is its child.
 * SOFATracer's own `rpc_trace_context.*` headers pass through untouched (the applications number
 * their rpcIds; a sidecar must not renumber them). Sampled requests only: the frame is rebuilt.
 */
import { encodeFrame } from '../protocol/bolt/encoder';
import type { BoltFrame } from '../protocol/bolt/frame';
import { decodeHeaders } from '../protocol/bolt/header-map';
import type { XCodec, XFrame } from '../protocol/types';

/** A copy of the Bolt request with `traceparent` set, or null when the frame cannot carry it (not Bolt, too large). */
export function boltWithTraceparent(codec: XCodec, buf: Buffer, frame: XFrame, traceparent: string, limit: number): { buf: Buffer; frame: XFrame } | null {
  if (codec.name !== 'bolt' && codec.name !== 'boltv2') return null;
  const f = frame as unknown as BoltFrame;
  if (!f.isRequest || f.isHeartbeat) return null;
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
