/**
 * Upgrade (WebSocket; h2c is refused) and CONNECT on HTTP/1.1: a mode of the same stream as
 * every other request. A TunnelRequest runs the phase machine of src/stream/active-stream.ts
 * (decode filters, route, cluster, host, circuit breakers, access log) and then, instead of an
 * upstream request/response, switches to byte relay: its head is written to a connection to
 * the chosen host and from then on bytes flow both ways unchanged (the upstream's 101 / 200
 * included). CONNECT requests route as path "/" on the virtual host of their authority.
 *
 *   head ─> TunnelRequest (stream filters, access log when the listener has them)
 *     runPhases: before_route ─> routePhase (404 / 503) ─> after_route ─> prepareUpstream (head)
 *       ─> host (503) ─> after_choose_host ─> sendAttempt: max_connections (503, UO)
 *       ─> relay.open(cluster, host, head)          TunnelRelay: one per engine
 *            connect failure: attemptFailed: retried on another host (retry_on connect-failure:
 *            nothing reached the upstream), else 503, UF
 *            first upstream bytes: the status line (encode filters, %response_code%)
 *            both sides closed: ended(bytes in, bytes out) ─> access-log line, filters' log step
 *
 * Engines: the node:http downstream ('upgrade' / 'connect' socket, SocketRelay below), the
 * raw HTTP/1.1 downstream (./h1/tunnel.ts, Connection pairs) and HTTP/2 CONNECT / extended
 * CONNECT (./h2-tunnel.ts: the stream's DATA frames relayed to an HTTP/1.1 tunnel upstream).
 */
import type * as http from 'node:http';
import type * as net from 'node:net';
import { DecodePhase, type StreamPeer } from '../api/stream-filter';
import type { HttpRoute, HttpRouteRequest, HttpVirtualHost } from '../router/http-routes';
import { resolveTarget } from '../router/path';
import { C, L, R } from '../stats/layout';
import { AttemptFailure, attemptFailed, LocalReplyKind, requestDone, retryAttempt, runPhases, type RetryState, type StreamHooks } from '../stream/active-stream';
import { ActiveStream, type StreamPipeline } from '../stream/pipeline';
import { HTTP1_ALPN, type Cluster } from '../upstream/cluster';
import { readyEvent } from '../upstream/connect';
import type { Host, LbContext } from '../upstream/lb';
import type { MetadataMatch } from '../upstream/subset-match';
import { applyOps, ensureRequestId, type Headers } from './headers';
import { closingReply, headerLines } from './h1/codec';
import { streamTransport, type DownstreamTransport, type HttpEnv } from './exchange';
import { routeCount, routeRequest } from './route-stats';
import { HC, HL } from './stats';

/** The byte relay of one tunnel engine (node:http socket or raw Connection). */
export interface TunnelRelay {
  /** Answers the request with `status` and closes the client connection. */
  refuse(status: number): void;
  /**
   * Connects to `host` (the cluster's connection: TLS per its tls_context, counted, connect
   * timeout), writes `head` and the bytes that followed it, then relays. Reports to `t`:
   * connectFailed / upstreamStatus / ended.
   */
  open(t: TunnelRequest, cluster: Cluster, host: Host, head: string): void;
  /** The client connection (addresses, TLS) for filters and the access log. */
  transport(): DownstreamTransport | null;
}

/** The status code of an upstream's first bytes ("HTTP/1.x NNN"), 0 when they are not a status line. */
export function statusOf(buf: Buffer, start: number, end: number): number {
  if (end - start < 12 || buf[start] !== 0x48 || buf[start + 8] !== 0x20) return 0;
  let n = 0;
  for (let i = start + 9; i < start + 12; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) return 0;
    n = n * 10 + d;
  }
  return n;
}

