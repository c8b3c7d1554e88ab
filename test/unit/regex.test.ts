/** Linear-time route regexes, the shared matcher core and RPC vs HTTP-only routes. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { foldCase, linearRegex, literalPrefix } from '../../src/router/regex';
import { compileHttpRouter, type HttpRouteRequest } from '../../src/router/http-routes';
import { compileRouter, MALFORMED, type RouteRequest } from '../../src/router/router';
import { validateRouterConfig } from '../../src/router/validate';
import type { HeaderName } from '../../src/protocol/types';

function req(path: string, headers: Record<string, string> = {}): HttpRouteRequest {
  return { path, header: (n) => headers[n] };
}

function rpc(service: string): RouteRequest {
  return { routeKey: () => service, header: (n: HeaderName) => (n.name === 'service' ? service : undefined) };
}

test('a catastrophic-backtracking path regex answers in milliseconds (28 chars and 64 KiB)', () => {
  const r = compileHttpRouter({
    name: 'r',
    virtualHosts: [{ domains: ['*'], routers: [{ match: { regex: '^/(a+)+$' }, route: { cluster_name: 'redos' } }, { match: { regex: '(a+)+$' }, route: { cluster_name: 'redos2' } }] }],
  });
  const vh = r.virtualHost('x')!;
  for (const len of [27, 64 * 1024]) {
    const path = '/' + 'a'.repeat(len) + '!';
    const t0 = performance.now();
    assert.equal(vh.match(req(path)), null);
    const ms = performance.now() - t0;
    assert.ok(ms < 200, `${len + 2}-char hostile path took ${ms.toFixed(1)} ms`);
  }
  assert.equal(vh.match(req('/aaaa'))!.clusterName, 'redos');
});

test('header and RPC service regexes are linear too', () => {
  const h = compileHttpRouter({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match: { prefix: '/', headers: [{ name: 'x-v', value: '(a|aa)+', regex: true }] }, route: { cluster_name: 'h' } }] }] });
  let t0 = performance.now();
  assert.equal(h.virtualHost('x')!.match(req('/', { 'x-v': 'a'.repeat(40) + 'b' })), null);
  assert.ok(performance.now() - t0 < 200);
  const r = compileRouter({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match: { headers: [{ name: 'service', value: '(x+x+)+y', regex: true }] }, route: { cluster_name: 'c' } }] }] });
  t0 = performance.now();
  assert.equal(r.match(rpc('x'.repeat(40))), null);
  assert.ok(performance.now() - t0 < 200);
});

test('patterns that cannot run in linear time are refused with the JSON path and the value', () => {
  const bad = (regex: string) => () => compileHttpRouter({ name: 'b', virtualHosts: [{ domains: ['*'], routers: [{ match: { regex }, route: { cluster_name: 'a' } }] }] });
  assert.throws(bad('(a)\\1'), /routers\[b\]\.virtual_hosts\[0\]\.routers\[0\]\.match\.regex: regex "\(a\)\\\\1" cannot be matched in linear time/);
  assert.throws(bad('/(?=admin)x'), /match\.regex: .*cannot be matched in linear time/);
  assert.throws(bad('(?<!a)b'), /cannot be matched in linear time/);
  assert.throws(bad('('), /match\.regex: bad regex/);
  assert.throws(
    () => compileRouter({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match: { headers: [{ name: 'service', value: '(s)\\1', regex: true }] }, route: { cluster_name: 'c' } }] }] }),
    /routers\[0\]\.match\.headers\[0\]\.value: regex .* cannot be matched in linear time/,
  );
});

test('case-insensitive regex routes fold the pattern instead of using the i flag', () => {
  assert.equal(foldCase('/Ab[c-e]\\d{2}(?<nm>x)'), '/[Aa][bB][c-eC-E]\\d{2}(?<nm>[xX])');
  const re = linearRegex('/api/[a-c]+/V1', 'w', true);
  for (const s of ['/API/abc/v1', '/api/ABC/V1', '/Api/bB/v1']) assert.ok(re.test(s), s);
  for (const s of ['/api/abd/v1', '/api//v1']) assert.ok(!re.test(s), s);
  assert.ok(!linearRegex('[^a-z]', 'w', true).test('Q'), 'negated classes fold both cases');
  const r = compileHttpRouter({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match: { regex: '/Item/[0-9]+', case_sensitive: false }, route: { cluster_name: 'i' } }] }] });
  assert.equal(r.virtualHost('x')!.match(req('/ITEM/42'))!.clusterName, 'i');
});

test('safe_regex (Envoy form) is a path regex; unknown match conditions are refused', () => {
  const r = compileHttpRouter({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match: { safe_regex: { google_re2: {}, regex: '/s/[0-9]+' } }, route: { cluster_name: 's' } }] }] });
  assert.equal(r.virtualHost('x')!.match(req('/s/1'))!.clusterName, 's');
  assert.equal(r.virtualHost('x')!.match(req('/t')), null, 'safe_regex is not ignored');
  assert.throws(
    () => compileHttpRouter({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match: { dsl_expressions: [{ expression: 'x' }] }, route: { cluster_name: 'a' } }] }] }),
    /routers\[0\]\.match\.dsl_expressions: .*not supported/,
  );
  assert.throws(() => compileHttpRouter({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match: { prefix: '/', path: '/x' }, route: { cluster_name: 'a' } }] }] }), /exclusive/);
});

test('RPC requests never match HTTP-only routes (path, prefix, regex)', () => {
  const routes = (match: Record<string, unknown>) => compileRouter({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match, route: { cluster_name: 'http' } }] }] });
  for (const m of [{ prefix: '/' }, { path: '/x' }, { regex: '.*' }, { safe_regex: { regex: '.*' } }]) assert.equal(routes(m).match(rpc('com.a.Svc')), null, JSON.stringify(m));
  // A route without a path condition still matches, and headers still decide.
  const r = compileRouter({
    name: 'r',
    virtualHosts: [{ domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'http' } }, { match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'rpc' } }] }],
  });
  const got = r.match(rpc('com.a.Svc'));
  assert.ok(got !== null && got !== MALFORMED);
  assert.equal(got.pickCluster(), 'rpc');
});

test('a literal prefix is checked before the engine runs', () => {
  assert.equal(literalPrefix('/api/v1/users/[0-9]+'), '/api/v1/users/');
  assert.equal(literalPrefix('^/abc+'), '/ab');
  assert.equal(literalPrefix('/a|/b'), '');
  assert.equal(literalPrefix('(a+)+$'), '');
  const re = linearRegex('/api/v[0-9]', 'w');
  assert.equal(re.prefix, '/api/v');
  assert.ok(re.test('/api/v2') && !re.test('/apx/v2') && !re.test('/api/vx'));
});

test('validateRouterConfig refuses what a worker would (both compilations)', () => {
  const cfg = (match: Record<string, unknown>) => ({ name: 'r', virtualHosts: [{ domains: ['*'], routers: [{ match, route: { cluster_name: 'c' } }] }] });
  assert.throws(() => validateRouterConfig(cfg({ regex: '/(a)\\1' })), /routers\[r\]\.virtual_hosts\[0\]\.routers\[0\]\.match\.regex: regex "\/\(a\)\\\\1" cannot be matched in linear time/);
  assert.throws(() => validateRouterConfig(cfg({ headers: [{ name: 'service', value: '(?=x)', regex: true }] })), /match\.headers\[0\]\.value/);
  validateRouterConfig(cfg({ regex: '/ok/[0-9]+' }));
});
