/**
 * Per-route HTTP stats and latency histograms end to end: the real CLI with two workers, two
 * routes to two clusters, node:http backends with known delays, some 5xx, some retried; the
 * admin's JSON and Prometheus outputs checked against what was sent; a reload keeps the slots.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startSidecar } from '../helpers/sidecar';
import { backend, httpConfig, request, request2 } from '../helpers/http';
import type { StatsSnapshot } from '../../src/stats/aggregate';

const SLOW_MS = 20;
const FAST_MS = 5;

function router(extraFirst: boolean): Record<string, unknown> {
  const routes: Record<string, unknown>[] = [
    { name: 'api', match: { prefix: '/api/' }, route: { cluster_name: 'slow', retry_policy: { retry_on: '5xx', num_retries: 1 } } },
    { match: { prefix: '/' }, route: { cluster_name: 'fast' } },
  ];
  // Reload: a new named route in front; "api" keeps its name (and slot) at another position.
  if (extraFirst) routes.unshift({ name: 'health', match: { path: '/healthz' }, direct_response: { status: 200, body: 'ok' } });
  return { router_config_name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routers: routes }] };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The Prometheus sample value of `name` whose labels include all of `labels`. */
function promValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const close = line.lastIndexOf('}');
    const set = new Map([...line.slice(name.length + 1, close).matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => set.get(k) === v)) return Number(line.slice(close + 2));
  }
  return undefined;
}

