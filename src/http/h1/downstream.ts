/**
 * Raw HTTP/1.1 downstream: one ConnectionHandler per client connection on the zero-copy
 * Connection (shared read chunk in, gathered writev out), parsing with the strict codec in
 * codec.ts instead of node:http. It is at once the connection's handler, the Downstream of
 * the request in progress (exchange.ts) and that request's BodySource: one object per
 * connection, one Exchange per request.
 *
 *   head ──> limits ──> Exchange.start() ──> body bytes (views) ──> BodySink of the attempt
 *   response head/body from the exchange ──> framing (content-length as sent, else chunked,
 *   else close-delimited for HTTP/1.0) ──> gathered into this connection's writev
 *
 * Requests are served one at a time: bytes of a pipelined next request are kept (copied) and
 * reading pauses until the response in progress ends. Upgrade and CONNECT requests leave the
 * HTTP layer: the connection becomes a byte tunnel (tunnel.ts).
 *
 * Hardening, with the same answers and counters as the node:http path: malformed heads and
 * smuggling shapes 400 (codec), unknown transfer-coding 501, HTTP/2.0+ 505, head over
 * max_header_size or more than max_headers lines 431, head slower than headers_timeout or
 * request slower than request_timeout 408; the connection closes after each of these.
 *
 * Resource ownership (issue 16): a body streamed to an upstream connection must keep
 * limits.minBodyRateBytesPerSec per window (else 408, and the exchange cancels its attempt); a
 * client FIN while the answer is pending is probed with interim 100s, and a client that is
 * gone (the probe's write fails) closes the connection, which cancels the upstream request
 * at once. Under memory pressure (overload manager) responses end keep-alive and idle
 * connections are closed.
 */
// The module's own binding: the global `Buffer` is an accessor property (a getter call on every use).
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Connection, ConnectionHandler } from '../../network/connection';
import { limits } from '../../overload/limits';
import { onCloseIdle, overloadState } from '../../overload/manager';
import { OL } from '../../overload/stats';
import { L } from '../../stats/layout';
import { deadlines, type DeadlineEntry } from '../../stream/deadlines';
import { Exchange, type Downstream, type DownstreamTransport, type HttpEnv } from '../exchange';
import type { Headers } from '../headers';
import { HL } from '../stats';
import type { BodySink, BodySource, HeadBytes, RawHeadLines } from '../upstream';
import { BodyKind, chunkHeader, ChunkedDecoder, closingReply, HeadParser, headerLines, LAST_CHUNK, responseHead, statusLine, type ChunkSink } from './codec';
import { headInPlace, offerRoom, tookRoom, writeHead, writeLatin1 } from './head-slab';
import { rawTunnel } from './tunnel';

const enum Phase {
  /** Waiting for (the rest of) a request head. */
  Head = 0,
  /** Reading the request body. */
  Body = 1,
  /** Request read; the response is in progress. */
  Wait = 2,
  /** The connection is a tunnel, or closing: HTTP is over. */
  Done = 3,
}

const CRLF = Buffer.from('\r\n');
/** respLeft of a response that has no body. */
const NO_BODY = -2;
const EMPTY = Buffer.alloc(0);
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n');

/** Writes a short error reply and closes the connection after it. */
function errorReply(conn: Connection, status: number): void {
  const b = Buffer.from(closingReply(status, 'content-type: text/plain\r\n'), 'latin1');
  conn.write(b, 0, b.length);
  conn.endWrite();
  // Read on (and discard) so that the client's close is seen: a paused socket would linger.
  conn.resumeRead();
}

/** Every factory's set of live connections, for the overload manager's close-idle action. */
const liveSets = new Set<Set<RawH1Connection>>();
onCloseIdle(() => {
  for (const set of liveSets) {
    if (set.size === 0) liveSets.delete(set);
    for (const c of set) c.closeIfIdle(true);
  }
});

export class RawH1Connection implements ConnectionHandler, Downstream, BodySource, ChunkSink, DeadlineEntry, HeadBytes {
  readonly h2 = false;
  // ---- the request in progress (Downstream)
  method = '';
  url = '';
  authority = '';
  httpMinor = 1;
  headerCount = 0;
  hasBody = false;
  length = -1;

