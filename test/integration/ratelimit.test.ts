/**
 * Rate limits through the real sidecar with 2 workers: one limit for the process (shared cells),
 * whatever worker a connection lands on. A load of 5N per second (autocannon for HTTP,
 * sofa-rpc-node on 4 connections for Bolt): the accepted rate stays within 10% of N, the
 * rejects are the protocol's (HTTP 429 with x-ratelimit-*, Bolt the codec's limit error).
 * MOSN's flowcontrol-sample server config (flowControlFilter, threshold 1 on /test) answers
 * as its README shows: success, then "blocked".
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backend, httpConfig, request, run } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';
import { boltProxyConfig, sofaClient, startSofaServer, type SofaClient } from '../helpers/sofa';

const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
const SVC = 'com.example.Limited';

/** Accepted per second over the steady part: (accepted - the bucket's initial burst) / span of the accepted timestamps. */
function steadyRate(times: number[], burst: number): number {
  times.sort((a, b) => a - b);
  const span = (times[times.length - 1] - times[0]) / 1000;
  return (times.length - burst) / span;
}

test('local_ratelimit, 2 workers, HTTP: N=200/s under 5N/s from autocannon; 429 with x-ratelimit-* headers', { timeout: 90_000 }, async () => {
  const N = 200;
  const times: number[] = [];
  const be = await backend('web', (_req, res) => {
    times.push(performance.now());
    res.end('ok');
  });
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] };
  const cfg = httpConfig([{ name: 'http', downstream: 'Http1', router: 'r' }], [router], { web: [be.port] }) as any;
  cfg.servers[0].listeners[0].stream_filters = [{
    type: 'local_ratelimit',
    config: {
      stat_prefix: 'http_local_rate_limiter',
      token_bucket: { max_tokens: N / 10, tokens_per_fill: N / 10, fill_interval: '100ms' },
      filter_enabled: ALL, filter_enforced: ALL, enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
    },
  }];
  const sc = await startSidecar(cfg, { workers: 2 });
  try {
    const port = sc.ports.get('http')!;
    // h2load paces its requests (--rps per client); autocannon's -R sends each second's share in a burst.
    const r = await run('h2load', ['--h1', '-c', '10', '--rps', String((5 * N) / 10), '-D', '5', `http://127.0.0.1:${port}/x`], 60_000);
    const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(r.stdout);
    const total = /requests: (\d+) total/.exec(r.stdout);
    assert.ok(codes !== null && total !== null, r.stdout);
    const offered = Number(total[1]) / 5;
    const limitedCount = Number(codes[3]);
    const rate = steadyRate(times, N / 10);
    console.log(`local_ratelimit N=${N}/s: offered ${offered.toFixed(0)}/s, accepted ${rate.toFixed(1)}/s, 429s ${limitedCount}`);
    assert.ok(offered >= 2.5 * N, `the load reached ${offered}/s`);
    assert.ok(Math.abs(rate - N) <= 0.1 * N, `accepted ${rate}/s for a limit of ${N}/s`);
    assert.equal(Number(codes[2]) + Number(codes[4]), 0, 'only 2xx and 429');
    // Every request the backend answered was a 2xx at h2load, except those still in flight when
    // -D ended h2load (at most one per connection: 10): seen 1010 2xx for 1018 at load 7-10.
    const unseen = times.length - Number(codes[1]);
    assert.ok(unseen >= 0 && unseen <= 10, `backend ${times.length} requests, h2load ${codes[1]} 2xx`);
    // A limited answer, in HTTP's form.
    let limited = null;
    for (let i = 0; i < 100 && limited === null; i++) {
      const x = await request(port, '/y');
      if (x.status === 429) limited = x;
      else assert.equal(x.status, 200);
    }
    assert.ok(limited !== null, 'a burst gets a 429');
    assert.equal(limited.body, 'local_rate_limited');
    assert.equal(limited.headers['x-ratelimit-limit'], String(N / 10));
    assert.equal(limited.headers['x-ratelimit-remaining'], '0');
    assert.ok(Number(limited.headers['x-ratelimit-reset']) >= 0);
    const s = (await sc.stats()).server as Record<string, number>;
    assert.ok(s['local_ratelimit.http.http_local_rate_limiter.rate_limited'] >= limitedCount, JSON.stringify(s));
  } finally {
    await sc.terminate();
    await be.close();
  }
});

