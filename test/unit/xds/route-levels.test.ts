/**
 * Route configuration over xDS, the levels Envoy inherits from: request_mirror_policies of the
 * route configuration apply to the routes whose route and virtual host have none (the most
 * specific level wins).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { TYPE_URL } from '../../../src/xds/types';
import { fromJson } from '../../../src/xds/proto';
import { translator } from '../../../src/xds/translate';
import { compileHttpRouter } from '../../../src/router/http-routes';
import { recordingContext } from './fixtures';

const frac = (n: number) => ({ runtimeFraction: { defaultValue: { numerator: n, denominator: 'HUNDRED' } } });

test('request_mirror_policies: route over virtual host over route configuration', () => {
  const ctx = recordingContext();
  const t = translator.route(fromJson(TYPE_URL.route, {
    name: 'r',
    requestMirrorPolicies: [{ cluster: 'rc_shadow', ...frac(30) }],
    virtualHosts: [
      {
        name: 'with_vh', domains: ['a.example'],
        requestMirrorPolicies: [{ cluster: 'vh_shadow' }],
        routes: [
          { match: { prefix: '/own' }, route: { cluster: 'main', requestMirrorPolicies: [{ cluster: 'route_shadow' }] } },
          { match: { prefix: '/' }, route: { cluster: 'main' } },
        ],
      },
      {
        name: 'plain', domains: ['*'],
        routes: [
          { match: { prefix: '/own' }, route: { cluster: 'main', requestMirrorPolicies: [{ cluster: 'route_shadow' }] } },
          { match: { prefix: '/' }, route: { cluster: 'main' } },
          { match: { prefix: '/d' }, directResponse: { status: 204 } },
        ],
      },
    ],
  }), ctx);
  assert.deepEqual(ctx.warnings, []);
  const r = compileHttpRouter(t.router);
  const req = (path: string) => ({ path, header: () => undefined });
  const mirrorOf = (host: string, path: string) => {
    const m = r.virtualHost(host)?.match(req(path));
    assert.ok(m !== null && m !== undefined && typeof m === 'object', `${host}${path} routes`);
    return (m as { mirror: readonly { cluster: string; fraction: number }[] | null }).mirror?.map((p) => `${p.cluster}@${p.fraction}`) ?? null;
  };
  assert.deepEqual(mirrorOf('a.example', '/own'), ['route_shadow@1']);
  assert.deepEqual(mirrorOf('a.example', '/x'), ['vh_shadow@1']);
  assert.deepEqual(mirrorOf('b.example', '/own'), ['route_shadow@1']);
  assert.deepEqual(mirrorOf('b.example', '/x'), ['rc_shadow@0.3']);
});
