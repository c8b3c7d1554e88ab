/**
 * Native TLS termination (the addon's TlsConn, native/tls_conn.cc): the accepted socket stays a
 * plain net.Socket that reads ciphertext into the thread's read chunk (zero-copy path); OpenSSL
 * runs on memory BIOs, decrypts in place and sends its records to the fd itself. No TLSSocket,
 * no stream objects per connection.
 *
 *   accepted socket ─ reads ─> TlsConn.feed ─ handshake records sent to the fd
 *     'handshake done' ─ verify result, counters, TlsInfo ─ NativeTlsSession on the socket
 *     ─> the listener's onTls(socket) ─> Connection (connection.ts) finds the session and
 *        reads / writes through it
 *
 * Chosen per process (the addon is loaded: src/native/index.ts; OUTRIGGER_NATIVE=0 or no build
 * -> Node's TLSSocket) and per filter chain: a chain whose terminal filter takes the socket itself
 * (the HTTP proxy, node:http2) or that sniffs the protocol keeps Node's TLS. A chain's contexts
 * serve one path only (Node installs callbacks on a context once a TLSSocket used it).
 */
import type * as net from 'node:net';
import { native, type NativeTlsConn, type NativeTlsConnInfo, type NativeTlsEngine } from '../native';
import { io } from '../network/io';
import { installUserBuffer, isFdSocket, socketFd } from '../network/user-buffer';
import { nativeTlsInfo, type TlsInfo } from './identity';
import { tlsLog } from './log';
import { SlotList, type Slotted } from '../network/slot-list';

export const TLS_HANDSHAKE_DONE = 1;
export const TLS_MORE = 2;
export const TLS_FATAL = 8;

/**
 * The engine of this process, or null when TLS runs on Node's TLSSocket: no addon, or
 * OUTRIGGER_NATIVE=0 (everything in TypeScript), or OUTRIGGER_NATIVE_TLS=0 (only TLS on Node's).
 */
export const tlsEngine: NativeTlsEngine | null = process.env.OUTRIGGER_NATIVE_TLS?.trim() === '0' ? null : (native.tlsEngine ?? null);

let announced = false;

/** Logs once per thread which TLS termination a listener chain uses. */
export function announceTlsPath(listener: string, nativePath: boolean): void {
  if (announced) return;
  announced = true;
  // Deferred: listeners are built before the worker's logger is set up.
  setImmediate(() => tlsLog().info({ listener, path: nativePath ? 'native' : 'node' }, nativePath ? 'TLS termination: native (OpenSSL on memory BIOs)' : 'TLS termination: Node TLSSocket'));
}

/** The engine's status words (see NativeTlsEngine.status); empty without the engine. */
export const tlsStatus: Int32Array = tlsEngine !== null ? tlsEngine.status : new Int32Array(4);

/** Sends close_notify (to `fd`, or through the socket's queue when fd is -1 or the kernel refuses it). */
export function nativeTlsEnd(s: NativeTlsSession, fd: number, sock: net.Socket): void {
  s.conn.shutdown(fd);
  if (tlsStatus[1] > 0) sock.write(s.conn.take());
}

/** The handshake result a Connection adopts. */
export class NativeTlsSession {
  /** Plaintext that came with the handshake's last flight, for the Connection's first read (null: none). */
  pending: Buffer | null = null;
  /** A Connection took the socket over (nativeTlsOf); until then the handshake's reader keeps it. */
  adopted = false;

  constructor(
    readonly conn: NativeTlsConn,
    readonly info: TlsInfo,
    readonly reused: boolean,
  ) {}
}

/** One entry per native TLS connection, for the Connection that adopts the socket. */
const sessions = new WeakMap<net.Socket, NativeTlsSession>();

/** The session of a native TLS socket, for the Connection that takes it over (marks it adopted). */
export function nativeTlsOf(sock: net.Socket): NativeTlsSession | undefined {
  const s = sessions.get(sock);
  if (s !== undefined) s.adopted = true;
  return s;
}

/** The connection of `sock` closed: its session entry goes (see `sessions`). */
export function forgetNativeTls(sock: net.Socket): void {
  sessions.delete(sock);
}

