import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createLoadBalancer, Host } from '../../src/upstream/lb';
import type { LbType } from '../../src/config/types';

function hosts(weights: number[]): Host[] {
  return weights.map((w, i) => new Host({ address: { host: '127.0.0.1', port: 1000 + i }, weight: w }));
}

function counts(type: LbType, hs: Host[], n: number): number[] {
  const lb = createLoadBalancer(type, hs);
  const c = hs.map(() => 0);
  for (let i = 0; i < n; i++) {
    const h = lb.choose();
    assert.ok(h);
    c[hs.indexOf(h)]++;
  }
  return c;
}

test('LB_ROUNDROBIN visits hosts in turn, ignoring weights', () => {
  const hs = hosts([1, 5, 1]);
  const lb = createLoadBalancer('LB_ROUNDROBIN', hs);
  const first = hs.indexOf(lb.choose()!);
  for (let i = 1; i < 9; i++) assert.equal(hs.indexOf(lb.choose()!), (first + i) % 3);
});

test('LB_ROUNDROBIN skips unhealthy hosts; when none is healthy it visits all in turn (panic); null without hosts', () => {
  const hs = hosts([1, 1, 1]);
  hs[1].healthy = false;
  assert.deepEqual(counts('LB_ROUNDROBIN', hs, 100)[1], 0);
  for (const h of hs) h.healthy = false;
  assert.deepEqual(counts('LB_ROUNDROBIN', hs, 300), [100, 100, 100]);
  assert.equal(createLoadBalancer('LB_ROUNDROBIN', []).choose(), null);
});

for (const type of ['LB_RANDOM', 'LB_WEIGHTED_ROUNDROBIN', 'LB_LEAST_REQUEST'] as const) {
  test(`${type} never picks an unhealthy host while one is healthy, and picks among all when none is`, () => {
    const hs = hosts([1, 1, 1, 1]);
    hs[0].healthy = false;
    hs[2].healthy = false;
    const c = counts(type, hs, 2000);
    assert.equal(c[0] + c[2], 0, `counts ${c}`);
    assert.ok(c[1] > 0 && c[3] > 0, `counts ${c}`);
    for (const h of hs) h.healthy = false;
    const all = counts(type, hs, 2000);
    assert.equal(all.reduce((a, b) => a + b), 2000);
    assert.ok(all.filter((x) => x > 0).length >= 2, `panic mode spreads over the hosts: ${all}`);
  });
}

test('LB_WEIGHTED_ROUNDROBIN is exact over a period and smooth', () => {
  const hs = hosts([5, 1, 1]);
  const lb = createLoadBalancer('LB_WEIGHTED_ROUNDROBIN', hs);
  const seq = Array.from({ length: 7 }, () => hs.indexOf(lb.choose()!));
  assert.deepEqual(
    seq.reduce((a, i) => (a[i]++, a), [0, 0, 0]),
    [5, 1, 1],
  );
  // Smooth: the heavy host is never picked more than 3 times in a row for weights 5,1,1.
  assert.ok(!/0000/.test(seq.join('')), `sequence ${seq.join('')} is not smooth`);
  assert.deepEqual(counts('LB_WEIGHTED_ROUNDROBIN', hosts([3, 2, 0]), 500), [300, 200, 0]);
});

test('LB_RANDOM spreads roughly uniformly', () => {
  const c = counts('LB_RANDOM', hosts([1, 1, 1, 1]), 40_000);
  for (const x of c) assert.ok(x > 9_000 && x < 11_000, `counts ${c}`);
});

test('LB_LEAST_REQUEST prefers the host with fewer active requests (power of two choices)', () => {
  const hs = hosts([1, 1]);
  hs[0].active = 10;
  hs[1].active = 0;
  const c = counts('LB_LEAST_REQUEST', hs, 1000);
  assert.equal(c[0], 0, 'with two hosts both are always compared: the busy one is never chosen');
  const many = hosts([1, 1, 1, 1, 1, 1, 1, 1]);
  many.forEach((h, i) => (h.active = i * 10));
  const m = counts('LB_LEAST_REQUEST', many, 20_000);
  assert.ok(m[0] > m[7] * 5, `idle host chosen far more often: ${m}`);
  assert.equal(m[7], 0, 'the busiest host never wins a pairwise comparison');
});
