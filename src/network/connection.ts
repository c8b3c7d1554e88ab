/**
 * Connection: one TCP socket with the zero-copy read path and the gathered write path
 * described in io.ts, watermarks, half-close and timeouts. Protocol layers and network
 * filters talk to it through a ConnectionHandler (one object per connection, no closure or
 * promise per read or write).
 *
 *   read:  libuv -> shared read chunk -> handler.onData(view) -> conn.write(view) on a peer
 *          (plain connections: the addon's poll and read(2) instead of libuv's stream, all the
 *          reads of a loop iteration in one JS call, see nativeRead)
 *   write: views gathered -> end of read callback -> one writev(2) per connection
 *          -> bytes the kernel did not take: copied to pooled chunks -> socket.write
 *
 * Watermarks: queued = gathered + copied-not-yet-written bytes. Above `high` the handler's
 * onHighWatermark runs (a proxy pauses reading on the other side); once the queue is at or
 * below `low` again, onLowWatermark.
 *
 * Stream mode (per connection): a TLS socket has no fd to writev to and cannot read into the
 * shared chunk, so it reads through 'data' events and flushes its gathered entries with
 * cork()/write()/uncork(), like the global `cork` IoMode. It is chosen automatically for a
 * tls.TLSSocket (or asked for, e.g. by the TLS inspector for a plaintext socket whose first
 * bytes were peeked). Plain sockets in writev mode take exactly the path they took before.
 */
import * as net from 'node:net';
import * as os from 'node:os';
import * as v8 from 'node:v8';
import * as tls from 'node:tls';
import { tlsInfoOf, type PeerIdentity, type TlsInfo } from '../tls/identity';
import { forgetNativeTls, nativeTlsEnd, nativeTlsOf, TLS_FATAL, TLS_MORE, tlsStatus, type NativeTlsSession } from '../tls/native';
import { native, type NativeReadBinding } from '../native';
import { io, type Flushable, type IoContext } from './io';
import { batchClock, endBatchClock, lendBatchClock, nowMs } from './clock';
import { handleIdle, installUserBuffer, isFdSocket, socketFd, systemError, userBufferSupported } from './user-buffer';
import { originalDstOf } from './original-dst';

export interface ConnectionHandler {
  /** Bytes read. The view is valid only until this callback's tick ends: write it, parse it, or copy it. */
  onData(conn: Connection, buf: Buffer, start: number, end: number): void;
  /** The peer half-closed (FIN). */
  onEnd(conn: Connection): void;
  /** The socket is gone. `err` is set when it ended with an error. */
  onClose(conn: Connection, err: Error | undefined): void;
  onHighWatermark(conn: Connection): void;
  onLowWatermark(conn: Connection): void;
  /** Outgoing connections only. */
  onConnect?(conn: Connection): void;
  /**
   * Hot upgrade (src/upgrade/worker-side.ts): between requests, the bytes read and not processed
   * yet (the handler then lets go of the connection); null while a request is in flight.
   */
  migrate?(conn: Connection): Buffer | null;
  /** The idle or connect timer of setTimeout() fired. */
  onTimeout?(conn: Connection): void;
}

export type ConnState = 'connecting' | 'open' | 'closed';

export interface AcceptOptions {
  /** Read with 'data' events and write with cork/uncork even if the socket is plain. */
  readonly stream?: boolean;
}

/** See Connection.outgoingReadHook. */
export interface OutgoingReadHook {
  conn: Connection | null;
  readonly onread: { readonly buffer: Buffer; readonly callback: (n: number, b: Buffer) => boolean };
}

let nextId = 1;

/** Hot upgrade: the Connection of an accepted socket (filters that take raw sockets make theirs inside). */
const bySocket = new WeakMap<net.Socket, Connection>();

export function connectionOf(socket: net.Socket): Connection | undefined {
  return bySocket.get(socket);
}

let handingOver = false;
/** Hot upgrade, old process: connections are being handed over, so a drain must not close idle RPC connections (they move). */
export function startHandingOver(): void {
  handingOver = true;
}
/** Hot upgrade, old process: the new one died; idle RPC connections stay here again. */
export function stopHandingOver(): void {
  handingOver = false;
  const held = [...handOverHolds];
  handOverHolds.clear();
  for (const release of held) release();
}
/** Connections whose reads are held for a hand-over (holdForHandOver): released if it stops. */
const handOverHolds = new Set<() => void>();
/**
 * Hot upgrade, old process: `release` runs if the hand-over stops (the new process died) before
 * this connection moved; forget() when it moved or closed.
 */
export function holdForHandOver(release: () => void): void {
  handOverHolds.add(release);
}
export function forgetHandOverHold(release: () => void): void {
  handOverHolds.delete(release);
}
export function handingOverConnections(): boolean {
  return handingOver;
}

/**
 * Done with the first connection of a thread, so only threads that carry connections are touched:
 * - the event loop polls once per wakeup (native singlePoll): Node's idle-time metrics add a
 *   zero-timeout epoll_pwait before each sleep. OUTRIGGER_LOOP_IDLE_METRICS=1 keeps them
 *   (performance.eventLoopUtilization()).
 * - on a process that may run on one CPU only (pinned, as the sidecar is), scavenges run on
 *   this thread alone (see singleCpuScavenge).
 */
let threadTuned = false;

