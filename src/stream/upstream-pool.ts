/**
 * Multiplexed upstream connection pool, protocol-independent (any XCodec).
 *
 *   downstream A id 7 --\                         /-- id 1 --> upstream conn #1 --> host
 *   downstream B id 7 ----> HostPool(host,codec) ---- id 2 --> upstream conn #1
 *   downstream A id 8 --/                         \-- id 1 --> upstream conn #2
 *
 * Per worker, per (host, codec): up to `connectionsPerHost` connections, picked round robin.
 * Each connection generates its own request ids (codec.nextId); the id is written in place
 * into the forwarded frame (no re-encode) and the pending request is registered under it.
 * Responses, in any order, find their pending request by id; the original downstream id is
 * written back in place and the frame goes to the request's receiver (the downstream session).
 *
 *  - oneway requests get an id and are written; no pending entry, no timer;
 *  - timeouts: the pending request is an entry of the worker's deadline wheel (no timer per
 *    request); on expiry it leaves the id table (a late response is dropped) and the receiver
 *    answers TIMEOUT;
 *  - a connection that closes fails every request pending on it at once (ConnectionClosed);
 *  - keepalive: a connection with no read for `keepaliveIntervalMs` sends the codec's
 *    heartbeat (an id from the same counter); no answer within `keepaliveTimeoutMs` closes it;
 *  - a receiver whose downstream went away drops its pending requests at once (cancelPending);
 *  - PendingRequest objects are pooled: the hot path allocates nothing; the free list keeps at
 *    most FREE_MAX of them, so memory returns after a burst;
 *  - in-flight requests per (host, codec) are bounded: circuit_breakers.max_requests (cluster,
 *    per worker) when set, else limits.rpcMaxPendingRequests per host; beyond, SEND_OVERFLOW
 *    (the codec answers SERVER_THREADPOOL_BUSY / Dubbo's SERVER_THREADPOOL_EXHAUSTED at once).
 */
import type { Connection, ConnectionHandler } from '../network/connection';
import { limits } from '../overload/limits';
import { ErrorKind, type XCodec, type XFrame } from '../protocol/types';
import { C } from '../stats/layout';
import type { Cluster } from '../upstream/cluster';
import type { Host, UpstreamPool } from '../upstream/lb';
import { LOCAL_FAILURE, outlierResult, RPC_ERROR, RPC_OK } from '../upstream/outlier';
import { deadlines, type DeadlineEntry } from './deadlines';
import { FrameReader, type FrameSink } from './frame-reader';
import { IdTable } from './id-table';
import { nowMs } from '../network/clock';

/** Implemented by whoever sends requests (the downstream session of the proxy). */
export interface StreamReceiver {
  /** The upstream answered; the frame already carries the downstream id. Valid until the read callback ends. */
  onUpstreamResponse(p: PendingRequest, buf: Buffer, frame: XFrame): void;
  /** The request failed (timeout, connection lost): answer it locally. */
  onUpstreamError(p: PendingRequest, kind: ErrorKind): void;
  /** This receiver's pending requests (an intrusive list kept by the pool; for cancelPending). */
  pendingHead?: PendingRequest | null;
}

export interface PoolSettings {
  readonly connectionsPerHost: number;
  readonly maxFrameSize: number;
  /** 0 disables keepalive heartbeats. */
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
}

export const DEFAULT_POOL_SETTINGS: PoolSettings = {
  connectionsPerHost: 1,
  maxFrameSize: 16 * 1024 * 1024,
  keepaliveIntervalMs: 15_000,
  keepaliveTimeoutMs: 3_000,
};

/** A request waiting for its response. Pooled; fields are valid until the receiver callback returns. */
export class PendingRequest implements DeadlineEntry {
  receiver: StreamReceiver | null = null;
  /** The id the downstream used (written back into the response). */
  downId = 0;
  /** codec.replyMeta of the request (what encodeError needs). */
  meta = 0;
  upId = 0;
  conn: UpstreamConn | null = null;
  startTime = 0;
  /** Free slot for the receiver. */
  context: unknown = null;
  /** Set before onUpstreamError: the connection never connected (the request was not sent; safe to retry). */
  connectFailed = false;
  /** The connection's error text for logs (%upstream_transport_failure_reason%), '' when none. */
  failure = '';
  // links in the receiver's list (cancelPending)
  rPrev: PendingRequest | null = null;
  rNext: PendingRequest | null = null;
  // deadline wheel links
  deadline = 0;
  dlPrev: DeadlineEntry | null = null;
  dlNext: DeadlineEntry | null = null;
  dlSlot = 0;

