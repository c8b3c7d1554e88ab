/**
 * The stream filter contract: what a stream (L7) filter sees of one request, what it may do,
 * and how a filter kind registers itself. Every L7 protocol (Bolt v1/v2, Dubbo, codecs on the
 * XCodec API, HTTP/1.1, HTTP/2, gRPC) runs its requests through the same filters
 * (src/stream/pipeline.ts drives them).
 *
 * This module is the lowest layer: it imports nothing, so src/config can call the validators
 * and the proxies can build the filters without a cycle.
 *
 * Life of a filter kind:
 *   - main thread, at `validate` / load / SIGHUP: `validate(raw, path, ctx)` once per configured
 *     entry (servers[].listeners[].stream_filters[i].config); it reports errors with their JSON
 *     path through ctx and returns a typed value. The value travels to the workers inside the
 *     parsed config, so it must be plain data (structured-clone safe: no functions, no classes).
 *   - each worker, per listener config snapshot: `create(config, env)` builds one StreamFilter
 *     instance; that instance serves every stream of the listener (no object per request).
 *   - per request: the pipeline calls `decode` at the filter's phase, `encode` when the response
 *     head is known, `log` when the stream ends.
 */

/** Where a decode filter runs (MOSN's receive-filter phases). */
export const enum DecodePhase {
  /** The request is decoded; nothing is routed yet. */
  BeforeRoute = 0,
  /** A route matched (service, cluster known); no host chosen yet. */
  AfterRoute = 1,
  /** A host was chosen for the first attempt; the request is about to be sent. */
  AfterChooseHost = 2,
}

export const DECODE_PHASES = 3;

/** MOSN names of the phases (the optional `phase` key of a filter's config). */
export const DECODE_PHASE_NAMES: readonly string[] = ['before_route', 'after_route', 'after_choose_host'];

/** What a filter answers for one step. */
export const enum FilterStatus {
  /** Go on with the next filter / phase. */
  Continue = 0,
  /**
   * Stop here. The filter either answered (sendLocalReply) or will call
   * resume() later (e.g. after an asynchronous check); the next filter then runs.
   */
  Stop = 1,
}

/** The peer certificate of an mTLS downstream connection. */
export interface StreamPeer {
  readonly subject: string;
  readonly issuer: string;
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
}

/** What a local reply may carry besides its status and text. */
export interface LocalReplyOptions {
  /** gRPC requests: this grpc-status instead of the one mapped from the HTTP status. */
  readonly grpcStatus?: number;
}

/** One request as a filter sees it. Valid until the stream ends (after `log`). */
export interface FilterStream {
  /** Lower-case protocol name: "bolt", "boltv2", "dubbo", "http1", "http2", "grpc", or another codec's name. */
  readonly protocol: string;
  /** RPC: the service (Bolt `service`, Dubbo interface); HTTP: the :authority. undefined when absent. */
  service(): string | undefined;
  /** RPC: the method name where the codec carries one; HTTP: the request method. */
  method(): string | undefined;
  /** A request header (lower-case names for HTTP; pseudo headers :path, :method, :authority). */
  header(name: string): string | undefined;
  /** Request payload length in bytes (RPC: the frame's; HTTP: content-length), -1 when not known yet (chunked). */
  requestBodyLength(): number;
  /** The cluster the route picked (after_route and later phases); undefined before routing. */
  routeCluster(): string | undefined;
  /** The client certificate of an mTLS connection, null without one. */
  peer(): StreamPeer | null;
  /** "ip:port" of the client. */
  remoteAddress(): string;
  /** The client's IP alone (remoteAddress() without the port and brackets), where the stream holds it as such (RBAC reads it per request). */
  remoteIp?(): string;
  /** "ip:port" the client connected to (the listener's address; destination port for RBAC). */
  localAddress(): string;
  /**
   * Answers the request here, in the protocol's own form: HTTP gets `status` (with `message`
   * as a short text body); RPC codecs map the status as MOSN's hijack does (404 -> no processor,
   * 502 -> connection closed, 503 -> busy, 504 -> timeout, others -> the codec's error) with
   * `message` as the error text; 403 -> the codec's permission error, 429 / 509 -> its limit
   * error (MOSN's PermissionDeniedCode / LimitExceededCode). gRPC gets the grpc-status mapped
   * from `status` (403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED, 401 UNAUTHENTICATED, 404
   * UNIMPLEMENTED, 504 DEADLINE_EXCEEDED, 502/503 UNAVAILABLE, else UNKNOWN) or
   * opts.grpcStatus. Nothing more happens to the request after it.
   */
  sendLocalReply(status: number, message?: string, opts?: LocalReplyOptions): void;
  /**
   * HTTP: a header added to the response, whether it comes from the upstream or is a local
   * reply (e.g. x-ratelimit-*); call it in decode. RPC: ignored.
   */
  addResponseHeader(name: string, value: string): void;
  /**
   * A request body whose length is not known yet (requestBodyLength() -1: HTTP chunked or an
   * HTTP/2 body without content-length) is counted as it streams; past `max` bytes the request
   * is answered with `status` (reset when the response has started). RPC frames are whole: no-op.
   */
  limitRequestBody(max: number, status: number): void;
  /** Records a response flag for the access log (e.g. "RL", "UAEX"; MOSN/Envoy short names). */
  setResponseFlag(flag: string): void;
  /** After a filter returned Stop without answering: runs the next filter, then the rest of the request path. */
  resume(): void;
}

