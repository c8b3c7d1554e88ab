/** The MOSN router compiled from config: exact, ".*", regex, other headers, weighted clusters, cache, domains. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { compileRouter, compiledRouter, MALFORMED, type RouteRequest } from '../../src/router/router';
import type { HeaderName } from '../../src/protocol/types';
import type { RouterConfig } from '../../src/config/types';

class Req implements RouteRequest {
  routeKeyCalls = 0;
  constructor(private readonly h: Record<string, string | null>) {}
  routeKey(): string | undefined | null {
    this.routeKeyCalls++;
    const v = this.h.service;
    return v === undefined ? undefined : v;
  }
  header(name: HeaderName): string | undefined | null {
    const v = this.h[name.name];
    return v === undefined ? undefined : v;
  }
}

function router(routes: unknown[], domains = ['*']): RouterConfig {
  return { name: 'r', virtualHosts: [{ name: 'vh', domains, routers: routes }] };
}

test('single service matcher: exact value, and ".*" matches any non-empty service (MOSN fast rule)', () => {
  const r = compileRouter(
    router([
      { match: { headers: [{ name: 'service', value: 'com.a.Foo:1.0' }] }, route: { cluster_name: 'foo' } },
      { match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'any' } },
    ]),
  );
  const m = (s: Record<string, string>) => {
    const x = r.match(new Req(s));
    return x === null || x === MALFORMED ? x : x.pickCluster();
  };
  assert.equal(m({ service: 'com.a.Foo:1.0' }), 'foo');
  assert.equal(m({ service: 'com.a.Bar:1.0' }), 'any');
  assert.equal(m({ service: '' }), null);
  assert.equal(m({}), null);
});

test('regex matchers (whole value) and matchers on any header key, all must match', () => {
  const r = compileRouter(
    router([
      {
        match: {
          headers: [
            { name: 'service', value: 'com\\.a\\..*', regex: true },
            { name: 'sofa_head_method_name', value: 'plus' },
          ],
        },
        route: { cluster_name: 'a-plus' },
      },
      { match: { headers: [{ name: 'service', value: 'com\\.a\\..*', regex: true }] }, route: { cluster_name: 'a' } },
      { match: { headers: [{ name: 'x-zone', value: 'gz' }] }, route: { cluster_name: 'gz' } },
    ]),
  );
  const pick = (h: Record<string, string>) => {
    const x = r.match(new Req(h));
    return x === null || x === MALFORMED ? x : x.pickCluster();
  };
  assert.equal(pick({ service: 'com.a.Foo:1.0', sofa_head_method_name: 'plus' }), 'a-plus');
  assert.equal(pick({ service: 'com.a.Foo:1.0', sofa_head_method_name: 'minus' }), 'a');
  assert.equal(pick({ service: 'xcom.a.Foo' }), null, 'regex is anchored to the whole value');
  assert.equal(pick({ service: 'org.b', 'x-zone': 'gz' }), 'gz');
  assert.equal(pick({ service: 'org.b', 'x-zone': 'sh' }), null);
});

test('an unreadable header map gives MALFORMED', () => {
  const r = compileRouter(router([{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'c' } }]));
  assert.equal(r.match(new Req({ service: null })), MALFORMED);
});

test('weighted clusters follow their weights (both MOSN shapes)', () => {
  const r = compileRouter(
    router([
      {
        match: { headers: [{ name: 'service', value: '.*' }] },
        route: { weighted_clusters: [{ cluster: { name: 'a', weight: 90 } }, { name: 'b', weight: 10 }] },
      },
    ]),
  );
  const route = r.match(new Req({ service: 's' }));
  assert.ok(route !== null && route !== MALFORMED);
  assert.equal(route.pickCluster(0), 'a');
  assert.equal(route.pickCluster(0.899), 'a');
  assert.equal(route.pickCluster(0.9), 'b');
  const n = { a: 0, b: 0 } as Record<string, number>;
  for (let i = 0; i < 10_000; i++) n[route.pickCluster()]++;
  assert.ok(n.a > 8500 && n.a < 9500, `a got ${n.a}`);
});

test('per-route timeout from a Go duration', () => {
  const r = compileRouter(router([{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'c', timeout: '1.5s' } }]));
  const route = r.match(new Req({ service: 's' }));
  assert.ok(route !== null && route !== MALFORMED);
  assert.equal(route.timeoutMs, 1500);
});

test('the lookup cache: one Map hit per repeated service, also for "no route"', () => {
  const r = compileRouter(router([{ match: { headers: [{ name: 'service', value: 'known' }] }, route: { cluster_name: 'c' } }]));
  const vh = r.virtualHost()!;
  for (let i = 0; i < 100; i++) {
    r.match(new Req({ service: 'known' }));
    r.match(new Req({ service: 'unknown' }));
  }
  assert.equal(vh.misses, 2);
  assert.equal(vh.hits, 198);
  assert.equal(vh.cacheSize, 2);
  // A cached "no route" stays no route; a cached route stays the same object.
  assert.equal(r.match(new Req({ service: 'unknown' })), null);
  assert.equal(r.match(new Req({ service: 'known' })), r.match(new Req({ service: 'known' })));
});

test('virtual hosts by domain: exact, longest suffix, then "*"', () => {
  const r = compileRouter({
    name: 'r',
    virtualHosts: [
      { name: 'any', domains: ['*'], routers: [{ route: { cluster_name: 'any' } }] },
      { name: 'foo', domains: ['*.foo.com'], routers: [{ route: { cluster_name: 'foo' } }] },
      { name: 'barfoo', domains: ['*-bar.foo.com'], routers: [{ route: { cluster_name: 'barfoo' } }] },
      { name: 'www', domains: ['www.foo.com'], routers: [{ route: { cluster_name: 'www' } }] },
    ],
  });
  const c = (d?: string) => {
    const x = r.match(new Req({}), d);
    return x === null || x === MALFORMED ? x : x.pickCluster();
  };
  assert.equal(c('www.foo.com'), 'www');
  assert.equal(c('x-bar.foo.com'), 'barfoo');
  assert.equal(c('a.foo.com'), 'foo');
  assert.equal(c('other'), 'any');
  assert.equal(c(), 'any');
});

test('bad configs fail with the field named; compiled once per config object', () => {
  assert.throws(() => compileRouter(router([{ match: { headers: [{ name: 'service', value: '(', regex: true }] }, route: { cluster_name: 'c' } }])), /headers\[0\]\.value: bad regex/);
  assert.throws(() => compileRouter(router([{ match: {}, route: {} }])), /needs cluster_name or weighted_clusters/);
  const cfg = router([{ route: { cluster_name: 'c' } }]);
  assert.equal(compiledRouter(cfg), compiledRouter(cfg));
});
