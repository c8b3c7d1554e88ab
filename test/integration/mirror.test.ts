/**
 * The `mirror` stream filter with route request_mirror_policies (MOSN's object form and Envoy's
 * list form): the mirror cluster gets copies (headers + body) of HTTP/1.1, HTTP/2 and Bolt
 * requests; the main answer is unaffected when the mirror target is down or slow.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { backend, deadPort, httpConfig, request, request2 } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';
import { boltProxyConfig, sleep, sofaClient, startSofaServer } from '../helpers/sofa';

type Doc = { servers: { listeners: Record<string, unknown>[] }[] };

function withMirrorFilter<T>(cfg: T, filterCfg: Record<string, unknown> = {}): T {
  for (const l of (cfg as unknown as Doc).servers[0].listeners) l.stream_filters = [{ type: 'mirror', config: filterCfg }];
  return cfg;
}

function router(policies: unknown): Record<string, unknown> {
  return { router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'main', request_mirror_policies: policies } }] }] };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(20);
  }
}

test('HTTP/1.1 and HTTP/2: the mirror cluster sees copies with the body; amplification', async () => {
  const main = await backend('main');
  const shadow = await backend('shadow');
  const cfg = withMirrorFilter(httpConfig([{ name: 'h1', downstream: 'Http1', router: 'r' }, { name: 'h2', downstream: 'Http2', upstream: 'Http1', router: 'r' }], [router({ cluster: 'm', percent: 100 })], { main: [main.port], m: [shadow.port] }), { amplification: 2 });
  const sc = await startSidecar(cfg);
  try {
    const r = await request(sc.ports.get('h1') as number, '/copy/me?x=1', { method: 'POST', body: 'hello mirror', headers: { 'content-type': 'text/plain', 'x-test': 'v' } });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).backend, 'main');
    await until(() => shadow.seen.length >= 2);
    for (const s of shadow.seen) {
      assert.equal(s.method, 'POST');
      assert.equal(s.url, '/copy/me?x=1');
      assert.equal(s.body, 'hello mirror');
      assert.equal(s.headers['x-test'], 'v');
      assert.match(String(s.headers.host), /-shadow$/);
    }
    assert.equal(main.seen.length, 1);
    const r2 = await request2(sc.ports.get('h2') as number, '/h2/copy', { method: 'POST', body: 'h2 body', headers: { 'content-type': 'text/plain', 'content-length': '7' } });
    assert.equal(r2.status, 200);
    await until(() => shadow.seen.length >= 4);
    assert.equal(shadow.seen[3].body, 'h2 body');
  } finally {
    await sc.terminate();
    await main.close();
    await shadow.close();
  }
});

test('HTTP: a down or slow mirror target never slows or fails the main request; percent 0 sends nothing', async () => {
  const main = await backend('main');
  let held = 0;
  const slow = await backend('slow', () => {
    held++; // never answered
  });
  const dead = await deadPort();
  const policies = [{ cluster: 'm_dead', runtime_fraction: { default_value: { numerator: 100, denominator: 'HUNDRED' } } }, { cluster: 'm_slow' }, { cluster: 'm_never', percent: 0 }];
  const never = await backend('never');
  const cfg = withMirrorFilter(httpConfig([{ name: 'h1', downstream: 'Http1', router: 'r' }], [router(policies)], { main: [main.port], m_dead: [dead], m_slow: [slow.port], m_never: [never.port] }), { timeout: '10s' });
  const sc = await startSidecar(cfg);
  try {
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await request(sc.ports.get('h1') as number, `/x${i}`);
      const ms = performance.now() - t0;
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).backend, 'main');
      assert.ok(ms < 500, `main request took ${ms.toFixed(0)} ms with a slow and a dead mirror`);
    }
    await until(() => held >= 5);
    assert.equal(never.seen.length, 0);
    // Counters per mirror target cluster: the dead one's copies failed, the slow one's are still out.
    const st = await sc.stats();
    assert.equal(st.clusters.m_dead['mirror.sent'], 5);
    assert.equal(st.clusters.m_dead['mirror.failed'], 5);
    assert.equal(st.clusters.m_slow['mirror.sent'], 5);
    assert.equal(st.clusters.m_slow['mirror.failed'], 0);
    assert.equal(st.clusters.m_never['mirror.sent'], 0);
  } finally {
    await sc.terminate();
    await main.close();
    await slow.close();
    await never.close();
  }
});

test('HTTP: copies dropped by max_concurrent and max_body_bytes are counted per target cluster (stats JSON and Prometheus)', async () => {
  const main = await backend('main');
  let held = 0;
  const slow = await backend('slow', () => {
    held++; // never answered: holds the worker's only mirror slot
  });
  const other = await backend('other');
  const cfg = withMirrorFilter(
    httpConfig([{ name: 'h1', downstream: 'Http1', router: 'r' }], [router([{ cluster: 'm_slow' }, { cluster: 'm_other' }])], { main: [main.port], m_slow: [slow.port], m_other: [other.port] }),
    { max_concurrent: 1, max_body_bytes: 4, timeout: '10s' },
  );
  const sc = await startSidecar(cfg, { workers: 1 });
  try {
    const lp = sc.ports.get('h1') as number;
    for (let i = 0; i < 3; i++) assert.equal((await request(lp, `/g${i}`)).status, 200);
    const r = await request(lp, '/post', { method: 'POST', body: 'too long', headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200);
    await until(() => held >= 1);
    assert.equal(other.seen.length, 0, 'the slot stays taken by the slow copy');
    const st = await sc.stats();
    assert.equal(st.clusters.m_slow['mirror.sent'], 1);
    assert.equal(st.clusters.m_slow['mirror.dropped_max_concurrent'], 2);
    assert.equal(st.clusters.m_slow['mirror.dropped_body'], 1);
    assert.equal(st.clusters.m_other['mirror.dropped_max_concurrent'], 3);
    assert.equal(st.clusters.m_other['mirror.dropped_body'], 1);
    assert.equal(st.clusters.m_other['mirror.sent'], 0);
    const prom = (await request(sc.adminPort, '/stats/prometheus')).body;
    assert.match(prom, /outrigger_cluster_mirror_sent_total\{cluster="m_slow"\} 1\n/);
    assert.match(prom, /outrigger_cluster_mirror_dropped_total\{cluster="m_other",bound="max_concurrent"\} 3\n/);
    assert.match(prom, /outrigger_cluster_mirror_dropped_total\{cluster="m_slow",bound="body"\} 1\n/);
  } finally {
    await sc.terminate();
    await main.close();
    await slow.close();
    await other.close();
  }
});

test('Bolt: sofa-rpc-node calls are mirrored (MOSN object form; a down mirror cluster beside it fails nothing)', async () => {
  let mainCalls = 0;
  let shadowCalls = 0;
  const mainP = await startSofaServer({ 'com.example.M': { async plus(a: number, b: number) { mainCalls++; return a + b; } } });
  const shadowP = await startSofaServer({ 'com.example.M': { async plus() { shadowCalls++; return -1; } } });
  const dead = await deadPort();
  const route = (policies: unknown) => ({ match: { headers: [{ name: 'service', value: 'com.example.M:1.0' }] }, route: { cluster_name: 'main', request_mirror_policies: policies } });
  const base = boltProxyConfig({ clusters: { main: [mainP.port], m: [shadowP.port], m_dead: [dead] }, routes: [route({ cluster: 'm', percent: 100 })] });
  // A second listener whose route mirrors to the live and to a dead cluster (Envoy's list form).
  const l2 = JSON.parse(JSON.stringify((base as unknown as Doc).servers[0].listeners[0])) as Record<string, unknown>;
  l2.name = 'bolt2';
  ((l2.filter_chains as { filters: { config: Record<string, unknown> }[] }[])[0].filters[0].config).router_config_name = 'bolt_router2';
  (base as unknown as Doc).servers[0].listeners.push(l2);
  const servers = (base as unknown as { servers: { routers: Record<string, unknown>[] }[] }).servers[0];
  servers.routers.push({ router_config_name: 'bolt_router2', virtual_hosts: [{ name: 'sofa', domains: ['*'], routers: [route([{ cluster: 'm_dead' }, { cluster: 'm' }])] }] });
  const sc = await startSidecar(withMirrorFilter(base));
  const client = sofaClient(sc.ports.get('bolt') as number);
  const client2 = sofaClient(sc.ports.get('bolt2') as number);
  try {
    const consumer = await client.consumer('com.example.M');
    for (let i = 0; i < 3; i++) assert.equal(await consumer.invoke('plus', [i, 1], { responseTimeout: 3000 }), i + 1);
    await until(() => shadowCalls >= 3);
    assert.equal(mainCalls, 3);
    const consumer2 = await client2.consumer('com.example.M');
    for (let i = 0; i < 3; i++) assert.equal(await consumer2.invoke('plus', [i, 2], { responseTimeout: 3000 }), i + 2);
    await until(() => shadowCalls >= 6);
  } finally {
    await client.close();
    await client2.close();
    await sc.terminate();
    await mainP.close();
    await shadowP.close();
  }
});