  private phase = Phase.Head;
  private conn: Connection | null = null;
  private readonly parser: HeadParser;
  private readonly chunks: ChunkedDecoder;
  /** Unconsumed bytes (a partial head, body bytes before the sink started, a pipelined request), copied. */
  private pending: Buffer | null = null;
  private processing = false;
  /** idle_timeout (idleCheck): reads so far, and at the timer's last run. */
  private reads = 0;
  private readsAtCheck = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  /** The buffer of the request head being started (Exchange.start()), null outside that call (HeadBytes). */
  private headBuf: Buffer | null = null;
  private exchange: Exchange | null = null;
  private bodyKind = BodyKind.None;
  private bodyLeft = 0;
  private bodyDone = true;
  private sink: BodySink | null = null;
  private sinkPaused = false;
  private reqKeepAlive = true;
  /** When the current head started (headers_timeout / request_timeout). */
  private headStart = 0;
  /** request_timeout as an absolute time (Date.now() clock); 0 = none. */
  private requestDeadline = 0;
  /** Request body bytes received so far, and at the start of the current rate window. */
  private bodyBytes = 0;
  private rateMark = -1;
  /** Interim-100 probes left after a FIN while waiting for the answer (onEnd). */
  private probes = 0;
  // ---- the response in progress
  private sent = false;
  private respChunked = false;
  /** Body bytes still expected of a content-length response; -1 = not length-framed. */
  private respLeft = -1;
  /** Body bytes respondRaw queued with the head, not yet handed to write(). */
  private preWritten = 0;
  private respKeepAlive = true;
  private full = false;
  // Deadline wheel entry (headers_timeout / request_timeout).
  deadline = 0;
  dlPrev: DeadlineEntry | null = null;
  dlNext: DeadlineEntry | null = null;
  dlSlot = 0;

  constructor(
    private readonly env: HttpEnv,
    private readonly live: Set<RawH1Connection>,
  ) {
    const cfg = env.cfg;
    this.parser = new HeadParser(true, cfg.maxHeaderSize, cfg.maxHeaders);
    // Request heads are indexed too, so that one nothing changes can go upstream as its bytes.
    this.parser.indexToo = true;
    // No header map unless something reads one (headers, below): most requests need two fields.
    this.parser.lazyMap = true;
    this.chunks = new ChunkedDecoder(cfg.maxHeaderSize);
  }

  /** Starts serving `conn` (already reading). */
  attach(conn: Connection): void {
    this.conn = conn;
    this.live.add(this);
    liveSets.add(this.live);
    const ms = this.env.cfg.idleTimeoutMs;
    if (ms > 0) {
      // Our own timer, not the socket's: the socket's is pushed back on every read (a timer-list
      // move per read); this one fires once per idle_timeout and looks at the read count.
      this.idleTimer = setTimeout(this.idleCheck, ms);
      this.idleTimer.unref();
    }
  }

  /**
   * idle_timeout: a connection between requests that read nothing during a whole period is
   * closed (so after idle_timeout to twice that of silence); otherwise the timer runs again.
   */
  private readonly idleCheck = (): void => {
    const conn = this.conn;
    if (conn === null || this.phase === Phase.Done) return;
    if (this.reads === this.readsAtCheck && this.phase === Phase.Head && this.pending === null && this.exchange === null) {
      this.env.ctx.counters[this.env.ctx.base + L.CX_IDLE_TIMEOUT]++;
      conn.destroy();
      return;
    }
    // Otherwise a request is on its way (its own deadlines apply), or was read in this period.
    this.readsAtCheck = this.reads;
    (this.idleTimer as NodeJS.Timeout).refresh();
  };

  private stopIdleTimer(): void {
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }

  /**
   * Listener drain, or the overload manager's close-idle action (`overload`): closes the
   * connection if it is between requests (busy ones close after their response).
   */
  closeIfIdle(overload = false): void {
    if (this.phase === Phase.Head && this.pending === null && this.exchange === null && this.conn !== null) {
      if (overload) this.env.ctx.counters[this.env.ctx.base + OL.CX_IDLE_CLOSED]++;
      this.phase = Phase.Done;
      this.conn.endWrite();
    }
  }