  onDeadline(): void {
    const c = this.conn;
    if (c !== null) c.expire(this);
  }
}

const freeList: PendingRequest[] = [];
const FREE_MAX = 1024;

function acquirePending(): PendingRequest {
  return freeList.pop() ?? new PendingRequest();
}

/** Adds `p` to its receiver's list. */
function linkPending(p: PendingRequest): void {
  const r = p.receiver as StreamReceiver;
  p.rPrev = null;
  const head = r.pendingHead ?? null;
  p.rNext = head;
  if (head !== null) head.rPrev = p;
  r.pendingHead = p;
}

/** Returns `p` to the pool, leaving its receiver's list. */
function releasePending(p: PendingRequest): void {
  const r = p.receiver;
  if (r !== null) {
    if (p.rPrev !== null) p.rPrev.rNext = p.rNext;
    else if (r.pendingHead === p) r.pendingHead = p.rNext;
    if (p.rNext !== null) p.rNext.rPrev = p.rPrev;
  }
  p.rPrev = p.rNext = null;
  p.receiver = null;
  p.conn = null;
  p.context = null;
  p.connectFailed = false;
  p.failure = '';
  if (freeList.length < FREE_MAX) freeList.push(p);
}

/** Outcome of HostPool.send. */
export const SEND_OK = 0;
/** max_pending_requests reached (requests queued on connections still connecting). */
export const SEND_OVERFLOW = 1;

/**
 * Whether HostPool.send answered SEND_OVERFLOW, by its type (send()'s only number): an object
 * compared with a number is a generic StrictEqual call in optimized code, typeof one compare.
 */
export function sendOverflowed(r: PendingRequest | null | typeof SEND_OVERFLOW): r is typeof SEND_OVERFLOW {
  return typeof r === 'number';
}

export class UpstreamConn implements ConnectionHandler, FrameSink<XFrame> {
  readonly conn: Connection;
  private readonly reader: FrameReader<XFrame>;
  private readonly pending = new IdTable<PendingRequest>();
  private lastId = 0;
  private connected = false;
  /** Requests written while connecting (counted in the cluster's pending gauge). */
  private queuedConnecting = 0;
  private lastRead = Date.now();
  private hbId = -1;
  private hbSentAt = 0;
  private closed = false;

  constructor(
    readonly pool: HostPool,
    private readonly codec: XCodec,
  ) {
    this.reader = new FrameReader(codec, pool.settings.maxFrameSize);
    const cl = pool.cluster;
    // A cluster with a tls_context gets TLS (SNI, CA verification, client certificate) here too.
    this.conn = cl.connect(pool.host, this, cl.connectTimeoutMs);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get isConnecting(): boolean {
    return this.connected !== true; // boolean fields compared with true: one compare (src/network/connection.ts write())
  }

  /** Forwards a decoded request frame (rewriting its id in place). */
  send(buf: Buffer, frame: XFrame, p: PendingRequest | null): void {
    const codec = this.codec;
    let id = codec.nextId(this.lastId);
    while (!this.pending.free(id) || id === this.hbId) id = codec.nextId(id);
    this.lastId = id;
    codec.setRequestId(buf, frame, id);
    const cl = this.pool.cluster;
    if (this.connected !== true) {
      this.queuedConnecting++;
      cl.counters[cl.base + C.RQ_PENDING_ACTIVE]++;
    }
    if (p !== null) {
      p.upId = id;
      p.conn = this;
      this.pending.set(p);
      this.pool.host.active++;
      this.pool.inflight++;
    }
    this.conn.write(buf, frame.frameStart, frame.frameStart + frame.frameLen);
    cl.counters[cl.base + C.BYTES_TX] += frame.frameLen;
  }

  /** The downstream went away: the request leaves the id table unanswered (a late response is dropped). */
  drop(p: PendingRequest): void {
    if (this.pending.get(p.upId) === p) {
      this.pending.delete(p.upId);
      deadlines().disarm(p);
      this.pool.host.active--;
      this.pool.inflight--;
      const cl = this.pool.cluster;
      cl.counters[cl.base + C.RQ_ACTIVE]--;
      cl.releaseRequest(); // its max_requests place (shared by every worker) is free again
    }
    releasePending(p);
  }

  /** The deadline of a pending request passed. */
  expire(p: PendingRequest): void {
    if (this.pending.get(p.upId) !== p) return;
    this.pending.delete(p.upId);
    this.pool.host.active--;
    this.pool.inflight--;
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.RQ_TIMEOUT]++;
    outlierResult(cl, this.pool.host, LOCAL_FAILURE);
    this.finish(p, ErrorKind.Timeout);
  }

