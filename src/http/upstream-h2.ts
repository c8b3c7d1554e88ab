/**
 * HTTP/2 upstream (h2c with prior knowledge, or h2 by ALPN over the cluster's TLS): one multiplexed session per (cluster, host) per
 * worker, replaced when it closes, errors or receives GOAWAY. Requests are streams on it.
 *
 * Per stream: one H2Attempt and six listeners, all module-level functions that find their
 * attempt through a symbol on the stream (no closure per stream).
 */
import { AsyncResource } from 'node:async_hooks';
import * as http2 from 'node:http2';
import type { Cluster } from '../upstream/cluster';
import type { Host } from '../upstream/lb';
import type { Headers } from './headers';
import { FailKind, isConnectError, libraryBody, type UpstreamAttempt, type UpstreamRequest, type UpstreamSink } from './upstream';

const { NGHTTP2_CANCEL } = http2.constants;
const END_STREAM = 0x1;
/** Session receive window floor: the stream window, so the connection window never limits one stream. */
const MIN_SESSION_WINDOW = 65_535;
// request() copies its options: shared constants, not an object per request.
const REQ_END: http2.ClientSessionRequestOptions = Object.freeze({ endStream: true });
const REQ_BODY: http2.ClientSessionRequestOptions = Object.freeze({ endStream: false });

interface Entry {
  session: http2.ClientHttp2Session;
  connected: boolean;
}

const sessions = new Map<string, Entry>();

function sessionFor(cluster: Cluster, host: Host, windowSize: number): Entry {
  const key = `${cluster.name}\u0000${host.address}`;
  const cur = sessions.get(key);
  if (cur !== undefined && !cur.session.closed && !cur.session.destroyed) return cur;
  const session = cluster.connectH2(host, {
    settings: { enablePush: false, initialWindowSize: windowSize },
    peerMaxConcurrentStreams: 1000,
  });
  const e: Entry = { session, connected: false };
  const drop = (): void => {
    if (sessions.get(key) === e) sessions.delete(key);
  };
  session.once('connect', () => {
    e.connected = true;
    session.setLocalWindowSize(Math.max(windowSize, MIN_SESSION_WINDOW));
  });
  session.on('error', drop);
  session.once('close', drop);
  session.once('goaway', drop);
  session.unref(); // an idle upstream session must not keep a draining worker alive
  sessions.set(key, e);
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

class H2Attempt implements UpstreamAttempt {
  stream: http2.ClientHttp2Stream | null = null;
  done = false;
  trailers: Headers | null = null;
  private gotHeaders = false;

  constructor(
    readonly sink: UpstreamSink,
    private readonly entry: Entry,
  ) {}

  attach(s: http2.ClientHttp2Stream): void {
    this.stream = s;
    (s as AttemptStream)[kAttempt] = this;
    s.on('response', onResponse);
    s.on('trailers', onTrailers);
    s.on('data', onData);
    s.on('end', onEnd);
    s.on('error', onError);
    s.on('close', onClose);
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
    this.done = true;
    const connectFailure = !this.entry.connected && !this.gotHeaders && (isConnectError(err) || this.entry.session.destroyed);
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
}

/**
 * Starts one request on the (cluster, host) session. `req.headers` become the stream's
 * headers: the exchange hands each attempt headers of its own (a copy per attempt when it may
 * retry), so the pseudo-headers are added in place rather than to another copy.
 */
export function startH2(cluster: Cluster, host: Host, windowSize: number, req: UpstreamRequest, sink: UpstreamSink, scheme = 'http'): UpstreamAttempt {
  const entry = sessionFor(cluster, host, windowSize);
  const a = new H2Attempt(sink, entry);
  const h = req.headers as http2.OutgoingHttpHeaders;
  h[':method'] = req.method;
  h[':path'] = req.path;
  h[':authority'] = req.authority;
  h[':scheme'] = scheme;
  if (h['host'] !== undefined) delete h['host'];
  try {
    const body = libraryBody(req.body);
    const s = request(entry.session, h, body === null ? REQ_END : REQ_BODY);
    a.attach(s);
    if (body !== null) {
      if (Buffer.isBuffer(body)) s.end(body);
      else body.pipe(s);
    }
  } catch (e) {
    queueMicrotask(() => a.fail(e instanceof Error ? e : new Error(String(e))));
  }
  return a;
}

export function closeH2Sessions(): void {
  for (const e of sessions.values()) e.session.close();
  sessions.clear();
}
