/**
 * Latency histograms: counted in the worker, merged with hdr-histogram-js on the main thread.
 *
 *   worker: HistogramRecorder.record(base, µs)  (one counts array per route / cluster base slot)
 *      │ every second, or when the admin asks, only the histograms that changed:
 *      │ drain() -> [{ base, data: [slot, count, slot, count, ...] }], then zeroed (a delta)
 *      v
 *   main:   HistogramStore.add(base, data) -> added to that base's slot counts; the first read after
 *           (admin, Prometheus) records them into the base's merged hdr histogram
 *
 * The worker keeps HdrHistogram's own bucket layout (lowest value 1 µs, highest 2^31-1 µs, two
 * significant digits: 256 sub-buckets, each power of two above 256 split in 128) in a plain
 * Int32Array, so recording is one index computation and one increment, and the worker never
 * loads hdr-histogram-js: requiring it and starting its WebAssembly took 150-250 ms of the
 * first request's time in a fresh worker, and ~16 MB of RSS per thread. A slot's values
 * recorded into an hdr histogram of the same layout land in the same bucket, so the merged
 * percentiles are what hdr recording in the worker gave.
 *
 * Shipping deltas means the main thread keeps one histogram per name, whatever the number of
 * workers, and a worker that dies loses at most its last unshipped second.
 */
import type * as HdrModule from 'hdr-histogram-js';

/** hdr-histogram-js, loaded on the main thread's first merge (an idle sidecar never loads it). */
let hdrModule: typeof HdrModule | null = null;
function hdrLib(): typeof HdrModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (hdrModule === null) hdrModule = require('hdr-histogram-js') as typeof HdrModule;
  return hdrModule;
}

/** 1 % resolution. */
export const HIST_DIGITS = 2;
/** Largest recordable value, µs (~35.8 min); longer latencies are recorded as this. */
export const HIST_MAX_US = 2 ** 31 - 1;

/** One changed histogram, as shipped from a worker: the base slot of its route or cluster. */
export interface EncodedHistogram {
  readonly base: number;
  /** The non-zero slots since the last drain, as pairs: slot, count, slot, count, ... */
  readonly data: readonly number[];
}

// ---------------------------------------------------------------------------------------------
// Worker side
// ---------------------------------------------------------------------------------------------

/** Slots of the layout: values below 256 exact, then 128 per power of two up to 2^31. */
export const HIST_SLOTS = (24 << 7) + 128;

/** The slot of a value in 1..HIST_MAX_US (HdrHistogram's counts index for this layout). */
export function histSlot(v: number): number {
  const b = 24 - Math.clz32(v | 255); // 0 below 256, else log2(v) - 7
  return (b << 7) + (v >>> b);
}

/** The lowest value of a slot. */
export function histSlotValue(slot: number): number {
  if (slot < 256) return slot;
  const b = (slot >>> 7) - 1;
  return (slot - (b << 7)) * 2 ** b;
}

/** Clamps a latency in µs into the recordable range, as an integer. */
export function clampMicros(us: number): number {
  // NaN (a clock that went backwards cannot happen with performance.now) falls to 1 as well.
  return us >= HIST_MAX_US ? HIST_MAX_US : us >= 1 ? Math.round(us) : 1;
}

interface Recording {
  /** 12.5 KiB per route / cluster and worker. */
  readonly counts: Int32Array;
  readonly base: number;
  /** Recorded into since the last drain (then listed in `dirty`). */
  dirty: boolean;
}

export class HistogramRecorder {
  private readonly byBase = new Map<number, Recording>();
  private readonly dirty: Recording[] = [];

  /** Records one latency (µs) for the route or cluster whose stats start at `base`. */
  record(base: number, micros: number): void {
    let r = this.byBase.get(base);
    if (r === undefined) {
      r = { counts: new Int32Array(HIST_SLOTS), base, dirty: false }; // once per route / cluster and worker
      this.byBase.set(base, r);
    }
    r.counts[histSlot(clampMicros(micros))]++;
    if (!r.dirty) {
      r.dirty = true;
      this.dirty.push(r);
    }
  }

