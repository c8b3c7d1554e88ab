/**
 * FdSocket: an accepted TCP connection held as a bare fd, without a net.Socket (issue 15: the
 * per-connection cost of Node's `onconnection`, `new net.Socket`, its stream state and its
 * end/finish/close ticks). The addon accepts it (native/listen.cc `acceptStart`), polls it with
 * the native read path (native/read.cc, an owned watcher: no dup) and the TLS driver sends its
 * records to the fd itself; this object is the rest of the transport the listener, the TLS
 * handshake (src/tls/native.ts) and Connection use:
 *
 *   reads      setReader(cb): cb(chunk, start, n) inside the thread's read batch; pause/resume;
 *              before a reader is set, copies as 'data' events (a ClientHello peek), which
 *              unshift() puts back for read()
 *   writes     write(buf, cb): bytes the kernel refused, queued here and written when the fd is
 *              writable again (readWantWrite); 'drain' once the queue is empty
 *   end        end(): shutdown(SHUT_WR) once the queue is empty; the peer's FIN gives 'end';
 *              both done (allowHalfOpen, as the listener's sockets) -> destroy
 *   destroy    closes the watcher and the fd at once; 'error' (when given) and 'close' follow in
 *              a tick, as a net.Socket's
 *   timeouts   setTimeout(ms): 'timeout' after ms (to 2 ms) without a read, by one unref'd timer
 *              that looks at a read counter when it fires (no work per read)
 *
 *   connect    FdSocket.connect(host, port): an outgoing plaintext connection (native/listen.cc
 *              connectTcp): the watcher reports writability once, connectResult says whether it
 *              connected; 'connect', or 'error' + 'close' as a net.Socket's failed connect
 *
 * Only what those callers use is here; it stands in for a net.Socket where they type one
 * (listener tracking, TlsHandoff, Connection.socket): `asSocket`. Used for natively terminated
 * TLS listeners (src/tls/server.ts `fdPath`), behind OUTRIGGER_TLS_FD, and for plaintext
 * upstream connections to an IP literal (src/upstream/connect.ts), behind OUTRIGGER_UPSTREAM_FD.
 */
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { native } from '../native';
import { nativeReadPause, nativeUnwatch, nativeWantWrite, nativeWatch, type NativeReader } from './connection';
import { io } from './io';
import { systemError } from './user-buffer';
import type { NativeConnectBinding } from '../native/types';

/** A read of the batch: ciphertext (or bytes) at chunk[start, start + n). */
export type FdReadCallback = (chunk: Buffer, start: number, n: number) => void;

export class FdSocket extends EventEmitter implements NativeReader {
  /** The brand Connection and the TLS handshake test for (no import of this module there). */
  readonly fdSocket = true;
  destroyed = false;
  readableEnded = false;
  writableEnded = false;
  /** Bytes queued by write() and not yet taken by the kernel. */
  writableLength = 0;
  /** Bytes put back by unshift() (a peeked ClientHello), taken by read(). */
  private unread: Buffer | null = null;
  /** The idle timeout in ms (0: none), as net.Socket's. */
  timeout = 0;
  bytesRead = 0;
  /**
   * socketFd() reads `_handle.fd` (network/user-buffer.ts); `reading` false: no Node handle reads
   * this fd behind the watcher (tcp_proxy's splice checks it, see handleReading).
   */
  readonly _handle: { readonly fd: number; readonly reading: false };
  /** An outgoing socket whose connect(2) has not completed yet (FdSocket.connect). */
  connecting = false;
  private id = -1;
  private reader: FdReadCallback | null = null;
  private finSent = false;
  private readonly wq: Buffer[] = [];
  private readonly wcb: (((err?: Error | null) => void) | undefined)[] = [];
  private activity = 0;
  private seen = 0;
  private timer: NodeJS.Timeout | null = null;
  /** 'timeout' was emitted: the timer waits for the next read to start again. */
  private fired = false;
  private paused = true;
  /** The fd is closed already (by the addon). */
  private closedFd = false;

  constructor(
    readonly fd: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    private local: string,
    private localP: number,
  ) {
    super();
    this._handle = { fd, reading: false }; // one per connection: what socketFd() reads
  }