test('per-route counters, retries and latency histograms over two workers, JSON and Prometheus; reload keeps route slots', { timeout: 120_000 }, async () => {
  const flakySeen = new Set<string>();
  // slow: every answer after 20 ms; /api/flaky?n=K fails (503) the first time K is seen; /api/bad always 500.
  const slow = await backend('slow', (req, res) => {
    setTimeout(() => {
      const url = req.url ?? '';
      let status = 200;
      if (url.startsWith('/api/bad')) status = 500;
      else if (url.startsWith('/api/flaky') && !flakySeen.has(url)) {
        flakySeen.add(url);
        status = 503;
      }
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(String(status));
    }, SLOW_MS);
  });
  // fast: 5 ms; /boom answers 502 (no retry policy on this route).
  const fast = await backend('fast', (req, res) => {
    setTimeout(() => {
      const status = (req.url ?? '').startsWith('/boom') ? 502 : 200;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(String(status));
    }, FAST_MS);
  });
  const cfg = httpConfig([{ name: 'http', downstream: 'Auto', upstream: 'Http1', router: 'r' }], [router(false)], { slow: [slow.port], fast: [fast.port] });
  const sc = await startSidecar(cfg, { workers: 2 });
  try {
    const port = sc.ports.get('http')!;
    const admin = `http://127.0.0.1:${sc.adminPort}`;
    const stats = async (): Promise<StatsSnapshot> => (await (await fetch(`${admin}/api/v1/stats`)).json()) as StatsSnapshot;
    // Fresh connections (h1 and h2c alternately), so both workers take a share.
    const send = async (paths: string[]): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < paths.length; i += 5) {
        const batch = paths.slice(i, i + 5).map((p, j) => ((i + j) % 2 === 0 ? request(port, p) : request2(port, p)));
        for (const r of await Promise.all(batch)) out.push(r.status);
      }
      return out;
    };
    const apiPaths = [
      ...Array.from({ length: 10 }, (_, i) => `/api/ok?i=${i}`),
      ...Array.from({ length: 5 }, (_, i) => `/api/flaky?n=${i}`),
      ...Array.from({ length: 5 }, (_, i) => `/api/bad?i=${i}`),
    ];
    const restPaths = [...Array.from({ length: 10 }, (_, i) => `/ok?i=${i}`), ...Array.from({ length: 5 }, (_, i) => `/boom?i=${i}`)];
    const apiStatus = await send(apiPaths);
    const restStatus = await send(restPaths);
    assert.deepEqual([apiStatus.filter((s) => s === 200).length, apiStatus.filter((s) => s === 500).length], [15, 5], 'flaky ones succeed on their retry');
    assert.deepEqual([restStatus.filter((s) => s === 200).length, restStatus.filter((s) => s === 502).length], [10, 5]);

    // The admin asks the workers for their histograms before answering: no wait needed.
    const st = await stats();
    assert.equal(st.server.workers, 2);
    const api = st.routes['r.vh.api'];
    const rest = st.routes['r.vh.1'];
    assert.ok(api && rest, JSON.stringify(Object.keys(st.routes)));
    assert.equal(api.rq_total, 20);
    assert.deepEqual([api.rq_1xx, api.rq_2xx, api.rq_3xx, api.rq_4xx, api.rq_5xx], [0, 15, 0, 0, 5]);
    assert.equal(api.upstream_rq_retry, 10, '5 flaky + 5 bad retried once each');
    assert.equal(api.upstream_rq_retry_success, 5);
    assert.equal(api.upstream_rq_reset + api.upstream_rq_timeout + api.downstream_rq_reset, 0);
    assert.equal(rest.rq_total, 15);
    assert.deepEqual([rest.rq_2xx, rest.rq_5xx, rest.upstream_rq_retry], [10, 5, 0]);

    const apiTime = st.histograms.routes['r.vh.api'].downstream_rq_time;
    const restTime = st.histograms.routes['r.vh.1'].downstream_rq_time;
    assert.equal(apiTime.count, 20, 'one route latency per request');
    assert.equal(restTime.count, 15);
    assert.ok(apiTime.p50 >= SLOW_MS, `api p50 ${apiTime.p50} ms >= ${SLOW_MS}`);
    assert.ok(apiTime.max >= 2 * SLOW_MS, `a retried request took two backend delays: max ${apiTime.max}`);
    assert.ok(restTime.p50 >= FAST_MS && restTime.p50 < apiTime.p50, `rest p50 ${restTime.p50}`);
    for (const q of ['p50', 'p90', 'p99', 'p99_9', 'max'] as const) assert.ok(apiTime[q] <= 10_000, `${q} bounded`);
    assert.ok(apiTime.p50 <= apiTime.p90 && apiTime.p90 <= apiTime.p99 && apiTime.p99 <= apiTime.p99_9 && apiTime.p99_9 <= apiTime.max);
    const slowTime = st.histograms.clusters.slow.upstream_rq_time;
    assert.equal(slowTime.count, 30, 'one upstream latency per attempt (20 requests + 10 retries)');
    assert.equal(slowTime.count, st.clusters.slow.upstream_rq_2xx + st.clusters.slow.upstream_rq_5xx);
    assert.ok(slowTime.p50 >= SLOW_MS, `slow cluster p50 ${slowTime.p50}`);
    assert.equal(st.histograms.clusters.fast.upstream_rq_time.count, 15);

    // Prometheus: the same numbers; histograms with Envoy's bucket bounds.
    const prom = await (await fetch(`${admin}/stats/prometheus`)).text();
    assert.equal(promValue(prom, 'outrigger_route_rq_total', { route: 'r.vh.api' }), 20);
    assert.equal(promValue(prom, 'outrigger_route_rq_5xx_total', { route: 'r.vh.api' }), 5);
    assert.equal(promValue(prom, 'outrigger_route_upstream_rq_retry_total', { route: 'r.vh.api' }), 10);
    assert.equal(promValue(prom, 'outrigger_route_rq_5xx_total', { route: 'r.vh.1' }), 5);
    assert.match(prom, /# TYPE outrigger_route_downstream_rq_time histogram\n/);
    assert.match(prom, /# TYPE outrigger_cluster_upstream_rq_time histogram\n/);
    assert.equal(promValue(prom, 'outrigger_route_downstream_rq_time_count', { route: 'r.vh.api' }), 20);
    assert.equal(promValue(prom, 'outrigger_route_downstream_rq_time_bucket', { route: 'r.vh.api', le: '+Inf' }), 20);
    assert.equal(promValue(prom, 'outrigger_route_downstream_rq_time_bucket', { route: 'r.vh.api', le: '10' }), 0, `nothing under 10 ms: the backend waits ${SLOW_MS}`);
    assert.equal(promValue(prom, 'outrigger_route_downstream_rq_time_bucket', { route: 'r.vh.1', le: '1' }), 0);
    assert.equal(promValue(prom, 'outrigger_cluster_upstream_rq_time_count', { cluster: 'slow' }), 30);
    const sum = promValue(prom, 'outrigger_route_downstream_rq_time_sum', { route: 'r.vh.api' }) ?? 0;
    assert.ok(sum >= 20 * SLOW_MS, `sum ${sum} ms`);

    // Reading again without traffic changes nothing (deltas are added once).
    const again = await stats();
    assert.equal(again.histograms.routes['r.vh.api'].downstream_rq_time.count, 20);
    assert.equal(again.histograms.clusters.slow.upstream_rq_time.count, 30);

    // Reload with a route inserted before "api": its counters continue in the same slot.
    fs.writeFileSync(sc.configPath, JSON.stringify(httpConfig([{ name: 'http', downstream: 'Auto', upstream: 'Http1', router: 'r' }], [router(true)], { slow: [slow.port], fast: [fast.port] })));
    sc.proc.kill('SIGHUP');
    const t0 = Date.now();
    while ((await stats()).server.config_version !== 2) {
      assert.ok(Date.now() - t0 < 10_000, `no reload:\n${sc.output()}`);
      await sleep(50);
    }
    assert.deepEqual(await send(['/api/ok?after=1', '/healthz', '/healthz']), [200, 200, 200]);
    const after = await stats();
    assert.equal(after.routes['r.vh.api'].rq_total, 21);
    assert.equal(after.routes['r.vh.api'].rq_2xx, 16);
    assert.equal(after.histograms.routes['r.vh.api'].downstream_rq_time.count, 21);
    assert.equal(after.routes['r.vh.health'].rq_2xx, 2, 'direct responses count on their route');
    assert.equal(after.routes['r.vh.1'].rq_total, 15, 'index 1 is now "api" by position, but "api" is named: index 1 is unused');
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await slow.close();
    await fast.close();
  }
});
