/**
 * HTTP/2 upstream (h2c with prior knowledge, or h2 by ALPN over the cluster's TLS): one multiplexed session per (cluster, host) per
 * worker, replaced when it closes, errors or receives GOAWAY. Requests are streams on it.
 *
 * Per stream: one H2Attempt and six listeners, all module-level functions that find their
 * attempt through a symbol on the stream (no closure per stream).
 */
import { AsyncResource } from 'node:async_hooks';
import * as http2 from 'node:http2';
import type { Readable } from 'node:stream';
import { hostPort } from '../stream/pipeline';
import type { Cluster } from '../upstream/cluster';
import type { Host, UpstreamPool } from '../upstream/lb';
import type { Headers } from './headers';
import { FailKind, isConnectError, libraryBody, OVERFLOW_ERROR, type UpstreamAttempt, type UpstreamRequest, type UpstreamSink } from './upstream';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;
const END_STREAM = 0x1;
/** Session receive window floor: the stream window, so the connection window never limits one stream. */
const MIN_SESSION_WINDOW = 65_535;
// request() copies its options: shared constants, not an object per request.
const REQ_END: http2.ClientSessionRequestOptions = Object.freeze({ endStream: true });
const REQ_BODY: http2.ClientSessionRequestOptions = Object.freeze({ endStream: false });

/** A session to one host, registered with the cluster manager as that host's 'h2' pool. */
class H2Entry implements UpstreamPool {
  connected = false;
  /** A GOAWAY arrived: no new stream goes on this session. */
  goaway = false;
  /** The GOAWAY's last-stream-id: streams above it were never processed. */
  lastStreamId = 0;

  constructor(readonly session: http2.ClientHttp2Session) {}

  get usable(): boolean {
    return !this.goaway && !this.session.closed && !this.session.destroyed;
  }

  /** Graceful: streams in flight finish, then the session closes. */
  drain(): void {
    live.delete(this);
    if (!this.session.closed && !this.session.destroyed) this.session.close();
  }
}

/** Sessions not drained yet (closeH2Sessions). */
const live = new Set<H2Entry>();

/** The host's usable session, or a new one; null when max_connections allows no new one. */
function sessionFor(cluster: Cluster, host: Host, windowSize: number): H2Entry | null {
  const cur = cluster.pool(host, 'h2') as H2Entry | undefined;
  if (cur !== undefined && cur.usable) return cur;
  if (!cluster.tryAcquireConnection()) return null;
  const session = cluster.connectH2(host, {
    settings: { enablePush: false, initialWindowSize: windowSize },
    peerMaxConcurrentStreams: 1000,
  });
  const e = new H2Entry(session);
  const drop = (): void => {
    live.delete(e);
    cluster.removePool(host, 'h2', e);
  };
  session.once('connect', () => {
    e.connected = true;
    session.setLocalWindowSize(Math.max(windowSize, MIN_SESSION_WINDOW));
  });
  session.on('error', drop);
  session.once('close', drop);
  session.once('goaway', (_code: number, lastStreamId: number) => {
    e.goaway = true;
    e.lastStreamId = lastStreamId;
    drop();
  });
  session.unref(); // an idle upstream session must not keep a draining worker alive
  live.add(e);
  cluster.addPool(host, 'h2', e); // an unusable previous session is closed gracefully
  return e;
}

/**
 * ClientHttp2Session.request() binds one callback per request with AsyncResource.prototype.bind,
 * which on Node 20 also wraps a getter and a setter of the deprecated `asyncResource` property
 * (DEP0172) of the bound function in util.deprecate (a prototype change per wrapper): about a
 * quarter of the proxy's CPU per HTTP/2 request here. Only around our request() call, bind is
 * the same async-scope binding without that property; nothing reads the callback node keeps.
 */
type BindFn = (this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown) => unknown;
const asyncResourceProto = AsyncResource.prototype as unknown as { bind: BindFn };
const nodeBind = asyncResourceProto.bind;
function scopeBind(this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown): unknown {
  return thisArg !== undefined ? this.runInAsyncScope.bind(this, fn, thisArg) : boundIn(this, fn);
}
function boundIn(r: AsyncResource, fn: (...args: unknown[]) => unknown): unknown {
  // One closure: the binding itself, as node's own.
  return function bound(this: unknown, ...args: unknown[]): unknown {
    return r.runInAsyncScope(fn, this, ...args);
  };
}