function tuneThread(): void {
  threadTuned = true;
  if (process.env.OUTRIGGER_LOOP_IDLE_METRICS !== '1') native.singlePoll();
  if (!scavengeTuned && singleCpuScavenge(os.availableParallelism(), process.env.OUTRIGGER_PARALLEL_SCAVENGE)) {
    scavengeTuned = true;
    v8.setFlagsFromString('--no-parallel-scavenge'); // read by V8 at every scavenge
  }
}

let scavengeTuned = false;

/**
 * Whether young-generation collections should run without V8's helper threads: yes when the
 * process may use one CPU only. The helpers then share that CPU with the thread that waits for
 * them, so a scavenge that takes 2 ms alone took ~20 ms (measured pinned to one CPU at Bolt
 * 2,000 req/s: every request in flight waits for it). OUTRIGGER_PARALLEL_SCAVENGE=1 keeps V8's
 * default, =0 turns the helpers off whatever the CPU count.
 */
export function singleCpuScavenge(cpus: number, env: string | undefined): boolean {
  if (env === '1') return false;
  if (env === '0') return true;
  return cpus <= 1;
}

/** Whether this process turned parallel scavenges off (singleCpuScavenge). */
export function scavengeSingleThreaded(): boolean {
  return scavengeTuned;
}

/**
 * Native read path (native/read.cc): a plain connection whose reads land in the shared chunk is
 * read by the addon (its own poll of a dup of the fd) instead of libuv's stream reads and Node's
 * StreamBase/onStreamRead. Every connection that became readable in one loop iteration is read
 * in one JS call after the poll phase (onNativeBatch; one per chunk's worth of reads): one
 * read(2) each, taken lazily through next() so that a connection paused or closed by an earlier
 * read's handler is not read; the reads lie one after the other in the chunk and the writes they
 * gather leave in one flush at the end of the call; microtasks and nextTicks run after it. Node's socket
 * keeps the fd for writes, timers and close, with its own reading stopped; the FIN is left to
 * Node to read (so 'end', half-close and 'close' happen exactly as before), read errors destroy
 * the socket with the same Error Node raises. OUTRIGGER_NATIVE_READ=0 (or no addon) keeps
 * Node's reads.
 */
const nativeRead = process.env.OUTRIGGER_NATIVE_READ === '0' ? null : native.read;
/**
 * How the addon enters onNativeBatch: a plain call (default; the nextTicks and microtasks it
 * queues run in Node's callback scope of the same check phase, right after it) or, with
 * OUTRIGGER_NATIVE_READ_ENTRY=callback, napi_make_callback per call (its own callback scope).
 */
const nativeReadViaCallback = process.env.OUTRIGGER_NATIVE_READ_ENTRY === 'callback';
/**
 * After how many reads an owned fd (an FdSocket: TLS accepted natively, a native upstream
 * connect) leaves the addon's epoll set of owned fds for a libuv poll handle of its own
 * (native/read.cc OwnPoll): the set costs an epoll_wait of its own per wakeup in which one of its
 * fds is ready, a poll handle a few epoll_ctl once. OUTRIGGER_OWNED_POLL_AFTER=N (0: never, every
 * owned fd stays in the set as in session 10); default 16: long-lived connections (pooled RPC and
 * HTTP upstreams) move, a TLS handshake and a request or two stay.
 */
export const ownedPollAfter = ownPollAfterOf(process.env.OUTRIGGER_OWNED_POLL_AFTER);

function ownPollAfterOf(v: string | undefined): number {
  const n = v === undefined || v === '' ? 16 : Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : 16;
}
/** What the native read path delivers to: a Connection (plain), or an FdSocket (fd-socket.ts). */
export interface NativeReader {
  /** n bytes at `start` in the shared chunk, 0 the peer's FIN, < 0 -errno (inside a batch). */
  nativeRead(start: number, n: number): void;
  /** Owned fds: the fd became writable after readWantWrite. */
  nativeWritable?(): void;
}
/** This thread's natively read connections by watcher id (null until the first one). */
let nativeReaders: (NativeReader | null)[] | null = null;
/** Where nativeRead.next() puts a read's start in the chunk and its length (made once per thread). */
let nativeReadState: Int32Array | null = null;
/** Whether the addon writes each batch's time into batchClock (clock.ts; builds before it do not). */
let nativeReadClock = false;

/** This thread's native read counters (NativeReadBinding.stats); zeros without the native read path. */
export function nativeReadStats(): number[] {
  return nativeRead !== null ? nativeRead.stats() : [0, 0, 0, 0, 0, 0];
}

/**
 * A loop iteration's native reads, in one JS call (per chunk's worth of them): the reads lie one
 * after the other in the chunk and the writes they gather leave in one flush at the end, as after
 * one Node read. The addon made the first read; st[2] says whether more sockets are pending.
 */
function onNativeBatch(first: number): void {
  const nr = nativeRead as NativeReadBinding;
  const readers = nativeReaders as (NativeReader | null)[];
  const st = nativeReadState as Int32Array;
  const ctx = io();
  ctx.enterRead();
  const clock = lendBatchClock(nativeReadClock); // one clock read for the batch (src/network/clock.ts)
  try {
    // -1: none left; -2 (the chunk is full): return, the flush frees it, the addon calls again.
    for (let id = first; id >= 0; id = st[2] === 0 ? -1 : nr.next()) {
      const c = readers[id];
      if (c !== null && c !== undefined) c.nativeRead(st[0], st[1]);
    }
  } finally {
    ctx.exitRead();
    endBatchClock(clock);
  }
}

