/**
 * The ADS client and the resource store against the test ADS server (test/helpers/ads-server.ts),
 * both protocol variants: subscriptions, nonces, ACK/NACK with error_detail, warming, a reload
 * the server refuses, coalescing, reconnects. The proxy itself is replaced by a recorder of the
 * configs handed to Server.reload() (the traffic tests are in xds-traffic.test.ts).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { OutriggerConfig } from '../../src/config/types';
import { XdsClient } from '../../src/xds/client';
import { XdsStore } from '../../src/xds/store';
import { TYPE_URL, type XdsTranslator } from '../../src/xds/types';
import { translator } from '../../src/xds/translate';
import { istioNode } from '../../src/xds/node';
import { AdsServer, type RecordedRequest } from '../helpers/ads-server';
import { Pki } from '../helpers/certs';
import { loadFixtures } from '../unit/xds/fixtures';
import { ConfigError } from '../../src/config/errors';
import { checkBuild } from '../../src/worker/snapshot';
import * as fs from 'node:fs';
import { edsCluster, endpoints, httpListener, routeConfig, standInTranslator, staticCluster } from '../helpers/xds-resources';

const BASE: OutriggerConfig = {
  servers: [{ defaultLogPath: 'stdout', defaultLogLevel: 'warn', processor: 1, gracefulTimeoutMs: 1000, listeners: [], routers: [] }],
  clusters: [],
  admin: { address: { host: '127.0.0.1', port: 0 } },
  raw: {},
};

const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };

interface Harness {
  readonly server: AdsServer;
  readonly store: XdsStore;
  readonly client: XdsClient;
  /** Every config applied, in order. */
  readonly applied: OutriggerConfig[];
  /** Make the next apply fail with this message. */
  failNext: string | undefined;
  close(): Promise<void>;
}

async function harness(delta: boolean, opts: { coalesceMs?: number; server?: AdsServer; translator?: XdsTranslator } = {}): Promise<Harness> {
  const server = opts.server ?? (await AdsServer.start());
  const h: Harness = {
    server, applied: [], failNext: undefined,
    store: undefined as unknown as XdsStore, client: undefined as unknown as XdsClient,
    async close() {
      h.client.close();
      h.store.close();
      await server.stop();
    },
  };
  const store = new XdsStore({
    base: BASE, translator: opts.translator ?? standInTranslator, log: quiet, coalesceMs: opts.coalesceMs,
    apply: async (c) => {
      if (h.failNext !== undefined) {
        const m = h.failNext;
        h.failNext = undefined;
        throw new Error(m);
      }
      h.applied.push(c);
    },
  });
  const client = new XdsClient({
    target: `127.0.0.1:${server.port}`, delta, node: istioNode({ ip: '10.1.2.3', podName: 'p1', namespace: 'ns1' }), setNodeOnFirstMessageOnly: true,
    store, log: quiet, initialBackoffMs: 50, maxBackoffMs: 200,
  });
  Object.assign(h, { store, client });
  client.start();
  return h;
}

const last = (h: Harness): OutriggerConfig | undefined => h.applied[h.applied.length - 1];
const clusterNames = (c: OutriggerConfig | undefined): string[] => (c?.clusters ?? []).map((x) => x.name);
const listenerNames = (c: OutriggerConfig | undefined): string[] => (c?.servers[0]?.listeners ?? []).map((x) => x.name);

