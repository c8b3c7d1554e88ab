// Bench peers `outrigger-uws` and `outrigger-uws-min` (mode http1): the HTTP/1.1 downstream
// candidate of issue #4 — uWebSockets.js serving the clients, one process, in two modes.
// Usage: node uws-front-main.js <listenPort> <upstreamPort>   (UWS_FRONT_MINIMAL=1: minimal mode)
//
// Full mode (`outrigger-uws`, the like-for-like comparison with the `outrigger` peer): every
// request goes through the same Exchange (src/http/exchange.ts) as Outrigger's own engines —
// routing, header ops, x-request-id, route timeout on the deadline wheel, listener / cluster /
// route counters, latency histograms, retries, local replies — built from the same generated
// config the way the worker builds it (stats layout, ClusterManager, ListenerContext,
// buildListenerRuntime -> the HTTP proxy factory's HttpEnv). Only the downstream differs:
//
//   uWS app.any('/*') ─ UwsDownstream (the Exchange's Downstream and the request's BodySource)
//        │ request: method, url, headers read synchronously from `req`; body chunks from
//        │          res.onData (copied), pause/resume with res.pause()/res.resume()
//        └─> Exchange.start() ─> startH1 (the raw pool, as in the `outrigger` peer)
//   response: status and headers held until the first body bytes or the end, then in one
//         res.cork(): writeStatus + writeHeader (content-length and date dropped: uWS frames the
//         body and writes its own Date) + tryEnd(chunk, content-length), or write(chunk)
//         (chunked) without a length; backpressure: onWritable -> exchange.onDownstreamDrain().
//         Trailers are dropped (uWS cannot write them). The client going away (res.onAborted)
//         -> exchange.onDownstreamClose().
//
// Minimal mode (`outrigger-uws-min`): no Exchange — no routing, no stats, no request id, no
// timeouts; the request (body buffered) goes straight to startRawH1 on the one host of the
// `backend` cluster, with a sink writing the response as above; upstream failure: 502.
import { STATUS_CODES } from 'node:http';
import * as uWS from 'uWebSockets.js';
import { parseConfig } from '../../src/config';
import type { ListenerContext } from '../../src/filters/network/types';
import { Exchange, type Downstream, type HttpEnv } from '../../src/http/exchange';
import { HttpProxyFactory } from '../../src/http/filter';
import { startRawH1 } from '../../src/http/h1/pool';
import type { Headers } from '../../src/http/headers';
import { bindRouteStats, drainHistograms, httpRouteStatNamesOf } from '../../src/http/route-stats';
import type { BodySink, BodySource, FailKind, UpstreamAttempt, UpstreamRequest, UpstreamSink } from '../../src/http/upstream';
import { buildListenerRuntime } from '../../src/network/listener';
import '../../src/proxy/proxy';
import { StatsLayout, STATS_SLOTS } from '../../src/stats/layout';
import { ClusterManager } from '../../src/upstream/cluster';
import { outriggerConfig } from './configs';

const [listenArg, upstreamArg] = process.argv.slice(2);
const listenPort = Number(listenArg);
const upstreamPort = Number(upstreamArg);
if (!(listenPort > 0) || !(upstreamPort > 0)) {
  process.stderr.write('usage: uws-front-main <listenPort> <upstreamPort>\n');
  process.exit(2);
}
if (typeof (uWS as { SSLApp?: unknown }).SSLApp !== 'function') {
  // The package falls back to a slow pure-JS shim when no binary matches: not a fair candidate.
  process.stderr.write('uws-front: uWebSockets.js loaded its pure-JS fallback (no native binary for this Node)\n');
  process.exit(3);
}
const MINIMAL = process.env.UWS_FRONT_MINIMAL === '1';

