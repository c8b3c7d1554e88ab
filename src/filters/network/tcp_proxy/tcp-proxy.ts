/**
 * tcp_proxy network filter (MOSN/Envoy shape): picks a cluster (routes on source/destination
 * CIDR, else the default cluster), connects to a host chosen by the cluster's load balancer,
 * and streams bytes both ways.
 *
 *  - half-close both ways: a FIN from one side becomes a FIN to the other after the queued
 *    bytes are written; the session ends when both directions have ended;
 *  - backpressure: a side whose output queue passes its high watermark pauses reading on the
 *    other side until it drains to the low watermark, so memory stays bounded;
 *  - connect timeout and max_connect_attempts; when no attempt succeeds the downstream is
 *    closed at once (response flag UF, counted in upstream_cx_connect_fail);
 *  - idle timeout: no bytes either way for idle_timeout closes both sides;
 *  - bulk sessions move their bytes kernel-side with splice(2) once they have moved enough
 *    through JS (./splice.ts), and come back to the JS path for everything but forwarding.
 */
import * as net from 'node:net';
import type { TcpProxyConfig } from '../../../config/types';
import type { Connection, ConnectionHandler } from '../../../network/connection';
import { C, L } from '../../../stats/layout';
import type { Cluster } from '../../../upstream/cluster';
import type { Host, LbContext } from '../../../upstream/lb';
import { MetadataMatch } from '../../../upstream/subset-match';
import { registerNetworkFilter, type ListenerContext, type NetworkFilterFactory } from '../types';
import { handleReading, registerPair, scheduleSpliceCheck, spliceError, splicing, unregisterPair, type SpliceOwner } from './splice';

interface CompiledRoute {
  readonly cluster: string;
  readonly sources: net.BlockList | null;
  readonly destinations: net.BlockList | null;
}

function blockList(ranges: readonly { address: string; length: number }[]): net.BlockList | null {
  if (ranges.length === 0) return null;
  const bl = new net.BlockList();
  for (const r of ranges) bl.addSubnet(r.address, r.length, net.isIPv6(r.address) ? 'ipv6' : 'ipv4');
  return bl;
}

function family(addr: string): 'ipv4' | 'ipv6' {
  return net.isIPv6(addr) && !addr.startsWith('::ffff:') ? 'ipv6' : 'ipv4';
}

