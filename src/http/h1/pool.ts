/**
 * Raw HTTP/1.1 upstream: keep-alive connection pools on the zero-copy `Connection`
 * (src/network/connection.ts) and the strict codec of ./codec.ts, in place of undici.
 *
 *   exchange ──startRawH1──> H1Pool (per worker, per cluster host)
 *                              │ idle connection (LIFO) ─┐
 *                              │ new one (< max)  ───────┼─> H1Conn.cur = attempt
 *                              └ else: FIFO of waiters ──┘   head + body: conn.write -> one writev
 *   upstream bytes ─> H1Conn.onData ─> HeadParser ─> sink.onResponseHeaders
 *                                  └─> body (length | chunked | until close) ─> sink.onResponseData(view)
 *   response complete ─> keep-alive? back to the pool (or the next waiter) : close
 *
 * One request at a time per connection (no pipelining). The attempt object is the
 * connection handler's current exchange: no closure or promise per request. Rules:
 *  - connect timeout = the cluster's connect_timeout (10 s when unset); a connection idle for
 *    30 s is closed by a sweep every 5 s (one timer per worker, not one per connection); an
 *    idle connection the upstream closes just leaves the pool;
 *  - a reused connection that fails (EOF, reset) before any response byte is retried once on
 *    a new connection when the body can be sent again (none or a Buffer); otherwise Reset;
 *  - a new connection that cannot connect: ConnectFailure (and every waiter of the pool fails
 *    with it when the pool has no open connection left); any close after the request was
 *    written and before the response completed: Reset;
 *  - malformed responses, a 101 to a plain request and bytes after a complete response:
 *    Reset, the connection is closed;
 *  - bounds (src/overload/limits.ts): waiters per pool <= circuit_breakers.max_pending_requests
 *    (else limits.upstreamMaxPendingRequests, 1024), each waiting at most the queue timeout (5 s);
 *    beyond either, FailKind.Overflow at once (the exchange answers 503, flag UO);
 *  - backpressure: sink.onResponseData() false pauses reading until resume() (the rest of the
 *    read in hand is still delivered: views of the shared read chunk cannot be kept); the
 *    connection's write watermarks pause and resume the request body's source.
 * Stats (cluster): cx_total/active/destroy, cx_connect_timeout, bytes rx/tx, cx_rx_paused,
 * rq_pending_active (requests waiting for a connection). The exchange counts cx_connect_fail
 * for each attempt that fails with ConnectFailure (as it does for the other upstreams).
 */
// The module's own binding: the global `Buffer` is an accessor property (a getter call on every use).
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Connection, ConnectionHandler } from '../../network/connection';
import { C } from '../../stats/layout';
import { hostPort } from '../../stream/pipeline';
import { limits } from '../../overload/limits';
import { HTTP1_ALPN, type Cluster } from '../../upstream/cluster';
import type { Host, UpstreamPool } from '../../upstream/lb';
import type { Headers } from '../headers';
import { FailKind, isBodySource, OVERFLOW_ERROR, type BodySink, type BodySource, type RequestBytes, type UpstreamAttempt, type UpstreamRequest, type UpstreamSink } from '../upstream';

/** A sink whose rawResponseHead() said yes. */
type RawHeadSink = UpstreamSink & Required<Pick<UpstreamSink, 'onResponseRaw'>>;
import { writeCopiedHead, writeHead, writeLatin1, writtenAt, writtenBuf } from './head-slab';
import { BodyKind, ChunkedDecoder, chunkHeader, HeadParser, LAST_CHUNK, requestHead, type ChunkSink } from './codec';

/** Keep-alive idle timeout and its sweep period; tests shorten them. */
export const rawH1Timing = { idleTimeoutMs: 30_000, sweepMs: 5_000 };
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Limits for upstream response heads (the upstream is trusted more than a client, not fully). */
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_HEADERS = 256;
const MAX_TRAILER_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n', 'latin1');
const TE_CHUNKED = 'transfer-encoding: chunked\r\n';
const CL_ZERO = 'content-length: 0\r\n';
/** Methods whose request without a body still says content-length: 0 (as browsers and undici do). */
function clZeroMethod(m: string): boolean {
  return m === 'POST' || m === 'PUT' || m === 'PATCH';
}

