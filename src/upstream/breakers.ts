/**
 * Circuit-breaker usage shared by every worker of the process, so that a limit means the same
 * with 1 worker or 8. The main thread creates one shared Int32Array (cells updated with
 * Atomics, at a cluster's stats base slot + B.*) and, per worker, a second array of that
 * worker's own share of each cell (written only by the worker). When a worker exits without
 * releasing what it held (a crash), the main thread subtracts its share (releaseWorkerShare).
 * While one thread alone writes the cells (one-isolate mode, no worker thread started: the
 * filters' cells' rule, filterCellsThreaded), Cluster takes and releases with plain stores.
 */
import { BREAKER_CELLS } from '../stats/layout';

export interface BreakerCells {
  /** Usage summed over all workers (Atomics). */
  readonly shared: Int32Array;
  /** This worker's part of it. */
  readonly own: Int32Array;
}

export function newBreakerBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(BREAKER_CELLS * Int32Array.BYTES_PER_ELEMENT);
}

export function breakerCells(shared: SharedArrayBuffer, own: SharedArrayBuffer): BreakerCells {
  return { shared: new Int32Array(shared), own: new Int32Array(own) };
}

/** Cells of one thread only (tests, bench peers without a main thread). */
export function privateBreakerCells(): BreakerCells {
  return { shared: new Int32Array(BREAKER_CELLS), own: new Int32Array(BREAKER_CELLS) };
}

/** A worker is gone: what it still held is released (main thread, after the worker's exit). */
export function releaseWorkerShare(shared: SharedArrayBuffer, own: SharedArrayBuffer): void {
  const s = new Int32Array(shared);
  const o = new Int32Array(own);
  for (let i = 0; i < o.length; i++) {
    if (o[i] !== 0) {
      Atomics.sub(s, i, o[i]);
      o[i] = 0;
    }
  }
}
