/**
 * HTTP/1.1 downstream on node:http (the library engine, OUTRIGGER_H1_DOWNSTREAM=node; the
 * default is the raw engine in h1/downstream.ts): a node:http server that never listens; the
 * listener hands it accepted sockets ('connection').
 *
 * Hardening (llhttp strict mode, never insecureHTTPParser): Content-Length together with
 * Transfer-Encoding, duplicate differing Content-Length, bad chunk sizes, obs-fold, bare LF
 * and invalid header characters are parse errors -> 400; a header section over
 * max_header_size -> 431; more than max_headers headers -> 431 (exchange.ts); a head slower
 * than headers_timeout or a request slower than request_timeout -> 408; a missing Host on
 * HTTP/1.1 -> 400. Each is counted, and the connection is closed after the reply.
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import type { Readable } from 'node:stream';
import { Exchange, type Downstream, type DownstreamTransport, type HttpEnv } from './exchange';
import type { Headers } from './headers';
import { closingReply } from './h1/codec';
import { HL } from './stats';
import { tunnel } from './tunnel';

function clientErrorStatus(code: string | undefined): [number, number] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, HL.HEADER_OVERFLOW];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, HL.REQUEST_TIMEOUT];
    default:
      return [400, HL.BAD_REQUEST];
  }
}

/** A node:http request and its response as the exchange's downstream. */
class NodeH1Downstream implements Downstream {
  readonly h2 = false;
  readonly method: string;
  readonly url: string;
  readonly authority: string;
  readonly httpMinor: number;
  readonly headers: Headers;
  readonly headerCount: number;
  readonly hasBody: boolean;
  private hasLength = false;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
    const h = req.headers as Headers;
    this.headers = h;
    this.authority = typeof h['host'] === 'string' ? h['host'] : '';
    this.httpMinor = req.httpVersionMinor;
    this.headerCount = req.rawHeaders.length >>> 1;
    const cl = h['content-length'];
    this.hasBody = h['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
  }

  run(env: HttpEnv): void {
    const x = new Exchange(env, this);
    this.res.once('close', () => x.onDownstreamClose());
    this.res.on('drain', () => x.onDownstreamDrain());
    x.start();
  }

  body(): Readable {
    return this.req;
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  respond(status: number, headers: Headers, end: boolean, close: boolean): void {
    if (close) headers['connection'] = 'close';
    this.hasLength = headers['content-length'] !== undefined;
    // Trailers need chunked framing (HTTP/1.1, no length); node:http throws on a Trailer header otherwise.
    if (this.hasLength || this.httpMinor === 0) delete headers['trailer'];
    this.res.writeHead(status, headers as http.OutgoingHttpHeaders);
    if (end) this.res.end();
  }

  write(chunk: Buffer): boolean {
    // The chunk may be a view of a reused read buffer; node:http queues what it cannot write now.
    return this.res.write(Buffer.from(chunk));
  }

  end(trailers: Headers | null): void {
    // Trailers travel only in a chunked response (no content-length).
    if (trailers !== null && !this.hasLength && Object.keys(trailers).length > 0) this.res.addTrailers(trailers as http.OutgoingHttpHeaders);
    this.res.end();
  }

  transport(): DownstreamTransport {
    return this.req.socket;
  }

  reset(): void {
    this.req.socket.destroy();
  }
}

export function createH1Server(env: HttpEnv): http.Server {
  const cfg = env.cfg;
  const server = http.createServer(
    {
      maxHeaderSize: cfg.maxHeaderSize,
      insecureHTTPParser: false,
      requestTimeout: cfg.requestTimeoutMs,
      headersTimeout: Math.min(cfg.headersTimeoutMs, cfg.requestTimeoutMs > 0 ? cfg.requestTimeoutMs : cfg.headersTimeoutMs),
      keepAliveTimeout: cfg.idleTimeoutMs,
      requireHostHeader: false, // checked in exchange.ts, to count it
      connectionsCheckingInterval: Math.max(250, Math.min(cfg.headersTimeoutMs, 2000) / 2),
      noDelay: true,
    },
    (req, res) => new NodeH1Downstream(req, res).run(env),
  );
  // One more than the limit, so that exchange.ts can tell "over the limit" from "at it".
  server.maxHeadersCount = cfg.maxHeaders + 1;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    const [status, stat] = clientErrorStatus(err.code);
    env.ctx.counters[env.ctx.base + stat]++;
    env.ctx.counters[env.ctx.base + HL.RQ_1XX + 3]++;
    // A request whose body turns out malformed is already on its way upstream (streamed): its
    // response has not started, so it can still be answered 400 (the exchange sees the close).
    const msg = (socket as net.Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (socket.writable && (msg === undefined || msg === null || msg.headersSent !== true)) {
      socket.end(closingReply(status));
    } else socket.destroy();
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => tunnel(env, req, socket, head, false));
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => tunnel(env, req, socket, head, true));
  // Node starts its request/headers timeout checker on 'listening'; this server never listens.
  server.emit('listening');
  return server;
}