test('local_ratelimit, 2 workers, Bolt: N=100/s under 5N/s from sofa-rpc-node on 4 connections; rejects are Bolt errors', { timeout: 90_000 }, async () => {
  const N = 100;
  const times: number[] = [];
  const sofa = await startSofaServer({ [SVC]: { async hello() { times.push(performance.now()); return 'hi'; } } });
  const cfg = boltProxyConfig({ clusters: { sofa: [sofa.port] } }) as any;
  cfg.servers[0].listeners[0].stream_filters = [{
    type: 'local_ratelimit',
    config: { stat_prefix: 'bolt', token_bucket: { max_tokens: 10, tokens_per_fill: 10, fill_interval: '100ms' }, filter_enabled: ALL, filter_enforced: ALL },
  }];
  const sc = await startSidecar(cfg, { workers: 2 });
  const clients: SofaClient[] = [];
  try {
    const port = sc.ports.get('bolt')!;
    const consumers = [];
    for (let i = 0; i < 4; i++) {
      const c = sofaClient(port);
      clients.push(c);
      consumers.push(await c.consumer(SVC));
    }
    let ok = 0;
    const errors = new Map<string, number>();
    const calls: Promise<void>[] = [];
    const seconds = 5;
    const t0 = performance.now();
    // 5N per second: every 20 ms, each of the 4 connections sends (5N / 50 / 4) requests.
    const per = (5 * N) / 50 / 4;
    for (let tick = 0; tick < seconds * 50; tick++) {
      const wait = t0 + tick * 20 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      for (const c of consumers) {
        for (let k = 0; k < per; k++) {
          calls.push(c.invoke('hello', [], { responseTimeout: 5000 }).then(
            () => void ok++,
            (e: Error) => void errors.set(e.message, (errors.get(e.message) ?? 0) + 1),
          ));
        }
      }
    }
    await Promise.all(calls);
    const rate = steadyRate(times, 10);
    console.log(`Bolt local_ratelimit N=${N}/s: sent ${calls.length} in ${seconds}s, accepted ${rate.toFixed(1)}/s, errors ${JSON.stringify([...errors])}`);
    assert.ok(Math.abs(rate - N) <= 0.1 * N, `accepted ${rate}/s for a limit of ${N}/s`);
    assert.equal(ok, times.length);
    assert.equal(errors.size, 1, 'one kind of reject');
    // sofa-bolt-node names the Bolt status: UNKNOWN (0x03, MOSN's mapping of LimitExceededCode) with the filter's text.
    const [msg, n] = [...errors][0];
    assert.match(msg, /local_rate_limited/);
    assert.equal(ok + n, calls.length);
  } finally {
    for (const c of clients) await c.close();
    await sc.terminate();
    await sofa.close();
  }
});

test('MOSN flowcontrol-sample (server_config.json): threshold 1 on /test answers success, then "blocked"; 2 workers share the count', { timeout: 60_000 }, async () => {
  const sample = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mosn', 'flowcontrol-sample', 'server_config.json'), 'utf8'));
  const be = await backend('web', (_req, res) => res.end('success'));
  sample.servers[0].listeners[0].address = '127.0.0.1:0';
  sample.cluster_manager.clusters[0].hosts[0].address = `127.0.0.1:${be.port}`;
  sample.admin.address.socket_address = { address: '127.0.0.1', port_value: 0 };
  const sc = await startSidecar(sample, { workers: 2 });
  try {
    const port = sc.ports.get('serverListener')!;
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await request(port, '/test'));
    assert.deepEqual(got.map((g) => [g.status, g.body]), [[200, 'success'], [500, 'blocked'], [500, 'blocked']]);
    assert.equal((await request(port, '/other')).status, 200, 'other paths are not limited');
    const s = (await sc.stats()).server as Record<string, number>;
    assert.equal(s['flowcontrol.serverListener./test.block'], 2);
  } finally {
    await sc.terminate();
    await be.close();
  }
});
