/**
 * Envoy's interval-based outlier detection with real peers (issue 13): five HTTP backends behind
 * the proxy (2 workers), one failing half of its requests; under a wrk load the success-rate rule
 * ejects that one (and only it), the counters by kind show in /api/v1/stats and Prometheus, and
 * the traffic afterwards sees no error.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { backend, httpConfig, request, run, type Backend } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';

const getText = async (port: number, p: string): Promise<string> => (await request(port, p)).body;

test('success-rate ejection: of 5 hosts, the one failing half its requests is ejected under wrk load; counters by kind in stats and Prometheus', { timeout: 60_000 }, async () => {
  const backends: Backend[] = [];
  for (let i = 0; i < 4; i++) backends.push(await backend(`g${i}`, (_q, res) => res.end('ok')));
  let n = 0;
  const bad = await backend('bad', (_q, res) => (n++ % 2 === 0 ? res.writeHead(503).end('busy') : res.end('ok')));
  backends.push(bad);
  const cfg = httpConfig(
    [{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'svc' } }] }] }],
    { svc: backends.map((b) => b.port) },
    {
      svc: {
        // Consecutive rules off: only the interval rule can eject (5 hosts = success_rate_minimum_hosts' default).
        outlier_detection: { consecutive_5xx: 0, interval: '300ms', base_ejection_time: '60s', max_ejection_percent: 20, success_rate_request_volume: 20 },
      },
    },
  );
  const sc = await startSidecar(cfg, { workers: 2 });
  try {
    const lp = sc.ports.get('h')!;
    const r = await run('wrk', ['-t1', '-c8', '-d2s', `http://127.0.0.1:${lp}/`]);
    assert.match(r.stdout, /Non-2xx or 3xx responses: \d+/, 'the bad host answered 503s before its ejection');
    const all = JSON.parse(await getText(sc.adminPort, '/api/v1/clusters')) as Record<string, { hosts: { address: string; health: string; ejection_reason?: string }[] }>;
    for (const h of all.svc.hosts) {
      if (h.address === `127.0.0.1:${bad.port}`) {
        assert.equal(h.health, 'ejected', JSON.stringify(all.svc.hosts));
        assert.equal(h.ejection_reason, 'success_rate');
      } else assert.equal(h.health, 'healthy', JSON.stringify(h));
    }
    const after = await Promise.all(Array.from({ length: 40 }, () => request(lp, '/after')));
    assert.deepEqual([...new Set(after.map((x) => x.status))], [200]);
    const st = await sc.stats();
    assert.equal(st.clusters.svc['outlier_detection.ejections_enforced_success_rate'], 1);
    assert.ok(st.clusters.svc['outlier_detection.ejections_detected_success_rate'] >= 1);
    assert.equal(st.clusters.svc['outlier_detection.ejections_enforced_consecutive_5xx'], 0);
    assert.equal(st.clusters.svc['outlier_detection.ejections_active'], 1);
    const prom = await getText(sc.adminPort, '/stats/prometheus');
    assert.match(prom, /outrigger_cluster_outlier_detection_ejections_enforced_by_type_total\{cluster="svc",type="success_rate"\} 1\n/);
    assert.match(prom, /outrigger_cluster_outlier_detection_ejections_overflow_total\{cluster="svc"\} 0\n/);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    for (const b of backends) await b.close();
  }
});
