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

test('rate_limits over xDS (route action and virtual host, include_vh_rate_limits) -> local_ratelimit descriptors; refused actions NACK with their path', () => {
  const ctx = recordingContext();
  const rc = (routeExtra: Record<string, unknown>, vhActions: unknown[] = [{ genericKey: { descriptorValue: 'vh' } }]) => fromJson(TYPE_URL.route, {
    name: 'r',
    virtualHosts: [{
      name: 'vh', domains: ['*'],
      rateLimits: [{ actions: vhActions }],
      routes: [
        { match: { prefix: '/own' }, route: { cluster: 'main', ...routeExtra } },
        { match: { prefix: '/' }, route: { cluster: 'main' } },
      ],
    }],
  });
  const t = translator.route(rc({
    includeVhRateLimits: true,
    rateLimits: [{
      stage: 1,
      actions: [
        { requestHeaders: { headerName: 'X-User', descriptorKey: 'user', skipIfAbsent: true } },
        { remoteAddress: {} },
        { headerValueMatch: { descriptorValue: 'get', expectMatch: false, headers: [{ name: ':method', stringMatch: { exact: 'GET' } }] } },
      ],
    }],
  }), ctx);
  assert.deepEqual(ctx.warnings, []);
  const r = compileHttpRouter(t.router);
  type Limits = { stage: number; from: number; actions: Record<string, unknown>[] }[] | null;
  const limitsOf = (path: string): Limits => (r.virtualHost('x')?.match({ path, header: () => undefined }) as unknown as { rateLimits: Limits }).rateLimits;
  const own = limitsOf('/own');
  assert.ok(own !== null);
  assert.deepEqual(own.map((l) => [l.stage, l.from, l.actions.map((a) => a.t)]), [
    [1, 0, ['request_headers', 'remote_address', 'header_value_match']],
    [0, 2, ['generic_key']], // the virtual host's, included by include_vh_rate_limits
  ]);
  assert.deepEqual({ ...own[0].actions[0] }, { t: 'request_headers', header: 'x-user', key: 'user', skipIfAbsent: true });
  assert.equal(own[0].actions[2].expect, false);
  assert.equal(own[0].actions[2].key, 'header_match');
  const plain = limitsOf('/');
  assert.deepEqual(plain?.map((l) => [l.stage, l.from, l.actions.map((a) => a.t)]), [[0, 1, ['generic_key']]]);
  // Actions that would not apply as written: NACK, naming the field.
  assert.throws(() => translator.route(rc({ rateLimits: [{ actions: [{ destinationCluster: {} }] }] }), recordingContext()), /route\.rateLimits\[0\]\.actions\[0\]\.destinationCluster: the destination_cluster rate limit action is not supported/);
  assert.throws(() => translator.route(rc({}, [{ genericKey: { descriptorValue: 'v' } }, { maskedRemoteAddress: {} }]), recordingContext()), /virtualHosts\[0\]\.rateLimits\[0\]\.actions\[1\]\.maskedRemoteAddress/);
  assert.throws(() => translator.route(rc({ rateLimits: [{ disableKey: 'k', actions: [{ remoteAddress: {} }] }] }), recordingContext()), /rateLimits\[0\]\.disableKey/);
});