// ---- Outrigger's side, from the config the `outrigger` peer runs (one listener, one server).
const config = parseConfig(outriggerConfig({ mode: 'http1', port: listenPort, backendPort: upstreamPort, dir: '' }));
const server = config.servers[0];
const lc = server.listeners[0];
// Stats slots as the main thread assigns them (server.ts), in a buffer of the workers' size.
const layout = new StatsLayout();
const listenerBase = layout.listenerBase(lc.name);
for (const c of config.clusters) layout.clusterBase(c.name);
for (const r of httpRouteStatNamesOf(config)) layout.routeBase(r);
const slots = layout.toData();
const counters = new Float64Array(STATS_SLOTS);
// What the worker does per config snapshot (worker.ts applyConfig).
bindRouteStats(counters, slots.routes);
const clusters = new ClusterManager(config.clusters, counters, slots.clusters);
const ctx: ListenerContext = {
  name: lc.name,
  counters,
  base: listenerBase,
  clusters,
  idleTimeoutMs: lc.connectionIdleTimeoutMs,
  bufferLimit: lc.perConnBufferLimitBytes,
  accessLog: null,
  routers: server.routers,
};
const terminal = buildListenerRuntime(lc, ctx).terminal;
if (!(terminal instanceof HttpProxyFactory)) throw new Error(`uws-front: listener ${lc.name} is not an HTTP proxy`);
/** The HttpEnv of the `proxy` filter: parsed proxy config, compiled router, listener context. */
const env: HttpEnv = terminal.env;
// The worker drains (encodes) the recorded latency histograms once a second: so does this process.
setInterval(drainHistograms, 1000).unref();

const cluster = clusters.get('backend')!;
const host = cluster.hosts[0];
const CONNECTIONS = env.cfg.connectionsPerHost;
const BACKEND_AUTHORITY = host.address;
/** Minimal mode buffers request bodies: larger ones are refused (413). */
const MAX_BODY = 64 * 1024 * 1024;

/** Never forwarded, either way (connection-specific, RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);
/** Also not forwarded in a response: uWS writes its own framing and Date; trailers are not forwarded. */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'content-length', 'date', 'trailer']);
/** Minimal mode, also not forwarded in a request: host becomes the authority; 100-continue is uWS's business. */
const REQUEST_DROP = new Set([...HOP_BY_HOP, 'host', 'expect']);

/** "200 OK" ... for writeStatus, built once. */
const STATUS: string[] = [];
for (let s = 100; s < 600; s++) STATUS[s] = `${s} ${STATUS_CODES[s] ?? 'Unknown'}`;

/** Header names listed in a Connection header (also hop-by-hop), or null. */
function connectionNamed(h: Headers): Set<string> | null {
  const c = h['connection'];
  if (c === undefined) return null;
  const out = new Set<string>();
  for (const v of Array.isArray(c) ? c : [c]) for (const t of v.split(',')) out.add(t.trim().toLowerCase());
  return out;
}

/** A copy of a uWS chunk: uWS detaches its ArrayBuffer when the callback returns. */
function copyChunk(ab: ArrayBuffer): Buffer {
  return Buffer.from(new Uint8Array(ab));
}

// req.forEach and res.cork take callbacks that run synchronously: these module-level
// functions work on the variables set just before the call, so no closure is made per request.
let reqHeaders: Headers = {};
let reqHeaderCount = 0;
function collectHeader(k: string, v: string): void {
  reqHeaderCount++;
  const cur = reqHeaders[k];
  if (cur === undefined) reqHeaders[k] = v;
  else if (Array.isArray(cur)) cur.push(v);
  else reqHeaders[k] = [cur, v];
}
let ck: UwsResponse = null as unknown as UwsResponse;
let ckChunk: Buffer = Buffer.alloc(0);
let ckOk = true;
function corkedData(): void {
  ckOk = ck.writeData(ckChunk);
}
function corkedEnd(): void {
  ck.writeEnd();
}
function corkedFail(): void {
  (ck as Forward).writeFail();
}
function cork(r: UwsResponse, fn: () => void): void {
  ck = r;
  r.res.cork(fn);
}

/**
 * One response written to uWS (both modes): the head is held until the first body bytes or
 * the end, so that a small response leaves in one send; tryEnd with the announced length, or
 * write (chunked) without one; bytes uWS did not take wait for onWritable.
 */