/** ALPN protocol negotiated on a connection (native or TLSSocket), "" when none. */
export function negotiatedAlpn(sock: net.Socket): string {
  const s = sessions.get(sock);
  if (s !== undefined) return s.info.alpn;
  const a = (sock as net.Socket & { alpnProtocol?: string | false }).alpnProtocol;
  return typeof a === 'string' ? a : '';
}

/** SNI the client sent (native session or TLSSocket), "" when none. */
export function tlsServerName(sock: net.Socket): string {
  const s = sessions.get(sock);
  if (s !== undefined) return s.info.serverName;
  const sn = (sock as net.Socket & { servername?: string | false }).servername;
  return typeof sn === 'string' ? sn : '';
}

/** ALPN names in TLS wire format (a length byte before each). */
export function alpnWire(protocols: readonly string[]): Uint8Array | undefined {
  if (protocols.length === 0) return undefined;
  const parts = protocols.map((p) => Buffer.from(p, 'latin1'));
  return Buffer.concat(parts.flatMap((p) => [Buffer.from([p.length]), p]));
}

/**
 * A chain's handshake policy: built once per listener chain (ServerTls), shared by all its
 * handshakes; `T` is what the caller hands through to onDone per connection.
 */
export interface NativeHandshake<T> {
  /** 0 no client certificate, 1 ask, 2 require. */
  readonly verify: number;
  readonly alpn: Uint8Array | undefined;
  /** The handshake must be done this long after it starts (an absolute deadline, whatever the client sends). */
  readonly timeoutMs: number;
  /** Checks the result (verify policy); an Error fails the handshake. */
  check(conn: NativeTlsConn, info: TlsInfo, verifyResult: number, hasPeer: boolean): Error | null;
  onDone(sock: net.Socket, session: NativeTlsSession, arg: T): void;
  onFail(err: Error): void;
}

/**
 * Handshakes in progress on this thread, swept by one timer for their deadline (instead of a
 * socket timer per handshake: Timeout object, list insert, refresh on every read, removal). A
 * SlotList, not a Set: see network/slot-list.ts.
 */
const running = new SlotList<ServerHandshake<unknown>>();
let sweeper: NodeJS.Timeout | null = null;
const SWEEP_MS = 1000;

