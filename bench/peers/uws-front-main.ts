// Bench peer `outrigger-uws` (mode http1): the HTTP/1.1 downstream candidate of issue #4 —
// uWebSockets.js serving the clients, Outrigger's raw upstream pool (src/http/h1/pool.ts
// `startRawH1`, the code the `outrigger` peer uses) forwarding to the backend. One process.
// Usage: node uws-front-main.js <listenPort> <upstreamPort>
//
//   uWS app.any('/*') ─ method, url, headers read synchronously from `req`
//        │ body (content-length or chunked): res.onData chunks copied into one Buffer
//        └─> startRawH1(cluster `backend` of the http1 workload's Outrigger config, its one host,
//                       64 connections (Outrigger's connections_per_host default), request, sink)
//   sink: head kept until the first body bytes or the end, then in one res.cork():
//         writeStatus + writeHeader (hop-by-hop, content-length and date dropped: uWS frames
//         the body and writes its own Date) + tryEnd(chunk, content-length) or, without a
//         length, write(chunk) (chunked); backpressure: onWritable -> attempt.resume().
//   upstream failure before any byte was written: 502; after: the connection is closed.
//
// Deliberately minimal: one cluster, no routing, no stats, no request id, no timeouts
// (the http1 workload's Outrigger config routes everything to one cluster too).
import { STATUS_CODES } from 'node:http';
import * as uWS from 'uWebSockets.js';
import { parseConfig } from '../../src/config';
import { HTTP_DEFAULTS } from '../../src/http/config';
import { startRawH1 } from '../../src/http/h1/pool';
import type { Headers } from '../../src/http/headers';
import type { FailKind, UpstreamAttempt, UpstreamRequest, UpstreamSink } from '../../src/http/upstream';
import { StatsLayout } from '../../src/stats/layout';
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

// The cluster exactly as the `outrigger` peer's worker builds it from the same generated config.
const config = parseConfig(outriggerConfig({ mode: 'http1', port: listenPort, backendPort: upstreamPort, dir: '' }));
const layout = new StatsLayout();
const clusterBase = layout.clusterBase('backend');
const counters = new Float64Array(layout.toData().next);
const cluster = new ClusterManager(config.clusters, counters, { backend: clusterBase }).get('backend')!;
const host = cluster.hosts[0];
const CONNECTIONS = HTTP_DEFAULTS.connectionsPerHost;
const BACKEND_AUTHORITY = host.address;
/** Request bodies are buffered: larger ones are refused (413). */
const MAX_BODY = 64 * 1024 * 1024;

/** Never forwarded, either way (connection-specific, RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);
/** Also not forwarded in a response: uWS writes its own framing and Date; trailers are not forwarded. */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'content-length', 'date', 'trailer']);
/** Also not forwarded in a request: host becomes the authority; 100-continue is uWS's business. */
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

// req.forEach and res.cork take callbacks that run synchronously: these module-level
// functions work on the variables set just before the call, so no closure is made per request.
let reqHeaders: Headers = {};
function collectHeader(k: string, v: string): void {
  const cur = reqHeaders[k];
  if (cur === undefined) reqHeaders[k] = v;
  else if (Array.isArray(cur)) cur.push(v);
  else reqHeaders[k] = [cur, v];
}
let ck: Forward = null as unknown as Forward;
let ckChunk: Buffer = Buffer.alloc(0);
let ckOk = true;
function corkedData(): void {
  ckOk = ck.writeData(ckChunk);
}
function corkedEnd(): void {
  ck.writeEnd();
}
function corkedFail(): void {
  ck.writeFail();
}
function cork(f: Forward, fn: () => void): void {
  ck = f;
  f.res.cork(fn);
}

/** One proxied request: the uWS response and the upstream attempt's sink. */
class Forward implements UpstreamSink {
  attempt: UpstreamAttempt | null = null;
  /** The client went away: `res` must not be touched any more. */
  aborted = false;
  /** uWS has the whole response: `res` must not be touched any more. */
  responded = false;
  /** Status line and headers written. */
  headWritten = false;
  /** The upstream response is complete (or failed). */
  upstreamDone = false;
  status = 0;
  respHeaders: Headers | null = null;
  /** Response content-length, -1 when unknown (uWS then writes chunked). */
  total = -1;
  /** Response bytes uWS has not taken yet (tryEnd backpressure): a copy, and the write offset it starts at. */
  pending: Buffer | null = null;
  pendingOffset = 0;
  writableSet = false;
  // Request body being collected.
  body: Buffer | null = null;
  bodyLen = 0;
  bodyParts: Buffer[] | null = null;

  constructor(
    readonly res: uWS.HttpResponse,
    readonly method: string,
    readonly path: string,
    readonly authority: string,
    readonly headers: Headers,
  ) {}

