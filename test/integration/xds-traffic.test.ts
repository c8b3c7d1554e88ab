/**
 * Traffic through listeners, routes and clusters that arrived only over xDS: the real CLI started
 * on an Envoy v3 bootstrap (YAML, pilot-agent style) or MOSN's dynamic_resources form (JSON), fed
 * by the test ADS server. HTTP/1.1 (curl), HTTP/2 (curl --http2-prior-knowledge), gRPC
 * (@grpc/grpc-js), TCP and Bolt (sofa-rpc-node); NACK with error_detail while traffic keeps the
 * old config; warming of a listener waiting for RDS; a control-plane restart mid-stream.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as YAML from 'yaml';
import { AdsServer } from '../helpers/ads-server';
import { Pki, serialOf } from '../helpers/certs';
import { backend, deadPort, run } from '../helpers/http';
import { connect, echoServer } from '../helpers/net';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { sofaClient, startSofaServer } from '../helpers/sofa';
import { edsCluster, endpoints, httpListener, routeConfig, staticCluster, tcpListener } from '../helpers/xds-resources';

const PROTO = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'echo.proto');

/** A pilot-agent style bootstrap: node, admin, ADS over a static cluster. */
function bootstrap(adsPort: number, delta: boolean): Record<string, unknown> {
  return {
    node: {
      id: 'sidecar~127.0.0.1~app-1.default~default.svc.cluster.local',
      cluster: 'app.default',
      metadata: { ISTIO_VERSION: '1.20.0', INSTANCE_IPS: '127.0.0.1', NAMESPACE: 'default', LABELS: { app: 'app' } },
    },
    admin: { access_log_path: '/dev/null', address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    dynamic_resources: {
      lds_config: { ads: {}, resource_api_version: 'V3' },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      ads_config: {
        api_type: delta ? 'DELTA_GRPC' : 'GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
      },
    },
    static_resources: {
      clusters: [{
        name: 'xds-grpc', type: 'STATIC', connect_timeout: '1s', typed_extension_protocol_options: {},
        load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: adsPort } } } }] }] },
      }],
    },
  };
}

async function startOn(doc: Record<string, unknown>, yaml: boolean): Promise<RunningSidecar> {
  if (!yaml) return startSidecar(doc);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-xds-'));
  const file = path.join(dir, 'envoy-bootstrap.yaml');
  fs.writeFileSync(file, YAML.stringify(doc));
  return startSidecar({}, { args: ['-c', file] });
}

async function curl(port: number, urlPath: string, extra: string[] = []): Promise<{ code: number; body: string; err?: string }> {
  const r = await run('curl', ['-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', ...extra, `http://127.0.0.1:${port}${urlPath}`]);
  const i = r.stdout.lastIndexOf('\n');
  const code = Number(r.stdout.slice(i + 1));
  return code === 0 ? { code, body: r.stdout.slice(0, i), err: r.stderr.trim() } : { code, body: r.stdout.slice(0, i) };
}

/** The sidecar under test: its output's tail goes into a timeout's message. */
let watched: RunningSidecar | undefined;

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    try {
      last = await probe();
      if (ok(last)) return last;
    } catch {
      // not there yet
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})\nsidecar output (tail):\n${(watched?.output() ?? '').slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tcpRoundTrip(port: number, text: string): Promise<string> {
  return connect(port).then(
    (s) =>
      new Promise<string>((resolve, reject) => {
        let got = '';
        s.on('data', (d: Buffer) => {
          got += d.toString();
          if (got.length >= text.length) {
            s.destroy();
            resolve(got);
          }
        });
        s.on('error', reject);
        s.write(text);
      }),
  );
}

function grpcUnary(port: number, message: string): Promise<string> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, defaults: true })) as unknown as {
    outrigger: { test: { Echo: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & { Unary: (r: object, o: object, cb: (e: Error | null, v: { message: string }) => void) => void } } };
  };
  const c = new pkg.outrigger.test.Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    c.Unary({ message }, { deadline: Date.now() + 5000 }, (e, v) => {
      c.close();
      if (e) reject(e);
      else resolve(v.message);
    });
  });
}

