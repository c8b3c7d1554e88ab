/** Latency histograms: worker counting in hdr's layout, deltas, hdr merge on the main thread. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as hdr from 'hdr-histogram-js';
import { HIST_DIGITS, HIST_MAX_US, HIST_SLOTS, HistogramRecorder, HistogramStore, PROM_BUCKETS_MS, clampMicros, histSlot, histSlotValue } from '../../src/stats/histograms';

/** Within the 1 % resolution of two significant digits (plus one µs of rounding). */
function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * 0.01 + 0.001, `${what}: ${actual} vs ${expected}`);
}

test('the worker slots are hdr-histogram-js buckets: same lowest value for every value, one slot per bucket', () => {
  const h = new hdr.Int32Histogram(1, HIST_MAX_US, HIST_DIGITS);
  let prev = 0;
  const check = (v: number): void => {
    const s = histSlot(v);
    assert.ok(s >= 0 && s < HIST_SLOTS, `slot ${s} of ${v}`);
    assert.equal(histSlotValue(s), h.lowestEquivalentValue(v), `value ${v} (slot ${s})`);
    assert.equal(s, h.countsArrayIndex(v), `index of ${v}`);
  };
  for (let v = 1; v < 70_000; v++) check(v);
  for (let v = 70_000; v < HIST_MAX_US && v > 0; v = Math.floor(v * 1.0007) + 1) check(v);
  check(HIST_MAX_US);
  // Slots are contiguous and increasing with the value.
  for (let s = 1; s < HIST_SLOTS; s++) {
    const v = histSlotValue(s);
    assert.ok(v > prev, `slot ${s}: ${v} after ${prev}`);
    assert.equal(histSlot(v), s);
    prev = v;
  }
});

test('two workers merge into the right percentiles', () => {
  const w1 = new HistogramRecorder();
  const w2 = new HistogramRecorder();
  const base = 100;
  // 1..1000 ms, one value each: the odd milliseconds on worker 1, the even ones on worker 2.
  for (let ms = 1; ms <= 1000; ms++) (ms % 2 === 1 ? w1 : w2).record(base, ms * 1000);
  w1.record(7, 3_000); // another base: kept apart
  const d1 = w1.drain();
  const d2 = w2.drain();
  assert.ok(d1 !== null && d2 !== null);
  assert.deepEqual(d1.map((x) => x.base).sort((a, b) => a - b), [7, 100]);
  const store = new HistogramStore();
  store.addAll(d1);
  store.addAll(d2);
  const s = store.summary(base);
  assert.ok(s !== null);
  assert.equal(s.count, 1000);
  near(s.p50, 500, 'p50');
  near(s.p90, 900, 'p90');
  near(s.p99, 990, 'p99');
  near(s.p99_9, 999, 'p99.9');
  near(s.max, 1000, 'max');
  near(s.mean, 500.5, 'mean');
  assert.equal(store.summary(7)?.count, 1);
  assert.equal(store.summary(8), null, 'nothing recorded there');
  assert.equal(store.decodeErrors, 0);
});

test('deltas: a drain resets the worker histogram; the store accumulates; unchanged = no payload', () => {
  const w = new HistogramRecorder();
  const store = new HistogramStore();
  for (let i = 0; i < 10; i++) w.record(1, 20_000);
  store.addAll(w.drain() ?? []);
  assert.equal(w.drain(), null);
  for (let i = 0; i < 5; i++) w.record(1, 40_000);
  const d = w.drain();
  assert.equal(d?.length, 1);
  store.addAll(d ?? []);
  const s = store.summary(1);
  assert.equal(s?.count, 15);
  near(s!.p50, 20, 'p50');
  near(s!.max, 40, 'max');
  store.add(1, [5]);
  store.add(1, [HIST_SLOTS, 1]);
  store.add(1, [3, -1]);
  store.add(1, 'not a histogram' as unknown as number[]);
  assert.equal(store.decodeErrors, 4);
  assert.equal(store.count(1), 15);
});

test('Prometheus buckets are cumulative over Envoy bounds; sum and count agree with the data', () => {
  const w = new HistogramRecorder();
  const values = [300, 800, 4_000, 4_000, 20_000, 70_000, 2_000_000, 4_000_000_000];
  for (const v of values) w.record(5, v);
  const store = new HistogramStore();
  store.addAll(w.drain() ?? []);
  const b = store.buckets(5);
  assert.ok(b !== null);
  assert.equal(b.count, values.length);
  assert.equal(b.cumulative.length, PROM_BUCKETS_MS.length);
  const expect = PROM_BUCKETS_MS.map((ms) => values.filter((v) => clampMicros(v) <= ms * 1000).length);
  assert.deepEqual(b.cumulative, expect);
  const sumMs = values.reduce((a, v) => a + clampMicros(v), 0) / 1000;
  assert.ok(Math.abs(b.sum - sumMs) <= sumMs * 0.01, `sum ${b.sum} vs ${sumMs}`);
  assert.equal(clampMicros(4_000_000_000), HIST_MAX_US, 'over-range values are clamped, not thrown');
  assert.equal(clampMicros(0.2), 1);
  assert.equal(clampMicros(Number.NaN), 1);
  assert.equal(store.buckets(6), null);
});
