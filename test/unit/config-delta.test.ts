/**
 * Workers get a config as a delta of their running one (src/worker/delta.ts): only the clusters
 * whose version is the new one travel, removed ones by name; applying it gives the same config.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { versionResources } from '../../src/config/versions';
import { applyDelta, configDelta } from '../../src/worker/delta';

function doc(clusters: Record<string, number>): Record<string, unknown> {
  return {
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'c0' } }] }] }] }],
    cluster_manager: { clusters: Object.entries(clusters).map(([name, port]) => ({ name, type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${port}` }] })) },
  };
}

test('a delta carries the new and changed clusters and the removed names; applied to the running config it gives the new one', () => {
  const v1 = parseConfig(doc({ c0: 1, c1: 2, c2: 3, c3: 4 }));
  const versions1 = versionResources(1, v1);
  const v2 = parseConfig(doc({ c0: 1, c1: 20, c3: 4, c4: 5 }));
  const versions2 = versionResources(2, v2, { config: v1, versions: versions1 });
  const d = configDelta(1, v1, v2, versions2, 2);
  assert.deepEqual(d.clusters.map((c) => c.name), ['c1', 'c4']);
  assert.deepEqual(d.removedClusters, ['c2']);
  assert.equal(JSON.stringify(d).includes('"raw"'), false, 'the raw document stays on the main thread');
  const applied = applyDelta(v1, 1, structuredClone(d));
  assert.deepEqual(
    [...applied.clusters].map((c) => `${c.name}:${c.hosts[0]!.address.port}`).sort(),
    [...v2.clusters].map((c) => `${c.name}:${c.hosts[0]!.address.port}`).sort(),
  );
  assert.deepEqual(applied.servers, v2.servers);
  assert.throws(() => applyDelta(v1, 7, d), /delta for version 1, but version 7 is running/);
});
