/**
 * Per-host upstream TLS in the cluster (src/upstream/transport-match.ts): the TLS each host uses
 * follows its transport-match metadata and tls_disable; an EDS-style host update that changes a
 * host's transport drains that host's pools only; a reload with the same match contexts keeps
 * them (and the pools), a changed one or a new source address makes connections anew.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import type { ClusterConfig, HostConfig } from '../../src/config/types';
import { ClusterManager, type Cluster } from '../../src/upstream/cluster';
import type { Host } from '../../src/upstream/lb';
import { Pki } from '../helpers/certs';

const pki = new Pki();
test.after(() => pki.remove());

function tlsCluster(): ClusterConfig {
  const cfg = parseConfig({
    servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'a' } }] }] }] }],
    cluster_manager: { clusters: [{ name: 'a', type: 'SIMPLE', hosts: [{ address: '127.0.0.1:1' }], tls_context: { status: true, ca_cert: pki.ca.cert, server_name: 'reviews' } }] },
  });
  return cfg.clusters[0];
}

const base = tlsCluster();
const mtls = base.tlsContext;
assert.ok(mtls);
const sidecar: HostConfig = { address: { host: '127.0.0.1', port: 1001 }, weight: 1, tlsMatch: { tlsMode: 'istio', other: 'x' } };
const legacy: HostConfig = { address: { host: '127.0.0.1', port: 1002 }, weight: 1 };
const istio: ClusterConfig = { ...base, tlsContext: undefined, hosts: [sidecar, legacy], tlsMatches: [{ name: 'tlsMode-istio', match: { tlsMode: 'istio' }, tlsContext: mtls }] };

function manager(c: ClusterConfig, previous?: ClusterManager): { m: ClusterManager; c: Cluster } {
  const m = new ClusterManager([c], new Float64Array(1024), { a: 100 }, previous);
  const cl = m.get('a');
  assert.ok(cl);
  return { m, c: cl };
}

function hostOf(c: Cluster, port: number): Host {
  const h = c.hosts.find((x) => x.port === port);
  assert.ok(h);
  return h;
}

/** Registers a pool on each host that counts its drains. */
function pools(c: Cluster): Map<number, number> {
  const drained = new Map<number, number>();
  for (const h of c.hosts) {
    drained.set(h.port, 0);
    c.addPool(h, 'h1', { drain: () => drained.set(h.port, (drained.get(h.port) ?? 0) + 1) });
  }
  return drained;
}

test('each host gets the TLS of the first matching entry, else the cluster default; tls_disable is plaintext', () => {
  const { c } = manager(istio);
  assert.equal(c.tlsFor(hostOf(c, 1001))?.config, mtls);
  assert.equal(c.tlsFor(hostOf(c, 1002)), null);
  const o = c.tlsOptions(hostOf(c, 1001), ['http/1.1']);
  assert.deepEqual(o?.ALPNProtocols, ['http/1.1']); // not Istio ALPN: the protocol only
  assert.equal(c.tlsOptions(hostOf(c, 1002), ['http/1.1']), null);
  // MOSN: the cluster's tls_context, one host plaintext.
  const { c: m } = manager({ ...base, hosts: [{ ...legacy, tlsDisable: true }, sidecar] });
  assert.equal(m.tlsFor(hostOf(m, 1002)), null);
  assert.equal(m.tlsFor(hostOf(m, 1001)), m.tls);
  assert.ok(m.tls !== null);
  // Istio mTLS context: HTTP offers Istio's names.
  const { c: i } = manager({ ...istio, tlsMatches: [{ name: 'i', match: { tlsMode: 'istio' }, tlsContext: { ...mtls, alpn: ['istio-peer-exchange', 'istio'] } }] });
  assert.deepEqual(i.tlsOptions(hostOf(i, 1001), ['h2'])?.ALPNProtocols, ['istio-h2', 'istio', 'h2']);
  assert.deepEqual(i.tlsOptions(hostOf(i, 1001))?.ALPNProtocols, ['istio-peer-exchange', 'istio']);
});

test('a host update that changes a host\'s transport drains only that host\'s pools', () => {
  const { c } = manager(istio);
  const drained = pools(c);
  c.updateHosts([{ ...sidecar, tlsMatch: {} }, legacy]); // the sidecar left the mesh
  assert.equal(c.tlsFor(hostOf(c, 1001)), null);
  assert.deepEqual([...drained], [[1001, 1], [1002, 0]]);
  c.updateHosts([{ ...sidecar, tlsMatch: {} }, { ...legacy, tlsMatch: { tlsMode: 'istio' } }]);
  assert.equal(c.tlsFor(hostOf(c, 1002))?.config, mtls);
  assert.deepEqual([...drained], [[1001, 1], [1002, 1]]);
});

test('reloads: same match contexts keep the pools; a changed context or source address drains them', () => {
  const first = manager(istio);
  const drained = pools(first.c);
  const same = manager({ ...istio, tlsMatches: istio.tlsMatches?.map((m) => ({ ...m })) }, first.m);
  assert.equal(same.c.tlsFor(hostOf(same.c, 1001)), first.c.tlsFor(hostOf(first.c, 1001)));
  assert.deepEqual([...drained], [[1001, 0], [1002, 0]]);
  const changed = manager({ ...istio, tlsMatches: [{ name: 'i', match: { tlsMode: 'istio' }, tlsContext: { ...mtls, serverName: 'other' } }] }, same.m);
  assert.notEqual(changed.c.tlsFor(hostOf(changed.c, 1001)), same.c.tlsFor(hostOf(same.c, 1001)));
  assert.deepEqual([...drained], [[1001, 1], [1002, 0]]);
  const again = pools(changed.c); // a drained pool leaves its host: register new ones
  manager({ ...istio, tlsMatches: changed.c.config.tlsMatches, upstreamBind: { sourceAddress: '127.0.0.6' } }, changed.m);
  assert.deepEqual([...again], [[1001, 1], [1002, 1]]);
});
