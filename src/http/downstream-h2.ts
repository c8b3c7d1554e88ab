/**
 * HTTP/2 downstream (h2c, prior knowledge): a node:http2 server that never listens; the
 * listener hands it sockets. Limits: SETTINGS_MAX_CONCURRENT_STREAMS (extra streams are
 * refused with RST_STREAM REFUSED_STREAM), the initial flow-control window, the header list
 * size and pair count (over it: the stream is reset), invalid frames and rejected streams per
 * session (over it: GOAWAY). An idle session is closed with GOAWAY after idle_timeout.
 *
 * Response framing: the head is held (with one body chunk of up to HOLD_MAX) until the end, a
 * larger body, or the check phase of the next loop turn (one setImmediate per worker, not per
 * stream), whichever comes first. A response that completes meanwhile (the usual small one:
 * head, one DATA, end in one read, or in the next read when the upstream's HEADERS and DATA
 * were split across reads, which the second check phase covers: 14 % of the http2 bench's
 * responses missed the first) goes out as HEADERS + DATA(END_STREAM), or HEADERS + DATA +
 * trailers when it has trailers, instead of always waiting for trailers (an empty DATA frame,
 * the wantTrailers event and a setImmediate inside node per response). A response still open
 * at the flush waits for trailers as before.
 *
 * Drain (listener drain, hot upgrade, a replaced filter chain): a graceful GOAWAY (RFC 9113
 * 6.8) in two steps. The first names the highest stream id, so requests already on the wire are
 * still served, and is followed by a PING; once the PING is answered (the client has seen the
 * GOAWAY) the session closes with the real last stream id. When the first GOAWAY is sent
 * matters to clients that queue their next request locally (nghttp2 fails a request that is
 * queued but not yet written when a GOAWAY is read): it is sent when the client's next stream
 * arrives, the moment the client has just written, so it has nothing queued. A session with no
 * new stream within DRAIN_QUIET_MS (idle, or one long-lived stream) gets it then.
 */
import * as http2 from 'node:http2';
import type { Readable } from 'node:stream';
import { Exchange, type Downstream, type DownstreamTransport, type HttpEnv } from './exchange';
import { h2Tunnel } from './h2-tunnel';
import type { Headers } from './headers';
import { HL } from './stats';

const NO_TRAILERS: Headers = {};
const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants;
// respond() copies its options: shared constants, not an object per response.
const END_STREAM: http2.ServerStreamResponseOptions = Object.freeze({ endStream: true });
const OPEN: http2.ServerStreamResponseOptions = Object.freeze({ endStream: false });
const WAIT_TRAILERS: http2.ServerStreamResponseOptions = Object.freeze({ waitForTrailers: true });
/** A held body chunk larger than this is sent with the head at once. */
const HOLD_MAX = 16 * 1024;
/** Check phases a head waits for its response's end before it goes out alone (see the file comment). */
const HOLD_TURNS = 1;

const kDown = Symbol('outrigger.h2Downstream');
type DownStream = http2.ServerHttp2Stream & { [kDown]: H2Downstream };

const kDrain = Symbol('outrigger.h2Drain');
/** Counts the session's drain GOAWAY in its listener's stats (set with kDrain). */
const kDrainCounted = Symbol('outrigger.h2DrainCounted');
/** Drain states of a session (see the file comment). */
const enum Drain {
  /** Waiting for the client's next stream. */
  Waiting = 1,
  /** The first GOAWAY is sent. */
  Sent = 2,
}
type Session = http2.ServerHttp2Session & { [kDrain]?: Drain; [kDrainCounted]?: () => void };
/** How long a draining session waits for the client's next stream before its GOAWAY is sent anyway. */
const DRAIN_QUIET_MS = 1000;
/** Between the two GOAWAYs of a drain when the client does not answer the PING. */
const DRAIN_PING_GRACE_MS = 1000;
const LAST_STREAM_ID = 0x7fffffff;

// Stream listeners: `this` is the stream (EventEmitter calls listeners with the emitter).
function onStreamClose(this: DownStream): void {
  this[kDown].onClose();
}
function onStreamDrain(this: DownStream): void {
  const x = this[kDown].x;
  if (x !== null) x.onDownstreamDrain();
}
function onWantTrailers(this: DownStream): void {
  this.sendTrailers(this[kDown].trailers as http2.OutgoingHttpHeaders);
}
function ignoreError(): void {}

