/**
 * RBAC with mTLS between two Outriggers, real peers at both ends:
 *   curl / sofa-rpc-node -> [A: plain listeners; cluster "frontend" with the allowed SPIFFE
 *   certificate, cluster "intruder" with another] ==mTLS==> [B: listeners with tls_context
 *   (client certificate required) and the `rbac` stream filter] -> HTTP backend / sofa server
 * The allowed identity gets through; the other gets 403 (HTTP, curl also straight to B with
 * its certificate) and the Bolt permission error (SERVER_EXCEPTION, MOSN's mapping); shadow
 * rules are counted without denying; the counters are in B's admin stats.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Pki } from '../helpers/certs';
import { backend, httpConfig } from '../helpers/http';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { boltProxyConfig, sofaClient, startSofaServer, type SofaClient } from '../helpers/sofa';

const OK_ID = 'spiffe://mesh.test/ns/default/sa/frontend';
const BAD_ID = 'spiffe://mesh.test/ns/default/sa/intruder';
const SVC_OK = 'com.example.Allowed';
const SVC_BAD = 'com.example.Denied';

function curl(args: string[]): Promise<{ code: string; body: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', ...args], (_err, stdout) => {
      const i = stdout.lastIndexOf('\n');
      resolve({ body: stdout.slice(0, i), code: stdout.slice(i + 1) });
    });
  });
}

/** The rbac filter B runs: ALLOW the frontend identity only; shadow rules that would allow nobody. */
function rbacFilter(): Record<string, unknown> {
  return {
    type: 'rbac',
    config: {
      rules: {
        action: 'ALLOW',
        policies: {
          'frontend-only': { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { exact: OK_ID } } }] },
        },
      },
      // proto3 JSON spelling, as the xDS translator passes it.
      shadowRules: {
        action: 'ALLOW',
        policies: { nobody: { permissions: [{ any: true }], principals: [{ authenticated: { principalName: { prefix: 'spiffe://elsewhere/' } } }] } },
      },
      shadowRulesStatPrefix: 'istio_dry_run_',
    },
  };
}

