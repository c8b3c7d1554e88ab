/**
 * local_ratelimit descriptors through the real sidecar (node:http as the client): the route's
 * rate_limits actions (request_headers, generic_key + header_value_match, remote_address) make
 * the request's descriptors; each listed descriptor has its own bucket, requests without one use
 * the default bucket; x-ratelimit-limit names the descriptor's bucket. Config errors name the
 * path of an unsupported action and of a bad descriptor.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import '../../src/extensions';
import { parseConfig } from '../../src/config';
import { validateRouterConfig } from '../../src/router/validate';
import { backend, httpConfig, request } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';

const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
const bucket = (n: number): Record<string, unknown> => ({ max_tokens: n, tokens_per_fill: n, fill_interval: '60s' });

/**
 * A route per prefix with its rate_limits; `vh`: the virtual host's rate_limits; a prefix ending
 * in "+" gets include_vh_rate_limits: true (the "+" is not part of the prefix).
 */
function config(port: number, filter: Record<string, unknown>, rateLimits: Record<string, unknown[]>, vh?: unknown[]): Record<string, unknown> {
  const route = (p: string, rl: unknown[]): Record<string, unknown> => {
    const inc = p.endsWith('+');
    return { match: { prefix: inc ? p.slice(0, -1) : p }, route: { cluster_name: 'web', ...(rl.length > 0 ? { rate_limits: rl } : {}), ...(inc ? { include_vh_rate_limits: true } : {}) } };
  };
  const routers = [
    {
      router_config_name: 'r',
      virtual_hosts: [{
        name: 'v',
        domains: ['*'],
        ...(vh !== undefined ? { rate_limits: vh } : {}),
        routers: Object.entries(rateLimits).map(([p, rl]) => route(p, rl)),
      }],
    },
  ];
  const cfg = httpConfig([{ name: 'http', downstream: 'Http1', router: 'r' }], routers, { web: [port] }) as { servers: { listeners: Record<string, unknown>[] }[] };
  cfg.servers[0].listeners[0].stream_filters = [{ type: 'local_ratelimit', config: { stat_prefix: 'd', filter_enabled: ALL, filter_enforced: ALL, enable_x_ratelimit_headers: 'DRAFT_VERSION_03', ...filter } }];
  return cfg;
}

const ROUTES = {
  '/a': [{ actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user' } }] }],
  '/b': [{ actions: [{ generic_key: { descriptor_value: 'api' } }, { header_value_match: { descriptor_value: 'get', headers: [{ name: ':method', exact_match: 'GET' }] } }] }],
  '/c': [{ actions: [{ remote_address: {} }] }],
  '/s': [{ stage: 1, actions: [{ generic_key: { descriptor_value: 'api' } }] }],
};

test('local_ratelimit descriptors: per-descriptor buckets from the route\'s rate_limits actions', { timeout: 30_000 }, async () => {
  const be = await backend('web');
  const cfg = config(be.port, {
    token_bucket: bucket(100),
    descriptors: [
      { entries: [{ key: 'user', value: 'alice' }], token_bucket: bucket(2) },
      { entries: [{ key: 'generic_key', value: 'api' }, { key: 'header_match', value: 'get' }], token_bucket: bucket(3) },
      { entries: [{ key: 'remote_address', value: '127.0.0.1' }], token_bucket: bucket(4) },
      { entries: [{ key: 'generic_key', value: 'api' }], token_bucket: bucket(1) },
    ],
  }, ROUTES);
  const sc = await startSidecar(cfg, { workers: 1 });
  try {
    const port = sc.ports.get('http') as number;
    const statuses = async (n: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await request(port, path, opts)).status);
      return out;
    };
    // request_headers: alice has 2 tokens; bob (not listed) and no header at all use the default bucket.
    const a = await request(port, '/a', { headers: { 'x-user': 'alice' } });
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-ratelimit-limit'], '2');
    assert.equal(a.headers['x-ratelimit-remaining'], '1');
    assert.deepEqual(await statuses(2, '/a', { headers: { 'x-user': 'alice' } }), [200, 429]);
    assert.deepEqual(await statuses(3, '/a', { headers: { 'x-user': 'bob' } }), [200, 200, 200]);
    assert.deepEqual(await statuses(2, '/a'), [200, 200]);
    assert.equal((await request(port, '/a', { headers: { 'x-user': 'bob' } })).headers['x-ratelimit-limit'], '100');
    // generic_key + header_value_match: GET has 3 tokens; a POST makes no descriptor (the match fails).
    assert.deepEqual(await statuses(4, '/b'), [200, 200, 200, 429]);
    assert.deepEqual(await statuses(2, '/b', { method: 'POST' }), [200, 200]);
    // remote_address: 4 tokens for 127.0.0.1.
    assert.deepEqual(await statuses(5, '/c'), [200, 200, 200, 200, 429]);
    // A rate limit of another stage than the filter's (0) makes no descriptor: generic_key=api alone (1 token) is not taken.
    assert.deepEqual(await statuses(3, '/s'), [200, 200, 200]);
    const s = (await sc.stats()).server as Record<string, number>;
    assert.equal(s['local_ratelimit.http.d.rate_limited'], 3, JSON.stringify(s));
  } finally {
    await sc.terminate();
    await be.close();
  }
});