async function startGrpcEcho(): Promise<{ server: grpc.Server; port: number }> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, defaults: true })) as unknown as {
    outrigger: { test: { Echo: { service: grpc.ServiceDefinition } } };
  };
  const server = new grpc.Server();
  server.addService(pkg.outrigger.test.Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<{ message: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { message: `echo ${call.request.message}`, index: 0 }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { server, port };
}

async function adminJson(sc: RunningSidecar, p: string): Promise<any> {
  const r = await fetch(`http://127.0.0.1:${sc.adminPort}${p}`);
  return p.includes('prometheus') ? r.text() : r.json();
}

const BOLT_SVC = 'com.alipay.test.XdsService:1.0';

test('SotW over an Envoy YAML bootstrap: HTTP/1.1, HTTP/2, gRPC, TCP and Bolt through xDS resources; NACK keeps traffic; config_dump; control-plane restart', { timeout: 120_000 }, async () => {
  const ads = await AdsServer.start();
  const web1 = await backend('web1');
  const web2 = await backend('web2');
  const h2web = await backend('h2web', undefined, true);
  const echo = await echoServer();
  const g = await startGrpcEcho();
  const sofa = await startSofaServer({ [BOLT_SVC]: { plus: async (a: number, b: number) => a + b } });
  const [httpPort, h2Port, grpcPort, tcpPort, boltPort] = [await deadPort(), await deadPort(), await deadPort(), await deadPort(), await deadPort()];
  let sc: RunningSidecar | undefined;
  try {
    ads.set('cluster', [
      edsCluster('outbound|80||web.default.svc.cluster.local'),
      staticCluster('outbound|8080||h2web.default.svc.cluster.local', [h2web.port]),
      edsCluster('outbound|50051||grpc.default.svc.cluster.local'),
      staticCluster('outbound|7||echo.default.svc.cluster.local', [echo.port]),
      edsCluster('outbound|12200||bolt.default.svc.cluster.local'),
    ]);
    ads.set('endpoints', [
      endpoints('outbound|80||web.default.svc.cluster.local', [web1.port]),
      endpoints('outbound|50051||grpc.default.svc.cluster.local', [g.port]),
      endpoints('outbound|12200||bolt.default.svc.cluster.local', [sofa.port]),
    ]);
    const listeners = [
      httpListener('127.0.0.1_http', httpPort, 'http.80'),
      httpListener('127.0.0.1_h2', h2Port, 'h2.8080', 'HTTP2'),
      httpListener('127.0.0.1_grpc', grpcPort, 'grpc.50051', 'HTTP2'),
      tcpListener('127.0.0.1_tcp', tcpPort, 'outbound|7||echo.default.svc.cluster.local'),
      {
        name: '127.0.0.1_bolt', address: { socket_address: { address: '127.0.0.1', port_value: boltPort } },
        filter_chains: [{
          filters: [{
            name: 'proxy',
            typed_config: {
              '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/mosn.proxy',
              value: { downstream_protocol: 'bolt', router_config_name: 'bolt.12200' },
            },
          }],
        }],
      },
    ];
    ads.set('listener', listeners);
    ads.set('route', [
      routeConfig('http.80', [{ prefix: '/', cluster: 'outbound|80||web.default.svc.cluster.local' }]),
      routeConfig('h2.8080', [{ prefix: '/', cluster: 'outbound|8080||h2web.default.svc.cluster.local' }]),
      routeConfig('grpc.50051', [{ prefix: '/', cluster: 'outbound|50051||grpc.default.svc.cluster.local' }]),
      routeConfig('bolt.12200', [{ prefix: '/', cluster: 'outbound|12200||bolt.default.svc.cluster.local' }]),
    ]);
    sc = watched = await startOn(bootstrap(ads.port, false), true);
    assert.match(sc.output(), /xds state-of-the-world ADS from 127\.0\.0\.1:\d+ \(cluster xds-grpc\)/);

    // HTTP/1.1 and HTTP/2 (prior knowledge) with curl.
    const h1 = await until(() => curl(httpPort, '/hello'), (r) => r.code === 200, 'HTTP/1.1 through xDS');
    assert.equal(JSON.parse(h1.body).backend, 'web1');
    const h2 = await curl(h2Port, '/h2', ['--http2-prior-knowledge']);
    assert.equal(h2.code, 200);
    assert.equal(JSON.parse(h2.body).backend, 'h2web');
    assert.equal(JSON.parse(h2.body).url, '/h2');
    // gRPC.
    assert.equal(await until(() => grpcUnary(grpcPort, 'hi'), (m) => m === 'echo hi', 'gRPC through xDS'), 'echo hi');
    // TCP.
    assert.equal(await until(() => tcpRoundTrip(tcpPort, 'ping over tcp'), (s) => s === 'ping over tcp', 'TCP through xDS'), 'ping over tcp');
    // Bolt (sofa-rpc-node).
    const client = sofaClient(boltPort);
    try {
      const consumer = await client.consumer(BOLT_SVC);
      assert.equal(await consumer.invoke('plus', [2, 3], { responseTimeout: 3000 }), 5);
    } finally {
      await client.close();
    }

    // Every response so far was ACKed.
    for (const kind of ['cluster', 'endpoints', 'listener', 'route'] as const) {
      const nonce = ads.lastNonce(kind);
      const ack = await ads.waitFor((r) => r.kind === kind && r.nonce === nonce);
      assert.equal(ack.error, undefined, `${kind} ACKed`);
    }

    // A bad listener: the whole SotW response is NACKed, named, and traffic keeps the old config.
    const ldsVersion = ads.responses.filter((r) => r.kind === 'listener').pop()!.version;
    ads.set('listener', [
      ...listeners,
      {
        name: '127.0.0.1_bad', address: { socket_address: { address: '127.0.0.1', port_value: await deadPort() } },
        filter_chains: [{ filters: [{ name: 'envoy.filters.network.redis_proxy', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'x/redis' } }] }],
      },
    ]);
    const nack = await ads.waitFor((r) => r.kind === 'listener' && r.nonce === ads.lastNonce('listener'));
    assert.ok(nack.error, 'NACK');
    assert.match(nack.error!, /^127\.0\.0\.1_bad: filterChains\[0\]\.filters\[0\]/);
    assert.equal(nack.sotw!.versionInfo, ldsVersion, 'the NACK carries the previous version');
    assert.equal((await curl(httpPort, '/after-nack')).code, 200, 'traffic flows on the old config');
    const dump = await adminJson(sc, '/api/v1/config_dump');
    assert.equal(dump.dynamic.lds.version_info, ldsVersion);
    assert.match(dump.dynamic.lds.last_nack.detail, /127\.0\.0\.1_bad/);
    assert.deepEqual(dump.dynamic.lds.resources.map((r: { name: string }) => r.name).sort(), listeners.map((l) => l.name).sort());
    const prom: string = await adminJson(sc, '/stats/prometheus');
    assert.match(prom, /^outrigger_xds_lds_rejected_total 1$/m);
    assert.match(prom, /^outrigger_xds_connected 1$/m);
    ads.set('listener', listeners); // back to good

    // The control plane restarts: the sidecar keeps serving, reconnects and converges.
    const streams = ads.opened.sotw;
    const down = ads.restart(1000);
    for (let i = 0; i < 5; i++) assert.equal((await curl(httpPort, `/while-down-${i}`)).code, 200, 'serving while the control plane is away');
    await down;
    await ads.waitFor((r) => r.stream > streams && r.kind === 'endpoints', 15_000);
    ads.set('endpoints', [
      endpoints('outbound|80||web.default.svc.cluster.local', [web2.port]),
      endpoints('outbound|50051||grpc.default.svc.cluster.local', [g.port]),
      endpoints('outbound|12200||bolt.default.svc.cluster.local', [sofa.port]),
    ]);
    const moved = await until(() => curl(httpPort, '/converged'), (r) => r.code === 200 && JSON.parse(r.body).backend === 'web2', 'the new endpoints after the reconnect');
    assert.equal(moved.code, 200);
  } finally {
    if (sc) assert.equal(await sc.terminate(), 0);
    await ads.stop();
    await Promise.all([web1.close(), web2.close(), h2web.close(), sofa.close()]);
    echo.server.close();
    for (const s of echo.sockets) s.destroy();
    g.server.forceShutdown();
  }
});