/** Where a connection is in reading the current response. */
const enum Phase {
  Head = 0,
  Length = 1,
  Chunked = 2,
  UntilClose = 3,
}

/** One request on the pool: queued, bound to a connection, then done (answered, failed or aborted). */
class RawH1Attempt implements UpstreamAttempt, BodySink {
  conn: H1Conn | null = null;
  done = false;
  queued = false;
  /** Inside startRawH1: failures are reported after it returns. */
  starting = false;
  /** Already retried once after a stale keep-alive connection failed. */
  retried = false;
  /** The request was written on a connection that had served a response before. */
  onReused = false;
  /** The request (head and body) is fully written. */
  bodyDone = false;
  /** Some response byte arrived for this request. */
  gotBytes = false;
  /** Reading is paused because the sink said it was full. */
  paused = false;
  /** When it joined the waiters (Date.now()); the queue timeout runs from here. */
  queuedAt = 0;
  /**
   * A bodiless head sent as the client's bytes (sendBytes): where its bytes stay (the head slab),
   * so that a retry on a new connection sends the same head (the client's buffer is gone by then).
   */
  private sentBuf: Buffer | null = null;
  private sentAt = 0;
  private sentEnd = 0;
  private chunked = false;
  private srcPaused = false;
  // Listeners on a streamed (node:http / http2) request body, created only for such bodies.
  private rData: ((d: Buffer) => void) | null = null;
  private rEnd: (() => void) | null = null;
  private rErr: ((e: Error) => void) | null = null;
  readonly isHead: boolean;

  constructor(
    readonly pool: H1Pool,
    readonly req: UpstreamRequest,
    readonly sink: UpstreamSink,
  ) {
    this.isHead = req.method === 'HEAD';
  }

  /** The body can be written again on another connection. */
  get replayable(): boolean {
    const b = this.req.body;
    return b === null || Buffer.isBuffer(b);
  }

