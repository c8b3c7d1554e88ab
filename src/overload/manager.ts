/**
 * Overload manager (Envoy's idea, MOSN config section `overload_manager`, see ./config.ts):
 * process-wide limits with actions that start before the process runs out of memory.
 *
 *   monitors                                   actions (checked where the work starts)
 *   downstream connections  >= max  ────────>  stop accepting: a new connection is closed at accept
 *   active requests         >= max  ────────>  shed: a new request gets the protocol's overload
 *                                              answer (HTTP 503 + x-envoy-overloaded, Bolt
 *                                              SERVER_THREADPOOL_BUSY, Dubbo THREADPOOL_EXHAUSTED)
 *   RSS / max_heap_bytes    >= close_idle ──>  HTTP/1.1 keep-alive: idle connections closed, and
 *                                              responses close their connection
 *                           >= shed       ──>  shed (as above)
 *                           >= stop       ──>  stop accepting (as above)
 *
 * Counts are process-wide: every worker thread adds to two Int32 cells of one SharedArrayBuffer
 * (created by the main thread, handed to workers in WorkerInit) with Atomics, one add per
 * connection and per request (plain adds while one thread writes them). Memory is sampled on a timer per thread (process RSS is the
 * same for all threads); the heap actions are plain flags read on the hot path.
 *
 * Stats: per listener downstream_cx_overload_reject, downstream_rq_overload_shed,
 * downstream_cx_overload_idle_closed; the admin shows the process-wide counts (overloadGauges)
 * as server.overload_downstream_cx_active / _rq_active.
 */
import { DEFAULT_OVERLOAD, type OverloadConfig } from '../config/overload';
import { filterCellsThreaded } from '../filters/shared/cells';
import { applyLimits, type ResourceLimits } from './limits';

const CONNS = 0;
const REQUESTS = 1;
const CELLS = 2;

let cells = new Int32Array(new SharedArrayBuffer(CELLS * 4));
let cfg: OverloadConfig = DEFAULT_OVERLOAD;
let timer: NodeJS.Timeout | null = null;
/** Memory sampler. */
const sampleRss: () => number = () => process.memoryUsage.rss();

/** Heap-driven action states (read on the hot path). */
export const overloadState = {
  closeIdle: false,
  shed: false,
  stopAccepting: false,
};

/** Run at each refresh while the close-idle action is on (HTTP/1.1 downstreams close their idle connections). */
const idleClosers: (() => void)[] = [];

/** The main thread's shared cells, created once, for every worker's WorkerInit. */
let mainSab: SharedArrayBuffer | null = null;
export function overloadSharedBuffer(): SharedArrayBuffer {
  if (mainSab === null) {
    mainSab = new SharedArrayBuffer(CELLS * 4);
    cells = new Int32Array(mainSab);
  }
  return mainSab;
}

/** A worker: count into the process's shared cells. */
export function bindOverloadShared(sab: SharedArrayBuffer | undefined): void {
  if (sab !== undefined) cells = new Int32Array(sab);
}

/** Applies a config's overload_manager section (and starts or stops the memory sampler). */
export function applyOverloadConfig(c: OverloadConfig | undefined): void {
  cfg = c ?? DEFAULT_OVERLOAD;
  if (timer !== null) {
    clearInterval(timer);
    timer = null;
  }
  if (cfg.maxHeapBytes > 0) {
    timer = setInterval(refreshHeap, cfg.refreshIntervalMs);
    timer.unref();
    refreshHeap();
  } else {
    overloadState.closeIdle = overloadState.shed = overloadState.stopAccepting = false;
  }
}

/** Samples memory and sets the heap actions (exported for tests). */
export function refreshHeap(): void {
  const max = cfg.maxHeapBytes;
  if (max <= 0) return;
  const rss = sampleRss();
  overloadState.closeIdle = rss >= max * cfg.closeIdleAt;
  overloadState.shed = rss >= max * cfg.shedAt;
  overloadState.stopAccepting = rss >= max * cfg.stopAcceptingAt;
  // While under pressure, every refresh closes the connections idle since the last one.
  if (overloadState.closeIdle) for (const f of idleClosers) f();
}

/** Registers what the close-idle action runs when it starts. */
export function onCloseIdle(f: () => void): void {
  idleClosers.push(f);
}

/**
 * Counts one more in `cell` unless `max` (> 0) is reached; false = refused (not counted).
 * While one thread writes the cells (one-isolate mode: no worker thread started yet), plain
 * loads and stores: V8 calls a builtin for each Atomics operation (~120 instructions, twice per
 * request), and the admin reads the same memory on the same thread. Worker threads switch it
 * to Atomics before they start (shareFilterCellsWithThreads), as the filters' and breakers' cells.
 */
function admit(cell: number, max: number): boolean {
  const n = filterCellsThreaded() ? Atomics.add(cells, cell, 1) : cells[cell]++;
  if (max > 0 && n >= max) {
    release(cell);
    return false;
  }
  return true;
}

function release(cell: number): void {
  if (filterCellsThreaded()) Atomics.sub(cells, cell, 1);
  else cells[cell]--;
}

/**
 * A connection was accepted: false when it must be closed now (stop accepting). Otherwise it
 * is counted until connectionClosed().
 */
export function admitConnection(): boolean {
  return !overloadState.stopAccepting && admit(CONNS, cfg.maxDownstreamConnections);
}

export function connectionClosed(): void {
  release(CONNS);
}

/**
 * A request starts: false when it must be shed (answered with the protocol's overload reply
 * and not counted). Otherwise it is counted until requestEnded().
 */
export function admitRequest(): boolean {
  return overloadState.shed !== true && admit(REQUESTS, cfg.maxActiveRequests); // !== true: one compare (filterCellsThreaded)
}

export function requestEnded(): void {
  release(REQUESTS);
}

/** Process-wide counts (the admin on the main thread reads the cells every worker adds to). */
export function overloadGauges(): { connections: number; requests: number } {
  return { connections: Atomics.load(cells, CONNS), requests: Atomics.load(cells, REQUESTS) };
}

/** A worker applies a config snapshot: per-request limits and the overload manager. */
export function applyHostileTrafficConfig(config: { readonly limits?: Partial<ResourceLimits>; readonly overload?: OverloadConfig }, sab: SharedArrayBuffer | undefined): void {
  bindOverloadShared(sab);
  applyLimits(config.limits);
  applyOverloadConfig(config.overload);
}