  /** Hot upgrade (src/upgrade/worker-side.ts): between requests, lets go of the connection (no unread bytes). */
  migrate(conn: Connection): Buffer | null {
    if (this.phase !== Phase.Head || this.pending !== null || this.exchange !== null || this.conn !== conn || conn.queued() > 0 || conn.writeClosed) return null;
    this.phase = Phase.Done;
    this.stopIdleTimer();
    return EMPTY;
  }

  // ---- ConnectionHandler

  onData(conn: Connection, buf: Buffer, start: number, end: number): void {
    if (this.phase === Phase.Done) return;
    this.reads++;
    let data = buf;
    let s = start;
    let e = end;
    const p = this.pending;
    if (p !== null) {
      // A partial head or stashed bytes: join them (a copy, only when a head or body was split).
      this.pending = null;
      data = Buffer.concat([p, buf.subarray(start, end)]);
      s = 0;
      e = data.length;
    }
    this.process(conn, data, s, e);
  }

  onEnd(conn: Connection): void {
    // The client half-closed: finish a response in progress, then close.
    this.reqKeepAlive = false;
    if (this.phase === Phase.Body && !this.bodyDone) {
      this.failBody(new Error('client closed during the request body'));
      return;
    }
    if (this.exchange === null) {
      conn.endWrite();
      return;
    }
    // A FIN while the answer is pending: a client that half-closed after its request still
    // reads, one that gave up (closed) answers the next bytes with a reset. Probe with an
    // interim 100 (HTTP/1.1 clients must accept 1xx at any time): the write after the reset
    // fails, the connection closes and the exchange cancels its upstream request, releasing the
    // upstream connection at once instead of at the route timeout.
    if (!this.sent && this.phase === Phase.Wait && this.httpMinor >= 1) {
      this.probes = 3;
      this.probe(conn);
    }
  }

  onClose(): void {
    this.live.delete(this);
    this.stopIdleTimer();
    if (this.deadline !== 0) deadlines().disarm(this);
    this.phase = Phase.Done;
    this.pending = null;
    const x = this.exchange;
    this.exchange = null;
    if (x !== null) x.onDownstreamClose();
    if (this.sink !== null && !this.bodyDone) {
      const k = this.sink;
      this.sink = null;
      k.onBodyError(new Error('client connection closed'));
    }
  }

  onHighWatermark(): void {
    this.full = true;
  }

  onLowWatermark(): void {
    this.full = false;
    if (this.exchange !== null) this.exchange.onDownstreamDrain();
  }

  /** Sends one interim 100 to a client that half-closed while its answer is pending (onEnd). */
  private probe(conn: Connection): void {
    if (this.probes === 0 || this.sent || this.phase !== Phase.Wait || this.exchange === null) {
      this.probes = 0;
      return;
    }
    this.probes--;
    conn.write(CONTINUE, 0, CONTINUE.length);
    // The reset comes back within a round trip; the next probe's write sees it.
    if (this.probes > 0) deadlines().arm(this, Date.now() + (this.probes === 2 ? 50 : 1000));
  }

  /** headers_timeout (a partial head), request_timeout or the body rate (a body still coming), half-close probes; on the worker's deadline wheel. */
  onDeadline(): void {
    const conn = this.conn;
    if (conn === null) return;
    if (this.probes > 0) {
      this.probe(conn);
      return;
    }
    if (this.phase === Phase.Head && this.pending !== null) {
      this.timeoutReply(conn);
      return;
    }
    if (this.phase === Phase.Body) {
      if (this.rateMark >= 0 && this.checkBodyRate()) return;
      if (!this.sent) {
        const x = this.exchange;
        this.exchange = null;
        if (x !== null) x.onDownstreamClose();
        this.timeoutReply(conn);
      } else conn.destroy();
    }
  }

