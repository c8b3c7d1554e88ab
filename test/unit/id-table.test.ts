// IdTable (src/stream/id-table.ts): an upstream connection's pending requests by id.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { IdTable } from '../../src/stream/id-table';

class E {
  constructor(public upId: number) {}
}

test('id table: matches a Map under random pool-like use (ids from a counter, skipping taken slots, u32 wrap)', () => {
  const t = new IdTable<E>();
  const ref = new Map<number, E>();
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let last = 0xffffffff - 500; // crosses the u32 wrap
  const next = (id: number): number => (id >= 0xffffffff ? 1 : id + 1);
  for (let step = 0; step < 20000; step++) {
    const r = rnd();
    if (r < 0.55 || ref.size === 0) {
      let id = next(last);
      while (!t.free(id)) {
        assert.ok(t.get(id) === undefined || ref.has(id));
        id = next(id);
      }
      assert.equal(ref.has(id), false, 'a free id is never a live one');
      last = id;
      const e = new E(id);
      t.set(e);
      ref.set(id, e);
    } else {
      // Answer (or expire) a random live request; sometimes a late or unknown id.
      const keys = [...ref.keys()];
      const id = rnd() < 0.1 ? next(last) + 7 : keys[Math.floor(rnd() * keys.length)];
      assert.equal(t.get(id), ref.get(id));
      assert.equal(t.delete(id), ref.delete(id));
    }
    assert.equal(t.size, ref.size);
  }
  for (const [id, e] of ref) assert.equal(t.get(id), e);
  const taken = new Set<E>();
  for (let e = t.takeAny(); e !== null; e = t.takeAny()) taken.add(e);
  assert.deepEqual(taken, new Set(ref.values()));
  assert.equal(t.size, 0);
});

test('id table: grows with the requests in flight; a late id whose slot holds another request is not found', () => {
  const t = new IdTable<E>();
  for (let id = 1; id <= 1000; id++) t.set(new E(id));
  assert.equal(t.size, 1000);
  for (let id = 1; id <= 1000; id++) assert.equal(t.get(id)?.upId, id);
  assert.equal(t.free(1001), true);
  assert.equal(t.get(1 + 4096), undefined);
  assert.equal(t.delete(1 + 4096), false);
  assert.equal(t.get(1)?.upId, 1);
});
