/**
 * Envoy's request_mirror_policies over xDS (route action and virtual host, runtime_fraction):
 * translated, served by a real Sidecar with no mirror filter (Envoy's router mirrors by itself),
 * the shadow backend sees copies of the routes whose fraction is 100% and none of those at 0%.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { fromJson } from '../../src/xds/proto';
import { translator } from '../../src/xds/translate';
import { TYPE_URL, type TranslationContext } from '../../src/xds/types';
import { backend, request } from '../helpers/http';
import { sleep } from '../helpers/sofa';
import { serveTranslated } from '../helpers/xds';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

test('request_mirror_policies over xDS: the router sends copies (route policy at 100%), none where the virtual host\'s 0% applies', { timeout: 30_000 }, async (t) => {
  const main = await backend('main');
  const shadow = await backend('shadow');
  t.after(async () => {
    await main.close();
    await shadow.close();
  });
  const warnings: string[] = [];
  const ctx: TranslationContext = { secret: () => undefined, warn: (_r, p, m) => warnings.push(`${p}: ${m}`) };
  const cluster = (name: string, port: number) => translator.cluster(fromJson(TYPE_URL.cluster, {
    name, type: 'STATIC', connectTimeout: '1s',
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
  }), ctx).cluster;
  const tl = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'mirror_l', address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
      '@type': HCM, statPrefix: 'm',
      routeConfig: { name: 'r', virtualHosts: [{
        name: 'vh', domains: ['*'],
        requestMirrorPolicies: [{ cluster: 'shadow', runtimeFraction: { defaultValue: { numerator: 0, denominator: 'HUNDRED' } } }],
        routes: [
          { match: { prefix: '/m' }, route: { cluster: 'main', timeout: '2s', requestMirrorPolicies: [{ cluster: 'shadow', runtimeFraction: { defaultValue: { numerator: 100 } } }] } },
          { match: { prefix: '/' }, route: { cluster: 'main', timeout: '2s' } },
        ],
      }] },
      httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    } }] }],
  }), ctx);
  assert.deepEqual(warnings, []);
  const [port] = await serveTranslated(t, [tl], [cluster('main', main.port), cluster('shadow', shadow.port)]);
  for (let i = 0; i < 3; i++) {
    const r = await request(port, `/m/${i}`, { method: 'POST', body: `copy ${i}`, headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).backend, 'main');
  }
  for (let i = 0; i < 3; i++) assert.equal((await request(port, `/n/${i}`)).status, 200);
  const end = Date.now() + 3000;
  while (shadow.seen.length < 3 && Date.now() < end) await sleep(20);
  await sleep(100); // a stray copy of /n would have arrived by now
  assert.deepEqual(shadow.seen.map((s) => `${s.url} ${s.body}`).sort(), ['/m/0 copy 0', '/m/1 copy 1', '/m/2 copy 2']);
  assert.ok(shadow.seen.every((s) => String(s.headers.host).endsWith('-shadow')));
  assert.equal(main.seen.length, 6);
});