  /**
   * A body streamed to an upstream connection must keep the minimum rate over each window (a
   * client trickling it would pin that connection until request_timeout). Returns true when it
   * did (the next window is armed), false when the request must time out now.
   */
  private checkBodyRate(): boolean {
    const now = Date.now();
    if (this.requestDeadline !== 0 && now >= this.requestDeadline) return false;
    const w = limits.bodyRateWindowMs;
    // Paused by the upstream side's backpressure: the client is not the slow one.
    if (this.sinkPaused || this.pending !== null) {
      this.armRateWindow(now);
      return true;
    }
    if (this.bodyBytes - this.rateMark < (limits.minBodyRateBytesPerSec * w) / 1000) return false;
    this.armRateWindow(now);
    return true;
  }

  private armRateWindow(now: number): void {
    this.rateMark = this.bodyBytes;
    const next = now + limits.bodyRateWindowMs;
    deadlines().arm(this, this.requestDeadline !== 0 && this.requestDeadline < next ? this.requestDeadline : next);
  }

  private timeoutReply(conn: Connection): void {
    const c = this.env.ctx.counters;
    const base = this.env.ctx.base;
    c[base + HL.REQUEST_TIMEOUT]++;
    c[base + HL.RQ_1XX + 3]++;
    this.phase = Phase.Done;
    errorReply(conn, 408);
  }

  // ---- the read state machine

  private process(conn: Connection, data: Buffer, s: number, e: number): void {
    this.processing = true;
    try {
      while (s < e && this.phase !== Phase.Done) {
        if (this.phase === Phase.Head) {
          s = this.readHead(conn, data, s, e);
          if (s < 0) return;
        } else if (this.phase === Phase.Body) {
          if (this.sink === null || this.sinkPaused) {
            this.stash(conn, data, s, e);
            return;
          }
          s = this.readBody(data, s, e);
          if (s < 0) return;
        } else {
          // Bytes of a next request while this response is in progress (pipelining).
          this.stash(conn, data, s, e);
          return;
        }
      }
    } finally {
      this.processing = false;
    }
  }

  /** Keeps data[s, e) for later and stops reading. */
  private stash(conn: Connection, data: Buffer, s: number, e: number): void {
    const rest = data.subarray(s, e);
    this.pending = this.pending === null ? Buffer.from(rest) : Buffer.concat([this.pending, rest]);
    conn.pauseRead();
  }