abstract class UwsResponse {
  /** `res` must not be touched any more: the client went away, uWS has the whole response, or it was closed. */
  gone = false;
  /** This side closed the connection (res.close() runs the abort handler at once). */
  protected closing = false;
  protected headWritten = false;
  private status = 0;
  private respHeaders: Headers | null = null;
  /** Response content-length, -1 when unknown (uWS then writes chunked). */
  private total = -1;
  /** Close the connection after this response. */
  protected closeAfter = false;
  /** Body bytes of a response that closes the connection, written at the end with res.end(body, true). */
  private held: Buffer[] | null = null;
  /** The end came while bytes were pending: onWritable finishes the response (or cuts it short). */
  private ending = false;
  /** Response bytes uWS has not taken yet (tryEnd backpressure): a copy, and the write offset it starts at. */
  private pending: Buffer | null = null;
  private pendingOffset = 0;
  private writableSet = false;

  constructor(
    readonly res: uWS.HttpResponse,
    readonly method: string,
  ) {}

  /** Backpressure cleared (or the response completed while the producer waited): let it go on. */
  protected abstract drained(): void;

  /** Keeps the response head until the first body bytes or the end. */
  protected setHead(status: number, headers: Headers): void {
    this.status = status;
    this.respHeaders = headers;
    const cl = headers['content-length'];
    this.total = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : -1;
  }

  /** No body follows the head of this response. */
  private get bodiless(): boolean {
    const s = this.status;
    return this.method === 'HEAD' || s === 204 || s === 304 || s < 200;
  }

  protected closeRes(): void {
    this.gone = true;
    this.closing = true;
    this.res.close();
  }

  // ---- writes (inside res.cork)

  private writeHead(): void {
    this.headWritten = true;
    const res = this.res;
    const h = this.respHeaders as Headers;
    res.writeStatus(STATUS[this.status] ?? `${this.status} Unknown`);
    const named = connectionNamed(h);
    for (const k in h) {
      const v = h[k];
      if (v === undefined || RESPONSE_DROP.has(k) || (named !== null && named.has(k))) continue;
      if (typeof v === 'string') res.writeHeader(k, v);
      else for (let i = 0; i < v.length; i++) res.writeHeader(k, v[i]);
    }
  }

  writeData(chunk: Buffer): boolean {
    if (this.bodiless) return true;
    if (this.closeAfter) {
      (this.held ??= []).push(Buffer.from(chunk)); // rare (local replies that close): a copy, sent at the end
      return true;
    }
    if (!this.headWritten) this.writeHead();
    const res = this.res;
    if (this.total < 0) {
      // Unknown length: uWS writes chunked and buffers whatever the socket does not take.
      if (res.write(chunk)) return true;
      this.waitWritable();
      return false;
    }
    const offset = res.getWriteOffset();
    const [ok, done] = res.tryEnd(chunk, this.total);
    if (done) {
      this.gone = true;
      return true;
    }
    if (ok) return true;
    // uWS did not take all of it: keep a copy (the chunk is a view of a reused read buffer).
    this.pending = Buffer.from(chunk);
    this.pendingOffset = offset;
    this.waitWritable();
    return false;
  }

  writeEnd(): void {
    const res = this.res;
    if (!this.headWritten) {
      this.writeHead();
      if (this.held !== null) {
        res.end(Buffer.concat(this.held), true);
      } else if (this.method === 'HEAD' && this.total >= 0) {
        res.endWithoutBody(this.total, this.closeAfter); // a HEAD answer keeps the length it announces
      } else if (this.bodiless) {
        // No length at all: only the call without arguments (this uWS build writes a bogus
        // content-length for an explicit undefined); closeAfter is not honoured here.
        res.endWithoutBody();
      } else if (this.total > 0) {
        this.closeRes(); // announced a body, sent none
        return;
      } else {
        res.end(undefined, this.closeAfter); // content-length: 0
      }
      this.gone = true;
      return;
    }
    if (this.total < 0) {
      res.end(undefined, this.closeAfter);
      this.gone = true;
    } else if (this.pending === null) {
      // Every byte was given to tryEnd and it is not done: the upstream ended short.
      this.closeRes();
    } else {
      this.ending = true; // the rest is pending; onWritable finishes it
    }
  }

