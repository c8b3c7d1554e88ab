// The filters' shared cells when one thread alone writes them (one-isolate mode, one worker; no
// server): counts and token buckets are plain arithmetic, no Atomics call at all, and stay exact;
// once the main thread shares the cells with a worker thread, Atomics again
// (src/filters/shared/cells.ts). The threaded path: filter-cells-cost.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { count, counterCell, filterCellsThreaded, filterCounters, lendNow, settleCounts, shareFilterCellsWithThreads, sharedCells, sharedNowMs } from '../../src/filters/shared/cells';
import { allocTokenBucket, takeToken, tokensLeft } from '../../src/filters/shared/limiter';

/** Runs `f` with every Atomics write / read counted. */
function atomicsCalls(f: () => void): number {
  const names = ['add', 'sub', 'load', 'store', 'compareExchange'] as const;
  const orig = names.map((n) => Atomics[n]);
  let calls = 0;
  names.forEach((n, i) => {
    (Atomics as unknown as Record<string, unknown>)[n] = (...a: unknown[]) => {
      calls++;
      return (orig[i] as (...x: unknown[]) => unknown)(...a);
    };
  });
  try {
    f();
  } finally {
    names.forEach((n, i) => ((Atomics as unknown as Record<string, unknown>)[n] = orig[i]));
  }
  return calls;
}

test('one thread: counts and tokens without Atomics, exact; counts in a loan are in the cells at once', () => {
  assert.equal(filterCellsThreaded(), false);
  const a = counterCell('solo.a');
  const at = allocTokenBucket('solo-bucket', 3, 3_600_000);
  const now = sharedNowMs();
  let got: number[] = [];
  const calls = atomicsCalls(() => {
    const prev = lendNow(Date.now());
    for (let i = 0; i < 10; i++) count(a);
    assert.equal(sharedCells()[a], 10, 'counted at once, nothing pending');
    settleCounts();
    lendNow(prev);
    got = [1, 2, 3, 4].map(() => takeToken(at, 3, 3, 3_600_000, now));
  });
  assert.equal(calls, 0, 'no Atomics call');
  assert.deepEqual(got, [2, 1, 0, -1]);
  assert.equal(tokensLeft(at), 0);
  // The next fill period refills the bucket (capped at max_tokens), as the threaded path does.
  const next = (Math.floor(now / 3_600_000) + 1) * 3_600_000;
  assert.equal(takeToken(at, 3, 3, 3_600_000, next), 2);
  assert.equal(sharedCells()[at + 1], next / 3_600_000);
  assert.equal(filterCounters().get('solo.a'), 10);
});

test('shared with a worker thread: counts in a loan settle first, then Atomics', () => {
  const a = counterCell('solo.b');
  const prev = lendNow(Date.now());
  count(a);
  shareFilterCellsWithThreads();
  assert.equal(filterCellsThreaded(), true);
  const calls = atomicsCalls(() => {
    count(a);
    lendNow(prev);
  });
  assert.equal(calls, 1, 'the loan ends with one Atomics.add');
  assert.equal(filterCounters().get('solo.b'), 2);
});
