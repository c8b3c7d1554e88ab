/**
 * Clusters as one worker sees them: hosts, a load balancer and the stats slot base. Built
 * from an immutable config snapshot; a new snapshot builds a new ClusterManager, and live
 * sessions keep the Cluster objects they already hold.
 */
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import type { Pool } from 'undici';
import type { ClusterConfig } from '../config/types';
import type { Connection, ConnectionHandler } from '../network/connection';
import { C } from '../stats/layout';
import { ClientTls } from '../tls/client';
import { dialConnection, dialH2, dialSocket, readyEvent, undiciPool } from './connect';
import { createLoadBalancer, Host, type LoadBalancer } from './lb';

function ignore(): void {}

export class Cluster {
  readonly name: string;
  readonly hosts: readonly Host[];
  readonly lb: LoadBalancer;
  readonly connectTimeoutMs: number;
  readonly bufferLimit: number;
  readonly maxConnections: number;
  /** Upstream TLS (cluster tls_context); null = plaintext. */
  readonly tls: ClientTls | null;

  constructor(
    readonly config: ClusterConfig,
    /** This worker's counters and the cluster's base slot in them. */
    readonly counters: Float64Array,
    readonly base: number,
    previous?: Cluster,
  ) {
    this.name = config.name;
    // Keep Host objects (and their active counts) across reloads when the address is unchanged.
    const old = new Map<string, Host>();
    if (previous) for (const h of previous.hosts) old.set(`${h.address}/${h.weight}`, h);
    this.hosts = config.hosts.map((hc) => {
      const h = new Host(hc);
      return old.get(`${h.address}/${h.weight}`) ?? h;
    });
    this.lb = createLoadBalancer(config.lbType, this.hosts);
    this.connectTimeoutMs = config.connectTimeoutMs;
    this.bufferLimit = config.connBufferLimitBytes;
    this.maxConnections = config.circuitBreakers.maxConnections;
    const t = config.tlsContext;
    if (t === undefined) this.tls = null;
    else if (previous && previous.tls !== null && JSON.stringify(previous.tls.config) === JSON.stringify(t)) this.tls = previous.tls;
    else this.tls = new ClientTls(config.name, t, counters, base);
  }

  /**
   * Opens an upstream connection to `host`, counted in upstream_cx_total/active, with TLS
   * origination (SNI, verification, client certificate) when the cluster has a tls_context.
   * The caller decrements upstream_cx_active when it closes.
   */
  connect(host: Host, handler: ConnectionHandler, timeoutMs: number): Connection {
    this.counters[this.base + C.CX_TOTAL]++;
    this.counters[this.base + C.CX_ACTIVE]++;
    const t = this.tls;
    const conn = dialConnection(host.host, host.port, handler, this.bufferLimit, timeoutMs, t !== null ? t.options(host.host) : null);
    if (t !== null) t.track(conn.socket as tls.TLSSocket);
    return conn;
  }

  /** TLS options for one host (null: plaintext), ALPN replaced by `alpn` when given. */
  tlsOptions(host: Host, alpn?: readonly string[]): tls.ConnectionOptions | null {
    if (this.tls === null) return null;
    const o = this.tls.options(host.host);
    if (alpn !== undefined) o.ALPNProtocols = [...alpn];
    return o;
  }

  /**
   * A node socket to `host` for library clients and pipes (HTTP/2 sessions, undici, the
   * node:http tunnel): TLS per the cluster's tls_context, counted in upstream_cx_total/active
   * (active decremented here when it closes), destroyed with an ETIMEDOUT error when it is not
   * up (handshake included) within `timeoutMs` (0: no limit). Usable once `readyEvent(socket)`.
   */
  openSocket(host: Host, timeoutMs: number, alpn?: readonly string[]): net.Socket {
    const c = this.counters;
    const b = this.base;
    c[b + C.CX_TOTAL]++;
    c[b + C.CX_ACTIVE]++;
    const s = dialSocket(host.host, host.port, this.tlsOptions(host, alpn));
    s.on('error', ignore); // the owner (session, pool, tunnel) reports errors; an unhandled one must not crash the worker
    if (this.tls !== null) this.tls.track(s as tls.TLSSocket);
    s.once('close', () => {
      c[b + C.CX_ACTIVE]--;
    });
    if (timeoutMs > 0) {
      const t = setTimeout(() => s.destroy(Object.assign(new Error('upstream connect timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
      t.unref();
      s.once(readyEvent(s), () => clearTimeout(t));
      s.once('close', () => clearTimeout(t));
    }
    return s;
  }

  /** A new HTTP/2 session to `host` (h2c, or h2 negotiated by ALPN over the cluster's TLS). */
  connectH2(host: Host, options: http2.ClientSessionOptions): http2.ClientHttp2Session {
    return dialH2(host.address, this.openSocket(host, this.connectTimeoutMs, ['h2']), options);
  }

  /**
   * A new undici keep-alive pool to `host` whose connections are this cluster's sockets
   * (openSocket: TLS, counters, connect timeout).
   */
  undiciPool(host: Host, options: Pool.Options): Pool {
    const timeout = this.connectTimeoutMs > 0 ? this.connectTimeoutMs : 10_000;
    const connect = (_o: unknown, cb: (err: Error | null, socket: net.Socket | null) => void): void => {
      const s = this.openSocket(host, timeout);
      let done = false;
      const fail = (e: Error): void => {
        if (done) return;
        done = true;
        cb(e, null);
      };
      s.once('error', fail);
      s.once('close', () => fail(Object.assign(new Error('upstream connection closed while connecting'), { code: 'ECONNRESET' })));
      s.once(readyEvent(s), () => {
        if (done) return;
        done = true;
        s.removeListener('error', fail);
        cb(null, s);
      });
    };
    return undiciPool(host.address, this.tls !== null, { ...options, connect: connect as unknown as Pool.Options['connect'] });
  }

  /** Current active upstream connections of this worker to the cluster. */
  get activeConnections(): number {
    return this.counters[this.base + C.CX_ACTIVE];
  }
}

export class ClusterManager {
  private readonly clusters = new Map<string, Cluster>();

  constructor(
    configs: readonly ClusterConfig[],
    counters: Float64Array,
    bases: Readonly<Record<string, number>>,
    previous?: ClusterManager,
  ) {
    for (const c of configs) {
      const base = bases[c.name];
      if (base === undefined) throw new Error(`stats layout has no slot for cluster ${c.name}`);
      this.clusters.set(c.name, new Cluster(c, counters, base, previous?.get(c.name)));
    }
    // Stop watching certificate files of upstream TLS contexts the new snapshot no longer uses.
    if (previous) {
      for (const old of previous.all()) {
        if (old.tls !== null && this.clusters.get(old.name)?.tls !== old.tls) old.tls.close();
      }
    }
  }

  get(name: string): Cluster | undefined {
    return this.clusters.get(name);
  }

  all(): IterableIterator<Cluster> {
    return this.clusters.values();
  }
}