  private waitWritable(): void {
    if (this.writableSet) return;
    this.writableSet = true;
    // One closure per response that met backpressure (uWS passes only the offset).
    this.res.onWritable((offset) => this.onWritable(offset));
  }

  private onWritable(offset: number): boolean {
    if (this.gone) return true;
    const p = this.pending;
    if (p !== null) {
      const [ok, done] = this.res.tryEnd(p.subarray(offset - this.pendingOffset), this.total);
      if (done) {
        this.pending = null;
        this.gone = true;
      } else if (!ok) {
        return false;
      } else {
        this.pending = null;
        if (this.ending) {
          this.closeRes(); // ended short of its length
          return true;
        }
      }
    }
    this.drained();
    return true;
  }
}

/**
 * Full mode: one request as the Exchange's Downstream, and its body as the BodySource the
 * upstream attempt pulls (chunks copied out of uWS; reading paused while they wait).
 */
class UwsDownstream extends UwsResponse implements Downstream, BodySource {
  readonly h2 = false;
  /** uWS does not tell the request's HTTP version; it answers as HTTP/1.1. */
  readonly httpMinor = 1;
  exchange: Exchange | null = null;
  private sent = false;
  // ---- request body
  private sink: BodySink | null = null;
  private sinkPaused = false;
  /** uWS delivered the last chunk. */
  private bodyEnded = false;
  /** onBodyEnd was delivered. */
  private endSent = false;
  /** Chunks received before the sink started or while it is paused (copies). */
  private stash: Buffer[] | null = null;
  private readPaused = false;

  constructor(
    res: uWS.HttpResponse,
    method: string,
    readonly url: string,
    readonly authority: string,
    readonly headers: Headers,
    readonly headerCount: number,
    readonly hasBody: boolean,
    readonly length: number,
  ) {
    super(res, method);
  }

  /** res.onAborted: the client went away (or this side closed the connection). */
  onAborted(): void {
    const self = this.closing;
    this.gone = true;
    const x = this.exchange;
    this.exchange = null;
    if (x !== null && !self) x.onDownstreamClose();
    const k = this.sink;
    if (k !== null && !this.endSent) {
      this.sink = null;
      k.onBodyError(new Error('client connection closed'));
    }
  }

  // ---- request body: uWS -> BodySource

  onBody(ab: ArrayBuffer, isLast: boolean): void {
    if (this.gone) return;
    const n = ab.byteLength;
    if (isLast) this.bodyEnded = true;
    const k = this.sink;
    if (k !== null && !this.sinkPaused && this.stash === null) {
      // The pool may queue the bytes until the end of the tick: uWS's buffer is gone by then.
      if (n > 0) k.onBodyData(copyChunk(ab), 0, n);
      if (isLast && !this.endSent) {
        this.endSent = true;
        k.onBodyEnd();
      }
      return;
    }
    if (n > 0) (this.stash ??= []).push(copyChunk(ab));
    if (!isLast) this.pauseRead();
  }

  private pauseRead(): void {
    if (this.readPaused || this.bodyEnded || this.gone || typeof this.res.pause !== 'function') return; // without pause(): buffered
    this.readPaused = true;
    this.res.pause();
  }

  start(sink: BodySink): void {
    this.sink = sink;
    this.flushBody();
  }

  pause(): void {
    this.sinkPaused = true;
    this.pauseRead();
  }

  resume(): void {
    if (!this.sinkPaused) return;
    this.sinkPaused = false;
    this.flushBody();
  }

  /** Delivers stashed chunks (until the sink pauses), the end, and reads on. */
  private flushBody(): void {
    const k = this.sink;
    if (k === null) return;
    const st = this.stash;
    if (st !== null) {
      let i = 0;
      while (i < st.length && !this.sinkPaused) {
        const b = st[i++];
        k.onBodyData(b, 0, b.length);
      }
      st.splice(0, i);
      if (st.length > 0) return;
      this.stash = null;
    }
    if (this.bodyEnded) {
      if (!this.endSent) {
        this.endSent = true;
        k.onBodyEnd();
      }
    } else if (this.readPaused && !this.gone) {
      this.readPaused = false;
      this.res.resume();
    }
  }

