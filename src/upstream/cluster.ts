/**
 * Clusters as one worker sees them, and the worker's cluster manager: hosts, a load
 * balancer, the stats slot base, circuit breakers shared by every worker, and the registry
 * of every upstream connection pool (per cluster, per host, per protocol).
 *
 * A config snapshot prepares new Cluster objects beside the running ones (prepareCluster) and
 * installs them on commit. Host objects are kept by address, so their pools survive; a weight
 * change is written into the shared Host only when its cluster is installed (activate), so a
 * version prepared and then aborted leaves the running hosts as they were; pools of a
 * host or cluster that went away — or of a cluster whose connection settings changed — are
 * drained (in-flight requests finish, then their connections close). Live sessions keep the
 * Cluster objects they already hold.
 */
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import type { Pool } from 'undici';
import type { ClusterConfig, HostConfig } from '../config/types';
import type { Connection, ConnectionHandler } from '../network/connection';
import { filterCellsThreaded } from '../filters/shared/cells';
import { B, C } from '../stats/layout';
import { ClientTls } from '../tls/client';
import { privateBreakerCells, type BreakerCells } from './breakers';
import { dialConnection, dialH2, dialSocket, readyEvent, undiciPool } from './connect';
import { createLoadBalancer, Host, hostAddress, type LoadBalancer, type UpstreamPool } from './lb';
import { ORIGINAL_DST_CLEANUP_MS } from '../config/original-dst';
import { markPendingCheck, T } from './health/shared';
import { OriginalDstLb } from './original-dst';
import { SubsetLoadBalancer } from './subset';
import { offeredAlpn, TransportSelector } from './transport-match';

function ignore(): void {}

/** Error code of a connection refused by max_connections (undici reports the connector's error). */
export const UPSTREAM_OVERFLOW = 'EUPSTREAMOVERFLOW';

/** What an HTTP/1.1 connection offers by ALPN whatever the cluster's alpn says (an h2 answer would break it). */
export const HTTP1_ALPN: readonly string[] = Object.freeze(['http/1.1']);

/** An immutable snapshot of a cluster's hosts and the load balancer over them. */
export interface HostSet {
  readonly hosts: readonly Host[];
  readonly lb: LoadBalancer;
  /**
   * The weight of each host in this set (`hosts[i]` gets `weights[i]`). Hosts are shared with
   * the running set, so a set built for a prepared snapshot writes them only on activate().
   */
  readonly weights: readonly number[];
}

/** Breaker cells of clusters built without shared ones (tests, bench peers): this thread only. */
let privateCells: BreakerCells | null = null;

export class Cluster {
  readonly name: string;
  readonly connectTimeoutMs: number;
  readonly bufferLimit: number;
  readonly maxConnections: number;
  /** Upstream TLS (cluster tls_context); null = plaintext. */
  readonly tls: ClientTls | null;
  /** The TLS of each host (transport_socket_matches, tls_disable): src/upstream/transport-match.ts. */
  readonly transport: TransportSelector;
  /** Source address of upstream sockets (upstream_bind_config); undefined = the kernel's choice. */
  readonly localAddress: string | undefined;
  /** The current host set; replaced (never mutated) by updateHosts. */
  private set: HostSet;
  /** Circuit-breaker usage shared by every worker (Atomics), at `base + B.*`, and this worker's share. */
  private readonly cells: Int32Array;
  private readonly own: Int32Array;
  private readonly limCx: number;
  private readonly limPending: number;
  private readonly limRq: number;
  private readonly limRetry: number;
  /** Connection slots taken by tryAcquireConnection for the next connect()/openSocket(). */
  private reservedCx = 0;