/** Downstreams whose head is held until the check phase (see the file comment). */
let held: H2Downstream[] = [];
let spare: H2Downstream[] = [];
let flushScheduled = false;

function flushHeld(): void {
  flushScheduled = false;
  const list = held;
  held = spare;
  spare = list;
  for (let i = 0; i < list.length; i++) {
    const d = list[i];
    if (d.holdTurns < HOLD_TURNS && d.holding()) {
      d.holdTurns++;
      held.push(d);
      continue;
    }
    try {
      d.flushHead();
    } catch {
      // A head node:http2 refuses (an invalid header value): this stream only, not the rest.
      d.reset();
    }
  }
  list.length = 0;
  if (held.length > 0 && !flushScheduled) {
    flushScheduled = true;
    setImmediate(flushHeld);
  }
}

function hasKeys(h: Headers): boolean {
  for (const _ in h) return true;
  return false;
}

/**
 * One HTTP/2 stream as the exchange's downstream, on the core stream API (no compat
 * request/response objects): one adapter object per stream, listeners shared by all streams.
 */
class H2Downstream implements Downstream {
  readonly h2 = true;
  readonly method: string;
  readonly url: string;
  readonly authority: string;
  readonly httpMinor = 1;
  readonly headerCount: number;
  readonly hasBody: boolean;
  x: Exchange | null = null;
  trailers: Headers = NO_TRAILERS;
  private sent = false;
  private drainHooked = false;
  /** Check phases this head has waited (flushHeld). */
  holdTurns = 0;
  /** The response head not yet given to the stream (see the file comment). */
  private head: Headers | null = null;
  /** A body chunk held with the head (a copy: the caller's view may be transient). */
  private chunk: Buffer | null = null;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly headers: Headers,
    private readonly env: HttpEnv,
  ) {

    this.method = String(headers[':method'] ?? 'GET');
    this.url = String(headers[':path'] ?? '/');
    const a = headers[':authority'] ?? headers['host'];
    this.authority = typeof a === 'string' ? a : '';
    this.headerCount = 0; // limited by the session (maxHeaderListPairs)
    this.hasBody = !stream.endAfterHeaders;
  }

  run(): void {
    const x = new Exchange(this.env, this);
    this.x = x;
    const st = this.stream as DownStream;
    st[kDown] = this;
    st.on('error', ignoreError);
    st.on('close', onStreamClose);
    x.start();
  }

  onClose(): void {
    this.head = null;
    this.chunk = null;
    const st = this.stream;
    // nghttp2 refuses streams over the concurrency limit itself; those Node sees end here.
    if (st.rstCode === NGHTTP2_REFUSED_STREAM) this.env.ctx.counters[this.env.ctx.base + HL.H2_REFUSED_STREAM]++;
    if (this.x !== null) this.x.onDownstreamClose();
  }

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
    if (end) {
      st.respond(headers as http2.OutgoingHttpHeaders, END_STREAM);
      return;
    }
    this.head = headers;
    held.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushHeld);
    }
  }

  /** The head is still held. */
  holding(): boolean {
    return this.head !== null;
  }

  /** Gives a held head (and chunk) to the stream, waiting for trailers: the end is not known yet. */
  flushHead(): void {
    const head = this.head;
    if (head === null) return;
    this.head = null;
    const st = this.stream;
    if (st.destroyed || st.closed) return;
    st.on('wantTrailers', onWantTrailers);
    st.respond(head as http2.OutgoingHttpHeaders, WAIT_TRAILERS);
    const c = this.chunk;
    if (c !== null) {
      this.chunk = null;
      st.write(c);
    }
  }

  write(chunk: Buffer): boolean {
    const st = this.stream;
    if (st.destroyed) return true;
    // The chunk may be a view of a reused read buffer; the stream queues what it cannot send now.
    const copy = Buffer.from(chunk);
    if (this.head !== null) {
      if (this.chunk === null && copy.length <= HOLD_MAX) {
        this.chunk = copy;
        return true;
      }
      this.flushHead();
    }
    if (st.write(copy)) return true;
    // Full: the exchange waits for 'drain' (listened to from the first full write on, not per stream).
    if (!this.drainHooked) {
      this.drainHooked = true;
      st.on('drain', onStreamDrain);
    }
    return false;
  }

  end(trailers: Headers | null): void {
    const st = this.stream;
    if (st.destroyed) return;
    if (!this.sent) {
      // Trailers before any head (a deadline at the start): a trailers-only response.
      this.respond(200, { ...(trailers ?? {}) }, true);
      return;
    }
    const head = this.head;
    if (head !== null) {
      // The whole response is known: trailers only when there are some.
      this.head = null;
      const c = this.chunk;
      this.chunk = null;
      if (st.closed) return;
      if (trailers !== null && hasKeys(trailers)) {
        this.trailers = trailers;
        st.on('wantTrailers', onWantTrailers);
        st.respond(head as http2.OutgoingHttpHeaders, WAIT_TRAILERS);
        if (c !== null) st.end(c);
        else st.end();
      } else if (c !== null) {
        st.respond(head as http2.OutgoingHttpHeaders, OPEN);
        st.end(c);
      } else st.respond(head as http2.OutgoingHttpHeaders, END_STREAM);
      return;
    }
    if (trailers !== null) this.trailers = trailers;
    st.end();
  }

  transport(): DownstreamTransport | null {
    const sess = this.stream.session;
    return sess === undefined ? null : sess.socket;
  }

  reset(): void {
    this.head = null;
    this.chunk = null;
    const st = this.stream;
    if (!st.destroyed) st.close(NGHTTP2_INTERNAL_ERROR);
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
      // RFC 8441: WebSocket over HTTP/2 (extended CONNECT, :protocol), relayed to an HTTP/1.1 upgrade.
      enableConnectProtocol: true,
    },
    maxHeaderListPairs: cfg.maxHeaders + 4, // + the pseudo-headers
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxSessionMemory: 32,
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const session = stream.session as Session;
    if (session[kDrain] === Drain.Waiting) goawayTwoStep(session);
    // CONNECT (RFC 7540 §8.3) and extended CONNECT (RFC 8441): tunnels, as on HTTP/1.1.
    if (headers[':method'] === 'CONNECT' && h2Tunnel(env, stream, headers as Headers)) return;
    new H2Downstream(stream, headers as Headers, env).run();
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    session.on('error', () => {});
    // The connection window as large as one stream's: request bodies need fewer WINDOW_UPDATEs.
    if (cfg.h2InitialWindowSize > 65_535) session.setLocalWindowSize(cfg.h2InitialWindowSize);
    if (cfg.idleTimeoutMs > 0) {
      session.setTimeout(cfg.idleTimeoutMs, () => {
        c[base + HL.H2_GOAWAY_SENT]++;
        session.close();
      });
    }
    session.on('frameError', () => c[base + HL.H2_RST_SENT]++);
  });
  server.on('sessionError', () => c[base + HL.H2_GOAWAY_SENT]++);
  return server;
}