  /** Parses a head at data[s]; returns where the next bytes start, or -1 when it stopped. */
  private readHead(conn: Connection, data: Buffer, s: number, e: number): number {
    const env = this.env;
    const cfg = env.cfg;
    // The head's first bytes are in this read: its clock reading is also the exchange's start.
    const fresh = this.headStart === 0;
    if (fresh) this.headStart = performance.now();
    const p = this.parser;
    // The scanner may copy the head's forwarded lines into the head slab (sent upstream from there).
    offerRoom();
    const r = p.parse(data, s, e);
    tookRoom(p);
    if (r === 0) {
      // A partial head (the slow path): headers_timeout runs from its first byte, on the wheel
      // (an absolute deadline: a client trickling bytes does not push it back).
      if (this.deadline === 0) deadlines().arm(this, Date.now() + cfg.headersTimeoutMs - (performance.now() - this.headStart));
      this.pending = Buffer.from(data.subarray(s, e));
      return -1;
    }
    if (this.deadline !== 0) deadlines().disarm(this);
    const c = env.ctx.counters;
    const base = env.ctx.base;
    if (r < 0) {
      c[base + (p.errorStatus === 431 ? HL.HEADER_OVERFLOW : HL.BAD_REQUEST)]++;
      c[base + HL.RQ_1XX + 3 + (p.errorStatus >= 500 ? 1 : 0)]++;
      this.phase = Phase.Done;
      errorReply(conn, p.errorStatus);
      return -1;
    }
    // A request: take the parser's results.
    this.method = p.method;
    this.url = p.target;
    this.httpMinor = p.versionMinor;
    this.headerCount = p.headerCount;
    const host = p.field('host');
    this.authority = typeof host === 'string' ? host : '';
    this.reqKeepAlive = p.keepAlive;
    this.bodyKind = p.bodyKind;
    this.hasBody = p.bodyKind !== BodyKind.None;
    this.bodyDone = !this.hasBody;
    this.length = p.bodyKind === BodyKind.Length ? p.contentLength : -1;
    this.bodyLeft = this.length;
    if (p.bodyKind === BodyKind.Chunked) this.chunks.reset();
    this.sink = null;
    this.sinkPaused = false;
    this.sent = false;
    this.respChunked = false;
    this.respLeft = -1;
    if (p.upgrade || p.connect) {
      // The rest of this connection is not HTTP: hand it to a tunnel with what was read after the head.
      this.phase = Phase.Done;
      this.live.delete(this);
      this.stopIdleTimer();
      const h = p.headers;
      p.settleLazy(false);
      rawTunnel(env, conn, this.method, this.url, h, data.subarray(r, e), p.connect);
      return -1;
    }
    if (p.expectContinue && this.hasBody) {
      delete p.headers['expect'];
      conn.write(CONTINUE, 0, CONTINUE.length);
    }
    this.phase = this.hasBody ? Phase.Body : Phase.Wait;
    this.bodyBytes = 0;
    this.rateMark = -1;
    this.requestDeadline = 0;
    if (this.hasBody && cfg.requestTimeoutMs > 0) {
      this.requestDeadline = Date.now() + cfg.requestTimeoutMs - (performance.now() - this.headStart);
      deadlines().arm(this, this.requestDeadline);
    }
    // One Exchange per request: the request's own state (route, attempts, timers) outlives
    // this read callback; everything per connection lives on this object instead.
    const x = new Exchange(env, this, fresh ? this.headStart : performance.now());
    this.exchange = x;
    // The head's bytes may be forwarded as they are during start() (requestBytes()), not later.
    this.headBuf = data;
    try {
      x.start();
    } finally {
      this.headBuf = null;
      // The head's bytes are reused after this read: its header map is built now if the exchange
      // may still read it (most requests are routed and sent by now and never do).
      p.settleLazy(x.requestHeadersLater());
    }
    return r;
  }

  /** Delivers body bytes at data[s] to the sink; returns where the body ended (or e), -1 on error. */
  private readBody(data: Buffer, s: number, e: number): number {
    const sink = this.sink as BodySink;
    if (this.bodyKind === BodyKind.Length) {
      const n = Math.min(this.bodyLeft, e - s);
      if (n > 0) sink.onBodyData(data, s, s + n);
      this.bodyLeft -= n;
      this.bodyBytes += n;
      if (this.bodyLeft === 0) this.endBody();
      return s + n;
    }
    const r = this.chunks.decode(data, s, e, this);
    if (r < 0) {
      const c = this.env.ctx.counters;
      c[this.env.ctx.base + HL.BAD_REQUEST]++;
      this.failBody(new Error(`malformed chunked body: ${this.chunks.error}`));
      return -1;
    }
    if (this.chunks.done) this.endBody();
    return r;
  }

  /** ChunkSink: decoded payload of a chunked request body. */
  onChunkData(buf: Buffer, start: number, end: number): void {
    this.bodyBytes += end - start;
    if (this.sink !== null) this.sink.onBodyData(buf, start, end);
  }

  private endBody(): void {
    this.bodyDone = true;
    if (this.deadline !== 0) deadlines().disarm(this);
    if (this.phase === Phase.Body) this.phase = Phase.Wait;
    const k = this.sink;
    if (k !== null) k.onBodyEnd();
  }

  /** The request body cannot be read to its end: 400 if nothing was answered yet, else close. */
  private failBody(err: Error): void {
    const conn = this.conn as Connection;
    const k = this.sink;
    this.sink = null;
    this.phase = Phase.Done;
    // The exchange ends first (it aborts its attempt), so the attempt's failure cannot answer too.
    const x = this.exchange;
    this.exchange = null;
    if (x !== null) x.onDownstreamClose();
    if (k !== null) k.onBodyError(err);
    if (!this.sent) {
      this.env.ctx.counters[this.env.ctx.base + HL.RQ_1XX + 3]++;
      errorReply(conn, 400);
    } else conn.destroy();
  }

  // ---- the request's fields (Downstream)

