/**
 * Upgrade (WebSocket) and CONNECT pass-through for the raw HTTP/1.1 downstream: routed by
 * planTunnel (../tunnel.ts, shared with the node:http path), then the client Connection and a
 * new upstream Connection are joined: bytes flow both ways unchanged (the upstream's 101 or
 * 200 included), with watermarks pausing the reading side and half-closes passed on.
 */
import type { Connection, ConnectionHandler } from '../../network/connection';
import type { HttpRoute } from '../../router/http-routes';
import { C, R } from '../../stats/layout';
import { HTTP1_ALPN, type Cluster } from '../../upstream/cluster';
import type { Host } from '../../upstream/lb';
import type { HttpEnv } from '../exchange';
import type { Headers } from '../headers';
import { routeCount } from '../route-stats';
import { planTunnel } from '../tunnel';
import { closingReply } from './codec';

function refuse(conn: Connection, status: number): void {
  const b = Buffer.from(closingReply(status), 'latin1');
  conn.write(b, 0, b.length);
  conn.endWrite();
}

/** One side of the tunnel: forwards what its connection reads to the other side. */
class Side implements ConnectionHandler {
  peer: Side | null = null;
  conn: Connection | null = null;

  constructor(private readonly t: Tunnel) {}

  onData(_c: Connection, buf: Buffer, start: number, end: number): void {
    const p = this.peer as Side;
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

class Tunnel {
  readonly down: Side;
  readonly up: Side;
  private isUp = false;
  private done = false;

  constructor(
    private readonly route: HttpRoute,
    private readonly cluster: Cluster,
    private readonly host: Host,
  ) {
    this.down = new Side(this);
    this.up = new Side(this);
    this.down.peer = this.up;
    this.up.peer = this.down;
  }

  connected(): void {
    this.isUp = true;
    const c = this.up.conn as Connection;
    c.setTimeout(0);
    const d = this.down.conn as Connection;
    d.resumeRead();
  }

  closed(side: Side): void {
    const other = side === this.up ? this.down : this.up;
    if (side === this.up && !this.done) {
      this.done = true;
      const cc = this.cluster.counters;
      const cb = this.cluster.base;
      cc[cb + C.CX_ACTIVE]--;
      this.host.active--;
      if (!this.isUp) {
        cc[cb + C.CX_CONNECT_FAIL]++;
        routeCount(this.route, R.UPSTREAM_RESET);
        const d = this.down.conn as Connection;
        if (d.state !== 'closed') refuse(d, 503);
        return;
      }
    }
    const oc = other.conn;
    if (oc !== null && oc.state !== 'closed') {
      // Let what is queued go, then close (a reset on the other side stays a close here).
      oc.endWrite();
      if (side === this.down) oc.destroy();
    }
  }
}

/**
 * Turns `conn` (a raw HTTP/1.1 client connection whose request head asked for an Upgrade or
 * CONNECT) into a tunnel. `rest`: bytes read after the head (a view, valid during this call).
 */
export function rawTunnel(env: HttpEnv, conn: Connection, method: string, url: string, headers: Headers, rest: Buffer, connect: boolean): void {
  const plan = planTunnel(env, method, url, headers, connect);
  if (!plan.ok) {
    refuse(conn, plan.status);
    return;
  }
  const { cluster, host } = plan;
  if (!cluster.tryAcquireConnection()) {
    refuse(conn, 503); // max_connections
    return;
  }
  const t = new Tunnel(plan.route, cluster, host);
  t.down.conn = conn;
  conn.setHandler(t.down);
  conn.pauseRead();
  host.active++;
  // The cluster's connection: counted, TLS per its tls_context (the timeout covers the handshake).
  const up = cluster.connect(host, t.up, cluster.connectTimeoutMs > 0 ? cluster.connectTimeoutMs : 10_000, HTTP1_ALPN);
  t.up.conn = up;
  // Queued while connecting (copied): the head, then whatever followed it.
  const head = Buffer.from(plan.head, 'latin1');
  up.write(head, 0, head.length);
  if (rest.length > 0) up.write(rest, 0, rest.length);
}