test('delta over MOSN-form JSON: a listener waits for its RDS; a bad resource is NACKed alone while the good ones apply', { timeout: 60_000 }, async () => {
  const ads = await AdsServer.start();
  const web = await backend('web');
  const [p1, p2] = [await deadPort(), await deadPort()];
  let sc: RunningSidecar | undefined;
  try {
    ads.set('cluster', [edsCluster('outbound|80||web')]);
    ads.set('endpoints', [endpoints('outbound|80||web', [web.port])]);
    ads.set('listener', [httpListener('l1', p1, 'r1')]);
    ads.set('route', [routeConfig('r1', [{ prefix: '/', cluster: 'outbound|80||web' }])]);
    sc = watched = await startOn(bootstrap(ads.port, true), false);
    assert.match(sc.output(), /xds delta ADS/);
    await until(() => curl(p1, '/a'), (r) => r.code === 200, 'HTTP over delta xDS');
    assert.ok(ads.opened.delta >= 1 && ads.opened.sotw === 0, 'the delta stream was used');

    // A second listener waits for its route configuration: its port is not served until RDS has it.
    ads.set('listener', [httpListener('l1', p1, 'r1'), httpListener('l2', p2, 'r2')]);
    await ads.waitFor((r) => r.kind === 'route' && (r.delta?.resourceNamesSubscribe ?? []).includes('r2'));
    await new Promise((r) => setTimeout(r, 300));
    assert.notEqual((await curl(p2, '/b').catch(() => ({ code: 0, body: '' }))).code, 200, 'l2 warms until r2 arrives');
    ads.set('route', [routeConfig('r1', [{ prefix: '/', cluster: 'outbound|80||web' }]), routeConfig('r2', [{ prefix: '/', cluster: 'outbound|80||web' }])]);
    await until(() => curl(p2, '/b'), (r) => r.code === 200, 'l2 after r2 arrived');

    // Delta: only the bad cluster is refused; the good one in the same response applies.
    ads.set('cluster', [
      edsCluster('outbound|80||web'),
      staticCluster('good-new', [web.port]),
      { ...staticCluster('bad-new', [web.port]), transport_socket: { name: 'envoy.transport_sockets.alts', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/alts' } } },
    ]);
    const nack = await ads.waitFor((r) => r.kind === 'cluster' && r.nonce === ads.lastNonce('cluster'));
    assert.match(nack.error ?? '', /^bad-new: /);
    const dump = await until(() => adminJson(sc!, '/api/v1/config_dump'), (d) => d.dynamic.cds.resources.some((r: { name: string }) => r.name === 'good-new'), 'good-new accepted');
    assert.ok(!dump.dynamic.cds.resources.some((r: { name: string }) => r.name === 'bad-new'));
    assert.equal((await curl(p1, '/still')).code, 200);
  } finally {
    if (sc) assert.equal(await sc.terminate(), 0);
    await ads.stop();
    await web.close();
  }
});

/** Istio's SDS secrets: the workload certificate `default` and the mesh root `ROOTCA`. */
function sdsSecrets(pki: Pki, leaf: { cert: string; key: string }): Record<string, unknown>[] {
  const pem = (f: string): { inline_string: string } => ({ inline_string: fs.readFileSync(f, 'utf8') });
  return [
    { name: 'default', tls_certificate: { certificate_chain: pem(leaf.cert), private_key: pem(leaf.key) } },
    { name: 'ROOTCA', validation_context: { trusted_ca: pem(pki.ca.cert) } },
  ];
}

test('SDS: an mTLS listener waits for `default` and `ROOTCA`, serves mTLS once they arrive, and a rotated certificate is served to new connections', { timeout: 60_000 }, async () => {
  const ads = await AdsServer.start();
  const web = await backend('web');
  const pki = new Pki();
  const server1 = pki.issue({ cn: 'app.default', ips: ['127.0.0.1'], usage: 'server' });
  const server2 = pki.issue({ cn: 'app.default', ips: ['127.0.0.1'], usage: 'server' });
  const client = pki.issue({ cn: 'client', usage: 'client' });
  const port = await deadPort();
  let sc: RunningSidecar | undefined;
  try {
    const listener = httpListener('inbound_mtls', port, 'in', 'HTTP1');
    (listener['filter_chains'] as Record<string, unknown>[])[0]!['transport_socket'] = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        require_client_certificate: true,
        common_tls_context: {
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }],
          combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' } } },
          alpn_protocols: ['http/1.1'],
        },
      },
    };
    ads.set('cluster', [staticCluster('web', [web.port])]);
    ads.set('listener', [listener]);
    ads.set('route', [routeConfig('in', [{ prefix: '/', cluster: 'web' }])]);
    sc = await startSidecar(bootstrap(ads.port, false));
    const sds = await ads.waitFor((r) => r.kind === 'secret' && r.nonce === '');
    assert.deepEqual([...sds.sotw!.resourceNames!].sort(), ['ROOTCA', 'default'], 'SDS asks for the secrets the listener names');
    await new Promise((r) => setTimeout(r, 300));
    const curlTls = (extra: string[]): ReturnType<typeof run> => run('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', pki.ca.cert, ...extra, `https://127.0.0.1:${port}/`]);
    const mtls = ['--cert', client.cert, '--key', client.key];
    assert.notEqual((await curlTls(mtls)).stdout, '200', 'the listener warms until its secrets arrive');

    ads.set('secret', sdsSecrets(pki, server1));
    const ok = await until(() => curlTls(mtls), (r) => r.stdout === '200', 'mTLS once the secrets arrived');
    assert.equal(ok.stdout, '200');
    assert.notEqual((await curlTls([])).stdout, '200', 'a client without a certificate is refused');
    const cert1 = await run('sh', ['-c', `echo | openssl s_client -connect 127.0.0.1:${port} -cert ${client.cert} -key ${client.key} 2>/dev/null | openssl x509 -noout -serial`]);
    assert.equal(cert1.stdout.trim().replace(/^serial=0*/, ''), serialOf(fs.readFileSync(server1.cert, 'utf8')));

    // Rotation: the new `default` is served to new connections.
    ads.set('secret', sdsSecrets(pki, server2));
    const want = serialOf(fs.readFileSync(server2.cert, 'utf8'));
    await until(
      () => run('sh', ['-c', `echo | openssl s_client -connect 127.0.0.1:${port} -cert ${client.cert} -key ${client.key} 2>/dev/null | openssl x509 -noout -serial`]),
      (r) => r.stdout.trim().replace(/^serial=0*/, '') === want,
      'the rotated certificate',
    );
    assert.equal((await curlTls(mtls)).stdout, '200');
    const dump = await adminJson(sc, '/api/v1/config_dump');
    assert.ok(!JSON.stringify(dump).includes('PRIVATE KEY'), 'config_dump never shows a private key');
    assert.deepEqual(dump.dynamic.sds.resources.map((r: { name: string }) => r.name).sort(), ['ROOTCA', 'default']);
  } finally {
    if (sc) assert.equal(await sc.terminate(), 0);
    await ads.stop();
    await web.close();
    pki.remove();
  }
});
