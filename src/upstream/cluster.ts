/**
 * Clusters as one worker sees them: hosts, a load balancer and the stats slot base. Built
 * from an immutable config snapshot; a new snapshot builds a new ClusterManager, and live
 * sessions keep the Cluster objects they already hold.
 */
import type * as tls from 'node:tls';
import type { ClusterConfig } from '../config/types';
import { Connection, type ConnectionHandler } from '../network/connection';
import { C } from '../stats/layout';
import { ClientTls } from '../tls/client';
import { createLoadBalancer, Host, type LoadBalancer } from './lb';

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
   */
  connect(host: Host, handler: ConnectionHandler, timeoutMs: number): Connection {
    this.counters[this.base + C.CX_TOTAL]++;
    this.counters[this.base + C.CX_ACTIVE]++;
    const t = this.tls;
    const conn = Connection.connect(host.host, host.port, handler, this.bufferLimit, timeoutMs, t !== null ? t.options(host.host) : undefined);
    if (t !== null) t.track(conn.socket as tls.TLSSocket);
    return conn;
  }

  /** Current active upstream connections of this worker to the cluster. */
  get activeConnections(): number {
    return this.counters[this.base + C.CX_ACTIVE];
  }
}

export class ClusterManager {
  private clusters = new Map<string, Cluster>();

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

  /**
   * Builds one cluster of a prepared snapshot without installing it (src/worker/snapshot.ts):
   * `unchanged` (same resource version and stats slot) keeps the current Cluster object.
   */
  prepareCluster(config: ClusterConfig, counters: Float64Array, base: number, unchanged: boolean): Cluster {
    const prev = this.clusters.get(config.name);
    if (unchanged && prev !== undefined && prev.base === base) return prev;
    return new Cluster(config, counters, base, prev);
  }

  /** Commit of a prepared snapshot: its clusters replace these; replaced TLS contexts stop watching their files. */
  install(next: Map<string, Cluster>): void {
    for (const old of this.clusters.values()) {
      if (old.tls !== null && next.get(old.name)?.tls !== old.tls) old.tls.close();
    }
    this.clusters = next;
  }
}