  /**
   * An outgoing connection to host:port (an IP literal), connecting: 'connect' once it is up, or
   * 'error' (an Error as Node's: code ECONNREFUSED...) and 'close'. Its reads start paused.
   */
  static connect(binding: NativeConnectBinding, host: string, port: number): FdSocket {
    const fd = binding.connect(host, port);
    const s = new FdSocket(fd, host, port, '', 0);
    s.binding = binding;
    s.connecting = true;
    if (fd < 0) {
      s.closedFd = true; // nothing to close: connect(2) failed at once
      process.nextTick(() => s.destroy(connectError(-fd, host, port))); // after the caller's listeners
    } else if (s.watch()) {
      nativeReadPause(s.id, true);
      nativeWantWrite(s.id); // one report: connected or failed (connectResult)
    }
    return s;
  }

  /** Outgoing sockets only: native/listen.cc's connect functions. */
  private binding: NativeConnectBinding | null = null;

  /** The local address (an outgoing socket's from getsockname() once connected, when first asked). */
  get localAddress(): string {
    this.localName();
    return this.local;
  }

  get localPort(): number {
    this.localName();
    return this.localP;
  }

  /** An outgoing socket's local address, asked once it is connected and open (then kept). */
  private localName(): void {
    if (this.local !== '' || this.binding === null || this.connecting || this.closedFd || this.destroyed) return;
    const [a, p] = this.binding.name(this.fd);
    this.local = a;
    this.localP = p;
  }

  /**
   * The fd's watcher, made at the first resume() or queued write (a socket accepted paused: no
   * poll, so no epoll_ctl to stop it when the ClientHello comes before the handshake starts).
   * false when libuv refused the fd (then closed, and this socket destroyed).
   */
  private watch(): boolean {
    if (this.id >= 0) return true;
    if (this.destroyed) return false;
    try {
      this.id = nativeWatch(this, this.fd);
      return true;
    } catch (e) {
      this.closedFd = true; // the addon closed it
      this.destroy(e instanceof Error ? e : new Error(String(e)));
      return false;
    }
  }

  /** This object where a caller types a net.Socket: the members it uses are the same. */
  get asSocket(): net.Socket {
    return this as unknown as net.Socket;
  }

  /** Where the reads go (inside the read batch; the view of the chunk is valid until the batch's flush). */
  setReader(cb: FdReadCallback): void {
    this.reader = cb;
  }

  /** Bytes put back and not read yet (a net.Socket's readable buffer holds nothing else here). */
  get readableLength(): number {
    return this.unread === null ? 0 : this.unread.length;
  }

  /** Puts peeked bytes back (network/peek.ts) for the next read(). */
  unshift(buf: Buffer): void {
    this.unread = this.unread === null ? buf : Buffer.concat([buf, this.unread]);
  }

  /** The bytes put back, or null. */
  read(): Buffer | null {
    const b = this.unread;
    this.unread = null;
    return b;
  }

  pause(): this {
    if (this.paused) return this;
    this.paused = true;
    if (this.id >= 0) nativeReadPause(this.id, true);
    return this;
  }

  resume(): this {
    if (!this.paused || this.destroyed) return this;
    this.paused = false;
    if (this.id >= 0) nativeReadPause(this.id, false);
    else this.watch(); // a new watcher polls at once
    return this;
  }

  /** Set on the fd by the addon at accept. */
  setNoDelay(): this {
    return this;
  }

  nativeRead(start: number, n: number): void {
    if (this.destroyed) return;
    if (n > 0) {
      this.bytesRead += n;
      this.activity++;
      if (this.fired) this.rearm();
      if (this.reader !== null) this.reader(io().readBuffer, start, n);
      // No reader yet: a listener filter peeking (network/peek.ts) reads 'data' events; a copy,
      // the chunk is reused by the next read.
      else this.emit('data', Buffer.from(io().readBuffer.subarray(start, start + n)));
      return;
    }
    if (n < 0) {
      this.destroy(systemError('read', -n)); // as Node reports a failed read
      return;
    }
    this.readableEnded = true;
    this.emit('end');
    if (this.finSent && !this.destroyed) this.destroy(); // both directions done (allowHalfOpen)
  }

