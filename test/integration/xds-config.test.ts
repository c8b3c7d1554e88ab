/**
 * xDS entry points: MOSN's istio sample configs (test/fixtures/mosn, as MOSN ships them) and the
 * xDS sample of its repo load unchanged; an Envoy v3 bootstrap in YAML validates and starts;
 * what cannot be honoured (TLS to the control plane, google_grpc, REST, a missing ADS cluster)
 * is refused with the JSON path.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { ConfigError, parseConfig } from '../../src/config';
import { loadAnyConfigFile } from '../../src/xds/bootstrap';
import { CLI, startSidecar } from '../helpers/sidecar';
import { AdsServer } from '../helpers/ads-server';
import { deadPort } from '../helpers/http';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mosn');

function validate(file: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, 'validate', '-c', file], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

test("MOSN's configs/istio152/mosn_xds.json and its xDS sample config load unchanged", () => {
  const a = validate(path.join(FIXTURES, 'istio152_mosn_xds.json'));
  assert.equal(a.code, 0, a.out);
  const c = loadAnyConfigFile(path.join(FIXTURES, 'istio152_mosn_xds.json'));
  assert.equal(c.xds?.adsCluster, 'xds-grpc');
  assert.deepEqual(c.xds?.servers, [{ host: 'istio-pilot.istio-system.svc.cluster.local', port: 15010 }]);
  assert.equal(c.xds?.delta, false);
  assert.equal(c.servers[0]!.listeners.length, 0, 'listeners come over LDS');
  const b = validate(path.join(FIXTURES, 'xds-server-sample_config.json'));
  assert.equal(b.code, 0, b.out);
  const s = loadAnyConfigFile(path.join(FIXTURES, 'xds-server-sample_config.json'));
  assert.deepEqual(s.xds?.servers, [{ host: '127.0.0.1', port: 9002 }]);
  assert.equal(s.xds?.setNodeOnFirstMessageOnly, true);
  assert.deepEqual(s.xds?.node, { id: 'test-id', cluster: 'test-cluster', metadata: undefined, locality: undefined });
});

const ENVOY_YAML = `
node:
  id: sidecar~10.0.0.7~app-5d9c.default~default.svc.cluster.local
  cluster: app.default
  metadata:
    ISTIO_VERSION: 1.20.0
    INSTANCE_IPS: 10.0.0.7
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 0 }
dynamic_resources:
  lds_config: { ads: {}, resource_api_version: V3 }
  cds_config: { ads: {}, resource_api_version: V3 }
  ads_config:
    api_type: DELTA_GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc: { cluster_name: xds-grpc }
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: ADS_PORT }
  - name: local-app
    type: STATIC
    connect_timeout: 0.25s
    load_assignment:
      cluster_name: local-app
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: 8080 }
layered_runtime: { layers: [{ name: rtds, static_layer: {} }] }
`;

test('an Envoy v3 bootstrap in YAML (pilot-agent style) validates and `outrigger start -c envoy-bootstrap.yaml` connects to ADS', { timeout: 30_000 }, async () => {
  const ads = await AdsServer.start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-xds-cfg-'));
  const file = path.join(dir, 'envoy-bootstrap.yaml');
  fs.writeFileSync(file, ENVOY_YAML.replace('ADS_PORT', String(ads.port)));
  let sc;
  try {
    const v = validate(file);
    assert.equal(v.code, 0, v.out);
    const c = loadAnyConfigFile(file);
    assert.equal(c.xds?.delta, true);
    assert.deepEqual(c.xds?.staticClusters.map((x) => (x.json as { name: string }).name), ['local-app']);
    sc = await startSidecar({}, { args: ['-c', file] });
    const first = await ads.waitFor((r) => r.kind === 'cluster');
    assert.equal(first.mode, 'delta');
    const node = first.delta!.node as { id: string; cluster: string };
    assert.equal(node.id, 'sidecar~10.0.0.7~app-5d9c.default~default.svc.cluster.local');
    assert.equal(node.cluster, 'app.default');
    // The static Envoy cluster is a running cluster.
    const dump = await (await fetch(`http://127.0.0.1:${sc.adminPort}/api/v1/config_dump`)).json() as { static: unknown; dynamic: Record<string, unknown> };
    assert.ok(dump.static && dump.dynamic['cds'], 'config_dump has static and dynamic parts');
    const stats = await sc.stats() as { clusters: Record<string, unknown> };
    assert.ok(stats.clusters['local-app'], 'the static Envoy cluster runs');
  } finally {
    if (sc) assert.equal(await sc.terminate(), 0);
    await ads.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("pilot-agent's local xDS proxy: the ADS cluster on a unix socket (pipe.path)", { timeout: 30_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-xds-uds-'));
  const sock = path.join(dir, 'XDS');
  const ads = await AdsServer.startUnix(sock);
  const doc = YAML.parse(ENVOY_YAML.replace('ADS_PORT', '1')) as Record<string, any>;
  doc.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address = { pipe: { path: sock } };
  let sc;
  try {
    assert.equal(parseConfig(doc).xds?.target, `unix:${sock}`);
    sc = await startSidecar(doc);
    const first = await ads.waitFor((r) => r.kind === 'cluster');
    assert.equal(first.mode, 'delta');
  } finally {
    if (sc) assert.equal(await sc.terminate(), 0);
    await ads.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('/ready waits for the first CDS and LDS answers (Envoy initialization); the client keeps retrying a control plane that is not there yet', { timeout: 30_000 }, async () => {
  const port = await deadPort();
  let sc;
  let ads: AdsServer | undefined;
  try {
    sc = await startSidecar(YAML.parse(ENVOY_YAML.replace('ADS_PORT', String(port))));
    const ready = async (): Promise<number> => (await fetch(`http://127.0.0.1:${sc!.adminPort}/ready`)).status;
    assert.equal(await ready(), 503, 'not ready before the control plane answered');
    ads = await AdsServer.start(port);
    const end = Date.now() + 15_000;
    while ((await ready()) !== 200) {
      assert.ok(Date.now() < end, 'ready once CDS and LDS were answered');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The ACK of the CDS response is sent once it is applied, which can be just after /ready turns.
    const ackBy = Date.now() + 5000;
    while (!ads.requests.some((r) => r.kind === 'cluster' && r.nonce !== '') && Date.now() < ackBy) await new Promise((r) => setTimeout(r, 20));
    assert.ok(ads.requests.some((r) => r.kind === 'cluster' && r.nonce !== ''), 'the CDS response was answered');
  } finally {
    if (sc) assert.equal(await sc.terminate(), 0);
    await ads?.stop();
  }
});

function errorsOf(doc: unknown): string[] {
  try {
    parseConfig(doc);
  } catch (e) {
    if (e instanceof ConfigError) return e.errors.map((x) => `${x.path}: ${x.message}`);
    throw e;
  }
  return [];
}

test('what the xDS client cannot honour is refused with the JSON path', () => {
  const base = YAML.parse(ENVOY_YAML.replace('ADS_PORT', '15010')) as Record<string, any>;
  const clone = (): Record<string, any> => JSON.parse(JSON.stringify(base));

  const tls = clone();
  tls.static_resources.clusters[0].transport_socket = { name: 'envoy.transport_sockets.tls', typed_config: {} };
  assert.ok(errorsOf(tls).some((e) => e.startsWith('static_resources.clusters[0].transport_socket: TLS to the xDS server is not supported')), errorsOf(tls).join('\n'));

  const google = clone();
  google.dynamic_resources.ads_config.grpc_services = [{ google_grpc: { target_uri: 'istiod:15012' } }];
  assert.ok(errorsOf(google).some((e) => e.startsWith('dynamic_resources.ads_config.grpc_services[0].google_grpc:')));

  const rest = clone();
  rest.dynamic_resources.ads_config.api_type = 'REST';
  assert.ok(errorsOf(rest).includes('dynamic_resources.ads_config.api_type: "REST": only GRPC and DELTA_GRPC (ADS) are supported'));

  const missing = clone();
  missing.dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name = 'nope';
  assert.ok(errorsOf(missing).includes('static_resources.clusters: the ADS cluster "nope" is not defined'));

  const v2 = clone();
  v2.dynamic_resources.ads_config.transport_api_version = 'V2';
  assert.ok(errorsOf(v2).some((e) => e.includes('only the v3 xDS API is supported')));

  const file = clone();
  file.dynamic_resources.lds_config = { path: '/etc/lds.yaml' };
  assert.ok(errorsOf(file).some((e) => e.startsWith('dynamic_resources.lds_config')));

  const noServers = clone();
  delete noServers.dynamic_resources;
  assert.ok(errorsOf(noServers).some((e) => e.startsWith('static_resources: static_resources without dynamic_resources')));
});