  constructor(
    readonly config: ClusterConfig,
    /** This worker's counters and the cluster's base slot in them. */
    readonly counters: Float64Array,
    readonly base: number,
    previous?: Cluster,
    /** Circuit-breaker cells shared by all workers (from WorkerInit); private to this thread when absent. */
    breakers?: BreakerCells,
  ) {
    this.name = config.name;
    // Hosts of `previous` are shared, not touched: their weights change on activate() (commit).
    this.set = buildHostSet(config, previous !== undefined ? previous.hosts : [], null, previous !== undefined, counters, base);
    if (previous === undefined) activateSet(this.set);
    this.connectTimeoutMs = config.connectTimeoutMs;
    this.bufferLimit = config.connBufferLimitBytes;
    const cb = config.circuitBreakers;
    this.maxConnections = cb.maxConnections;
    this.limCx = cb.maxConnections;
    this.limPending = cb.maxPendingRequests;
    this.limRq = cb.maxRequests;
    this.limRetry = cb.maxRetries;
    const cells = breakers ?? (privateCells ??= privateBreakerCells());
    this.cells = cells.shared;
    this.own = cells.own;
    const t = config.tlsContext;
    if (t === undefined) this.tls = null;
    else if (previous && previous.tls !== null && JSON.stringify(previous.tls.config) === JSON.stringify(t)) this.tls = previous.tls;
    else this.tls = new ClientTls(config.name, t, counters, base);
    this.transport = new TransportSelector(config, this.tls, counters, base, previous?.transport);
    this.localAddress = config.upstreamBind?.sourceAddress;
  }

  get hosts(): readonly Host[] {
    return this.set.hosts;
  }

  get lb(): LoadBalancer {
    return this.set.lb;
  }

  get hostSet(): HostSet {
    return this.set;
  }

  /**
   * Swaps in a new host set (a later membership update: health checking, xDS EDS). Hosts
   * keep their identity by address; the pools of hosts no longer present are drained.
   */
  updateHosts(hosts: readonly HostConfig[]): void {
    const removed: Host[] = [];
    this.set = buildHostSet({ ...this.config, hosts }, this.set.hosts, removed, true, this.counters, this.base);
    activateSet(this.set);
    for (const h of removed) drainHostPools(h);
    const retls = this.transport.setHosts(hosts); // hosts whose TLS changed: their connections are made anew
    if (retls.size > 0) for (const h of this.set.hosts) if (retls.has(h.address)) drainHostPools(h);
  }

  /**
   * This cluster becomes the running one (a commit installed it, or a rollback installed it
   * again): its hosts take the weights of its config. Until then a prepared cluster shares its
   * hosts with the running one without changing them, so an aborted version leaves no trace.
   */
  activate(): void {
    activateSet(this.set);
  }

  // ---- pool registry (per host, per protocol key)

  /** The pool registered on `host` under `key` ('h1', 'h2', 'rpc:bolt', ...), if any. */
  pool(host: Host, key: string): UpstreamPool | undefined {
    return host.pools.get(key);
  }

  /** Registers a new pool; a pool already under `key` is drained. */
  addPool(host: Host, key: string, pool: UpstreamPool): void {
    const old = host.pools.get(key);
    host.pools.set(key, pool);
    if (old !== undefined && old !== pool) old.drain();
  }

  /** A pool that closed by itself (idle, GOAWAY, lost session) leaves the registry (no drain). */
  removePool(host: Host, key: string, pool: UpstreamPool): void {
    if (host.pools.get(key) === pool) host.pools.delete(key);
  }

  /** Drains every pool of every host of this cluster (ORIGINAL_DST: its on-demand hosts leave). */
  drainPools(): void {
    for (const h of this.set.hosts) drainHostPools(h);
    if (this.set.lb instanceof OriginalDstLb) this.set.lb.close();
  }

  // ---- circuit breakers (max_connections, max_pending_requests, max_requests, max_retries),
  // counted across every worker. A limit of 0 is no limit; usage is counted either way, so a
  // limit set by a reload applies to what is already in flight. Each tryAcquire that returns
  // true is matched by exactly one release.

  /**
   * Reserves a slot for one more upstream connection, to be taken by the next connect() or
   * openSocket() of this worker (called right after, in the same tick); false
   * (upstream_cx_overflow) at max_connections. Connections release their slot when they close.
   */
  tryAcquireConnection(): boolean {
    if (!this.acquire(B.CX, this.limCx, C.CX_OVERFLOW)) return false;
    this.reservedCx++;
    return true;
  }

  /** Gives back a reservation that no connect() followed. */
  releaseConnection(): void {
    if (this.reservedCx > 0) {
      this.reservedCx--;
      this.release(B.CX);
    }
  }

