// Dubbo 2.x as an XCodec (src/protocol/types.ts): framing and ids from frame.ts, routing keys
// read lazily from the hessian2 body (body.ts), errors as Dubbo responses.
//
// Routing headers (MOSN's names): `service` (the service path, the default route key),
// `version`, `method`, `dubbo` (framework version) come from the leading strings of the body;
// any other name (`group`, `interface`, `timeout`, `application`, ...) is looked up in the
// attachments, which are only decoded when a route asks for one. The body is never rewritten.

import { ErrorKind, HeaderName, registerCodec, type XCodec, type XFrame } from '../types';
import {
  DEFAULT_PAYLOAD_LIMIT,
  HEADER_DUBBO_VERSION,
  HEADER_METHOD,
  HEADER_SERVICE,
  HEADER_SIZE,
  HEADER_VERSION,
  STATUS_BAD_REQUEST,
  STATUS_CLIENT_TIMEOUT,
  STATUS_SERVER_ERROR,
  STATUS_SERVER_THREADPOOL_EXHAUSTED_ERROR,
  STATUS_SERVICE_NOT_FOUND,
} from './constants';
import { DubboFrame, decodeDubboFrame, detectDubbo, dubboFrameLength, encodeDubboError, encodeDubboHeartbeat, encodeDubboHeartbeatAck, writeDubboId } from './frame';
import { readAttachments, readLeadingStrings } from './body';

/** A DubboFrame plus the routing keys read from its body (filled lazily, reset by decode). */
export class DubboXFrame extends DubboFrame implements XFrame {
  /** 0 = body not read yet, 1 = leading strings read, -1 = unreadable (or not hessian2). */
  keys = 0;
  dubboVersion: string | null = null;
  service: string | null = null;
  version: string | null = null;
  method: string | null = null;
  paramDesc: string | null = null;
  /** Offset of the first argument (after the parameter descriptor). */
  argsStart = 0;
  /** Attachments, once a route asked for one; null = not read yet. */
  attachments: Map<string, string> | null = null;
  /** true when the attachments could not be read. */
  attachmentsBad = false;
}

/** Dubbo status for each ErrorKind (CLIENT_TIMEOUT as MOSN's hijack; see PROTOCOLS.md section 6). */
const STATUS_OF_KIND: readonly number[] = [
  STATUS_SERVICE_NOT_FOUND, // NoRoute
  STATUS_CLIENT_TIMEOUT, // Timeout
  STATUS_SERVER_ERROR, // ConnectionClosed
  STATUS_SERVER_THREADPOOL_EXHAUSTED_ERROR, // Overflow
  STATUS_BAD_REQUEST, // CodecError
  STATUS_SERVER_ERROR, // PermissionDenied (MOSN: 403|permission denied)
  STATUS_BAD_REQUEST, // LimitExceeded (MOSN: 509|limit exceeded)
];

const MESSAGE_OF_KIND: readonly string[] = [
  '[outrigger] service not found: no route or no healthy upstream host',
  '[outrigger] upstream request timeout',
  '[outrigger] upstream connection closed',
  '[outrigger] upstream overflow (circuit breaker)',
  '[outrigger] request could not be decoded',
  '403|permission denied',
  '509|limit exceeded',
];

function ensureKeys(buf: Buffer, f: DubboXFrame): boolean {
  if (f.keys === 0) f.keys = readLeadingStrings(buf, f) ? 1 : -1;
  return f.keys === 1;
}

class DubboXCodec implements XCodec<DubboXFrame> {
  readonly name = 'dubbo';
  readonly maxHeaderSize = HEADER_SIZE;
  /** Dubbo's own payload limit (8 MiB body) unless max_frame_size is configured. */
  readonly defaultMaxFrameSize = HEADER_SIZE + DEFAULT_PAYLOAD_LIMIT;

  detect(buf: Buffer, start: number, end: number): boolean | undefined {
    return detectDubbo(buf, start, end);
  }

  newFrame(): DubboXFrame {
    return new DubboXFrame();
  }

  frameLength(buf: Buffer, start: number, end: number, maxFrameSize: number): number {
    return dubboFrameLength(buf, start, end, maxFrameSize);
  }

  decode(buf: Buffer, start: number, end: number, maxFrameSize: number, out: DubboXFrame): number {
    const r = decodeDubboFrame(buf, start, end, maxFrameSize, out);
    if (r <= 0) return r;
    out.keys = 0;
    if (out.attachments !== null) out.attachments = null;
    out.attachmentsBad = false;
    return r;
  }

  setRequestId(buf: Buffer, frame: DubboXFrame, id: number): boolean {
    writeDubboId(buf, frame.frameStart, id);
    frame.requestId = id;
    return true;
  }

  getHeader(buf: Buffer, frame: DubboXFrame, name: HeaderName): string | undefined | null {
    if (!ensureKeys(buf, frame)) return null;
    switch (name.name) {
      case HEADER_SERVICE:
        return frame.service ?? undefined;
      case HEADER_VERSION:
        return frame.version ?? undefined;
      case HEADER_METHOD:
        return frame.method ?? undefined;
      case HEADER_DUBBO_VERSION:
        return frame.dubboVersion ?? undefined;
    }
    if (frame.attachments === null && !frame.attachmentsBad) {
      const m = new Map<string, string>();
      if (readAttachments(buf, frame, m)) frame.attachments = m;
      else frame.attachmentsBad = true;
    }
    if (frame.attachmentsBad) return null;
    return (frame.attachments as Map<string, string>).get(name.name);
  }

  getRouteKey(buf: Buffer, frame: DubboXFrame): string | undefined | null {
    if (!ensureKeys(buf, frame)) return null;
    return frame.service ?? undefined;
  }

  replyMeta(_buf: Buffer, frame: DubboXFrame): number {
    return frame.serialization;
  }

  encodeHeartbeatAck(buf: Buffer, frame: DubboXFrame): Buffer {
    return encodeDubboHeartbeatAck(buf, frame.frameStart, frame.serialization);
  }

  encodeHeartbeat(id: number): Buffer {
    return encodeDubboHeartbeat(id);
  }

  encodeError(_meta: number, requestId: number, kind: ErrorKind, message?: string): Buffer {
    return encodeDubboError(requestId, STATUS_OF_KIND[kind], message ?? MESSAGE_OF_KIND[kind]);
  }

  errorStatus(kind: ErrorKind): number {
    return STATUS_OF_KIND[kind];
  }

  nextId(id: number): number {
    // The pool allocates u32 ids (written as 8 bytes, high word 0); 0 is skipped.
    return id >= 0xffffffff ? 1 : id + 1;
  }
}

export const dubboCodec: XCodec<DubboXFrame> & { readonly defaultMaxFrameSize: number } = new DubboXCodec();

registerCodec(dubboCodec);