  /** The request's header map (lower-case names, hop-by-hop ones included), built when first read. */
  get headers(): Headers {
    return this.parser.headers;
  }

  field(name: string): string | string[] | undefined {
    return this.parser.field(name);
  }

  // ---- BodySource (the request body, pulled by one upstream attempt)

  start(sink: BodySink): void {
    this.sink = sink;
    if (this.bodyDone) {
      sink.onBodyEnd();
      return;
    }
    // Streamed to an upstream connection: from now on the body must keep the minimum rate.
    if (sink.collecting !== true && limits.minBodyRateBytesPerSec > 0 && this.phase === Phase.Body) this.armRateWindow(Date.now());
    this.flushPending();
  }

  pause(): void {
    this.sinkPaused = true;
    if (this.conn !== null) this.conn.pauseRead();
  }

  resume(): void {
    if (!this.sinkPaused) return;
    this.sinkPaused = false;
    this.flushPending();
  }

  /** Runs stashed bytes through the state machine (outside a read already doing so) and reads on. */
  private flushPending(): void {
    const conn = this.conn;
    if (conn === null || this.processing || this.phase === Phase.Done) return;
    const p = this.pending;
    if (p !== null) {
      this.pending = null;
      this.process(conn, p, 0, p.length);
    }
    if (this.pending === null && (this.phase as Phase) !== Phase.Done) conn.resumeRead();
  }

  body(): Readable | BodySource {
    return this;
  }

  // ---- HeadBytes (the request head as bytes, while the exchange starts)

  requestBytes(): HeadBytes | null {
    return this.headBuf !== null && !this.parser.irregular ? this : null;
  }

  headBuffer(): Buffer | null {
    return this.headBuf;
  }

  get lines(): RawHeadLines {
    return this.parser;
  }

  // ---- Downstream (the response)

  get headersSent(): boolean {
    return this.sent;
  }

  respond(status: number, headers: Headers, end: boolean, close: boolean): void {
    const conn = this.conn;
    if (conn === null || this.sent) return;
    const cl = headers['content-length'];
    const extra = this.framing(status, end, close, typeof cl === 'string' ? Number(cl) : -1, cl !== undefined);
    // `delete` only when present: deleting a missing name is still a runtime call.
    if (headers['connection'] !== undefined) delete headers['connection'];
    // Trailers go only with chunked framing: do not announce what will be dropped.
    if (!this.respChunked && headers['trailer'] !== undefined) delete headers['trailer'];
    // One string per response head, its bytes in the shared head slab.
    writeLatin1(conn, responseHead(status, headers, extra));
    if (this.respLeft === NO_BODY) this.responseDone();
  }

  /**
   * The response head as the upstream sent it (Exchange.onResponseRaw): our status line and
   * framing lines, then the upstream's field lines but the hop-by-hop ones copied from its read
   * buffer (no header map, no string per field) and the empty line, one entry of this
   * connection's writev.
   */
  respondRaw(status: number, buf: Buffer, lines: RawHeadLines, end: boolean, close: boolean, bufEnd: number): void {
    const conn = this.conn;
    if (conn === null || this.sent) return;
    const len = lines.contentLength;
    const extra = this.framing(status, end, close, len, len >= 0);
    // The status line and our framing lines first, then the upstream's lines.
    const prefix = statusLine(status) + extra;
    if (len > 0 && this.respLeft === len && lines.headEnd + len <= bufEnd) {
      // The whole body came with the head: the head is rewritten in front of it in the read
      // buffer and both go as one range (one write entry, no copy); the body's write() calls
      // that follow only count it (preWritten).
      const at = headInPlace(buf, prefix, lines);
      if (at >= 0) {
        conn.write(buf, at, lines.headEnd + len);
        this.preWritten = len;
        return;
      }
    }
    writeHead(conn, prefix, buf, lines);
    if (this.respLeft === NO_BODY) this.responseDone();
  }

