// Bolt v1 (SOFARPC) frames for the `bolt` workload: the request the load generator
// sends, the response the backend answers with, and a reader that cuts a byte
// stream into frames whatever the read boundaries are. Wire layout:
// /work/shared/PROTOCOLS.md section 1 (request header 22 bytes, response 20).
//
// Frames are built once (with the project's tested encoder); per request only the
// 4-byte id at offset 5 is rewritten. The content is opaque filler, not Hessian:
// the proxy under test routes on the header map and never decodes the content.
import { encodeFrame } from '../../src/protocol/bolt/encoder';

export const BOLT_PROTO_V1 = 0x01;
export const BOLT_TYPE_RESPONSE = 0;
export const BOLT_TYPE_REQUEST = 1;
export const BOLT_TYPE_ONEWAY = 2;
export const BOLT_CMD_HEARTBEAT = 0;
export const BOLT_CMD_REQUEST = 1;
export const BOLT_CMD_RESPONSE = 2;
export const BOLT_REQUEST_HEADER = 22;
export const BOLT_RESPONSE_HEADER = 20;
/** offset of the u32 request id (requests and responses) */
export const BOLT_ID_OFFSET = 5;

export const BENCH_SERVICE = 'com.example.BenchService:1.0';
export const BENCH_METHOD = 'echo';
export const SOFA_REQUEST_CLASS = 'com.alipay.sofa.rpc.core.request.SofaRequest';
export const SOFA_RESPONSE_CLASS = 'com.alipay.sofa.rpc.core.response.SofaResponse';
/** content bytes of requests and responses ("1 KiB bodies") */
export const BOLT_BODY = 1024;
/** largest frame either side accepts; anything larger is a protocol error here */
export const BOLT_MAX_FRAME = 1 << 20;

export interface BoltRequestOptions {
  service?: string;
  method?: string;
  contentLength?: number;
  /** ms; MOSN uses it as the upstream timeout */
  timeout?: number;
}

/** A complete SOFARPC request frame (id 0); copy it and set the id per request. */
export function boltRequestTemplate(o: BoltRequestOptions = {}): Buffer {
  return encodeFrame({
    proto: BOLT_PROTO_V1,
    type: BOLT_TYPE_REQUEST,
    cmdcode: BOLT_CMD_REQUEST,
    ver2: 1,
    requestId: 0,
    codec: 1,
    timeout: o.timeout ?? 3000,
    className: SOFA_REQUEST_CLASS,
    headers: [
      ['service', o.service ?? BENCH_SERVICE],
      ['sofa_head_target_service', o.service ?? BENCH_SERVICE],
      ['sofa_head_method_name', o.method ?? BENCH_METHOD],
    ],
    content: Buffer.alloc(o.contentLength ?? BOLT_BODY, 0x71),
  });
}

/** A SofaResponse frame (id 0, status 0) with `contentLength` opaque bytes. */
export function boltResponseTemplate(contentLength = BOLT_BODY): Buffer {
  return encodeFrame({
    proto: BOLT_PROTO_V1,
    type: BOLT_TYPE_RESPONSE,
    cmdcode: BOLT_CMD_RESPONSE,
    ver2: 1,
    requestId: 0,
    codec: 1,
    status: 0,
    className: SOFA_RESPONSE_CLASS,
    content: Buffer.alloc(contentLength, 0x72),
  });
}

/** A heartbeat request (22 bytes, timeout -1). */
export function boltHeartbeat(id: number): Buffer {
  return encodeFrame({ proto: BOLT_PROTO_V1, type: BOLT_TYPE_REQUEST, cmdcode: BOLT_CMD_HEARTBEAT, requestId: id, codec: 1, timeout: -1 });
}

/** A heartbeat ack (20 bytes). */
export function boltHeartbeatAck(id: number): Buffer {
  return encodeFrame({ proto: BOLT_PROTO_V1, type: BOLT_TYPE_RESPONSE, cmdcode: BOLT_CMD_HEARTBEAT, requestId: id, codec: 1, status: 0 });
}

/**
 * Length of the complete v1 frame starting at `off`, 0 when more bytes are needed,
 * or -1 when the bytes there are not a Bolt v1 frame this harness understands.
 */
export function boltFrameLength(buf: Buffer, off: number): number {
  const avail = buf.length - off;
  if (avail < 1) return 0;
  if (buf[off] !== BOLT_PROTO_V1) return -1;
  if (avail < 2) return 0;
  const type = buf[off + 1];
  const isResponse = type === BOLT_TYPE_RESPONSE;
  if (!isResponse && type !== BOLT_TYPE_REQUEST && type !== BOLT_TYPE_ONEWAY) return -1;
  const head = isResponse ? BOLT_RESPONSE_HEADER : BOLT_REQUEST_HEADER;
  if (avail < head) return 0;
  const lens = off + head - 8; // classLen u16, headerLen u16, contentLen u32 end the fixed header
  const classLen = buf.readInt16BE(lens);
  const headerLen = buf.readInt16BE(lens + 2);
  const contentLen = buf.readInt32BE(lens + 4);
  if (classLen < 0 || headerLen < 0 || contentLen < 0) return -1;
  const total = head + classLen + headerLen + contentLen;
  if (total > BOLT_MAX_FRAME) return -1;
  return avail < total ? 0 : total;
}

/**
 * Cuts a stream into frames of any protocol whose frame length is known from its first
 * bytes (`frameLength(buf, off)`: total length, 0 when more bytes are needed, -1 when
 * not a frame). `push` calls `onFrame(buf, offset, length)` for every complete frame
 * (the buffer is only valid during the call) and keeps the partial tail for the next
 * read. Returns false on a protocol error (the stream is then unusable).
 */
export class FrameReader {
  private tail: Buffer | undefined;
  constructor(
    private readonly frameLength: (buf: Buffer, off: number) => number,
    private readonly onFrame: (buf: Buffer, off: number, len: number) => void,
  ) {}

  push(chunk: Buffer): boolean {
    let buf = chunk;
    if (this.tail) {
      buf = Buffer.concat([this.tail, chunk]);
      this.tail = undefined;
    }
    let off = 0;
    for (;;) {
      const n = this.frameLength(buf, off);
      if (n < 0) return false;
      if (n === 0) break;
      this.onFrame(buf, off, n);
      off += n;
    }
    // Copy the tail: `chunk` may be a slice of a larger pooled buffer.
    if (off < buf.length) this.tail = Buffer.from(buf.subarray(off));
    return true;
  }

  /** bytes waiting for the rest of their frame */
  pending(): number {
    return this.tail?.length ?? 0;
  }
}

/** FrameReader for Bolt v1 frames. */
export class BoltFrameReader extends FrameReader {
  constructor(onFrame: (buf: Buffer, off: number, len: number) => void) {
    super(boltFrameLength, onFrame);
  }
}