test('RBAC over mTLS between two Outriggers: HTTP (curl) 403 and Bolt (sofa-rpc-node) permission error for the wrong SPIFFE id', { timeout: 90_000 }, async () => {
  const pki = new Pki();
  const serverCert = pki.issue({ cn: 'b.mesh', dns: ['b.mesh'] });
  const okCert = pki.issue({ cn: 'frontend', uris: [OK_ID], usage: 'client' });
  const badCert = pki.issue({ cn: 'intruder', uris: [BAD_ID], usage: 'client' });
  const be = await backend('web');
  const sofa = await startSofaServer({
    [SVC_OK]: { async hello(n: string) { return `hello ${n}`; } },
    [SVC_BAD]: { async hello(n: string) { return `hello ${n}`; } },
  });
  const tlsB = { status: true, cert_chain: serverCert.cert, private_key: serverCert.key, ca_cert: pki.ca.cert, verify_client: true, require_client_cert: true };
  // B: an HTTP listener and a Bolt listener, both mTLS with the rbac filter.
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] };
  const cfgB = httpConfig([{ name: 'http_b', downstream: 'Http1', router: 'r' }], [router], { web: [be.port] }) as any;
  const boltB = boltProxyConfig({ clusters: { sofa: [sofa.port] }, listenerName: 'bolt_b' }) as any;
  cfgB.servers[0].routers.push(...boltB.servers[0].routers);
  cfgB.servers[0].listeners.push(boltB.servers[0].listeners[0]);
  cfgB.cluster_manager.clusters.push(...boltB.cluster_manager.clusters);
  for (const l of cfgB.servers[0].listeners) {
    l.filter_chains[0].tls_context = tlsB;
    l.stream_filters = [rbacFilter()];
  }
  let b: RunningSidecar | undefined;
  let a: RunningSidecar | undefined;
  let client: SofaClient | undefined;
  try {
    b = await startSidecar(cfgB);
    const httpB = b.ports.get('http_b')!;
    const boltBPort = b.ports.get('bolt_b')!;
    const upTls = (c: { cert: string; key: string }) => ({ tls_context: { status: true, server_name: 'b.mesh', ca_cert: pki.ca.cert, cert_chain: c.cert, private_key: c.key } });
    // A: plain listeners; the path (HTTP) or the service (Bolt) picks the identity A presents to B.
    const routerA = {
      router_config_name: 'ra',
      virtual_hosts: [{ name: 'v', domains: ['*'], routers: [
        { match: { prefix: '/ok' }, route: { cluster_name: 'frontend' } },
        { match: { prefix: '/bad' }, route: { cluster_name: 'intruder' } },
      ] }],
    };
    const cfgA = httpConfig([{ name: 'http_a', downstream: 'Http1', router: 'ra' }], [routerA], { frontend: [httpB], intruder: [httpB] }, { frontend: upTls(okCert), intruder: upTls(badCert) }) as any;
    const boltA = boltProxyConfig({
      clusters: { bolt_frontend: [boltBPort], bolt_intruder: [boltBPort] },
      listenerName: 'bolt_a',
      routes: [
        { match: { headers: [{ name: 'service', value: `${SVC_OK}:1.0` }] }, route: { cluster_name: 'bolt_frontend' } },
        { match: { headers: [{ name: 'service', value: `${SVC_BAD}:1.0` }] }, route: { cluster_name: 'bolt_intruder' } },
      ],
    }) as any;
    boltA.cluster_manager.clusters[0].tls_context = upTls(okCert).tls_context;
    boltA.cluster_manager.clusters[1].tls_context = upTls(badCert).tls_context;
    cfgA.servers[0].routers.push(...boltA.servers[0].routers);
    cfgA.servers[0].listeners.push(boltA.servers[0].listeners[0]);
    cfgA.cluster_manager.clusters.push(...boltA.cluster_manager.clusters);
    a = await startSidecar(cfgA);
    const httpA = a.ports.get('http_a')!;

    // HTTP through the two sidecars.
    const ok = await curl([`http://127.0.0.1:${httpA}/ok/x`]);
    assert.equal(ok.code, '200', ok.body);
    const bad = await curl([`http://127.0.0.1:${httpA}/bad/x`]);
    assert.equal(bad.code, '403', bad.body);
    assert.match(bad.body, /RBAC: access denied/);
    // curl straight to B with each certificate.
    const direct = (c: { cert: string; key: string }) =>
      curl(['--cacert', pki.ca.cert, '--cert', c.cert, '--key', c.key, '--resolve', `b.mesh:${httpB}:127.0.0.1`, `https://b.mesh:${httpB}/direct`]);
    assert.equal((await direct(okCert)).code, '200');
    assert.equal((await direct(badCert)).code, '403');

    // Bolt through the two sidecars (sofa-rpc-node both ends).
    client = sofaClient(a.ports.get('bolt_a')!);
    const okC = await client.consumer(SVC_OK);
    const badC = await client.consumer(SVC_BAD);
    const str = (s: string) => ({ $class: 'java.lang.String', $: s });
    for (let i = 0; i < 5; i++) assert.equal(await okC.invoke('hello', [str(`n${i}`)], { responseTimeout: 3000 }), `hello n${i}`);
    await assert.rejects(badC.invoke('hello', [str('x')], { responseTimeout: 3000 }), (e: Error) => {
      // sofa-bolt-node names the Bolt status: SERVER_EXCEPTION (0x02) -> RpcServerException.
      assert.match(e.message, /RpcServerException: RBAC: access denied/, e.message);
      return true;
    });

    const s = (await b.stats()).server as Record<string, number>;
    assert.equal(s['rbac.http_b.denied'], 2, JSON.stringify(s));
    assert.equal(s['rbac.http_b.allowed'], 2);
    assert.equal(s['rbac.http_b.policy.frontend-only.allowed'], 2);
    assert.equal(s['rbac.bolt_b.denied'], 1);
    assert.equal(s['rbac.bolt_b.allowed'], 5);
    // Shadow rules: every request counted as a shadow denial, none denied for it.
    assert.equal(s['rbac.http_b.istio_dry_run_shadow_denied'], 4);
    assert.equal(s['rbac.bolt_b.istio_dry_run_shadow_denied'], 6);
    assert.equal(be.seen.length, 2, 'only the allowed requests reached the backend');
  } finally {
    client?.close();
    if (a) await a.terminate();
    if (b) await b.terminate();
    await sofa.close();
    await be.close();
    pki.remove();
  }
});

