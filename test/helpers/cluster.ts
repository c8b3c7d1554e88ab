/** A real Cluster (parsed from a MOSN cluster config, counters in a private array) for unit tests of upstream code. */
import { parseConfig } from '../../src/config';
import { ClusterManager, type Cluster } from '../../src/upstream/cluster';

export const CLUSTER_BASE = 100;

/** Cluster `up` with one host per port on 127.0.0.1; `extra` is merged into its config (tls_context, circuit_breakers...). */
export function testCluster(ports: readonly number[], extra: Record<string, unknown> = {}): Cluster {
  const cfg = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'up' } }] }] }] }],
    cluster_manager: { clusters: [{ name: 'up', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', connect_timeout: '1s', hosts: ports.map((p) => ({ address: `127.0.0.1:${p}` })), ...extra }] },
  });
  return new ClusterManager(cfg.clusters, new Float64Array(4096), { up: CLUSTER_BASE }).get('up')!;
}
