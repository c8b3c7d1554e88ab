/**
 * HTTP/2 upstream (h2c, prior knowledge): one multiplexed session per (cluster, host) per
 * worker, replaced when it closes, errors or receives GOAWAY. Requests are streams on it.
 */
import * as http2 from 'node:http2';
import type { Cluster } from '../upstream/cluster';
import type { Host } from '../upstream/lb';
import type { Headers } from './headers';
import { FailKind, isConnectError, libraryBody, type UpstreamAttempt, type UpstreamRequest, type UpstreamSink } from './upstream';

const { NGHTTP2_CANCEL } = http2.constants;
const END_STREAM = 0x1;

interface Entry {
  session: http2.ClientHttp2Session;
  connected: boolean;
}

const sessions = new Map<string, Entry>();

function sessionFor(cluster: Cluster, host: Host, windowSize: number): Entry {
  const key = `${cluster.name}\u0000${host.address}`;
  const cur = sessions.get(key);
  if (cur !== undefined && !cur.session.closed && !cur.session.destroyed) return cur;
  const session = http2.connect(`http://${host.address}`, {
    settings: { enablePush: false, initialWindowSize: windowSize },
    peerMaxConcurrentStreams: 1000,
  });
  const e: Entry = { session, connected: false };
  const drop = (): void => {
    if (sessions.get(key) === e) sessions.delete(key);
  };
  session.once('connect', () => {
    e.connected = true;
    session.setLocalWindowSize(Math.max(windowSize, 65_535));
  });
  session.on('error', drop);
  session.once('close', drop);
  session.once('goaway', drop);
  if (cluster.connectTimeoutMs > 0) {
    const t = setTimeout(() => {
      if (!e.connected) session.destroy(Object.assign(new Error('upstream connect timeout'), { code: 'ETIMEDOUT' }));
    }, cluster.connectTimeoutMs);
    t.unref();
    session.once('connect', () => clearTimeout(t));
  }
  session.unref(); // an idle upstream session must not keep a draining worker alive
  sessions.set(key, e);
  return e;
}

class H2Attempt implements UpstreamAttempt {
  stream: http2.ClientHttp2Stream | null = null;
  private done = false;
  private gotHeaders = false;
  private trailers: Headers | null = null;

  constructor(
    private readonly sink: UpstreamSink,
    private readonly entry: Entry,
  ) {}

  attach(s: http2.ClientHttp2Stream): void {
    this.stream = s;
    s.on('response', (h: http2.IncomingHttpHeaders, flags: number) => {
      if (this.done) return;
      const status = Number(h[':status']);
      if (status < 200) return;
      this.gotHeaders = true;
      this.sink.onResponseHeaders(status, h as Headers, (flags & END_STREAM) !== 0);
    });
    s.on('trailers', (t: http2.IncomingHttpHeaders) => {
      this.trailers = t as Headers;
    });
    s.on('data', (chunk: Buffer) => {
      if (this.done) return;
      if (!this.sink.onResponseData(chunk)) s.pause();
    });
    s.on('end', () => {
      if (this.done) return;
      this.done = true;
      if (!this.gotHeaders) {
        this.sink.onUpstreamError(FailKind.Reset, new Error('upstream stream ended without a response'));
        return;
      }
      this.sink.onResponseEnd(this.trailers);
    });
    s.on('error', (err: Error) => this.fail(err));
    s.on('close', () => {
      if (!this.done) this.fail(new Error(`upstream stream closed (code ${s.rstCode})`));
    });
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

export function startH2(cluster: Cluster, host: Host, windowSize: number, req: UpstreamRequest, sink: UpstreamSink, scheme = 'http'): UpstreamAttempt {
  const entry = sessionFor(cluster, host, windowSize);
  const a = new H2Attempt(sink, entry);
  const h: http2.OutgoingHttpHeaders = { ...(req.headers as http2.OutgoingHttpHeaders) };
  h[':method'] = req.method;
  h[':path'] = req.path;
  h[':authority'] = req.authority;
  h[':scheme'] = scheme;
  delete h['host'];
  try {
    const body = libraryBody(req.body);
    const s = entry.session.request(h, { endStream: body === null });
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