  /** Starts the upstream request (the body, if any, is complete). */
  forward(body: Buffer | null): void {
    const req: UpstreamRequest = { method: this.method, path: this.path, authority: this.authority, headers: this.headers, body };
    this.attempt = startRawH1(cluster, host, CONNECTIONS, req, this);
  }

  /** A request body chunk from uWS (the ArrayBuffer is neutered after the callback: copied). */
  onBodyChunk(ab: ArrayBuffer, isLast: boolean): void {
    if (this.aborted || this.responded) return;
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
      (this.bodyParts ??= []).push(Buffer.from(new Uint8Array(ab))); // a copy of the bytes
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
    this.responded = true;
    this.upstreamDone = true;
    this.res.cork(() => this.res.writeStatus(status).end(undefined, true)); // rare path: one closure
  }

  readonly onAborted = (): void => {
    // One closure per request: uWS calls the abort handler without arguments.
    this.aborted = true;
    const a = this.attempt;
    if (a !== null && !this.upstreamDone) {
      this.upstreamDone = true;
      a.abort();
    }
  };

  // ---- UpstreamSink

  onResponseHeaders(status: number, headers: Headers, endStream: boolean): void {
    if (this.aborted) return;
    this.status = status;
    this.respHeaders = headers;
    const cl = headers['content-length'];
    this.total = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : -1;
    if (endStream) {
      this.upstreamDone = true;
      cork(this, corkedEnd);
    }
    // Otherwise the head goes out with the first body bytes (one send for a small response).
  }

  onResponseData(chunk: Buffer): boolean {
    if (this.aborted || this.responded) return false;
    ckChunk = chunk;
    cork(this, corkedData);
    return ckOk;
  }

  onResponseEnd(_trailers: Headers | null): void {
    this.upstreamDone = true;
    if (this.aborted || this.responded) return;
    cork(this, corkedEnd);
  }

  onUpstreamError(_kind: FailKind, _err: Error): void {
    this.upstreamDone = true;
    if (this.aborted || this.responded) return;
    cork(this, corkedFail);
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
      this.responded = true;
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
      const s = this.status;
      if (this.method === 'HEAD' || s === 204 || s === 304 || s < 200) {
        // No body: a HEAD answer keeps the length it announces.
        if (this.method === 'HEAD' && this.total >= 0) res.endWithoutBody(this.total);
        else res.endWithoutBody();
      } else if (this.total > 0) {
        res.close(); // announced a body, sent none
      } else {
        res.end();
      }
      this.responded = true;
      return;
    }
    if (this.total < 0) {
      res.end();
      this.responded = true;
    } else if (this.pending === null) {
      // Every byte was given to tryEnd and it is not done: the upstream ended short.
      res.close();
    }
    // else: the rest is pending; onWritable finishes it.
  }

  writeFail(): void {
    if (this.headWritten) {
      this.res.close(); // part of the response is out: only a close tells the client
      return;
    }
    this.responded = true;
    this.res.writeStatus('502 Bad Gateway').end();
  }

  private waitWritable(): void {
    if (this.writableSet) return;
    this.writableSet = true;
    this.res.onWritable(this.onWritable);
  }

  /** One closure per response that met backpressure (uWS passes only the offset). */
  private readonly onWritable = (offset: number): boolean => {
    if (this.aborted || this.responded) return true;
    const p = this.pending;
    if (p !== null) {
      const [ok, done] = this.res.tryEnd(p.subarray(offset - this.pendingOffset), this.total);
      if (done) {
        this.responded = true;
        this.pending = null;
      } else if (ok) {
        this.pending = null;
      } else {
        return false;
      }
    }
    if (!this.upstreamDone && this.attempt !== null) this.attempt.resume();
    return true;
  };
}

const app = uWS.App();
app.any('/*', (res, req) => {
  // `req` is valid only during this call: everything is read now.
  const method = req.getCaseSensitiveMethod();
  const url = req.getUrl();
  const query = req.getQuery();
  const path = query ? `${url}?${query}` : url;
  reqHeaders = {};
  req.forEach(collectHeader);
  const h = reqHeaders;
  const hostHeader = h['host'];
  const authority = typeof hostHeader === 'string' ? hostHeader : BACKEND_AUTHORITY;
  const cl = h['content-length'];
  const hasBody = (typeof cl === 'string' && cl !== '0') || h['transfer-encoding'] !== undefined;
  const named = connectionNamed(h);
  for (const k in h) if (REQUEST_DROP.has(k) || (named !== null && named.has(k))) delete h[k];
  const f = new Forward(res, method, path, authority, h);
  res.onAborted(f.onAborted);
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
});

app.listen('127.0.0.1', listenPort, (ls) => {
  if (!ls) {
    process.stderr.write(`uws-front: cannot listen on 127.0.0.1:${listenPort}\n`);
    process.exit(1);
  }
});
process.on('SIGTERM', () => process.exit(0));