function request(session: http2.ClientHttp2Session, h: http2.OutgoingHttpHeaders, opts: http2.ClientSessionRequestOptions): http2.ClientHttp2Stream {
  asyncResourceProto.bind = scopeBind;
  try {
    return session.request(h, opts);
  } finally {
    asyncResourceProto.bind = nodeBind;
  }
}

const kAttempt = Symbol('outrigger.h2Attempt');
type AttemptStream = http2.ClientHttp2Stream & { [kAttempt]: H2Attempt };

// Stream listeners: `this` is the stream (EventEmitter calls listeners with the emitter).
function onResponse(this: AttemptStream, h: http2.IncomingHttpHeaders, flags: number): void {
  this[kAttempt].onResponse(h as Headers, flags);
}
function onTrailers(this: AttemptStream, t: http2.IncomingHttpHeaders): void {
  this[kAttempt].trailers = t as Headers;
}
function onData(this: AttemptStream, chunk: Buffer): void {
  const a = this[kAttempt];
  if (!a.done && !a.sink.onResponseData(chunk)) this.pause();
}
function onEnd(this: AttemptStream): void {
  this[kAttempt].onEnd();
}
function onError(this: AttemptStream, err: Error): void {
  this[kAttempt].fail(err);
}
function onClose(this: AttemptStream): void {
  const a = this[kAttempt];
  if (!a.done) a.fail(new Error(`upstream stream closed (code ${this.rstCode})`));
}

function ignore(): void {}

/** The stream events an attempt listens to, and its listener for each. */
const LISTENERS: readonly (readonly [string, (this: AttemptStream, ...args: never[]) => void])[] = [
  ['response', onResponse],
  ['trailers', onTrailers],
  ['data', onData],
  ['end', onEnd],
  ['error', onError],
  ['close', onClose],
];

/** Unhooks a stream from its attempt (the attempt moved to another stream); its late errors are ignored. */
function detach(s: http2.ClientHttp2Stream): void {
  for (const [ev, fn] of LISTENERS) s.removeListener(ev, fn as (...args: unknown[]) => void);
  s.on('error', ignore);
}

// ---- Streamed request bodies (gRPC, bodies of unknown length): a Readable into the stream.
// What Readable.pipe does here, without its per-body closures, state object and the six
// listeners it adds and removes on both streams (~5 % of a gRPC unary call): data with
// backpressure (pause, resume on the stream's drain), end -> end. An error of the source
// leaves the stream open, as pipe does (the exchange aborts the attempt when the client goes).

const kBodyTo = Symbol('outrigger.h2BodyTo');
const kBodyFrom = Symbol('outrigger.h2BodyFrom');
type BodyReadable = Readable & { [kBodyTo]: http2.ClientHttp2Stream };
type BodyStream = http2.ClientHttp2Stream & { [kBodyFrom]?: Readable };

function onBodyData(this: BodyReadable, chunk: Buffer): void {
  const s = this[kBodyTo] as BodyStream;
  if (s.destroyed || s.writableEnded) {
    // The attempt is over (reset, aborted): nothing more goes upstream.
    this.pause();
    return;
  }
  if (!s.write(chunk)) {
    this.pause();
    if (s[kBodyFrom] === undefined) {
      s[kBodyFrom] = this;
      s.on('drain', onBodyDrain);
    }
  }
}
function onBodyEnd(this: BodyReadable): void {
  const s = this[kBodyTo];
  if (!s.destroyed && !s.writableEnded) s.end();
}
function onBodyDrain(this: BodyStream): void {
  const src = this[kBodyFrom];
  if (src !== undefined && !this.destroyed) src.resume();
}

function forwardBody(src: Readable, s: http2.ClientHttp2Stream): void {
  (src as BodyReadable)[kBodyTo] = s;
  src.on('data', onBodyData);
  src.once('end', onBodyEnd);
  src.resume();
}

/** Times one attempt is sent again after its stream was refused unprocessed (GOAWAY, REFUSED_STREAM). */
const MAX_UNPROCESSED_REPLAYS = 3;

class H2Attempt implements UpstreamAttempt {
  stream: http2.ClientHttp2Stream | null = null;
  done = false;
  trailers: Headers | null = null;
  private gotHeaders = false;
  private replays = 0;
  entry: H2Entry | null = null;

  constructor(
    readonly sink: UpstreamSink,
    private readonly cluster: Cluster,
    private readonly host: Host,
    private readonly windowSize: number,
    private readonly req: UpstreamRequest,
  ) {}

