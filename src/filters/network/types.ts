/**
 * Network (L4) filters and the contract of a listener's filter chain.
 *
 *   accepted socket ─> listener filters (TLS inspector / handshake, protocol sniffing: they fill
 *                      ConnectionInfo) ─> filter_chain_match picks a chain ─> network filters in order
 *
 * Network filters run in order, Envoy's read-filter contract:
 *   - a read filter (createFilter) sees onNewConnection() and each read (onData); it answers
 *     Continue (the next filter runs / gets the bytes) or StopIteration (the bytes stop here;
 *     the filter may resume the chain later with callbacks.continueReading);
 *   - a terminal filter (onAccept / onAcceptWithData / onSocket) takes the connection: it
 *     installs its own handler and no later filter runs. A terminal filter that serves only some
 *     protocols (the `proxy` filter with fallback_for_unknown_protocol) says so with accepts():
 *     a connection it does not accept continues to the next filter (MOSN's fallback to tcp_proxy).
 *
 * Factories are built once per config snapshot and run per accepted connection.
 */
import type * as net from 'node:net';
import type { Connection } from '../../network/connection';
import type { ClusterManager } from '../../upstream/cluster';
import type { AccessLogWriter } from '../../log';
import type { FilterConfig, RouterConfig } from '../../config/types';

/** What a filter factory sees of its listener: the snapshot it was built under. */
export interface ListenerContext {
  readonly name: string;
  readonly counters: Float64Array;
  /** Base slot of this listener's counters. */
  readonly base: number;
  readonly clusters: ClusterManager;
  /** Listener-level idle timeout (ms, 0 = none). */
  readonly idleTimeoutMs: number;
  /** High watermark for downstream connections. */
  readonly bufferLimit: number;
  readonly accessLog: AccessLogWriter | null;
  /** servers[].routers of the listener's server in this snapshot (L7 proxy filters). */
  readonly routers?: readonly RouterConfig[];
  /** listeners[].stream_filters of this snapshot (validated; run by src/stream/pipeline.ts). */
  readonly streamFilters?: readonly FilterConfig[];
}

/** Read-filter verdicts (Envoy Network::FilterStatus). */
export const enum FilterStatus {
  Continue = 0,
  StopIteration = 1,
}

/** Application protocol found by the protocol-sniffing listener filter (src/proxy/detect.ts Sniffed). */
export type DetectedProtocol = 'unknown' | 'http1' | 'http2' | 'tls' | 'codec' | null;

/** What the listener filters learned about a connection; read by filter_chain_match and the filters. */
export interface ConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** 'tls' when the first bytes are a TLS ClientHello (the chain may terminate it), else 'raw_buffer'. */
  transportProtocol: 'raw_buffer' | 'tls';
  /** SNI of the ClientHello ('' = none). */
  serverName: string;
  /** ALPN protocols the client offered in its ClientHello. */
  applicationProtocols: readonly string[];
  /** ALPN protocol chosen in the handshake ('' = none / plaintext). */
  negotiatedProtocol: string;
  /** Protocol sniffing verdict (null = not sniffed). */
  detected: DetectedProtocol;
  /** With detected === 'codec': the codec's name (e.g. "bolt"). */
  codec: string;
}

export interface ReadFilterCallbacks {
  readonly connection: Connection;
  readonly info: ConnectionInfo;
  /**
   * Resumes the chain after this filter returned StopIteration: the next filter gets
   * buf[start, end) (bytes this filter held back; may be empty) as its first read.
   */
  continueReading(buf: Buffer, start: number, end: number): void;
}

/** A non-terminal read filter instance (one per connection). */
export interface ReadFilter {
  onNewConnection(): FilterStatus;
  /** buf[start, end) is valid during the call only (copy what you keep). */
  onData(buf: Buffer, start: number, end: number): FilterStatus;
}

export interface NetworkFilterFactory {
  /** Terminal: takes ownership of an accepted downstream connection (installs its handler). */
  onAccept(conn: Connection): void;
  /**
   * Terminal, optional: takes a connection earlier filters already read from; buf[start, end)
   * (valid during the call) are its first bytes.
   */
  onAcceptWithData?(conn: Connection, buf: Buffer, start: number, end: number): void;
  /**
   * Optional: takes the accepted plaintext socket itself (still paused, no Connection made), for
   * filters whose protocol stack reads sockets on its own (the HTTP proxy: node:http, node:http2).
   * When present, the listener calls it instead of onAccept. Bytes a listener filter peeked are
   * back in the socket's readable buffer.
   */
  onSocket?(socket: net.Socket): void;
  /**
   * Optional: whether this filter takes a connection with this info; false = the connection
   * continues to the next filter of the chain (closed, and counted, if none is left). Absent =
   * it takes every connection. The listener sniffs the protocol first when a filter before the
   * last one is selective.
   */
  accepts?(info: ConnectionInfo): boolean;
  /**
   * Optional: a read filter instance per connection instead of a terminal take. A factory with
   * createFilter is non-terminal: after its filter continues, the next filter runs.
   */
  createFilter?(cb: ReadFilterCallbacks): ReadFilter;
  /** Optional: the listener starts draining (close keep-alive connections gracefully). */
  onDrain?(): void;
  /**
   * Optional: a reload changed only the route configs this factory routes with. Compiles the
   * new table from `routers` (throws what a build would throw) and returns how to swap it in
   * and back (commit, rollback), so live connections route with it without being touched.
   * null: the factory cannot (its chain is rebuilt and its connections drained).
   */
  prepareRoutes?(routers: readonly RouterConfig[]): RouteSwap | null;
}

/** A prepared route-table swap of one filter factory (see prepareRoutes). */
export interface RouteSwap {
  apply(): void;
  undo(): void;
}

export type NetworkFilterFactoryBuilder = (config: Readonly<Record<string, unknown>>, ctx: ListenerContext) => NetworkFilterFactory;

const builders = new Map<string, NetworkFilterFactoryBuilder>();

export function registerNetworkFilter(type: string, builder: NetworkFilterFactoryBuilder): void {
  builders.set(type.toLowerCase(), builder);
}

export function networkFilterBuilder(type: string): NetworkFilterFactoryBuilder | undefined {
  return builders.get(type.toLowerCase());
}