/** One filter instance (per worker and listener snapshot), shared by all streams. */
export interface StreamFilter {
  /** The decode phase `decode` runs in. */
  readonly phase: DecodePhase;
  /**
   * The filter decides from the decoded request alone: phase before_route, no encode or log
   * step, decode returns Stop only after sendLocalReply, and nothing of the stream is kept after
   * decode (setResponseFlag is then read by nobody). A listener whose per-request work is only
   * such filters (and tracing's unsampled decision) runs them on a per-connection view instead
   * of a per-request stream (src/stream/pipeline.ts, StreamPipeline.light).
   */
  readonly headersOnly?: boolean;
  /** The request step. */
  decode?(s: FilterStream): FilterStatus;
  /** The response head (status: HTTP status, or 200/500-like for RPC success/failure). Cannot stop. */
  encode?(s: FilterStream, status: number): void;
  /**
   * The stream ended (after the access log line was written), also when the client went away
   * while a filter held the stream (Stop): a filter that holds streams (timers) frees them here.
   */
  log?(s: FilterStream): void;
}

/** What a filter's create() gets in a worker. */
export interface StreamFilterEnv {
  /** Listener name. */
  readonly listener: string;
}

/** The validation context (the config layer's FilterValidationContext has this shape). */
export interface StreamFilterValidationContext {
  error(path: string, message: string): void;
  warn(path: string, message: string): void;
  readonly listenerName: string;
}

export interface StreamFilterKind<C> {
  /** MOSN's `type` (stream_filters[].type), matched exactly. */
  readonly type: string;
  /** Main thread, once per config entry: the typed config (plain data), or undefined after reporting errors. */
  validate(raw: unknown, path: string, ctx: StreamFilterValidationContext): C | undefined;
  /** Worker, once per listener snapshot. */
  create(config: C, env: StreamFilterEnv): StreamFilter;
}

/** Stored form: the config type is erased once registered (validate and create agree on it). */
interface AnyKind {
  readonly type: string;
  validate(raw: unknown, path: string, ctx: StreamFilterValidationContext): unknown;
  create(config: unknown, env: StreamFilterEnv): StreamFilter;
}

const kinds = new Map<string, AnyKind>();

/**
 * Registers a filter kind (from the filter's own module). This is the only stream filter
 * registry: config parsing validates stream_filters through it, and workers create from it.
 * A later registration replaces an earlier one; the returned function removes this one again
 * (restoring the earlier one), for tests.
 */
export function registerStreamFilterKind<C>(kind: StreamFilterKind<C>): () => void {
  const k = kind as unknown as AnyKind;
  const prev = kinds.get(kind.type);
  kinds.set(kind.type, k);
  return () => {
    if (kinds.get(kind.type) !== k) return;
    if (prev !== undefined) kinds.set(kind.type, prev);
    else kinds.delete(kind.type);
  };
}

export function streamFilterKind(type: string): AnyKind | undefined {
  return kinds.get(type);
}

export function streamFilterTypes(): string[] {
  return [...kinds.keys()].sort();
}

/**
 * The config layer's entry: the validator of a registered stream filter type (undefined when
 * none), in the config layer's validator form. The typed value is stored as
 * FilterConfig.config.value; workers hand it back to the kind's create().
 */
export function streamFilterValidator(type: string): ((raw: unknown, path: string, ctx: StreamFilterValidationContext) => Readonly<Record<string, unknown>>) | undefined {
  const k = kinds.get(type);
  if (k === undefined) return undefined;
  return (raw, path, ctx) => ({ value: k.validate(raw, path, ctx) });
}