  /** Writes head and body on the (open) connection of this attempt. */
  send(c: H1Conn): void {
    const req = this.req;
    const body = req.body;
    this.onReused = c.reused;
    this.bodyDone = false;
    this.chunked = false;
    if (this.sentBuf !== null) {
      // A retry (stale keep-alive connection) of a head sent as bytes: the same bytes again.
      this.out(c, this.sentBuf, this.sentAt, this.sentEnd);
      this.bodyDone = true;
      return;
    }
    const bytes = req.bytes;
    if (bytes !== undefined && body === null) {
      const hb = bytes.headBuffer();
      if (hb !== null) {
        this.sendBytes(c, req, bytes, hb);
        this.bodyDone = true;
        return;
      }
    }
    const headers = req.headers;
    // requestHead writes host from the authority; the exchange never leaves one in the headers.
    if (headers['host'] !== undefined) delete headers['host'];
    let extra = '';
    let buf: Buffer | null = null;
    let src: BodySource | null = null;
    let stream: Readable | null = null;
    if (body === null) {
      if (headers['content-length'] === undefined && clZeroMethod(req.method)) extra = CL_ZERO;
    } else if (Buffer.isBuffer(body)) {
      buf = body;
      extra = lengthHeader(headers, body.length);
    } else if (isBodySource(body)) {
      src = body;
      if (body.length >= 0) extra = lengthHeader(headers, body.length);
      else extra = chunkedHeader(headers);
    } else {
      stream = body;
      // A streamed node:http body keeps the downstream's content-length when it had one.
      const cl = headers['content-length'];
      if (typeof cl !== 'string' || !/^\d+$/.test(cl)) extra = chunkedHeader(headers);
    }
    this.chunked = extra === TE_CHUNKED;
    // Header values come validated from the downstream parsers (llhttp, nghttp2, ./codec.ts);
    // values from the route config are written as configured.
    const head = requestHead(req.method, req.path, req.authority, headers, extra);
    // The head's bytes go into the shared head slab (latin1, as node:http writes header bytes).
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.BYTES_TX] += writeLatin1(c.conn, head);
    if (stream !== null) {
      this.startStream(stream);
    } else if (src !== null) {
      src.start(this);
    } else {
      if (buf !== null) this.out(c, buf, 0, buf.length);
      this.bodyDone = true;
    }
  }

  /**
   * A bodiless request head as the client's bytes (RequestBytes): request line, host, the lines
   * the proxy adds and framing in one string, then the client's field lines copied from its read
   * buffer (no header map, no string per field).
   */
  private sendBytes(c: H1Conn, req: UpstreamRequest, bytes: RequestBytes, hb: Buffer): void {
    const extra = clZeroMethod(req.method) ? CL_ZERO : '';
    const prefix = req.method + ' ' + req.path + ' HTTP/1.1\r\nhost: ' + req.authority + '\r\n' + bytes.addedLines + extra;
    // The client's lines copied by the scanner when it parsed the head (no copy here), else copied now.
    let n = writeCopiedHead(c.conn, prefix, bytes.lines);
    if (n < 0) n = writeHead(c.conn, prefix, hb, bytes.lines);
    this.sentBuf = writtenBuf;
    this.sentAt = writtenAt;
    this.sentEnd = writtenAt + n;
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.BYTES_TX] += n;
  }

  private out(c: H1Conn, buf: Buffer, start: number, end: number): void {
    c.conn.write(buf, start, end);
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.BYTES_TX] += end - start;
  }

  private startStream(r: Readable): void {
    // Node streams take listener functions: three closures per streamed body (not per request).
    this.rData = (d: Buffer): void => this.onBodyData(d, 0, d.length);
    this.rEnd = (): void => this.onBodyEnd();
    this.rErr = (e: Error): void => this.onBodyError(e);
    r.on('data', this.rData);
    r.on('end', this.rEnd);
    r.on('error', this.rErr);
  }

  // ---- BodySink (BodySource and streamed bodies)

  onBodyData(buf: Buffer, start: number, end: number): void {
    const c = this.conn;
    if (c === null || this.done || end <= start) return;
    if (this.chunked) {
      // The chunk header's bytes in the shared head slab.
      const cl = this.pool.cluster;
      cl.counters[cl.base + C.BYTES_TX] += writeLatin1(c.conn, chunkHeader(end - start));
      this.out(c, buf, start, end);
      this.out(c, CRLF, 0, 2);
    } else {
      this.out(c, buf, start, end);
    }
  }

  onBodyEnd(): void {
    const c = this.conn;
    if (c === null || this.done || this.bodyDone) return;
    if (this.chunked) this.out(c, LAST_CHUNK, 0, LAST_CHUNK.length);
    this.bodyDone = true;
    this.detachBody();
  }

  onBodyError(err: Error): void {
    const c = this.conn;
    if (c === null || this.done) return;
    // The downstream failed mid-body: the upstream got a truncated request, close it.
    c.detach(this);
    c.kill();
    this.fail(FailKind.Reset, err);
  }

  /** Write watermarks of the connection. */
  pauseBody(): void {
    if (this.srcPaused || this.bodyDone) return;
    const b = this.req.body;
    if (b === null || Buffer.isBuffer(b)) return;
    this.srcPaused = true;
    b.pause();
  }

  resumeBody(): void {
    if (!this.srcPaused) return;
    this.srcPaused = false;
    (this.req.body as BodySource | Readable).resume();
  }

  /** Stops listening to the body (sent, or the attempt is over). */
  detachBody(): void {
    this.resumeBody(); // a source left paused would stall the downstream connection
    const r = this.req.body as Readable;
    if (this.rData !== null) {
      r.removeListener('data', this.rData);
      r.removeListener('end', this.rEnd as () => void);
      r.removeListener('error', this.rErr as (e: Error) => void);
      this.rData = null;
      this.rEnd = null;
      this.rErr = null;
    }
  }

  /** Ends the attempt with an error for the sink (once). */
  fail(kind: FailKind, err: Error): void {
    if (this.done) return;
    this.done = true;
    this.detachBody();
    if (this.starting) {
      // The exchange has not got this attempt yet: report once startRawH1 has returned.
      queueMicrotask(() => this.sink.onUpstreamError(kind, err));
      return;
    }
    this.sink.onUpstreamError(kind, err);
  }

  // ---- UpstreamAttempt

  abort(): void {
    if (this.done) return;
    this.done = true;
    this.detachBody();
    if (this.queued) {
      this.queued = false;
      this.pool.dequeued();
      return; // left in the waiter list, skipped when its turn comes
    }
    const c = this.conn;
    if (c === null) return;
    c.detach(this);
    // A connection still connecting has seen nothing of this request: it joins the pool once up.
    if (c.connected) c.kill();
  }

  resume(): void {
    if (!this.paused || this.done) return;
    this.paused = false;
    const c = this.conn;
    if (c !== null) c.conn.resumeRead();
  }

  localAddress(): string | undefined {
    const c = this.conn;
    if (c === null) return undefined;
    const sock = c.conn.socket;
    return hostPort(sock.localAddress, sock.localPort);
  }
}