/** The ACK or NACK answering the last response the server sent for `kind`. */
function answerTo(h: Harness, kind: keyof typeof TYPE_URL, from = 0): Promise<RecordedRequest> {
  const nonce = h.server.lastNonce(kind);
  assert.notEqual(nonce, '', `a ${kind} response was sent`);
  return h.server.waitFor((r) => r.kind === kind && r.nonce === nonce, 10_000, from);
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const delta of [false, true]) {
  const mode = delta ? 'delta' : 'SotW';

  test(`${mode}: wildcard CDS/LDS with the Istio node on the first request only; EDS/RDS by name; warming; ACKs`, async () => {
    const h = await harness(delta);
    try {
      const s = h.server;
      const cds = await s.waitFor((r) => r.kind === 'cluster');
      const first = s.requests[0]!;
      const node = (first.sotw ?? first.delta)!.node as { id: string; metadata: { fields: Record<string, { stringValue?: string }> } };
      assert.equal(node.id, 'sidecar~10.1.2.3~p1.ns1~ns1.svc.cluster.local');
      assert.equal(node.metadata.fields['INSTANCE_IPS']!.stringValue, '10.1.2.3');
      assert.ok(node.metadata.fields['ISTIO_VERSION']!.stringValue);
      assert.deepEqual(delta ? cds.delta!.resourceNamesSubscribe : cds.sotw!.resourceNames, [], 'CDS is a wildcard subscription');
      await s.waitFor((r) => r.kind === 'listener');
      for (const r of s.requests.slice(1)) assert.equal((r.sotw ?? r.delta)!.node ?? null, null, 'node only on the first message');

      // A cluster without endpoints is not used: it waits for its ClusterLoadAssignment.
      s.set('cluster', [edsCluster('outbound|80||a.ns1.svc.cluster.local')]);
      const ackCds = await answerTo(h, 'cluster');
      assert.equal(ackCds.error, undefined);
      if (!delta) assert.equal(ackCds.sotw!.versionInfo, s.responses.find((x) => x.nonce === ackCds.nonce)!.version, 'ACK carries the version');
      const edsSub = await s.waitFor((r) => r.kind === 'endpoints' && r.nonce === '');
      assert.deepEqual(delta ? edsSub.delta!.resourceNamesSubscribe : edsSub.sotw!.resourceNames, ['outbound|80||a.ns1.svc.cluster.local']);
      assert.deepEqual(clusterNames(last(h)), [], 'the cluster warms until its endpoints arrive');

      s.set('endpoints', [endpoints('outbound|80||a.ns1.svc.cluster.local', [9001, 9002])]);
      assert.equal((await answerTo(h, 'endpoints')).error, undefined);
      await until(() => clusterNames(last(h)).length === 1, 'the warm cluster');
      assert.deepEqual(last(h)!.clusters[0]!.hosts.map((x) => x.address.port), [9001, 9002]);

      // A listener waits for its route configuration.
      s.set('listener', [httpListener('0.0.0.0_8080', 18080, '8080')]);
      await answerTo(h, 'listener');
      const rdsSub = await s.waitFor((r) => r.kind === 'route' && r.nonce === '');
      assert.deepEqual(delta ? rdsSub.delta!.resourceNamesSubscribe : rdsSub.sotw!.resourceNames, ['8080']);
      assert.deepEqual(listenerNames(last(h)), [], 'the listener warms until its routes arrive');
      s.set('route', [routeConfig('8080', [{ prefix: '/', cluster: 'outbound|80||a.ns1.svc.cluster.local' }])]);
      assert.equal((await answerTo(h, 'route')).error, undefined);
      await until(() => listenerNames(last(h)).length === 1, 'the warm listener');
      assert.deepEqual(last(h)!.servers[0]!.routers.map((r) => r.name), ['8080']);

      // An endpoints push changes hosts only.
      s.set('endpoints', [endpoints('outbound|80||a.ns1.svc.cluster.local', [9003])]);
      await answerTo(h, 'endpoints');
      await until(() => last(h)!.clusters[0]!.hosts[0]!.address.port === 9003, 'the new endpoints');
      const dump = h.store.dump() as Record<string, { resources: { name: string; version: string }[]; version_info: string }>;
      assert.equal(dump['eds']!.resources[0]!.name, 'outbound|80||a.ns1.svc.cluster.local');
      assert.ok(dump['cds']!.version_info !== '');
    } finally {
      await h.close();
    }
  });

  test(`${mode}: a bad resource is NACKed with error_detail naming it; traffic config stays; ${delta ? 'the good ones apply' : 'the whole response is rejected'}`, async () => {
    const h = await harness(delta);
    try {
      const s = h.server;
      await s.waitFor((r) => r.kind === 'listener');
      s.set('cluster', [staticCluster('good', [9001])]);
      const ack = await answerTo(h, 'cluster');
      assert.equal(ack.error, undefined);
      await until(() => clusterNames(last(h)).includes('good'), 'good');
      const goodVersion = s.responses.find((x) => x.nonce === ack.nonce)!.version;
      const reloads = h.applied.length;

      s.set('cluster', [staticCluster('good', [9001]), staticCluster('good2', [9002]), { name: 'bad', type: 'LOGICAL_DNS', connect_timeout: '1s' }]);
      const nack = await answerTo(h, 'cluster');
      assert.ok(nack.error, 'NACK');
      assert.match(nack.error!, /^bad: type: cluster type LOGICAL_DNS is not supported/);
      if (!delta) assert.equal(nack.sotw!.versionInfo, goodVersion, 'a SotW NACK carries the previous version');
      await new Promise((r) => setTimeout(r, 100));
      if (delta) {
        await until(() => clusterNames(last(h)).includes('good2'), 'the good resource of the delta response');
        assert.ok(!clusterNames(last(h)).includes('bad'));
      } else {
        assert.equal(h.applied.length, reloads, 'nothing of a rejected SotW response is applied');
        assert.deepEqual(clusterNames(last(h)), ['good']);
      }
      const dump = h.store.dump() as Record<string, { last_nack: { detail: string } | null }>;
      assert.match(dump['cds']!.last_nack!.detail, /bad: type/);

      // The next good push is ACKed again.
      s.set('cluster', [staticCluster('good', [9001]), staticCluster('good3', [9003])]);
      const ack2 = await answerTo(h, 'cluster');
      assert.equal(ack2.error, undefined);
      await until(() => clusterNames(last(h)).includes('good3'), 'good3');
      assert.ok(!clusterNames(last(h)).includes('good2'), 'removed by the new state');
    } finally {
      await h.close();
    }
  });

  test(`${mode}: a config the server refuses is NACKed with its message and not kept`, async () => {
    const h = await harness(delta);
    try {
      const s = h.server;
      await s.waitFor((r) => r.kind === 'listener');
      s.set('cluster', [staticCluster('a', [9001])]);
      await answerTo(h, 'cluster');
      await until(() => clusterNames(last(h)).includes('a'), 'a');
      h.failNext = 'listener x: address change needs a restart';
      s.set('cluster', [staticCluster('a', [9001]), staticCluster('b', [9002])]);
      const nack = await answerTo(h, 'cluster');
      assert.match(nack.error ?? '', /the assembled config was refused: listener x: address change needs a restart/);
      assert.deepEqual(clusterNames(last(h)), ['a']);
      assert.deepEqual(Object.keys(h.store.acceptedVersions('cluster')), ['a'], 'the refused update is not accepted');
    } finally {
      await h.close();
    }
  });

  test(`${mode}: the control plane restarts mid-stream; the client reconnects with what it holds and converges`, async () => {
    const h = await harness(delta);
    try {
      const s = h.server;
      await s.waitFor((r) => r.kind === 'listener');
      s.set('cluster', [edsCluster('c1')]);
      await answerTo(h, 'cluster');
      s.set('endpoints', [endpoints('c1', [9001])]);
      await answerTo(h, 'endpoints');
      await until(() => clusterNames(last(h)).includes('c1'), 'c1');
      const cdsVersion = s.responses.filter((x) => x.kind === 'cluster').pop()!.version;
      const from = s.requests.length;
      await s.restart(200);
      const again = await s.waitFor((r) => r.kind === 'cluster' && r.nonce === '', 10_000, from);
      assert.ok(again.stream > 1, 'a new stream');
      if (delta) assert.deepEqual(again.delta!.initialResourceVersions, { c1: cdsVersion }, 'delta: initial_resource_versions');
      else assert.equal(again.sotw!.versionInfo, cdsVersion, 'SotW: the last accepted version');
      assert.ok((again.sotw ?? again.delta)!.node, 'the node again on the new stream');
      const eds = await s.waitFor((r) => r.kind === 'endpoints' && r.nonce === '', 10_000, from);
      assert.deepEqual(delta ? eds.delta!.resourceNamesSubscribe : eds.sotw!.resourceNames, ['c1']);
      // Converges on what the control plane now holds.
      s.set('endpoints', [endpoints('c1', [9005])]);
      await until(() => last(h)!.clusters.find((c) => c.name === 'c1')?.hosts[0]?.address.port === 9005, 'converged endpoints');
    } finally {
      await h.close();
    }
  });
}

