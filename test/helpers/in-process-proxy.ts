/** A listener's `proxy` filter (RPC or HTTP) built in this process with given stream filters, serving on a port of its own. */
import * as net from 'node:net';
import { parseConfig } from '../../src/config';
import type { ListenerContext } from '../../src/filters/network/types';
import type { FilterConfig } from '../../src/config/types';
import { ClusterManager } from '../../src/upstream/cluster';
import { StatsLayout } from '../../src/stats/layout';
import { Connection, type ConnectionHandler } from '../../src/network/connection';
import { networkFilterBuilder, type NetworkFilterFactoryBuilder } from '../../src/filters/network/types';
import '../../src/filters/stream';
import '../../src/proxy/proxy';
import '../../src/http/filter';

const NOOP_HANDLER: ConnectionHandler = { onData() {}, onEnd() {}, onClose() {}, onHighWatermark() {}, onLowWatermark() {} };

/** The first listener of `doc` with `filters` as its stream filters; `cluster` gets a stats slot. */
export async function inProcessProxy(doc: Record<string, unknown>, cluster: string, filters: FilterConfig[]): Promise<{ port: number; server: net.Server }> {
  const cfg = parseConfig(doc);
  const lc = cfg.servers[0].listeners[0];
  const layout = new StatsLayout();
  const counters = new Float64Array(1 << 14);
  const clusters = new ClusterManager(cfg.clusters, counters, { [cluster]: layout.clusterBase(cluster) });
  const ctx: ListenerContext = {
    name: lc.name, counters, base: layout.listenerBase(lc.name), clusters, idleTimeoutMs: 0, bufferLimit: 1 << 20, accessLog: null,
    routers: cfg.servers[0].routers, streamFilters: filters,
  };
  const factory = (networkFilterBuilder('proxy') as NetworkFilterFactoryBuilder)(lc.filterChains[0].filters[0].config, ctx);
  const server = net.createServer((sock) => {
    if (factory.onSocket !== undefined) factory.onSocket(sock);
    else factory.onAccept(Connection.accept(sock, NOOP_HANDLER, 1 << 20));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, server };
}