function lengthHeader(headers: Headers, n: number): string {
  const cl = headers['content-length'];
  if (cl !== undefined) {
    if (cl === String(n)) return '';
    delete headers['content-length'];
  }
  return `content-length: ${n}\r\n`;
}

function chunkedHeader(headers: Headers): string {
  if (headers['content-length'] !== undefined) delete headers['content-length'];
  return TE_CHUNKED;
}

/** One keep-alive connection to the host; handler of its Connection. */
class H1Conn implements ConnectionHandler, ChunkSink {
  readonly conn: Connection;
  cur: RawH1Attempt | null;
  connected = false;
  /** Served a complete response before (a request on it may meet a stale connection). */
  reused = false;
  /** Closed or closing: never handed out again. */
  dead = false;
  /** When it went idle (performance.now()). */
  idleSince = 0;
  private retired = false;
  private readonly parser = new HeadParser(false, MAX_HEAD_BYTES, MAX_HEADERS);
  private readonly decoder = new ChunkedDecoder(MAX_TRAILER_BYTES);
  private phase = Phase.Head;
  private remaining = 0;
  /** Bytes of a response head split across reads (copied: the read chunk is reused). */
  private held: Buffer | null = null;
  /** The sink refused a chunk of the current read. */
  private full = false;

  constructor(
    readonly pool: H1Pool,
    first: RawH1Attempt | null,
  ) {
    this.cur = first;
    if (first !== null) first.conn = this;
    pool.count++;
    live.add(this);
    const cl = pool.cluster;
    this.conn = cl.connect(pool.host, this, cl.connectTimeoutMs > 0 ? cl.connectTimeoutMs : DEFAULT_CONNECT_TIMEOUT_MS, HTTP1_ALPN);
  }

  /** Binds an attempt and writes its request (the connection is open and idle). */
  assign(a: RawH1Attempt): void {
    this.cur = a;
    a.conn = this;
    this.phase = Phase.Head;
    a.send(this);
  }

  /** Unbinds the current attempt (it is over). */
  detach(a: RawH1Attempt): void {
    if (this.cur === a) this.cur = null;
    a.conn = null;
  }

  /** Closes now; the connection leaves the pool at once. */
  kill(): void {
    if (this.dead) return;
    this.dead = true;
    this.retire();
    this.pool.dispatch();
    this.conn.destroy();
  }