  body(): BodySource {
    return this;
  }

  // ---- Downstream (the response)

  get headersSent(): boolean {
    return this.sent;
  }

  respond(status: number, headers: Headers, end: boolean, close: boolean): void {
    if (this.gone || this.sent) return;
    this.sent = true;
    this.closeAfter = close;
    this.setHead(status, headers);
    if (end) this.finishResponse();
  }

  write(chunk: Buffer): boolean {
    if (this.gone || chunk.length === 0) return true;
    ckChunk = chunk;
    cork(this, corkedData);
    return ckOk;
  }

  /** Trailers are dropped: uWS writes no trailer section. */
  end(_trailers: Headers | null): void {
    this.finishResponse();
  }

  private finishResponse(): void {
    if (this.gone) return;
    cork(this, corkedEnd);
    if (this.gone) this.exchange = null;
  }

  reset(): void {
    this.exchange = null;
    if (!this.gone) this.closeRes();
  }

  protected drained(): void {
    const x = this.exchange;
    if (this.gone) this.exchange = null;
    if (x !== null) x.onDownstreamDrain();
  }
}

/** Full mode: one request through the Exchange. */
function serveExchange(res: uWS.HttpResponse, method: string, url: string, h: Headers, headerCount: number): void {
  const hostHeader = h['host'];
  const cl = h['content-length'];
  const te = h['transfer-encoding'];
  const hasBody = te !== undefined || (cl !== undefined && cl !== '0');
  const length = te === undefined && typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : -1;
  const d = new UwsDownstream(res, method, url, typeof hostHeader === 'string' ? hostHeader : '', h, headerCount, hasBody, length);
  // One closure per request: uWS calls the abort handler without arguments.
  res.onAborted(() => d.onAborted());
  // One closure per request with a body: uWS calls the data handler with the chunk only.
  if (hasBody) res.onData((ab, isLast) => d.onBody(ab, isLast));
  const x = new Exchange(env, d);
  d.exchange = x;
  x.start();
}

/** Minimal mode: one proxied request, the uWS response and the upstream attempt's sink. */
class Forward extends UwsResponse implements UpstreamSink {
  attempt: UpstreamAttempt | null = null;
  /** The upstream response is complete (or failed). */
  upstreamDone = false;
  // Request body being collected.
  body: Buffer | null = null;
  bodyLen = 0;
  bodyParts: Buffer[] | null = null;

  constructor(
    res: uWS.HttpResponse,
    method: string,
    readonly path: string,
    readonly authority: string,
    readonly headers: Headers,
  ) {
    super(res, method);
  }

  /** Starts the upstream request (the body, if any, is complete). */
  forward(body: Buffer | null): void {
    const req: UpstreamRequest = { method: this.method, path: this.path, authority: this.authority, headers: this.headers, body };
    this.attempt = startRawH1(cluster, host, CONNECTIONS, req, this);
  }

  /** A request body chunk from uWS (the ArrayBuffer is neutered after the callback: copied). */
  onBodyChunk(ab: ArrayBuffer, isLast: boolean): void {
    if (this.gone) return;
    const n = ab.byteLength;
    if (this.body !== null) {
      // content-length: one Buffer of that size, filled in place.
      if (this.bodyLen + n > this.body.length) {
        this.refuse('400 Bad Request');
        return;
      }
      this.body.set(new Uint8Array(ab), this.bodyLen);
    } else if (n > 0) {
      if (this.bodyLen + n > MAX_BODY) {
        this.refuse('413 Payload Too Large');
        return;
      }
      (this.bodyParts ??= []).push(copyChunk(ab));
    }
    this.bodyLen += n;
    if (!isLast) return;
    const parts = this.bodyParts;
    const buf = this.body !== null ? this.body.subarray(0, this.bodyLen) : parts === null ? Buffer.alloc(0) : Buffer.concat(parts, this.bodyLen);
    this.body = null;
    this.bodyParts = null;
    this.forward(buf);
  }

