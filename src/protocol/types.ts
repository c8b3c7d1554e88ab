/**
 * The multiplexed request/response codec interface the L7 proxy, the stream layer and the
 * upstream pool are written against. Bolt implements it today (bolt/xcodec.ts); Dubbo and user
 * codecs implement the same interface and get the frame reader, the multiplexed upstream pool,
 * request-id mapping, timeouts, keepalive and error responses for free.
 *
 *   NET/IO    Connection: zero-copy reads, gathered writev        src/network
 *   PROTOCOL  XCodec: frame length, decode into a reused frame,   src/protocol (this file)
 *             id get/set in place, routing headers, own frames
 *   STREAM    FrameReader, UpstreamPool (ids, pending, timeouts)   src/stream
 *   PROXY     downstream session phase machine, routing           src/proxy, src/router
 *
 * Rules for implementations:
 *  - nothing here may allocate per forwarded frame (decode fills `out`, ids are rewritten in
 *    place, header lookups compare bytes); frames the proxy writes itself (heartbeats, acks,
 *    error responses) may allocate: they are rare;
 *  - decode errors are return codes, never exceptions (anything a peer sends is handled).
 */

/** Why the proxy answers a request itself. Each codec maps these to its own status codes. */
export const enum ErrorKind {
  /** No route matched, the route's cluster does not exist, or the cluster has no host. */
  NoRoute = 0,
  /** The upstream did not answer within the request's timeout. */
  Timeout = 1,
  /** The upstream connection carrying the request closed (or never connected). */
  ConnectionClosed = 2,
  /** A circuit breaker (max_requests / max_pending_requests) refused the request. */
  Overflow = 3,
  /** The request was framed correctly but its headers could not be read. */
  CodecError = 4,
  /** A filter denied the request (RBAC: HTTP 403; MOSN's PermissionDeniedCode). */
  PermissionDenied = 5,
  /** A filter limited the request (rate limits: HTTP 429 / MOSN's LimitExceededCode 509). */
  LimitExceeded = 6,
}

export const ERROR_KIND_NAMES = ['no_route', 'timeout', 'connection_closed', 'overflow', 'codec_error', 'permission_denied', 'limit_exceeded'] as const;

/**
 * The fields of one decoded frame every codec provides. Codecs extend it with their own fields;
 * one instance is allocated per connection and refilled by every decode.
 */
export interface XFrame {
  /** Absolute offset of the frame in the buffer that was decoded. */
  frameStart: number;
  /** Total length in bytes (including any trailer). */
  frameLen: number;
  /** Unsigned request id as on the wire (u32 for Bolt; Dubbo keeps the low 32 bits here). */
  requestId: number;
  /** A request (two-way or oneway); false for responses. */
  isRequest: boolean;
  /** A request that expects no response. */
  isOneway: boolean;
  /** A heartbeat request, or a heartbeat response. */
  isHeartbeat: boolean;
  /** The request's own timeout in ms, 0 when it carries none. */
  timeoutMs: number;
  /** Responses: true when the status means success. */
  isSuccess: boolean;
}

/** A header name prepared once (string for the router's caches, bytes for in-place compares). */
export class HeaderName {
  readonly bytes: Buffer;
  constructor(readonly name: string) {
    this.bytes = Buffer.from(name, 'utf8');
  }
}

/** decode / frameLength result codes shared by all codecs. */
export const NEED_MORE = 0;
/** Any negative value is a decode error; this one means the size limit was exceeded. */
export const ERR_TOO_LARGE = -1000;

export interface XCodec<F extends XFrame = XFrame> {
  /** Lower-case protocol name as configured ("bolt", "boltv2", "dubbo"). */
  readonly name: string;
  /** Bytes that always suffice for frameLength() to answer (the largest fixed header). */
  readonly maxHeaderSize: number;

  /**
   * Does a stream starting with these bytes speak this protocol? true / false, or undefined
   * when more bytes are needed to tell (protocol auto-selection, MOSN "Auto").
   */
  detect(buf: Buffer, start: number, end: number): boolean | undefined;

  /** A frame object to reuse for every decode on one connection. */
  newFrame(): F;

  /**
   * Total length of the frame starting at `start` from its fixed header alone: > 0 length,
   * NEED_MORE when the header is incomplete, < 0 on a broken stream (ERR_TOO_LARGE when the
   * length exceeds maxFrameSize; checked before any body byte is buffered).
   */
  frameLength(buf: Buffer, start: number, end: number, maxFrameSize: number): number;

  /**
   * Decode the frame at `start` into `out`: its length when [start, end) holds all of it (bytes
   * after it are left alone: the frame reader passes the whole read), NEED_MORE when it does
   * not, or < 0 when the stream is broken (ERR_TOO_LARGE as frameLength says it, from the
   * fixed header alone).
   */
  decode(buf: Buffer, start: number, end: number, maxFrameSize: number, out: F): number;

  /**
   * Rewrite the timeout the request carries to `ms` in place (fixing any checksum), when the
   * proxy capped the client's own (limits.rpc_max_timeout, the route's timeout): the upstream
   * then sees the time it really has. Absent: the codec cannot (the proxy still enforces the cap).
   */
  setTimeout?(buf: Buffer, frame: F, ms: number): boolean;

  /** Rewrite the request id of the decoded frame in place (fixing any checksum) and in `frame`. false if impossible. */
  setRequestId(buf: Buffer, frame: F, id: number): boolean;

  /**
   * The value of a header of a decoded request as a string: undefined when absent, null when
   * the header section cannot be parsed (the proxy answers CodecError).
   */
  getHeader(buf: Buffer, frame: F, name: HeaderName): string | undefined | null;

  /** The header routes match by default (Bolt: `service`, falling back to its old key). */
  getRouteKey(buf: Buffer, frame: F): string | undefined | null;

  /**
   * A small integer holding what the codec needs to answer this request later without the
   * frame (Bolt: proto, ver1, codec, switch). Stored in the pending request.
   */
  replyMeta(buf: Buffer, frame: F): number;

  /** The response to a heartbeat request (allocates; heartbeats are rare). */
  encodeHeartbeatAck(buf: Buffer, frame: F): Buffer;

  /** A heartbeat request the proxy sends to keep an idle upstream connection alive. */
  encodeHeartbeat(id: number): Buffer;

  /** An error response for a request the proxy answers itself. */
  encodeError(meta: number, requestId: number, kind: ErrorKind, message?: string): Buffer;

  /** The wire status this codec uses for an error kind (for logs and tests). */
  errorStatus(kind: ErrorKind): number;

  /** Next upstream request id after `id` (Bolt wraps u32 to 0, never 0 itself). */
  nextId(id: number): number;
}

const codecs = new Map<string, XCodec>();

/** Register a codec under its name and any aliases (matched case-insensitively). */
export function registerCodec(codec: XCodec, ...aliases: string[]): void {
  codecs.set(codec.name.toLowerCase(), codec);
  for (const a of aliases) codecs.set(a.toLowerCase(), codec);
}

export function getCodec(name: string): XCodec | undefined {
  return codecs.get(name.toLowerCase());
}

/** Every registered codec once (for Auto detection), in registration order. */
export function allCodecs(): XCodec[] {
  return [...new Set(codecs.values())];
}