  /** Pool bookkeeping of a connection that is gone (once). */
  private retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.dead = true;
    const p = this.pool;
    p.count--;
    if (this.connected) p.open--;
    p.dropIdle(this);
    const cl = p.cluster;
    cl.counters[cl.base + C.CX_ACTIVE]--;
    cl.counters[cl.base + C.CX_DESTROY]++;
  }

  // ---- ConnectionHandler

  onConnect(): void {
    this.connected = true;
    this.pool.open++;
    const a = this.cur;
    if (a !== null) a.send(this);
    else this.pool.release(this);
  }

  onData(_c: Connection, buf: Buffer, start: number, end: number): void {
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.BYTES_RX] += end - start;
    const a = this.cur;
    if (a === null) {
      // Bytes on an idle connection (a late 408, garbage): it cannot be trusted with a request.
      this.kill();
      return;
    }
    a.gotBytes = true;
    if (this.held !== null) {
      // The rest of a split head: parse it from the start (rare; one copy).
      buf = Buffer.concat([this.held, buf.subarray(start, end)]);
      start = 0;
      end = buf.length;
      this.held = null;
    }
    this.consume(a, buf, start, end);
  }

  private consume(a: RawH1Attempt, buf: Buffer, s: number, end: number): void {
    const sink = a.sink;
    for (;;) {
      switch (this.phase) {
        case Phase.Head: {
          if (s >= end) return;
          const p = this.parser;
          p.headRequest = a.isHead;
          p.connectRequest = false;
          // A head nothing will change is indexed, not turned into a header map (onResponseRaw).
          const raw = sink.rawResponseHead !== undefined && sink.rawResponseHead();
          p.indexOnly = raw;
          let r = p.parse(buf, s, end);
          if (r === 0) {
            this.held = Buffer.from(buf.subarray(s, end));
            return;
          }
          if (raw && r > 0 && p.irregular) {
            // A field the byte path does not forward as the map path would: the same head again, into a map.
            p.indexOnly = false;
            r = p.parse(buf, s, end);
          }
          if (r < 0) {
            this.protocolError(a, `malformed upstream response: ${p.errorReason}`);
            return;
          }
          s = r;
          const status = p.status;
          if (status < 200) {
            if (status === 101) {
              this.protocolError(a, 'upstream answered 101 Switching Protocols to a plain request');
              return;
            }
            continue; // interim (100, 103): not forwarded
          }
          const kind = p.bodyKind;
          const bytes = p.indexOnly;
          if (kind === BodyKind.None) {
            if (bytes) (sink as RawHeadSink).onResponseRaw(status, buf, p, true, end);
            else sink.onResponseHeaders(status, p.headers, true);
            if (this.cur === a) this.complete(a, s, end, true, null);
            return;
          }
          if (bytes) (sink as RawHeadSink).onResponseRaw(status, buf, p, false, end);
          else sink.onResponseHeaders(status, p.headers, false);
          if (this.cur !== a) return; // aborted by the sink (e.g. a 5xx it retries)
          if (kind === BodyKind.Length) {
            this.remaining = p.contentLength;
            this.phase = Phase.Length;
            if (this.remaining === 0) {
              this.complete(a, s, end, false, null);
              return;
            }
          } else if (kind === BodyKind.Chunked) {
            this.decoder.reset();
            this.phase = Phase.Chunked;
          } else {
            this.phase = Phase.UntilClose;
          }
          continue;
        }
        case Phase.Length: {
          if (s >= end) return;
          const n = Math.min(this.remaining, end - s);
          this.remaining -= n;
          // One view object per read (the sink writes or copies it during the call).
          const ok = sink.onResponseData(buf.subarray(s, s + n));
          if (this.cur !== a) return;
          s += n;
          if (this.remaining === 0) this.complete(a, s, end, false, null);
          else if (!ok) this.pauseFor(a);
          return;
        }
        case Phase.Chunked: {
          if (s >= end) return;
          this.full = false;
          const d = this.decoder;
          const r = d.decode(buf, s, end, this);
          if (this.cur !== a) return;
          if (r < 0) {
            this.protocolError(a, `malformed upstream chunked body: ${d.error}`);
            return;
          }
          if (d.done) this.complete(a, r, end, false, d.trailers);
          else if (this.full) this.pauseFor(a);
          return;
        }
        default: {
          if (s >= end) return;
          // One view object per read.
          if (!sink.onResponseData(buf.subarray(s, end)) && this.cur === a) this.pauseFor(a);
          return;
        }
      }
    }
  }

  onChunkData(buf: Buffer, start: number, end: number): void {
    const a = this.cur;
    // One view object per chunk payload in this read.
    if (a !== null && !a.sink.onResponseData(buf.subarray(start, end))) this.full = true;
  }

  private pauseFor(a: RawH1Attempt): void {
    a.paused = true;
    this.conn.pauseRead();
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.CX_RX_PAUSED]++;
  }

  /**
   * The response of `a` is complete: the connection goes back to the pool when both sides
   * allow it (keep-alive, request fully written, no stray bytes), then the sink hears the end
   * (so a request it starts at once can have this connection).
   */
  private complete(a: RawH1Attempt, s: number, end: number, endSent: boolean, trailers: Headers | null): void {
    const untilClose = this.phase === Phase.UntilClose;
    this.phase = Phase.Head;
    this.detach(a);
    a.done = true;
    const bodyDone = a.bodyDone;
    a.detachBody();
    if (this.parser.keepAlive && bodyDone && !untilClose && s === end && !this.dead) {
      this.reused = true;
      if (a.paused) {
        a.paused = false;
        this.conn.resumeRead();
      }
      this.pool.release(this);
    } else {
      this.kill();
    }
    if (!endSent) a.sink.onResponseEnd(trailers);
  }

  private protocolError(a: RawH1Attempt, msg: string): void {
    this.detach(a);
    this.kill();
    a.fail(FailKind.Reset, new Error(msg));
  }

  onEnd(): void {
    const a = this.cur;
    if (a !== null && this.phase === Phase.UntilClose) {
      this.complete(a, 0, 0, false, null);
      return;
    }
    // Half-closed by the upstream: nothing more will come; onClose settles the attempt.
    this.conn.destroy();
  }

  onClose(_c: Connection, err: Error | undefined): void {
    const a = this.cur;
    const wasConnected = this.connected;
    this.held = null;
    live.delete(this);
    this.retire();
    const p = this.pool;
    if (a !== null) {
      this.detach(a);
      if (!wasConnected) {
        a.fail(FailKind.ConnectFailure, err ?? new Error('upstream connect failed'));
      } else if (!a.gotBytes && a.onReused && a.replayable && !a.retried && !a.done) {
        // A keep-alive connection the upstream had closed: the request never reached it.
        a.retried = true;
        p.fresh(a);
      } else {
        a.fail(FailKind.Reset, err ?? new Error('upstream closed the connection before the response completed'));
      }
    }
    if (!wasConnected && p.open === 0) p.failWaiters(err ?? new Error('upstream connect failed'));
    p.dispatch();
  }

  onHighWatermark(): void {
    if (this.cur !== null) this.cur.pauseBody();
  }

  onLowWatermark(): void {
    if (this.cur !== null) this.cur.resumeBody();
  }

  onTimeout(): void {
    // Only the connect timer uses the socket timeout (Connection clears it once connected).
    if (this.connected) return;
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.CX_CONNECT_TIMEOUT]++;
    this.conn.destroy(Object.assign(new Error('upstream connect timeout'), { code: 'ETIMEDOUT' }));
  }
}

