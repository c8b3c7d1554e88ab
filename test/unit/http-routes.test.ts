/** HTTP route compilation and matching, header helpers. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { compileHttpRouter, RETRY_5XX, RETRY_CONNECT_FAILURE, RETRY_RESET, type HttpRouteRequest } from '../../src/router/http-routes';
import { applyOps, endToEnd, grpcTimeoutMs, isIdempotent, requestId } from '../../src/http/headers';
import { claimsHttp } from '../../src/http/config';
import { statusClass, timeBucket } from '../../src/http/stats';

function req(path: string, headers: Record<string, string> = {}): HttpRouteRequest {
  return { path, header: (n) => headers[n] };
}

const router = compileHttpRouter({
  name: 'r',
  virtualHosts: [
    { name: 'api', domains: ['api.example.com', '*.svc.local', 'pre.*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'api' } }] },
    {
      name: 'default',
      domains: ['*'],
      routers: [
        { match: { path: '/exact' }, route: { cluster_name: 'exact' } },
        { match: { prefix: '/CaSe', case_sensitive: false }, route: { cluster_name: 'nocase' } },
        { match: { regex: '/users/[0-9]+/posts' }, route: { cluster_name: 'regex' } },
        { match: { prefix: '/h', headers: [{ name: 'x-v', value: 'v[12]', regex: true }] }, route: { cluster_name: 'hdr-re' } },
        { match: { prefix: '/h', headers: [{ name: 'x-not', value: 'no', invert_match: true }] }, route: { cluster_name: 'hdr-inv' } },
        { match: { prefix: '/rw/' }, route: { cluster_name: 'rw', prefix_rewrite: '/', retry_policy: { retry_on: true, num_retries: 3, retry_timeout: '250ms' } } },
        { match: { prefix: '/w' }, route: { weighted_clusters: [{ cluster: { name: 'a', weight: 1 } }, { cluster: { name: 'b', weight: 3 } }] } },
        { match: { prefix: '/' }, route: { cluster_header: 'x-cluster' } },
      ],
    },
  ],
});

test('virtual hosts: exact, suffix, prefix wildcard, port ignored, default', () => {
  assert.equal(router.virtualHost('api.example.com')?.name, 'api');
  assert.equal(router.virtualHost('API.example.com:8080')?.name, 'api');
  assert.equal(router.virtualHost('x.svc.local')?.name, 'api');
  assert.equal(router.virtualHost('pre.anything')?.name, 'api');
  assert.equal(router.virtualHost('other')?.name, 'default');
  assert.equal(router.virtualHost(undefined)?.name, 'default');
});

test('route matching: path, prefix (case-insensitive), anchored regex, header regex and invert, first match wins', () => {
  const vh = router.virtualHost('x')!;
  assert.equal(vh.match(req('/exact'))!.clusterName, 'exact');
  assert.equal(vh.match(req('/case/x'))!.clusterName, 'nocase');
  assert.equal(vh.match(req('/users/12/posts'))!.clusterName, 'regex');
  assert.notEqual(vh.match(req('/users/12/posts/9'))!.clusterName, 'regex');
  assert.equal(vh.match(req('/h', { 'x-v': 'v2', 'x-not': 'no' }))!.clusterName, 'hdr-re');
  assert.equal(vh.match(req('/h', { 'x-v': 'v3' }))!.clusterName, 'hdr-inv');
  assert.equal(vh.match(req('/h', { 'x-v': 'v3', 'x-not': 'no' }))!.clusterHeader, 'x-cluster');
});

test('route cache: a repeated request is one map hit; header values are part of the key', () => {
  const vh = router.virtualHost('x')!;
  const h0 = vh.hits;
  vh.match(req('/exact'));
  vh.match(req('/exact'));
  assert.ok(vh.hits >= h0 + 1);
  assert.equal(vh.match(req('/h', { 'x-v': 'v1' }))!.clusterName, 'hdr-re');
  assert.equal(vh.match(req('/h', { 'x-v': 'v9' }))!.clusterName, 'hdr-inv');
});

test('weighted clusters, cluster_header, prefix rewrite, retry policy', () => {
  const vh = router.virtualHost('x')!;
  const w = vh.match(req('/w'))!;
  assert.equal(w.pickCluster(req('/w'), 0.1), 'a');
  assert.equal(w.pickCluster(req('/w'), 0.5), 'b');
  const ch = vh.match(req('/z'))!;
  assert.equal(ch.pickCluster(req('/z', { 'x-cluster': 'c1' })), 'c1');
  const rw = vh.match(req('/rw/a/b'))!;
  assert.equal(rw.rewritePath('/rw/a/b?x=1'), '/a/b?x=1');
  assert.deepEqual(rw.retry, { on: RETRY_CONNECT_FAILURE | RETRY_RESET | RETRY_5XX, numRetries: 3, perTryTimeoutMs: 250 });
});

test('bad route configs name the field', () => {
  const bad = (routes: unknown[]): (() => unknown) => () => compileHttpRouter({ name: 'b', virtualHosts: [{ domains: ['*'], routers: routes }] });
  assert.throws(bad([{ match: { prefix: '/' } }]), /routers\[0\]: needs route, direct_response or redirect/);
  assert.throws(bad([{ match: { regex: '(' }, route: { cluster_name: 'a' } }]), /match\.regex: bad regex/);
  assert.throws(bad([{ match: { prefix: '/' }, route: { cluster_name: 'a', retry_policy: { retry_on: 'sometimes' } } }]), /unknown retry condition/);
  assert.throws(bad([{ match: { prefix: '/' }, redirect: { response_code: 200 } }]), /response_code/);
  // Anything that lands in a head must not carry CR/LF/NUL (header injection through config).
  const inj = 'x\r\nset-cookie: evil=1';
  assert.throws(bad([{ match: { prefix: '/' }, route: { cluster_name: 'a', request_headers_to_add: [{ header: { key: 'x-a', value: inj } }] } }]), /request_headers_to_add\[0\]\.header\.value: .*control character/);
  assert.throws(bad([{ match: { prefix: '/' }, route: { cluster_name: 'a', response_headers_to_add: [{ header: { key: 'x a', value: 'v' } }] } }]), /header\.key: "x a" is not a valid header name/);
  assert.throws(bad([{ match: { prefix: '/' }, route: { cluster_name: 'a', host_rewrite: inj } }]), /route\.host_rewrite: .*control character/);
  assert.throws(bad([{ match: { prefix: '/' }, route: { cluster_name: 'a', prefix_rewrite: '/a\u0000' } }]), /route\.prefix_rewrite: .*control character/);
  assert.throws(bad([{ match: { prefix: '/' }, redirect: { host_redirect: inj } }]), /redirect\.host_redirect: .*control character/);
  // Tabs, spaces and obs-text stay allowed in values.
  assert.doesNotThrow(bad([{ match: { prefix: '/' }, route: { cluster_name: 'a', request_headers_to_add: [{ header: { key: 'x-a', value: 'a b\tc\u00e9' } }] } }]));
});

test('headers: hop-by-hop and Connection-named headers dropped, te: trailers kept, ops remove then add', () => {
  const h = endToEnd({ ':path': '/', connection: 'keep-alive, x-hop', 'x-hop': '1', 'keep-alive': 't', te: 'trailers', 'transfer-encoding': 'chunked', a: 'b' });
  assert.deepEqual(h, { te: 'trailers', a: 'b' });
  const ops = { requestAdd: [{ key: 'a', value: 'c', append: true }, { key: 'n', value: 'v', append: false }], requestRemove: ['te'], responseAdd: [], responseRemove: [] };
  const none = { requestAdd: [], requestRemove: [], responseAdd: [], responseRemove: [] };
  applyOps(h, ops, none, false);
  assert.deepEqual(h, { a: ['b', 'c'], n: 'v' });
});

test('headers: the upstream request copy leaves out host and expect; a repeated or changed Connection value names the right headers', () => {
  const req = { host: 'a.example', expect: '100-continue', connection: 'x-a', 'x-a': '1', 'x-b': '2' };
  // The upstream request copy: no host (written from the authority), no expect (answered downstream), no named header.
  assert.deepEqual(endToEnd(req, true), { 'x-b': '2' });
  // The downstream object itself is untouched, and a copy for the response keeps host/expect.
  assert.deepEqual(endToEnd(req), { host: 'a.example', expect: '100-continue', 'x-b': '2' });
  // The same value again, another value, then the first again: each names its own header.
  assert.deepEqual(endToEnd({ connection: 'x-b', 'x-a': '1', 'x-b': '2' }), { 'x-a': '1' });
  assert.deepEqual(endToEnd({ connection: 'x-a', 'x-a': '1', 'x-b': '2' }), { 'x-b': '2' });
  assert.deepEqual(endToEnd({ connection: ['close', 'X-B'], 'x-a': '1', 'x-b': '2', close: 'c' }), { 'x-a': '1' });
  assert.deepEqual(endToEnd({ connection: 'keep-alive', 'x-a': '1', 'keep-alive': 'timeout=5' }), { 'x-a': '1' });
});

test('x-request-id: version 4 UUIDs (RFC 9562 layout), distinct across refills of the random batch', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = requestId();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 1000);
});

test('grpc-timeout, idempotency, family claim, stats helpers', () => {
  assert.equal(grpcTimeoutMs('100m'), 100);
  assert.equal(grpcTimeoutMs('2S'), 2000);
  assert.equal(grpcTimeoutMs('1H'), 3_600_000);
  assert.equal(grpcTimeoutMs('500u'), 1);
  assert.equal(grpcTimeoutMs('x'), undefined);
  assert.equal(grpcTimeoutMs('10X'), undefined);
  assert.ok(isIdempotent('GET') && isIdempotent('PUT') && !isIdempotent('POST') && !isIdempotent('PATCH'));
  assert.ok(claimsHttp({ downstream_protocol: 'Http1' }));
  assert.ok(claimsHttp({ Downstream_Protocol: 'Auto', upstream_protocol: 'HTTP2' }));
  assert.ok(!claimsHttp({ downstream_protocol: 'Auto' }));
  assert.ok(!claimsHttp({ downstream_protocol: 'bolt' }));
  assert.equal(statusClass(204), 1);
  assert.equal(statusClass(503), 4);
  assert.equal(timeBucket(0.4), 0);
  assert.equal(timeBucket(7), 2);
  assert.equal(timeBucket(99999), 10);
});
