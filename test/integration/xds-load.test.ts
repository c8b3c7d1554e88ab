/**
 * Config pushes under load drop nothing: while wrk (HTTP/1.1), h2load (HTTP/2) and a
 * sofa-rpc-node client (Bolt) run through listeners that arrived over xDS, the control plane
 * pushes new endpoints, a new cluster, a route change and a listener change that adds a filter
 * chain. Measured: 0 failed requests and 0 reset connections for each client, and the pushes
 * took effect (the new endpoints and route are reached before the load ends).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AdsServer } from '../helpers/ads-server';
import { backend, deadPort, run } from '../helpers/http';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { sofaClient, startSofaServer } from '../helpers/sofa';
import { edsCluster, endpoints, httpListener, routeConfig } from '../helpers/xds-resources';

const LOAD_S = 8;
const SVC = 'com.alipay.test.LoadService:1.0';

function bootstrap(adsPort: number): Record<string, unknown> {
  return {
    node: { id: 'sidecar~127.0.0.1~load-1.default~default.svc.cluster.local', cluster: 'load.default' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    dynamic_resources: {
      lds_config: { ads: {} }, cds_config: { ads: {} },
      ads_config: { api_type: 'DELTA_GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
    },
    static_resources: {
      clusters: [{ name: 'xds-grpc', type: 'STATIC', load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: adsPort } } } }] }] } }],
    },
  };
}

function boltListener(port: number): Record<string, unknown> {
  return {
    name: 'bolt', address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{
      filters: [{
        name: 'proxy',
        typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/mosn.proxy', value: { downstream_protocol: 'bolt', router_config_name: 'bolt' } },
      }],
    }],
  };
}

/** The HTTP/1.1 listener with a second filter chain (for 10.0.0.0/8 clients only): the existing chain is unchanged. */
function withSecondChain(l: Record<string, unknown>): Record<string, unknown> {
  const chains = l['filter_chains'] as Record<string, unknown>[];
  const second = { ...chains[0]!, filter_chain_match: { source_prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] } };
  return { ...l, filter_chains: [chains[0], second] };
}

function wrkErrors(out: string): { requests: number; non2xx: number; socketErrors: number } {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = se ? Number(se[1]) + Number(se[2]) + Number(se[3]) + Number(se[4]) : 0;
  return { requests, non2xx, socketErrors };
}

