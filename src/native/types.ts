// Types of the native IO binding (C++ addon or its TypeScript fallback; same API).
import type * as net from 'node:net';

export type BindingKind = 'native' | 'fallback';

export interface SlabPoolOptions {
  /** Bytes per chunk (> 0). */
  chunkSize: number;
  /** Chunks carved from each slab (default: as many as fit in 1 MiB, at least 1). */
  chunksPerSlab?: number;
  /** Slabs allocated up front (default 1). */
  initialSlabs?: number;
  /** Upper bound on slabs; once reached, acquire() allocates overflow buffers (default 64). */
  maxSlabs?: number;
}

/** Fixed-size chunk pool over preallocated slabs. acquire()/release() do not allocate. */
export interface SlabPool {
  readonly chunkSize: number;
  readonly chunksPerSlab: number;
  readonly maxSlabs: number;
  /** Slabs allocated so far. */
  readonly slabs: number;
  /** Chunks in all slabs (overflow buffers not included). */
  readonly total: number;
  /** Free slab chunks. */
  readonly available: number;
  /** acquire() calls served by Buffer.allocUnsafeSlow because all maxSlabs slabs were in use. */
  readonly overflow: number;
  /** Where slab memory comes from: 'mmap' (addon, external ArrayBuffer), 'v8' (addon, V8 heap), 'js' (fallback). */
  readonly memory: 'mmap' | 'v8' | 'js';
  /** A chunk (Buffer of chunkSize bytes, contents undefined). */
  acquire(): Buffer;
  /** Returns a buffer obtained from acquire(); throws on double release or foreign buffers. */
  release(buf: Buffer): void;
}

export interface ListenResult {
  fd: number;
  port: number;
}

