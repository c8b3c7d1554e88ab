/**
 * Network (L4) filters. A listener's filter chain ends in a terminal filter that takes the
 * connection (tcp_proxy today; the L7 `proxy` filter for Bolt, Dubbo and HTTP next). Factories
 * are built once per config snapshot and run per accepted connection.
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

export interface NetworkFilterFactory {
  /** Takes ownership of an accepted downstream connection (installs its handler). */
  onAccept(conn: Connection): void;
  /**
   * Optional: takes the accepted plaintext socket itself (still paused, no Connection made), for
   * filters whose protocol stack reads sockets on its own (the HTTP proxy: node:http, node:http2).
   * When present, the listener calls it instead of onAccept.
   */
  onSocket?(socket: net.Socket): void;
  /** Optional: the listener starts draining (close keep-alive connections gracefully). */
  onDrain?(): void;
}

export type NetworkFilterFactoryBuilder = (config: Readonly<Record<string, unknown>>, ctx: ListenerContext) => NetworkFilterFactory;

const builders = new Map<string, NetworkFilterFactoryBuilder>();

export function registerNetworkFilter(type: string, builder: NetworkFilterFactoryBuilder): void {
  builders.set(type.toLowerCase(), builder);
}

export function networkFilterBuilder(type: string): NetworkFilterFactoryBuilder | undefined {
  return builders.get(type.toLowerCase());
}