  /** Opens the stream on the host's current session (a new one after a GOAWAY) and sends the request. */
  send(): void {
    const entry = sessionFor(this.cluster, this.host, this.windowSize);
    if (entry === null) {
      this.done = true;
      queueMicrotask(() => this.sink.onUpstreamError(FailKind.Overflow, OVERFLOW_ERROR));
      return;
    }
    this.entry = entry;
    const req = this.req;
    try {
      const body = libraryBody(req.body);
      const s = request(entry.session, req.headers as http2.OutgoingHttpHeaders, body === null ? REQ_END : REQ_BODY);
      this.attach(s);
      if (body !== null) {
        if (Buffer.isBuffer(body)) s.end(body);
        else forwardBody(body, s);
      }
    } catch (e) {
      queueMicrotask(() => this.fail(e instanceof Error ? e : new Error(String(e))));
    }
  }

  /**
   * The stream failed without the upstream having processed it: refused (REFUSED_STREAM), above
   * the last-stream-id of a GOAWAY, or never sent because its session went away first.
   */
  private unprocessed(err: Error): boolean {
    if (this.gotHeaders) return false;
    const s = this.stream;
    const e = this.entry;
    if (s === null) return (err as { code?: string }).code === 'ERR_HTTP2_GOAWAY_SESSION' || (e !== null && e.goaway);
    if (s.rstCode === NGHTTP2_REFUSED_STREAM) return true;
    if (e === null || !e.goaway) return false;
    return s.id === undefined || s.id > e.lastStreamId;
  }

  attach(s: http2.ClientHttp2Stream): void {
    this.stream = s;
    (s as AttemptStream)[kAttempt] = this;
    for (let i = 0; i < LISTENERS.length; i++) s.on(LISTENERS[i][0], LISTENERS[i][1] as (...args: unknown[]) => void);
  }

  onResponse(h: Headers, flags: number): void {
    if (this.done) return;
    const status = Number(h[':status']);
    if (status < 200) return;
    this.gotHeaders = true;
    this.sink.onResponseHeaders(status, h, (flags & END_STREAM) !== 0);
  }

  onEnd(): void {
    if (this.done) return;
    this.done = true;
    if (!this.gotHeaders) {
      this.sink.onUpstreamError(FailKind.Reset, new Error('upstream stream ended without a response'));
      return;
    }
    this.sink.onResponseEnd(this.trailers);
  }

  fail(err: Error): void {
    if (this.done) return;
    const b = this.req.body;
    if (this.replays < MAX_UNPROCESSED_REPLAYS && (b === null || Buffer.isBuffer(b)) && this.unprocessed(err)) {
      // Never processed upstream: safe to send again whatever the method, on a new session.
      this.replays++;
      const old = this.stream;
      if (old !== null) detach(old);
      this.stream = null;
      this.trailers = null;
      this.send();
      return;
    }
    this.done = true;
    const e = this.entry as H2Entry;
    const connectFailure = !e.connected && !this.gotHeaders && (isConnectError(err) || e.session.destroyed);
    this.sink.onUpstreamError(connectFailure ? FailKind.ConnectFailure : FailKind.Reset, err);
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.stream !== null && !this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  resume(): void {
    if (this.stream !== null && !this.done) this.stream.resume();
  }

  localAddress(): string | undefined {
    const sock = this.entry === null ? undefined : this.entry.session.socket;
    return sock === undefined || sock === null ? undefined : hostPort(sock.localAddress, sock.localPort);
  }
}

/**
 * Starts one request on the (cluster, host) session. `req.headers` become the stream's
 * headers: the exchange hands each attempt headers of its own (a copy per attempt when it may
 * retry), so the pseudo-headers are added in place rather than to another copy.
 */
export function startH2(cluster: Cluster, host: Host, windowSize: number, req: UpstreamRequest, sink: UpstreamSink, scheme = 'http'): UpstreamAttempt {
  const h = req.headers as http2.OutgoingHttpHeaders;
  h[':method'] = req.method;
  h[':path'] = req.path;
  h[':authority'] = req.authority;
  h[':scheme'] = cluster.tlsFor(host) !== null ? 'https' : scheme; // the scheme of the upstream connection (per host: transport_socket_matches)
  if (h['host'] !== undefined) delete h['host'];
  const a = new H2Attempt(sink, cluster, host, windowSize, req);
  a.send();
  return a;
}

/** Closes every session of this worker (tests, shutdown). */
export function closeH2Sessions(): void {
  for (const e of [...live]) e.drain();
}
