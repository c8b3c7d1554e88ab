/**
 * Int32 cells shared by every worker thread, for what filters count or limit process-wide:
 * rate-limit buckets (a limit holds across all workers, not per worker) and the filters' named
 * counters (rbac.allowed, ratelimit.rate_limited, ...).
 *
 *   main thread, validation (validate / load / SIGHUP): cells are allocated by key
 *     (allocCells(key, n, init)); the same key gets the same cells again, so a reload keeps a
 *     bucket's state; a validated config carries cell indexes (plain numbers) to the workers
 *   main thread: filterCellsBuffer() goes to every worker in WorkerInit (src/server.ts)
 *   worker: bindFilterCells(sab) at start; filters read and write with Atomics
 *   admin: publishFilterCounters(hub) copies the named counters into the stats hub's extras
 *
 * Without a main thread (unit tests, single-thread tools) the cells are this thread's own.
 *
 * Threads: Atomics are needed only while more than one thread writes the cells. In one-isolate
 * mode (one worker, its data plane on the main thread) and without a server (tests, tools),
 * one thread does: counts and buckets are plain loads and stores there (an Atomics call is a
 * builtin call, ~100-200 instructions). A worker thread binds the cells as threaded; the main
 * thread turns threaded before it starts a worker thread (shareFilterCellsWithThreads), so a
 * data plane on the main thread switches to Atomics before another thread can write.
 * Cells are never freed: a key that disappears from the config keeps its cells (bounded by
 * CELLS; a config that would need more is refused with its path).
 */

export const CELLS = 1 << 18;
/** Cell 0..1: a Float64 time base (ms since the epoch) that windows and buckets count from. */
const BASE_CELLS = 2;

import { isMainThread } from 'node:worker_threads';

let sab: SharedArrayBuffer | null = null;
let cells: Int32Array = new Int32Array(0);
let baseMs = 0;
let next = BASE_CELLS;
const byKey = new Map<string, number>();
const counters = new Map<string, number>();

function ensure(): void {
  if (sab !== null) return;
  sab = new SharedArrayBuffer(CELLS * 4);
  cells = new Int32Array(sab);
  baseMs = Math.floor(Date.now() / 1000) * 1000;
  new Float64Array(sab, 0, 1)[0] = baseMs;
}

/** Main thread: the buffer every worker gets (created on first use). */
export function filterCellsBuffer(): SharedArrayBuffer {
  ensure();
  return sab as SharedArrayBuffer;
}

/** Other threads write the cells too: Atomics (see the header). */
let threaded = !isMainThread;

/** Whether the cells are written by more than one thread (Atomics), rather than by this one alone. */
export function filterCellsThreaded(): boolean {
  // Compared with true: a module variable holding true/false has no type for optimized code, so
  // the callers' test would check every falsy kind of value; this hands them a known boolean.
  return threaded === true;
}

/** Main thread, before it starts a worker thread (src/server.ts): from now on the cells are written with Atomics. */
export function shareFilterCellsWithThreads(): void {
  threaded = true;
  if (pending > 0) flushCounts();
}

/** Worker (a thread, or one-isolate mode's data plane on the main thread): use the main thread's cells. */
export function bindFilterCells(buf: SharedArrayBuffer | undefined): void {
  if (buf === undefined) return;
  sab = buf;
  cells = new Int32Array(buf);
  baseMs = new Float64Array(buf, 0, 1)[0];
  if (!isMainThread) threaded = true;
}

/** The shared cells (read after bindFilterCells / allocation). */
export function sharedCells(): Int32Array {
  ensure();
  return cells;
}

/**
 * The Date.now() an adapter read for the read callback being processed (lendNow), -1 outside one.
 * A double field of an object, not a module variable: a time since the epoch is no small
 * integer, and storing one into a module variable (a context slot) boxes it, a new heap number
 * and a write barrier per store (twice per RPC read: the loan and its end).
 */
const lent = { ms: 0.5 }; // a double field from the start (a Smi literal would make it a Smi field first)
lent.ms = -1;