  private finish(p: PendingRequest, kind: ErrorKind): void {
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.RQ_ACTIVE]--;
    cl.releaseRequest();
    const r = p.receiver;
    if (r !== null) r.onUpstreamError(p, kind);
    releasePending(p);
    this.pool.settled(this);
  }

  // ---- ConnectionHandler

  onConnect(): void {
    this.connected = true;
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.RQ_PENDING_ACTIVE] -= this.queuedConnecting;
    cl.releasePending(this.queuedConnecting);
    this.queuedConnecting = 0;
    this.lastRead = Date.now();
    this.armKeepalive();
  }

  onData(_conn: Connection, buf: Buffer, start: number, end: number): void {
    this.lastRead = nowMs(); // the read batch's clock (src/network/clock.ts)
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.BYTES_RX] += end - start;
    this.reader.feed(buf, start, end, this);
  }

  onFrame(buf: Buffer, frame: XFrame): boolean {
    const cl = this.pool.cluster;
    const c = cl.counters;
    if (frame.isRequest === true) {
      // Servers do not call clients over Bolt; answer a heartbeat, ignore anything else.
      if (frame.isHeartbeat === true) {
        const ack = this.codec.encodeHeartbeatAck(buf, frame);
        this.conn.write(ack, 0, ack.length);
      }
      return true;
    }
    if (frame.isHeartbeat === true && frame.requestId === this.hbId) {
      this.hbId = -1;
      this.armKeepalive();
      return true;
    }
    const p = this.pending.get(frame.requestId);
    if (p === undefined) {
      c[cl.base + C.RS_UNKNOWN_ID]++;
      return true;
    }
    this.pending.delete(frame.requestId);
    deadlines().disarm(p);
    this.pool.host.active--;
    this.pool.inflight--;
    c[cl.base + C.RQ_ACTIVE]--;
    cl.releaseRequest();
    const ok = frame.isSuccess === true;
    c[cl.base + (ok ? C.RS_SUCCESS : C.RS_ERROR)]++;
    outlierResult(cl, this.pool.host, ok ? RPC_OK : RPC_ERROR); // outlier detection
    this.codec.setRequestId(buf, frame, p.downId);
    const r = p.receiver;
    if (r !== null) r.onUpstreamResponse(p, buf, frame);
    releasePending(p);
    this.pool.settled(this);
    return this.closed !== true;
  }

  onDecodeError(): void {
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.DECODE_ERROR]++;
    this.conn.destroy(new Error('upstream frame could not be decoded'));
  }

  onEnd(): void {
    // The upstream half-closed: nothing more will be answered on this connection.
    this.conn.destroy();
  }

  onClose(_conn: Connection, err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    const cl = this.pool.cluster;
    const c = cl.counters;
    c[cl.base + C.CX_ACTIVE]--;
    c[cl.base + C.CX_DESTROY]++;
    // A failed connect, or requests lost with the connection: one local-origin failure.
    if (!this.connected || this.pending.size > 0) outlierResult(cl, this.pool.host, LOCAL_FAILURE);
    if (!this.connected) {
      c[cl.base + C.CX_CONNECT_FAIL]++;
      c[cl.base + C.RQ_PENDING_ACTIVE] -= this.queuedConnecting;
      cl.releasePending(this.queuedConnecting);
      this.queuedConnecting = 0;
    }
    this.pool.remove(this);
    if (this.pending.size === 0) return;
    const wheel = deadlines();
    // Fail everything pending at once; the receivers answer CONNECTION_CLOSED.
    for (let p = this.pending.takeAny(); p !== null; p = this.pending.takeAny()) {
      wheel.disarm(p);
      this.pool.host.active--;
      this.pool.inflight--;
      c[cl.base + C.RQ_CX_CLOSED]++;
      p.connectFailed = !this.connected;
      if (err !== undefined) p.failure = err.message;
      this.finish(p, ErrorKind.ConnectionClosed);
    }
  }

  onHighWatermark(): void {
    const cl = this.pool.cluster;
    cl.counters[cl.base + C.CX_RX_PAUSED]++;
  }

  onLowWatermark(): void {}

  onTimeout(): void {
    if (!this.connected) {
      const cl = this.pool.cluster;
      cl.counters[cl.base + C.CX_CONNECT_TIMEOUT]++;
      this.conn.destroy(new Error('upstream connect timeout'));
      return;
    }
    this.keepaliveTick();
  }

  // ---- keepalive (the socket's idle timer drives it: no timer of our own)

  private armKeepalive(): void {
    const s = this.pool.settings;
    if (s.keepaliveIntervalMs > 0) this.conn.setTimeout(s.keepaliveIntervalMs);
  }

  private keepaliveTick(): void {
    const s = this.pool.settings;
    if (s.keepaliveIntervalMs <= 0 || this.closed) return;
    const now = Date.now();
    // The socket's timeout event fires once per arm: every branch re-arms it.
    if (this.hbId >= 0) {
      const left = this.hbSentAt + s.keepaliveTimeoutMs - now;
      if (left > 0) {
        this.conn.setTimeout(left);
        return;
      }
      const cl = this.pool.cluster;
      cl.counters[cl.base + C.CX_KEEPALIVE_FAIL]++;
      this.conn.destroy(new Error('upstream heartbeat unanswered'));
      return;
    }
    const idleLeft = this.lastRead + s.keepaliveIntervalMs - now;
    if (idleLeft > 0) {
      this.conn.setTimeout(idleLeft);
      return;
    }
    let id = this.codec.nextId(this.lastId);
    while (!this.pending.free(id)) id = this.codec.nextId(id);
    this.lastId = id;
    this.hbId = id;
    this.hbSentAt = now;
    const hb = this.codec.encodeHeartbeat(id);
    this.conn.write(hb, 0, hb.length);
    this.conn.setTimeout(Math.max(1, s.keepaliveTimeoutMs));
  }
}

