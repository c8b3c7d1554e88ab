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
 * 5. V8's memory reducer is deferred for good, and each thread that serves collects when it is
 *    idle instead. The start's first mark-compact arms the reducer; 8 s later, whenever the
 *    allocation rate is below ~1 MB/s, it runs memory-reducing incremental mark-compacts (two or
 *    three, 0.5 s apart). A proxy at 2,000 Bolt requests/s allocates ~0.3 MB/s, so they land in
 *    its traffic 8-9 s after the start: each a finalizing pause of ~4-25 ms on the main thread
 *    plus incremental steps, every request in flight waiting (session 14: 91 of the 180 slowest
 *    requests of one fresh-sidecar window overlapped them). "Low allocation rate" is not "idle"
 *    for a proxy, whose requests allocate little. The reducer's start delay
 *    (`--gc-memory-reducer-start-delay-ms`, read by V8 each time a mark-compact arms the reducer)
 *    is set to its maximum when the CLI loads, before any collection, so V8 never starts one by
 *    itself; collectWhenIdle() then does the reducer's job on each thread that runs JS (the main
 *    thread, each worker thread): every 10 s it reads the thread's own CPU time, and after a
 *    whole 10-s window with under 50 ms of it (0.5 %: no traffic to speak of) it runs one memory-reducing
 *    collection (the low-memory notification of 2. above, then 3. and 4. again), once per idle
 *    period: a window with more CPU than that arms it again. The idle RSS drop the reducer gave
 *    comes ~10-20 s after the start instead of ~8 s; a sidecar under steady traffic, however
 *    light its allocation, is never paused for it. `OUTRIGGER_MEMORY_REDUCER=v8` keeps V8's
 *    reducer as it is (and no idle collection). (Turning the reducer off outright needs
 *    `--no-memory-reducer` before the heap is set up: V8 reads that one only then.)
 *
 * Only the CLI process does this (holdOptimizer() is a no-op unless the entry point is cli.js):
 * an embedding application keeps its own V8 settings.
 */
import * as fs from 'node:fs';
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
 * callbacks) the memory-reducing collection (OUTRIGGER_STARTUP_GC=1 only) and malloc_trim;
 * this thread's idle collector (5. above).
 */
export function releaseStartupMemory(): void {
  if (held) {
    held = false;
    v8.setFlagsFromString('--turbofan');
  }
  collectWhenIdle(reducerDeferred);
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
      if (err !== null) process.emitWarning(`outrigger: the memory-reducing collection failed: ${err.message}`);
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

/** Whether V8's reducer was deferred in this process (5. above): the serving threads run collectWhenIdle(). */
let reducerDeferred = false;

export function memoryReducerDeferred(): boolean {
  return reducerDeferred;
}

/** Defers V8's memory reducer for good (5. above), when `entry` is the process's entry point. */
export function deferMemoryReducer(entry: string): boolean {
  if (require.main?.filename !== entry || process.env.OUTRIGGER_MEMORY_REDUCER === 'v8') return false;
  // V8's maximum for an int flag: ~24.8 days. A mark-compact arms the reducer's timer with this
  // delay (the reducer then waits in that state; later mark-compacts post no new timer).
  v8.setFlagsFromString('--gc-memory-reducer-start-delay-ms=2147483647');
  reducerDeferred = true;
  return true;
}

/** The idle collector's state between its 10-s windows. */
export interface IdleWindow {
  /** A collection ran since the thread was last busy: no other until it is busy again. */
  collected: boolean;
}

/** CPU (ms, this thread's) under which a 10-s window counts as idle: an idle sidecar's own timers (stats, admin) use ~15-35 ms of it. */
export const IDLE_CPU_MS = 50;
const IDLE_WINDOW_MS = 10_000;

/** true: collect now. A busy window (>= IDLE_CPU_MS) arms the next idle one. */
export function idleStep(w: IdleWindow, cpuMs: number): boolean {
  if (cpuMs >= IDLE_CPU_MS) {
    w.collected = false;
    return false;
  }
  if (w.collected) return false;
  w.collected = true;
  return true;
}

/** This thread's CPU time in ms (Linux: /proc/thread-self/schedstat; elsewhere the process's). */
function threadCpuMs(): number {
  try {
    const s = fs.readFileSync('/proc/thread-self/schedstat', 'latin1');
    return Number(s.slice(0, s.indexOf(' '))) / 1e6;
  } catch {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
}

let idleTimer: NodeJS.Timeout | null = null;

/**
 * The memory reducer's job on this thread (5. above): one memory-reducing collection after each
 * 10-s window the thread spent idle, once per idle period. Once per thread (one-isolate mode
 * starts it from the CLI and from the data plane); nothing unless the reducer was deferred.
 */
export function collectWhenIdle(deferred: boolean): void {
  if (!deferred || idleTimer !== null) return;
  const w: IdleWindow = { collected: false };
  let last = threadCpuMs();
  let busy = false;
  idleTimer = setInterval(() => {
    if (busy) return;
    const now = threadCpuMs();
    const cpu = now - last;
    last = now;
    if (!idleStep(w, cpu)) return;
    busy = true;
    lowMemoryCollection(() => {
      // Also the executable's pages again: the inspector session and the collection touched ~4 MB of them.
      releaseUnusedPages();
      busy = false;
      last = threadCpuMs(); // the collection's own CPU is not traffic
    });
  }, IDLE_WINDOW_MS);
  idleTimer.unref();
}

// Imported first by cli.ts: TurboFan is held before the other modules load.
holdOptimizer(path.join(__dirname, 'cli.js'));
deferMemoryReducer(path.join(__dirname, 'cli.js'));