  /** Queues bytes the kernel refused; they go when the fd is writable again. Always false (as a full socket). */
  write(buf: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    if (this.destroyed || this.writableEnded) return false;
    const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.wq.push(b);
    this.wcb.push(cb);
    this.writableLength += b.length;
    if (this.wq.length === 1 && this.watch()) {
      if (this.paused) nativeReadPause(this.id, true);
      nativeWantWrite(this.id);
    }
    return false;
  }

  nativeWritable(): void {
    if (this.destroyed) return;
    if (this.connecting && !this.connectDone()) return;
    const ctx = io();
    while (this.wq.length > 0) {
      const b = this.wq[0];
      let n: number;
      try {
        n = ctx.writeRange(this.fd, b, 0, b.length);
      } catch (e) {
        this.destroy(e as Error);
        return;
      }
      this.writableLength -= n;
      if (n < b.length) {
        this.wq[0] = b.subarray(n); // rare: the kernel took part of it
        nativeWantWrite(this.id);
        return;
      }
      this.wq.shift();
      const cb = this.wcb.shift();
      if (cb !== undefined) cb(null);
      if (this.destroyed) return;
    }
    if (this.writableEnded && !this.finSent) this.sendFin();
    else this.emit('drain');
  }

  /** The connect's outcome (the first writability report): false when there is nothing more to do now. */
  private connectDone(): boolean {
    const err = (this.binding as NativeConnectBinding).result(this.fd);
    if (err < 0) {
      this.destroy(connectError(-err, this.remoteAddress, this.remotePort));
      return false;
    }
    this.connecting = false;
    this.emit('connect');
    // Bytes queued (or an end() asked) while connecting go now.
    return (this.wq.length > 0 || this.writableEnded) && !this.destroyed;
  }

  /** Half-closes once the queue is empty (the FIN after every queued byte). */
  end(): this {
    if (this.writableEnded || this.destroyed) return this;
    this.writableEnded = true;
    if (this.wq.length === 0 && !this.connecting) this.sendFin(); // connecting: after the connect (connectDone)
    return this;
  }

  private sendFin(): void {
    this.finSent = true;
    try {
      (native.accept as { shutdownWrite(fd: number): void }).shutdownWrite(this.fd);
    } catch (e) {
      this.destroy(e as Error);
      return;
    }
    if (this.readableEnded) this.destroy();
  }

  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.id >= 0) nativeUnwatch(this.id); // closes the fd
    else if (!this.closedFd) native.closeFd(this.fd);
    this.id = -1;
    this.wq.length = 0;
    this.wcb.length = 0;
    this.writableLength = 0;
    process.nextTick(emitClose, this, err);
    return this;
  }

  setTimeout(ms: number): this {
    this.timeout = ms;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (ms > 0 && !this.destroyed) this.arm();
    return this;
  }

  private arm(): void {
    this.seen = this.activity;
    this.timer = setTimeout(this.onTimer, this.timeout); // one per setTimeout, re-armed by refresh()
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    if (this.destroyed || this.timeout === 0 || this.timer === null) return;
    if (this.activity !== this.seen) {
      this.seen = this.activity;
      this.timer.refresh();
      return;
    }
    this.fired = true; // as Node: once, until the next activity
    this.emit('timeout');
  };

  private rearm(): void {
    this.fired = false;
    this.seen = this.activity;
    if (this.timer !== null) this.timer.refresh();
  }
}

function emitClose(s: FdSocket, err: Error | undefined): void {
  if (err !== undefined && s.listenerCount('error') > 0) s.emit('error', err);
  s.emit('close', err !== undefined);
}

/** A failed connect as Node reports it: "connect ECONNREFUSED 127.0.0.1:80", with code, errno, syscall, address, port. */
function connectError(errno: number, host: string, port: number): Error {
  const e = systemError('connect', errno);
  e.message = `connect ${(e as NodeJS.ErrnoException).code} ${host}:${port}`;
  return Object.assign(e, { address: host, port });
}
