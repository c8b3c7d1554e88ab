// What the filters' shared cells cost per request (src/filters/shared/cells.ts, limiter.ts): an
// Atomics call is a builtin call (~200 instructions), so counts made inside a read callback's
// loan (lendNow) are added once per cell when the loan ends, and a token bucket with tokens is
// read without Atomics.load (the compareExchange that takes the token checks what was read).
// The counts and the bucket's verdicts stay exact.
// These are the threaded cells' (worker threads); one thread alone: filter-cells-solo.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { count, counterCell, filterCounters, lendNow, settleCounts, shareFilterCellsWithThreads, sharedCells, sharedNowMs } from '../../src/filters/shared/cells';
import { allocTokenBucket, takeToken, TokenLease, tokensLeft } from '../../src/filters/shared/limiter';

shareFilterCellsWithThreads();

test('counts inside a loan: one Atomics.add per cell when the loan ends, totals exact', () => {
  const a = counterCell('cells-cost.a');
  const b = counterCell('cells-cost.b');
  let adds = 0;
  const orig = Atomics.add;
  Atomics.add = ((c: Int32Array, i: number, v: number) => {
    adds++;
    return orig(c, i, v);
  }) as typeof Atomics.add;
  try {
    const prev = lendNow(Date.now());
    assert.equal(prev, -1);
    for (let i = 0; i < 100; i++) {
      count(a);
      if (i % 2 === 0) count(b);
    }
    assert.equal(adds, 0, 'nothing added during the loan');
    lendNow(prev);
  } finally {
    Atomics.add = orig;
  }
  assert.equal(adds, 2, 'one add per cell at the end of the loan');
  assert.equal(filterCounters().get('cells-cost.a'), 100);
  assert.equal(filterCounters().get('cells-cost.b'), 50);
  // Outside a loan: at once.
  count(a);
  assert.equal(filterCounters().get('cells-cost.a'), 101);
});

test('counts inside a loan: settled before a local answer (the adapter settles them)', () => {
  const a = counterCell('cells-cost.settled');
  const prev = lendNow(Date.now());
  count(a);
  count(a);
  assert.equal(filterCounters().get('cells-cost.settled'), 0, 'pending during the loan');
  settleCounts();
  assert.equal(filterCounters().get('cells-cost.settled'), 2, 'in the cells before the answer is written');
  count(a);
  lendNow(prev);
  assert.equal(filterCounters().get('cells-cost.settled'), 3);
});

test('counts inside a loan: more cells than the pending table holds are all counted', () => {
  const cellsOf = Array.from({ length: 40 }, (_, i) => counterCell(`cells-cost.many.${i}`));
  const prev = lendNow(Date.now());
  for (let r = 0; r < 3; r++) for (const c of cellsOf) count(c);
  count(-1); // no cell: ignored
  lendNow(prev);
  for (let i = 0; i < 40; i++) assert.equal(filterCounters().get(`cells-cost.many.${i}`), 3, `cell ${i}`);
});

test('token bucket: no Atomics.load while it holds tokens; empty and refilled as before', () => {
  const at = allocTokenBucket('cells-cost-bucket', 3, 3_600_000);
  let loads = 0;
  const orig = Atomics.load;
  Atomics.load = ((c: Int32Array, i: number) => {
    loads++;
    return orig(c, i);
  }) as typeof Atomics.load;
  let got: number[];
  try {
    const now = sharedNowMs();
    got = [takeToken(at, 3, 3, 3_600_000, now), takeToken(at, 3, 3, 3_600_000, now), takeToken(at, 3, 3, 3_600_000, now)];
    assert.equal(loads, 0, 'tokens taken with plain reads and compareExchange');
    got.push(takeToken(at, 3, 3, 3_600_000, now));
  } finally {
    Atomics.load = orig;
  }
  assert.deepEqual(got, [2, 1, 0, -1]);
  assert.equal(tokensLeft(at), 0);
  // The next fill period: the bucket is refilled (capped at max_tokens) by the first taker.
  const next = (Math.floor(sharedNowMs() / 3_600_000) + 1) * 3_600_000;
  assert.equal(takeToken(at, 3, 3, 3_600_000, next), 2);
  assert.equal(sharedCells()[at + 1], next / 3_600_000);
});

test('token bucket leases (one per worker): Atomics once per batch of 1 %, the limit held within 1 % per worker; small buckets exact', () => {
  const at = allocTokenBucket('cells-cost-lease', 10_000, 3_600_000);
  const workers = [new TokenLease(at, 10_000, 10_000, 3_600_000), new TokenLease(at, 10_000, 10_000, 3_600_000)];
  let cas = 0;
  const orig = Atomics.compareExchange;
  Atomics.compareExchange = ((c: Int32Array, i: number, e: number, v: number) => {
    cas++;
    return orig(c, i, e, v);
  }) as typeof Atomics.compareExchange;
  let ok = 0;
  try {
    const now = sharedNowMs();
    for (let i = 0; i < 12_000; i++) if (workers[i % 2].take(now) >= 0) ok++;
  } finally {
    Atomics.compareExchange = orig;
  }
  assert.ok(ok <= 10_000 && ok >= 10_000 - 2 * 100, `${ok} accepted of a 10,000-token bucket`);
  assert.ok(cas <= 10_000 / 100 + 4, `${cas} compareExchange calls for ${ok} tokens`);
  assert.equal(tokensLeft(at), 0);
  // 50 tokens: a batch of one, each take goes to the bucket (exact).
  const small = allocTokenBucket('cells-cost-lease-small', 50, 3_600_000);
  const two = [new TokenLease(small, 50, 50, 3_600_000), new TokenLease(small, 50, 50, 3_600_000)];
  let n = 0;
  for (let i = 0; i < 60; i++) if (two[i % 2].take(sharedNowMs()) >= 0) n++;
  assert.equal(n, 50);
});