test('a burst of updates is applied by fewer reloads than updates (coalescing)', async () => {
  const h = await harness(false, { coalesceMs: 50 });
  try {
    const s = h.server;
    await s.waitFor((r) => r.kind === 'listener');
    s.set('cluster', [staticCluster('a', [9000])]);
    await until(() => clusterNames(last(h)).includes('a'), 'a');
    const before = h.applied.length;
    for (let i = 1; i <= 20; i++) s.set('cluster', [staticCluster('a', [9000 + i])]);
    await until(() => last(h)!.clusters[0]!.hosts[0]!.address.port === 9020, 'the last update');
    await answerTo(h, 'cluster');
    const reloads = h.applied.length - before;
    assert.ok(reloads < 20, `${reloads} reloads for 20 updates`);
    const acks = s.requests.filter((r) => r.kind === 'cluster' && r.nonce !== '' && r.error === undefined).length;
    assert.ok(acks >= 21, 'every response is still ACKed');
  } finally {
    await h.close();
  }
});

test('SotW: a resource whose bytes do not decode, or of another type, is NACKed by position with the reason', async () => {
  const h = await harness(false);
  try {
    const s = h.server;
    await s.waitFor((r) => r.kind === 'listener');
    s.setRaw('cluster', 'junk', { typeUrl: TYPE_URL.cluster, value: Buffer.from([0x0a, 0xff, 0xff, 0xff]) });
    const nack = await answerTo(h, 'cluster');
    assert.match(nack.error ?? '', /^resources\[0\]: cannot decode: /);
    s.set('cluster', []);
    assert.equal((await answerTo(h, 'cluster')).error, undefined, 'recovers on the next good response');
    s.setRaw('cluster', 'wrong-type', { typeUrl: TYPE_URL.listener, value: Buffer.alloc(0) });
    assert.match((await answerTo(h, 'cluster')).error ?? '', /^resources\[0\]: type type\.googleapis\.com\/envoy\.config\.listener\.v3\.Listener in a .*Cluster response/);
  } finally {
    await h.close();
  }
});

