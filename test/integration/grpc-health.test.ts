/**
 * Envoy's gRPC health check (grpc.health.v1.Health/Check) against real @grpc/grpc-js servers
 * implementing the health service (protobufjs messages): service_name and authority reach the
 * server, NOT_SERVING (and an unknown service's NOT_FOUND) take the host out within
 * interval × unhealthy_threshold, SERVING brings it back; a cluster with a tls_context checks
 * over TLS (verified, ALPN h2) with the cluster's name as the default authority.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { Pki } from '../helpers/certs';
import { deadPort, httpConfig, request } from '../helpers/http';
import { until } from '../helpers/wait';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';

const root = protobuf.Root.fromJSON({
  nested: {
    HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
    HealthCheckResponse: { fields: { status: { type: 'ServingStatus', id: 1 } }, nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } } },
  },
});
const Req = root.lookupType('HealthCheckRequest');
const Res = root.lookupType('HealthCheckResponse');

interface HealthServer {
  port: number;
  /** Status by service name; a name not here answers NOT_FOUND (as grpc-health-probe servers do). */
  status: Map<string, number>;
  seen: { service: string; authority: string }[];
  close(): Promise<void>;
}

async function healthServer(creds: grpc.ServerCredentials, status: Record<string, number>): Promise<HealthServer> {
  const server = new grpc.Server();
  const out: HealthServer = { port: 0, status: new Map(Object.entries(status)), seen: [], close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
  const def: grpc.ServiceDefinition = {
    Check: {
      path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false,
      requestSerialize: (m: object) => Buffer.from(Req.encode(Req.fromObject(m)).finish()),
      requestDeserialize: (b: Buffer) => Req.toObject(Req.decode(b)),
      responseSerialize: (m: object) => Buffer.from(Res.encode(Res.fromObject(m)).finish()),
      responseDeserialize: (b: Buffer) => Res.toObject(Res.decode(b)),
    },
  };
  server.addService(def, {
    Check: (call: grpc.ServerUnaryCall<{ service?: string }, object>, cb: grpc.sendUnaryData<object>) => {
      const service = call.request.service ?? '';
      out.seen.push({ service, authority: call.getHost() });
      const st = out.status.get(service);
      if (st === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else cb(null, { status: st });
    },
  });
  out.port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  return out;
}

async function health(sc: RunningSidecar, cluster: string, port: number): Promise<{ health: string; last_check_failure?: string; health_check: { success: number } }> {
  const all = JSON.parse((await request(sc.adminPort, '/api/v1/clusters')).body) as Record<string, { hosts: { address: string; health: string; health_check: { success: number } }[] }>;
  const h = all[cluster]?.hosts.find((x) => x.address === `127.0.0.1:${port}`);
  assert.ok(h, `${port} in ${cluster}`);
  return h;
}

const INTERVAL = 200;
const UNHEALTHY = 2;

test('gRPC health checks: Health/Check with service_name and authority, NOT_SERVING / unknown service out, SERVING back; over the cluster\'s TLS', { timeout: 60_000 }, async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const a = await healthServer(grpc.ServerCredentials.createInsecure(), { 'pkg.Svc': 1 });
  const b = await healthServer(grpc.ServerCredentials.createInsecure(), { 'pkg.Svc': 1 });
  const s = await healthServer(grpc.ServerCredentials.createSsl(null, [{ cert_chain: fs.readFileSync(cert.cert), private_key: fs.readFileSync(cert.key) }]), { '': 1 });
  const dead = await deadPort();
  const hc = (extra: Record<string, unknown>) => ({
    protocol: 'grpc', timeout: '1s', interval: `${INTERVAL}ms`, interval_jitter: '1ms', initial_delay_seconds: '50ms', unhealthy_threshold: UNHEALTHY, healthy_threshold: 1, ...extra,
  });
  const cfg = httpConfig(
    [{ name: 'h', downstream: 'Http1', upstream: 'Http2', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'plain' } }] }] }],
    { plain: [a.port, b.port, dead], secure: [s.port] },
    {
      plain: { health_check: hc({ check_config: { grpc_check_config: { service_name: 'pkg.Svc', authority: 'svc.internal' } } }) },
      secure: { tls_context: { status: true, ca_cert: pki.ca.cert, server_name: 'localhost' }, health_check: hc({}) },
    },
  );
  const sc = await startSidecar(cfg);
  try {
    await until('first checks pass', 10_000, async () => (await health(sc, 'plain', a.port)).health_check.success >= 1 && (await health(sc, 'plain', b.port)).health_check.success >= 1 && (await health(sc, 'secure', s.port)).health_check.success >= 1);
    assert.deepEqual(a.seen[0], { service: 'pkg.Svc', authority: 'svc.internal' });
    assert.deepEqual(s.seen[0], { service: '', authority: 'secure' }, 'default authority: the cluster name; checked over TLS');
    await until('a port nobody listens on fails', 5000, async () => (await health(sc, 'plain', dead)).health === 'unhealthy');
    assert.equal((await health(sc, 'plain', dead)).last_check_failure, 'connect_failed');

    b.status.set('pkg.Svc', 2); // NOT_SERVING
    const out = await until('NOT_SERVING takes b out', 5000, async () => (await health(sc, 'plain', b.port)).health === 'unhealthy');
    assert.ok(out <= INTERVAL * UNHEALTHY + 1000, `out after ${out} ms`);
    assert.equal((await health(sc, 'plain', b.port)).last_check_failure, 'bad_status');
    assert.equal((await health(sc, 'plain', a.port)).health, 'healthy');
    b.status.set('pkg.Svc', 1);
    await until('SERVING brings b back', 5000, async () => (await health(sc, 'plain', b.port)).health === 'healthy');
    b.status.delete('pkg.Svc'); // grpc-status NOT_FOUND
    await until('an unknown service takes b out', 5000, async () => (await health(sc, 'plain', b.port)).health === 'unhealthy');
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await a.close();
    await b.close();
    await s.close();
  }
});