/** An original destination read from the kernel (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST). */
export interface OriginalDstAddress {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

export interface SharedListen {
  server: net.Server;
  fd: number;
  port: number;
}

/**
 * A listening socket that worker threads adopt with `net.createServer().listen({ fd })`.
 * owner 'native': SO_REUSEPORT socket made by the addon; the caller owns `fd` and must close()
 *   it (give each worker its own `dupFd(fd)`, because a net.Server closes the fd it listens on).
 * owner 'server': fallback; `server` (in the calling thread) owns `fd`, there is no dup, so
 *   workers listening on the same fd must not close their servers before the owner is done,
 *   and `close()` closes the owner server (and with it the fd).
 */
export interface ListenSocket {
  fd: number;
  port: number;
  owner: 'native' | 'server';
  server?: net.Server;
  close(): Promise<void>;
}

/**
 * OpenSSL controls on Node SecureContexts (native/tls_tickets.cc). `external` is a
 * SecureContext's `context` (its native handle, whose `_external` is the SSL_CTX*). Absent in
 * the fallback.
 */
export interface NativeTlsTickets {
  /** The process-wide ticket secret (32 bytes) and rotation interval; idempotent. */
  init(secret: Uint8Array, intervalMs: number): void;
  /** on: one ticket per handshake and the C ticket-key callback (current + previous epoch keys); off: no tickets. */
  context(external: unknown, on: boolean): void;
  /** The 48-byte key of an epoch as the callback derives it (tests, diagnostics). */
  key(epoch: number): Buffer;
  /** SSL_CTX_get_num_tickets (tests). */
  numTickets(external: unknown): number;
}

/** What a native TLS connection learned at its handshake (native/tls_conn.cc info()). */
export interface NativeTlsConnInfo {
  version: string;
  cipher: string | null;
  alpn: string | null;
  servername: string | null;
  /** X509_V_OK (0) or OpenSSL's verification error code of the peer's chain. */
  verifyResult: number;
  reused: boolean;
  /** The peer certificate (DER); absent when the peer sent none. */
  peerDer?: Buffer;
}

/**
 * One TLS connection on memory BIOs (native/tls_conn.cc): ciphertext in, plaintext out in
 * place; records to send go to `fd` directly (fd -1: kept for take()). Each call leaves flags in
 * NativeTlsEngine.status (see there).
 */
export interface NativeTlsConn {
  feed(chunk: Uint8Array, n: number, fd: number, off?: number): number;
  read(chunk: Uint8Array, fd: number): number;
  write(buf: Uint8Array, start: number, end: number, fd: number): number;
  take(): Buffer;
  shutdown(fd: number): void;
  info(): NativeTlsConnInfo;
  /** After a fatal status: the failure (code ERR_SSL_<REASON>, as Node names them). */
  error(): Error;
  free(): void;
}

export interface NativeTlsEngine {
  /**
   * The thread's status words after each NativeTlsConn call: [0] flags (1 handshake completed,
   * 2 more plaintext waits: call read(), 4 close_notify received, 8 fatal: close the
   * connection), [1] ciphertext bytes not sent (take() them), [2] errno or OpenSSL reason.
   */
  readonly status: Int32Array;
  /**
   * `context`: a SecureContext's `context` (never also given to a TLSSocket); verify: 0 none,
   * 1 ask for a client certificate, 2 require one; alpn: server protocols in wire format.
   */
  create(context: unknown, server: boolean, verify: number, alpn?: Uint8Array): NativeTlsConn;
  /** Client side (native/tls_client.cc; absent from builds older than it). */
  readonly client?: NativeTlsClient;
}

/** Upstream TLS on a client-mode NativeTlsConn (native/tls_client.cc). */
export interface NativeTlsClient {
  /**
   * Before the first feed(): SNI ("" none), the ALPN offer (wire format), verification left to
   * the caller, and the session cached under `key` in the context's cache offered. Returns
   * whether a session was offered.
   */
  setup(conn: NativeTlsConn, servername: string, alpn: Uint8Array | undefined, key: string): boolean;
  /** Drops the session cached under `key` for a context (a failed connection does not offer it again). */
  forget(context: unknown, key: string): void;
  /** Sessions cached for a context (at most 256). */
  sessions(context: unknown): number;
  /** OpenSSL's text of an X509 verification result. */
  verifyErrorString(code: number): string;
}

/**
 * Kernel-side forwarding of a TCP connection pair with splice(2) through one pipe per direction
 * (native/splice.cc). Native only: the fallback binding has `splice: null`.
 */
export interface SpliceBinding {
  /**
   * fn(id, side, errno) runs once when a pair stops by itself: errno 0 = both directions got and
   * forwarded their FIN; otherwise the failed socket's side (0 = A, 1 = B) and its errno. The
   * owner then calls stop(id). One callback per thread.
   */
  setCallback(fn: (id: number, side: number, errno: number) => void): void;
  /**
   * Starts forwarding between two connected, idle sockets (nothing queued, reading stopped: their
   * JS owners must not read or write until stop). The fds are dup'd, so a socket destroyed meanwhile
   * stays open until stop(). state[0..5] is written by the addon: read from A, written to B, read
   * from B, written to A, time of the last byte (ms since the epoch), last direction read (1 A->B,
   * 2 B->A). counters[slots[0]], counters[slots[1]] grow by the bytes read from A, slots[2..3] by
   * the bytes read from B; counters[slots[4]] / [slots[5]] by one each time reading A / B stops
   * because its pipe and the other socket's send buffer are full (-1: none). pipeSize: F_SETPIPE_SZ, best effort. Returns the pair's id.
   */
  start(fdA: number, fdB: number, state: Float64Array, counters: Float64Array, slots: readonly number[], pipeSize: number): number;
  /** Stops a pair; returns the bytes left in its pipes: [to B, to A] (null when none). */
  stop(id: number): [Buffer | null, Buffer | null];
}

/**
 * Native read path (native/read.cc): the addon polls a dup of a plain socket's fd on this
 * thread's loop and reads into one buffer per thread. Native only: the fallback has `read: null`.
 */
export interface NativeReadBinding {
  /**
   * Per thread, before watch(): reads land in `buffer`; `batch(id)` runs after the poll phase of a
   * loop iteration in which watched sockets became readable (once per buffer's worth of reads;
   * microtasks and nextTicks run after each call, before the loop goes on), with the first read
   * made, and takes the others with next(). viaCallback: each call enters JS through
   * napi_make_callback (Node's callback scope) instead of a plain call whose queues Node's own
   * per-iteration scope drains right after it (native/read.cc OnCheck). ownPollAfter: an owned fd
   * (watch(fd, true)) that has delivered this many reads leaves the thread's epoll set for a poll
   * handle of its own (no second epoll_wait per wakeup for it); 0 never (the addon's default: 16).
   * clock: the addon writes the time (ms since the epoch, whole, as Date.now()) into clock[0]
   * before each call of batch; returns true when it does (undefined from builds before it).
   */
  setup(
    buffer: Buffer,
    state: Int32Array,
    batch: (id: number) => void,
    viaCallback?: boolean,
    ownPollAfter?: number,
    clock?: Float64Array,
  ): boolean | undefined;
  /**
   * Inside batch(): reads the next readable socket. For batch's id and next()'s: the watcher's id,
   * with state[0] = where the bytes start in the buffer, state[1] = n (n > 0 bytes, 0 the peer's
   * FIN, < 0 a read error as -errno; after n <= 0 the watcher no longer polls and the owner closes
   * it) and state[2] = 1 while more sockets are pending (0: the batch is done).
   * -1: no more in this call. -2: the buffer is full: batch() returns, flushing the writes that
   * hold views of it, and the addon calls it again for the other sockets. A watcher paused or
   * closed earlier in the batch is not read.
   */
  next(): number;
  /**
   * Starts polling a dup of fd for reads; returns the watcher's id (reused after close), or -1
   * when descriptors are scarce (fd or its dup in the upper half of RLIMIT_NOFILE).
   */
  watch(fd: number, owned?: boolean): number;
  /** Back-pressure: no reads while paused (the poll itself stops at the next readable event). */
  pause(id: number, paused: boolean): void;
  /** Stops polling and closes the dup at once (before the socket's own fd is closed). */
  close(id: number): void;
  /** This thread's counters: [batches (JS calls), reads delivered, reads that found nothing, buffer-full flushes, poll stops, owned fds moved to their own poll]. */
  stats(): number[];
  /** Owned fds (watch(fd, true): polled without a dup, closed by close()): fn(id) when a watcher that asked can write. */
  onWritable?(fn: (id: number) => void): void;
  /** One-shot: report writability of the watcher (after the kernel refused a write). */
  wantWrite?(id: number): void;
}

/** Native accept (native/listen.cc): fn per accepted connection; stop() also closes the listening fd. */
export interface NativeAcceptBinding {
  start(fd: number, fn: (fd: number, remoteAddress: string, remotePort: number, localAddress: string, localPort: number) => void): number;
  stop(id: number): void;
  /** shutdown(fd, SHUT_WR): the FIN of an accepted fd. */
  shutdownWrite(fd: number): void;
}

/** Native connect (native/listen.cc): plaintext upstream connections on a bare fd (FdSocket.connect). */
export interface NativeConnectBinding {
  /** A non-blocking TCP socket (TCP_NODELAY) connecting to the IP literal host:port: its fd, or -errno when connect(2) failed at once. */
  connect(host: string, port: number): number;
  /** Once the fd polls writable: 0 connected, or -errno (SO_ERROR). */
  result(fd: number): number;
  /** getsockname(fd): [address, port] as Node formats them. */
  name(fd: number): [string, number];
}

/**
 * HTTP/1.1 head scanner (native/h1parse.cc) for src/http/h1/codec.ts: `setup` registers the
 * calling thread's exchange area (returns the length it needs), `parse` scans a head at
 * buf[start, lim) and returns the offset past it, or 0 when it leaves the head to the TypeScript
 * parser (incomplete, invalid, or a rare framing case).
 */
export interface NativeH1Head {
  /** `slab`: where a request head's forwarded lines may be copied (NIO SlabAt; absent: nowhere). */
  setup(io: Int32Array, slab?: ArrayBufferLike): number;
  /** buf = (ab, base): the Buffer's ArrayBuffer and byte offset. */
  parse(ab: ArrayBufferLike, base: number, start: number, lim: number): number;
}

export interface NativeBinding {
  readonly kind: BindingKind;
  /** HTTP/1.1 head scanner (addon only; absent from older builds). */
  readonly h1Head?: NativeH1Head;
  /** Native read path (native/read.cc); null in the fallback or an addon built without it. */
  readonly read: NativeReadBinding | null;
  /** Native accept (addon only; absent from older builds). */
  readonly accept?: NativeAcceptBinding;
  /** Native connect (addon only; absent from older builds). */
  readonly connect?: NativeConnectBinding;
  /** TLS on memory BIOs (addon only). */
  readonly tlsEngine?: NativeTlsEngine;
  /** Session tickets of listener contexts in C (addon only; undefined: Node's own, see src/tls/tickets.ts). */
  readonly tlsTickets?: NativeTlsTickets;
  /** splice(2) forwarding (native/splice.cc); null in the fallback or an addon built without it. */
  readonly splice: SpliceBinding | null;
  createSlabPool(opts: SlabPoolOptions): SlabPool;
  /**
   * Gathers bufs[0..count) into writev(2) calls on a non-blocking fd until all is written or
   * EAGAIN. Returns bytes written (0 if nothing could be written). Throws an Error with `code`
   * ('EPIPE', 'ECONNRESET', 'EBADF', ...) on other failures.
   */
  writev(fd: number, bufs: readonly Uint8Array[], count: number): number;
  /**
   * writev for one range: writes buf[start, end) until all is written or EAGAIN, with the same
   * result and errors; no array and no view object (a flush of one entry).
   */
  writeRange(fd: number, buf: Uint8Array, start: number, end: number): number;
  /**
   * writev of bufs[i][starts[i], ends[i]) for i in [0, count), with the same result and errors:
   * no view object per entry (a connection's flush of several gathered entries).
   */
  writevRanges(fd: number, bufs: readonly Uint8Array[], starts: readonly number[], ends: readonly number[], count: number): number;
  /**
   * writevRanges for up to 4 ranges given as arguments (b0[s0, e0), b1[s1, e1), ...; those past
   * `count` are not read): no array whose elements the addon must read one API call each (a
   * connection's flush of 2-4 entries).
   */
  writevArgs: WritevArgs;
  /**
   * Makes the calling thread's event loop poll once per wakeup instead of twice (Node's loop
   * idle-time metrics poll with timeout 0 before every sleep); eventLoopUtilization() stops
   * counting idle time. Returns whether the metrics were on. The fallback does nothing (false).
   */
  singlePoll(): boolean;
  /** Pins the calling thread to one CPU. false if impossible (always false in the fallback). */
  pinThread(cpu: number): boolean;
  /** CPUs the calling thread may run on, ascending. */
  getThreadAffinity(): number[];
  /** SO_REUSEPORT listening socket (native only: the fallback throws code 'ENOSYS'). */
  listenReusePort(host: string, port: number, backlog: number): ListenResult;
  /**
   * Listening socket with SO_REUSEADDR, and SO_REUSEPORT only when `reusePort` (a deliberate
   * hand-over): otherwise a port held by any other socket fails with code 'EADDRINUSE'.
   * Native only: the fallback throws code 'ENOSYS'.
   */
  listenTcp(host: string, port: number, backlog: number, reusePort: boolean): ListenResult;
  /** dup(2) with close-on-exec (native only: the fallback throws code 'ENOSYS'). */
  dupFd(fd: number): number;
  closeFd(fd: number): void;
  /**
   * The destination an accepted connection had before an iptables REDIRECT (SO_ORIGINAL_DST,
   * IP6T_SO_ORIGINAL_DST); null when it was not redirected (no conntrack NAT entry).
   * Native only: the fallback throws code 'ENOSYS' (Node has no getsockopt).
   */
  getOriginalDst(fd: number): OriginalDstAddress | null;
  /**
   * IP_TRANSPARENT / IPV6_TRANSPARENT on a listening socket (iptables TPROXY delivers foreign
   * destinations to it). Native only: the fallback throws code 'ENOSYS'.
   */
  setTransparent(fd: number): void;
  /** Listens with a net.Server in the calling thread and exposes its fd (both bindings). */
  listenShared(host: string, port: number, backlog: number): Promise<SharedListen>;
  /** Common entry: native -> listenReusePort, fallback -> listenShared. */
  openListenSocket(host: string, port: number, backlog: number): Promise<ListenSocket>;
}

/** writevArgs(fd, count, b0, s0, e0, ..., b3, s3, e3): see NativeBinding.writevArgs. */
export type WritevArgs = (
  fd: number,
  count: number,
  b0?: Uint8Array,
  s0?: number,
  e0?: number,
  b1?: Uint8Array,
  s1?: number,
  e1?: number,
  b2?: Uint8Array,
  s2?: number,
  e2?: number,
  b3?: Uint8Array,
  s3?: number,
  e3?: number,
) => number;