test('scale: 5,000 EDS clusters + 5,000 ClusterLoadAssignments, then a one-endpoint change (client, store and the real translator; measured)', { timeout: 120_000 }, async (t) => {
  const h = await harness(true, { translator });
  try {
    const s = h.server;
    await s.waitFor((r) => r.kind === 'listener');
    const N = 5000;
    const names = Array.from({ length: N }, (_, i) => `outbound|80||svc-${i}.ns.svc.cluster.local`);
    const heap0 = process.memoryUsage().heapUsed;
    let t0 = Date.now();
    s.set('cluster', names.map((n) => edsCluster(n)));
    s.set('endpoints', names.map((n, i) => endpoints(n, [10000 + (i % 50000)])));
    await until(() => clusterNames(last(h)).length === N, 'all clusters warm', 100_000);
    const full = Date.now() - t0;
    const heap = process.memoryUsage().heapUsed - heap0;
    t0 = Date.now();
    s.set('endpoints', names.map((n, i) => endpoints(n, [i === 7 ? 9999 : 10000 + (i % 50000)])));
    await until(() => last(h)!.clusters.find((c) => c.name === names[7])!.hosts[0]!.address.port === 9999, 'the one-endpoint change', 60_000);
    const one = Date.now() - t0;
    t.diagnostic(`5,000 clusters + 5,000 endpoints: ${full} ms to ACK and assemble (gRPC, decode, translate, warm; no proxy reload), store heap +${Math.round(heap / 1048576)} MiB; one-endpoint change: ${one} ms`);
    // Delta sends only the changed ClusterLoadAssignment.
    const lastEds = s.responses.filter((r) => r.kind === 'endpoints').pop()!;
    assert.deepEqual(lastEds.names, [names[7]]);
  } finally {
    await h.close();
  }
});

/** Names of `names` that a NACK detail rejects (`name: path: reason`), and the rest of the detail checked to be documented refusals. */
function rejectedBy(detail: string | undefined, names: readonly string[]): string[] {
  if (detail === undefined) return [];
  assert.doesNotMatch(detail, /assembled config was refused|Cannot read|undefined|TypeError/, 'a NACK is a named refusal, never a crash');
  const out = names.filter((n) => detail.includes(`${n}: `));
  assert.ok(out.length > 0, `the NACK names the resources: ${detail}`);
  for (const part of detail.split(/; (?=\S+: )/)) assert.match(part, /not supported|not merged yet|needs /, `documented reason: ${part}`);
  return out;
}

