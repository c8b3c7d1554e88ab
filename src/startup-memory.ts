/**
 * Idle memory of the `outrigger start` process (issue 15): three things a start leaves behind
 * that an idle sidecar never uses again, measured with bench/memory.ts on the default config.
 *
 * 1. Optimized code while starting. Loading ~200 modules makes Node's module resolution
 *    (path.resolve, Module._nodeModulePaths) hot enough for TurboFan, whose own machine code
 *    (~3.5 MB of the node binary's pages) then stays resident although nothing hot runs at
 *    idle. TurboFan is held off while the CLI loads and starts (`--no-turbofan`) and turned on
 *    again once the sidecar serves (`--turbofan`): traffic is optimized exactly as before, and
 *    the flag hash (V8's code-cache key) is the same before and after.
 * 2. The young generation grown by the start's allocations (V8 doubles the semi-spaces up to
 *    16 MB when many objects survive; ~8 MB after a start, resident) and old-space pages of the
 *    start's garbage. One memory-reducing collection after the start (V8's low-memory
 *    notification, through the in-process inspector: `HeapProfiler.collectGarbage`) shrinks
 *    the young generation to its minimum and compacts old space: ~6 MB. It runs once, on an
 *    idle process, taking ~10-30 ms of the main thread; under load the young generation grows
 *    again as V8 sees fit (no CPU per request is lost, unlike --max-semi-space-size).
 *    **Opt-in** (`OUTRIGGER_STARTUP_GC=1`): measured on a quiet machine (bench `bolt`, one run
 *    each way against the same reference), the shrunk young generation raised Bolt's p99 at a
 *    fixed 2,000 requests/s from 1.43 to 1.85-1.93 ms (more frequent scavenges while it grows
 *    back); a sidecar where idle memory counts more than tail latency turns it on.
 *    V8 does the same by itself once the process has been idle for ~10-20 s (its memory
 *    reducer: the young generation back to 1 MiB, old space compacted; measured 59.8 MB at 3 s,
 *    54.2 MB at 25 s on the default config without this collection), so the opt-in only
 *    changes the first seconds after a start.
 * 3. glibc malloc's free pages (the start's freed C++ allocations: OpenSSL, uWS, the
 *    addon, V8's own): malloc_trim(0) once, after the start (and after the collection when it
 *    runs), from the addon (src/native/memory.ts; nothing without it). ~0.2-0.5 MB; it
 *    takes ~0.2 ms once and changes nothing for the traffic that follows.
 * 4. The node executable's file pages the start touched: the dynamic linker's symbol tables
 *    (~7 MB: every library's symbol lookups search the executable's .dynsym/.dynstr first, and
 *    each addon's dlopen again), the V8 snapshot and the builtins' sources and code cache in
 *    read-only data, the parser/compiler code that loaded ~200 modules. Linux keeps them mapped
 *    (and counted in RSS: ~35 MB of the default config's ~58 MB) until memory is short. Right
 *    after malloc_trim they leave the process's page tables (madvise MADV_DONTNEED on the
 *    executable's read-only mappings without a written page, native/memory.cc); they stay in
 *    the page cache, shared with every other node process, and what the idle process or the
 *    first requests use again comes back by minor faults (~12 MB within a second at idle).
 *    The process's own (anonymous) memory does not change; RSS then counts the pages the
 *    sidecar uses instead of those the start used once. ~1-3 ms once; nothing without the
 *    addon. `OUTRIGGER_KEEP_EXE_PAGES=1` turns this one off.
 *
 * 5. V8's memory reducer runs one collection, not two or three (`--memory-reducer-single-gc`,
 *    set when the CLI loads, before any collection). The start's first mark-compact arms the
 *    reducer; 8 s later, whenever the allocation rate is below ~1 MB/s, it runs memory-reducing
 *    incremental mark-compacts: always a second one 0.5 s after the first, a third if the second
 *    freed enough. A proxy at 2,000 Bolt requests/s allocates ~0.3 MB/s, so they land in its
 *    traffic, 8-9 s after the start: each a finalizing pause of ~4-11 ms on the main thread
 *    (pinned to one CPU, loaded machine) plus incremental steps, every request in flight waiting.
 *    The second collection reclaims next to nothing after the first (idle sidecar: 7.5 MB ->
 *    7.5 MB of heap); the idle RSS is the first one's. `OUTRIGGER_MEMORY_REDUCER=v8` keeps V8's
 *    default. (Turning the reducer off needs `--no-memory-reducer` before the heap is set up: V8
 *    reads it only then.)
 *
 * Only the CLI process does this (holdOptimizer() is a no-op unless the entry point is cli.js):
 * an embedding application keeps its own V8 settings.
 */
