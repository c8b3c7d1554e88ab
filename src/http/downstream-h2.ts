/**
 * HTTP/2 downstream (h2c, prior knowledge): a node:http2 server that never listens; the
 * listener hands it sockets. Limits: SETTINGS_MAX_CONCURRENT_STREAMS (extra streams are
 * refused with RST_STREAM REFUSED_STREAM), the initial flow-control window, the header list
 * size and pair count (over it: the stream is reset), invalid frames and rejected streams per
 * session (over it: GOAWAY). An idle session is closed with GOAWAY after idle_timeout.
 */
import * as http2 from 'node:http2';
import type { Readable } from 'node:stream';
import { Exchange, type Downstream, type HttpEnv } from './exchange';
import type { Headers } from './headers';
import { HL } from './stats';

const NO_TRAILERS: Headers = {};

/**
 * One HTTP/2 stream as the exchange's downstream, on the core stream API (no compat
 * request/response objects): one adapter object and its two listeners per stream.
 */
class H2Downstream implements Downstream {
  readonly h2 = true;
  readonly method: string;
  readonly url: string;
  readonly authority: string;
  readonly httpMinor = 1;
  readonly headerCount: number;
  readonly hasBody: boolean;
  private sent = false;
  private trailers: Headers = NO_TRAILERS;
  private x: Exchange | null = null;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly headers: Headers,
  ) {
    this.method = String(headers[':method'] ?? 'GET');
    this.url = String(headers[':path'] ?? '/');
    const a = headers[':authority'] ?? headers['host'];
    this.authority = typeof a === 'string' ? a : '';
    this.headerCount = 0; // limited by the session (maxHeaderListPairs)
    this.hasBody = !stream.endAfterHeaders;
  }

  run(env: HttpEnv): void {
    const x = new Exchange(env, this);
    this.x = x;
    const st = this.stream;
    st.once('close', this.onClose);
    st.on('drain', this.onDrain);
    st.on('wantTrailers', this.onWantTrailers);
    x.start();
  }

  private readonly onClose = (): void => {
    if (this.x !== null) this.x.onDownstreamClose();
  };

  private readonly onDrain = (): void => {
    if (this.x !== null) this.x.onDownstreamDrain();
  };

  private readonly onWantTrailers = (): void => {
    this.stream.sendTrailers(this.trailers as http2.OutgoingHttpHeaders);
  };

  body(): Readable {
    return this.stream;
  }

  get headersSent(): boolean {
    return this.sent;
  }

  respond(status: number, headers: Headers, end: boolean): void {
    const st = this.stream;
    if (st.destroyed || st.closed) return;
    this.sent = true;
    headers[':status'] = String(status);
    st.respond(headers as http2.OutgoingHttpHeaders, end ? { endStream: true } : { waitForTrailers: true });
  }

  write(chunk: Buffer): boolean {
    const st = this.stream;
    if (st.destroyed) return true;
    // The chunk may be a view of a reused read buffer; the stream queues what it cannot send now.
    return st.write(Buffer.from(chunk));
  }

  end(trailers: Headers | null): void {
    const st = this.stream;
    if (st.destroyed) return;
    if (!this.sent) {
      // Trailers before any head (a deadline at the start): a trailers-only response.
      this.respond(200, { ...(trailers ?? {}) }, true);
      return;
    }
    if (trailers !== null) this.trailers = trailers;
    st.end();
  }

  reset(): void {
    const st = this.stream;
    if (!st.destroyed) st.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }
}

export function createH2Server(env: HttpEnv): http2.Http2Server {
  const cfg = env.cfg;
  const c = env.ctx.counters;
  const base = env.ctx.base;
  const server = http2.createServer({
    settings: {
      maxConcurrentStreams: cfg.h2MaxConcurrentStreams,
      initialWindowSize: cfg.h2InitialWindowSize,
      maxHeaderListSize: cfg.h2MaxHeaderListSize,
      enablePush: false,
    },
    maxHeaderListPairs: cfg.maxHeaders + 4, // + the pseudo-headers
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxSessionMemory: 32,
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => new H2Downstream(stream, headers as Headers).run(env));
  server.on('session', (session: http2.ServerHttp2Session) => {
    session.on('error', () => {});
    if (cfg.idleTimeoutMs > 0) {
      session.setTimeout(cfg.idleTimeoutMs, () => {
        c[base + HL.H2_GOAWAY_SENT]++;
        session.close();
      });
    }
    session.on('frameError', () => c[base + HL.H2_RST_SENT]++);
    const s = session as http2.ServerHttp2Session & { on(e: 'stream', l: (st: http2.ServerHttp2Stream) => void): unknown };
    s.on('stream', (st: http2.ServerHttp2Stream) => {
      st.on('error', () => {});
      st.once('close', () => {
        const code = st.rstCode;
        if (code === http2.constants.NGHTTP2_REFUSED_STREAM) c[base + HL.H2_REFUSED_STREAM]++;
      });
    });
  });
  server.on('sessionError', () => c[base + HL.H2_GOAWAY_SENT]++);
  return server;
}