function plainIp(addr: string): string {
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

export class TcpProxyFactory implements NetworkFilterFactory {
  private readonly routes: CompiledRoute[];
  readonly idleTimeoutMs: number;
  /** Subset criteria of the connections (config metadata_match); null = none. */
  readonly metadataMatch: MetadataMatch | null;

  constructor(
    readonly config: TcpProxyConfig,
    readonly ctx: ListenerContext,
  ) {
    this.routes = config.routes.map((r) => ({
      cluster: r.cluster,
      sources: blockList(r.sourceAddrs),
      destinations: blockList(r.destinationAddrs),
    }));
    this.idleTimeoutMs = config.idleTimeoutMs > 0 ? config.idleTimeoutMs : ctx.idleTimeoutMs;
    this.metadataMatch = config.metadataMatch !== undefined ? new MetadataMatch(config.metadataMatch) : null;
  }

  /** The cluster for a downstream connection: first matching route, else the default. */
  clusterFor(conn: Connection): Cluster | undefined {
    for (const r of this.routes) {
      if (r.sources && !r.sources.check(plainIp(conn.remoteAddress), family(conn.remoteAddress))) continue;
      if (r.destinations && !r.destinations.check(plainIp(conn.localAddress), family(conn.localAddress))) continue;
      return this.ctx.clusters.get(r.cluster);
    }
    return this.config.cluster ? this.ctx.clusters.get(this.config.cluster) : undefined;
  }

  onAccept(conn: Connection): void {
    const s = new TcpProxySession(this, conn);
    conn.setHandler(s);
    s.start();
  }

  /**
   * Takes a connection another filter already read from (the `proxy` filter's Auto detection
   * with fallback_for_unknown_protocol): buf[start, end) are its first bytes, sent upstream first.
   */
  onAcceptWithData(conn: Connection, buf: Buffer, start: number, end: number): void {
    const s = new TcpProxySession(this, conn);
    conn.setHandler(s);
    s.start();
    if (end > start) s.onData(conn, buf, start, end);
  }
}

const enum Flags {
  DownEnded = 1,
  UpEnded = 2,
  UpConnected = 4,
  ConnectTimedOut = 8,
  Done = 16,
  /** The last bytes came from the client (a request/response exchange is open). */
  ClientLast = 32,
  /** A splice switch check is scheduled. */
  SpliceCheck = 64,
}

/** A session that did not qualify for splice yet tries again after this many more bytes. */
const SPLICE_RETRY_BYTES = 64 * 1024;
const enum Sp {
  READ_A = 0,
  WRITTEN_B = 1,
  READ_B = 2,
  WRITTEN_A = 3,
  ACTIVITY = 4,
  LAST_DIR = 5,
}

/** Hot upgrade: how long both directions must have been quiet before a connection moves. */
const MIGRATE_QUIET_MS = 20;
const NO_BYTES = Buffer.alloc(0);

class TcpProxySession implements ConnectionHandler, LbContext, SpliceOwner {
  private up: Connection | null = null;
  private cluster: Cluster | undefined;
  private host: Host | null = null;
  private attempts = 0;
  private flags = 0;
  private lastActivity = Date.now();
  private responseFlags = '-';
  private readonly counters: Float64Array;
  private readonly lb: number;
  /** Bytes moved through JS, and the count at which a splice switch is checked next. */
  private moved = 0;
  private spliceAt = splicing !== null ? splicing.after : Infinity;
  /** While spliced: the pair's id and the counters the addon writes (see SpliceBinding.start). */
  private spliceId = -1;
  private spliceState: Float64Array | null = null;

  constructor(
    private readonly f: TcpProxyFactory,
    private readonly down: Connection,
  ) {
    this.counters = f.ctx.counters;
    this.lb = f.ctx.base;
  }

  /** LbContext: subset criteria (metadata_match). */
  get metadataMatch(): MetadataMatch | null {
    return this.f.metadataMatch;
  }

  /** LbContext: an ORIGINAL_DST cluster connects to this socket's original destination. */
  get downstream(): net.Socket {
    return this.down.socket;
  }

  start(): void {
    this.cluster = this.f.clusterFor(this.down);
    if (this.f.idleTimeoutMs > 0) this.down.setTimeout(this.f.idleTimeoutMs);
    this.connectUpstream();
  }

  private connectUpstream(): void {
    const cl = this.cluster;
    const host = cl ? cl.lb.choose(this) : null;
    if (cl === undefined || host === null) {
      if (cl) this.counters[cl.base + C.NO_HOST]++;
      this.responseFlags = cl ? 'UH' : 'NR';
      this.down.destroy();
      return;
    }
    if (!cl.tryAcquireConnection()) {
      // max_connections, shared by every worker (counted in upstream_cx_overflow).
      this.responseFlags = 'UO';
      this.down.destroy();
      return;
    }
    this.attempts++;
    this.host = host;
    host.active++;
    const prev = this.up;
    this.up = cl.connect(host, this, cl.connectTimeoutMs);
    if (prev !== null) {
      // A retry after a failed connect: what the downstream sent meanwhile goes to the new attempt.
      prev.transferPendingTo(this.up);
      prev.setHandler(deadHandler);
    }
  }

  onConnect(up: Connection): void {
    this.flags |= Flags.UpConnected;
    if (this.down.state === 'closed') up.destroy();
  }

  onData(conn: Connection, buf: Buffer, start: number, end: number): void {
    const n = end - start;
    const c = this.counters;
    this.lastActivity = Date.now();
    if (conn === this.down) {
      this.flags |= Flags.ClientLast;
      c[this.lb + L.BYTES_RX] += n;
      const up = this.up;
      if (up !== null) {
        if (this.cluster) c[this.cluster.base + C.BYTES_TX] += n;
        up.write(buf, start, end);
      }
    } else {
      this.flags &= ~Flags.ClientLast;
      if (this.cluster) c[this.cluster.base + C.BYTES_RX] += n;
      c[this.lb + L.BYTES_TX] += n;
      this.down.write(buf, start, end);
    }
    if ((this.moved += n) >= this.spliceAt && !(this.flags & Flags.SpliceCheck)) {
      this.flags |= Flags.SpliceCheck;
      scheduleSpliceCheck(this);
    }
  }

  /**
   * Switches to kernel-side forwarding when both sockets are plain, open, idle (nothing queued,
   * neither paused nor half-closed) and Node's reads could be stopped; else tries again later
   * (or never, for a pair that cannot qualify).
   */
  trySplice(): void {
    this.flags &= ~Flags.SpliceCheck;
    const sp = splicing;
    const up = this.up;
    const down = this.down;
    if (sp === null || this.spliceState !== null || up === null) return;
    if (this.flags & (Flags.DownEnded | Flags.UpEnded | Flags.Done) || !(this.flags & Flags.UpConnected)) return;
    if (down.state !== 'open' || up.state !== 'open') return;
    // Only when this session gets both connections' bytes directly (no wrapper reads them) and
    // both fds carry those bytes: TLS (either path) and the cork IO mode keep them on the JS path for good.
    if (down.currentHandler !== this || up.currentHandler !== this || !down.plainFd || !up.plainFd) {
      this.spliceAt = Infinity;
      return;
    }
    if (down.queued() > 0 || up.queued() > 0 || down.writeClosed || up.writeClosed || down.isReadPaused || up.isReadPaused) {
      this.spliceAt = this.moved + SPLICE_RETRY_BYTES;
      return;
    }
    down.pauseRead();
    up.pauseRead();
    if (handleReading(down.socket) || handleReading(up.socket)) {
      // 'data'-event sockets keep reading into Node's buffers after pause(): not for splice.
      down.resumeRead();
      up.resumeRead();
      this.spliceAt = Infinity;
      return;
    }
    const cl = this.cluster;
    const state = new Float64Array(6); // once per spliced session: the addon's counters for it
    let id: number;
    try {
      // Bytes and back-pressure pauses go straight to the same stats slots as onData and onHighWatermark.
      const slots = [this.lb + L.BYTES_RX, cl ? cl.base + C.BYTES_TX : -1, cl ? cl.base + C.BYTES_RX : -1, this.lb + L.BYTES_TX, this.lb + L.CX_RX_PAUSED, cl ? cl.base + C.CX_RX_PAUSED : -1];
      id = sp.binding.start(down.fd, up.fd, state, this.counters, slots, sp.pipeSize);
    } catch {
      // e.g. EMFILE: this session stays on the JS path.
      down.resumeRead();
      up.resumeRead();
      this.spliceAt = Infinity;
      return;
    }
    this.spliceId = id;
    this.spliceState = state;
    registerPair(id, this);
  }

  /**
   * Back to the JS path: the addon's byte counts go to the connections, the bytes still in the
   * pipes are written through them, and Node reads both sockets again.
   */
  private unsplice(): void {
    const st = this.spliceState;
    const sp = splicing;
    if (st === null || sp === null) return;
    this.spliceState = null;
    unregisterPair(this.spliceId);
    const [toUp, toDown] = sp.binding.stop(this.spliceId);
    this.spliceId = -1;
    const up = this.up as Connection;
    const down = this.down;
    down.bytesRx += st[Sp.READ_A];
    up.bytesTx += st[Sp.WRITTEN_B];
    up.bytesRx += st[Sp.READ_B];
    down.bytesTx += st[Sp.WRITTEN_A];
    if (st[Sp.ACTIVITY] > this.lastActivity) this.lastActivity = st[Sp.ACTIVITY];
    if (st[Sp.LAST_DIR] === 1) this.flags |= Flags.ClientLast;
    else if (st[Sp.LAST_DIR] === 2) this.flags &= ~Flags.ClientLast;
    this.spliceAt = Infinity; // once back on the JS path, a session stays there
    if (toUp !== null) up.write(toUp, 0, toUp.length);
    if (toDown !== null) down.write(toDown, 0, toDown.length);
    down.resumeRead();
    up.resumeRead();
  }

  /**
   * The spliced pair stopped by itself. errno 0: both FINs were forwarded; Node's reads then see
   * both ends and the session closes as on the JS path. Otherwise that side's socket failed.
   */
  abort(err: Error): void {
    this.down.destroy(err);
    if (this.up !== null) this.up.destroy(err);
  }

  onSpliceEnd(side: number, errno: number): void {
    const conn = side === 0 ? this.down : this.up;
    this.unsplice();
    if (errno !== 0 && conn !== null) conn.destroy(spliceError(errno));
  }

  /**
   * Hot upgrade (src/upgrade/worker-side.ts): the client connection moves to the new process
   * between exchanges: the upstream answered last, both directions were quiet for a while and
   * nothing is queued. Closing the listener side then ends the upstream connection gracefully
   * (FIN); the new process opens its own. Bytes an upstream sent unasked after that are lost:
   * protocols where the server speaks first do not suit this (they drain instead when busy).
   */
  migrate(): Buffer | null {
    const st = this.spliceState;
    if (st !== null) {
      const busy = st[Sp.LAST_DIR] === 1 || st[Sp.READ_A] !== st[Sp.WRITTEN_B] || st[Sp.READ_B] !== st[Sp.WRITTEN_A];
      if (busy || Date.now() - st[Sp.ACTIVITY] < MIGRATE_QUIET_MS) return null;
      this.unsplice(); // the pipes are empty: back to the JS path, then moved like any session
    }
    const up = this.up;
    const busy = Flags.DownEnded | Flags.UpEnded | Flags.ClientLast | Flags.Done;
    if (up === null || !(this.flags & Flags.UpConnected) || this.flags & busy) return null;
    if (up.queued() > 0 || this.down.queued() > 0 || Date.now() - this.lastActivity < MIGRATE_QUIET_MS) return null;
    return NO_BYTES;
  }

  onEnd(conn: Connection): void {
    if (conn === this.down) {
      this.flags |= Flags.DownEnded;
      if (this.up !== null) this.up.endWrite();
    } else {
      this.flags |= Flags.UpEnded;
      this.down.endWrite();
    }
  }

  onHighWatermark(conn: Connection): void {
    const other = conn === this.down ? this.up : this.down;
    if (other === null) return;
    other.pauseRead();
    if (other === this.down) this.counters[this.lb + L.CX_RX_PAUSED]++;
    else if (this.cluster) this.counters[this.cluster.base + C.CX_RX_PAUSED]++;
  }

  onLowWatermark(conn: Connection): void {
    const other = conn === this.down ? this.up : this.down;
    if (other !== null) other.resumeRead();
  }

  onTimeout(conn: Connection): void {
    if (conn === this.up && !(this.flags & Flags.UpConnected)) {
      this.flags |= Flags.ConnectTimedOut;
      if (this.cluster) this.counters[this.cluster.base + C.CX_CONNECT_TIMEOUT]++;
      conn.destroy(new Error('upstream connect timeout'));
      return;
    }
    if (conn === this.down) {
      const idle = this.f.idleTimeoutMs;
      const st = this.spliceState;
      if (st !== null && st[Sp.ACTIVITY] > this.lastActivity) this.lastActivity = st[Sp.ACTIVITY];
      const left = this.lastActivity + idle - Date.now();
      if (left > 0) {
        conn.setTimeout(left); // traffic the other way kept the session alive
        return;
      }
      this.counters[this.lb + L.CX_IDLE_TIMEOUT]++;
      this.responseFlags = 'IT';
      this.down.destroy();
      if (this.up) this.up.destroy();
    }
  }

  onClose(conn: Connection, err: Error | undefined): void {
    this.unsplice(); // closed by other code (drain, idle timeout, stop) while spliced
    const cl = this.cluster;
    const c = this.counters;
    if (conn === this.up) {
      if (cl) {
        c[cl.base + C.CX_ACTIVE]--;
        c[cl.base + C.CX_DESTROY]++;
      }
      if (this.host) this.host.active--;
      if (!(this.flags & Flags.UpConnected)) {
        // Connect failure (refused, unreachable, timed out).
        if (cl) c[cl.base + C.CX_CONNECT_FAIL]++;
        if (this.down.state !== 'closed' && this.attempts < Math.max(1, this.f.config.maxConnectAttempts)) {
          this.flags &= ~Flags.ConnectTimedOut;
          this.connectUpstream();
          return;
        }
        this.responseFlags = 'UF';
        this.down.destroy();
        return;
      }
      if (this.down.state === 'closed') return this.finish();
      if (err !== undefined) {
        this.responseFlags = 'UR';
        this.down.destroy(); // reset upstream: reset downstream (queued bytes are dropped)
      } else {
        this.down.endWrite(); // flush what the upstream sent, then FIN
      }
      return;
    }
    // downstream closed
    const up = this.up;
    if (up !== null && up.state !== 'closed') {
      if (err !== undefined || !(this.flags & Flags.UpConnected)) up.destroy();
      else up.endWrite();
    }
    this.finish();
  }

  private finish(): void {
    if (this.flags & Flags.Done) return;
    this.flags |= Flags.Done;
    const log = this.f.ctx.accessLog;
    if (log !== null) {
      const d = this.down;
      log.log({
        listenerName: this.f.ctx.name,
        startTime: d.startTime,
        durationMs: Date.now() - d.startTime,
        downstreamRemoteAddress: `${d.remoteAddress}:${d.remotePort}`,
        downstreamLocalAddress: `${d.localAddress}:${d.localPort}`,
        upstreamHost: this.host ? this.host.address : undefined,
        upstreamCluster: this.cluster ? this.cluster.name : undefined,
        bytesReceived: d.bytesRx,
        bytesSent: d.bytesTx,
        responseFlag: this.responseFlags,
        downstreamTls: d.tlsInfo ?? undefined,
      });
    }
  }
}

/** Handler for an abandoned upstream attempt: ignores everything. */
const deadHandler: ConnectionHandler = {
  onData() {},
  onEnd() {},
  onClose() {},
  onHighWatermark() {},
  onLowWatermark() {},
};

registerNetworkFilter('tcp_proxy', (config, ctx) => new TcpProxyFactory(config as unknown as TcpProxyConfig, ctx));