  /** One more request waiting for a connection; false (upstream_rq_pending_overflow) at max_pending_requests. */
  tryAcquirePending(): boolean {
    return this.acquire(B.PENDING, this.limPending, C.RQ_PENDING_OVERFLOW);
  }

  /** Releases `n` pending requests (a connection that came up with n queued on it). */
  releasePending(n = 1): void {
    if (n > 0) this.release(B.PENDING, n);
  }

  /** One more request in flight; false (upstream_rq_pending_overflow, as Envoy counts it) at max_requests. */
  tryAcquireRequest(): boolean {
    return this.acquire(B.RQ, this.limRq, C.RQ_PENDING_OVERFLOW);
  }

  releaseRequest(): void {
    this.release(B.RQ);
  }

  /** One more retry in flight; false (upstream_rq_retry_overflow) at max_retries, or beyond the retry_budget. */
  tryAcquireRetry(): boolean {
    const rb = this.config.circuitBreakers.retryBudget;
    if (rb === undefined) return this.acquire(B.RETRY, this.limRetry, C.RQ_RETRY_OVERFLOW);
    // Envoy retry_budget: a share of what the cluster has in flight now (every worker).
    const load = Atomics.load(this.cells, this.base + B.RQ) + Atomics.load(this.cells, this.base + B.PENDING);
    const limit = Math.max(rb.minRetryConcurrency, Math.floor((load * rb.budgetPercent) / 100));
    if (limit === 0) {
      this.counters[this.base + C.RQ_RETRY_OVERFLOW]++;
      return false;
    }
    return this.acquire(B.RETRY, limit, C.RQ_RETRY_OVERFLOW);
  }

  releaseRetry(): void {
    this.release(B.RETRY);
  }

  /** Current usage of one breaker across all workers (B.CX, B.PENDING, B.RQ, B.RETRY). */
  breakerUsage(which: number): number {
    return Atomics.load(this.cells, this.base + which);
  }

  private acquire(which: number, limit: number, overflow: number): boolean {
    const i = this.base + which;
    const cells = this.cells;
    // Threads share the cells: add, then undo when over, so the cell never stays above the limit
    // whatever the workers do at the same time (a concurrent acquirer may see the transient value
    // and refuse too). One thread writes them (one-isolate mode, tests): plain loads and stores,
    // as the filters' cells (src/filters/shared/cells.ts: the same threads, switched together).
    const threaded = filterCellsThreaded();
    const before = threaded ? Atomics.add(cells, i, 1) : cells[i];
    if (limit > 0 && before >= limit) {
      if (threaded) Atomics.sub(cells, i, 1);
      this.counters[this.base + overflow]++;
      return false;
    }
    if (!threaded) cells[i] = before + 1;
    this.own[i]++;
    return true;
  }

  private release(which: number, n = 1): void {
    const i = this.base + which;
    if (filterCellsThreaded()) Atomics.sub(this.cells, i, n);
    else this.cells[i] -= n;
    this.own[i] -= n;
  }

  /**
   * Opens an upstream connection to `host`, counted in upstream_cx_total/active, with TLS
   * origination (SNI, verification, client certificate) when the cluster has a tls_context.
   * The caller decrements upstream_cx_active when it closes. `alpn` replaces the configured
   * ALPN list (an HTTP/1.1 pool offers only http/1.1).
   */
  connect(host: Host, handler: ConnectionHandler, timeoutMs: number, alpn?: readonly string[]): Connection {
    this.counters[this.base + C.CX_TOTAL]++;
    this.counters[this.base + C.CX_ACTIVE]++;
    const t = this.transport.forHost(host);
    const conn = dialConnection(host.host, host.port, handler, this.bufferLimit, timeoutMs, this.tlsOptions(host, alpn), this.localAddress);
    if (t !== null) t.track(conn.socket as tls.TLSSocket);
    this.holdConnectionSlot(conn.socket);
    return conn;
  }

  /**
   * Every upstream connection holds one max_connections slot until its socket closes: the
   * one tryAcquireConnection reserved just before, else one taken unconditionally (pools
   * count without refusing). One listener per connection, not per request.
   */
  private holdConnectionSlot(s: net.Socket): void {
    if (this.reservedCx > 0) this.reservedCx--;
    else {
      Atomics.add(this.cells, this.base + B.CX, 1);
      this.own[this.base + B.CX]++;
    }
    // First of the close listeners: the owner's close handler (a retry, a waiter's new
    // connection) already sees the slot free.
    s.prependOnceListener('close', () => this.release(B.CX));
  }