/** One CONNECT / Upgrade request: the stream hooks of a tunnel (one per tunnel; not a per-request hot path). */
export class TunnelRequest implements StreamHooks<TunnelStream>, RetryState, HttpRouteRequest {
  readonly path: string;
  private readonly authority: string;
  private readonly url: string;
  /** Absolute-form Upgrade target: its authority replaces Host upstream. */
  private readonly absoluteAuthority: string | null;
  private readonly status: number;
  private route: HttpRoute | null = null;
  private vh: HttpVirtualHost | null = null;
  private head = '';
  private finished = false;
  private readonly fs: TunnelStream | null;
  // RetryState
  cluster: Cluster | null = null;
  retries = 0;
  retryPending = false;
  retryHeld = false;
  tried: Host[] | null = null;
  /** Tunnels have no request time across attempts (RetryState; no per-try timeout: connects are bounded by the cluster). */
  deadlineAt = 0;
  /** LbContext: the route's subset criteria (metadata_match) for the picked cluster. */
  readonly downstream = null;
  metadataMatch: MetadataMatch | null = null;

  constructor(
    private readonly env: HttpEnv,
    private readonly relay: TunnelRelay,
    readonly method: string,
    url: string,
    private readonly headers: Headers,
    private readonly connect: boolean,
    /** The downstream's protocol as filters see it: "http1", or "http2" for CONNECT on HTTP/2 (./h2-tunnel.ts). */
    protocol = 'http1',
  ) {
    // An Upgrade's target as the exchange resolves it (absolute-form, normalized path: router/path.ts).
    const t = connect ? url : resolveTarget(url, String(headers['host'] ?? ''), env.cfg.paths);
    this.status = typeof t === 'string' ? 0 : t.status;
    this.url = typeof t === 'string' ? url : t.url;
    this.absoluteAuthority = typeof t === 'string' ? null : t.authority;
    this.authority = connect ? url : typeof t === 'string' ? String(headers['host'] ?? '') : t.authority;
    this.path = connect ? '/' : this.url.split('?')[0];
    const pl = env.pipeline;
    this.fs = pl !== undefined && pl.active ? new TunnelStream(this, pl, env.ctx.name, relay.transport(), protocol) : null;
  }

  header(n: string): string | undefined {
    if (n === ':method') return this.method;
    if (n === ':authority') return this.authority;
    if (n === ':path') return this.url;
    const v = this.headers[n];
    return Array.isArray(v) ? v.join(',') : v;
  }

  get service(): string | undefined {
    return this.authority === '' ? undefined : this.authority;
  }

  start(): void {
    const c = this.env.ctx.counters;
    const lb = this.env.ctx.base;
    c[lb + L.RQ_TOTAL]++;
    c[lb + (this.connect ? HL.CONNECT : HL.UPGRADE)]++;
    // h2c upgrade is not proxied (use prior knowledge); a target the path rules refuse: 400.
    if ((!this.connect && String(this.headers['upgrade'] ?? '').toLowerCase() === 'h2c') || this.status !== 0) {
      this.answer(400);
      return;
    }
    runPhases(this, this.fs, DecodePhase.BeforeRoute);
  }

  /** A stopped filter let the request go on. */
  continueFrom(phase: DecodePhase): void {
    if (!this.finished) runPhases(this, this.fs, phase);
  }

  // ---- StreamHooks

  routePhase(fs: TunnelStream | null): TunnelStream | null | undefined {
    const c = this.env.ctx.counters;
    const lb = this.env.ctx.base;
    const vh = this.env.router.virtualHost(this.authority);
    const route = vh === null ? null : vh.match(this);
    if (vh === null || route === null || route.direct !== null || route.redirect !== null) {
      c[lb + L.RS_NO_ROUTE]++;
      if (fs !== null) fs.setResponseFlag('NR');
      this.answer(404);
      return undefined;
    }
    routeRequest(route);
    this.route = route;
    this.vh = vh;
    const target = route.pickTarget();
    const cluster = this.env.ctx.clusters.get(target !== null ? target.name : route.pickCluster(this));
    this.metadataMatch = target !== null ? target.metadataMatch : route.metadataMatch;
    if (cluster === undefined) {
      c[lb + L.RS_NO_ROUTE]++;
      if (fs !== null) fs.setResponseFlag('NR');
      this.answer(503);
      return undefined;
    }
    this.cluster = cluster;
    if (fs !== null) fs.routed(route.name, cluster);
    return fs;
  }