  /** The changed histograms since the last call (deltas), then zeroed; null when none changed. */
  drain(): EncodedHistogram[] | null {
    const n = this.dirty.length;
    if (n === 0) return null;
    const out: EncodedHistogram[] = [];
    for (let i = 0; i < n; i++) {
      const r = this.dirty[i];
      const c = r.counts;
      const data: number[] = [];
      for (let s = 0; s < HIST_SLOTS; s++) {
        if (c[s] !== 0) {
          data.push(s, c[s]);
          c[s] = 0;
        }
      }
      out.push({ base: r.base, data });
      r.dirty = false;
    }
    this.dirty.length = 0;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Main side
// ---------------------------------------------------------------------------------------------

/** Percentiles of one merged histogram, in milliseconds (µs resolution). */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p99_9: number;
  max: number;
  mean: number;
}

/**
 * Prometheus bucket bounds, ms: the default bounds Envoy's Prometheus output uses for its
 * histograms, so dashboards built for it read these too.
 */
export const PROM_BUCKETS_MS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
const PROM_BUCKETS_US = PROM_BUCKETS_MS.map((ms) => ms * 1000);

export interface PromBuckets {
  /** Cumulative counts, one per PROM_BUCKETS_MS bound (then +Inf = count). */
  readonly cumulative: readonly number[];
  readonly count: number;
  /** ms; from the bucket midpoints of the recorded values (within the 1 % resolution). */
  readonly sum: number;
}

const ms = (us: number): number => Math.round(us) / 1000;

/** Worker deltas of one base not merged into its hdr histogram yet. */
interface Pending {
  /** Counts per slot (Float64: exact however long nobody reads them). */
  readonly counts: Float64Array;
  dirty: boolean;
}

export class HistogramStore {
  private readonly merged = new Map<number, HdrModule.JsHistogram>();
  /**
   * Deltas kept as slot counts until the histogram is read (admin, Prometheus): adding them is
   * a few array increments, and hdr-histogram-js (150-250 ms to load and start) is loaded by
   * the first read, not by the first merge — with one worker on the main thread that merge
   * ran on the data plane's thread, about a second into the first traffic.
   */
  private readonly pending = new Map<number, Pending>();
  /** Payloads that did not decode (none expected: they come from our own workers). */
  decodeErrors = 0;

  /** Adds a worker's delta (slot, count pairs) to the histogram of its base slot. */
  add(base: number, data: readonly number[]): void {
    if (!Array.isArray(data) || data.length % 2 !== 0) {
      this.decodeErrors++;
      return;
    }
    for (let i = 0; i < data.length; i += 2) {
      const s = data[i];
      const c = data[i + 1];
      if (!Number.isInteger(s) || s < 1 || s >= HIST_SLOTS || !Number.isInteger(c) || c < 1) {
        this.decodeErrors++;
        return;
      }
    }
    let p = this.pending.get(base);
    if (p === undefined) {
      p = { counts: new Float64Array(HIST_SLOTS), dirty: false }; // once per route / cluster
      this.pending.set(base, p);
    }
    const counts = p.counts;
    for (let i = 0; i < data.length; i += 2) counts[data[i]] += data[i + 1];
    p.dirty = true;
  }

  addAll(items: readonly EncodedHistogram[]): void {
    for (const it of items) this.add(it.base, it.data);
  }

  /** The merged histogram of `base` with every delta added so far (undefined: nothing ever added). */
  private histogram(base: number): HdrModule.JsHistogram | undefined {
    const p = this.pending.get(base);
    if (p === undefined || !p.dirty) return this.merged.get(base);
    let m = this.merged.get(base);
    if (m === undefined) {
      m = new (hdrLib().Int32Histogram)(1, HIST_MAX_US, HIST_DIGITS);
      this.merged.set(base, m);
    }
    // Each count at its bucket's highest value: hdr reports percentiles that way, so the max
    // (which hdr keeps as a recorded value) is never below them. The mean is within the 1 %.
    const counts = p.counts;
    for (let s = 1; s < HIST_SLOTS; s++) {
      if (counts[s] === 0) continue;
      m.recordValueWithCount(m.highestEquivalentValue(histSlotValue(s)), counts[s]);
      counts[s] = 0;
    }
    p.dirty = false;
    return m;
  }

  count(base: number): number {
    return this.histogram(base)?.totalCount ?? 0;
  }

  /** Forgets the histogram of a reclaimed slot. */
  clear(base: number): void {
    this.merged.delete(base);
    this.pending.delete(base);
  }

  summary(base: number): LatencySummary | null {
    const h = this.histogram(base);
    if (h === undefined || h.totalCount === 0) return null;
    return {
      count: h.totalCount,
      p50: ms(h.getValueAtPercentile(50)),
      p90: ms(h.getValueAtPercentile(90)),
      p99: ms(h.getValueAtPercentile(99)),
      p99_9: ms(h.getValueAtPercentile(99.9)),
      max: ms(h.maxValue),
      mean: ms(h.mean),
    };
  }

  /** Cumulative Prometheus buckets, or null when nothing was recorded for `base`. */
  buckets(base: number): PromBuckets | null {
    const h = this.histogram(base);
    if (h === undefined || h.totalCount === 0) return null;
    const bounds = PROM_BUCKETS_US;
    const cumulative = new Array<number>(bounds.length).fill(0);
    const total = h.totalCount;
    let k = 0;
    let seen = 0;
    let sumUs = 0;
    // Counts are indexed in increasing value order; a value counts for a bound when the lowest
    // value of its hdr bucket is <= the bound.
    for (let i = 0; i < h.countsArrayLength && seen < total; i++) {
      const c = h.getCountAtIndex(i);
      if (c === 0) continue;
      const v = h.valueFromIndex(i);
      while (k < bounds.length && v > bounds[k]) cumulative[k++] = seen;
      seen += c;
      sumUs += c * h.medianEquivalentValue(v);
    }
    while (k < bounds.length) cumulative[k++] = seen;
    return { cumulative, count: total, sum: ms(sumUs) };
  }
}