  /** The TLS `host` uses (null: plaintext): the cluster's, or per host (transport_socket_matches, tls_disable). */
  tlsFor(host: Host): ClientTls | null {
    return this.transport.forHost(host);
  }

  /** TLS options for one host (null: plaintext), ALPN replaced by `alpn` when given (Istio's names added over Istio mTLS). */
  tlsOptions(host: Host, alpn?: readonly string[]): tls.ConnectionOptions | null {
    const t = this.transport.forHost(host);
    if (t === null) return null;
    const o = t.options(host.host);
    if (alpn !== undefined) o.ALPNProtocols = offeredAlpn(t.config, alpn);
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
    const t = this.transport.forHost(host);
    const s = dialSocket(host.host, host.port, this.tlsOptions(host, alpn), this.localAddress);
    s.on('error', ignore); // the owner (session, pool, tunnel) reports errors; an unhandled one must not crash the worker
    this.holdConnectionSlot(s);
    if (t !== null) t.track(s as tls.TLSSocket);
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
   * (openSocket: TLS, counters, connect timeout), within max_connections (else the connect
   * fails with code UPSTREAM_OVERFLOW).
   */
  undiciPool(host: Host, options: Pool.Options): Pool {
    const timeout = this.connectTimeoutMs > 0 ? this.connectTimeoutMs : 10_000;
    const connect = (_o: unknown, cb: (err: Error | null, socket: net.Socket | null) => void): void => {
      if (!this.tryAcquireConnection()) {
        cb(Object.assign(new Error('upstream overflow'), { code: UPSTREAM_OVERFLOW }), null); // max_connections
        return;
      }
      const s = this.openSocket(host, timeout, HTTP1_ALPN);
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
    return undiciPool(host.address, this.transport.forHost(host) !== null, { ...options, connect: connect as unknown as Pool.Options['connect'] });
  }

  /** Current active upstream connections of this worker to the cluster. */
  get activeConnections(): number {
    return this.counters[this.base + C.CX_ACTIVE];
  }
}

function drainHostPools(h: Host): void {
  if (h.pools.size === 0) return;
  const all = [...h.pools.values()];
  h.pools.clear();
  for (const p of all) p.drain();
}

/**
 * The host set for `config`: hosts of `previous` kept by address (their weights are written
 * by activateSet, not here), new ones created; hosts of `previous` that are gone are appended
 * to `removed` when given. `update`: the cluster existed before, so with slow start a new host
 * ramps up from now, as MOSN does for hosts that an update adds to a non-empty host set (the
 * first hosts of a cluster start at full weight).
 */
function buildHostSet(config: ClusterConfig, previous: readonly Host[], removed: Host[] | null, update: boolean, counters: Float64Array, base: number): HostSet {
  if (config.lbType === 'LB_ORIGINAL_DST') {
    const o = config.originalDstLb ?? { headerName: '', replaceLocal: false, cleanupIntervalMs: ORIGINAL_DST_CLEANUP_MS };
    return { hosts: [], lb: new OriginalDstLb(o, drainHostPools), weights: Object.freeze([]) }; // hosts made on demand
  }
  const old = new Map<string, Host>();
  for (const h of previous) old.set(h.address, h);
  const hosts = config.hosts.map((hc) => {
    const h = old.get(hostAddress(hc));
    if (h === undefined) {
      const n = new Host(hc, config.name);
      if (config.healthCheck?.startUnhealthy === true) markPendingCheck(n.cells, n.off, n.clusterOff); // Envoy: unhealthy until checked
      if (update && previous.length > 0 && config.slowStart !== undefined) n.times[n.toff + T.HEALTHY_SINCE] = Date.now();
      return n;
    }
    old.delete(h.address);
    return h;
  });
  if (removed !== null) for (const h of old.values()) removed.push(h);
  const lbOpts = { panicThreshold: config.panicThreshold, slowStart: config.slowStart };
  const full = createLoadBalancer(config.lbType, hosts, lbOpts);
  // lb_subset_config: subsets of the same balancer type over labelled hosts (./subset.ts).
  const lb = config.lbSubset !== undefined ? new SubsetLoadBalancer(config.lbSubset, config.lbType, config.hosts, hosts, full, lbOpts, { counters, base }) : full;
  // The hosts array is not frozen (readonly by type): TurboFan (Node 20) does not inline element
  // loads from a frozen array, so the balancer's hosts[i] per pick was a KeyedLoadIC call.
  return { hosts, lb, weights: Object.freeze(config.hosts.map((hc) => hc.weight)) };
}

/** Writes a host set's weights into its (shared) hosts. */
function activateSet(set: HostSet): void {
  for (let i = 0; i < set.hosts.length; i++) set.hosts[i].weight = set.weights[i];
}

/** Whether connections made for `a` can serve `b` (same TLS, timeouts and buffer limits). */
function sameConnections(a: Cluster, b: Cluster): boolean {
  return a.tls === b.tls && a.connectTimeoutMs === b.connectTimeoutMs && a.bufferLimit === b.bufferLimit && a.localAddress === b.localAddress;
}

export class ClusterManager {
  private clusters = new Map<string, Cluster>();

  constructor(
    configs: readonly ClusterConfig[],
    counters: Float64Array,
    bases: Readonly<Record<string, number>>,
    previous?: ClusterManager,
    /** Circuit-breaker cells shared by all workers (from WorkerInit); private to this thread when absent. */
    private readonly breakers?: BreakerCells,
  ) {
    const next = new Map<string, Cluster>();
    for (const c of configs) {
      const base = bases[c.name];
      if (base === undefined) throw new Error(`stats layout has no slot for cluster ${c.name}`);
      const built = new Cluster(c, counters, base, previous?.get(c.name), breakers);
      built.activate();
      next.set(c.name, built);
    }
    if (previous) retire(previous.clusters, next);
    this.setClusters(next);
  }

  /**
   * The cluster named `name`. The last name looked up and its cluster are kept (the RPC proxy
   * looks its route's cluster up per request, usually the same one: a string compare instead of
   * a Map lookup); `clusters` is replaced, never mutated, and every replacement forgets them.
   */
  get(name: string): Cluster | undefined {
    if (name === this.lastName) return this.lastCluster;
    const c = this.clusters.get(name);
    this.lastName = name;
    this.lastCluster = c;
    return c;
  }

  private lastName: string | null = null;
  private lastCluster: Cluster | undefined = undefined;

  private setClusters(next: Map<string, Cluster>): void {
    this.clusters = next;
    this.lastName = null;
    this.lastCluster = undefined;
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
    return new Cluster(config, counters, base, prev, this.breakers);
  }

  /**
   * Commit of a prepared snapshot: its clusters replace these; replaced TLS contexts stop
   * watching their files, and the pools of removed clusters and hosts are drained.
   */
  install(next: Map<string, Cluster>): void {
    for (const [name, c] of next) if (this.clusters.get(name) !== c) c.activate();
    retire(this.clusters, next);
    this.setClusters(next);
  }

  /** Drains every pool of every cluster (worker shutdown). */
  drainAll(): void {
    for (const c of this.clusters.values()) c.drainPools();
  }
}

/**
 * What a new set of clusters no longer uses: certificate watchers of replaced upstream TLS
 * contexts stop; pools of removed clusters, of removed hosts, and of every host of a cluster
 * whose connection settings changed are drained (in-flight requests finish).
 */
function retire(current: ReadonlyMap<string, Cluster>, next: ReadonlyMap<string, Cluster>): void {
  for (const old of current.values()) {
    const cur = next.get(old.name);
    if (cur === old) continue;
    if (old.tls !== null && cur?.tls !== old.tls) old.tls.close();
    old.transport.closeUnshared(cur?.transport);
    if (old.lb instanceof OriginalDstLb) old.lb.close(); // the new cluster makes its own on-demand hosts
    if (cur === undefined) {
      old.drainPools(); // the cluster is gone
      continue;
    }
    const kept = new Set(cur.hosts);
    for (const h of old.hosts) {
      // A host that left the cluster, or every host when connections must be made anew.
      if (!kept.has(h) || !sameConnections(old, cur) || old.tlsFor(h) !== cur.tlsFor(h)) drainHostPools(h);
    }
  }
}
