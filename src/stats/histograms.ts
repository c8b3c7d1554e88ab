/**
 * Latency histograms (hdr-histogram-js), recorded in the worker, merged on the main thread.
 *
 *   worker: HistogramRecorder.record(base, µs)  (one hdr histogram per route / cluster base slot)
 *      │ every second, or when the admin asks, only the histograms that changed:
 *      │ drain() -> [{ base, data: hdr V2 compressed base64 }], then reset (a delta)
 *      v
 *   main:   HistogramStore.add(base, data) -> decode, add into the merged histogram of that base
 *
 * Shipping deltas means the main thread keeps one histogram per name, whatever the number of
 * workers, and a worker that dies loses at most its last unshipped second.
 *
 * Recording cost measured on the shared 2-core machine (3M records over 8 histograms, values
 * 0.2..200 ms, hdr-histogram-js 3.0.1): WebAssembly 45-70 ns, JS Int32 ~250 ns, JS packed
 * 1.4-2.6 µs per record (HistogramRecorder.record as a whole: 64-71 ns WebAssembly, 255-277 ns
 * JS); a fixed-bucket counter ~40 ns. So the worker records into the WebAssembly implementation
 * and falls back to JS Int32 when WebAssembly cannot start. Draining costs ~0.2 ms per changed
 * histogram (encode + deflate), at most once a second. Two significant digits (1 % value
 * resolution) keep a histogram at ~3.5 KiB (WebAssembly) / 13.5 KiB (JS) instead of 23 / 89 KiB
 * with three.
 */
import type * as HdrModule from 'hdr-histogram-js';

/**
 * hdr-histogram-js is loaded on first use (the first latency recorded in a worker, the first
 * delta merged on the main thread): requiring it costs ~16 MB of RSS per thread (its WebAssembly
 * image and pako), which an idle sidecar should not pay.
 */
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
  /** hdr V2 compressed, base64 (encodeIntoCompressedBase64). */
  readonly data: string;
}

// ---------------------------------------------------------------------------------------------
// Worker side
// ---------------------------------------------------------------------------------------------

let wasmState = 0; // 0 unknown, 1 ready, -1 unavailable

function wasmReady(): boolean {
  if (wasmState === 0) {
    try {
      hdrLib().initWebAssemblySync();
      wasmState = 1;
    } catch {
      wasmState = -1;
    }
  }
  return wasmState === 1;
}

/** A histogram as the worker records it (WebAssembly when available). */
export function newRecordingHistogram(useWasm = true): HdrModule.Histogram {
  return hdrLib().build({
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIST_MAX_US,
    numberOfSignificantValueDigits: HIST_DIGITS,
    useWebAssembly: useWasm && wasmReady(),
  });
}

/** Clamps a latency in µs into the recordable range, as an integer. */
export function clampMicros(us: number): number {
  // NaN (a clock that went backwards cannot happen with performance.now) falls to 1 as well.
  return us >= HIST_MAX_US ? HIST_MAX_US : us >= 1 ? Math.round(us) : 1;
}

interface Recording {
  readonly h: HdrModule.Histogram;
  readonly base: number;
  /** Recorded into since the last drain (then listed in `dirty`). */
  dirty: boolean;
}

export class HistogramRecorder {
  private readonly byBase = new Map<number, Recording>();
  private readonly dirty: Recording[] = [];

  constructor(private readonly useWasm = true) {}

  /** Records one latency (µs) for the route or cluster whose stats start at `base`. */
  record(base: number, micros: number): void {
    let r = this.byBase.get(base);
    if (r === undefined) {
      r = { h: newRecordingHistogram(this.useWasm), base, dirty: false }; // once per route / cluster and worker
      this.byBase.set(base, r);
    }
    r.h.recordValue(clampMicros(micros));
    if (!r.dirty) {
      r.dirty = true;
      this.dirty.push(r);
    }
  }

  /** The changed histograms since the last call, encoded, then reset; null when none changed. */
  drain(): EncodedHistogram[] | null {
    const n = this.dirty.length;
    if (n === 0) return null;
    const out: EncodedHistogram[] = [];
    for (let i = 0; i < n; i++) {
      const r = this.dirty[i];
      out.push({ base: r.base, data: hdrLib().encodeIntoCompressedBase64(r.h) });
      r.h.reset();
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

export class HistogramStore {
  private readonly merged = new Map<number, HdrModule.JsHistogram>();
  /** Payloads that did not decode (none expected: they come from our own workers). */
  decodeErrors = 0;

  /** Adds a worker's delta to the merged histogram of its base slot. */
  add(base: number, data: string): void {
    let d: HdrModule.Histogram;
    try {
      d = hdrLib().decodeFromCompressedBase64(data, 32, false);
    } catch {
      this.decodeErrors++;
      return;
    }
    let m = this.merged.get(base);
    if (m === undefined) {
      m = new (hdrLib().Int32Histogram)(1, HIST_MAX_US, HIST_DIGITS);
      this.merged.set(base, m);
    }
    m.add(d as HdrModule.JsHistogram);
  }

  addAll(items: readonly EncodedHistogram[]): void {
    for (const it of items) this.add(it.base, it.data);
  }

  count(base: number): number {
    return this.merged.get(base)?.totalCount ?? 0;
  }

  /** Forgets the histogram of a reclaimed slot. */
  clear(base: number): void {
    this.merged.delete(base);
  }

  summary(base: number): LatencySummary | null {
    const h = this.merged.get(base);
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
    const h = this.merged.get(base);
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
