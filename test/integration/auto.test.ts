/**
 * One listener with downstream_protocol "Auto": a Bolt client (sofa-rpc-node), a Dubbo client
 * (dubbo2.js) and curl at the same time. Bolt and Dubbo are told apart by their first bytes and
 * proxied to their own providers; curl's HTTP/1.1 goes to the chain's tcp_proxy (MOSN's
 * fallback_for_unknown_protocol shape) when no HTTP handler is registered for Auto listeners.
 * Without the fallback, HTTP, a TLS ClientHello and unknown bytes are closed with a log line.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import { startSidecar } from '../helpers/sidecar';
import { listen } from '../helpers/net';
import { sleep, sofaClient, startSofaServer } from '../helpers/sofa';
import { closeDubbo2js, dubbo2js, dubboProxyConfig, java, startDubboProvider } from '../helpers/dubbo';

const BOLT_SVC = 'com.example.TestService';
const DUBBO_SVC = 'com.example.DemoService';

function curl(url: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '--max-time', '5', url], (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout }));
  });
}

function routes() {
  return [
    { match: { headers: [{ name: 'service', value: `${BOLT_SVC}:1.0` }] }, route: { cluster_name: 'bolt_service' } },
    { match: { headers: [{ name: 'service', value: DUBBO_SVC }] }, route: { cluster_name: 'dubbo_service' } },
  ];
}

/** Bytes sent on a fresh connection: resolves with what came back before the proxy closed it. */
function closedAfter(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.write(bytes));
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(got)));
    setTimeout(() => s.destroy(), 5000);
  });
}

test('Auto listener: Bolt + Dubbo + curl (TCP fallback) at once', { timeout: 90_000 }, async () => {
  const bolt = await startSofaServer({ [BOLT_SVC]: { plus: async (a: number, b: number) => a + b } });
  const dubbo = await startDubboProvider({ [DUBBO_SVC]: { plus: async (a: number, b: number) => a + b } });
  const web = http.createServer((req, res) => res.end(`hello from http ${req.url}`));
  const webPort = await listen(web);
  const cfg = dubboProxyConfig({
    clusters: { bolt_service: [bolt.port], dubbo_service: [dubbo.port] },
    routes: routes(),
    downstreamProtocol: 'Auto',
    listenerName: 'auto',
    fallbackCluster: [webPort],
  });
  const sc = await startSidecar(cfg);
  const port = sc.ports.get('auto')!;
  const sofa = sofaClient(port);
  const d2 = dubbo2js(port, DUBBO_SVC, { plus: (a: number, b: number) => [java.int(a), java.int(b)] });
  try {
    const consumer = await sofa.consumer(BOLT_SVC);
    const N = 100;
    const [b, d, c] = await Promise.all([
      Promise.all(Array.from({ length: N }, (_, i) => consumer.invoke('plus', [i, 1], { responseTimeout: 10_000 }))),
      Promise.all(Array.from({ length: N }, (_, i) => d2.svc.plus(i, 2))),
      Promise.all(Array.from({ length: 5 }, (_, i) => curl(`http://127.0.0.1:${port}/p${i}`))),
    ]);
    b.forEach((r: number, i: number) => assert.equal(r, i + 1));
    d.forEach((r: { res: number }, i: number) => assert.equal(r.res, i + 2));
    c.forEach((r, i) => assert.deepEqual(r, { code: 0, out: `hello from http /p${i}` }));
    const st = await sc.stats();
    assert.equal(st.listeners.auto.downstream_auto_fallback, 5);
    assert.equal(st.clusters.bolt_service.upstream_rs_success, N);
    assert.equal(st.clusters.dubbo_service.upstream_rs_success, N);
    assert.equal(st.clusters.fallback_tcp.upstream_cx_total, 5);
    // Bytes that are neither RPC nor HTTP take the fallback too (first read split in two).
    const s = net.connect({ port, host: '127.0.0.1' });
    await new Promise((r) => s.once('connect', r));
    s.write('G');
    await sleep(50);
    s.write('ET /split HTTP/1.0\r\n\r\n');
    const body = await new Promise<string>((resolve) => {
      let out = '';
      s.on('data', (x) => (out += x.toString()));
      s.on('close', () => resolve(out));
    });
    assert.match(body, /hello from http \/split/);
  } finally {
    closeDubbo2js(d2.dubbo);
    await sofa.close();
    assert.equal(await sc.terminate(), 0);
    await bolt.close();
    await dubbo.close();
    web.close();
  }
});

test('Auto listener without fallback: HTTP, h2 preface, TLS ClientHello and unknown bytes are closed with a reason', { timeout: 30_000 }, async () => {
  const dubbo = await startDubboProvider({ [DUBBO_SVC]: { plus: async (a: number, b: number) => a + b } });
  const sc = await startSidecar(dubboProxyConfig({ clusters: { dubbo_service: [dubbo.port] }, downstreamProtocol: 'Auto', listenerName: 'auto' }));
  const port = sc.ports.get('auto')!;
  try {
    const clientHello = Buffer.from('16030100c8010000c40303', 'hex');
    for (const bytes of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), clientHello, Buffer.from('hello world, no protocol here')]) {
      assert.equal((await closedAfter(port, bytes)).length, 0);
    }
    const st = await sc.stats();
    assert.equal(st.listeners.auto.downstream_auto_rejected, 4);
    // Dubbo still works on the same listener.
    const d2 = dubbo2js(port, DUBBO_SVC, { plus: (a: number, b: number) => [java.int(a), java.int(b)] });
    assert.equal((await d2.svc.plus(1, 1)).res, 2);
    closeDubbo2js(d2.dubbo);
  } finally {
    assert.equal(await sc.terminate(), 0);
    await dubbo.close();
  }
  // Log lines are written asynchronously; the worker flushes them on exit.
  const out = sc.output();
  assert.match(out, /http1 is not served by this proxy listener/);
  assert.match(out, /http2 is not served/);
  assert.match(out, /TLS ClientHello on an Auto listener without tls_context/);
  assert.match(out, /unknown protocol \(first bytes 68656c6c6f20776f/);
});
