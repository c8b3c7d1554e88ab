/**
 * dubbo_stream (MOSN's per-service RPC metrics stream filter) through the real sidecar with 2
 * workers: sofa-rpc-node Bolt calls to two services, dubbo2.js and dubbo-remoting Dubbo calls,
 * and a Bolt call whose upstream is down (a local error: a failure). sofa-rpc-node (hessian)
 * sends no method header: the method is read from the SofaRequest in the body
 * (src/protocol/bolt/sofa-request.ts); Bolt frames carrying sofa_head_method_name (what the
 * Java SOFA client sends) go to a test upstream that fails one method with a non-OK status.
 * The counts are the sum over both workers (shared cells), in /api/v1/stats and in Prometheus.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { startSidecar } from '../helpers/sidecar';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sofaClient, startSofaServer } from '../helpers/sofa';
import { closeDubbo2js, dubbo2js, dubboProxyConfig, java, sofaDubboClient, startDubboProvider } from '../helpers/dubbo';

const A = 'com.example.Alpha';
const B = 'com.example.Beta';
const DOWN = 'com.example.Down';
const D = 'com.example.DubboSvc';
const J = 'com.example.Java:1.0';
const SERVICE_ERROR = 0x12; // Bolt RESPONSE_STATUS_SERVER_EXCEPTION

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('dubbo_stream: per listener, service and method counts across 2 workers; failures; Prometheus', { timeout: 60_000 }, async () => {
  const sofa = await startSofaServer({
    [A]: { async hello() { return 'a'; }, async bye() { return 'b'; } },
    [B]: { async hello() { return 'c'; } },
  });
  const prov = await startDubboProvider({ [D]: { async echo(s: string) { return s; } } });
  const dead = await closedPort();
  const javaUp = await fakeUpstream((r) => {
    const m = r.buf.subarray(r.frame.contentStart, r.frame.contentEnd).toString(); // the test puts the method in the body too
    r.sock.write(rawResponse(r.frame, r.buf, m === 'put' ? SERVICE_ERROR : 0));
  });
  const cfg = boltProxyConfig({
    clusters: { sofa: [sofa.port], down: [dead], java: [javaUp.port] },
    routes: [
      { match: { headers: [{ name: 'service', value: J }] }, route: { cluster_name: 'java' } },
      { match: { headers: [{ name: 'service', value: DOWN }] }, route: { cluster_name: 'down' } },
      { match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'sofa' } },
    ],
  }) as any;
  const dcfg = dubboProxyConfig({ clusters: { dubbo: [prov.port] }, listenerName: 'dubboL' }) as any;
  const server = cfg.servers[0];
  server.routers.push(...dcfg.servers[0].routers);
  server.listeners.push(...dcfg.servers[0].listeners);
  cfg.cluster_manager.clusters.push(...dcfg.cluster_manager.clusters);
  for (const l of server.listeners) l.stream_filters = [{ type: 'dubbo_stream', config: {} }];
  const sc = await startSidecar(cfg, { workers: 2 });
  const clients: Array<{ close(): Promise<void> }> = [];
  let d2: any = null;
  try {
    const boltPort = sc.ports.get('bolt')!;
    const dubboPort = sc.ports.get('dubboL')!;
    // Several connections, so that both workers take some of them.
    for (let i = 0; i < 4; i++) {
      const c = sofaClient(boltPort);
      clients.push(c);
      const a = await c.consumer(A);
      const b = await c.consumer(B);
      const down = await c.consumer(DOWN);
      assert.equal(await a.invoke('hello', [], { responseTimeout: 3000 }), 'a');
      assert.equal(await a.invoke('hello', [], { responseTimeout: 3000 }), 'a');
      assert.equal(await a.invoke('bye', [], { responseTimeout: 3000 }), 'b');
      assert.equal(await b.invoke('hello', [], { responseTimeout: 3000 }), 'c');
      await assert.rejects(down.invoke('hello', [], { responseTimeout: 3000 }));
    }
    const raw = await rawClient(boltPort);
    for (let i = 0; i < 5; i++) raw.sock.write(rawRequest(i + 1, J, { headers: { sofa_head_method_name: i < 3 ? 'get' : 'put' }, content: Buffer.from(i < 3 ? 'get' : 'put') }));
    await raw.wait(5);
    raw.sock.destroy();
    assert.deepEqual(raw.frames.map((f) => f.frame.status).sort(), [0, 0, 0, SERVICE_ERROR, SERVICE_ERROR]);
    const dc = sofaDubboClient(dubboPort);
    clients.push(dc);
    const dcon = await dc.consumer(D);
    for (let i = 0; i < 3; i++) assert.equal(await dcon.invoke('echo', [{ $class: 'java.lang.String', $: 'x' }], { responseTimeout: 3000 }), 'x');
    d2 = dubbo2js(dubboPort, D, { echo: (s: string) => [java.String(s)] });
    const r = await d2.svc.echo('y');
    assert.equal(r.err, null);
    assert.equal(r.res, 'y');

    const admin = `http://127.0.0.1:${sc.adminPort}`;
    const stats = (await (await fetch(`${admin}/api/v1/stats`)).json()) as { rpc: Record<string, Record<string, Record<string, number>>> };
    const bolt = stats.rpc.bolt;
    assert.deepEqual(Object.keys(bolt).sort(), [`bolt/${A}:1.0/hello`, `bolt/${A}:1.0/bye`, `bolt/${B}:1.0/hello`, `bolt/${DOWN}:1.0/hello`, `bolt/${J}/get`, `bolt/${J}/put`].sort());
    assert.equal(bolt[`bolt/${A}:1.0/hello`].requests_total, 8);
    assert.equal(bolt[`bolt/${A}:1.0/bye`].requests_total, 4);
    assert.equal(bolt[`bolt/${A}:1.0/hello`].failures_total, 0);
    assert.equal(bolt[`bolt/${B}:1.0/hello`].requests_total, 4);
    assert.equal(bolt[`bolt/${DOWN}:1.0/hello`].requests_total, 4);
    assert.equal(bolt[`bolt/${DOWN}:1.0/hello`].failures_total, 4);
    assert.equal(bolt[`bolt/${J}/get`].requests_total, 3);
    assert.equal(bolt[`bolt/${J}/get`].failures_total, 0);
    assert.equal(bolt[`bolt/${J}/put`].requests_total, 2);
    assert.equal(bolt[`bolt/${J}/put`].failures_total, 2);
    assert.equal(bolt[`bolt/${A}:1.0/hello`].latency_ms_count, 8);
    assert.ok(bolt[`bolt/${A}:1.0/hello`].latency_ms_sum > 0);
    const dub = stats.rpc.dubboL;
    assert.deepEqual(Object.keys(dub), [`dubbo/${D}/echo`]);
    assert.equal(dub[`dubbo/${D}/echo`].requests_total, 4);
    assert.equal(dub[`dubbo/${D}/echo`].failures_total, 0);

    const prom = await (await fetch(`${admin}/stats/prometheus`)).text();
    assert.match(prom, /# TYPE outrigger_rpc_requests_total counter/);
    const line = (name: string, l: string, svc: string, m: string, proto = l === 'bolt' ? 'bolt' : 'dubbo') =>
      new RegExp(`^${name}\\{listener="${l}",protocol="${proto}",service="${svc.replace(/\./g, '\\.')}",method="${m}"\\} (\\S+)$`, 'm').exec(prom)?.[1];
    assert.equal(line('outrigger_rpc_requests_total', 'bolt', `${A}:1.0`, 'hello'), '8');
    assert.equal(line('outrigger_rpc_requests_total', 'bolt', `${A}:1.0`, 'bye'), '4');
    assert.equal(line('outrigger_rpc_requests_total', 'bolt', `${B}:1.0`, 'hello'), '4');
    assert.equal(line('outrigger_rpc_failures_total', 'bolt', `${DOWN}:1.0`, 'hello'), '4');
    assert.equal(line('outrigger_rpc_requests_total', 'bolt', J, 'get'), '3');
    assert.equal(line('outrigger_rpc_failures_total', 'bolt', J, 'get'), '0');
    assert.equal(line('outrigger_rpc_failures_total', 'bolt', J, 'put'), '2');
    assert.equal(line('outrigger_rpc_requests_total', 'dubboL', D, 'echo'), '4');
    assert.equal(line('outrigger_rpc_request_duration_ms_count', 'dubboL', D, 'echo'), '4');
    assert.match(prom, /^outrigger_rpc_request_duration_ms_bucket\{listener="bolt",protocol="bolt",service="com\.example\.Alpha:1\.0",method="hello",le="\+Inf"\} 8$/m);
  } finally {
    if (d2 !== null) closeDubbo2js(d2.dubbo);
    for (const c of clients) await c.close();
    await sc.terminate();
    await sofa.close();
    await prov.close();
    await javaUp.close();
  }
});