  /** Subset criteria for the balancer (no ORIGINAL_DST context: tunnels keep the previous behaviour there). */
  lbContext(): LbContext | null {
    return this.metadataMatch !== null ? this : null;
  }

  /** The head to send upstream (hop-by-hop kept: Upgrade and Connection are the point). */
  prepareUpstream(): boolean {
    const route = this.route as HttpRoute;
    const out: Headers = { ...this.headers };
    applyOps(out, route.ops, (this.vh as HttpVirtualHost).ops, false);
    if (this.env.cfg.generateRequestId) ensureRequestId(out);
    if (route.hostRewrite !== '') out['host'] = route.hostRewrite;
    else if (this.absoluteAuthority !== null) out['host'] = this.absoluteAuthority; // absolute-form: the URI's authority
    this.head = `${this.method} ${this.connect ? this.url : route.rewritePath(this.url)} HTTP/1.1\r\n${headerLines(out)}\r\n`;
    return true;
  }

  routedCluster(): Cluster {
    return this.cluster as Cluster;
  }

  retryState(): RetryState {
    return this;
  }

  sendAttempt(fs: TunnelStream | null, host: Host): void {
    const cluster = this.cluster as Cluster;
    if (!cluster.tryAcquireConnection()) {
      // max_connections: a tunnel is a connection of the cluster.
      if (fs !== null) fs.setResponseFlag('UO');
      this.localReply(fs, LocalReplyKind.Overflow);
      return;
    }
    cluster.counters[cluster.base + C.RQ_TOTAL]++;
    if (fs !== null) {
      fs.upstreamHost = host.address;
      fs.requestSent();
    }
    this.relay.open(this, cluster, host, this.head);
  }

  localReply(_fs: TunnelStream | null, kind: LocalReplyKind): void {
    if (kind === LocalReplyKind.NoHost || kind === LocalReplyKind.NoRoute) this.env.ctx.counters[this.env.ctx.base + L.RS_NO_ROUTE]++;
    this.answer(kind === LocalReplyKind.Timeout ? 504 : 503);
  }

  retry(fs: TunnelStream | null): void {
    retryAttempt(this, fs);
  }

  // ---- relay events

  /** The upstream connection failed before it was up (nothing of the request reached it). */
  connectFailed(reason: string): void {
    if (this.finished) return;
    const cl = this.cluster as Cluster;
    cl.counters[cl.base + C.CX_CONNECT_FAIL]++;
    routeCount(this.route as HttpRoute, R.UPSTREAM_RESET);
    if (this.fs !== null) this.fs.upstreamTransportFailureReason = reason;
    // Nothing reached the upstream (the relays send the head and early bytes only on a connected
    // socket / queue them on the failed connection): another host may take the tunnel.
    attemptFailed(this, this.fs, (this.route as HttpRoute).retry, AttemptFailure.ConnectFailure, true, HC.RETRY);
  }

  /** The upstream's status line (101, 200, or a refusal it sends before closing). */
  upstreamStatus(status: number): void {
    if (this.fs !== null && status > 0 && this.fs.responseCode === undefined) this.fs.encode(status);
  }

  /** Both sides are closed (or the client went away first): the stream ends with the bytes relayed. */
  ended(bytesIn: number, bytesOut: number, clientFirst: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (this.cluster !== null) requestDone(this);
    const fs = this.fs;
    if (fs !== null) {
      if (clientFirst && fs.upstreamHost === undefined) fs.setResponseFlag('DC');
      fs.bytesReceived = bytesIn;
      fs.bytesSent = bytesOut;
      fs.replied = true;
      fs.end();
    }
  }

  /** Answers locally (a refusal; the client connection closes after it). */
  answer(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.relay.refuse(status);
    const fs = this.fs;
    if (fs !== null) {
      fs.replied = true;
      fs.encode(status);
      fs.bytesReceived = 0;
      fs.bytesSent = closingReply(status).length;
      fs.end();
    }
  }
}