import * as path from 'node:path';
import * as v8 from 'node:v8';

let held = false;

/** Node/V8 options that set the optimizing tiers themselves. */
const OWN_TIERS = /--(?:no-)?(?:turbofan|opt|jitless|max-opt|maglev|always-turbofan|always-opt)(?:[=\s]|$)|--(?:no_)?(?:turbofan|opt|max_opt)(?:[=\s]|$)/;

/** Holds TurboFan off until releaseStartupMemory() (when `entry` is the process's entry point). */
export function holdOptimizer(entry: string): void {
  if (held || require.main?.filename !== entry || process.env.OUTRIGGER_KEEP_STARTUP_MEMORY === '1') return;
  // The operator chose the compiler tiers (--no-turbofan, --jitless, --max-opt...): leave them as they are.
  if (OWN_TIERS.test([...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' '))) return;
  held = true;
  v8.setFlagsFromString('--no-turbofan');
}

/**
 * The sidecar serves: TurboFan on again, then on the next turn (after the start's own
 * callbacks) the memory-reducing collection (OUTRIGGER_STARTUP_GC=1 only) and malloc_trim.
 */
export function releaseStartupMemory(): void {
  if (held) {
    held = false;
    v8.setFlagsFromString('--turbofan');
  }
  if (process.env.OUTRIGGER_KEEP_STARTUP_MEMORY === '1') return;
  setImmediate(process.env.OUTRIGGER_STARTUP_GC === '1' ? () => lowMemoryCollection(releaseUnusedPages) : releaseUnusedPages);
}

/** glibc's free pages back to the kernel, then the executable's file pages out of the resident set (src/native/memory.ts; nothing without the addon). */
function releaseUnusedPages(): void {
  // Loaded here, not at the top: this module is imported first, before TurboFan is held.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mc = (require('./native/memory') as typeof import('./native/memory')).mallocControl();
  mc.trim();
  if (process.env.OUTRIGGER_KEEP_EXE_PAGES !== '1') mc.releaseExecutablePages();
}

/** V8's low-memory notification (full, memory-reducing GCs), or nothing when the inspector is not built in; then `done`. */
function lowMemoryCollection(done: () => void): void {
  let inspector: typeof import('node:inspector');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    inspector = require('node:inspector') as typeof import('node:inspector');
  } catch {
    return done(); // node built --without-inspector
  }
  const session = new inspector.Session();
  try {
    session.connect();
    session.post('HeapProfiler.collectGarbage', (err) => {
      if (err !== null) process.emitWarning(`outrigger: the collection after the start failed: ${err.message}`);
      // Not from inside the inspector's callback: a disconnect there leaves the event loop stuck.
      setImmediate(() => {
        session.disconnect();
        done();
      });
    });
  } catch {
    // Another in-process session or a closed inspector: the start's memory stays as V8 left it.
    done();
  }
}

/** One memory-reducing collection instead of two or three (5. above), when `entry` is the process's entry point. */
export function singleReducerGc(entry: string): boolean {
  if (require.main?.filename !== entry || process.env.OUTRIGGER_MEMORY_REDUCER === 'v8') return false;
  // Only before the reducer's first collection (none ran before 8 s): V8 checks that the
  // reducer has not started more collections than this flag allows.
  if (process.uptime() > 5) return false;
  v8.setFlagsFromString('--memory-reducer-single-gc');
  return true;
}

// Imported first by cli.ts: TurboFan is held before the other modules load.
holdOptimizer(path.join(__dirname, 'cli.js'));
singleReducerGc(path.join(__dirname, 'cli.js'));