test('local_ratelimit descriptors: the default bucket is also taken unless always_consume_default_token_bucket is false', { timeout: 30_000 }, async () => {
  const be = await backend('web');
  const routes = { '/a': ROUTES['/a'] };
  const descriptors = [{ entries: [{ key: 'user', value: 'alice' }], token_bucket: bucket(10) }];
  for (const [always, want] of [[true, [200, 200, 429]], [false, [200, 200, 200]]] as const) {
    const sc = await startSidecar(config(be.port, { token_bucket: bucket(2), descriptors, always_consume_default_token_bucket: always }, routes), { workers: 1 });
    try {
      const port = sc.ports.get('http') as number;
      const got: number[] = [];
      for (let i = 0; i < 3; i++) got.push((await request(port, '/a', { headers: { 'x-user': 'alice' } })).status);
      assert.deepEqual(got, want, `always_consume_default_token_bucket ${always}`);
    } finally {
      await sc.terminate();
    }
  }
  await be.close();
});

async function statuses(port: number, n: number, path: string, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await request(port, path, { headers })).status);
  return out;
}

test('local_ratelimit vh_rate_limits: the virtual host\'s rate_limits under OVERRIDE, INCLUDE and IGNORE (and a route\'s include_vh_rate_limits)', { timeout: 60_000 }, async () => {
  const be = await backend('web');
  const own = [{ actions: [{ generic_key: { descriptor_value: 'own' } }] }];
  // Routes: /own has its own rate limit, /plain none, /inc its own and include_vh_rate_limits.
  const routes = { '/own': own, '/plain': [], '/inc+': own };
  const vh = [{ actions: [{ generic_key: { descriptor_value: 'vh' } }] }];
  const descriptors = [
    { entries: [{ key: 'generic_key', value: 'vh' }], token_bucket: bucket(1) },
    { entries: [{ key: 'generic_key', value: 'own' }], token_bucket: bucket(5) },
  ];
  // Per mode: [path, statuses] in order (the virtual host's bucket holds 1 token, the route's 5, the default 100).
  const plan: Record<string, [string, number[]][]> = {
    OVERRIDE: [['/own', [200, 200]], ['/plain', [200, 429]], ['/own', [200]], ['/inc', [429]]],
    INCLUDE: [['/own', [200, 429]], ['/plain', [429]]],
    IGNORE: [['/plain', [200, 200, 200]], ['/own', [200, 200]], ['/inc', [200, 429]]],
  };
  for (const [mode, steps] of Object.entries(plan)) {
    const sc = await startSidecar(config(be.port, { token_bucket: bucket(100), descriptors, vh_rate_limits: mode }, routes, vh), { workers: 1 });
    try {
      const port = sc.ports.get('http') as number;
      for (const [path, want] of steps) assert.deepEqual(await statuses(port, want.length, path), want, `${mode} ${path}`);
      if (mode === 'OVERRIDE') assert.equal((await request(port, '/own')).headers['x-ratelimit-limit'], '5', 'the route\'s descriptor, not the virtual host\'s');
    } finally {
      await sc.terminate();
    }
  }
  await be.close();
});