  /** Answers without asking the upstream and closes (a body we will not take). */
  refuse(status: string): void {
    this.gone = true;
    this.upstreamDone = true;
    this.res.cork(() => this.res.writeStatus(status).end(undefined, true)); // rare path: one closure
  }

  onAborted(): void {
    this.gone = true;
    const a = this.attempt;
    if (a !== null && !this.upstreamDone) {
      this.upstreamDone = true;
      a.abort();
    }
  }

  protected drained(): void {
    if (!this.upstreamDone && this.attempt !== null) this.attempt.resume();
  }

  // ---- UpstreamSink

  onResponseHeaders(status: number, headers: Headers, endStream: boolean): void {
    if (this.gone) return;
    this.setHead(status, headers);
    if (endStream) {
      this.upstreamDone = true;
      cork(this, corkedEnd);
    }
    // Otherwise the head goes out with the first body bytes (one send for a small response).
  }

  onResponseData(chunk: Buffer): boolean {
    if (this.gone) return false;
    ckChunk = chunk;
    cork(this, corkedData);
    return ckOk;
  }

  onResponseEnd(_trailers: Headers | null): void {
    this.upstreamDone = true;
    if (this.gone) return;
    cork(this, corkedEnd);
  }

  onUpstreamError(_kind: FailKind, _err: Error): void {
    this.upstreamDone = true;
    if (this.gone) return;
    cork(this, corkedFail);
  }

  writeFail(): void {
    if (this.headWritten) {
      this.closeRes(); // part of the response is out: only a close tells the client
      return;
    }
    this.gone = true;
    this.res.writeStatus('502 Bad Gateway').end();
  }
}

/** Minimal mode: the request straight to the raw pool (body buffered first). */
function serveMinimal(res: uWS.HttpResponse, method: string, path: string, h: Headers): void {
  const hostHeader = h['host'];
  const authority = typeof hostHeader === 'string' ? hostHeader : BACKEND_AUTHORITY;
  const cl = h['content-length'];
  const hasBody = (typeof cl === 'string' && cl !== '0') || h['transfer-encoding'] !== undefined;
  const named = connectionNamed(h);
  for (const k in h) if (REQUEST_DROP.has(k) || (named !== null && named.has(k))) delete h[k];
  const f = new Forward(res, method, path, authority, h);
  // One closure per request: uWS calls the abort handler without arguments.
  res.onAborted(() => f.onAborted());
  if (!hasBody) {
    f.forward(null);
    return;
  }
  if (typeof cl === 'string') {
    const n = Number(cl);
    if (!Number.isSafeInteger(n) || n < 0) {
      f.refuse('400 Bad Request');
      return;
    }
    if (n > MAX_BODY) {
      f.refuse('413 Payload Too Large');
      return;
    }
    f.body = Buffer.allocUnsafe(n);
  }
  // One closure per request with a body: uWS calls the data handler with the chunk only.
  res.onData((ab, isLast) => f.onBodyChunk(ab, isLast));
}

const app = uWS.App();
app.any('/*', (res, req) => {
  // `req` is valid only during this call: everything is read now.
  const method = req.getCaseSensitiveMethod();
  const url = req.getUrl();
  const query = req.getQuery();
  const path = query ? `${url}?${query}` : url;
  reqHeaders = {};
  reqHeaderCount = 0;
  req.forEach(collectHeader);
  if (MINIMAL) serveMinimal(res, method, path, reqHeaders);
  else serveExchange(res, method, path, reqHeaders, reqHeaderCount);
});

app.listen('127.0.0.1', listenPort, (ls) => {
  if (!ls) {
    process.stderr.write(`uws-front: cannot listen on 127.0.0.1:${listenPort}\n`);
    process.exit(1);
  }
});
process.on('SIGTERM', () => process.exit(0));