/** This worker's connections to one host of one cluster (registered with the cluster manager as 'h1'). */
class H1Pool implements UpstreamPool {
  /** Connections alive (connecting, busy or idle). */
  count = 0;
  /** Connected ones among them. */
  open = 0;
  /** Idle connections, most recently used last (taken LIFO: warm ones stay warm). */
  private readonly idle: H1Conn[] = [];
  /** Requests waiting for a connection, FIFO from `head` (aborted ones are skipped). */
  private readonly waiters: RawH1Attempt[] = [];
  private head = 0;
  /** Out of the registry (drain()): connections close once no waiter needs them. */
  private draining = false;
  /** Waiters not aborted (the queue length that max_pending_requests bounds). */
  private waiting = 0;
  /** One timer per pool while it has waiters: fails those queued longer than the queue timeout. */
  private queueTimer: NodeJS.Timeout | null = null;
  private readonly expireFn = (): void => this.expire();

  constructor(
    /** Replaced by the newest config's Cluster on each request (same name). */
    public cluster: Cluster,
    readonly host: Host,
    public max: number,
  ) {}

  submit(a: RawH1Attempt): void {
    const c = this.idle.pop();
    if (c !== undefined) c.assign(a);
    else if (this.count < this.max && this.cluster.tryAcquireConnection()) new H1Conn(this, a); // takes the reserved slot
    else if (this.count === 0) a.fail(FailKind.Overflow, OVERFLOW_ERROR); // max_connections, nothing to wait for
    else if (!this.admitWaiter()) a.fail(FailKind.Overflow, new Error('upstream pool queue full'));
    else this.enqueue(a);
  }