/** Sets this thread's native read path up (once): the shared chunk, the batch and writable callbacks. */
function nativeReadSetup(nr: NativeReadBinding, ctx: IoContext): (NativeReader | null)[] {
  if (nativeReaders === null) {
    nativeReadState = new Int32Array(3); // once per thread
    nativeReadClock = nr.setup(ctx.readBuffer, nativeReadState, onNativeBatch, nativeReadViaCallback, ownedPollAfter, batchClock) === true;
    nativeReaders = [];
    if (nr.onWritable !== undefined) nr.onWritable(onNativeWritable);
  }
  return nativeReaders;
}

function onNativeWritable(id: number): void {
  const r = (nativeReaders as (NativeReader | null)[])[id];
  if (r !== null && r !== undefined && r.nativeWritable !== undefined) r.nativeWritable();
}

/**
 * The native read path for an fd the caller owns (an FdSocket): polled without a dup, closed by
 * nativeUnwatch. null when this thread has no native read path with owned fds.
 */
export const ownedFdReads: boolean = nativeRead !== null && nativeRead.wantWrite !== undefined && nativeRead.onWritable !== undefined;

/** Starts polling an owned fd for `r` (throws when libuv refuses the fd, which is then closed); its watcher id. */
export function nativeWatch(r: NativeReader, fd: number): number {
  const nr = nativeRead as NativeReadBinding;
  const readers = nativeReadSetup(nr, io());
  const id = nr.watch(fd, true);
  readers[id] = r;
  return id;
}

/** Stops the watcher `id` (and closes its owned fd). */
export function nativeUnwatch(id: number): void {
  (nativeReaders as (NativeReader | null)[])[id] = null;
  (nativeRead as NativeReadBinding).close(id);
}

export function nativeReadPause(id: number, paused: boolean): void {
  (nativeRead as NativeReadBinding).pause(id, paused);
}

/** One-shot: nativeWritable() once the watcher's fd can take more. */
export function nativeWantWrite(id: number): void {
  ((nativeRead as NativeReadBinding).wantWrite as (id: number) => void)(id);
}

/** Peer address texts seen, each kept once (bounded: cleared when full). */
const peerTexts = new Map<string, string>();

/**
 * The one string kept for a peer address text: the connections of one peer share it, so that
 * code comparing a request's peer with the last one seen (RBAC's per-peer candidates, its IP
 * cache) finds the same object instead of comparing characters. Once per connection.
 */
export function peerText(t: string): string {
  const k = peerTexts.get(t);
  if (k !== undefined) return k;
  if (peerTexts.size >= 4096) peerTexts.clear();
  peerTexts.set(t, t);
  return t;
}

/** Gathered output entry arrays grow to this size; more entries in one tick are copied. */
const MAX_ENTRIES = 512;

export class Connection implements Flushable, NativeReader {
  readonly id = nextId++;
  readonly socket: net.Socket;
  state: ConnState;
  queuedForFlush = false;
  fd = -1;
  bytesRx = 0;
  bytesTx = 0;
  /** Free slot for the owner (a filter's per-connection state). */
  context: unknown = undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly startTime = Date.now();
  error: Error | undefined;
  /** true: 'data' reads and cork/uncork writes (TLS sockets, global cork mode); false: shared chunk + writev. */
  readonly streamMode: boolean;

  private readonly io: IoContext;
  private tlsCache: TlsInfo | undefined = undefined;
  private handler: ConnectionHandler;
  // Gathered output, in order: a borrowed view (chunk === null) or a pooled copy (chunk set).
  private readonly eBuf: Buffer[] = [];
  private readonly eStart: number[] = [];
  private readonly eEnd: number[] = [];
  private readonly eChunk: (Buffer | null)[] = [];
  private eCount = 0;
  private gathered = 0;
  /** Pooled chunks handed to socket.write, released in order as the writes complete. */
  private readonly inflight: (Buffer | null)[] = [];
  private inflightHead = 0;
  private blocked = false;
  private endRequested = false;
  private writeEnded = false;
  private aboveHigh = false;
  private readonly high: number;
  private readonly low: number;
  private readPaused = false;
  /** The socket reads into the shared chunk through its `onread` user buffer (Node's zero-copy reads). */
  private userBuffer = false;
  /** The addon's read watcher of this connection (native read path), or -1. */
  private nrId = -1;
  /** The idle timeout setTimeout() asked for (0: none). */
  private idleMs = 0;
  /** When the native read path last read bytes (ms, nowMs() clock; 0: never): see onSocketTimeout. */
  private lastRead = 0;
  /**
   * Native TLS (src/tls/native.ts): reads are decrypted and writes encrypted through it. Set once:
   * at construction (accepted), or when an outgoing native handshake completes (tlsEstablished).
   */
  ntls: NativeTlsSession | null;

  /**
   * The socket's fd carries exactly the bytes the handler sees: no TLS (Node's, in stream mode,
   * or the addon's) and no stream wrapper. What anything that moves the fd's bytes itself needs
   * (tcp_proxy's splice, node:http2 taking the socket's handle).
   */
  get plainFd(): boolean {
    return !this.streamMode && this.ntls === null && this.fd >= 0;
  }

  private readonly onRead = (nread: number, buf: Buffer): void => {
    const ctx = this.io;
    ctx.enterRead();
    this.deliver(buf, 0, nread);
    ctx.exitRead();
  };

  private readonly onDataEvent = (chunk: Buffer): void => this.onRead(chunk.length, chunk);

  /** Stream mode: re-checks the low watermark once the socket has drained. */
  private readonly onDrain = (): void => {
    if (this.state !== 'closed') this.checkWatermarks();
  };