test('local_ratelimit dynamic descriptors: a blank value gives each value its own bucket (LRU of max_dynamic_descriptors); an empty header makes no descriptor', { timeout: 30_000 }, async () => {
  const be = await backend('web');
  const descriptors = [
    { entries: [{ key: 'user', value: '' }], token_bucket: bucket(2) },
    { entries: [{ key: 'user', value: 'vip' }], token_bucket: bucket(5) },
    { entries: [{ key: 'generic_key', value: 'e' }], token_bucket: bucket(1) },
  ];
  const e = [{ actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user', skip_if_absent: true } }, { generic_key: { descriptor_value: 'e' } }] }];
  const sc = await startSidecar(config(be.port, { token_bucket: bucket(100), descriptors, max_dynamic_descriptors: 2 }, { '/a': ROUTES['/a'], '/e': e }), { workers: 1 });
  try {
    const port = sc.ports.get('http') as number;
    const as = (user: string, n: number) => statuses(port, n, '/a', { 'x-user': user });
    assert.deepEqual(await as('alice', 3), [200, 200, 429]);
    assert.deepEqual(await as('bob', 3), [200, 200, 429]);
    // vip is listed with a value: its own 5 tokens, not a dynamic bucket.
    assert.deepEqual(await as('vip', 6), [200, 200, 200, 200, 200, 429]);
    const r = await request(port, '/a', { headers: { 'x-user': 'bob' } });
    assert.equal(r.headers['x-ratelimit-limit'], '2');
    assert.equal(r.status, 429);
    // Two dynamic buckets at most: carol replaces the least recently used (alice), whose count then starts anew.
    assert.deepEqual(await as('carol', 1), [200]);
    assert.deepEqual(await as('alice', 3), [200, 200, 429]);
    // An empty header is an absent one (Envoy): no descriptor, the default bucket; with
    // skip_if_absent the entry is left out and the others still make the descriptor.
    const empty = await request(port, '/a', { headers: { 'x-user': '' } });
    assert.equal(empty.status, 200);
    assert.equal(empty.headers['x-ratelimit-limit'], '100');
    assert.deepEqual(await statuses(port, 2, '/e', { 'x-user': '' }), [200, 429]);
  } finally {
    await sc.terminate();
    await be.close();
  }
});

test('local_ratelimit dynamic descriptors hold across 2 workers (the buckets are in the shared cells)', { timeout: 30_000 }, async () => {
  const be = await backend('web');
  const descriptors = [{ entries: [{ key: 'user', value: '' }], token_bucket: bucket(3) }];
  const sc = await startSidecar(config(be.port, { token_bucket: bucket(100), descriptors }, { '/a': ROUTES['/a'] }), { workers: 2 });
  try {
    const port = sc.ports.get('http') as number;
    // Each request on its own connection: the two workers take turns or not, the count is the process's.
    for (const user of ['alice', 'bob']) assert.deepEqual(await statuses(port, 5, '/a', { 'x-user': user }), [200, 200, 200, 429, 429], user);
  } finally {
    await sc.terminate();
    await be.close();
  }
});

test('local_ratelimit descriptors: unsupported actions and bad descriptors are refused with their path', () => {
  const errorOf = (cfg: Record<string, unknown>): string => {
    try {
      // Route errors surface where routers are compiled (validation of a snapshot, xDS): validateRouterConfig.
      for (const s of parseConfig(cfg).servers) for (const r of s.routers) validateRouterConfig(r);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  const ok = { token_bucket: bucket(5) };
  assert.match(errorOf(config(1, ok, { '/': [{ actions: [{ destination_cluster: {} }] }] })), /rate_limits\[0\]\.actions\[0\]\.destination_cluster: the destination_cluster rate limit action is not supported/);
  assert.match(errorOf(config(1, ok, { '/': [{ actions: [{ request_headers: { header_name: 'x' } }] }] })), /rate_limits\[0\]\.actions\[0\]\.request_headers\.descriptor_key/);
  assert.match(errorOf(config(1, ok, { '/': [{ actions: [{ header_value_match: { descriptor_value: 'v', headers: [{ name: 'x', exact_match: 'a', prefix_match: 'b' }] } }] }] })), /actions\[0\]\.header_value_match\.headers\[0\]: a header matcher takes one match kind/);
  assert.match(errorOf(config(1, ok, { '/': [{ limit: { dynamic_metadata: {} }, actions: [{ remote_address: {} }] }] })), /rate_limits\[0\]\.limit: not supported/);
  const bad = (d: unknown): string => errorOf(config(1, { token_bucket: bucket(5), descriptors: [d] }, {}));
  // A blank value is a dynamic descriptor (accepted; see the dynamic descriptors test).
  assert.equal(bad({ entries: [{ key: 'user', value: '' }], token_bucket: bucket(1) }), '');
  assert.match(errorOf(config(1, { ...ok, vh_rate_limits: 'SOMETIMES' }, {})), /vh_rate_limits/);
  assert.match(errorOf(config(1, ok, { '/': [] }, [{ actions: [{ destination_cluster: {} }] }])), /virtual_hosts\[0\]\.rate_limits\[0\]\.actions\[0\]\.destination_cluster: the destination_cluster rate limit action is not supported/);
  assert.match(bad({ entries: [{ key: 'user', value: 'a' }], token_bucket: { max_tokens: 1, fill_interval: '90s' } }), /descriptors\[0\]\.token_bucket\.fill_interval: 90000ms must be a multiple/);
  assert.match(bad({ entries: [], token_bucket: bucket(1) }), /descriptors\[0\]\.entries: a descriptor needs at least one entry/);
});