/** The connections of one worker to one host for one codec. */
export class HostPool implements UpstreamPool {
  private readonly conns: UpstreamConn[] = [];
  private next = 0;
  private draining = false;
  /** Two-way requests of this pool waiting for their response (all its connections). */
  inflight = 0;

  constructor(
    readonly host: Host,
    /** Replaced on a config reload that keeps the host (same stats slot, new circuit breakers). */
    public cluster: Cluster,
    readonly codec: XCodec,
    public settings: PoolSettings,
  ) {}

  get connectionCount(): number {
    return this.conns.length;
  }

  /**
   * A connection for the next request: a new one while fewer than connectionsPerHost exist and
   * the cluster's max_connections allows it, else the next existing one; null when there is
   * none and max_connections is reached.
   */
  pick(): UpstreamConn | null {
    const n = this.conns.length;
    if (n < Math.max(1, this.settings.connectionsPerHost) && this.cluster.tryAcquireConnection()) {
      const uc = new UpstreamConn(this, this.codec); // takes the reserved connection slot
      this.conns.push(uc);
      return uc;
    }
    if (n === 0) return null;
    if (this.next >= n) this.next = 0;
    return this.conns[this.next++];
  }

  /**
   * Sends a request: a pending entry (from the pool) is registered for two-way requests and
   * returned; oneway requests return null. Takes the cluster's circuit breakers first (shared
   * by every worker: max_requests for a two-way request, max_pending_requests for one queued
   * on a connection still connecting) and returns SEND_OVERFLOW instead when one is full.
   */
  send(buf: Buffer, frame: XFrame, receiver: StreamReceiver, meta: number, timeoutMs: number): PendingRequest | null | typeof SEND_OVERFLOW {
    const cl = this.cluster;
    const c = cl.counters;
    if (frame.isOneway !== true) {
      // Without a max_requests breaker, the default bound of in-flight requests per host pool
      // (limits.rpc_max_pending_requests) keeps a silent upstream from holding unbounded memory.
      if (cl.config.circuitBreakers.maxRequests === 0 && this.inflight >= limits.rpcMaxPendingRequests) {
        c[cl.base + C.RQ_PENDING_OVERFLOW]++;
        return SEND_OVERFLOW;
      }
      if (!cl.tryAcquireRequest()) return SEND_OVERFLOW;
    }
    const uc = this.pick();
    if (uc === null || (uc.isConnecting && !cl.tryAcquirePending())) {
      if (frame.isOneway !== true) cl.releaseRequest();
      return SEND_OVERFLOW;
    }
    c[cl.base + C.RQ_TOTAL]++;
    if (frame.isOneway === true) {
      c[cl.base + C.RQ_ONEWAY]++;
      uc.send(buf, frame, null);
      return null;
    }
    const p = acquirePending();
    p.receiver = receiver;
    p.downId = frame.requestId;
    p.meta = meta;
    p.startTime = nowMs();
    c[cl.base + C.RQ_ACTIVE]++;
    linkPending(p);
    uc.send(buf, frame, p);
    if (timeoutMs > 0) deadlines().arm(p, p.startTime + timeoutMs);
    return p;
  }