  private readonly onWritten = (err?: Error | null): void => {
    if (this.state === 'closed') return;
    const chunk = this.inflight[this.inflightHead];
    this.inflight[this.inflightHead++] = null;
    if (chunk) this.io.pool.release(chunk);
    if (this.inflightHead === this.inflight.length) {
      this.inflight.length = 0;
      this.inflightHead = 0;
      this.blocked = false;
    }
    if (err) return; // 'error' and 'close' follow
    this.checkWatermarks();
    if (!this.blocked && this.eCount > 0) this.io.markDirty(this);
  };

  constructor(socket: net.Socket, handler: ConnectionHandler, bufferLimit: number, connecting: boolean, stream = false) {
    if (!threadTuned) tuneThread();
    this.io = io();
    this.socket = socket;
    this.ntls = connecting ? null : (nativeTlsOf(socket) ?? null);
    this.streamMode = this.ntls === null && (stream || this.io.mode === 'cork' || socket instanceof tls.TLSSocket);
    this.handler = handler;
    this.high = Math.max(bufferLimit, 1024);
    this.low = this.high >>> 1;
    this.state = connecting ? 'connecting' : 'open';
    this.remoteAddress = peerText(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
    const od = originalDstOf(socket); // transparent interception: the address the client dialed
    this.localAddress = od !== null ? od.host : (socket.localAddress ?? '');
    this.localPort = od !== null ? od.port : (socket.localPort ?? 0);
    socket.on('end', () => {
      if (this.state !== 'closed') this.handler.onEnd(this);
    });
    socket.on('error', (e: Error) => {
      if (this.error === undefined) this.error = e;
      // A net.Socket is already destroyed when it reports an error; Node's TLSSocket reports a
      // record that does not decrypt (after the handshake) and stays open: close it here, as the
      // native TLS path does, so that bad input ends only this connection, and ends it.
      if (!socket.destroyed) socket.destroy();
    });
    socket.on('close', () => this.closed());
    socket.on('timeout', () => this.onSocketTimeout());
    // Stream mode (TLS, and the global cork mode) writes mostly without callbacks: 'drain' tells when the queue emptied.
    if (this.streamMode) socket.on('drain', this.onDrain);
    // TLS details are read while the session is up (they are gone once the socket closes).
    if (!connecting && socket instanceof tls.TLSSocket) this.tlsCache = tlsInfoOf(socket);
    if (this.ntls !== null) this.tlsCache = this.ntls.info;
    if (!connecting) this.fd = socketFd(socket);
  }

  /**
   * Wraps an accepted socket (created paused, with pauseOnConnect) and starts reading. A
   * tls.TLSSocket (handshake done) is served in stream mode.
   */
  static accept(socket: net.Socket, handler: ConnectionHandler, bufferLimit: number, opts?: AcceptOptions): Connection {
    const c = new Connection(socket, handler, bufferLimit, false, opts !== undefined && opts.stream === true);
    bySocket.set(socket, c); // one entry per accepted connection (not per read): the hot upgrade finds it by socket
    socket.setNoDelay(true);
    if (c.ntls !== null) {
      // Reads go through the TLS session; plaintext that came with the handshake goes first.
      if (isFdSocket(socket)) socket.setReader(c.onReadTlsAt);
      else if (!installUserBuffer(socket, c.io.readBuffer, c.onReadTls)) socket.on('data', (d: Buffer) => c.onReadTls(d.length, d));
      if (c.ntls.pending !== null) process.nextTick(c.deliverPending);
    } else if (!c.streamMode && installUserBuffer(socket, c.io.readBuffer, c.onRead)) {
      // reads land in the shared chunk: the addon's, or Node's
      c.userBuffer = true;
      if (c.startNativeRead()) return c;
    } else {
      socket.on('data', c.onDataEvent);
    }
    socket.resume();
    return c;
  }

  /**
   * The zero-copy read hook for a plain outgoing socket about to be created (its `onread`
   * option): reads land in the shared chunk and go to the Connection that adopts the socket
   * (adoptOutgoing). null when this thread does not read that way (cork mode, no support).
   * Sockets are created in src/upstream/connect.ts only.
   */
  static outgoingReadHook(): OutgoingReadHook | null {
    const ctx = io();
    if (ctx.mode !== 'writev' || !userBufferSupported) return null;
    const hook: OutgoingReadHook = {
      conn: null,
      onread: {
        buffer: ctx.readBuffer,
        callback: (n: number, b: Buffer): boolean => {
          (hook.conn as Connection).onRead(n, b);
          return true;
        },
      },
    };
    return hook;
  }

  /**
   * Wraps an outgoing socket still connecting; handler.onConnect runs when it is up (for a
   * tls.TLSSocket, once the handshake is done: the connect timeout covers the handshake).
   * `hook`: the outgoingReadHook the socket was created with, if any.
   */
  static adoptOutgoing(socket: net.Socket, handler: ConnectionHandler, bufferLimit: number, timeoutMs: number, hook: OutgoingReadHook | null): Connection {
    const isTls = socket instanceof tls.TLSSocket;
    const conn = new Connection(socket, handler, bufferLimit, true, isTls);
    if (isFdSocket(socket)) {
      // An FdSocket (FdSocket.connect): read by its watcher once connected (connected()).
    } else if (hook !== null && !isTls) {
      hook.conn = conn;
      conn.userBuffer = true;
    } else socket.on('data', conn.onDataEvent);
    if (timeoutMs > 0) socket.setTimeout(timeoutMs);
    if (isTls) {
      const ts = socket as tls.TLSSocket;
      ts.once('secureConnect', () => {
        ts.setNoDelay(true);
        conn.tlsCache = tlsInfoOf(ts);
        conn.connected();
      });
    } else {
      socket.once('connect', () => conn.connected());
    }
    return conn;
  }

  /**
   * Wraps an outgoing plain socket that will carry native TLS (src/tls/client.ts runs the client
   * handshake on it): nothing is written until tlsEstablished; a failed handshake destroys the
   * socket with its error. The connect timeout covers the handshake.
   */
  static adoptOutgoingTls(socket: net.Socket, handler: ConnectionHandler, bufferLimit: number, timeoutMs: number): Connection {
    const conn = new Connection(socket, handler, bufferLimit, true, false);
    if (timeoutMs > 0) socket.setTimeout(timeoutMs);
    return conn;
  }

  /** The outgoing native TLS handshake completed: reads and writes go through `s`, then handler.onConnect runs. */
  tlsEstablished(s: NativeTlsSession): void {
    if (this.state !== 'connecting') return;
    this.ntls = s;
    this.tlsCache = s.info;
    if (!installUserBuffer(this.socket, this.io.readBuffer, this.onReadTls)) this.socket.on('data', (d: Buffer) => this.onReadTls(d.length, d));
    this.connected();
    if (s.pending !== null) process.nextTick(this.deliverPending);
    if (!this.readPaused) this.socket.resume();
  }

  /** TLS details (version, cipher, SNI, ALPN, peer identity); null for a plaintext connection (or one still connecting). */
  get tlsInfo(): TlsInfo | null {
    return this.tlsCache ?? null;
  }

  /** The peer's certificate identity (subject, URI SANs such as a SPIFFE id); null without TLS or without a client certificate. */
  get peerIdentity(): PeerIdentity | null {
    const t = this.tlsInfo;
    return t === null ? null : t.peer;
  }

  /** Whether the addon reads this connection now (the native read path). */
  get readsNatively(): boolean {
    return this.nrId >= 0;
  }

  /** Starts the native read path if this connection can take it (see nativeRead). */
  private startNativeRead(): boolean {
    const nr = nativeRead;
    // Only while Node's handle does not read: bytes already in flight there would race ours.
    if (nr === null || !this.userBuffer || !this.plainFd || !handleIdle(this.socket)) return false;
    const readers = nativeReadSetup(nr, this.io);
    let id: number;
    try {
      id = nr.watch(this.fd);
    } catch {
      return false; // e.g. EMFILE on the dup: Node reads this one
    }
    if (id < 0) return false; // descriptors are scarce: Node reads this one
    readers[id] = this;
    this.nrId = id;
    // A client socket paused before its first read has `reading` unset: say it is off, as
    // pause() would (what checks for a reading handle, e.g. tcp_proxy's splice, look at it).
    (this.socket as unknown as { _handle: { reading?: boolean } })._handle.reading = false;
    if (this.readPaused) nr.pause(id, true);
    return true;
  }

  /**
   * Leaves reading to Node from now on (call it before anything else reads the socket's handle,
   * e.g. node:http2 taking it over): Node's reading restarts unless reading is paused. No-op on
   * Node's read path.
   */
  readByNode(): void {
    if (this.nrId < 0) return;
    this.stopNativeRead();
    if (!this.readPaused && this.state !== 'closed') this.socket.resume();
  }

  private stopNativeRead(): void {
    const id = this.nrId;
    if (id < 0) return;
    this.nrId = -1;
    (nativeReaders as (NativeReader | null)[])[id] = null;
    (nativeRead as NativeReadBinding).close(id);
  }

  /** A native read (inside onNativeBatch): n bytes at `start` in the shared chunk, 0 the peer's FIN, < 0 -errno. */
  nativeRead(start: number, n: number): void {
    const s = this.socket;
    if (s.destroyed) {
      // Node closed its fd (a write error): the dup must go too, and nothing more is read.
      this.stopNativeRead();
      return;
    }
    if (n > 0) {
      // The idle timer counts reads as activity, as Node's own reads do: lazily (onSocketTimeout),
      // so that a read costs a field store instead of a refresh of the socket's timer.
      this.lastRead = nowMs();
      this.deliver(this.io.readBuffer, start, start + n); // the batch flushes the writes
      return;
    }
    // FIN: Node reads it again itself, so 'end', half-close and 'close' happen as before.
    if (n === 0) this.readByNode();
    else this.destroy(systemError('read', -n)); // as Node reports a failed read
  }

  get currentHandler(): ConnectionHandler {
    return this.handler;
  }

  setHandler(h: ConnectionHandler): void {
    this.handler = h;
  }

  private connected(): void {
    if (this.state !== 'connecting') return;
    this.state = 'open';
    this.fd = socketFd(this.socket);
    this.socket.setTimeout(0);
    if (isFdSocket(this.socket)) {
      // The fd's own watcher reads into the batch's chunk (no dup, no Node handle).
      this.socket.setReader(this.onReadAt);
      if (!this.readPaused) this.socket.resume();
    } else if (this.userBuffer && this.plainFd) {
      // Node starts reading after the 'connect' listeners unless the socket is paused by then.
      if (!this.readPaused) this.socket.pause();
      if (!this.startNativeRead() && !this.readPaused) this.socket.resume();
    }
    if (this.handler.onConnect) this.handler.onConnect(this);
    if (this.eCount > 0 || this.endRequested) this.io.markDirty(this);
  }

  /** Bytes queued for this connection and not yet handed to the kernel. */
  queued(): number {
    return this.gathered + this.socket.writableLength;
  }

  /**
   * Queues buf[start, end) for writing. The bytes must stay unchanged until the end of the
   * current tick (views of the read chunk do); anything held longer is copied here.
   */
  write(buf: Buffer, start: number, end: number): void {
    const len = end - start;
    // Boolean fields are compared with true: V8 tracks no type for a field holding true/false,
    // so optimized code tests a bare `if (this.flag)` for every falsy kind of value (see
    // docs/rpc-low-rate.md, session 14); `=== true` is one compare. Same results for booleans.
    if (len <= 0 || this.state === 'closed' || this.writeEnded === true || this.endRequested === true) return;
    if (this.streamMode === true ? this.state === 'open' : this.state === 'open' && this.blocked !== true && this.eCount < MAX_ENTRIES) {
      const i = this.eCount++;
      this.eBuf[i] = buf;
      this.eStart[i] = start;
      this.eEnd[i] = end;
      this.eChunk[i] = null;
    } else {
      this.copyIn(buf, start, end);
    }
    this.gathered += len;
    this.io.markDirty(this);
    // Bytes gathered on a writable connection leave at the end of this tick; only a
    // connection that cannot write now can pass its high watermark here.
    if (this.aboveHigh !== true && (this.blocked === true || this.state === 'connecting') && this.queued() > this.high) {
      this.aboveHigh = true;
      this.handler.onHighWatermark(this);
    }
  }

  private checkWatermarks(): void {
    const q = this.queued();
    if (this.aboveHigh !== true) {
      if (q > this.high) {
        this.aboveHigh = true;
        this.handler.onHighWatermark(this);
      }
    } else if (q <= this.low) {
      this.aboveHigh = false;
      this.handler.onLowWatermark(this);
    }
  }

  /** Copies bytes into pooled chunks at the end of the entry list (extending the last chunk). */
  private copyIn(buf: Buffer, start: number, end: number): void {
    const pool = this.io.pool;
    while (start < end) {
      let i = this.eCount - 1;
      if (i < 0 || this.eChunk[i] === null || this.eEnd[i] === (this.eChunk[i] as Buffer).length) {
        i = this.eCount++;
        const chunk = pool.acquire();
        this.eBuf[i] = chunk;
        this.eChunk[i] = chunk;
        this.eStart[i] = 0;
        this.eEnd[i] = 0;
      }
      const chunk = this.eChunk[i] as Buffer;
      const n = Math.min(end - start, chunk.length - this.eEnd[i]);
      buf.copy(chunk, this.eEnd[i], start, start + n);
      this.eEnd[i] += n;
      start += n;
      this.io.copies += n;
    }
  }

  flush(): void {
    // Still connecting writes nothing, even once its connect failed: until 'close', closed() lets
    // the handler move the bytes to a retry (they may be gathered between the failure and 'close').
    if (this.state === 'connecting') return;
    // A destroyed socket's fd may already be closed (and its number reused): never write to it.
    if (this.state === 'closed' || this.socket.destroyed) return this.dropEntries();
    const n = this.eCount;
    if (n > 0) {
      if (this.ntls !== null) this.flushTls(this.ntls, n);
      else if (this.streamMode === true) this.flushStream(n);
      else this.flushWritev(n);
    }
    if (this.endRequested === true && this.writeEnded !== true && this.eCount === 0) {
      this.writeEnded = true;
      if (this.ntls !== null) nativeTlsEnd(this.ntls, this.blocked ? -1 : this.fd, this.socket); // close_notify first
      // The peer's FIN was read and the kernel has every byte: close now (FIN after the queued
      // bytes), as Node would right after end()'s shutdown request and its 'finish' ticks.
      if (!this.streamMode && this.socket.readableEnded && this.socket.writableLength === 0) this.socket.destroy();
      else this.socket.end();
    }
    if ((this.state as ConnState) !== 'closed') this.checkWatermarks();
  }

  /**
   * Stream-mode flush: cork, one write per entry, uncork. A socket with nothing pending
   * consumes the writes during uncork (a TLS socket encrypts or copies them at once), so
   * borrowed views are safe to pass; while earlier writes are still pending, Node would
   * hold the views past this tick, so borrowed bytes are copied into pooled chunks, which go
   * back to the pool as their writes complete. The last write of a flush carries a callback
   * so the low watermark is seen even when the socket never reported 'drain'.
   */
  private flushStream(n: number): void {
    const s = this.socket;
    const busy = s.writableLength > 0;
    const pool = this.io.pool;
    s.cork();
    for (let i = 0; i < n; i++) {
      const b = this.eBuf[i];
      const st = this.eStart[i];
      const e = this.eEnd[i];
      const chunk = this.eChunk[i];
      this.eBuf[i] = undefined as unknown as Buffer;
      this.eChunk[i] = null;
      this.bytesTx += e - st;
      if (chunk === null && busy) {
        for (let p = st; p < e; ) {
          const c = pool.acquire();
          const m = Math.min(e - p, c.length);
          b.copy(c, 0, p, p + m);
          this.io.copies += m;
          p += m;
          this.inflight.push(c);
          s.write(m === c.length ? c : c.subarray(0, m), this.onWritten);
        }
        continue;
      }
      const view = st === 0 && e === b.length ? b : b.subarray(st, e);
      if (chunk !== null || i === n - 1) {
        this.inflight.push(chunk);
        s.write(view, this.onWritten);
      } else {
        s.write(view);
      }
    }
    s.uncork();
    this.eCount = 0;
    this.gathered = 0;
  }

  private flushWritev(n: number): void {
    const ctx = this.io;
    let written = 0;
    if (this.blocked !== true) {
      // No view object per entry: the addon reads the ranges from the entry arrays themselves
      // (one entry, the usual flush at a low request rate: not even the arrays; two to four: as
      // arguments, which the addon reads without an API call per array element; entries past n
      // are not read).
      const eb = this.eBuf;
      const es = this.eStart;
      const ee = this.eEnd;
      try {
        written =
          n === 1
            ? ctx.writeRange(this.fd, eb[0], es[0], ee[0])
            : n <= 4
              ? ctx.writevArgs(this.fd, n, eb[0], es[0], ee[0], eb[1], es[1], ee[1], eb[2], es[2], ee[2], eb[3], es[3], ee[3])
              : ctx.writevRanges(this.fd, eb, es, ee, n);
      } catch (err) {
        this.dropEntries();
        this.destroy(err as Error);
        return;
      }
      ctx.writevCalls++;
      this.bytesTx += written;
    }
    // Entries (or their tails) the kernel did not take go to the libuv write queue, in order.
    let skip = written;
    for (let i = 0; i < n; i++) {
      const b = this.eBuf[i];
      const chunk = this.eChunk[i];
      let s = this.eStart[i];
      const e = this.eEnd[i];
      this.eBuf[i] = undefined as unknown as Buffer;
      this.eChunk[i] = null;
      if (skip >= e - s) {
        skip -= e - s;
        if (chunk !== null) ctx.pool.release(chunk);
        continue;
      }
      s += skip;
      skip = 0;
      this.bytesTx += e - s;
      if (chunk !== null) {
        this.queueWrite(chunk.subarray(s, e), chunk);
      } else {
        // Borrowed bytes must be copied: the read chunk is reused by the next read.
        while (s < e) {
          const c = ctx.pool.acquire();
          const m = Math.min(e - s, c.length);
          b.copy(c, 0, s, s + m);
          ctx.copies += m;
          this.queueWrite(m === c.length ? c : c.subarray(0, m), c);
          s += m;
        }
      }
    }
    this.eCount = 0;
    this.gathered = 0;
  }

  /**
   * Native TLS write: each entry goes through SSL_write into the session's write BIO; the
   * records go to the fd with the last one (or, while earlier bytes wait in the socket's queue
   * or the kernel refuses them, are taken into that queue: one copy, only then).
   */
  private flushTls(t: NativeTlsSession, n: number): void {
    const st = tlsStatus;
    const fd = this.blocked ? -1 : this.fd;
    let fatal = false;
    for (let i = 0; i < n; i++) {
      const chunk = this.eChunk[i];
      if (!fatal) {
        t.conn.write(this.eBuf[i], this.eStart[i], this.eEnd[i], i === n - 1 ? fd : -1);
        fatal = (st[0] & TLS_FATAL) !== 0;
        this.bytesTx += this.eEnd[i] - this.eStart[i];
      }
      if (chunk !== null) this.io.pool.release(chunk);
      this.eChunk[i] = null;
      this.eBuf[i] = undefined as unknown as Buffer;
    }
    this.eCount = 0;
    this.gathered = 0;
    if (fatal) this.destroy(t.conn.error());
    else if (st[1] > 0) this.queueWrite(t.conn.take(), null);
  }

  /**
   * Native TLS read: ciphertext in `buf` is decrypted in place and handed on like a plain
   * read. Plaintext beyond the chunk (a record left over from the previous read: one more
   * chunk at most) is decrypted into pooled chunks, released once this read's writes are
   * flushed (views of them are gathered until then).
   */
  private readonly onReadTls = (nread: number, buf: Buffer): void => this.readTls(buf, -1, nread);

  /** A plaintext FdSocket's read (inside a native read batch): bytes at buf[start, start+n). */
  private readonly onReadAt = (buf: Buffer, start: number, n: number): void => this.deliver(buf, start, start + n);

  /** An FdSocket's read (inside a native read batch): ciphertext at buf[start, start+n). */
  private readonly onReadTlsAt = (buf: Buffer, start: number, n: number): void => this.readTls(buf, start, n);

  /** `start` -1: the read is at 0 and owns `buf`; else a read of a batch at `start`, whose plaintext fits in place. */
  private readTls(buf: Buffer, start: number, nread: number): void {
    const t = this.ntls as NativeTlsSession;
    const st = tlsStatus;
    const ctx = this.io;
    const extras = tlsExtraChunks;
    ctx.enterRead();
    const fd = this.blocked ? -1 : this.fd;
    let out = start < 0 ? t.conn.feed(buf, nread, fd) : t.conn.feed(buf, nread, fd, start);
    let at = start < 0 ? 0 : start;
    for (;;) {
      const flags = st[0];
      if (flags & TLS_FATAL) {
        this.destroy(t.conn.error());
        break;
      }
      if (st[1] > 0) this.queueWrite(t.conn.take(), null);
      if (out > 0) this.deliver(buf, at, at + out);
      if ((flags & TLS_MORE) === 0 || this.state === 'closed') break;
      buf = ctx.pool.acquire();
      extras.push(buf);
      at = 0;
      out = t.conn.read(buf, this.blocked ? -1 : this.fd);
    }
    // Inside a batch the flush comes at its end: the views of the extra chunks leave now.
    if (extras.length > 0 && start >= 0) ctx.flushAll();
    ctx.exitRead();
    while (extras.length > 0) ctx.pool.release(extras.pop() as Buffer);
  }

  /** Plaintext of the handshake's last flight (NativeTlsSession.pending), delivered as a first read. */
  private readonly deliverPending = (): void => {
    const t = this.ntls as NativeTlsSession;
    const p = t.pending;
    t.pending = null;
    if (p === null || this.state === 'closed') return;
    this.io.enterRead();
    this.deliver(p, 0, p.length);
    this.io.exitRead();
  };

  private deliver(buf: Buffer, start: number, end: number): void {
    this.bytesRx += end - start;
    try {
      this.handler.onData(this, buf, start, end);
    } catch (e) {
      // Anything a peer can send must not take the worker down: close this connection only.
      this.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private queueWrite(view: Buffer, chunk: Buffer | null): void {
    this.blocked = true;
    this.inflight.push(chunk);
    this.socket.write(view, this.onWritten);
  }

  private dropEntries(): void {
    for (let i = 0; i < this.eCount; i++) {
      const c = this.eChunk[i];
      if (c !== null) this.io.pool.release(c);
      this.eChunk[i] = null;
      this.eBuf[i] = undefined as unknown as Buffer;
    }
    this.eCount = 0;
    this.gathered = 0;
  }

  /** Half-closes: FIN after everything queued so far has been written. */
  endWrite(): void {
    if (this.state === 'closed' || this.endRequested) return;
    this.endRequested = true;
    this.io.markDirty(this);
  }

  get writeClosed(): boolean {
    return this.endRequested === true; // a known boolean for the caller's test (see write())
  }

  pauseRead(): void {
    if (this.readPaused || this.state === 'closed') return;
    this.readPaused = true;
    if (this.nrId >= 0) (nativeRead as NativeReadBinding).pause(this.nrId, true);
    else this.socket.pause();
  }

  resumeRead(): void {
    if (!this.readPaused || this.state === 'closed') return;
    this.readPaused = false;
    if (this.nrId >= 0) (nativeRead as NativeReadBinding).pause(this.nrId, false);
    else this.socket.resume();
  }

  get isReadPaused(): boolean {
    return this.readPaused;
  }

  /**
   * Whether pauseRead() stops reading at the socket (native reads, or Node's handle with a user
   * buffer): the bytes sent after it stay in the kernel's buffer, so they move with the fd in a
   * hot upgrade. Node's 'data' path may still buffer a chunk in the stream after a pause.
   */
  get pauseStopsKernelReads(): boolean {
    return this.nrId >= 0 || this.userBuffer;
  }

  /** Idle/connect timer (0 disables), reset by socket activity. */
  setTimeout(ms: number): void {
    this.idleMs = ms;
    this.socket.setTimeout(ms);
  }

  /**
   * The socket's timer fired. Native reads do not refresh it (they stamp lastRead): when one
   * came within the idle time, the timer is set again for the rest of it and nothing is
   * reported, so the handler sees exactly the idle time since the last read, as with Node's reads.
   */
  private onSocketTimeout(): void {
    if (this.state === 'closed') return;
    if (this.idleMs > 0 && this.lastRead > 0) {
      const left = this.lastRead + this.idleMs - Date.now();
      if (left > 0) {
        this.socket.setTimeout(left); // once per idle period at most, not per read
        return;
      }
    }
    if (this.handler.onTimeout) this.handler.onTimeout(this);
  }

  /** Closes now; queued output is dropped. */
  destroy(err?: Error): void {
    if (this.state === 'closed') return;
    if (err && this.error === undefined) this.error = err;
    this.stopNativeRead(); // the dup first: the socket is released when Node closes its fd
    this.socket.destroy();
  }

  /**
   * Moves everything queued on this (never connected) connection to another outgoing
   * connection, e.g. a retry to another host: bytes the downstream sent while the first
   * attempt was connecting are not lost. Only valid from onClose of a failed connect.
   */
  transferPendingTo(other: Connection): void {
    for (let i = 0; i < this.eCount; i++) {
      const b = this.eBuf[i];
      const chunk = this.eChunk[i];
      if (chunk !== null) {
        other.write(chunk, this.eStart[i], this.eEnd[i]); // copied again: `other` is connecting
        this.io.pool.release(chunk);
      } else {
        other.write(b, this.eStart[i], this.eEnd[i]);
      }
      this.eChunk[i] = null;
      this.eBuf[i] = undefined as unknown as Buffer;
    }
    this.eCount = 0;
    this.gathered = 0;
    if (this.endRequested) other.endWrite();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    const neverConnected = this.state === 'connecting';
    this.state = 'closed';
    this.stopNativeRead();
    bySocket.delete(this.socket);
    if (this.ntls !== null) {
      this.ntls.conn.free();
      forgetNativeTls(this.socket);
    }
    if (neverConnected) {
      // The handler may move the queued bytes to a retry (transferPendingTo) before they go.
      this.releaseInflight();
      this.handler.onClose(this, this.error);
      this.dropEntries();
      return;
    }
    this.dropEntries();
    this.releaseInflight();
    this.handler.onClose(this, this.error);
  }

  private releaseInflight(): void {
    const pool = this.io.pool;
    for (let i = this.inflightHead; i < this.inflight.length; i++) {
      const c = this.inflight[i];
      if (c) pool.release(c);
    }
    this.inflight.length = 0;
    this.inflightHead = 0;
  }
}

/** Pooled chunks of one native TLS read beyond its read chunk (reads never nest). */
const tlsExtraChunks: Buffer[] = [];