  /**
   * A place in the queue: the cluster's max_pending_requests breaker (shared by every worker;
   * usage counted even without a limit, given back in dequeued()), and without that limit the
   * default bound per host pool (limits.upstream_max_pending_requests). Overflow is counted.
   */
  private admitWaiter(): boolean {
    const cl = this.cluster;
    if (cl.config.circuitBreakers.maxPendingRequests === 0 && this.waiting >= limits.upstreamMaxPendingRequests) {
      cl.counters[cl.base + C.RQ_PENDING_OVERFLOW]++;
      return false;
    }
    return cl.tryAcquirePending();
  }

  /** A retry after a stale connection: always on a new connection. */
  fresh(a: RawH1Attempt): void {
    new H1Conn(this, a);
  }

  private enqueue(a: RawH1Attempt): void {
    a.queued = true;
    a.queuedAt = Date.now();
    this.waiters.push(a);
    this.waiting++;
    const cl = this.cluster;
    cl.counters[cl.base + C.RQ_PENDING_ACTIVE]++;
    if (this.queueTimer === null) this.armQueueTimer(limits.upstreamQueueTimeoutMs);
  }

  /** A waiter left the queue (served or aborted). */
  dequeued(): void {
    this.waiting--;
    const cl = this.cluster;
    cl.counters[cl.base + C.RQ_PENDING_ACTIVE]--;
    cl.releasePending();
  }

  private armQueueTimer(ms: number): void {
    this.queueTimer = setTimeout(this.expireFn, Math.max(1, ms));
    this.queueTimer.unref();
  }

  /** Queue timeout: waiters are FIFO, so the expired ones are at the head. */
  private expire(): void {
    this.queueTimer = null;
    const now = Date.now();
    const t = limits.upstreamQueueTimeoutMs;
    for (let a = this.peekWaiter(); a !== null; a = this.peekWaiter()) {
      if (now - a.queuedAt < t) {
        this.armQueueTimer(a.queuedAt + t - now);
        return;
      }
      this.nextWaiter();
      const cl = this.cluster;
      cl.counters[cl.base + C.RQ_PENDING_OVERFLOW]++;
      a.fail(FailKind.Overflow, new Error('upstream pool queue timeout'));
    }
  }

  /** The first waiter still queued (aborted ones before it are dropped), or null. */
  private peekWaiter(): RawH1Attempt | null {
    const w = this.waiters;
    while (this.head < w.length) {
      const a = w[this.head];
      if (a.queued) return a;
      this.take();
    }
    return null;
  }

  /** Removes the head entry of the waiter list (compacting it now and then). */
  private take(): void {
    const w = this.waiters;
    w[this.head++] = undefined as unknown as RawH1Attempt;
    if (this.head === w.length) {
      w.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= w.length) {
      w.splice(0, this.head);
      this.head = 0;
    }
  }

  private nextWaiter(): RawH1Attempt | null {
    const a = this.peekWaiter();
    if (a === null) return null;
    this.take();
    a.queued = false;
    this.dequeued();
    return a;
  }

  /** An open connection with nothing to do: the next waiter gets it, else it idles. */
  release(c: H1Conn): void {
    if (c.dead) return;
    const a = this.nextWaiter();
    if (a !== null) {
      c.assign(a);
      return;
    }
    if (this.draining) {
      c.kill();
      return;
    }
    // The monotonic clock: a fast call, where Date.now() is a V8 runtime call (once per response).
    c.idleSince = performance.now();
    this.idle.push(c);
  }

  /** UpstreamPool: no new requests come (out of the registry); idle connections close now, busy ones when done. */
  drain(): void {
    this.draining = true;
    while (this.idle.length > 0) (this.idle[this.idle.length - 1] as H1Conn).kill();
  }