// ---- Drain (see the file comment)

function goawayTwoStep(s: Session): void {
  s[kDrain] = Drain.Sent;
  if (s.closed || s.destroyed) return;
  s[kDrainCounted]?.();
  s.goaway(0, LAST_STREAM_ID);
  let done = false;
  const close = (): void => {
    if (done) return;
    done = true;
    if (!s.closed && !s.destroyed) s.close();
  };
  // Without a PING answer: close after the grace, but only after this loop turn's reads (the
  // check phase comes after the poll phase), so a request already received is not refused
  // because the timer happened to run first after a stalled loop.
  setTimeout(() => setImmediate(close), DRAIN_PING_GRACE_MS).unref();
  if (!s.ping(close)) close();
}

/**
 * Starts the graceful drain of one HTTP/2 session (see the file comment). `counted` is called
 * once when the first GOAWAY goes out.
 */
export function drainH2Session(session: http2.ServerHttp2Session, counted: () => void): void {
  const s = session as Session;
  if (s.closed || s.destroyed || s[kDrain] !== undefined) return;
  s[kDrain] = Drain.Waiting;
  s[kDrainCounted] = counted;
  setTimeout(() => {
    if (s[kDrain] === Drain.Waiting) goawayTwoStep(s);
  }, DRAIN_QUIET_MS).unref();
}