test('network rbac before tcp_proxy: a connection whose source is not allowed is closed before the upstream sees it; Dubbo: a denied method gets SERVER_ERROR "403|..." and a limited one BAD_REQUEST', { timeout: 60_000 }, async () => {
  const { echoServer, close, connect, waitPeerClose } = await import('../helpers/net');
  const { tcpProxyConfig } = await import('../helpers/sidecar');
  const { dubboProxyConfig, dubboRawClient, dubboRequest } = await import('../helpers/dubbo');
  const echo = await echoServer();
  let upstreamConns = 0;
  echo.server.on('connection', () => upstreamConns++);
  const cfg = tcpProxyConfig({ upstreams: [echo.port] }) as any;
  const l0 = cfg.servers[0].listeners[0];
  const rbac = (prefix: string) => ({
    type: 'rbac',
    config: { stat_prefix: 'tcp.', rules: { action: 'ALLOW', policies: { src: { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: prefix, prefix_len: 8 } }] } } } },
  });
  l0.filter_chains[0].filters.unshift(rbac('127.0.0.0'));
  const denied = { ...l0, name: 'tcp_denied', filter_chains: [{ filters: [rbac('10.0.0.0'), l0.filter_chains[0].filters[1]] }] };
  cfg.servers[0].listeners.push(denied);
  const sc = await startSidecar(cfg);
  // Dubbo: rbac DENY on a method, a limit of 1 on another service.
  const dcfg = dubboProxyConfig({ clusters: { p: [echo.port] } }) as any;
  dcfg.servers[0].listeners[0].stream_filters = [
    { type: 'rbac', config: { rules: { action: 'DENY', policies: { m: { permissions: [{ header: { name: ':method', exact_match: 'drop' } }], principals: [{ any: true }] } } } } },
    { type: 'flowControlFilter', config: { global_switch: true, rules: [{ resource: 'com.example.Limited', threshold: 0 }] } },
  ];
  const dsc = await startSidecar(dcfg);
  try {
    const ok = await connect(sc.ports.get('tcp')!);
    ok.write('ping');
    const got = await new Promise<string>((resolve) => ok.once('data', (d: Buffer) => resolve(d.toString())));
    assert.equal(got, 'ping');
    ok.destroy();
    const before = upstreamConns;
    const no = await connect(sc.ports.get('tcp_denied')!);
    no.write('ping');
    await waitPeerClose(no);
    assert.equal(upstreamConns, before, 'the upstream never saw the denied connection');
    const s = (await sc.stats()).server as Record<string, number>;
    assert.equal(s['rbac_network.tcp_denied.tcp.denied'], 1, JSON.stringify(s));
    assert.equal(s['rbac_network.tcp.tcp.allowed'], 1);

    const c = await dubboRawClient(dsc.ports.get('clientListener')!);
    c.sock.write(dubboRequest(1, 'com.example.Echo', 'drop'));
    c.sock.write(dubboRequest(2, 'com.example.Limited', 'echo'));
    await c.wait(2);
    const byId = new Map(c.frames.map((f) => [Number(f.frame.requestId), f.frame.status]));
    assert.equal(byId.get(1), 80, 'SERVER_ERROR (MOSN: 403|permission denied)');
    assert.equal(byId.get(2), 40, 'BAD_REQUEST (MOSN: 509|limit exceeded)');
    c.sock.destroy();
  } finally {
    await sc.terminate();
    await dsc.terminate();
    await close(echo.server);
  }
});
