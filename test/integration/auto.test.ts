/**
 * One listener with downstream_protocol "Auto": a Bolt client (sofa-rpc-node), a Dubbo client
 * (dubbo2.js) and curl at the same time. Bolt and Dubbo are told apart by their first bytes and
 * proxied to their own providers; curl's HTTP/1.1 (and h2c) is served by the HTTP proxy with the
 * listener's routers, as MOSN's Auto does; bytes of no known protocol go to the chain's tcp_proxy
 * (MOSN's fallback_for_unknown_protocol). Without the fallback, a TLS ClientHello and unknown
 * bytes are closed with a log line.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import * as http2 from 'node:http2';
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

function routes(web = false) {
  return [
    { match: { headers: [{ name: 'service', value: `${BOLT_SVC}:1.0` }] }, route: { cluster_name: 'bolt_service' } },
    { match: { headers: [{ name: 'service', value: DUBBO_SVC }] }, route: { cluster_name: 'dubbo_service' } },
    // HTTP requests (no `service` header) end here; RPC requests matched above.
    ...(web ? [{ match: { prefix: '/h2' }, route: { cluster_name: 'web2' } }, { match: { prefix: '/' }, route: { cluster_name: 'web' } }] : []),
  ];
}

/** Writes `parts` 50 ms apart on a fresh connection; resolves with everything read until close. */
async function closedAfterSplit(port: number, parts: string[]): Promise<string> {
  const s = net.connect({ port, host: '127.0.0.1' });
  await new Promise((r) => s.once('connect', r));
  let out = '';
  s.on('data', (x) => (out += x.toString('latin1')));
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  for (const p of parts) {
    s.write(p);
    await sleep(50);
  }
  const t = setTimeout(() => s.destroy(), 5000);
  await closed;
  clearTimeout(t);
  return out;
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

test('Auto listener: Bolt + Dubbo + curl (HTTP proxy) + unknown bytes (TCP fallback) at once', { timeout: 90_000 }, async () => {
  const bolt = await startSofaServer({ [BOLT_SVC]: { plus: async (a: number, b: number) => a + b } });
  const dubbo = await startDubboProvider({ [DUBBO_SVC]: { plus: async (a: number, b: number) => a + b } });
  const web = http.createServer((req, res) => res.end(`hello from http ${req.url}`));
  const webPort = await listen(web);
  // h2c requests are forwarded as HTTP/2 (the request's own protocol): an h2c origin for them.
  const web2 = http2.createServer((req, res) => res.end(`hello from h2 ${req.url}`));
  const web2Port = await listen(web2 as unknown as http.Server);
  const cfg = dubboProxyConfig({
    clusters: { bolt_service: [bolt.port], dubbo_service: [dubbo.port], web: [webPort], web2: [web2Port] },
    routes: routes(true),
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
    // HTTP/1.0 whose first read is split in two: sniffed across reads, served by the HTTP proxy.
    const split = await closedAfterSplit(port, ['G', 'ET /split HTTP/1.0\r\n\r\n']);
    assert.match(split, /^HTTP\/1\.[01] 200 [\s\S]*hello from http \/split$/);
    // h2c prior knowledge on the same listener (curl).
    const h2 = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile('curl', ['-s', '--max-time', '5', '--http2-prior-knowledge', `http://127.0.0.1:${port}/h2`], (err, stdout) => resolve({ code: err ? 1 : 0, out: stdout }));
    });
    assert.deepEqual(h2, { code: 0, out: 'hello from h2 /h2' });
    // Bytes of no known protocol take the TCP fallback (the web server answers them 400).
    const junk = await closedAfterSplit(port, ['XYZZY nonsense\r\n\r\n']);
    assert.match(junk, /^HTTP\/1\.1 400 /);
    const st = await sc.stats();
    assert.equal(st.listeners.auto.downstream_auto_fallback, 1);
    assert.equal(st.listeners.auto.downstream_rq_http1, 6);
    assert.equal(st.listeners.auto.downstream_rq_http2, 1);
    assert.equal(st.clusters.bolt_service.upstream_rs_success, N);
    assert.equal(st.clusters.dubbo_service.upstream_rs_success, N);
    assert.equal(st.clusters.fallback_tcp.upstream_cx_total, 1);
  } finally {
    closeDubbo2js(d2.dubbo);
    await sofa.close();
    assert.equal(await sc.terminate(), 0);
    await bolt.close();
    await dubbo.close();
    web.close();
    web2.close();
  }
});

test('Auto listener without fallback: HTTP gets the HTTP proxy (404 without an HTTP route), TLS ClientHello and unknown bytes are closed with a reason', { timeout: 30_000 }, async () => {
  const dubbo = await startDubboProvider({ [DUBBO_SVC]: { plus: async (a: number, b: number) => a + b } });
  const sc = await startSidecar(dubboProxyConfig({ clusters: { dubbo_service: [dubbo.port] }, routes: routes(), downstreamProtocol: 'Auto', listenerName: 'auto' }));
  const port = sc.ports.get('auto')!;
  try {
    const http1 = (await closedAfter(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toString('latin1');
    assert.match(http1, /^HTTP\/1\.1 404 /);
    const clientHello = Buffer.from('16030100c8010000c40303', 'hex');
    for (const bytes of [clientHello, Buffer.from('hello world, no protocol here')]) {
      assert.equal((await closedAfter(port, bytes)).length, 0);
    }
    const st = await sc.stats();
    assert.equal(st.listeners.auto.downstream_auto_rejected, 2);
    assert.equal(st.listeners.auto.downstream_rq_4xx, 1);
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
  assert.match(out, /TLS ClientHello on an Auto listener without tls_context/);
  assert.match(out, /unknown protocol \(first bytes 68656c6c6f20776f/);
});
