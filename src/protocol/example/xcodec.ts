// MiniRPC: the example protocol of the codec guide (docs/codec-api.md). A complete, tiny
// request/response protocol written only against the XCodec interface; the `proxy` filter gives
// it multiplexing, routing, load balancing, timeouts, heartbeats, error answers and stats.
//
//   0      1      2      3      4             8             10                  14
//  +------+------+------+------+-------------+-------------+-------------------+---------+---------+
//  | 'M'  | 'R'  | kind |status| id (u32)    | svcLen (u16)| payloadLen (u32)  | service | payload |
//  +------+------+------+------+-------------+-------------+-------------------+---------+---------+
//  kind: 0 request, 1 one-way request, 2 response, 3 ping, 4 pong. status (responses): 0 ok,
//  1 no route, 2 timeout, 3 unavailable, 4 busy, 5 bad request; error payloads are UTF-8 text.
//  The service name is the routing key (header "service"); the payload is opaque.

import { ErrorKind, ERR_TOO_LARGE, HeaderName, NEED_MORE, registerCodec, type XCodec, type XFrame } from '../types';

export const MINIRPC_HEADER = 14;
export const KIND_REQUEST = 0;
export const KIND_ONEWAY = 1;
export const KIND_RESPONSE = 2;
export const KIND_PING = 3;
export const KIND_PONG = 4;
export const STATUS_OK = 0;

/** The XFrame fields plus where the service name and payload are. */
export class MiniRpcFrame implements XFrame {
  frameStart = 0;
  frameLen = 0;
  requestId = 0;
  isRequest = false;
  isOneway = false;
  isHeartbeat = false;
  timeoutMs = 0;
  isSuccess = false;
  kind = 0;
  status = 0;
  serviceStart = 0;
  serviceLen = 0;
}

/** ErrorKind -> status, in ErrorKind order. */
const STATUS_OF_KIND = [1, 2, 3, 4, 5, 6, 7];

class MiniRpcCodec implements XCodec<MiniRpcFrame> {
  readonly name = 'minirpc';
  readonly maxHeaderSize = MINIRPC_HEADER;

  detect(buf: Buffer, start: number, end: number): boolean | undefined {
    if (end <= start) return undefined;
    if (buf[start] !== 0x4d) return false;
    return end - start < 2 ? undefined : buf[start + 1] === 0x52;
  }

  newFrame(): MiniRpcFrame {
    return new MiniRpcFrame();
  }

  frameLength(buf: Buffer, start: number, end: number, maxFrameSize: number): number {
    if (end - start >= 2 && (buf[start] !== 0x4d || buf[start + 1] !== 0x52)) return -1;
    if (end - start < MINIRPC_HEADER) return NEED_MORE;
    if (buf[start + 2] > KIND_PONG) return -2;
    const len = MINIRPC_HEADER + buf.readUInt16BE(start + 8) + buf.readUInt32BE(start + 10);
    return len > maxFrameSize ? ERR_TOO_LARGE : len;
  }

  decode(buf: Buffer, start: number, end: number, maxFrameSize: number, out: MiniRpcFrame): number {
    const len = this.frameLength(buf, start, end, maxFrameSize);
    if (len <= 0) return len;
    if (start + len > end) return NEED_MORE;
    const kind = buf[start + 2];
    out.frameStart = start;
    out.frameLen = len;
    out.kind = kind;
    out.status = buf[start + 3];
    out.requestId = buf.readUInt32BE(start + 4);
    out.isRequest = kind === KIND_REQUEST || kind === KIND_ONEWAY || kind === KIND_PING;
    out.isOneway = kind === KIND_ONEWAY;
    out.isHeartbeat = kind === KIND_PING || kind === KIND_PONG;
    out.isSuccess = kind === KIND_RESPONSE && out.status === STATUS_OK;
    out.serviceStart = start + MINIRPC_HEADER;
    out.serviceLen = buf.readUInt16BE(start + 8);
    return len;
  }

  setRequestId(buf: Buffer, frame: MiniRpcFrame, id: number): boolean {
    buf.writeUInt32BE(id >>> 0, frame.frameStart + 4);
    frame.requestId = id >>> 0;
    return true;
  }

  getHeader(buf: Buffer, frame: MiniRpcFrame, name: HeaderName): string | undefined | null {
    return name.name === 'service' ? this.getRouteKey(buf, frame) : undefined;
  }

  getRouteKey(buf: Buffer, frame: MiniRpcFrame): string | undefined | null {
    return frame.serviceLen === 0 ? undefined : buf.toString('utf8', frame.serviceStart, frame.serviceStart + frame.serviceLen);
  }

  replyMeta(): number {
    return 0; // nothing to remember: every MiniRPC response has the same shape
  }

  encodeHeartbeatAck(_buf: Buffer, frame: MiniRpcFrame): Buffer {
    return encodeMiniRpc(KIND_PONG, 0, frame.requestId, '', Buffer.alloc(0));
  }

  encodeHeartbeat(id: number): Buffer {
    return encodeMiniRpc(KIND_PING, 0, id, '', Buffer.alloc(0));
  }

  encodeError(_meta: number, requestId: number, kind: ErrorKind, message?: string): Buffer {
    return encodeMiniRpc(KIND_RESPONSE, STATUS_OF_KIND[kind], requestId, '', Buffer.from(message ?? `outrigger error ${kind}`, 'utf8'));
  }

  errorStatus(kind: ErrorKind): number {
    return STATUS_OF_KIND[kind];
  }

  nextId(id: number): number {
    return id >= 0xffffffff ? 1 : id + 1;
  }
}

/** Builds one MiniRPC frame (clients, servers and tests use it too). */
export function encodeMiniRpc(kind: number, status: number, id: number, service: string, payload: Buffer): Buffer {
  const svc = Buffer.from(service, 'utf8');
  const b = Buffer.alloc(MINIRPC_HEADER + svc.length + payload.length);
  b[0] = 0x4d;
  b[1] = 0x52;
  b[2] = kind;
  b[3] = status;
  b.writeUInt32BE(id >>> 0, 4);
  b.writeUInt16BE(svc.length, 8);
  b.writeUInt32BE(payload.length, 10);
  svc.copy(b, MINIRPC_HEADER);
  payload.copy(b, MINIRPC_HEADER + svc.length);
  return b;
}

export const miniRpcCodec: XCodec<MiniRpcFrame> = new MiniRpcCodec();

registerCodec(miniRpcCodec);
