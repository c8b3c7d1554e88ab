// SlotList (network/slot-list.ts): the per-connection registry of listeners and TLS handshakes.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SlotList } from '../../src/network/slot-list';

interface E {
  name: string;
  slot: number;
}

const e = (name: string): E => ({ name, slot: -1 });
const names = (l: SlotList<E>): string[] => l.values().map((x) => x.name).sort();

test('SlotList: add, remove from the middle and the end, remove twice or a stranger, indexes kept', () => {
  const l = new SlotList<E>();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(e);
  for (const x of [a, b, c, d]) l.add(x);
  assert.equal(l.size, 4);
  l.remove(b); // d moves into b's slot
  assert.deepEqual(names(l), ['a', 'c', 'd']);
  assert.equal(b.slot, -1);
  assert.equal(l.values()[d.slot], d);
  l.remove(d); // now at the end or not: either way it goes
  l.remove(d);
  l.remove(e('stranger'));
  assert.deepEqual(names(l), ['a', 'c']);
  for (const x of l.values()) assert.equal(l.values()[x.slot], x);
  l.add(b);
  assert.deepEqual(names(l), ['a', 'b', 'c']);
});

test('SlotList: values() is a copy, so entries can be removed while iterating it', () => {
  const l = new SlotList<E>();
  const all = Array.from({ length: 10 }, (_, i) => e(String(i)));
  for (const x of all) l.add(x);
  let seen = 0;
  for (const x of l.values()) {
    l.remove(x);
    seen++;
  }
  assert.equal(seen, 10);
  assert.equal(l.size, 0);
  assert.ok(all.every((x) => x.slot === -1));
});