  remove(uc: UpstreamConn): void {
    const i = this.conns.indexOf(uc);
    if (i >= 0) this.conns.splice(i, 1);
  }

  /** The pool left the registry (drain): hostPool() makes or finds another. */
  get isDraining(): boolean {
    return this.draining === true;
  }

  /** Closes every connection (tests, shutdown). */
  closeAll(): void {
    for (const uc of [...this.conns]) uc.conn.destroy();
  }

  /**
   * UpstreamPool: the pool left the cluster manager's registry (host or cluster gone, new
   * connection settings). Connections with nothing pending close now, the others once their
   * last pending request is answered or expires.
   */
  drain(): void {
    this.draining = true;
    for (const uc of [...this.conns]) if (uc.pendingCount === 0) uc.conn.endWrite();
  }

  /** Draining: a connection whose last pending request finished closes. */
  settled(uc: UpstreamConn): void {
    if (this.draining === true && uc.pendingCount === 0) uc.conn.endWrite();
  }
}

/**
 * This worker's pool for (host, codec), registered with the cluster manager under
 * the codec's name (created on first use; drained when its host or cluster goes away).
 */
export function hostPool(host: Host, cluster: Cluster, codec: XCodec, settings: PoolSettings): HostPool {
  const key = codec.name; // 'bolt', 'dubbo', ...: distinct from the HTTP keys ('h1', 'h2', 'undici')
  let hp = cluster.pool(host, key) as HostPool | undefined;
  if (hp === undefined) {
    hp = new HostPool(host, cluster, codec, settings);
    cluster.addPool(host, key, hp);
  } else {
    hp.settings = settings; // the newest listener config wins (same values in practice)
    hp.cluster = cluster;
  }
  return hp;
}

/**
 * hostPool(host, cluster, codec, settings), answered by `last` (the caller's previous answer)
 * when it is that pool: same host, cluster, codec and settings, and still registered (a pool
 * leaves the registry only by drain). Saves the registry's Map lookup per request on a
 * connection whose requests keep going to one host.
 */
export function hostPoolAgain(last: HostPool | null, host: Host, cluster: Cluster, codec: XCodec, settings: PoolSettings): HostPool {
  if (last !== null && last.host === host && last.cluster === cluster && last.codec === codec && last.settings === settings && !last.isDraining) return last;
  return hostPool(host, cluster, codec, settings);
}

/**
 * The receiver's downstream went away: every request it still has pending leaves its
 * connection's id table and frees its place under the pending limits at once (a late response
 * finds no entry and is dropped; ids come from a per-connection counter, so one is not reused
 * before the counter wraps). Returns how many were dropped (the receiver hears nothing).
 */
export function cancelPending(r: StreamReceiver): number {
  let n = 0;
  for (let p = r.pendingHead ?? null; p !== null; p = r.pendingHead ?? null) {
    const c = p.conn;
    if (c !== null) c.drop(p);
    else releasePending(p);
    n++;
  }
  return n;
}