  /**
   * Framing of the response about to be sent (both head paths): keep-alive, content-length as
   * sent, else chunked, else close-delimited. `length`: the Content-Length value (-1 none);
   * `hasLength`: a Content-Length header is present. Returns the lines the proxy adds; respLeft
   * is NO_BODY when nothing follows the head.
   */
  private framing(status: number, end: boolean, close: boolean, length: number, hasLength: boolean): string {
    this.sent = true;
    this.preWritten = 0;
    if (this.probes > 0) {
      this.probes = 0;
      deadlines().disarm(this);
    }
    // Under memory pressure (overload manager), no keep-alive: the connection closes after this response.
    let keep = this.reqKeepAlive && !close && this.bodyDone && !overloadState.closeIdle;
    let extra = '';
    const noBody = end || this.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    if (noBody) {
      // No body follows. A HEAD response keeps the length it announces; others say 0.
      if (end && !hasLength && this.method !== 'HEAD' && status !== 204 && status !== 304) extra += 'content-length: 0\r\n';
      this.respLeft = NO_BODY;
    } else if (length !== -1) {
      this.respLeft = length;
    } else if (this.httpMinor >= 1) {
      this.respChunked = true;
      extra += 'transfer-encoding: chunked\r\n';
    } else {
      keep = false; // HTTP/1.0 client, unknown length: the close ends the body
    }
    if (!keep) extra += 'connection: close\r\n';
    else if (this.httpMinor === 0) extra += 'connection: keep-alive\r\n';
    this.respKeepAlive = keep;
    return extra;
  }

  write(chunk: Buffer): boolean {
    const conn = this.conn;
    if (conn === null || chunk.length === 0) return !this.full;
    if (this.preWritten > 0) {
      // Body bytes queued with the head (respondRaw): the upstream hands them over once more here.
      const k = Math.min(this.preWritten, chunk.length);
      this.preWritten -= k;
      this.respLeft -= k;
      if (k === chunk.length) return !this.full;
      chunk = chunk.subarray(k); // not reached: the pool hands the body in the read over in one piece
    }
    if (this.respChunked) {
      writeLatin1(conn, chunkHeader(chunk.length));
      conn.write(chunk, 0, chunk.length);
      conn.write(CRLF, 0, 2);
    } else {
      let n = chunk.length;
      if (this.respLeft >= 0) {
        // Never more than the announced length: extra bytes would desync the client.
        if (n > this.respLeft) n = this.respLeft;
        this.respLeft -= n;
      }
      conn.write(chunk, 0, n);
    }
    return !this.full;
  }

  end(trailers: Headers | null): void {
    const conn = this.conn;
    if (conn === null) return;
    if (this.respChunked) {
      const t = trailers === null ? '' : headerLines(trailers);
      if (t === '') conn.write(LAST_CHUNK, 0, LAST_CHUNK.length);
      else {
        writeLatin1(conn, `0\r\n${t}\r\n`);
      }
    } else if (this.respLeft > 0) {
      // The upstream ended short of its content-length: the client can only learn it by a close.
      this.respKeepAlive = false;
    }
    this.responseDone();
  }

  transport(): DownstreamTransport | null {
    return this.conn;
  }

  reset(): void {
    const conn = this.conn;
    this.exchange = null;
    this.phase = Phase.Done;
    if (conn !== null) conn.destroy();
  }

  /** The response ended: next request, or close. */
  private responseDone(): void {
    const conn = this.conn as Connection;
    this.exchange = null;
    if (!this.respKeepAlive || !this.bodyDone || this.phase === Phase.Done) {
      // A request body nobody read (a local reply) cannot be skipped safely: close.
      this.phase = Phase.Done;
      this.live.delete(this);
      conn.endWrite();
      conn.resumeRead();
      return;
    }
    this.phase = Phase.Head;
    this.headStart = 0;
    this.sink = null;
    if (this.env.draining && this.pending === null) {
      this.phase = Phase.Done;
      conn.endWrite();
      conn.resumeRead();
      return;
    }
    if (this.pending !== null || conn.isReadPaused) {
      // Pipelined bytes (or a paused read): carry on after this tick, outside the callers' stacks.
      setImmediate(this.continueReading);
    }
  }

  private readonly continueReading = (): void => {
    if (this.phase === Phase.Head && this.exchange === null) this.flushPending();
  };
}