function sweep(): void {
  const now = Date.now();
  for (const r of running.values()) if (r.deadline <= now) r.fail(new Error('TLS handshake timeout'));
  if (running.size === 0 && sweeper !== null) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

/**
 * The handshake loop on a plain socket, for both sides (one object per connection: its state
 * and the socket event handlers): each read of ciphertext is fed to the TlsConn; on completion
 * the side's verdict, the session (with the plaintext that came with the last flight), then the
 * side's done(). The server (ServerHandshake) sends its records as they come; the client
 * (origin.ts) holds each flight's records until the feed is over, so that its Finished leaves
 * only once the verdict accepted the server. Failures free the TlsConn and go to failed().
 */
export abstract class NativeHandshakeRun {
  finished = false;
  // Socket event handlers: closures the socket can hold (added at start, removed at the end).
  readonly onError = (err: Error): void => this.socketError(err);
  readonly onEnd = (): void => this.fail(this.endError());
  readonly onClose = (): void => this.socketClosed();
  /** One read of ciphertext (at most chunk.length bytes, in `buf`). */
  readonly onRead = (n: number, buf: Buffer): void => this.read(buf, -1, n);
  /** An FdSocket's read inside a native read batch: ciphertext at buf[start, start + n). */
  readonly onReadAt = (buf: Buffer, start: number, n: number): void => this.read(buf, start, n);

  constructor(
    readonly sock: net.Socket,
    /** null until the side creates it (the client, once connected). */
    protected conn: NativeTlsConn | null,
    protected fd: number,
    protected readonly st: Int32Array,
    /** Records wait in the write BIO until the end of each feed (the client side). */
    private readonly hold: boolean,
  ) {}

  /** The error of a FIN before the handshake is done. */
  protected abstract endError(): Error;
  /** An 'error' on the socket (Node destroys it). */
  protected abstract socketError(err: Error): void;
  /** The socket closed before the handshake was done. */
  protected abstract socketClosed(): void;
  /** The completed handshake's verdict: null accepts. */
  protected abstract verdict(conn: NativeTlsConn, ni: NativeTlsConnInfo, info: TlsInfo): Error | null;
  /** Accepted: hand the session on (the run is cleaned up already). */
  protected abstract done(session: NativeTlsSession): void;
  /** Failed (cleaned up, TlsConn freed): count, forget, destroy. */
  protected abstract failed(err: Error): void;

  protected cleanup(): void {
    this.finished = true;
    const sock = this.sock;
    sock.off('error', this.onError);
    sock.off('end', this.onEnd);
    sock.off('close', this.onClose);
  }

  fail(err: Error): void {
    if (this.finished) return;
    this.cleanup();
    if (this.conn !== null) this.conn.free();
    this.failed(err);
  }

  /** The fd to send to now: -1 while earlier bytes wait in the socket's queue (they go first). */
  protected sendFd(): number {
    return this.sock.writableLength > 0 ? -1 : this.fd;
  }

  /** Sends what waits in the write BIO; what the kernel refused (rare) goes to the socket's queue as a copy. */
  protected flush(conn: NativeTlsConn, buf: Buffer): void {
    conn.read(buf, this.sendFd());
    if (this.st[1] > 0) this.sock.write(conn.take());
  }

  /** `start` -1: the read is at 0 and owns `buf`; else a read of a batch at `start` (plaintext in place, n bytes at most). */
  private read(buf: Buffer, start: number, n: number): void {
    const conn = this.conn;
    if (this.finished || conn === null) return;
    const { st, hold } = this;
    const fd = hold ? -1 : this.sendFd();
    const out = start < 0 ? conn.feed(buf, n, fd) : conn.feed(buf, n, fd, start);
    const flags = st[0];
    if (flags & TLS_FATAL) {
      this.fail(conn.error());
      return;
    }
    if ((flags & TLS_HANDSHAKE_DONE) === 0) {
      if (hold) this.flush(conn, buf);
      else if (st[1] > 0) this.sock.write(conn.take()); // records the kernel did not take (rare in a handshake)
      return;
    }
    if (!hold && st[1] > 0) this.sock.write(conn.take());
    const ni = conn.info();
    const info = nativeTlsInfo(ni);
    const err = this.verdict(conn, ni, info);
    if (err !== null) {
      this.fail(err);
      return;
    }
    const session = new NativeTlsSession(conn, info, ni.reused);
    // Application data that came with the peer's last flight: one copy per connection, handed
    // to the Connection's first read (this chunk is reused by the next read of any socket).
    if (out > 0 || flags & TLS_MORE) session.pending = drainPending(conn, st, buf, start, out, this.sock, this.fd);
    if (this.finished) return;
    if (hold) {
      this.flush(conn, buf);
      if (st[0] & TLS_FATAL) {
        this.fail(conn.error());
        return;
      }
    }
    this.cleanup();
    this.done(session);
  }
}

/** One server handshake (an accepted socket) under a chain's NativeHandshake policy. */
class ServerHandshake<T> extends NativeHandshakeRun implements Slotted {
  readonly deadline: number;
  slot = -1;

  constructor(
    sock: net.Socket,
    conn: NativeTlsConn,
    fd: number,
    st: Int32Array,
    readonly h: NativeHandshake<T>,
    readonly arg: T,
  ) {
    super(sock, conn, fd, st, false);
    this.deadline = Date.now() + h.timeoutMs;
  }

  protected endError(): Error {
    return new Error('client closed during the TLS handshake');
  }

  protected socketError(err: Error): void {
    this.fail(err);
  }

  protected socketClosed(): void {
    this.fail(new Error('socket closed during the TLS handshake'));
  }

  protected verdict(conn: NativeTlsConn, ni: NativeTlsConnInfo, info: TlsInfo): Error | null {
    return this.h.check(conn, info, ni.verifyResult, ni.peerDer !== undefined);
  }

  protected cleanup(): void {
    super.cleanup();
    running.remove(this as ServerHandshake<unknown>);
  }

  protected failed(err: Error): void {
    this.h.onFail(err);
    this.sock.destroy();
  }

  protected done(session: NativeTlsSession): void {
    const sock = this.sock;
    sessions.set(sock, session);
    this.h.onDone(sock, session, this.arg);
    // The socket keeps reading when a Connection adopted it in onDone (the usual case: its
    // resume() is then a no-op, no read stop/start and no resume tick per connection; no read
    // can come in between, onDone runs in this read's tick); otherwise it waits paused, as a
    // socket handed to anything else must.
    if (!session.adopted && !sock.destroyed) sock.pause();
  }
}

/**
 * Runs a server handshake on an accepted (paused) socket with `context` (a SecureContext's
 * `context` or its `_external`, held by the caller). Bytes already read (a peeked ClientHello
 * put back into the socket) are taken from its buffer first.
 */
export function nativeHandshake<T>(engine: NativeTlsEngine, sock: net.Socket, context: unknown, h: NativeHandshake<T>, arg: T): void {
  const conn = engine.create(context, true, h.verify, h.alpn);
  const chunk = io().readBuffer;
  const r = new ServerHandshake<T>(sock, conn, socketFd(sock), engine.status, h, arg);
  running.add(r as ServerHandshake<unknown>);
  if (sweeper === null) {
    sweeper = setInterval(sweep, SWEEP_MS);
    sweeper.unref();
  }
  // on(), not once(): once() wraps each handler in another closure; `finished` makes them run once.
  sock.on('error', r.onError);
  sock.on('end', r.onEnd);
  sock.on('close', r.onClose);
  if (isFdSocket(sock)) {
    // No net.Socket (network/fd-socket.ts): the addon reads the fd in its batches. A peeked hello
    // goes first, from a pooled chunk: the read chunk holds other reads of the current batch.
    const peeked = sock.read();
    if (peeked !== null && peeked.length > 0) {
      const pool = io().pool;
      const c = pool.acquire();
      if (peeked.length > c.length) {
        pool.release(c);
        r.fail(new Error('ClientHello larger than the read chunk'));
        return;
      }
      peeked.copy(c, 0);
      r.onRead(peeked.length, c);
      pool.release(c); // the handshake copied what it keeps (drainPending)
      if (r.finished) return; // failed, or (not with a hello alone) done and adopted
    }
    sock.setReader(r.onReadAt);
    sock.resume();
    return;
  }
  // A peeked hello put back into the socket (read() only then: on an empty socket it would start a Node-buffered read).
  const early = sock.readableLength > 0 ? (sock.read() as Buffer | null) : null;
  if (early !== null && early.length > 0) {
    if (early.length > chunk.length) {
      r.fail(new Error('ClientHello larger than the read chunk'));
      return;
    }
    early.copy(chunk, 0);
    r.onRead(early.length, chunk);
    if (r.finished) return;
  }
  if (!installUserBuffer(sock, chunk, r.onRead)) {
    sock.on('data', (d: Buffer) => r.onRead(d.length, d)); // no user-buffer support: Node's buffers (decrypted in place)
  }
  sock.resume();
}

/**
 * Copies the plaintext that came with the handshake (buf[start, start + out), `start` -1 for 0,
 * and any more of it) out of the read chunk. More is read into a pooled chunk when the read is
 * one of a batch (`start` >= 0: the chunk's later bytes belong to other reads), else into `buf`.
 */
export function drainPending(conn: NativeTlsConn, st: Int32Array, buf: Buffer, start: number, out: number, sock: net.Socket, fd: number): Buffer {
  const at = start < 0 ? 0 : start;
  const parts: Buffer[] = [Buffer.from(buf.subarray(at, at + out))];
  let flags = st[0];
  const pool = io().pool;
  const scratch = flags & TLS_MORE && start >= 0 ? pool.acquire() : buf;
  while (flags & TLS_MORE) {
    const n = conn.read(scratch, sock.writableLength > 0 ? -1 : fd);
    flags = st[0];
    if (n > 0) parts.push(Buffer.from(scratch.subarray(0, n)));
    if (st[1] > 0) sock.write(conn.take());
    if (flags & TLS_FATAL) break;
  }
  if (scratch !== buf) pool.release(scratch);
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}
