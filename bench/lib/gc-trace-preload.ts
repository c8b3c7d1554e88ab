// Preloaded into a proxy process by bench/rpc-tail.ts (`node -r <this file>`, through NODE_OPTIONS):
// appends one line per garbage collection to the file OUTRIGGER_BENCH_GC_TRACE names:
// "<start, CLOCK_MONOTONIC ms> <duration ms> <kind>" (kind: minor, major, incremental, weakcb),
// from Node's performance timeline ('gc' entries: the main thread's pauses, timed by Node's GC
// prologue and epilogue callbacks). A few lines per second at most. For experiments,
// OUTRIGGER_BENCH_V8_FLAGS (e.g. "--no-parallel-marking") is handed to v8.setFlagsFromString
// first: V8 options that NODE_OPTIONS does not take, for flags V8 reads at run time.
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import { performance, PerformanceObserver, constants } from 'node:perf_hooks';

if (process.env.OUTRIGGER_BENCH_V8_FLAGS) v8.setFlagsFromString(process.env.OUTRIGGER_BENCH_V8_FLAGS);

const file = process.env.OUTRIGGER_BENCH_GC_TRACE;
if (file !== undefined && file !== '') {
  const monoOrigin = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  const kinds: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
  };
  const obs = new PerformanceObserver((list) => {
    let out = '';
    for (const e of list.getEntries()) {
      const kind = ((e as unknown as { detail?: { kind?: number } }).detail)?.kind ?? 0;
      out += `${(monoOrigin + e.startTime).toFixed(3)} ${e.duration.toFixed(3)} ${kinds[kind] ?? String(kind)}\n`;
    }
    fs.appendFileSync(file, out);
  });
  obs.observe({ entryTypes: ['gc'] });
  // The observer must not keep an otherwise finished process alive.
  (obs as unknown as { unref?: () => void }).unref?.();
}
