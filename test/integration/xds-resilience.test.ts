/**
 * A cluster whose active health check arrives as an Envoy http_health_check (CDS-shaped
 * resource, decoded and translated) in a real Sidecar: the check requests carry the configured
 * path and Host, an expected_statuses range accepts the healthy host's 204, and when one of the
 * two hosts stops answering, requests stop going to it within interval × unhealthy_threshold.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { fromJson } from '../../src/xds/proto';
import { translator } from '../../src/xds/translate';
import { TYPE_URL, type TranslationContext } from '../../src/xds/types';
import { backend, request, type Backend } from '../helpers/http';
import { sleep } from '../helpers/sofa';
import { serveTranslated } from '../helpers/xds';

const ctx: TranslationContext = { secret: () => undefined, warn: () => undefined };
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const INTERVAL = 300;
const TIMEOUT = 200;
const UNHEALTHY = 2;
/** Timer and scheduling slack on a loaded 2-CPU machine. */
const SLACK = 1000;

async function until(what: string, limitMs: number, pred: () => boolean | Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - t0;
    if (Date.now() - t0 > limitMs) assert.fail(`${what}: not within ${limitMs} ms`);
    await sleep(25);
  }
}

test('Envoy http_health_check over xDS: a host that stops answering gets no more requests', { timeout: 60_000 }, async (t) => {
  const mk = (name: string): Promise<Backend> => backend(name, (req, res) => {
    if (req.url === '/healthz') return void res.writeHead(204).end(); // accepted only through expected_statuses [200, 300)
    res.end(name);
  });
  const a = await mk('a');
  const b = await mk('b');
  let bClosed = false;
  t.after(async () => {
    await a.close();
    if (!bClosed) await b.close();
  });
  const warnings: string[] = [];
  const cluster = translator.cluster(fromJson(TYPE_URL.cluster, {
    name: 'outbound|8080||svc.default.svc.cluster.local', type: 'STATIC', connectTimeout: '1s', lbPolicy: 'ROUND_ROBIN',
    loadAssignment: {
      clusterName: 'outbound|8080||svc.default.svc.cluster.local',
      endpoints: [{ lbEndpoints: [a.port, b.port].map((p) => ({ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: p } } } })) }],
    },
    healthChecks: [{
      timeout: `${TIMEOUT / 1000}s`, interval: `${INTERVAL / 1000}s`, unhealthyThreshold: UNHEALTHY, healthyThreshold: 1,
      httpHealthCheck: { host: 'svc.internal', path: '/healthz', expectedStatuses: [{ start: 200, end: 300 }] },
    }],
  }), { ...ctx, warn: (_r, p, m) => warnings.push(`${p}: ${m}`) }).cluster;
  assert.deepEqual(warnings, []);
  const tl = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'outbound_8080', address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
      '@type': HCM, statPrefix: 'out',
      routeConfig: { name: '8080', virtualHosts: [{ name: 'svc', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|8080||svc.default.svc.cluster.local', timeout: '2s' } }] }] },
      httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    } }] }],
  }), ctx);
  const [port] = await serveTranslated(t, [tl], [cluster]);

  const checks = (be: Backend): number => be.seen.filter((s) => s.url === '/healthz').length;
  await until('first checks of both hosts', 5000, () => checks(a) >= 2 && checks(b) >= 2);
  const hc = a.seen.find((s) => s.url === '/healthz');
  assert.equal(hc?.method, 'GET');
  assert.equal(hc?.headers.host, 'svc.internal');
  const spread = await Promise.all(Array.from({ length: 10 }, () => request(port, '/x')));
  assert.deepEqual([...new Set(spread.map((r) => `${r.status} ${r.body}`))].sort(), ['200 a', '200 b'], 'both hosts serve while healthy');

  await b.close(); // b stops answering: connections are refused
  bClosed = true;
  let run = 0;
  const out = await until('requests only to a', 10_000, async () => {
    const r = await request(port, '/x');
    run = r.status === 200 && r.body === 'a' ? run + 1 : 0;
    return run >= 20;
  });
  // The last 20 requests took some time too: the host was out at most `out` ms after it closed.
  assert.ok(out <= INTERVAL * UNHEALTHY + TIMEOUT + SLACK, `b out after ${out} ms (bound ${INTERVAL * UNHEALTHY + TIMEOUT} + slack)`);
  const after = await Promise.all(Array.from({ length: 20 }, () => request(port, '/x')));
  assert.deepEqual([...new Set(after.map((r) => `${r.status} ${r.body}`))], ['200 a']);
});