/** A tunnel request as stream filters and the access log see it. */
class TunnelStream extends ActiveStream {
  private readonly tlsPeer: StreamPeer | null;

  constructor(
    private readonly t: TunnelRequest,
    pl: StreamPipeline,
    listener: string,
    transport: DownstreamTransport | null,
    protocol: string,
  ) {
    super();
    this.begin(pl, protocol, listener);
    this.tlsPeer = streamTransport(this, transport);
  }

  service(): string | undefined {
    return this.t.service;
  }

  method(): string | undefined {
    return this.t.method;
  }

  header(name: string): string | undefined {
    return this.t.header(name);
  }

  /** A tunnel's bytes are a stream of unknown length. */
  requestBodyLength(): number {
    return -1;
  }

  peer(): StreamPeer | null {
    return this.tlsPeer;
  }

  sendLocalReply(status: number): void {
    if (this.replied) return;
    this.setResponseFlag('LR');
    this.t.answer(status);
  }

  protected park(): void {
    // The relay holds the client connection (paused) and the bytes after the head: nothing to copy.
  }

  protected continueFrom(phase: DecodePhase): void {
    this.t.continueFrom(phase);
  }
}

/** node:http path: the 'upgrade' / 'connect' event's socket piped to a new upstream socket. */
class SocketRelay implements TunnelRelay {
  private up: net.Socket | null = null;
  private connected = false;
  /** The socket's counts when the tunnel began (the request head and earlier requests are not the tunnel's). */
  private readonly read0: number;
  private readonly written0: number;

  constructor(
    private readonly socket: net.Socket,
    private readonly early: Buffer,
  ) {
    this.read0 = socket.bytesRead - early.length;
    this.written0 = socket.bytesWritten;
  }

  transport(): DownstreamTransport | null {
    return this.socket;
  }

  refuse(status: number): void {
    if (!this.socket.destroyed) this.socket.end(closingReply(status));
  }

  open(t: TunnelRequest, cluster: Cluster, host: Host, head: string): void {
    const socket = this.socket;
    host.active++;
    // The cluster's socket: TLS per its tls_context, counted, connect (and handshake) timeout.
    const up = cluster.openSocket(host, cluster.connectTimeoutMs, HTTP1_ALPN);
    this.up = up;
    // 'error' and 'close' both tell of one failed connect: reported once (a retry opens another socket).
    let failed = false;
    const fail = (reason: string): void => {
      if (failed) return;
      failed = true;
      t.connectFailed(reason);
    };
    up.once(readyEvent(up), () => {
      this.connected = true;
      up.write(head);
      if (this.early.length > 0) up.write(this.early);
      up.once('data', (d: Buffer) => t.upstreamStatus(statusOf(d, 0, d.length)));
      socket.pipe(up);
      up.pipe(socket);
    });
    up.on('error', (err: Error) => {
      if (!this.connected) fail(err.message);
      else socket.destroy();
    });
    up.once('close', () => {
      host.active--;
      if (this.connected) socket.end();
      else fail('upstream closed before connecting');
    });
  }

  /** The client socket closed: the upstream goes too; the stream ends. */
  closed(t: TunnelRequest): void {
    const up = this.up;
    if (up !== null) up.destroy();
    t.ended(this.socket.bytesRead - this.read0, this.socket.bytesWritten - this.written0, up === null || !up.destroyed);
  }
}

/** node:http path: the 'upgrade' / 'connect' event's socket. */
export function tunnel(env: HttpEnv, req: http.IncomingMessage, socket: net.Socket, head: Buffer, connect: boolean): void {
  socket.on('error', () => {});
  // Request head: headers as received.
  const headers: Headers = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i].toLowerCase();
    const v = req.rawHeaders[i + 1];
    const cur = headers[k];
    headers[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  const relay = new SocketRelay(socket, head);
  const t = new TunnelRequest(env, relay, req.method ?? 'GET', req.url ?? '/', headers, connect);
  socket.once('close', () => relay.closed(t));
  t.start();
}