function h2loadResult(out: string): { done: number; succeeded: number; failed: number; errored: number; timeout: number; non2xx: number } {
  const m = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const s = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  assert.ok(m && s, `h2load output:\n${out}`);
  return { done: Number(m[1]), succeeded: Number(m[2]), failed: Number(m[3]), errored: Number(m[4]), timeout: Number(m[5]), non2xx: Number(s[2]) + Number(s[3]) + Number(s[4]) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('pushes of endpoints, a new cluster, routes and a filter chain under wrk, h2load and Bolt load: 0 failed requests, 0 resets', { timeout: 120_000 }, async (t) => {
  const ads = await AdsServer.start();
  const web1 = await backend('web1');
  const web2 = await backend('web2');
  const extra = await backend('extra');
  const h2a = await backend('h2a', undefined, true);
  const h2b = await backend('h2b', undefined, true);
  const sofa1 = await startSofaServer({ [SVC]: { plus: async (a: number, b: number) => a + b } });
  const sofa2 = await startSofaServer({ [SVC]: { plus: async (a: number, b: number) => a + b } });
  const [httpPort, h2Port, boltPort] = [await deadPort(), await deadPort(), await deadPort()];
  let sc: RunningSidecar | undefined;
  const client = sofaClient(boltPort);
  try {
    const clusters = [edsCluster('web'), edsCluster('h2'), edsCluster('bolt')];
    ads.set('cluster', clusters);
    ads.set('endpoints', [endpoints('web', [web1.port]), endpoints('h2', [h2a.port]), endpoints('bolt', [sofa1.port])]);
    const http = httpListener('http', httpPort, 'http', 'HTTP1');
    const listeners = [http, httpListener('h2', h2Port, 'h2', 'HTTP2'), boltListener(boltPort)];
    ads.set('listener', listeners);
    const routes = [
      routeConfig('http', [{ prefix: '/', cluster: 'web' }]),
      routeConfig('h2', [{ prefix: '/', cluster: 'h2' }]),
      routeConfig('bolt', [{ prefix: '/', cluster: 'bolt' }]),
    ];
    ads.set('route', routes);
    sc = await startSidecar(bootstrap(ads.port));
    // Ready: every listener answers.
    for (let i = 0; ; i++) {
      const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${httpPort}/`]).catch(() => ({ stdout: '' }));
      const r2 = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--http2-prior-knowledge', `http://127.0.0.1:${h2Port}/`]).catch(() => ({ stdout: '' }));
      if (r.stdout === '200' && r2.stdout === '200') break;
      assert.ok(i < 150, 'the xDS listeners come up');
      await sleep(100);
    }
    const consumer = await client.consumer(SVC);
    assert.equal(await consumer.invoke('plus', [1, 1], { responseTimeout: 3000 }), 2);

    // Load for LOAD_S seconds on the three listeners.
    const wrk = run('wrk', ['-t1', '-c16', `-d${LOAD_S}s`, '--latency', `http://127.0.0.1:${httpPort}/`], (LOAD_S + 30) * 1000);
    const h2load = run('h2load', ['-c4', '-m8', '-D', String(LOAD_S), `http://127.0.0.1:${h2Port}/`], (LOAD_S + 30) * 1000);
    let boltOk = 0;
    let boltFailed = 0;
    const boltEnd = Date.now() + LOAD_S * 1000;
    const bolt = (async () => {
      const workers = Array.from({ length: 8 }, async () => {
        while (Date.now() < boltEnd) {
          try {
            if ((await consumer.invoke('plus', [2, 3], { responseTimeout: 3000 })) === 5) boltOk++;
            else boltFailed++;
          } catch {
            boltFailed++;
          }
        }
      });
      await Promise.all(workers);
    })();

    // The pushes, spread over the load.
    const pushes: { what: string; at: number }[] = [];
    const t0 = Date.now();
    await sleep(1000);
    ads.set('endpoints', [endpoints('web', [web1.port, web2.port]), endpoints('h2', [h2a.port, h2b.port]), endpoints('bolt', [sofa1.port, sofa2.port])]);
    pushes.push({ what: 'endpoints (a second host in each cluster)', at: Date.now() - t0 });
    await sleep(1500);
    ads.set('cluster', [...clusters, edsCluster('extra')]);
    ads.set('endpoints', [endpoints('web', [web1.port, web2.port]), endpoints('h2', [h2a.port, h2b.port]), endpoints('bolt', [sofa1.port, sofa2.port]), endpoints('extra', [extra.port])]);
    pushes.push({ what: 'a new cluster with its endpoints', at: Date.now() - t0 });
    await sleep(1500);
    ads.set('route', [routeConfig('http', [{ prefix: '/extra', cluster: 'extra' }, { prefix: '/', cluster: 'web' }]), routes[1]!, routes[2]!]);
    pushes.push({ what: 'a route to the new cluster', at: Date.now() - t0 });
    await sleep(1500);
    ads.set('listener', [withSecondChain(http), listeners[1]!, listeners[2]!]);
    pushes.push({ what: 'the HTTP listener gains a filter chain', at: Date.now() - t0 });

    const [w, h, ] = await Promise.all([wrk, h2load, bolt]);
    const wr = wrkErrors(w.stdout);
    const hr = h2loadResult(h.stdout);
    t.diagnostic(`pushes: ${pushes.map((p) => `${p.what} at ${p.at} ms`).join('; ')}`);
    t.diagnostic(`wrk HTTP/1.1: ${wr.requests} requests, ${wr.non2xx} non-2xx, ${wr.socketErrors} socket errors (connect/read/write/timeout)`);
    t.diagnostic(`h2load HTTP/2: ${hr.done} done, ${hr.succeeded} succeeded, ${hr.failed} failed, ${hr.errored} errored, ${hr.timeout} timeout, ${hr.non2xx} non-2xx`);
    t.diagnostic(`sofa-rpc-node Bolt: ${boltOk} ok, ${boltFailed} failed`);

    // Every push was ACKed.
    for (const kind of ['cluster', 'endpoints', 'listener', 'route'] as const) {
      const nonce = ads.lastNonce(kind);
      assert.equal((await ads.waitFor((r) => r.kind === kind && r.nonce === nonce)).error, undefined, `${kind} ACKed`);
    }
    assert.ok(wr.requests > 1000, `wrk ran (${wr.requests})`);
    assert.equal(wr.non2xx, 0, 'wrk: no failed request');
    assert.equal(wr.socketErrors, 0, 'wrk: no reset or broken connection');
    assert.ok(hr.done > 1000, `h2load ran (${hr.done})`);
    assert.equal(hr.failed + hr.errored + hr.timeout + hr.non2xx, 0, 'h2load: no failed, errored or timed-out request');
    assert.ok(boltOk > 100, `Bolt ran (${boltOk})`);
    assert.equal(boltFailed, 0, 'Bolt: no failed request');
    // The pushes took effect under load.
    assert.ok(web2.seen.length > 0 && h2b.seen.length > 0, 'the new endpoints got traffic');
    const r = await run('curl', ['-s', `http://127.0.0.1:${httpPort}/extra`]);
    assert.equal(JSON.parse(r.stdout).backend, 'extra', 'the new route reaches the new cluster');
  } finally {
    await client.close();
    if (sc) assert.equal(await sc.terminate(), 0);
    await ads.stop();
    await Promise.all([web1.close(), web2.close(), extra.close(), h2a.close(), h2b.close(), sofa1.close(), sofa2.close()]);
  }
});
