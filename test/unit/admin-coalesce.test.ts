/** Admin isolation (issue 16): stats work runs at most once per interval for all pollers, each answer fresh. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FreshCoalescer } from '../../src/admin/coalesce';
import { startAdmin } from '../../src/admin/server';
import { StatsHub } from '../../src/stats/aggregate';
import { StatsLayout } from '../../src/stats/layout';

test('20 concurrent callers share runs; a caller never gets a run that started before its call', async () => {
  let started = 0;
  const c = new FreshCoalescer(async () => {
    const n = ++started;
    await new Promise((r) => setTimeout(r, 5));
    return n;
  }, 50);
  const first = await Promise.all(Array.from({ length: 20 }, () => c.get()));
  // The first caller starts run 1; the 19 others arrived after it started: they share run 2.
  assert.equal(first[0], 1);
  assert.deepEqual(new Set(first.slice(1)), new Set([2]));
  assert.equal(started, 2);
  // Freshness: a call after a run completed gets a later run, never a cached older one.
  const later = await c.get();
  assert.ok(later > 2);
});

test('pollers in a tight loop cause at most one run per interval', async () => {
  let runs = 0;
  const c = new FreshCoalescer(() => ++runs, 50);
  const until = Date.now() + 500;
  const loops = Array.from({ length: 20 }, async () => {
    while (Date.now() < until) await c.get();
  });
  await Promise.all(loops);
  assert.ok(runs <= 12, `${runs} runs in 500 ms at a 50 ms interval`);
  assert.ok(runs >= 5, `${runs} runs`);
});

test('admin /api/v1/stats: 20 concurrent requests make at most two hub refreshes (histogram flushes to workers)', async () => {
  const hub = new StatsHub(new StatsLayout());
  let refreshes = 0;
  hub.setRefresher(async () => {
    refreshes++;
    await new Promise((r) => setTimeout(r, 5));
  });
  const admin = await startAdmin({ host: '127.0.0.1', port: 0 }, { stats: hub, configDump: () => ({}), ready: () => true });
  try {
    const replies = await Promise.all(Array.from({ length: 20 }, () => fetch(`http://127.0.0.1:${admin.port}/api/v1/stats`).then((r) => r.json() as Promise<{ server: unknown }>)));
    for (const r of replies) assert.ok(r.server !== undefined);
    assert.ok(refreshes <= 2, `${refreshes} refreshes for 20 requests`);
  } finally {
    admin.close();
  }
});