  /** Starts connections for waiters while there is room (after a connection went away). */
  dispatch(): void {
    while (this.head < this.waiters.length) {
      const c = this.idle.pop();
      // A new connection only within max_connections (the reservation is taken by H1Conn).
      if (c === undefined && (this.count >= this.max || !this.cluster.tryAcquireConnection())) return;
      const a = this.nextWaiter();
      if (a === null) {
        if (c !== undefined) this.idle.push(c);
        else this.cluster.releaseConnection();
        return;
      }
      if (c !== undefined) c.assign(a);
      else new H1Conn(this, a);
    }
  }

  dropIdle(c: H1Conn): void {
    const i = this.idle.lastIndexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** A connect failed with no open connection: the host is down for every waiter too. */
  failWaiters(err: Error): void {
    for (let a = this.nextWaiter(); a !== null; a = this.nextWaiter()) a.fail(FailKind.ConnectFailure, err);
  }

  /** Closes connections idle longer than the keep-alive timeout (oldest first). */
  sweep(now: number): void {
    const idle = this.idle;
    while (idle.length > 0 && now - idle[0].idleSince >= rawH1Timing.idleTimeoutMs) (idle[0] as H1Conn).kill();
  }

  get empty(): boolean {
    return this.count === 0 && this.head >= this.waiters.length;
  }

  /** Fails every waiter (closeRawH1Pools). */
  closeWaiters(): void {
    if (this.queueTimer !== null) {
      clearTimeout(this.queueTimer);
      this.queueTimer = null;
    }
    for (let a = this.nextWaiter(); a !== null; a = this.nextWaiter()) a.fail(FailKind.Reset, new Error('upstream pool closed'));
  }
}

/** Every pool of this worker (the idle sweep, closeRawH1Pools); each is owned by its host's registry ('h1'). */
const pools = new Set<H1Pool>();
/** Every connection until its socket has closed, for closeRawH1Pools. */
const live = new Set<H1Conn>();
let sweepTimer: NodeJS.Timeout | null = null;

function closing(c: H1Conn): Promise<void> {
  return new Promise((resolve) => {
    if (c.conn.state === 'closed') resolve();
    else {
      c.conn.socket.once('close', () => resolve());
      c.kill();
    }
  });
}

function sweepAll(): void {
  const now = performance.now(); // the clock of H1Conn.idleSince
  for (const p of pools) {
    p.sweep(now);
    if (p.empty) {
      pools.delete(p);
      p.cluster.removePool(p.host, 'h1', p);
    }
  }
  if (pools.size === 0 && sweepTimer !== null) {
    clearInterval(sweepTimer);
    sweepTimer = null;
  }
}

/**
 * Starts one attempt of `req` on `host` (a connection of its pool, a new one, or a place in
 * the queue). The sink hears nothing before this returns.
 */
export function startRawH1(cluster: Cluster, host: Host, maxConnections: number, req: UpstreamRequest, sink: UpstreamSink): UpstreamAttempt {
  let p = cluster.pool(host, 'h1') as H1Pool | undefined;
  // The cluster's circuit_breakers.max_connections, else the proxy's connections_per_host.
  const max = cluster.maxConnections > 0 ? cluster.maxConnections : maxConnections > 0 ? maxConnections : 1;
  if (p === undefined) {
    p = new H1Pool(cluster, host, max);
    cluster.addPool(host, 'h1', p);
    pools.add(p);
    if (sweepTimer === null) {
      sweepTimer = setInterval(sweepAll, rawH1Timing.sweepMs);
      sweepTimer.unref();
    }
  } else {
    p.cluster = cluster;
    p.max = max;
  }
  const a = new RawH1Attempt(p, req, sink);
  a.starting = true;
  p.submit(a);
  a.starting = false;
  return a;
}

/** Closes every pool and connection of this worker (tests, shutdown). */
export async function closeRawH1Pools(): Promise<void> {
  for (const p of pools) {
    p.closeWaiters();
    p.cluster.removePool(p.host, 'h1', p);
  }
  pools.clear();
  const all: Promise<void>[] = [];
  for (const c of [...live]) all.push(closing(c));
  if (sweepTimer !== null) {
    clearInterval(sweepTimer);
    sweepTimer = null;
  }
  await Promise.all(all);
}

/** Connections of this worker whose socket has not closed yet (tests). */
export function rawH1ConnectionCount(): number {
  return live.size;
}
