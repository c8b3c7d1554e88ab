/**
 * Upgrade (WebSocket) and CONNECT for the raw HTTP/1.1 downstream: the byte relay of a
 * TunnelRequest (../tunnel.ts runs the request through the stream phases: filters, route,
 * cluster, host, breakers, access log). The client Connection and a new upstream Connection are
 * joined: bytes flow both ways unchanged (the upstream's 101 or 200 included), with watermarks
 * pausing the reading side and half-closes passed on; both sides closed ends the stream.
 *
 *   rawTunnel: client conn paused, bytes after the head copied ─> TunnelRequest.start()
 *     refuse(status) ─> closing reply          open(cluster, host, head) ─> upstream Connection
 *     Side(down) <──────────── bytes ────────────> Side(up)     (counted both ways)
 */
import type { Connection, ConnectionHandler } from '../../network/connection';
import { C } from '../../stats/layout';
import { HTTP1_ALPN, type Cluster } from '../../upstream/cluster';
import type { Host } from '../../upstream/lb';
import type { DownstreamTransport, HttpEnv } from '../exchange';
import type { Headers } from '../headers';
import { statusOf, TunnelRequest, type TunnelRelay } from '../tunnel';
import { closingReply } from './codec';

/** One side of the tunnel: forwards what its connection reads to the other side. */
class Side implements ConnectionHandler {
  peer: Side | null = null;
  conn: Connection | null = null;
  /** Bytes this side read (and passed on). */
  bytes = 0;

  constructor(private readonly t: Tunnel) {}

  onData(_c: Connection, buf: Buffer, start: number, end: number): void {
    const p = this.peer as Side;
    if (this.bytes === 0 && this === this.t.up) this.t.firstUpstreamBytes(buf, start, end);
    this.bytes += end - start;
    if (p.conn !== null) p.conn.write(buf, start, end);
  }

  onEnd(): void {
    const p = this.peer as Side;
    if (p.conn !== null) p.conn.endWrite();
  }

  onClose(): void {
    this.t.closed(this);
  }

  onHighWatermark(): void {
    const p = this.peer as Side;
    if (p.conn !== null) p.conn.pauseRead();
  }

  onLowWatermark(): void {
    const p = this.peer as Side;
    if (p.conn !== null) p.conn.resumeRead();
  }

  onConnect(): void {
    this.t.connected();
  }

  onTimeout(c: Connection): void {
    // Connect timeout of the upstream side.
    c.destroy(new Error('connect timeout'));
  }
}

class Tunnel implements TunnelRelay {
  readonly down: Side;
  readonly up: Side;
  req: TunnelRequest | null = null;
  private isUp = false;
  private upDone = false;
  private downDone = false;
  private cluster: Cluster | null = null;
  private host: Host | null = null;

  constructor(
    private readonly conn: Connection,
    /** Bytes the client sent after the head (a copy). */
    private readonly rest: Buffer,
  ) {
    this.down = new Side(this);
    this.up = new Side(this);
    this.down.peer = this.up;
    this.up.peer = this.down;
    this.down.conn = conn;
  }

  transport(): DownstreamTransport | null {
    return this.conn;
  }

  refuse(status: number): void {
    const conn = this.conn;
    if (conn.state === 'closed') return;
    const b = Buffer.from(closingReply(status), 'latin1');
    conn.write(b, 0, b.length);
    conn.endWrite();
    // Read on (and discard: no upstream side) so that the client's close is seen; a connection
    // left paused here would linger half-closed and hold a draining listener for its grace time.
    conn.resumeRead();
  }

  open(_t: TunnelRequest, cluster: Cluster, host: Host, head: string): void {
    this.cluster = cluster;
    this.host = host;
    host.active++;
    // The cluster's connection: counted, TLS per its tls_context (the timeout covers the handshake).
    const up = cluster.connect(host, this.up, cluster.connectTimeoutMs > 0 ? cluster.connectTimeoutMs : 10_000, HTTP1_ALPN);
    this.up.conn = up;
    // Queued while connecting (copied): the head, then whatever followed it.
    const h = Buffer.from(head, 'latin1');
    up.write(h, 0, h.length);
    if (this.rest.length > 0) up.write(this.rest, 0, this.rest.length);
    if (this.up.bytes === 0) this.down.bytes = this.rest.length;
  }

  connected(): void {
    this.isUp = true;
    const c = this.up.conn as Connection;
    c.setTimeout(0);
    this.conn.resumeRead();
  }

  firstUpstreamBytes(buf: Buffer, start: number, end: number): void {
    (this.req as TunnelRequest).upstreamStatus(statusOf(buf, start, end));
  }

  closed(side: Side): void {
    const t = this.req as TunnelRequest;
    const other = side === this.up ? this.down : this.up;
    if (side === this.up) {
      if (this.upDone) return;
      this.upDone = true;
      const cl = this.cluster as Cluster;
      cl.counters[cl.base + C.CX_ACTIVE]--;
      (this.host as Host).active--;
      if (!this.isUp) {
        // A retry (TunnelRequest) may open another connection on this side.
        this.upDone = false;
        this.up.conn = null;
        t.connectFailed('upstream connection failed');
        return;
      }
    } else {
      if (this.downDone) return;
      this.downDone = true;
    }
    const oc = other.conn;
    if (oc !== null && oc.state !== 'closed') {
      // Let what is queued go, then close (a reset on the other side stays a close here).
      oc.endWrite();
      if (side === this.down) oc.destroy();
    }
    if (this.downDone && (this.upDone || this.up.conn === null)) t.ended(this.down.bytes, this.up.bytes, side === this.down && !this.upDone);
  }
}

/**
 * Turns `conn` (a raw HTTP/1.1 client connection whose request head asked for an Upgrade or
 * CONNECT) into a tunnel. `rest`: bytes read after the head (a view, valid during this call).
 */
export function rawTunnel(env: HttpEnv, conn: Connection, method: string, url: string, headers: Headers, rest: Buffer, connect: boolean): void {
  // Copied: a stream filter may hold the request past this call (one copy per tunnel, usually empty).
  const t = new Tunnel(conn, rest.length > 0 ? Buffer.from(rest) : rest);
  conn.setHandler(t.down);
  conn.pauseRead();
  const req = new TunnelRequest(env, t, method, url, headers, connect);
  t.req = req;
  req.start();
}