/**
 * An adapter that read Date.now() at the start of a read callback lends it to the filters of
 * the requests decoded in that callback (a clock read costs 50-200 ns where the clock source
 * is not the vDSO's); -1 ends the loan, and adds the counts made during it to the shared cells
 * (count()). Returns the previous loan (to restore it).
 */
export function lendNow(ms: number): number {
  const prev = lent.ms;
  lent.ms = ms;
  if (ms < 0 && pending > 0) flushCounts();
  return prev;
}

/** Milliseconds since the shared time base (the same in every thread): the lent clock inside a read callback. */
export function sharedNowMs(): number {
  const ms = lent.ms;
  return (ms >= 0 ? ms : Date.now()) - baseMs;
}

/**
 * Main thread, at validation: `n` cells for `key` (the same ones for the same key), set to
 * `init` when first allocated. Returns -1 when the cells are exhausted.
 */
export function allocCells(key: string, n: number, init: (c: Int32Array, at: number) => void): number {
  ensure();
  const k = `${key}\0${n}`;
  const had = byKey.get(k);
  if (had !== undefined) return had;
  if (next + n > CELLS) return -1;
  const at = next;
  next += n;
  byKey.set(k, at);
  init(cells, at);
  return at;
}

/** Main thread, at validation: the cell of a named counter (shown by the admin as that name). */
export function counterCell(name: string): number {
  const at = allocCells(`counter:${name}`, 1, () => {});
  if (at >= 0) counters.set(name, at);
  return at;
}

/**
 * Counts made during a loan (one read callback, which may hold several requests), by cell:
 * added to the shared cells when the loan ends, one Atomics.add per cell and callback instead
 * of one per count (an Atomics call is a builtin call, ~200 instructions; filters count 2-4
 * times per request). A read callback is synchronous: nothing in this thread reads the cells
 * before the flush at its end, and a local answer settles them first (settleCounts).
 */
const PENDING_CELLS = 16;
const pendingAt = new Int32Array(PENDING_CELLS);
const pendingN = new Int32Array(PENDING_CELLS);
let pending = 0;

function flushCounts(): void {
  const c = cells;
  for (let i = 0; i < pending; i++) Atomics.add(c, pendingAt[i], pendingN[i]);
  pending = 0;
}

/**
 * Adds the counts made so far in the current loan to the shared cells now: an adapter calls it
 * before it answers a request locally, so that a client that reads the counters after the
 * answer (a denial, a limit) finds them counted, whatever the scheduling of the threads.
 */
export function settleCounts(): void {
  if (pending > 0) flushCounts();
}

/**
 * Adds 1 to a counter cell (-1 = none): one thread alone: at once, a plain add (small enough
 * for the JIT to inline into the filters); threaded: at once outside a loan, at the loan's end
 * inside one.
 */
export function count(at: number): void {
  if (threaded) countShared(at);
  else if (at >= 0) cells[at] = (cells[at] + 1) | 0; // wraps as Atomics.add does
}

function countShared(at: number): void {
  if (at < 0) return;
  if (lent.ms < 0) {
    Atomics.add(cells, at, 1);
    return;
  }
  for (let i = 0; i < pending; i++) {
    if (pendingAt[i] === at) {
      pendingN[i]++;
      return;
    }
  }
  if (pending === PENDING_CELLS) flushCounts();
  pendingAt[pending] = at;
  pendingN[pending++] = 1;
}

/** The named counters and their values (main thread). */
export function filterCounters(): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, at] of counters) out.set(name, Atomics.load(cells, at));
  return out;
}

/** What publishFilterCounters writes into (the stats hub's extras). */
export interface ExtrasSink {
  setExtra(name: string, value: number, opts?: { help?: string; type?: 'counter' | 'gauge' }): void;
}

/** Copies the filter counters into the stats hub (before the admin answers a stats request). */
export function publishFilterCounters(hub: ExtrasSink): void {
  for (const [name, v] of filterCounters()) hub.setExtra(name, v, { type: 'counter', help: `filter counter ${name}` });
}