for (const delta of [false, true]) {
  test(`${delta ? 'delta' : 'SotW'}: an Istio-shaped sidecar push (virtualOutbound, virtualInbound with inspectors and mTLS, outbound HTTP/TCP, EDS with localities, SDS) is ACKed or NACKed only for named, documented reasons, and what is accepted builds`, { timeout: 60_000 }, async (t) => {
    const pki = new Pki();
    const leaf = pki.issue({ cn: 'app.default', ips: ['127.0.0.1'], usage: 'server' });
    const fx = loadFixtures({ cert: fs.readFileSync(leaf.cert, 'utf8'), key: fs.readFileSync(leaf.key, 'utf8'), ca: fs.readFileSync(pki.ca.cert, 'utf8') });
    const h = await harness(delta, { translator });
    // What Server.reload() would refuse: the main thread's build of every listener, route and cluster.
    const opts = h.store['opts'] as { apply: (c: OutriggerConfig) => Promise<void> };
    const record = opts.apply;
    opts.apply = async (c) => {
      const issues = checkBuild(c);
      if (issues.length > 0) throw new ConfigError(issues);
      await record(c);
    };
    try {
      const s = h.server;
      await s.waitFor((r) => r.kind === 'listener');
      s.setDecoded('secret', fx.secrets);
      s.setDecoded('cluster', fx.clusters);
      s.setDecoded('endpoints', fx.endpoints);
      s.setDecoded('listener', fx.listeners);
      s.setDecoded('route', fx.routes);
      const clusterNamesAll = fx.clusters.map((c) => String(c['name']));
      const listenerNamesAll = fx.listeners.map((l) => String(l['name']));
      const cds = await answerTo(h, 'cluster');
      const lds = await answerTo(h, 'listener');
      const badClusters = rejectedBy(cds.error, clusterNamesAll);
      const badListeners = rejectedBy(lds.error, listenerNamesAll);
      t.diagnostic(`CDS: ${cds.error ? `NACK (${badClusters.join(', ')})` : 'ACK'}; LDS: ${lds.error ? `NACK (${badListeners.join(', ')})` : 'ACK'}`);
      if (cds.error) t.diagnostic(`CDS reasons: ${cds.error}`);
      if (lds.error) t.diagnostic(`LDS reasons: ${lds.error}`);
      // Delta applies the good resources of a response; SotW rejects a response with a bad one whole.
      const goodListeners = lds.error && !delta ? [] : listenerNamesAll.filter((n) => !badListeners.includes(n));
      const goodClusters = cds.error && !delta ? [] : clusterNamesAll.filter((n) => !badClusters.includes(n));
      assert.deepEqual(Object.keys(h.store.acceptedVersions('cluster')).sort(), [...goodClusters].sort());
      await until(() => listenerNames(last(h)).length === goodListeners.length, `${goodListeners.length} warm listeners`, 20_000);
      if (goodListeners.length > 0) {
        const route = await answerTo(h, 'route');
        assert.equal(route.error, undefined, `RDS: ${route.error}`);
      }
      // A cluster warms once its ClusterLoadAssignment is here: an EDS cluster the push has none for keeps warming.
      const cla = new Set(fx.endpoints.map((x) => String(x['clusterName'])));
      const edsOf = (n: string): string | undefined => {
        const c = fx.clusters.find((x) => x['name'] === n)!;
        return c['type'] === 'EDS' ? String((c['edsClusterConfig'] as { serviceName?: string }).serviceName ?? n) : undefined;
      };
      const warm = goodClusters.filter((n) => edsOf(n) === undefined || cla.has(edsOf(n)!));
      await until(() => clusterNames(last(h)).length === warm.length, `${warm.length} warm clusters`, 20_000);
      assert.deepEqual([...clusterNames(last(h))].sort(), [...warm].sort());
      const dumped = (h.store.dump() as { cds: { resources: { name: string; warming: boolean }[] } }).cds.resources;
      for (const n of goodClusters) assert.equal(dumped.find((r) => r.name === n)!.warming, !warm.includes(n), `${n} warming in config_dump`);
      assert.ok(delta ? listenerNames(last(h)).includes('virtualInbound') || badListeners.includes('virtualInbound') : true);
    } finally {
      await h.close();
      pki.remove();
    }
  });
}
